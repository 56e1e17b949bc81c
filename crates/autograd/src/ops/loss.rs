//! Softmax, log-softmax, the fused softmax + cross-entropy loss, mean squared error and the
//! scalar reductions `sum` and `mean`, forward and backward. Losses accumulate in `f64`.

use crate::graph::Backward;
use crate::op::Op;
use crate::{AutogradError, Graph, Var};
use ganglion_tensor::Tensor;

/// `(rows, cols)` of a tensor seen as rows of its last dimension.
fn rows_cols(op: &'static str, t: &Tensor) -> Result<(usize, usize), AutogradError> {
    match t.shape().last() {
        None => Err(AutogradError::bad_shape(
            op,
            "input",
            t.shape(),
            "must have rank >= 1",
        )),
        Some(&0) => Ok((0, 0)),
        Some(&c) => Ok((t.len() / c, c)),
    }
}

/// `max(row)` and `ln(sum(exp(row - max)))`, the latter accumulated in `f64`.
fn max_and_log_sum_exp(row: &[f32]) -> (f32, f64) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = row.iter().map(|&v| ((v - max) as f64).exp()).sum();
    (max, sum.ln())
}

impl Graph {
    /// Softmax over the last dimension (rows of `[n, c]`).
    ///
    /// # Errors
    /// [`AutogradError::BadShape`] for a scalar.
    pub fn softmax(&mut self, x: Var) -> Result<Var, AutogradError> {
        self.row_softmax("softmax", x, false)
    }

    /// `log(softmax(x))` over the last dimension, computed as `x - max - log(sum(exp(x - max)))`
    /// so that it never takes the logarithm of an underflowed zero.
    ///
    /// # Errors
    /// [`AutogradError::BadShape`] for a scalar.
    pub fn log_softmax(&mut self, x: Var) -> Result<Var, AutogradError> {
        self.row_softmax("log_softmax", x, true)
    }

    fn row_softmax(&mut self, op: &'static str, x: Var, log: bool) -> Result<Var, AutogradError> {
        let xi = self.operand(op, x)?;
        let xv = self.nodes[xi].value();
        let (_, cols) = rows_cols(op, xv)?;
        let mut y = self.pool.take(xv.shape());
        if cols > 0 {
            for (out, row) in y
                .data_mut()
                .chunks_exact_mut(cols)
                .zip(xv.data().chunks_exact(cols))
            {
                let (max, lse) = max_and_log_sum_exp(row);
                for (o, &v) in out.iter_mut().zip(row) {
                    let logp = (v - max) as f64 - lse;
                    *o = if log { logp as f32 } else { logp.exp() as f32 };
                }
            }
        }
        let op = if log {
            Op::LogSoftmax { x: xi }
        } else {
            Op::Softmax { x: xi }
        };
        Ok(self.push(y, op))
    }

    /// Mean over the batch of the cross-entropy between `softmax(logits)` (`[n, c]`) and the
    /// class indices `targets` (`n` of them), with PyTorch's label smoothing `ls`:
    /// `loss_i = (1 - ls) * (-log p[i, y_i]) + ls * mean_c(-log p[i, c])`. A scalar (shape `[]`).
    ///
    /// # Errors
    /// [`AutogradError::BadShape`] for logits that are not rank 2,
    /// [`AutogradError::InvalidArgument`] for a target count that is not the batch size, an
    /// empty batch or `ls` outside `[0, 1]`, [`AutogradError::TargetOutOfRange`] naming the
    /// index and the class count.
    pub fn cross_entropy(
        &mut self,
        logits: Var,
        targets: &[usize],
        label_smoothing: f32,
    ) -> Result<Var, AutogradError> {
        const OP: &str = "cross_entropy";
        let xi = self.operand(OP, logits)?;
        let xv = self.nodes[xi].value();
        let &[n, c] = xv.shape() else {
            return Err(AutogradError::bad_shape(
                OP,
                "logits",
                xv.shape(),
                "must be [batch, classes]",
            ));
        };
        if targets.len() != n {
            return Err(AutogradError::invalid(
                OP,
                format!(
                    "{} targets for logits of shape {:?}",
                    targets.len(),
                    xv.shape()
                ),
            ));
        }
        if n == 0 {
            return Err(AutogradError::invalid(OP, "the batch is empty"));
        }
        if !(0.0..=1.0).contains(&label_smoothing) {
            return Err(AutogradError::invalid(
                OP,
                format!("label_smoothing = {label_smoothing} must be in [0, 1]"),
            ));
        }
        if let Some((index, &target)) = targets.iter().enumerate().find(|&(_, &t)| t >= c) {
            return Err(AutogradError::TargetOutOfRange {
                op: OP,
                index,
                target,
                classes: c,
            });
        }
        let ls = label_smoothing as f64;
        let mut probs = self.pool.take(&[n, c]);
        let mut ids = self.pool.take_u32(n);
        let mut total = 0.0f64;
        let rows = probs
            .data_mut()
            .chunks_exact_mut(c)
            .zip(xv.data().chunks_exact(c));
        for (i, (p, row)) in rows.enumerate() {
            let (max, lse) = max_and_log_sum_exp(row);
            // -log p_c = lse - (x_c - max), kept in f64.
            let mut mean_nll = 0.0f64;
            for (p, &v) in p.iter_mut().zip(row) {
                let logp = (v - max) as f64 - lse;
                *p = logp.exp() as f32;
                mean_nll -= logp;
            }
            mean_nll /= c as f64;
            let nll_target = lse - (row[targets[i]] - max) as f64;
            total += (1.0 - ls) * nll_target + ls * mean_nll;
            ids[i] = targets[i] as u32;
        }
        let mut y = self.pool.take(&[]);
        y.data_mut()[0] = (total / n as f64) as f32;
        Ok(self.push(
            y,
            Op::CrossEntropy {
                x: xi,
                probs,
                targets: ids,
                smoothing: label_smoothing,
            },
        ))
    }

    /// `mean((pred - target)^2)` over all elements (equal shapes), a scalar.
    ///
    /// # Errors
    /// [`AutogradError::ShapeMismatch`] naming `mse` and both shapes;
    /// [`AutogradError::InvalidArgument`] for empty tensors.
    pub fn mse(&mut self, pred: Var, target: Var) -> Result<Var, AutogradError> {
        const OP: &str = "mse";
        let (ai, bi) = (self.operand(OP, pred)?, self.operand(OP, target)?);
        let (av, bv) = (self.nodes[ai].value(), self.nodes[bi].value());
        if av.shape() != bv.shape() {
            return Err(AutogradError::mismatch(
                OP,
                av.shape(),
                bv.shape(),
                " (needs equal shapes)",
            ));
        }
        if av.is_empty() {
            return Err(AutogradError::invalid(OP, "the tensors are empty"));
        }
        let sq: f64 = av
            .data()
            .iter()
            .zip(bv.data())
            .map(|(&a, &b)| (a as f64 - b as f64).powi(2))
            .sum();
        let mut y = self.pool.take(&[]);
        y.data_mut()[0] = (sq / av.len() as f64) as f32;
        Ok(self.push(y, Op::Mse { a: ai, b: bi }))
    }

    /// Sum of all elements (in `f64`, fixed order), a scalar.
    ///
    /// # Errors
    /// [`AutogradError::UnknownVar`] for a foreign var.
    pub fn sum(&mut self, x: Var) -> Result<Var, AutogradError> {
        let xi = self.operand("sum", x)?;
        let s = ganglion_tensor::ops::sum(self.nodes[xi].value().data());
        let mut y = self.pool.take(&[]);
        y.data_mut()[0] = s as f32;
        Ok(self.push(y, Op::Sum { x: xi }))
    }

    /// Mean of all elements, a scalar.
    ///
    /// # Errors
    /// [`AutogradError::InvalidArgument`] for an empty tensor.
    pub fn mean(&mut self, x: Var) -> Result<Var, AutogradError> {
        const OP: &str = "mean";
        let xi = self.operand(OP, x)?;
        let xv = self.nodes[xi].value();
        if xv.is_empty() {
            return Err(AutogradError::invalid(OP, "the tensor is empty"));
        }
        let s = ganglion_tensor::ops::sum(xv.data()) / xv.len() as f64;
        let mut y = self.pool.take(&[]);
        y.data_mut()[0] = s as f32;
        Ok(self.push(y, Op::Mean { x: xi }))
    }
}

/// `y = softmax(x)` per row: `dx = y * (g - sum(g * y))`.
pub(crate) fn softmax_backward(ctx: &mut Backward<'_>, x: usize, y: usize, g: &Tensor) {
    let yv = ctx.value(y);
    let cols = yv.shape().last().copied().unwrap_or(0);
    ctx.contribute(x, |d| {
        if cols == 0 {
            return;
        }
        let rows = d
            .chunks_exact_mut(cols)
            .zip(g.data().chunks_exact(cols))
            .zip(yv.data().chunks_exact(cols));
        for ((d, g), y) in rows {
            let dot: f64 = g.iter().zip(y).map(|(&g, &y)| g as f64 * y as f64).sum();
            let dot = dot as f32;
            for ((d, &g), &y) in d.iter_mut().zip(g).zip(y) {
                *d = y * (g - dot);
            }
        }
    });
}

/// `y = log_softmax(x)` per row: `dx = g - exp(y) * sum(g)`.
pub(crate) fn log_softmax_backward(ctx: &mut Backward<'_>, x: usize, y: usize, g: &Tensor) {
    let yv = ctx.value(y);
    let cols = yv.shape().last().copied().unwrap_or(0);
    ctx.contribute(x, |d| {
        if cols == 0 {
            return;
        }
        let rows = d
            .chunks_exact_mut(cols)
            .zip(g.data().chunks_exact(cols))
            .zip(yv.data().chunks_exact(cols));
        for ((d, g), y) in rows {
            let sum = ganglion_tensor::ops::sum(g) as f32;
            for ((d, &g), &y) in d.iter_mut().zip(g).zip(y) {
                *d = g - y.exp() * sum;
            }
        }
    });
}

/// Fused softmax + cross-entropy, `L = mean_i loss_i`:
/// `dL/dx[i, c] = (p[i, c] - (1 - ls) [c == y_i] - ls / C) / n`.
///
/// Differentiating the fused expression instead of chaining log-softmax's rule keeps the
/// gradient a difference of probabilities in `[0, 1]`, which neither overflows nor loses
/// precision however large the logits are: that numerical stability is why the two are fused.
pub(crate) fn cross_entropy_backward(
    ctx: &mut Backward<'_>,
    x: usize,
    probs: &Tensor,
    targets: &[u32],
    smoothing: f32,
    g: &Tensor,
) {
    let [n, c] = [probs.shape()[0], probs.shape()[1]];
    let scale = g.data()[0] / n as f32;
    let (hit, uniform) = (1.0 - smoothing, smoothing / c as f32);
    ctx.contribute(x, |d| {
        let rows = d
            .chunks_exact_mut(c)
            .zip(probs.data().chunks_exact(c))
            .zip(targets);
        for ((d, p), &t) in rows {
            for (d, &p) in d.iter_mut().zip(p) {
                *d = scale * (p - uniform);
            }
            d[t as usize] -= scale * hit;
        }
    });
}

/// `L = mean((a - b)^2)` over `m` elements: `da = 2 (a - b) g / m`, `db = -da`.
pub(crate) fn mse_backward(ctx: &mut Backward<'_>, a: usize, b: usize, g: &Tensor) {
    let (av, bv) = (ctx.value(a), ctx.value(b));
    let k = 2.0 * g.data()[0] / av.len() as f32;
    ctx.contribute(a, |d| {
        super::map2(d, av.data(), bv.data(), |a, b| k * (a - b))
    });
    ctx.contribute(b, |d| {
        super::map2(d, av.data(), bv.data(), |a, b| k * (b - a))
    });
}

/// `L = factor * sum(x)` (`factor = 1 / len` for `mean`): `dx = factor * g` everywhere.
pub(crate) fn sum_backward(ctx: &mut Backward<'_>, x: usize, factor: f32, g: &Tensor) {
    let v = factor * g.data()[0];
    ctx.contribute(x, |d| d.fill(v));
}
