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
//! Key design decision: convolution as GEMM on our own packed, register-tiled micro-kernels
//! (see [`kernels`]), with the packing shaped by the convolution, and direct kernels where
//! the shape lets them skip packing altogether. Each pass picks its route per shape:
//! * forward:
//!   - by FFT, for small images (padded to at most 16 x 16) and kernels of 5 x 5 or more
//!     where the direct convolution would cost clearly more (`lenet.c2`): 16 x 16 spectra
//!     of a group of images, one image per vector lane, products summed over the input
//!     channels, inverse transforms;
//!   - by Winograd's `F(2, 3)` along the columns, at AVX-512, for 3 x 3 kernels on 2 to 8
//!     input channels, stride and dilation 1, rows at least 16 wide (`cifar.stem`): pairs of
//!     output rows from four transformed input rows, two thirds of the direct kernel's
//!     multiply-adds;
//!   - the direct row kernel (vectorised over the output width, `NR` outputs at a time, a
//!     block of output channels and all their rows per call) when
//!     the output rows fill its vectors exactly (a multiple of `NR` wide, or `NR / 2` wide
//!     and taken two rows at a time), or when there are few input channels
//!     (`cin * kh * kw <= 75`, rows at least 16 wide), stride and dilation 1; with few
//!     channels, rows that would leave lanes empty, and kernels at most 3 wide, it reads
//!     `kw` shifted copies of the input and runs over whole planes instead of rows;
//!   - otherwise, for deep layers (`cin * kh * kw >= 76`, one group), the broadcast kernel:
//!     vectorised over output channels, one input value broadcast per output pixel, so rows
//!     of any width and any stride or dilation fill the vectors;
//!   - otherwise an implicit GEMM, `Y_g = W_g x col_g`: `W_g` is packed once per call and the
//!     column panels are packed straight from the input, `NR` output pixels wide, in the
//!     layout the micro-kernel reads (no whole im2col matrix); the bias seeds the output
//!     tile;
//! * backward-data: for stride 1, small images, 6 to 18 input channels and kernels that
//!   reach far past the gradient's edge (or rows at most 10 wide), a gather with a group of
//!   images in the vector lanes, which multiplies no padding; otherwise, for stride 1 with
//!   enough input channels (64, or 16 where the result
//!   runs on a direct kernel), the forward pass of `dY` by the rotated, transposed weights,
//!   which needs no column matrix; for other layers with a stride above 1 or padding other
//!   than half the kernel's reach (one group, at least 16 input and 32 output channels), by
//!   scatter on the broadcast kernel: per tap, a tile of `dY` pixels times the tap's
//!   transposed weights, one input channel per lane, added into `dX` where the tap read (no
//!   column matrix, no col2im); otherwise `col_g = W_g^T x dY_g` (with `W_g^T` packed once)
//!   then col2im;
//! * backward-weight: at AVX-512, for RGB stems (3 input channels, 3 x 3, at least 32 output
//!   channels, rows of whole vectors pairs, at most 256 KiB of output gradient an image,
//!   `cifar.stem`), the transposed `F(2, 3)` along the columns: the sums of the output
//!   gradient's and the input's transformed rows, transformed back to the taps once per
//!   batch block; the direct kernel (sums over the output width and a group of images
//!   in registers, then across lanes) for other few input channels (`cin * kh * kw <= 75`; with
//!   kernels 2 or 3 wide, over whole planes of shifted copies); the
//!   broadcast kernel (taps x output channels summed over pixels in registers, one lane per
//!   channel, small images several per call) for other deep layers; otherwise
//!   `dW_g += dY_g x col_g^T`, both operands packed
//!   by an 8 x 8 SIMD transpose. Every route reduces over fixed batch blocks.
//!
//! The thresholds come from measurements on this project's layer suite (see each route's
//! `applies`). 1x1 stride-1 unpadded convolutions use the input itself as the column matrix.
//! Work is split over images, or within an image over output-channel blocks when there are
//! fewer images than threads; each thread packs into its own buffers (no locks, no
//! allocation once warm).
//!
//! [`sgemm`] exposes the same packed micro-kernels as a general strided matrix product with a
//! caller-kept [`GemmWorkspace`], for the fully connected layers of a training step.
//!
//! Instruction sets: `scalar`, `avx2-fma` and `avx512` kernels, the widest the CPU has chosen
//! once per process; `GANGLION_FORCE_ISA=scalar|avx2|avx512` forces one (a level the CPU lacks
//! falls back to detection with a warning), [`with_isa`] forces one for the calls of a closure,
//! and [`isa_name`] names the level in use. `GANGLION_CONV_GEMM=matrixmultiply` runs the
//! previous im2col + `matrixmultiply::sgemm` path instead, the baseline the kernels are
//! measured against. Results are bit-identical across thread counts on each level, and agree
//! across levels within rounding.
//!
//! Architecture invariant: `unsafe` lives only in the kernel module's `x86_64` part (the
//! `#[target_feature]` code, behind checked safe entry points) and in `gemm`'s call of the
//! `matrixmultiply` baseline; everything else indexes slices.
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

mod aligned;
mod backward_data;
mod backward_weight;
mod broadcast;
mod broadcast_weight;
mod direct;
mod error;
mod fft_conv;
mod forward;
mod gemm;
mod im2col;
pub mod kernels;
mod lane_grad;
mod matmul;
mod params;
mod plan;
pub mod reference;
mod scatter;
mod tensor_api;
mod tiles;
mod winograd;
mod workspace;

pub use backward_data::conv2d_backward_data;
pub use backward_weight::conv2d_backward_weight;
pub use error::ConvError;
pub use forward::conv2d_forward;
pub use kernels::{Isa, isa_name, with_isa};
pub use matmul::{GemmWorkspace, Strided, sgemm};
pub use params::{Conv2dParams, Conv2dShape};
pub use tensor_api::{Conv2dGrads, conv2d, conv2d_backward};
pub use workspace::ConvWorkspace;

#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
