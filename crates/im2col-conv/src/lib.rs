//! `ganglion-im2col-conv`: 2-D convolution forward, backward-data and backward-weight over
//! NCHW `f32` activations and OIHW weights, with PyTorch's semantics.
//!
//! Contract:
//! * Input `[n, cin, h, w]`, weight `[cout, cin/groups, kh, kw]`, bias `[cout]`, output
//!   `[n, cout, out_h, out_w]`, all contiguous row-major `f32`; per-axis kernel size, stride,
//!   zero padding and dilation, and `groups` (depthwise included), exactly as
//!   `torch.nn.functional.conv2d`. Gradients are those of `L = sum(output * grad_output)`.
//! * [`Conv2dShape::new`] validates a geometry and returns [`ConvError`] naming the shapes;
//!   the kernels ([`conv2d_forward`], [`conv2d_backward_data`], [`conv2d_backward_weight`]) take
//!   a validated shape and slices, overwrite their outputs, and panic only when a slice length
//!   disagrees with the shape.
//! * Scratch comes from a caller-kept [`ConvWorkspace`] that only grows: no allocation of our
//!   own once warm.
//! * Work runs on the current rayon pool, and results are bit-identical whatever its thread
//!   count: every sum runs in an order fixed by the shape alone.
//! * [`reference`](mod@reference) is the direct seven-loop convolution, generic over `f32` and
//!   `f64`: the oracle the fast path is tested against.
//!
//! Key design decision: im2col + GEMM. Per image, pixel tile and group,
//! `Y_g = W_g x col_g` (forward), `col_g = W_g^T x dY_g` then col2im (backward-data), and
//! `dW_g += dY_g x col_g^T` (backward-weight); 1x1 stride-1 unpadded convolutions use the input
//! itself as the column matrix. All GEMMs go through one module (`gemm`), the place where a
//! packed micro-kernel replaces `matrixmultiply::sgemm`.
//!
//! Architecture invariant: only the `gemm` module contains `unsafe`; everything else indexes
//! slices.
//!
//! # Examples
//! ```
//! use ganglion_im2col_conv::{
//!     Conv2dParams, Conv2dShape, ConvWorkspace, conv2d, conv2d_backward_weight, conv2d_forward,
//! };
//! use ganglion_tensor::Tensor;
//!
//! // Tensor level: validates and allocates.
//! let x = Tensor::from_fn(&[2, 4, 8, 8], |i| (i % 7) as f32 - 3.0);
//! let w = Tensor::from_fn(&[6, 2, 3, 3], |i| (i % 5) as f32 * 0.1);
//! let params = Conv2dParams::default().with_padding(1).with_groups(2);
//! let y = conv2d(&x, &w, None, params)?;
//! assert_eq!(y.shape(), &[2, 6, 8, 8]);
//!
//! // Slice level: a validated shape and a reused workspace, as a training loop would.
//! let shape = Conv2dShape::new([2, 4, 8, 8], [6, 2, 3, 3], params)?;
//! let mut ws = ConvWorkspace::new();
//! let mut out = vec![0.0; shape.output_len()];
//! conv2d_forward(&shape, x.data(), w.data(), None, &mut out, &mut ws);
//! assert_eq!(out, y.data());
//! let mut grad_w = vec![0.0; shape.weight_len()];
//! let mut grad_b = vec![0.0; shape.cout];
//! let ones = vec![1.0; shape.output_len()];
//! conv2d_backward_weight(&shape, x.data(), &ones, &mut grad_w, Some(&mut grad_b), &mut ws);
//! assert_eq!(grad_b, vec![128.0; 6]); // 2 images x 8 x 8 output pixels
//! # Ok::<(), ganglion_im2col_conv::ConvError>(())
//! ```
#![deny(missing_docs)]
#![deny(unsafe_code)]

mod backward_data;
mod backward_weight;
mod error;
mod forward;
mod gemm;
mod im2col;
pub mod kernels;
mod params;
mod plan;
pub mod reference;
mod tensor_api;
mod workspace;

pub use backward_data::conv2d_backward_data;
pub use backward_weight::conv2d_backward_weight;
pub use error::ConvError;
pub use forward::conv2d_forward;
pub use kernels::{Isa, isa_name, with_isa};
pub use params::{Conv2dParams, Conv2dShape};
pub use tensor_api::{Conv2dGrads, conv2d, conv2d_backward};
pub use workspace::ConvWorkspace;

#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
