//! The training and evaluation loops shared by `train` and `eval`.
//!
//! One [`Graph`] lives for the whole run and is `reset()` every step, so its buffers and
//! kernel workspaces are reused and a steady-state step allocates (almost) nothing.

use crate::faults::{self, At, Fault, Origin};
use anyhow::{Context, Result};
use ganglion::autograd::Graph;
use ganglion::data::BatchLoader;
use ganglion::models::Module;
use ganglion::optim::{Optimizer, Schedule};
use ganglion::tensor::ops::argmax;
use indicatif::{ProgressBar, ProgressStyle};
use std::time::Instant;

/// Loss and accuracy over a pass of a data set.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PassStats {
    /// Mean cross-entropy per image.
    pub loss: f64,
    /// Fraction of images whose top-1 class is the label.
    pub accuracy: f64,
    /// Images seen.
    pub images: usize,
    /// Images this process went through in `seconds` (fewer than `images` in an epoch resumed
    /// from a checkpoint, whose earlier batches ran before the resume).
    pub timed_images: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
}

impl PassStats {
    /// Images per second, counting only the images this process timed.
    pub fn images_per_sec(&self) -> f64 {
        self.timed_images as f64 / self.seconds.max(1e-9)
    }
}

/// Running sums of a pass: what a checkpoint saves mid-epoch so the epoch's metrics come out
/// as if it had not been interrupted.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Tally {
    /// Sum over images of the cross-entropy.
    pub loss_sum: f64,
    /// Images classified correctly.
    pub correct: usize,
    /// Images seen.
    pub images: usize,
}

impl Tally {
    fn add(&mut self, graph: &Graph, logits: ganglion::autograd::Var, loss: f32, labels: &[usize]) {
        let value = graph.value(logits);
        let classes = value.shape()[1];
        for (row, &label) in value.data().chunks_exact(classes).zip(labels) {
            if argmax(row) == Some(label) {
                self.correct += 1;
            }
        }
        self.loss_sum += loss as f64 * labels.len() as f64;
        self.images += labels.len();
    }

    /// The pass's statistics, timed from `start`, when the tally held `before` (the batches
    /// a resumed epoch trained before this process).
    fn stats(&self, start: Instant, before: &Tally) -> PassStats {
        PassStats {
            loss: self.loss_sum / self.images.max(1) as f64,
            accuracy: self.correct as f64 / self.images.max(1) as f64,
            images: self.images,
            timed_images: self.images - before.images,
            seconds: start.elapsed().as_secs_f64(),
        }
    }
}

/// What one training epoch needs besides the model.
pub struct EpochPlan<'a> {
    /// The epoch number (0-based), which fixes the shuffle and augmentation.
    pub epoch: u64,
    /// Steps taken before this epoch (the schedule's position).
    pub first_step: u64,
    /// Label smoothing of the cross-entropy.
    pub label_smoothing: f32,
    /// The run's seed (dropout masks derive from it and the step).
    pub seed: u64,
    /// Progress bar label, e.g. `epoch 3/10`.
    pub label: &'a str,
    /// Whether to draw a progress bar.
    pub progress: bool,
    /// Batches of this epoch already trained before a resume (0 for a fresh epoch).
    pub first_batch: usize,
    /// The tallies of those batches.
    pub tally: Tally,
    /// Called after every step (writes checkpoints).
    pub after_step: &'a StepHook<'a>,
}

/// Where training stands after a step, for [`EpochPlan::after_step`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepPoint {
    /// The epoch (0-based).
    pub epoch: u64,
    /// Batches of the epoch done.
    pub batch: usize,
    /// Steps done since the start of training.
    pub step: u64,
    /// The epoch's tallies so far.
    pub tally: Tally,
}

/// A callback run after every training step with the model and optimizer as they stand.
pub type StepHook<'a> = dyn Fn(&StepPoint, &dyn Module, &dyn Optimizer) -> Result<()> + 'a;

/// Trains `model` for one epoch of `loader`, from batch `plan.first_batch` on.
///
/// # Errors
/// A [`Fault`] when the loss or a gradient is not finite (nothing is updated by that step);
/// the forward or backward pass's error; the step hook's error.
pub fn train_epoch(
    model: &dyn Module,
    graph: &mut Graph,
    optimizer: &mut dyn Optimizer,
    schedule: &dyn Schedule,
    loader: &BatchLoader,
    plan: &EpochPlan<'_>,
) -> Result<PassStats> {
    let bar = progress_bar(loader.num_batches() as u64, plan.label, plan.progress);
    let start = Instant::now();
    let mut tally = plan.tally;
    let mut batches = loader.epoch_from(plan.epoch, plan.first_batch);
    let mut batch_index = plan.first_batch;
    bar.set_position(batch_index as u64);
    let mut step = plan.first_step + batch_index as u64;
    let params = model.named_parameters();
    while let Some(batch) = batches.next() {
        let fault = |what: String, origin: Origin| Fault {
            at: At::Step {
                step,
                epoch: plan.epoch,
                batch: batch_index,
                lr: schedule.lr_at(step),
            },
            what,
            origin,
        };
        graph.reset();
        let dropout_seed = plan.seed ^ step.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        graph.set_seed(dropout_seed);
        let x = graph.input_from(batch.images.shape(), batch.images.data())?;
        let logits = model.forward(graph, x)?;
        let loss = graph.cross_entropy(logits, &batch.labels, plan.label_smoothing)?;
        let loss_value = graph.value(loss).data()[0];
        if !loss_value.is_finite() {
            bar.finish_and_clear();
            let origin = faults::locate_in_forward(model, dropout_seed, &batch.images)?;
            let what = format!("the loss is {}", faults::describe(loss_value));
            return Err(fault(what, origin).into());
        }
        graph
            .backward(loss)
            .with_context(|| format!("backward pass at step {step}"))?;
        if let Some((param, value)) = faults::non_finite_gradient(&params) {
            bar.finish_and_clear();
            let what = format!("a gradient holds {}", faults::describe(value));
            return Err(fault(what, Origin::Gradient { param }).into());
        }
        optimizer.set_lr(schedule.lr_at(step));
        optimizer.step();
        optimizer.zero_grad();
        tally.add(graph, logits, loss_value, &batch.labels);
        step += 1;
        batch_index += 1;
        let point = StepPoint {
            epoch: plan.epoch,
            batch: batch_index,
            step,
            tally,
        };
        (plan.after_step)(&point, model, &*optimizer)?;
        if tally.images > 0 {
            let s = tally.stats(start, &plan.tally);
            bar.set_message(format!(
                "loss {:.4}  acc {:.2}%  {:.0} img/s",
                s.loss,
                100.0 * s.accuracy,
                s.images_per_sec()
            ));
        }
        bar.inc(1);
        batches.recycle(batch);
    }
    bar.finish_and_clear();
    // The last update of the epoch is checked by no later forward pass: check its result
    // before the epoch's model is evaluated and saved.
    if step > plan.first_step
        && let Some((param, value)) = faults::non_finite_state(model)
    {
        return Err(Fault {
            at: At::Step {
                step: step - 1,
                epoch: plan.epoch,
                batch: batch_index - 1,
                lr: schedule.lr_at(step - 1),
            },
            what: format!("a weight became {}", faults::describe(value)),
            origin: Origin::Weight { param },
        }
        .into());
    }
    Ok(tally.stats(start, &plan.tally))
}

/// Evaluates `model` (in evaluation mode, recording nothing) over `loader`.
///
/// # Errors
/// A [`Fault`] naming the first layer whose output is not finite when a batch's loss is not;
/// the forward pass's error.
pub fn evaluate(model: &dyn Module, graph: &mut Graph, loader: &BatchLoader) -> Result<PassStats> {
    let start = Instant::now();
    let mut tally = Tally::default();
    let mut batches = loader.epoch(0);
    let mut index = 0;
    while let Some(batch) = batches.next() {
        graph.reset();
        let x = graph.input_from(batch.images.shape(), batch.images.data())?;
        let logits = model.forward(graph, x)?;
        let loss = graph.cross_entropy(logits, &batch.labels, 0.0)?;
        let loss_value = graph.value(loss).data()[0];
        if !loss_value.is_finite() {
            return Err(Fault {
                at: At::Test { batch: index },
                what: format!("the loss is {}", faults::describe(loss_value)),
                origin: faults::locate_in_forward(model, 0, &batch.images)?,
            }
            .into());
        }
        index += 1;
        tally.add(graph, logits, loss_value, &batch.labels);
        batches.recycle(batch);
    }
    Ok(tally.stats(start, &Tally::default()))
}

fn progress_bar(len: u64, label: &str, visible: bool) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    let style = ProgressStyle::with_template(
        "{prefix} [{bar:30.cyan/blue}] {pos}/{len} {msg} ({elapsed}<{eta})",
    )
    .map(|s| s.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_prefix(label.to_string());
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resumed_pass_times_only_its_own_images() {
        let before = Tally {
            loss_sum: 10.0,
            correct: 90,
            images: 100,
        };
        let after = Tally {
            loss_sum: 30.0,
            correct: 280,
            images: 300,
        };
        let s = after.stats(Instant::now(), &before);
        // Loss and accuracy cover the whole epoch; the throughput only this process's part.
        assert_eq!((s.images, s.timed_images), (300, 200));
        assert!((s.loss - 0.1).abs() < 1e-12 && (s.accuracy - 280.0 / 300.0).abs() < 1e-12);
        let timed = PassStats { seconds: 2.0, ..s };
        assert_eq!(timed.images_per_sec(), 100.0);
        let fresh = after.stats(Instant::now(), &Tally::default());
        assert_eq!(fresh.timed_images, 300);
    }
}
