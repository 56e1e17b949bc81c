//! Ganglion: convolutional neural networks on the CPU, in Rust.
//!
//! This facade re-exports the focused crates under one name; `use ganglion::prelude::*` brings
//! in what a training script needs.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use ganglion_autograd as autograd;
pub use ganglion_data as data;
pub use ganglion_im2col_conv as conv;
pub use ganglion_models as models;
pub use ganglion_optim as optim;
pub use ganglion_pooling as pooling;
pub use ganglion_tensor as tensor;

/// The names a training script needs.
pub mod prelude {
    pub use ganglion_tensor::{Rng, Tensor, TensorError, init};
}
