//! `ganglion-pooling`: 2-D max, average and global average pooling, forward and backward.
//!
//! Contract:
//!
//! * Layout NCHW, row-major `f32`, exactly PyTorch's semantics (`max_pool2d`, `avg_pool2d` with
//!   `count_include_pad` true or false, `ceil_mode`, `adaptive_avg_pool2d(x, 1)`), dilation 1.
//! * Geometry is validated once by [`Pool2dShape::new`] with PyTorch's rules: non-zero kernel
//!   and stride, `padding <= kernel / 2` per axis, and the output size
//!   `floor((in + 2p - k + (ceil ? s - 1 : 0)) / s) + 1`, less one when `ceil_mode` would start
//!   the last window inside the right padding.
//! * Slice kernels ([`max_pool2d_forward`], [`avg_pool2d_backward`], ...) overwrite their
//!   outputs and panic only when a slice length disagrees with the shape. The tensor-level
//!   functions ([`max_pool2d`], [`avg_pool2d`], [`global_avg_pool2d`] and their `_grad`
//!   twins) validate, allocate and return a [`PoolError`] instead.
//! * Max pooling records, per output, the offset `ih * w + iw` of its maximum inside the
//!   `(n, c)` input plane; padded positions never win, ties go to the first element in
//!   row-major window order and NaN propagates. The backward scatter-adds to those offsets.
//! * [`mod@reference`] holds slow, obvious loops generic over `f32` / `f64`: the test oracle.
//!
//! Architecture invariant: every kernel splits work by whole `(n, c)` planes (over rayon once
//! the input is large enough), each plane owned by one task, so results are bit-identical for
//! any thread count.
//!
//! # Examples
//! ```
//! use ganglion_pooling::{Pool2dParams, Pool2dShape, max_pool2d, max_pool2d_grad};
//! use ganglion_tensor::Tensor;
//! let x = Tensor::from_fn(&[1, 1, 4, 4], |i| i as f32);
//! let (y, argmax) = max_pool2d(&x, Pool2dParams::new([2, 2]))?;
//! assert_eq!(y.data(), &[5.0, 7.0, 13.0, 15.0]);
//! assert_eq!(argmax, [5, 7, 13, 15]);
//! let shape = Pool2dShape::new([1, 1, 4, 4], Pool2dParams::new([2, 2]))?;
//! let dx = max_pool2d_grad(&shape, &Tensor::ones(&[1, 1, 2, 2]), &argmax)?;
//! assert_eq!(dx.data().iter().sum::<f32>(), 4.0);
//! # Ok::<(), ganglion_pooling::PoolError>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod avg;
mod error;
mod global;
mod max;
mod params;
mod planes;
pub mod reference;
mod tensor_api;

pub use avg::{avg_pool2d_backward, avg_pool2d_forward};
pub use error::PoolError;
pub use global::{global_avg_pool2d_backward, global_avg_pool2d_forward};
pub use max::{max_pool2d_backward, max_pool2d_forward};
pub use params::{Pool2dParams, Pool2dShape};
pub use tensor_api::{
    avg_pool2d, avg_pool2d_grad, global_avg_pool2d, global_avg_pool2d_grad, max_pool2d,
    max_pool2d_grad,
};

#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
