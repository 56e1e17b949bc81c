//! Ganglion: convolutional neural networks on the CPU, in Rust.
//!
//! This facade re-exports the focused crates under one name; `use ganglion::prelude::*` brings
//! in what a training script needs. Each crate can also be used on its own:
//!
//! | module | crate | what it owns |
//! |---|---|---|
//! | [`tensor`] | `ganglion-tensor` | `Tensor` (f32, NCHW), seeded `Rng`, initialisations, elementwise ops |
//! | [`conv`] | `ganglion-im2col-conv` | 2-D convolution kernels, forward and backward |
//! | [`pooling`] | `ganglion-pooling` | max, average and global pooling kernels |
//! | [`autograd`] | `ganglion-autograd` | the reverse-mode tape (`Graph`, `Var`) and `Param` |
//! | [`optim`] | `ganglion-optim` | SGD, Adam, AdamW, schedules, gradient clipping |
//! | [`models`] | `ganglion-models` | `Module`, layers, the model zoo, safetensors I/O |
//! | [`data`] | `ganglion-data` | MNIST/IDX and CIFAR-10 readers, batching, augmentation |
//!
//! Architecture invariant: this crate holds no code of its own beyond re-exports.
//!
//! # Threads
//! The kernels split their work over the current [`rayon`] pool (re-exported here), and their
//! results do not depend on its size. Run a training loop on a worker of the pool, as
//! `ganglion train` does: `ganglion::rayon::scope(|_| train())`, or a pool's `install`. Called
//! from outside the pool, each parallel section of a kernel is handed to the pool while the
//! calling thread sleeps until it is done, two thread switches per section; a lenet5 training
//! step ran at half its speed that way.
//!
//! # Examples
//! A CNN in the lecture's shape, `input -> conv -> pool -> fully connected -> softmax`,
//! one training step with cross-entropy:
//! ```
//! use ganglion::prelude::*;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut rng = Rng::seed_from(0);
//! let model = Sequential::new()
//!     .push(Conv2d::new(1, 4, [3, 3], Conv2dParams::default(), true, &mut rng)?)
//!     .push(ReLU::new())
//!     .push(MaxPool2d::new(Pool2dParams::new([2, 2])))
//!     .push(Flatten::new())
//!     .push(Linear::new(4 * 3 * 3, 10, true, &mut rng));
//! let mut opt = Sgd::new(model.parameters(), SgdConfig { lr: 0.1, ..SgdConfig::default() })?;
//! let mut g = Graph::new();
//! let x = g.input(init::normal(&[2, 1, 8, 8], 0.0, 1.0, &mut rng));
//! let logits = model.forward(&mut g, x)?;
//! let loss = g.cross_entropy(logits, &[3, 7], 0.0)?;
//! g.backward(loss)?;
//! opt.step();
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use ganglion_autograd as autograd;
pub use ganglion_data as data;
pub use ganglion_im2col_conv as conv;
pub use ganglion_models as models;
pub use ganglion_optim as optim;
pub use ganglion_pooling as pooling;
pub use ganglion_tensor as tensor;
pub use rayon;

/// The names a training script needs.
pub mod prelude {
    pub use ganglion_autograd::{BatchNormMode, Graph, Param, Var};
    pub use ganglion_data::{
        Augment, Batch, BatchLoader, Dataset, LoaderConfig, Normalize, bundled_mnist_dir,
        load_cifar10, load_mnist,
    };
    pub use ganglion_im2col_conv::Conv2dParams;
    pub use ganglion_models::layers::{
        AvgPool2d, BasicBlock, BatchNorm2d, Conv2d, Dropout, Flatten, GlobalAvgPool2d, LeakyReLU,
        Linear, MaxPool2d, ReLU, Sequential, Sigmoid, Tanh,
    };
    pub use ganglion_models::{ModelMeta, Module, load, load_into, save};
    pub use ganglion_optim::{
        Adam, AdamConfig, AdamW, Cosine, OneCycle, Optimizer, Schedule, Sgd, SgdConfig, StepLr,
        clip_grad_norm,
    };
    pub use ganglion_pooling::Pool2dParams;
    pub use ganglion_tensor::{Rng, Tensor, TensorError, init};
}
