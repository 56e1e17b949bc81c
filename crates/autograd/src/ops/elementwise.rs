//! Elementwise ops: add (with per-channel bias broadcast), sub, mul, scale and the
//! activations, forward and backward.

use super::{map1, map2, map2_inplace, reduce};
use crate::graph::Backward;
use crate::op::Op;
use crate::{AutogradError, Graph, Var};
use ganglion_tensor::Tensor;

impl Graph {
    /// Shared body of the binary ops that need equal shapes.
    fn binary_same_shape(
        &mut self,
        op: &'static str,
        a: Var,
        b: Var,
        f: impl Fn(f32, f32) -> f32 + Sync,
        make: impl FnOnce(usize, usize) -> Op,
    ) -> Result<Var, AutogradError> {
        let (ai, bi) = (self.operand(op, a)?, self.operand(op, b)?);
        let (av, bv) = (self.nodes[ai].value(), self.nodes[bi].value());
        if av.shape() != bv.shape() {
            return Err(AutogradError::mismatch(
                op,
                av.shape(),
                bv.shape(),
                " (needs equal shapes)",
            ));
        }
        let mut y = self.pool.take(av.shape());
        map2(y.data_mut(), av.data(), bv.data(), f);
        Ok(self.push(y, make(ai, bi)))
    }

    /// Shared body of the unary elementwise ops.
    fn unary(
        &mut self,
        op: &'static str,
        x: Var,
        f: impl Fn(f32) -> f32 + Sync,
        make: impl FnOnce(usize) -> Op,
    ) -> Result<Var, AutogradError> {
        let xi = self.operand(op, x)?;
        let xv = self.nodes[xi].value();
        let mut y = self.pool.take(xv.shape());
        map1(y.data_mut(), xv.data(), f);
        Ok(self.push(y, make(xi)))
    }

    /// `a + b` for equal shapes, or with `b: [C]` broadcast over dim 1 of `a: [N, C, ...]` (a
    /// bias).
    ///
    /// # Errors
    /// [`AutogradError::ShapeMismatch`] naming `add` and both shapes otherwise.
    pub fn add(&mut self, a: Var, b: Var) -> Result<Var, AutogradError> {
        const OP: &str = "add";
        let (ai, bi) = (self.operand(OP, a)?, self.operand(OP, b)?);
        let (av, bv) = (self.nodes[ai].value(), self.nodes[bi].value());
        if av.shape() == bv.shape() {
            return self.binary_same_shape(OP, a, b, |a, b| a + b, |a, b| Op::Add { a, b });
        }
        let bias_fits = av.rank() >= 2 && bv.shape() == [av.shape()[1]];
        if !bias_fits {
            return Err(AutogradError::mismatch(
                OP,
                av.shape(),
                bv.shape(),
                " (needs equal shapes, or a second operand [C] for a first operand [N, C, ...])",
            ));
        }
        let inner: usize = av.shape()[2..].iter().product();
        let mut y = self.pool.take(av.shape());
        if inner > 0 {
            let bd = bv.data();
            let planes = y
                .data_mut()
                .chunks_exact_mut(inner)
                .zip(av.data().chunks_exact(inner));
            for (k, (out, x)) in planes.enumerate() {
                let c = bd[k % bd.len()];
                for (o, &x) in out.iter_mut().zip(x) {
                    *o = x + c;
                }
            }
        }
        Ok(self.push(y, Op::AddBias { a: ai, b: bi }))
    }

    /// `a - b` (equal shapes).
    ///
    /// # Errors
    /// [`AutogradError::ShapeMismatch`] naming `sub` and both shapes.
    pub fn sub(&mut self, a: Var, b: Var) -> Result<Var, AutogradError> {
        self.binary_same_shape("sub", a, b, |a, b| a - b, |a, b| Op::Sub { a, b })
    }

    /// `a * b` elementwise (equal shapes).
    ///
    /// # Errors
    /// [`AutogradError::ShapeMismatch`] naming `mul` and both shapes.
    pub fn mul(&mut self, a: Var, b: Var) -> Result<Var, AutogradError> {
        self.binary_same_shape("mul", a, b, |a, b| a * b, |a, b| Op::Mul { a, b })
    }

    /// `s * x`.
    ///
    /// # Errors
    /// [`AutogradError::UnknownVar`] for a foreign var.
    pub fn scale(&mut self, x: Var, s: f32) -> Result<Var, AutogradError> {
        self.unary("scale", x, |v| s * v, |x| Op::Scale { x, s })
    }

    /// `max(x, 0)`.
    ///
    /// # Errors
    /// [`AutogradError::UnknownVar`] for a foreign var.
    pub fn relu(&mut self, x: Var) -> Result<Var, AutogradError> {
        self.unary("relu", x, |v| v.max(0.0), |x| Op::Relu { x })
    }

    /// `x` where `x > 0`, else `negative_slope * x`.
    ///
    /// # Errors
    /// [`AutogradError::UnknownVar`] for a foreign var.
    pub fn leaky_relu(&mut self, x: Var, negative_slope: f32) -> Result<Var, AutogradError> {
        let slope = negative_slope;
        self.unary(
            "leaky_relu",
            x,
            |v| if v > 0.0 { v } else { slope * v },
            |x| Op::LeakyRelu { x, slope },
        )
    }

    /// `1 / (1 + exp(-x))`.
    ///
    /// # Errors
    /// [`AutogradError::UnknownVar`] for a foreign var.
    pub fn sigmoid(&mut self, x: Var) -> Result<Var, AutogradError> {
        self.unary(
            "sigmoid",
            x,
            |v| 1.0 / (1.0 + (-v).exp()),
            |x| Op::Sigmoid { x },
        )
    }

    /// `tanh(x)`.
    ///
    /// # Errors
    /// [`AutogradError::UnknownVar`] for a foreign var.
    pub fn tanh(&mut self, x: Var) -> Result<Var, AutogradError> {
        self.unary("tanh", x, f32::tanh, |x| Op::Tanh { x })
    }
}

/// `y = a + b`: `da = g`, `db = g`.
pub(crate) fn add_backward(ctx: &mut Backward<'_>, a: usize, b: usize, g: &Tensor) {
    ctx.contribute(a, |d| d.copy_from_slice(g.data()));
    ctx.contribute(b, |d| d.copy_from_slice(g.data()));
}

/// [`add_backward`] writing into `g`'s buffer: `g` itself becomes `db` (and `da` when `b` wants
/// no gradient), contributions committed in the same order.
pub(crate) fn add_backward_reusing(ctx: &mut Backward<'_>, a: usize, b: usize, g: Tensor) {
    match (ctx.needs(a), ctx.needs(b)) {
        (true, true) => {
            ctx.contribute(a, |d| d.copy_from_slice(g.data()));
            ctx.commit(b, g);
        }
        (true, false) => ctx.commit(a, g),
        (false, true) => ctx.commit(b, g),
        (false, false) => ctx.pool.give(g),
    }
}

/// `y[n, c, ..] = a[n, c, ..] + b[c]`: `da = g`, `db[c] = sum over n and positions of g`.
pub(crate) fn add_bias_backward(ctx: &mut Backward<'_>, a: usize, b: usize, g: &Tensor) {
    ctx.contribute(a, |d| d.copy_from_slice(g.data()));
    ctx.contribute(b, |db| channel_sums(g, db));
}

/// `out[c] = sum of g[n, c, ...] over n and the trailing positions`, each plane summed in
/// `f64` and the planes added batch item by batch item (a fixed order): the gradient of a
/// per-channel bias.
pub(crate) fn channel_sums(g: &Tensor, out: &mut [f32]) {
    let shape = g.shape();
    let (c, inner) = (shape[1], shape[2..].iter().product::<usize>());
    let gd = g.data();
    reduce::for_each_channel(out, gd.len(), |ch| {
        reduce::planes(gd, c, inner, ch)
            .map(reduce::sum)
            .sum::<f64>() as f32
    });
}

/// `y = a - b`: `da = g`, `db = -g`.
pub(crate) fn sub_backward(ctx: &mut Backward<'_>, a: usize, b: usize, g: &Tensor) {
    ctx.contribute(a, |d| d.copy_from_slice(g.data()));
    ctx.contribute(b, |d| map1(d, g.data(), |g| -g));
}

/// `y = a * b`: `da = g * b`, `db = g * a`.
pub(crate) fn mul_backward(ctx: &mut Backward<'_>, a: usize, b: usize, g: &Tensor) {
    let (av, bv) = (ctx.value(a), ctx.value(b));
    ctx.contribute(a, |d| map2(d, g.data(), bv.data(), |g, b| g * b));
    ctx.contribute(b, |d| map2(d, g.data(), av.data(), |g, a| g * a));
}

/// `y = s x`: `dx = s g`.
pub(crate) fn scale_backward(ctx: &mut Backward<'_>, x: usize, s: f32, g: &Tensor) {
    ctx.contribute(x, |d| map1(d, g.data(), |g| s * g));
}

/// `y = max(x, 0)`: `dx = g` where `y > 0`, else 0.
pub(crate) fn relu_backward(ctx: &mut Backward<'_>, x: usize, y: usize, g: &Tensor) {
    let yv = ctx.value(y);
    ctx.contribute(x, |d| {
        map2(d, g.data(), yv.data(), |g, y| if y > 0.0 { g } else { 0.0 })
    });
}

/// [`relu_backward`] writing `dx` over `g`'s buffer.
pub(crate) fn relu_backward_reusing(ctx: &mut Backward<'_>, x: usize, y: usize, mut g: Tensor) {
    if !ctx.needs(x) {
        ctx.pool.give(g);
        return;
    }
    let yv = ctx.value(y);
    map2_inplace(
        g.data_mut(),
        yv.data(),
        |g, y| if y > 0.0 { g } else { 0.0 },
    );
    ctx.commit(x, g);
}

/// `y = x if x > 0 else a x`: `dx = g` where `x > 0`, else `a g`.
pub(crate) fn leaky_relu_backward(ctx: &mut Backward<'_>, x: usize, slope: f32, g: &Tensor) {
    let xv = ctx.value(x);
    ctx.contribute(x, |d| {
        map2(
            d,
            g.data(),
            xv.data(),
            |g, x| if x > 0.0 { g } else { slope * g },
        )
    });
}

/// `y = sigmoid(x)`: `dx = g y (1 - y)`.
pub(crate) fn sigmoid_backward(ctx: &mut Backward<'_>, x: usize, y: usize, g: &Tensor) {
    let yv = ctx.value(y);
    ctx.contribute(x, |d| {
        map2(d, g.data(), yv.data(), |g, y| g * y * (1.0 - y))
    });
}

/// `y = tanh(x)`: `dx = g (1 - y^2)`.
pub(crate) fn tanh_backward(ctx: &mut Backward<'_>, x: usize, y: usize, g: &Tensor) {
    let yv = ctx.value(y);
    ctx.contribute(x, |d| {
        map2(d, g.data(), yv.data(), |g, y| g * (1.0 - y * y))
    });
}
