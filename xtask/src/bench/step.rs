//! One training step exactly as `ganglion train` takes it (`crates/cli/src/trainer.rs`), on a
//! fixed random batch so the data loader is not measured.

use anyhow::{Context, Result};
use ganglion::autograd::Graph;
use ganglion::models::{Module, by_name};
use ganglion::optim::{Optimizer, Sgd, SgdConfig};
use ganglion::tensor::{Rng, init};

/// The learning rate and momentum every measured step uses.
pub const SGD: SgdConfig = SgdConfig {
    lr: 0.01,
    momentum: 0.9,
    dampening: 0.0,
    weight_decay: 0.0,
    nesterov: false,
};

/// A zoo model in training mode, its optimizer, one graph reused across steps and a batch.
pub struct Trainer {
    model: Box<dyn Module>,
    graph: Graph,
    optimizer: Sgd,
    shape: Vec<usize>,
    images: Vec<f32>,
    labels: Vec<usize>,
    step: u64,
}

impl Trainer {
    /// The zoo model `name` with fresh weights and a batch of `batch` random images (standard
    /// normal values) and uniformly random labels; everything is drawn from `seed`.
    ///
    /// # Errors
    /// When `name` is not a zoo model, the batch is empty, or the optimizer rejects the model's
    /// parameters.
    pub fn new(name: &str, batch: usize, seed: u64) -> Result<Trainer> {
        anyhow::ensure!(batch > 0, "bench: batch size must be positive");
        let mut rng = Rng::seed_from(seed);
        let mut model = by_name(name, &mut rng).with_context(|| format!("bench: model {name}"))?;
        model.set_training(true);
        let item = model
            .input_shape()
            .with_context(|| format!("bench: model {name} declares no input shape"))?;
        let classes = model
            .num_classes()
            .with_context(|| format!("bench: model {name} declares no class count"))?;
        let mut shape = vec![batch];
        shape.extend_from_slice(item);
        let images = init::normal(&shape, 0.0, 1.0, &mut rng).data().to_vec();
        let labels = (0..batch).map(|_| rng.below(classes)).collect();
        let optimizer = Sgd::new(model.parameters(), SGD)?;
        Ok(Trainer {
            model,
            graph: Graph::new(),
            optimizer,
            shape,
            images,
            labels,
            step: 0,
        })
    }

    /// One step: forward, cross-entropy, backward, SGD update, zeroed gradients. Returns the
    /// loss.
    ///
    /// # Errors
    /// When an op rejects a shape (not for zoo models at their declared input shape) or the
    /// loss is not finite.
    pub fn step(&mut self) -> Result<f32> {
        let g = &mut self.graph;
        g.reset();
        // Dropout masks differ per step, as in `ganglion train`.
        g.set_seed(self.step.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let x = g.input_from(&self.shape, &self.images)?;
        let logits = self.model.forward(g, x)?;
        let loss = g.cross_entropy(logits, &self.labels, 0.0)?;
        let value = g.value(loss).data()[0];
        anyhow::ensure!(
            value.is_finite(),
            "bench: the loss became {value} at step {}",
            self.step
        );
        g.backward(loss)?;
        self.optimizer.step();
        self.optimizer.zero_grad();
        self.step += 1;
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_train_and_reject_unknown_models() {
        let mut t = Trainer::new("lenet5", 4, 1).unwrap();
        let first = t.step().unwrap();
        for _ in 0..5 {
            t.step().unwrap();
        }
        // The same batch six times: the loss has to come down.
        let later = t.step().unwrap();
        assert!(later < first, "{later} !< {first}");
        assert!(Trainer::new("nonet", 4, 1).is_err());
        assert!(Trainer::new("lenet5", 0, 1).is_err());
    }
}
