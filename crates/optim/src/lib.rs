//! `ganglion-optim`: optimizers ([`Sgd`], [`Adam`], [`AdamW`]), learning-rate schedules and
//! gradient clipping over [`ganglion_autograd::Param`] handles, with PyTorch's update rules.
//!
//! * An optimizer is built from the parameter handles it will update
//!   (`Sgd::new(model.params(), config)`, like `torch.optim.SGD(model.parameters(), ...)`) and
//!   validates its hyper-parameters there, returning [`OptimError`].
//! * [`Optimizer::step`] reads each parameter's `grad` and updates its `value` in place;
//!   parameters with `requires_grad == false` (buffers, frozen layers) are skipped.
//!   Per-parameter buffers (momentum, Adam's moments) are allocated at a parameter's first
//!   update and reused, so steps do not allocate.
//! * [`Optimizer::state`] / [`Optimizer::load_state`] export and restore everything that
//!   influences later updates; a run resumed from a state produces bit-identical parameters.
//! * [`Schedule`]s are pure functions `lr_at(step)`, so resuming needs only the step count; the
//!   caller decides whether a step is an epoch or an iteration.
//! * [`clip_grad_norm`] is `torch.nn.utils.clip_grad_norm_` with an `f64`, fixed-order norm.
//!
//! Architecture invariant: the optimizers never walk the autograd graph; they see only
//! `Param` handles, whose `grad` the backward pass has already filled.
//!
//! # Examples
//! One SGD step on a single parameter with a hand-set gradient:
//! ```
//! use ganglion_autograd::Param;
//! use ganglion_optim::{Optimizer, Sgd, SgdConfig};
//! use ganglion_tensor::Tensor;
//!
//! let w = Param::new(Tensor::new(&[2], vec![1.0, -2.0])?);
//! w.write().grad.data_mut().copy_from_slice(&[0.5, 0.25]);
//! let mut opt = Sgd::new(vec![w.clone()], SgdConfig { lr: 0.5, ..SgdConfig::default() })?;
//! opt.step();
//! // p - lr * g = [1 - 0.25, -2 - 0.125]
//! assert_eq!(w.value().data(), &[0.75, -2.125]);
//! opt.zero_grad();
//! assert_eq!(w.grad().data(), &[0.0, 0.0]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod adam;
mod clip;
mod error;
mod optimizer;
mod schedule;
mod sgd;

pub use adam::{Adam, AdamConfig, AdamW};
pub use clip::clip_grad_norm;
pub use error::OptimError;
pub use optimizer::{Optimizer, OptimizerState};
pub use schedule::{Constant, Cosine, LinearWarmup, OneCycle, Schedule, StepLr};
pub use sgd::{Sgd, SgdConfig};

/// Compiles and runs the README's example as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctest;
