//! `ganglion-models`: the [`Module`] trait, the layers, the model zoo and safetensors
//! save/load with PyTorch's state-dict names.
//!
//! Contract:
//!
//! * A [`Module`] runs its forward pass on a [`ganglion_autograd::Graph`]: activations are
//!   NCHW `f32`, convolution weights OIHW, linear weights `[out, in]`, exactly as in PyTorch.
//! * Every module names its state as PyTorch's `state_dict` does (`conv1.weight`,
//!   `layer1.0.bn1.running_mean`, `layer1.0.bn1.num_batches_tracked`), so files move between
//!   the two unchanged: [`save`] writes `F32` tensors and `I64` scalar counters with
//!   `format: pt` metadata, [`load_into`] reads a PyTorch `safetensors.torch.save_file` of the
//!   same architecture and reports every mismatching tensor by name.
//! * Modules start in training mode (dropout active, batch normalisation on batch statistics);
//!   [`Module::set_training`]`(false)` switches to evaluation, as `model.eval()` does.
//! * Layers initialise as PyTorch's defaults do, from a caller's [`ganglion_tensor::Rng`], so
//!   a seed gives the same model everywhere.
//!
//! Architecture invariant: modules hold their state in shared [`ganglion_autograd::Param`]
//! handles and never compute themselves; every number comes from a graph operation, so a
//! model is `Send + Sync` and runs on any graph, recording or not.
//!
//! # Examples
//! ```
//! use ganglion_autograd::Graph;
//! use ganglion_models::{Module, lenet5};
//! use ganglion_tensor::{Rng, Tensor};
//!
//! # fn main() -> Result<(), ganglion_models::ModelError> {
//! let mut rng = Rng::seed_from(0);
//! let mut model = lenet5(&mut rng);
//! assert_eq!(model.num_parameters(), 61_706);
//! model.set_training(false);
//!
//! let mut g = Graph::inference();
//! let x = g.input(Tensor::zeros(&[2, 1, 28, 28]));
//! let logits = model.forward(&mut g, x)?;
//! assert_eq!(g.shape(logits), &[2, 10]);
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
mod io;
pub mod layers;
mod meta;
mod module;
pub mod summary;
mod trace;
pub mod zoo;

pub use error::{Mismatch, Mismatches, ModelError};
pub use io::{load, load_from_bytes, load_into, read_meta, save, sorted_header, to_bytes};
pub use meta::{
    KEY_ARCHITECTURE, KEY_CLASSES, KEY_FORMAT, KEY_INPUT_SHAPE, KEY_NORMALIZE_MEAN,
    KEY_NORMALIZE_STD, ModelMeta,
};
pub use module::{Entry, Module, join};
pub use summary::{Footprint, Geometry, LayerSummary, Summary};
pub use trace::{Recorder, TraceEvent};
pub use zoo::{
    Network, ZOO, allconv, allconv_with, by_name, lenet5, mnistnet, network_by_name, resnet20,
};

/// The README's example, compiled and run as a doctest so it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctest;
