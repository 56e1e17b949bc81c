//! Numerical faults in training: finding where a NaN or an infinity first appeared (a layer's
//! output, the loss, a gradient) and reporting it with the step and a hint, so a diverging run
//! stops with a diagnosis instead of training on garbage.

use ganglion::autograd::{Graph, Param};
use ganglion::models::{Module, TraceEvent};
use ganglion::tensor::Tensor;
use std::fmt;

/// Where the first non-finite value was found.
#[derive(Debug, Clone, PartialEq)]
pub enum Origin {
    /// The output of a layer: its dotted name in the model (`conv2`, `layer1.0.bn1`) and type.
    Layer {
        /// Dotted name (empty for the model itself).
        name: String,
        /// Type name (`Conv2d`).
        kind: String,
    },
    /// Every layer's output was finite: the cross-entropy of the logits overflowed.
    Loss,
    /// The gradient of a parameter (`conv2.weight`).
    Gradient {
        /// The parameter's dotted name.
        param: String,
    },
    /// The value of a parameter or buffer after the update.
    Weight {
        /// The parameter's dotted name.
        param: String,
    },
}

/// `conv2` for `conv2.weight`.
fn layer_of(param: &str) -> &str {
    param.rsplit_once('.').map_or(param, |(layer, _)| layer)
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Layer { name, kind } if name.is_empty() => {
                write!(f, "the first non-finite output is the model's own ({kind})")
            }
            Origin::Layer { name, kind } => {
                write!(
                    f,
                    "the first layer whose output went non-finite is `{name}` ({kind})"
                )
            }
            Origin::Loss => write!(
                f,
                "every layer's output is finite, so the cross-entropy of the logits overflowed"
            ),
            Origin::Gradient { param } => write!(
                f,
                "the first parameter in model order with a non-finite gradient is `{param}` \
                 (layer `{}`)",
                layer_of(param)
            ),
            Origin::Weight { param } => write!(
                f,
                "the update left `{param}` (layer `{}`) non-finite",
                layer_of(param)
            ),
        }
    }
}

/// When a fault happened.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum At {
    /// During a training step.
    Step {
        /// The global step (0-based).
        step: u64,
        /// The epoch (0-based).
        epoch: u64,
        /// The batch of the epoch (0-based).
        batch: usize,
        /// The learning rate the schedule gives this step.
        lr: f32,
    },
    /// While evaluating on a test batch (0-based).
    Test {
        /// The batch.
        batch: usize,
    },
}

/// A NaN or infinity in the loss or the gradients of a training step, or in the loss of an
/// evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    /// When it happened.
    pub at: At,
    /// What went non-finite: `the loss is NaN`, `a gradient holds inf`.
    pub what: String,
    /// Where it first appeared.
    pub origin: Origin,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.at {
            At::Step {
                step,
                epoch,
                batch,
                lr,
            } => write!(
                f,
                "training stopped at step {step} (epoch {}, batch {}): {}; {}. Hint: the \
                 learning rate at this step was {}; a smaller --lr (or a warm-up with \
                 --warmup-epochs) usually keeps the weights finite",
                epoch + 1,
                batch + 1,
                self.what,
                self.origin,
                short_number(lr)
            ),
            At::Test { batch } => write!(
                f,
                "evaluation stopped at test batch {}: {}; {}. Hint: the weights are finite \
                 but so large that the forward pass overflows, as after training with too \
                 large a learning rate (--lr)",
                batch + 1,
                self.what,
                self.origin
            ),
        }
    }
}

impl std::error::Error for Fault {}

/// `0.003` as typed, but `1e30` rather than thirty-one digits.
fn short_number(v: f32) -> String {
    if v != 0.0 && !(1e-4..1e6).contains(&v.abs()) {
        format!("{v:e}")
    } else {
        v.to_string()
    }
}

/// Whether every value is finite. Branch-free (`0 * v` is ±0 for finite values, NaN for an
/// infinity or a NaN) so it vectorises: it runs on every gradient of every step.
pub fn all_finite(values: &[f32]) -> bool {
    // Eight independent sums, so the additions need not wait on each other.
    let mut lanes = [0.0f32; 8];
    let chunks = values.chunks_exact(8);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane += 0.0 * v;
        }
    }
    let tail = rest.iter().fold(0.0f32, |acc, &v| acc + 0.0 * v);
    lanes.iter().sum::<f32>() + tail == 0.0
}

/// The first non-finite value of `values`, if any.
pub fn first_non_finite(values: &[f32]) -> Option<f32> {
    values.iter().copied().find(|v| !v.is_finite())
}

/// `NaN`, `inf` or `-inf`.
pub fn describe(value: f32) -> &'static str {
    if value.is_nan() {
        "NaN"
    } else if value > 0.0 {
        "inf"
    } else {
        "-inf"
    }
}

/// The first parameter (in `params`' order) whose gradient is not finite, with the first such
/// value.
pub fn non_finite_gradient(params: &[(String, Param)]) -> Option<(String, f32)> {
    params.iter().find_map(|(name, p)| {
        let data = p.read();
        if all_finite(data.grad.data()) {
            None
        } else {
            first_non_finite(data.grad.data()).map(|v| (name.clone(), v))
        }
    })
}

/// The first parameter or buffer of `model` whose value is not finite, with the value.
pub fn non_finite_state(model: &dyn Module) -> Option<(String, f32)> {
    model
        .named_parameters()
        .into_iter()
        .chain(model.named_buffers())
        .find_map(|(name, p)| first_non_finite(p.read().value.data()).map(|v| (name, v)))
}

/// Runs `model` again on `images` with dropout seeded by `seed` (as the training step was) and
/// reports the first layer whose output holds a NaN or an infinity, or [`Origin::Loss`] when
/// none does. Containers report after their children, so the first hit is the innermost
/// layer that produced it. In training mode batch normalisation updates its running
/// statistics once more: call it only on a run that is stopping.
///
/// # Errors
/// The forward pass's error (it cannot fail on a batch the training step already ran).
pub fn locate_in_forward(
    model: &dyn Module,
    seed: u64,
    images: &Tensor,
) -> Result<Origin, ganglion::models::ModelError> {
    let mut graph = Graph::inference();
    graph.set_seed(seed);
    let x = graph.input_from(images.shape(), images.data())?;
    let mut found: Option<Origin> = None;
    let mut record = |event: TraceEvent<'_>| {
        if found.is_none() && !all_finite(event.value.data()) {
            found = Some(Origin::Layer {
                name: event.name.to_string(),
                kind: event.kind.to_string(),
            });
        }
    };
    model.forward_traced(&mut graph, x, "", &mut record)?;
    Ok(found.unwrap_or(Origin::Loss))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ganglion::models::lenet5;
    use ganglion::tensor::Rng;

    #[test]
    fn finiteness_checks() {
        assert!(all_finite(&[0.0, -1.5, f32::MAX, f32::MIN_POSITIVE]));
        assert!(!all_finite(&[0.0, f32::INFINITY]));
        assert!(!all_finite(&[f32::NAN, 1.0]));
        assert!(!all_finite(&[f32::NEG_INFINITY]));
        // Past the eight lanes and in the remainder alike.
        for at in [0, 7, 8, 15, 16, 20] {
            let mut v = vec![1.0f32; 21];
            v[at] = f32::INFINITY;
            assert!(!all_finite(&v), "{at}");
            v[at] = f32::NAN;
            assert!(!all_finite(&v), "{at}");
        }
        assert!(all_finite(&[-3.0; 21]));
        assert_eq!(
            first_non_finite(&[1.0, f32::NEG_INFINITY, f32::NAN]),
            Some(f32::NEG_INFINITY)
        );
        assert_eq!(describe(f32::NAN), "NaN");
        assert_eq!(describe(f32::NEG_INFINITY), "-inf");
    }

    #[test]
    fn a_poisoned_weight_is_traced_to_its_layer() {
        let model = lenet5(&mut Rng::seed_from(1));
        let images = Tensor::zeros(&[2, 1, 28, 28]);
        assert_eq!(locate_in_forward(&model, 0, &images).unwrap(), Origin::Loss);
        assert_eq!(non_finite_state(&model), None);

        let (name, param) = model
            .named_parameters()
            .into_iter()
            .find(|(n, _)| n.ends_with(".bias") && !n.starts_with("conv1"))
            .unwrap();
        let layer = name.trim_end_matches(".bias").to_string();
        param.write().value.data_mut()[0] = f32::INFINITY;
        match locate_in_forward(&model, 0, &images).unwrap() {
            Origin::Layer { name, .. } => assert_eq!(name, layer),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            non_finite_state(&model),
            Some((name.clone(), f32::INFINITY))
        );

        param.write().grad.data_mut()[0] = f32::NAN;
        let named = model.named_parameters();
        let (grad_name, v) = non_finite_gradient(&named).unwrap();
        assert_eq!(grad_name, name);
        assert!(v.is_nan());
        let text = Origin::Gradient { param: name }.to_string();
        assert!(text.contains(&format!("layer `{layer}`")), "{text}");
    }

    #[test]
    fn the_message_names_step_layer_and_learning_rate() {
        let fault = Fault {
            at: At::Step {
                step: 41,
                epoch: 1,
                batch: 9,
                lr: 1e30,
            },
            what: "the loss is NaN".into(),
            origin: Origin::Layer {
                name: "conv2".into(),
                kind: "Conv2d".into(),
            },
        };
        let text = fault.to_string();
        for want in [
            "step 41",
            "epoch 2, batch 10",
            "`conv2` (Conv2d)",
            "was 1e30;",
            "--lr",
        ] {
            assert!(text.contains(want), "{want}: {text}");
        }
    }
}
