//! Ops that move elements without arithmetic: reshape, flatten, concat, channel padding and
//! spatial subsampling (the last two form ResNet's parameter-free "option A" shortcut).

use crate::graph::Backward;
use crate::op::Op;
use crate::{AutogradError, Graph, Var};
use ganglion_tensor::Tensor;

/// `[n, c, h, w]` of a rank-4 operand, or an error naming the op and the operand.
pub(crate) fn dims4(
    op: &'static str,
    what: &'static str,
    t: &Tensor,
) -> Result<[usize; 4], AutogradError> {
    match t.shape() {
        &[n, c, h, w] => Ok([n, c, h, w]),
        s => Err(AutogradError::bad_shape(op, what, s, "must be rank 4")),
    }
}

/// Ranks up to this keep a [`ShapeBuf`] on the stack (CNN tensors have rank 4 at most).
const INLINE_RANK: usize = 8;

/// A copy of a shape with one dimension replaced, on the stack up to [`INLINE_RANK`]
/// dimensions: the ops that derive an output shape from an input's run every training step,
/// and a steady-state step allocates nothing.
struct ShapeBuf {
    inline: [usize; INLINE_RANK],
    spill: Vec<usize>,
    rank: usize,
}

impl ShapeBuf {
    /// `shape` with `shape[axis] = value`.
    ///
    /// # Panics
    /// If `axis >= shape.len()` (callers check the rank first).
    fn with_dim(shape: &[usize], axis: usize, value: usize) -> Self {
        let rank = shape.len();
        let mut buf = Self {
            inline: [0; INLINE_RANK],
            spill: Vec::new(),
            rank,
        };
        let dims = if rank <= INLINE_RANK {
            &mut buf.inline[..rank]
        } else {
            buf.spill.extend_from_slice(shape);
            &mut buf.spill[..]
        };
        dims.copy_from_slice(shape);
        dims[axis] = value;
        buf
    }

    fn as_slice(&self) -> &[usize] {
        if self.rank <= INLINE_RANK {
            &self.inline[..self.rank]
        } else {
            &self.spill
        }
    }
}

impl Graph {
    /// The same elements under `shape` (same element count).
    ///
    /// # Errors
    /// [`AutogradError::ShapeMismatch`] naming `reshape` and both shapes when the counts
    /// differ.
    pub fn reshape(&mut self, x: Var, shape: &[usize]) -> Result<Var, AutogradError> {
        self.reshape_op("reshape", x, shape)
    }

    /// `[n, d1, d2, ...] -> [n, d1 * d2 * ...]`.
    ///
    /// # Errors
    /// [`AutogradError::BadShape`] for a scalar.
    pub fn flatten(&mut self, x: Var) -> Result<Var, AutogradError> {
        const OP: &str = "flatten";
        let xi = self.operand(OP, x)?;
        let shape = self.nodes[xi].value().shape();
        let Some((&n, rest)) = shape.split_first() else {
            return Err(AutogradError::bad_shape(
                OP,
                "input",
                shape,
                "must have rank >= 1",
            ));
        };
        let rest: usize = rest.iter().product();
        self.reshape_op(OP, x, &[n, rest])
    }

    fn reshape_op(
        &mut self,
        op: &'static str,
        x: Var,
        shape: &[usize],
    ) -> Result<Var, AutogradError> {
        let xi = self.operand(op, x)?;
        let xv = self.nodes[xi].value();
        let count = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        if count != Some(xv.len()) {
            return Err(AutogradError::mismatch(
                op,
                xv.shape(),
                shape,
                " (element counts differ)",
            ));
        }
        let mut y = self.pool.take(shape);
        y.data_mut().copy_from_slice(xv.data());
        Ok(self.push(y, Op::Reshape { x: xi }))
    }

    /// Joins tensors along `axis`; all other dimensions must agree.
    ///
    /// # Errors
    /// [`AutogradError::InvalidArgument`] for an empty list or an axis beyond the rank,
    /// [`AutogradError::ShapeMismatch`] naming `concat` and the first disagreeing shapes.
    pub fn concat(&mut self, xs: &[Var], axis: usize) -> Result<Var, AutogradError> {
        const OP: &str = "concat";
        let Some(&first) = xs.first() else {
            return Err(AutogradError::invalid(OP, "needs at least one tensor"));
        };
        let fi = self.operand(OP, first)?;
        let first_shape = self.nodes[fi].value().shape();
        if axis >= first_shape.len() {
            return Err(AutogradError::invalid(
                OP,
                format!("axis {axis} is out of range for shape {first_shape:?}"),
            ));
        }
        let mut total = 0;
        for &x in xs {
            let s = self.nodes[self.operand(OP, x)?].value().shape();
            let agree = s.len() == first_shape.len()
                && s.iter()
                    .zip(first_shape)
                    .enumerate()
                    .all(|(d, (a, b))| d == axis || a == b);
            if !agree {
                return Err(AutogradError::mismatch(
                    OP,
                    first_shape,
                    s,
                    &format!(" (all dimensions but axis {axis} must agree)"),
                ));
            }
            total += s[axis];
        }
        let shape = ShapeBuf::with_dim(first_shape, axis, total);
        let shape = shape.as_slice();
        let mut ids = self.pool.take_u32(xs.len());
        for (slot, x) in ids.iter_mut().zip(xs) {
            *slot = x.index() as u32;
        }
        let outer: usize = shape[..axis].iter().product();
        let inner: usize = shape[axis + 1..].iter().product();
        let row = total * inner;
        let mut y = self.pool.take(shape);
        let yd = y.data_mut();
        let mut offset = 0;
        for &i in &ids {
            let xv = self.nodes[i as usize].value();
            let len = xv.shape()[axis] * inner;
            for o in 0..outer {
                yd[o * row + offset..o * row + offset + len]
                    .copy_from_slice(&xv.data()[o * len..(o + 1) * len]);
            }
            offset += len;
        }
        Ok(self.push(y, Op::Concat { xs: ids, axis }))
    }

    /// Adds `before` zero channels in front of dim 1 and `after` behind it:
    /// `[n, c, ...] -> [n, before + c + after, ...]`.
    ///
    /// # Errors
    /// [`AutogradError::BadShape`] naming `pad_channels` for a tensor of rank below 2.
    pub fn pad_channels(
        &mut self,
        x: Var,
        before: usize,
        after: usize,
    ) -> Result<Var, AutogradError> {
        const OP: &str = "pad_channels";
        let xi = self.operand(OP, x)?;
        let xv = self.nodes[xi].value();
        let s = xv.shape();
        if s.len() < 2 {
            return Err(AutogradError::bad_shape(
                OP,
                "input",
                s,
                "must be [N, C, ...]",
            ));
        }
        let inner: usize = s[2..].iter().product();
        let (n, c) = (s[0], s[1]);
        let c_out = before + c + after;
        let shape = ShapeBuf::with_dim(s, 1, c_out);
        let mut y = self.pool.take_zeroed(shape.as_slice());
        let yd = y.data_mut();
        let (src_len, dst_len) = (c * inner, c_out * inner);
        for item in 0..n {
            let dst = item * dst_len + before * inner;
            yd[dst..dst + src_len]
                .copy_from_slice(&xv.data()[item * src_len..(item + 1) * src_len]);
        }
        Ok(self.push(y, Op::PadChannels { x: xi, before }))
    }

    /// `x[:, :, ::sh, ::sw]` for `x: [n, c, h, w]`: output `[n, c, ceil(h / sh), ceil(w / sw)]`.
    ///
    /// # Errors
    /// [`AutogradError::BadShape`] for a tensor that is not rank 4,
    /// [`AutogradError::InvalidArgument`] for a zero stride.
    pub fn subsample(&mut self, x: Var, stride: [usize; 2]) -> Result<Var, AutogradError> {
        const OP: &str = "subsample";
        let xi = self.operand(OP, x)?;
        let xv = self.nodes[xi].value();
        let [n, c, h, w] = dims4(OP, "input", xv)?;
        let [sh, sw] = stride;
        if sh == 0 || sw == 0 {
            return Err(AutogradError::invalid(
                OP,
                format!("stride {stride:?} must be positive"),
            ));
        }
        let (oh, ow) = (h.div_ceil(sh), w.div_ceil(sw));
        let mut y = self.pool.take(&[n, c, oh, ow]);
        let xd = xv.data();
        let planes = y.data_mut().chunks_exact_mut((oh * ow).max(1));
        for (plane, out) in planes.enumerate() {
            let src = &xd[plane * h * w..(plane + 1) * h * w];
            for (i, out_row) in out.chunks_exact_mut(ow).enumerate() {
                let src_row = &src[i * sh * w..];
                for (j, o) in out_row.iter_mut().enumerate() {
                    *o = src_row[j * sw];
                }
            }
        }
        Ok(self.push(y, Op::Subsample { x: xi, stride }))
    }
}

/// `y = reshape(x)`: `dx = reshape(g)` back to `x`'s shape.
pub(crate) fn reshape_backward(ctx: &mut Backward<'_>, x: usize, g: &Tensor) {
    ctx.contribute(x, |d| d.copy_from_slice(g.data()));
}

/// `y = concat(x_0, x_1, ...)`: each `dx_k` is its slab of `g`.
pub(crate) fn concat_backward(ctx: &mut Backward<'_>, xs: &[u32], axis: usize, g: &Tensor) {
    let shape = g.shape();
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    let row = shape[axis] * inner;
    let mut offset = 0;
    for &x in xs {
        let x = x as usize;
        let len = ctx.shape(x)[axis] * inner;
        ctx.contribute(x, |d| {
            for o in 0..outer {
                d[o * len..(o + 1) * len]
                    .copy_from_slice(&g.data()[o * row + offset..o * row + offset + len]);
            }
        });
        offset += len;
    }
}

/// `y = pad_channels(x)`: `dx` is the unpadded channel range of `g`.
pub(crate) fn pad_channels_backward(ctx: &mut Backward<'_>, x: usize, before: usize, g: &Tensor) {
    let s = ctx.shape(x);
    let (n, c, inner) = (s[0], s[1], s[2..].iter().product::<usize>());
    let c_out = g.shape()[1];
    ctx.contribute(x, |d| {
        let (src_len, dst_len) = (c_out * inner, c * inner);
        for item in 0..n {
            let src = item * src_len + before * inner;
            d[item * dst_len..(item + 1) * dst_len].copy_from_slice(&g.data()[src..src + dst_len]);
        }
    });
}

/// `y = x[:, :, ::sh, ::sw]`: `dx` is `g` scattered back to the sampled positions, zero
/// elsewhere.
pub(crate) fn subsample_backward(ctx: &mut Backward<'_>, x: usize, stride: [usize; 2], g: &Tensor) {
    let (h, w) = (ctx.shape(x)[2], ctx.shape(x)[3]);
    let (oh, ow) = (g.shape()[2], g.shape()[3]);
    let [sh, sw] = stride;
    ctx.contribute(x, |d| {
        d.fill(0.0);
        for (plane, src) in g.data().chunks_exact((oh * ow).max(1)).enumerate() {
            let dst = &mut d[plane * h * w..(plane + 1) * h * w];
            for (i, src_row) in src.chunks_exact(ow).enumerate() {
                let dst_row = &mut dst[i * sh * w..];
                for (j, &v) in src_row.iter().enumerate() {
                    dst_row[j * sw] = v;
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_buf_replaces_one_dimension_inline_and_spilled() {
        let small = ShapeBuf::with_dim(&[2, 3, 4, 5], 1, 7);
        assert_eq!(small.as_slice(), &[2, 7, 4, 5]);
        let rank9: Vec<usize> = (1..=9).collect();
        let big = ShapeBuf::with_dim(&rank9, 8, 0);
        assert_eq!(big.as_slice(), &[1, 2, 3, 4, 5, 6, 7, 8, 0]);
    }
}
