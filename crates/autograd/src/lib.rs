//! `ganglion-autograd`: reverse-mode automatic differentiation over Ganglion's kernels
//! (being built; [`Param`] is the shared parameter handle).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod param;

pub use param::{Param, ParamData};
