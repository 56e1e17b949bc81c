//! The layers: each owns its [`ganglion_autograd::Param`]s, initialised as PyTorch does.

mod activation;
mod conv;
mod dropout;
mod flatten;
mod linear;
mod norm;
mod pool;
mod residual;
mod sequential;

pub use activation::{LeakyReLU, ReLU, Sigmoid, Tanh};
pub use conv::Conv2d;
pub use dropout::Dropout;
pub use flatten::Flatten;
pub use linear::Linear;
pub use norm::BatchNorm2d;
pub use pool::{AvgPool2d, GlobalAvgPool2d, MaxPool2d};
pub use residual::{BasicBlock, Shortcut};
pub use sequential::Sequential;
