//! `ganglion-tensor`: the value type every other Ganglion crate computes on.
//!
//! A [`Tensor`] is an owned, contiguous, row-major buffer of `f32` with a shape. Images are
//! `[N, C, H, W]` (NCHW) and convolution weights `[Cout, Cin/groups, kH, kW]` (OIHW), exactly as
//! in PyTorch, so weights and test vectors move between the two unchanged.
//!
//! * Constructors check that the data length matches the shape and return [`TensorError`]
//!   otherwise; accessors on an already-built tensor never fail.
//! * [`Rng`] is a small seeded generator (xoshiro256++) whose output is fixed by this crate, not
//!   by a dependency's version, so a seed gives the same weights in every release.
//! * [`init`] holds PyTorch's initialisations (`kaiming_uniform_`, `xavier_normal_`, ...) with
//!   the same fan and gain conventions.
//! * [`ops`] holds the elementwise operations (in place and allocating) the layers need.
//! * [`Tensor::view`] / [`Tensor::from_array`] convert to and from `ndarray` without copying.
//!
//! Architecture invariant: a tensor's data is always contiguous and `data.len()` equals the
//! product of its shape; no strides, no views into other tensors.
//!
//! # Examples
//! ```
//! use ganglion_tensor::{Rng, Tensor, init};
//! let mut rng = Rng::seed_from(42);
//! let x = init::normal(&[1, 3, 4, 4], 0.0, 1.0, &mut rng);
//! let y = x.relu();
//! assert_eq!(y.shape(), &[1, 3, 4, 4]);
//! assert!(y.data().iter().all(|&v| v >= 0.0));
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
pub mod init;
mod interop;
pub mod ops;
mod rng;
mod tensor;

pub use error::TensorError;
pub use rng::Rng;
pub use tensor::{Tensor, numel};

// Compiles the README's example with the doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
