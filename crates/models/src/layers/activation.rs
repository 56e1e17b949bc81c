//! Elementwise activations: [`ReLU`], [`LeakyReLU`], [`Sigmoid`], [`Tanh`] (no parameters).

use crate::ModelError;
use crate::module::{Entry, Module};
use ganglion_autograd::{Graph, Var};

/// Implements [`Module`] for a parameterless elementwise layer whose only state is the mode.
macro_rules! activation_module {
    ($ty:ident, $kind:literal, |$s:ident, $g:ident, $x:ident| $body:expr, |$d:ident| $describe:expr) => {
        impl Module for $ty {
            fn forward(&self, $g: &mut Graph, $x: Var) -> Result<Var, ModelError> {
                let $s = self;
                Ok($body?)
            }

            fn visit<'a>(&'a self, _prefix: &str, _v: &mut dyn FnMut(&str, Entry<'a>)) {}

            fn set_training(&mut self, on: bool) {
                self.training = on;
            }

            fn is_training(&self) -> bool {
                self.training
            }

            fn kind(&self) -> &str {
                $kind
            }

            fn describe(&self) -> String {
                let $d = self;
                $describe
            }
        }
    };
}

/// `max(x, 0)`, out of place or, like PyTorch's `nn.ReLU(inplace=True)`, over its input's
/// buffer.
#[derive(Debug, Clone)]
pub struct ReLU {
    inplace: bool,
    training: bool,
}

impl ReLU {
    /// The layer, writing a fresh output.
    pub fn new() -> Self {
        Self {
            inplace: false,
            training: true,
        }
    }

    /// The layer writing its output over its input ([`Graph::relu_inplace`]): one activation
    /// less to keep per layer, with the same values and gradients. The input's value can no
    /// longer be read after it. Where a recorded backward rule still needs that value (a
    /// sigmoid's output, a convolution's input), the layer works out of place; after a batch
    /// norm or an addition, whose rules do not read their outputs, it works in place.
    pub fn inplace() -> Self {
        Self {
            inplace: true,
            training: true,
        }
    }

    /// Whether the layer writes over its input.
    pub fn is_inplace(&self) -> bool {
        self.inplace
    }
}

impl Default for ReLU {
    fn default() -> Self {
        Self::new()
    }
}

activation_module!(
    ReLU,
    "ReLU",
    |s, g, x| if s.inplace {
        g.relu_inplace(x)
    } else {
        g.relu(x)
    },
    |d| if d.inplace {
        "ReLU(inplace=True)".to_string()
    } else {
        "ReLU()".to_string()
    }
);

/// `x` for `x >= 0`, `slope * x` below.
#[derive(Debug, Clone)]
pub struct LeakyReLU {
    negative_slope: f32,
    training: bool,
}

impl LeakyReLU {
    /// The layer with the given negative slope (PyTorch's default is 0.01).
    pub fn new(negative_slope: f32) -> Self {
        Self {
            negative_slope,
            training: true,
        }
    }

    /// The slope below zero.
    pub fn negative_slope(&self) -> f32 {
        self.negative_slope
    }
}

activation_module!(
    LeakyReLU,
    "LeakyReLU",
    |s, g, x| g.leaky_relu(x, s.negative_slope),
    |d| format!("LeakyReLU(negative_slope={})", d.negative_slope)
);

/// `1 / (1 + exp(-x))`.
#[derive(Debug, Clone)]
pub struct Sigmoid {
    training: bool,
}

impl Sigmoid {
    /// The layer.
    pub fn new() -> Self {
        Self { training: true }
    }
}

impl Default for Sigmoid {
    fn default() -> Self {
        Self::new()
    }
}

activation_module!(Sigmoid, "Sigmoid", |_s, g, x| g.sigmoid(x), |_d| {
    "Sigmoid()".to_string()
});

/// `tanh(x)`.
#[derive(Debug, Clone)]
pub struct Tanh {
    training: bool,
}

impl Tanh {
    /// The layer.
    pub fn new() -> Self {
        Self { training: true }
    }
}

impl Default for Tanh {
    fn default() -> Self {
        Self::new()
    }
}

activation_module!(Tanh, "Tanh", |_s, g, x| g.tanh(x), |_d| "Tanh()"
    .to_string());
