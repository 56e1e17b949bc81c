//! Forward convolution by im2col + GEMM: per image, pixel tile and group,
//! `Y_g[cout/g, tile] = W_g[cout/g, cin/g*kh*kw] x col_g[cin/g*kh*kw, tile]`, bias first.

use crate::gemm::{Beta, MatMut, MatRef, gemm};
use crate::im2col::Taps;
use crate::params::assert_len;
use crate::plan::{Par, Plan, enough_tasks, for_chunks};
use crate::{Conv2dShape, ConvWorkspace};
use rayon::prelude::*;

/// Forward convolution: `output = conv2d(input, weight) + bias`, overwriting `output`.
///
/// `input` is `[n, cin, h, w]`, `weight` `[cout, cin/groups, kh, kw]`, `bias` `[cout]` and
/// `output` `[n, cout, out_h, out_w]`, all row-major. Work is spread over the current rayon
/// pool; the result does not depend on its thread count.
///
/// # Panics
/// If a slice length disagrees with `shape`, or `shape` was edited into one
/// [`Conv2dShape::new`] rejects.
pub fn conv2d_forward(
    shape: &Conv2dShape,
    input: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    output: &mut [f32],
    ws: &mut ConvWorkspace,
) {
    const OP: &str = "conv2d_forward";
    shape.assert_valid(OP);
    assert_len(OP, "input", input.len(), shape.input_len());
    assert_len(OP, "weight", weight.len(), shape.weight_len());
    if let Some(b) = bias {
        assert_len(OP, "bias", b.len(), shape.cout);
    }
    assert_len(OP, "output", output.len(), shape.output_len());
    let plan = Plan::new(shape);
    let fwd = Forward {
        plan,
        taps: Taps::new(shape),
        weight,
        bias,
    };
    let threads = rayon::current_num_threads();
    if enough_tasks(shape.n, threads) {
        // Whole images per task: no synchronisation inside an image.
        let per = shape.n.div_ceil(threads);
        let slots = ws.slots(shape.n.div_ceil(per), plan.col_len(), 0);
        output
            .par_chunks_mut(per * plan.out_img)
            .zip(input.par_chunks(per * plan.in_img))
            .zip(slots.par_iter_mut())
            .for_each(|((y, x), slot)| {
                for (y_img, x_img) in y.chunks_mut(plan.out_img).zip(x.chunks(plan.in_img)) {
                    fwd.image(x_img, y_img, &mut slot.col, Par::Seq);
                }
            });
    } else {
        // Too few images to go round: split each image over the threads.
        let slot = &mut ws.slots(1, plan.col_len(), 0)[0];
        for (y_img, x_img) in output
            .chunks_mut(plan.out_img)
            .zip(input.chunks(plan.in_img))
        {
            fwd.image(x_img, y_img, &mut slot.col, Par::Split(threads));
        }
    }
}

/// What every task of one forward call shares.
struct Forward<'a> {
    plan: Plan,
    taps: Taps,
    weight: &'a [f32],
    bias: Option<&'a [f32]>,
}

impl Forward<'_> {
    /// One image: `x` is `[cin, h, w]`, `y` is `[cout, out_h, out_w]`.
    fn image(&self, x: &[f32], y: &mut [f32], col: &mut [f32], par: Par) {
        let p = &self.plan;
        // The bias seeds the output and the GEMM accumulates onto it: one pass, not two.
        let beta = match self.bias {
            Some(bias) => {
                for (row, &b) in y.chunks_mut(p.pixels).zip(bias) {
                    row.fill(b);
                }
                Beta::Accumulate
            }
            None => Beta::Overwrite,
        };
        if p.pointwise {
            self.gemm_tile(x, p.pixels, (0, p.pixels), y, beta, par);
            return;
        }
        for (t0, t1) in p.tiles() {
            let len = t1 - t0;
            let col = &mut col[..p.k_all * len];
            for_chunks(col, p.taps * len, par, |c, rows| {
                self.taps
                    .im2col(&x[c * p.plane..(c + 1) * p.plane], t0, t1, rows);
            });
            self.gemm_tile(col, len, (t0, t1), y, beta, par);
        }
    }

    /// `Y_g[:, t0..t1] (+)= W_g x B_g` for every group, where `b` holds the `k_all` column rows
    /// (row stride `b_rs`) of the tile's pixels.
    fn gemm_tile(
        &self,
        b: &[f32],
        b_rs: usize,
        (t0, t1): (usize, usize),
        y: &mut [f32],
        beta: Beta,
        par: Par,
    ) {
        let p = &self.plan;
        let len = t1 - t0;
        let rb = Plan::row_block(p.cout_g, par);
        for_chunks(y, p.cout_g * p.pixels, par, |g, y_g| {
            let b_g = MatRef::new(&b[g * p.k_g * b_rs..], p.k_g, len, b_rs, 1);
            for_chunks(y_g, rb * p.pixels, par, |blk, y_rows| {
                let rows = y_rows.len() / p.pixels;
                let r0 = g * p.cout_g + blk * rb;
                let w = MatRef::new(&self.weight[r0 * p.k_g..], rows, p.k_g, p.k_g, 1);
                gemm(
                    p.kernel,
                    w,
                    b_g,
                    beta,
                    MatMut::new(&mut y_rows[t0..], rows, len, p.pixels),
                );
            });
        });
    }
}
