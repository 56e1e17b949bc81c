//! [`Flatten`]: `[n, ...] -> [n, rest]`, PyTorch's `nn.Flatten()`.

use crate::ModelError;
use crate::module::{Entry, Module};
use ganglion_autograd::{Graph, Var};

/// Flattens every dimension after the batch dimension.
#[derive(Debug, Clone)]
pub struct Flatten {
    training: bool,
}

impl Flatten {
    /// The layer.
    pub fn new() -> Self {
        Self { training: true }
    }
}

impl Default for Flatten {
    fn default() -> Self {
        Self::new()
    }
}

impl Module for Flatten {
    fn forward(&self, g: &mut Graph, x: Var) -> Result<Var, ModelError> {
        Ok(g.flatten(x)?)
    }

    fn visit<'a>(&'a self, _prefix: &str, _v: &mut dyn FnMut(&str, Entry<'a>)) {}

    fn set_training(&mut self, on: bool) {
        self.training = on;
    }

    fn is_training(&self) -> bool {
        self.training
    }

    fn kind(&self) -> &str {
        "Flatten"
    }

    fn describe(&self) -> String {
        "Flatten(start_dim=1, end_dim=-1)".to_string()
    }
}
