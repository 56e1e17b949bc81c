//! [`Dropout`]: inverted dropout, active only in training mode, drawing from the graph's
//! generator.

use crate::ModelError;
use crate::module::{Entry, Module};
use ganglion_autograd::{Graph, Var};

/// Zeroes each element with probability `p` and scales the rest by `1 / (1 - p)` in training
/// mode; the identity in evaluation mode (PyTorch's `nn.Dropout`).
///
/// The mask comes from the graph's generator ([`Graph::set_seed`]), so a seeded graph drops
/// the same elements on every run.
#[derive(Debug, Clone)]
pub struct Dropout {
    p: f32,
    training: bool,
}

impl Dropout {
    /// Dropout with probability `p`.
    ///
    /// # Errors
    /// [`ModelError::Config`] unless `0 <= p < 1`.
    pub fn new(p: f32) -> Result<Self, ModelError> {
        if !(0.0..1.0).contains(&p) {
            return Err(ModelError::Config {
                layer: "Dropout",
                reason: format!("probability must be in [0, 1), got {p}"),
            });
        }
        Ok(Self { p, training: true })
    }

    /// The drop probability.
    pub fn p(&self) -> f32 {
        self.p
    }
}

impl Module for Dropout {
    fn forward(&self, g: &mut Graph, x: Var) -> Result<Var, ModelError> {
        if self.training && self.p > 0.0 {
            Ok(g.dropout(x, self.p)?)
        } else {
            Ok(x)
        }
    }

    fn visit<'a>(&'a self, _prefix: &str, _v: &mut dyn FnMut(&str, Entry<'a>)) {}

    fn set_training(&mut self, on: bool) {
        self.training = on;
    }

    fn is_training(&self) -> bool {
        self.training
    }

    fn kind(&self) -> &str {
        "Dropout"
    }

    fn describe(&self) -> String {
        format!("Dropout(p={})", self.p)
    }
}
