//! Max, average and global average pooling over the `ganglion-pooling` kernels, forward and
//! backward.

use super::shape::dims4;
use crate::graph::Backward;
use crate::op::Op;
use crate::{AutogradError, Graph, Var};
use ganglion_pooling::{
    Pool2dParams, Pool2dShape, avg_pool2d_backward, avg_pool2d_forward, global_avg_pool2d_backward,
    global_avg_pool2d_forward, max_pool2d_backward, max_pool2d_forward,
};
use ganglion_tensor::Tensor;

impl Graph {
    /// Max pooling of `x: [n, c, h, w]`, as `torch.nn.functional.max_pool2d` (dilation 1).
    ///
    /// # Errors
    /// [`AutogradError::BadShape`] naming `max_pool2d` for an input that is not rank 4;
    /// [`AutogradError::Pool`] for a geometry the kernels reject.
    pub fn max_pool2d(&mut self, x: Var, params: Pool2dParams) -> Result<Var, AutogradError> {
        const OP: &str = "max_pool2d";
        let xi = self.operand(OP, x)?;
        let xv = self.nodes[xi].value();
        let shape = Pool2dShape::new(dims4(OP, "input", xv)?, params)?;
        let mut y = self.pool.take(&shape.output_dims());
        let mut argmax = self.pool.take_u32(shape.output_len());
        max_pool2d_forward(&shape, xv.data(), y.data_mut(), &mut argmax);
        Ok(self.push(
            y,
            Op::MaxPool2d {
                x: xi,
                shape,
                argmax,
            },
        ))
    }

    /// Average pooling of `x: [n, c, h, w]`, as `torch.nn.functional.avg_pool2d`; with
    /// `count_include_pad` the padding counts in the divisor.
    ///
    /// # Errors
    /// [`AutogradError::BadShape`] naming `avg_pool2d` for an input that is not rank 4;
    /// [`AutogradError::Pool`] for a geometry the kernels reject.
    pub fn avg_pool2d(
        &mut self,
        x: Var,
        params: Pool2dParams,
        count_include_pad: bool,
    ) -> Result<Var, AutogradError> {
        const OP: &str = "avg_pool2d";
        let xi = self.operand(OP, x)?;
        let xv = self.nodes[xi].value();
        let shape = Pool2dShape::new(dims4(OP, "input", xv)?, params)?;
        let mut y = self.pool.take(&shape.output_dims());
        avg_pool2d_forward(&shape, count_include_pad, xv.data(), y.data_mut());
        Ok(self.push(
            y,
            Op::AvgPool2d {
                x: xi,
                shape,
                count_include_pad,
            },
        ))
    }

    /// The mean of each `(n, c)` plane: `[n, c, h, w] -> [n, c, 1, 1]`.
    ///
    /// # Errors
    /// [`AutogradError::BadShape`] naming `global_avg_pool2d` for an input that is not rank 4.
    pub fn global_avg_pool2d(&mut self, x: Var) -> Result<Var, AutogradError> {
        const OP: &str = "global_avg_pool2d";
        let xi = self.operand(OP, x)?;
        let xv = self.nodes[xi].value();
        let [n, c, h, w] = dims4(OP, "input", xv)?;
        let mut y = self.pool.take(&[n, c, 1, 1]);
        global_avg_pool2d_forward([n, c, h, w], xv.data(), y.data_mut());
        Ok(self.push(y, Op::GlobalAvgPool2d { x: xi }))
    }
}

/// `y = max over each window`: `dx` is `g` scattered to each window's argmax (overlaps add).
pub(crate) fn max_pool2d_backward_rule(
    ctx: &mut Backward<'_>,
    x: usize,
    shape: &Pool2dShape,
    argmax: &[u32],
    g: &Tensor,
) {
    ctx.contribute(x, |d| max_pool2d_backward(shape, g.data(), argmax, d));
}

/// `y = mean over each window`: every in-bounds element of a window receives `g / divisor`.
pub(crate) fn avg_pool2d_backward_rule(
    ctx: &mut Backward<'_>,
    x: usize,
    shape: &Pool2dShape,
    count_include_pad: bool,
    g: &Tensor,
) {
    ctx.contribute(x, |d| {
        avg_pool2d_backward(shape, count_include_pad, g.data(), d)
    });
}

/// `y[n, c] = mean of plane (n, c)`: `dx = g[n, c] / (h w)` over the plane.
pub(crate) fn global_avg_pool2d_backward_rule(ctx: &mut Backward<'_>, x: usize, g: &Tensor) {
    let s = ctx.shape(x);
    let dims = [s[0], s[1], s[2], s[3]];
    ctx.contribute(x, |d| global_avg_pool2d_backward(dims, g.data(), d));
}
