//! The training and evaluation loops shared by `train` and `eval`.
//!
//! One [`Graph`] lives for the whole run and is `reset()` every step, so its buffers and
//! kernel workspaces are reused and a steady-state step allocates (almost) nothing.

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
    /// Wall-clock seconds.
    pub seconds: f64,
}

impl PassStats {
    /// Images per second.
    pub fn images_per_sec(&self) -> f64 {
        self.images as f64 / self.seconds.max(1e-9)
    }
}

#[derive(Default)]
struct Tally {
    loss_sum: f64,
    correct: usize,
    images: usize,
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

    fn stats(&self, start: Instant) -> PassStats {
        PassStats {
            loss: self.loss_sum / self.images.max(1) as f64,
            accuracy: self.correct as f64 / self.images.max(1) as f64,
            images: self.images,
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
}

/// Trains `model` for one epoch of `loader`.
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
    let mut tally = Tally::default();
    let mut batches = loader.epoch(plan.epoch);
    let mut step = plan.first_step;
    while let Some(batch) = batches.next() {
        graph.reset();
        graph.set_seed(plan.seed ^ step.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let x = graph.input_from(batch.images.shape(), batch.images.data())?;
        let logits = model.forward(graph, x)?;
        let loss = graph.cross_entropy(logits, &batch.labels, plan.label_smoothing)?;
        let loss_value = graph.value(loss).data()[0];
        if !loss_value.is_finite() {
            anyhow::bail!(
                "the loss became {loss_value} at step {step} (epoch {}); \
                 try a smaller learning rate (--lr)",
                plan.epoch + 1
            );
        }
        graph
            .backward(loss)
            .with_context(|| format!("backward pass at step {step}"))?;
        optimizer.set_lr(schedule.lr_at(step));
        optimizer.step();
        optimizer.zero_grad();
        tally.add(graph, logits, loss_value, &batch.labels);
        step += 1;
        if tally.images > 0 {
            let s = tally.stats(start);
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
    Ok(tally.stats(start))
}

/// Evaluates `model` (in evaluation mode, recording nothing) over `loader`.
pub fn evaluate(model: &dyn Module, graph: &mut Graph, loader: &BatchLoader) -> Result<PassStats> {
    let start = Instant::now();
    let mut tally = Tally::default();
    let mut batches = loader.epoch(0);
    while let Some(batch) = batches.next() {
        graph.reset();
        let x = graph.input_from(batch.images.shape(), batch.images.data())?;
        let logits = model.forward(graph, x)?;
        let loss = graph.cross_entropy(logits, &batch.labels, 0.0)?;
        let loss_value = graph.value(loss).data()[0];
        tally.add(graph, logits, loss_value, &batch.labels);
        batches.recycle(batch);
    }
    Ok(tally.stats(start))
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
