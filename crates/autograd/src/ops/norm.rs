//! Batch normalisation over `[N, C, H, W]` (train and eval) and inverted dropout, forward
//! and backward.

use super::shape::dims4;
use super::{map2, reduce};
use crate::graph::Backward;
use crate::op::Op;
use crate::{AutogradError, Graph, Param, Var};
use ganglion_tensor::Tensor;

/// How [`Graph::batch_norm2d`] normalises.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BatchNormMode {
    /// With the batch's own mean and biased variance; the running statistics are updated as
    /// PyTorch does: `running = (1 - momentum) * running + momentum * batch_stat`, the
    /// variance entering unbiased (`* m / (m - 1)` for `m = N * H * W`).
    Train {
        /// Weight of the new batch statistic (PyTorch's default is 0.1).
        momentum: f32,
    },
    /// With the running statistics; nothing is updated.
    Eval,
}

impl Graph {
    /// Inverted dropout: zeroes each element with probability `p` (drawn from the graph's
    /// random generator) and scales the survivors by `1 / (1 - p)`, so the expectation is
    /// unchanged. `p = 0` is the identity and draws nothing.
    ///
    /// # Errors
    /// [`AutogradError::InvalidArgument`] naming `dropout` when `p` is not in `[0, 1)`.
    pub fn dropout(&mut self, x: Var, p: f32) -> Result<Var, AutogradError> {
        const OP: &str = "dropout";
        let xi = self.operand(OP, x)?;
        if !(0.0..1.0).contains(&p) {
            return Err(AutogradError::invalid(
                OP,
                format!("p = {p} must be in [0, 1)"),
            ));
        }
        let xv = self.nodes[xi].value();
        let mut mask = self.pool.take(xv.shape());
        if p == 0.0 {
            mask.fill(1.0);
        } else {
            let keep = 1.0 / (1.0 - p);
            // Without a branch: the draws are random, so a branch on them mispredicts about
            // half the time at p = 0.5 (4% of `mnistnet`'s training step).
            for m in mask.data_mut() {
                *m = keep * f32::from(u8::from(self.rng.uniform() >= p));
            }
        }
        let mut y = self.pool.take(xv.shape());
        map2(y.data_mut(), xv.data(), mask.data(), |x, m| x * m);
        Ok(self.push(y, Op::Dropout { x: xi, mask }))
    }

    /// Batch normalisation of `x: [N, C, H, W]` per channel:
    /// `y = (x - mean) / sqrt(var + eps) * weight + bias`, with `weight`, `bias`,
    /// `running_mean` and `running_var` all of shape `[C]`. See [`BatchNormMode`] for where
    /// `mean` and `var` come from; train mode updates the running statistics in place (also
    /// in an inference graph, as PyTorch does under `no_grad`).
    ///
    /// # Errors
    /// [`AutogradError::BadShape`] naming `batch_norm2d` and the shapes when they do not fit;
    /// [`AutogradError::InvalidArgument`] for a negative or non-finite `eps` or momentum, or
    /// train mode with a single value per channel.
    #[allow(clippy::too_many_arguments)]
    pub fn batch_norm2d(
        &mut self,
        x: Var,
        weight: Var,
        bias: Var,
        running_mean: &Param,
        running_var: &Param,
        mode: BatchNormMode,
        eps: f32,
    ) -> Result<Var, AutogradError> {
        const OP: &str = "batch_norm2d";
        let (xi, wi, bi) = (
            self.operand(OP, x)?,
            self.operand(OP, weight)?,
            self.operand(OP, bias)?,
        );
        let xv = self.nodes[xi].value();
        let [n, c, h, w] = dims4(OP, "input", xv)?;
        // Shapes are compared in place and the message is built only on failure: this runs
        // for every batch-norm layer of every training step, which must not allocate.
        let check = |what: &'static str, shape: &[usize]| {
            if shape == [c] {
                return Ok(());
            }
            let want = format!("must be [{c}] for input {:?}", xv.shape());
            Err(AutogradError::bad_shape(OP, what, shape, want))
        };
        check("weight", self.nodes[wi].value().shape())?;
        check("bias", self.nodes[bi].value().shape())?;
        check("running_mean", running_mean.read().value.shape())?;
        check("running_var", running_var.read().value.shape())?;
        if !(eps >= 0.0 && eps.is_finite()) {
            return Err(AutogradError::invalid(
                OP,
                format!("eps = {eps} must be finite and >= 0"),
            ));
        }
        let (hw, m) = (h * w, n * h * w);
        if let BatchNormMode::Train { momentum } = mode {
            if m <= 1 {
                return Err(AutogradError::invalid(
                    OP,
                    format!(
                        "training needs more than one value per channel but input has shape {:?}",
                        xv.shape()
                    ),
                ));
            }
            if !momentum.is_finite() {
                return Err(AutogradError::invalid(
                    OP,
                    format!("momentum = {momentum} must be finite"),
                ));
            }
        }
        let xd = xv.data();
        let mut mean = self.pool.take(&[c]);
        let mut inv_std = self.pool.take(&[c]);
        let eps = eps as f64;
        let train = match mode {
            BatchNormMode::Train { momentum } => {
                // One pass in f64 over the values less the channel's first one. The shift
                // keeps `sum(d^2) / m - mean(d)^2` free of cancellation, and, unlike a second
                // pass around the mean rounded to f32, does not add that rounding's square
                // to the variance (which, for values that differ only in their last bits,
                // is as large as the variance itself).
                let mut var = self.pool.take(&[c]);
                let channel = |ch| reduce::planes(xd, c, hw, ch);
                reduce::for_each_channel2(mean.data_mut(), var.data_mut(), xd.len(), |ch| {
                    let shift = channel(ch).next().map_or(0.0, |p| p[0] as f64);
                    let (s1, s2) = channel(ch)
                        .map(|p| reduce::sum_and_sq_dev(p, shift))
                        .fold((0.0, 0.0), |(a, b), (p, q)| (a + p, b + q));
                    let d = s1 / m as f64;
                    let v = (s2 / m as f64 - d * d).max(0.0);
                    ((shift + d) as f32, v as f32)
                });
                for (s, &v) in inv_std.data_mut().iter_mut().zip(var.data()) {
                    *s = (1.0 / (v as f64 + eps).sqrt()) as f32;
                }
                let (mom, unbias) = (momentum as f64, m as f64 / (m - 1) as f64);
                let update = |running: &Param, stat: &Tensor, factor: f64| {
                    let mut r = running.write();
                    for (r, &s) in r.value.data_mut().iter_mut().zip(stat.data()) {
                        *r = ((1.0 - mom) * *r as f64 + mom * s as f64 * factor) as f32;
                    }
                };
                update(running_mean, &mean, 1.0);
                update(running_var, &var, unbias);
                self.pool.give(var);
                true
            }
            BatchNormMode::Eval => {
                mean.data_mut()
                    .copy_from_slice(running_mean.read().value.data());
                let rv = running_var.read();
                for (s, &v) in inv_std.data_mut().iter_mut().zip(rv.value.data()) {
                    *s = (1.0 / (v as f64 + eps).sqrt()) as f32;
                }
                false
            }
        };
        let (wd, bd) = (self.nodes[wi].value().data(), self.nodes[bi].value().data());
        let (mu, s) = (mean.data(), inv_std.data());
        let mut y = self.pool.take(xv.shape());
        reduce::for_each_plane(y.data_mut(), xd, hw, |k, out, x| {
            let ch = k % c;
            let (mu, scale, shift) = (mu[ch], s[ch] * wd[ch], bd[ch]);
            for (o, &x) in out.iter_mut().zip(x) {
                *o = (x - mu) * scale + shift;
            }
        });
        Ok(self.push(
            y,
            Op::BatchNorm {
                x: xi,
                w: wi,
                b: bi,
                mean,
                inv_std,
                train,
            },
        ))
    }
}

/// `y = x * mask`: `dx = g * mask`.
pub(crate) fn dropout_backward(ctx: &mut Backward<'_>, x: usize, mask: &Tensor, g: &Tensor) {
    ctx.contribute(x, |d| map2(d, g.data(), mask.data(), |g, m| g * m));
}

/// `y = xhat * w + b` with `xhat = (x - mean) * inv_std`, per channel over `m = N H W`
/// values:
/// `dw = sum(g * xhat)`, `db = sum(g)`; in eval mode (`mean`, `inv_std` constants)
/// `dx = g * w * inv_std`; in train mode (they depend on `x`), with `dxhat = g * w`,
/// `dx = inv_std / m * (m * dxhat - sum(dxhat) - xhat * sum(dxhat * xhat))`.
pub(crate) fn batch_norm2d_backward(
    ctx: &mut Backward<'_>,
    xwb: [usize; 3],
    mean: &Tensor,
    inv_std: &Tensor,
    train: bool,
    g: &Tensor,
) {
    let sums = weight_and_bias_grads(ctx, xwb, mean, inv_std, g);
    let [x, w, _] = xwb;
    let co = DxTerms::new(ctx, x, w, mean, inv_std, train, &sums);
    ctx.contribute(x, |d| {
        reduce::for_each_plane(d, g.data(), co.hw, |k, dx, g| co.plane(k, dx, Some(g)));
    });
    ctx.pool.give(sums);
}

/// [`batch_norm2d_backward`] writing `dx` over `g`'s buffer (each element of `dx` depends on
/// the same element of `g` and on per-channel sums taken before).
pub(crate) fn batch_norm2d_backward_reusing(
    ctx: &mut Backward<'_>,
    xwb: [usize; 3],
    mean: &Tensor,
    inv_std: &Tensor,
    train: bool,
    mut g: Tensor,
) {
    let sums = weight_and_bias_grads(ctx, xwb, mean, inv_std, &g);
    let [x, w, _] = xwb;
    if ctx.needs(x) {
        let co = DxTerms::new(ctx, x, w, mean, inv_std, train, &sums);
        reduce::for_each_plane_inplace(g.data_mut(), co.hw, |k, dx| co.plane(k, dx, None));
        ctx.commit(x, g);
    } else {
        ctx.pool.give(g);
    }
    ctx.pool.give(sums);
}

/// Per channel `sum(g)` and `sum(g * xhat)` (in `f64`, fixed order), contributed as the
/// bias and weight gradients and returned as `[2, c]` for `dx`.
fn weight_and_bias_grads(
    ctx: &mut Backward<'_>,
    [x, w, b]: [usize; 3],
    mean: &Tensor,
    inv_std: &Tensor,
    g: &Tensor,
) -> Tensor {
    let xv = ctx.value(x);
    let s = xv.shape();
    let (c, hw) = (s[1], s[2] * s[3]);
    let (xd, gd) = (xv.data(), g.data());
    let (mu, inv) = (mean.data(), inv_std.data());
    let mut sums = ctx.pool.take(&[2, c]);
    let (sum_g, sum_gx) = sums.data_mut().split_at_mut(c);
    reduce::for_each_channel2(sum_g, sum_gx, xd.len(), |ch| {
        let (sg, sgd) = reduce::planes(gd, c, hw, ch)
            .zip(reduce::planes(xd, c, hw, ch))
            .map(|(g, x)| reduce::sum_and_dot_dev(g, x, mu[ch] as f64))
            .fold((0.0, 0.0), |(a, b), (p, q)| (a + p, b + q));
        (sg as f32, (sgd * inv[ch] as f64) as f32)
    });
    let (sum_g, sum_gx) = sums.data().split_at(c);
    ctx.contribute(w, |d| d.copy_from_slice(sum_gx));
    ctx.contribute(b, |d| d.copy_from_slice(sum_g));
    sums
}

/// What batch norm's `dx` needs besides `g`: the input, the statistics, the weight and the
/// per-channel sums.
struct DxTerms<'a> {
    x: &'a [f32],
    mean: &'a [f32],
    inv_std: &'a [f32],
    weight: &'a [f32],
    sum_g: &'a [f32],
    sum_gx: &'a [f32],
    c: usize,
    hw: usize,
    m: usize,
    train: bool,
}

impl<'a> DxTerms<'a> {
    fn new(
        ctx: &Backward<'a>,
        x: usize,
        w: usize,
        mean: &'a Tensor,
        inv_std: &'a Tensor,
        train: bool,
        sums: &'a Tensor,
    ) -> Self {
        let xv = ctx.value(x);
        let s = xv.shape();
        let c = s[1];
        let (sum_g, sum_gx) = sums.data().split_at(c);
        Self {
            x: xv.data(),
            mean: mean.data(),
            inv_std: inv_std.data(),
            weight: ctx.value(w).data(),
            sum_g,
            sum_gx,
            c,
            hw: s[2] * s[3],
            m: xv.len() / c.max(1),
            train,
        }
    }

    /// `dx` of plane `k` (channel `k % c`) into `dx`, from `g`, or in place from `dx` itself
    /// when `g` is `None`.
    fn plane(&self, k: usize, dx: &mut [f32], g: Option<&[f32]>) {
        let ch = k % self.c;
        let x = &self.x[k * self.hw..(k + 1) * self.hw];
        let (mu, s, wc) = (self.mean[ch], self.inv_std[ch], self.weight[ch]);
        if self.train {
            let mf = self.m as f32;
            let (sg, sgx) = (wc * self.sum_g[ch], wc * self.sum_gx[ch]);
            let k0 = s / mf;
            apply(dx, g, x, |g, x| {
                let xhat = (x - mu) * s;
                k0 * (mf * wc * g - sg - xhat * sgx)
            });
        } else {
            let k0 = wc * s;
            apply(dx, g, x, |g, _| g * k0);
        }
    }
}

/// `dx[i] = f(g[i], x[i])`, with `g` read from `dx` itself when `None`.
#[inline(always)]
fn apply(dx: &mut [f32], g: Option<&[f32]>, x: &[f32], f: impl Fn(f32, f32) -> f32) {
    match g {
        Some(g) => {
            for ((dx, &g), &x) in dx.iter_mut().zip(g).zip(x) {
                *dx = f(g, x);
            }
        }
        None => {
            for (dx, &x) in dx.iter_mut().zip(x) {
                *dx = f(*dx, x);
            }
        }
    }
}
