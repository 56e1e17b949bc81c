//! `ganglion-oracle`: reference cases from PyTorch and the tolerance they are checked with.
//!
//! A case is one `.safetensors` file: named `F32` tensors (`input`, `weight`, `output`,
//! `grad_input`, ...) and a `__metadata__` map whose `op` names the operation and whose other
//! entries are the op's parameters, each a JSON value stored as a string (`"stride": "[2, 3]"`).
//! Every gradient in a case is of `L = sum(output * grad_output)` (for cross-entropy, of the
//! mean loss itself).
//!
//! Architecture invariant: this crate reads and compares; it runs no kernel, so the same cases
//! can judge every implementation.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod case;
mod check;

pub use case::{Case, OracleError, bundled_dir, load_case, load_dir};
pub use check::{Check, check};

// Compiles the README's example with the doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
