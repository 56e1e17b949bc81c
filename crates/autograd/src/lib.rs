//! `ganglion-autograd`: reverse-mode automatic differentiation over Ganglion's tensors and
//! kernels.
//!
//! # Contract
//!
//! * A [`Graph`] records ops on [`Tensor`](ganglion_tensor::Tensor)s (NCHW activations, OIHW
//!   convolution weights, as in PyTorch) and returns a [`Var`] per result. Leaves are constants ([`Graph::input`]),
//!   parameters ([`Graph::param`] copies a shared [`Param`]) or free variables
//!   ([`Graph::variable`]).
//! * Every op checks its operands and returns [`AutogradError`] naming the op and the shapes;
//!   it never panics on user data.
//! * [`Graph::backward`] takes a one-element loss, computes the gradient of every node that
//!   leads to a parameter or variable and ADDS each parameter's gradient into its [`Param`]
//!   (unless it does not `requires_grad`). Losses are rank-0 tensors. [`Graph::grad`] reads
//!   the gradients of leaves (variables and parameter copies); those of intermediate nodes
//!   are released as soon as backward has used them, as PyTorch does, unless
//!   [`Graph::set_retain_grads`] keeps them.
//! * In-place ops ([`Graph::relu_inplace`], [`Graph::add_inplace`]) write their result over
//!   their first operand's buffer, as PyTorch's `relu_` and `add_`. Reading the overwritten
//!   value afterwards, through an op or [`Graph::try_value`], is an
//!   [`AutogradError::Overwritten`] naming the node; where a recorded backward rule still
//!   reads that value, the op works out of place instead.
//! * Gradients match PyTorch's: batch norm in train mode normalises with the biased variance
//!   and updates running statistics with the unbiased one; cross-entropy takes PyTorch's label
//!   smoothing; all reductions (losses, bias gradients, batch statistics) run in a fixed order,
//!   in `f64` where precision matters, so results do not depend on the thread count.
//!
//! # Design: a tape
//!
//! The graph is a `Vec` of nodes in creation order. Each node keeps its value and an `Op`
//! value naming its inputs (tape indices) and what its derivative needs (max-pool argmax,
//! batch-norm mean and inverse deviation, dropout mask, convolution geometry). Creation order
//! is already topological, so backward walks the tape once in reverse and applies one rule per
//! op; each rule sits beside its forward op in `ops/` and states its derivative. Gradient
//! buffers are allocated when a node is first reached, and nodes that lead to no parameter or
//! variable are skipped (the first convolution never computes a gradient for the images).
//! Since every consumer of a node comes after it on the tape, a node's gradient is complete
//! when the walk reaches it; once its rule has run, the buffer goes back to the pool and the
//! next gradient of that length reuses it, so backward holds a few gradients at a time
//! instead of one per node.
//!
//! Memory at the end of the forward pass is the values backward needs. Each op declares the
//! nodes whose values its rule reads (`Op::for_each_saved`: a convolution its input and
//! weight, batch norm its input, ReLU its output, an addition none); an in-place op may take
//! over any other buffer. An overwritten node keeps its place on the tape, its shape (that of
//! the node holding the buffer) and its gradient slot. ResNet's blocks apply this as
//! torchvision's do (`relu_` after batch norm and after the residual `+=`), which keeps four
//! activations per block instead of seven.
//!
//! Every value, gradient and saved buffer comes from a pool keyed by length.
//! [`Graph::reset`] gives them all back, so a training loop that builds the same graph each
//! step allocates no tensor storage once warm ([`Graph::pool_misses`] stops growing); the
//! convolution workspace is kept across steps too. Linear layers and matmuls read transposed
//! operands in place through GEMM strides, and softmax with cross-entropy has one fused rule
//! for numerical stability. [`Graph::inference`] records values only. The few loops that are
//! not kernels from `ganglion-im2col-conv` / `ganglion-pooling` (elementwise maps, per-channel
//! batch statistics) split over rayon by whole elements, planes or channels, so splitting
//! never reorders a sum.
//!
//! Architecture invariant: a node only ever refers to nodes created before it, so the tape
//! order is a valid backward order and no graph search is needed.
//!
//! # Examples
//! ```
//! use ganglion_autograd::{Graph, Param};
//! use ganglion_tensor::Tensor;
//!
//! let w = Param::new(Tensor::new(&[2, 3], vec![0.1, -0.2, 0.3, 0.4, 0.0, -0.1])?);
//! let b = Param::new(Tensor::zeros(&[2]));
//! let mut g = Graph::new();
//! let mut misses_after_first_step = 0;
//! for step in 0..2 {
//!     g.reset(); // recycles last step's buffers
//!     let x = g.input_from(&[1, 3], &[1.0, 2.0, 3.0])?;
//!     let (wv, bv) = (g.param(&w), g.param(&b));
//!     let y = g.linear(x, wv, Some(bv))?;
//!     let h = g.tanh(y)?;
//!     let loss = g.cross_entropy(h, &[1], 0.0)?;
//!     g.backward(loss)?;
//!     assert_eq!(g.shape(loss), &[] as &[usize]);
//!     if step == 0 {
//!         misses_after_first_step = g.pool_misses();
//!     }
//! }
//! assert_eq!(g.pool_misses(), misses_after_first_step); // the second step allocated nothing
//! // Gradients of both steps were added into the parameters.
//! assert!(w.grad().data().iter().any(|&v| v != 0.0));
//! assert!(b.grad().data()[1] < 0.0); // raising the target logit lowers the loss
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
mod gemm;
pub mod gradcheck;
mod graph;
mod op;
mod ops;
mod param;
mod pool;

pub use error::AutogradError;
pub use ganglion_im2col_conv::Conv2dParams;
pub use ganglion_pooling::Pool2dParams;
pub use graph::{Graph, Var};
pub use ops::norm::BatchNormMode;
pub use param::{Param, ParamData};

#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
