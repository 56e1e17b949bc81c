//! In-place ops, PyTorch's `relu_` and `add_`: the result takes over the buffer of its first
//! operand instead of a fresh one, so a network whose ReLUs and residual additions run in
//! place keeps fewer activations alive (torchvision's ResNet blocks do exactly this).
//!
//! The overwritten node stays on the tape for its shape and its gradient, but its value is
//! gone: an op or [`Graph::value`] that reads it gets [`AutogradError::Overwritten`] naming
//! the node. When a recorded backward rule still needs the value (the input of a
//! convolution, the output of a sigmoid), the op works out of place instead, so an in-place
//! call is never wrong, only sometimes not in place.

use super::{map1_inplace, map2_inplace};
use crate::op::Op;
use crate::{AutogradError, Graph, Var};

impl Graph {
    /// `max(x, 0)` written over `x`'s buffer: the same value and gradient as [`Graph::relu`],
    /// after which `x`'s value can no longer be read. Out of place (as [`Graph::relu`]) when a
    /// recorded backward rule reads `x`'s value.
    ///
    /// # Errors
    /// [`AutogradError::UnknownVar`] for a foreign var, [`AutogradError::Overwritten`] when
    /// `x` itself was overwritten.
    pub fn relu_inplace(&mut self, x: Var) -> Result<Var, AutogradError> {
        let xi = self.operand("relu_inplace", x)?;
        let Some(mut y) = self.take_for_inplace(xi) else {
            return self.relu(x);
        };
        // The function `relu` maps, so both give the same bits.
        map1_inplace(y.data_mut(), |v| v.max(0.0));
        Ok(self.push(y, Op::Relu { x: xi }))
    }

    /// `a + b` (equal shapes) written over `a`'s buffer: the same value and gradients as
    /// [`Graph::add`], after which `a`'s value can no longer be read. Out of place (as
    /// [`Graph::add`]) when a recorded backward rule reads `a`'s value or `b` is `a`.
    ///
    /// # Errors
    /// [`AutogradError::ShapeMismatch`] naming `add_inplace` and both shapes when they
    /// differ; [`AutogradError::UnknownVar`] / [`AutogradError::Overwritten`] for an operand
    /// that cannot be read.
    pub fn add_inplace(&mut self, a: Var, b: Var) -> Result<Var, AutogradError> {
        const OP: &str = "add_inplace";
        let (ai, bi) = (self.operand(OP, a)?, self.operand(OP, b)?);
        let (sa, sb) = (
            self.nodes[ai].value().shape(),
            self.nodes[bi].value().shape(),
        );
        if sa != sb {
            return Err(AutogradError::mismatch(OP, sa, sb, " (needs equal shapes)"));
        }
        if ai == bi {
            return self.add(a, b);
        }
        let Some(mut y) = self.take_for_inplace(ai) else {
            return self.add(a, b);
        };
        // `a + b` in the operand order `add` uses, so both give the same bits.
        map2_inplace(y.data_mut(), self.nodes[bi].value().data(), |a, b| a + b);
        Ok(self.push(y, Op::Add { a: ai, b: bi }))
    }
}
