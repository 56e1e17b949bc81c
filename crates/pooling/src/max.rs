//! Max pooling kernels: forward with argmax, and backward by scatter-add to the argmax.

use crate::Pool2dShape;
use crate::planes::{check_len, parallel_grain};
use rayon::prelude::*;

/// Max pooling forward over NCHW `f32`, exactly as PyTorch's CPU kernel.
///
/// Writes `output` (`[n, c, out_h, out_w]`) and `argmax`: for each output, the flat offset
/// `ih * w + iw` of the chosen element inside its `(n, c)` input plane, which is what
/// [`max_pool2d_backward`] needs. Padded positions never win. Within a window elements are
/// visited row by row; a strictly larger value or any NaN replaces the current maximum, so ties
/// go to the first element and a NaN (the last one, if several) propagates.
///
/// # Panics
/// If `input.len()` differs from [`Pool2dShape::input_len`], or `output.len()` or
/// `argmax.len()` from [`Pool2dShape::output_len`].
pub fn max_pool2d_forward(
    shape: &Pool2dShape,
    input: &[f32],
    output: &mut [f32],
    argmax: &mut [u32],
) {
    const OP: &str = "max_pool2d_forward";
    check_len(OP, "input", shape.input_len(), input.len());
    check_len(OP, "output", shape.output_len(), output.len());
    check_len(OP, "argmax", shape.output_len(), argmax.len());
    if output.is_empty() {
        return;
    }
    let in_plane = shape.h * shape.w;
    let out_plane = shape.out_h() * shape.out_w();
    let window = shape.params.kernel[0] * shape.params.kernel[1];
    let plane: fn(&Pool2dShape, &[f32], &mut [f32], &mut [u32]) = if shape.is_2x2_stride_2() {
        forward_plane_2x2
    } else {
        forward_plane
    };
    let body = |((out, arg), x): ((&mut [f32], &mut [u32]), &[f32])| plane(shape, x, out, arg);
    match parallel_grain(shape.n * shape.c, out_plane * window) {
        Some(min_len) => output
            .par_chunks_mut(out_plane)
            .zip(argmax.par_chunks_mut(out_plane))
            .zip(input.par_chunks(in_plane))
            .with_min_len(min_len)
            .for_each(body),
        None => output
            .chunks_mut(out_plane)
            .zip(argmax.chunks_mut(out_plane))
            .zip(input.chunks(in_plane))
            .for_each(body),
    }
}

/// Max pooling backward: `grad_input` is overwritten with zeros, then each `grad_output` value
/// is added at its argmax, in output order (overlapping windows accumulate).
///
/// # Panics
/// If `grad_output.len()` or `argmax.len()` differs from [`Pool2dShape::output_len`], or
/// `grad_input.len()` from [`Pool2dShape::input_len`]; also if an argmax entry is not below
/// `h * w` (it did not come from [`max_pool2d_forward`] on this shape).
pub fn max_pool2d_backward(
    shape: &Pool2dShape,
    grad_output: &[f32],
    argmax: &[u32],
    grad_input: &mut [f32],
) {
    const OP: &str = "max_pool2d_backward";
    check_len(OP, "grad_output", shape.output_len(), grad_output.len());
    check_len(OP, "argmax", shape.output_len(), argmax.len());
    check_len(OP, "grad_input", shape.input_len(), grad_input.len());
    if grad_input.is_empty() {
        return;
    }
    let in_plane = shape.h * shape.w;
    let out_plane = shape.out_h() * shape.out_w();
    // Zeroing then scattering within one plane stays in L1 and measured faster than writing
    // each 2x2 block once with selects.
    let body = |(gi, (go, arg)): (&mut [f32], (&[f32], &[u32]))| backward_plane(go, arg, gi);
    match parallel_grain(shape.n * shape.c, in_plane + out_plane) {
        Some(min_len) => grad_input
            .par_chunks_mut(in_plane)
            .zip(
                grad_output
                    .par_chunks(out_plane)
                    .zip(argmax.par_chunks(out_plane)),
            )
            .with_min_len(min_len)
            .for_each(body),
        None => grad_input
            .chunks_mut(in_plane)
            .zip(grad_output.chunks(out_plane).zip(argmax.chunks(out_plane)))
            .for_each(body),
    }
}

/// One plane of the backward, any geometry: zeros, then a scatter-add in output order.
fn backward_plane(go: &[f32], arg: &[u32], gi: &mut [f32]) {
    gi.fill(0.0);
    for (&g, &a) in go.iter().zip(arg) {
        gi[a as usize] += g;
    }
}

/// Whether `v` replaces the running maximum `best`: PyTorch's `val > maxval || isnan(val)`.
#[inline(always)]
fn beats(v: f32, best: f32) -> bool {
    v > best || v.is_nan()
}

/// One plane, any geometry.
fn forward_plane(shape: &Pool2dShape, x: &[f32], out: &mut [f32], arg: &mut [u32]) {
    let (w, out_w) = (shape.w, shape.out_w());
    for (oh, (orow, arow)) in out
        .chunks_exact_mut(out_w)
        .zip(arg.chunks_exact_mut(out_w))
        .enumerate()
    {
        let rows = shape.row_span(oh);
        for (ow, (o, a)) in orow.iter_mut().zip(arow.iter_mut()).enumerate() {
            let cols = shape.col_span(ow);
            // Start from -inf at the first in-bounds element, as PyTorch does, so a window of
            // -inf values still reports a valid position.
            let mut best = f32::NEG_INFINITY;
            let mut best_at = rows.start * w + cols.start;
            for ih in rows.start..rows.end {
                let row = &x[ih * w + cols.start..ih * w + cols.end];
                for (j, &v) in row.iter().enumerate() {
                    if beats(v, best) {
                        best = v;
                        best_at = ih * w + cols.start + j;
                    }
                }
            }
            *o = best;
            *a = best_at as u32;
        }
    }
}

/// Outputs per block of the 2x2 kernel: a fixed-size inner loop the compiler turns into
/// vector selects.
const BLOCK: usize = 8;

/// One plane, 2x2 windows at stride 2 that all lie inside the input: the common CNN case.
/// Same visiting order and tie/NaN rule as [`forward_plane`], written branch-free over blocks
/// of [`BLOCK`] outputs.
fn forward_plane_2x2(shape: &Pool2dShape, x: &[f32], out: &mut [f32], arg: &mut [u32]) {
    let (w, out_w) = (shape.w, shape.out_w());
    let down = w as u32;
    for (oh, (orow, arow)) in out
        .chunks_exact_mut(out_w)
        .zip(arg.chunks_exact_mut(out_w))
        .enumerate()
    {
        let base = 2 * oh * w;
        let top = &x[base..base + 2 * out_w];
        let bottom = &x[base + w..base + w + 2 * out_w];
        // Blocks of outputs `j0..j0 + BLOCK`; a ragged row ends with one more block that
        // overlaps the one before (its shared outputs computed twice, the same both times),
        // not with a scalar tail: 14-wide rows (`lenet5`) were 6/14 scalar.
        let block = |j0: usize, o: &mut [f32], a: &mut [u32]| {
            // Fixed-size arrays, so the loop below has no bounds checks and vectorises.
            let t: &[f32; 2 * BLOCK] = top[2 * j0..2 * j0 + 2 * BLOCK].try_into().expect("block");
            let b: &[f32; 2 * BLOCK] = bottom[2 * j0..2 * j0 + 2 * BLOCK]
                .try_into()
                .expect("block");
            let o: &mut [f32; BLOCK] = (&mut o[j0..j0 + BLOCK]).try_into().expect("block");
            let a: &mut [u32; BLOCK] = (&mut a[j0..j0 + BLOCK]).try_into().expect("block");
            let first = (base + 2 * j0) as u32;
            for j in 0..BLOCK {
                let (v, at) = max_of_four(t[2 * j], t[2 * j + 1], b[2 * j], b[2 * j + 1], down);
                o[j] = v;
                a[j] = first + 2 * j as u32 + at;
            }
        };
        if out_w >= BLOCK {
            for j0 in (0..out_w - BLOCK + 1).step_by(BLOCK) {
                block(j0, orow, arow);
            }
            if !out_w.is_multiple_of(BLOCK) {
                block(out_w - BLOCK, orow, arow);
            }
            continue;
        }
        for j in 0..out_w {
            let (v, at) = max_of_four(
                top[2 * j],
                top[2 * j + 1],
                bottom[2 * j],
                bottom[2 * j + 1],
                down,
            );
            orow[j] = v;
            arow[j] = base as u32 + 2 * j as u32 + at;
        }
    }
}

/// The maximum of a 2x2 window visited as `t0, t1, b0, b1`, and its offset from `t0`
/// (`0`, `1`, `down` or `down + 1`), by the rule of [`beats`].
#[inline(always)]
fn max_of_four(t0: f32, t1: f32, b0: f32, b1: f32, down: u32) -> (f32, u32) {
    // Starting from t0 equals starting from -inf: t0 either beats -inf or is -inf itself.
    let (mut best, mut at) = (t0, 0);
    for (v, offset) in [(t1, 1), (b0, down), (b1, down + 1)] {
        let take = beats(v, best);
        best = if take { v } else { best };
        at = if take { offset } else { at };
    }
    (best, at)
}
