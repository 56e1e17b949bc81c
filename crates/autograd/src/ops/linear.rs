//! Fully connected layer and matrix product: forward and backward by strided GEMM.

use crate::gemm::{Mat, sgemm};
use crate::graph::Backward;
use crate::op::Op;
use crate::{AutogradError, Graph, Var};
use ganglion_tensor::Tensor;

/// `[rows, cols]` of a rank-2 operand, or an error naming the op and the operand.
pub(crate) fn dims2(
    op: &'static str,
    what: &'static str,
    t: &Tensor,
    expected: &str,
) -> Result<[usize; 2], AutogradError> {
    match t.shape() {
        &[r, c] => Ok([r, c]),
        s => Err(AutogradError::bad_shape(op, what, s, expected)),
    }
}

impl Graph {
    /// `y = x W^T + b` for `x: [n, in]`, `w: [out, in]`, `b: [out]`; `y: [n, out]`.
    ///
    /// # Errors
    /// [`AutogradError::BadShape`] / [`AutogradError::ShapeMismatch`] naming `linear` and the
    /// shapes when they do not fit; [`AutogradError::UnknownVar`] for a foreign var.
    pub fn linear(&mut self, x: Var, w: Var, b: Option<Var>) -> Result<Var, AutogradError> {
        const OP: &str = "linear";
        let (xi, wi) = (self.operand(OP, x)?, self.operand(OP, w)?);
        let bi = b.map(|b| self.operand(OP, b)).transpose()?;
        let (xv, wv) = (self.nodes[xi].value(), self.nodes[wi].value());
        let [n, fin] = dims2(OP, "input", xv, "must be [batch, in_features]")?;
        let [fout, win] = dims2(OP, "weight", wv, "must be [out_features, in_features]")?;
        if fin != win {
            return Err(AutogradError::mismatch(
                OP,
                xv.shape(),
                wv.shape(),
                " (input features must equal the weight's columns)",
            ));
        }
        let bias = bi.map(|bi| self.nodes[bi].value());
        if let Some(bv) = bias
            && bv.shape() != [fout]
        {
            return Err(AutogradError::bad_shape(
                OP,
                "bias",
                bv.shape(),
                format!("must be [{fout}] for weight {:?}", wv.shape()),
            ));
        }
        let mut y = self.pool.take(&[n, fout]);
        let accumulate = match bias {
            Some(bv) if fout > 0 => {
                // Start every row from the bias and let the GEMM accumulate onto it.
                for row in y.data_mut().chunks_exact_mut(fout) {
                    row.copy_from_slice(bv.data());
                }
                true
            }
            _ => false,
        };
        let (xd, wd) = (xv.data(), wv.data());
        sgemm(
            n,
            fin,
            fout,
            Mat::rows(xd, fin),
            Mat::transposed(wd, fin),
            accumulate,
            y.data_mut(),
            &mut self.gemm_ws,
        );
        Ok(self.push(
            y,
            Op::Linear {
                x: xi,
                w: wi,
                b: bi,
            },
        ))
    }

    /// `c = a b` for `a: [m, k]`, `b: [k, n]`; `c: [m, n]`.
    ///
    /// # Errors
    /// [`AutogradError::BadShape`] / [`AutogradError::ShapeMismatch`] naming `matmul` and the
    /// shapes; [`AutogradError::UnknownVar`] for a foreign var.
    pub fn matmul(&mut self, a: Var, b: Var) -> Result<Var, AutogradError> {
        const OP: &str = "matmul";
        let (ai, bi) = (self.operand(OP, a)?, self.operand(OP, b)?);
        let (av, bv) = (self.nodes[ai].value(), self.nodes[bi].value());
        let [m, k] = dims2(OP, "left operand", av, "must be rank 2")?;
        let [k2, n] = dims2(OP, "right operand", bv, "must be rank 2")?;
        if k != k2 {
            return Err(AutogradError::mismatch(
                OP,
                av.shape(),
                bv.shape(),
                " (inner dimensions differ)",
            ));
        }
        let mut c = self.pool.take(&[m, n]);
        sgemm(
            m,
            k,
            n,
            Mat::rows(av.data(), k),
            Mat::rows(bv.data(), n),
            false,
            c.data_mut(),
            &mut self.gemm_ws,
        );
        Ok(self.push(c, Op::MatMul { a: ai, b: bi }))
    }
}

/// `y = x W^T + b`: `dx = g W`, `dW = g^T x`, `db = sum over rows of g`.
pub(crate) fn linear_backward(
    ctx: &mut Backward<'_>,
    x: usize,
    w: usize,
    b: Option<usize>,
    g: &Tensor,
) {
    let (xv, wv) = (ctx.value(x), ctx.value(w));
    let [n, fin] = [xv.shape()[0], xv.shape()[1]];
    let fout = wv.shape()[0];
    let gd = g.data();
    // Out of the context while its `contribute` borrows it; moving the buffers allocates nothing.
    let ws = &mut std::mem::take(ctx.gemm_ws);
    ctx.contribute(x, |dx| {
        sgemm(
            n,
            fout,
            fin,
            Mat::rows(gd, fout),
            Mat::rows(wv.data(), fin),
            false,
            dx,
            ws,
        );
    });
    ctx.contribute(w, |dw| {
        sgemm(
            fout,
            n,
            fin,
            Mat::transposed(gd, fout),
            Mat::rows(xv.data(), fin),
            false,
            dw,
            ws,
        );
    });
    if let Some(b) = b {
        ctx.contribute(b, |db| column_sums(gd, fout, db));
    }
    *ctx.gemm_ws = std::mem::take(ws);
}

/// `out[j] = sum_i m[i, j]` for a row-major matrix with `cols` columns, accumulated in `f64`
/// row by row (a fixed order).
pub(crate) fn column_sums(m: &[f32], cols: usize, out: &mut [f32]) {
    for (j, o) in out.iter_mut().enumerate() {
        let mut acc = 0.0f64;
        for row in m.chunks_exact(cols) {
            acc += row[j] as f64;
        }
        *o = acc as f32;
    }
}

/// `c = a b`: `da = g b^T`, `db = a^T g`.
pub(crate) fn matmul_backward(ctx: &mut Backward<'_>, a: usize, b: usize, g: &Tensor) {
    let (av, bv) = (ctx.value(a), ctx.value(b));
    let [m, k] = [av.shape()[0], av.shape()[1]];
    let n = bv.shape()[1];
    let gd = g.data();
    // Out of the context while its `contribute` borrows it; moving the buffers allocates nothing.
    let ws = &mut std::mem::take(ctx.gemm_ws);
    ctx.contribute(a, |da| {
        sgemm(
            m,
            n,
            k,
            Mat::rows(gd, n),
            Mat::transposed(bv.data(), n),
            false,
            da,
            ws,
        );
    });
    ctx.contribute(b, |db| {
        sgemm(
            k,
            m,
            n,
            Mat::transposed(av.data(), k),
            Mat::rows(gd, n),
            false,
            db,
            ws,
        );
    });
    *ctx.gemm_ws = std::mem::take(ws);
}
