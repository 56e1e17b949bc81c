//! 2-D convolution over the `ganglion-im2col-conv` kernels, forward and backward, all sharing
//! the graph's one [`ganglion_im2col_conv::ConvWorkspace`].

use super::elementwise::channel_sums;
use super::shape::dims4;
use crate::graph::Backward;
use crate::op::Op;
use crate::{AutogradError, Graph, Var};
use ganglion_im2col_conv::{
    Conv2dParams, Conv2dShape, conv2d_backward_data, conv2d_backward_weight, conv2d_forward,
};
use ganglion_tensor::Tensor;

impl Graph {
    /// 2-D convolution of `x: [n, cin, h, w]` by `w: [cout, cin / groups, kh, kw]` plus an
    /// optional bias `b: [cout]`, as `torch.nn.functional.conv2d`.
    ///
    /// # Errors
    /// [`AutogradError::BadShape`] naming `conv2d` for operands of the wrong rank or a bias
    /// of the wrong length; [`AutogradError::Conv`] for a geometry the kernels reject.
    pub fn conv2d(
        &mut self,
        x: Var,
        w: Var,
        b: Option<Var>,
        params: Conv2dParams,
    ) -> Result<Var, AutogradError> {
        const OP: &str = "conv2d";
        let (xi, wi) = (self.operand(OP, x)?, self.operand(OP, w)?);
        let bi = b.map(|b| self.operand(OP, b)).transpose()?;
        let (xv, wv) = (self.nodes[xi].value(), self.nodes[wi].value());
        let shape = Conv2dShape::new(dims4(OP, "input", xv)?, dims4(OP, "weight", wv)?, params)?;
        let bias = bi.map(|bi| self.nodes[bi].value());
        if let Some(bv) = bias
            && bv.shape() != [shape.cout]
        {
            return Err(AutogradError::bad_shape(
                OP,
                "bias",
                bv.shape(),
                format!("must be [{}] for weight {:?}", shape.cout, wv.shape()),
            ));
        }
        let mut y = self.pool.take(&shape.output_dims());
        conv2d_forward(
            &shape,
            xv.data(),
            wv.data(),
            bias.map(Tensor::data),
            y.data_mut(),
            &mut self.conv_ws,
        );
        Ok(self.push(
            y,
            Op::Conv2d {
                x: xi,
                w: wi,
                b: bi,
                shape,
            },
        ))
    }
}

/// `y = conv(x, w) + b`: `dx = conv_transpose(g, w)` (backward-data), `dw = correlate(x, g)`
/// (backward-weight), `db[c] = sum of g over n, oh, ow`.
pub(crate) fn conv2d_backward(
    ctx: &mut Backward<'_>,
    x: usize,
    w: usize,
    b: Option<usize>,
    shape: &Conv2dShape,
    g: &Tensor,
) {
    let (xv, wv) = (ctx.value(x), ctx.value(w));
    if let Some(mut dx) = ctx.out(x) {
        conv2d_backward_data(shape, g.data(), wv.data(), dx.data_mut(), ctx.conv_ws);
        ctx.commit(x, dx);
    }
    let db = b.and_then(|b| ctx.out(b).map(|t| (b, t)));
    match (ctx.out(w), db) {
        (Some(mut dw), mut db) => {
            let grad_bias = db.as_mut().map(|(_, t)| t.data_mut());
            conv2d_backward_weight(
                shape,
                xv.data(),
                g.data(),
                dw.data_mut(),
                grad_bias,
                ctx.conv_ws,
            );
            ctx.commit(w, dw);
            if let Some((b, t)) = db {
                ctx.commit(b, t);
            }
        }
        // Only the bias wants a gradient: a reduction, no need for the weight GEMMs.
        (None, Some((b, mut t))) => {
            channel_sums(g, t.data_mut());
            ctx.commit(b, t);
        }
        (None, None) => {}
    }
}
