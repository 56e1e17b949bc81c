//! Average pooling kernels, forward and backward, with or without padding in the divisor.

use crate::Pool2dShape;
use crate::params::Span;
use crate::planes::{check_len, parallel_grain};
use rayon::prelude::*;

/// Average pooling forward over NCHW `f32`, exactly as PyTorch's CPU kernel.
///
/// Each output is the sum of the window's in-bounds elements divided by
///
/// * with `count_include_pad`: the size of the window clipped to the padded extent
///   (`min(start + k, in + pad) - start` per axis), so padding counts but the part of a
///   `ceil_mode` window that hangs past the right padding does not;
/// * without: the number of in-bounds elements.
///
/// # Panics
/// If `input.len()` differs from [`Pool2dShape::input_len`] or `output.len()` from
/// [`Pool2dShape::output_len`].
pub fn avg_pool2d_forward(
    shape: &Pool2dShape,
    count_include_pad: bool,
    input: &[f32],
    output: &mut [f32],
) {
    const OP: &str = "avg_pool2d_forward";
    check_len(OP, "input", shape.input_len(), input.len());
    check_len(OP, "output", shape.output_len(), output.len());
    if output.is_empty() {
        return;
    }
    let in_plane = shape.h * shape.w;
    let out_plane = shape.out_h() * shape.out_w();
    let window = shape.params.kernel[0] * shape.params.kernel[1];
    let body = |(out, x): (&mut [f32], &[f32])| forward_plane(shape, count_include_pad, x, out);
    match parallel_grain(shape.n * shape.c, out_plane * window) {
        Some(min_len) => output
            .par_chunks_mut(out_plane)
            .zip(input.par_chunks(in_plane))
            .with_min_len(min_len)
            .for_each(body),
        None => output
            .chunks_mut(out_plane)
            .zip(input.chunks(in_plane))
            .for_each(body),
    }
}

/// Average pooling backward: `grad_input` is overwritten; each `grad_output` value, divided by
/// its window's divisor (as in [`avg_pool2d_forward`]), is added to every in-bounds element of
/// the window, in output order.
///
/// # Panics
/// If `grad_output.len()` differs from [`Pool2dShape::output_len`] or `grad_input.len()` from
/// [`Pool2dShape::input_len`].
pub fn avg_pool2d_backward(
    shape: &Pool2dShape,
    count_include_pad: bool,
    grad_output: &[f32],
    grad_input: &mut [f32],
) {
    const OP: &str = "avg_pool2d_backward";
    check_len(OP, "grad_output", shape.output_len(), grad_output.len());
    check_len(OP, "grad_input", shape.input_len(), grad_input.len());
    if grad_input.is_empty() {
        return;
    }
    let in_plane = shape.h * shape.w;
    let out_plane = shape.out_h() * shape.out_w();
    let window = shape.params.kernel[0] * shape.params.kernel[1];
    let body = |(gi, go): (&mut [f32], &[f32])| backward_plane(shape, count_include_pad, go, gi);
    match parallel_grain(shape.n * shape.c, in_plane + out_plane * window) {
        Some(min_len) => grad_input
            .par_chunks_mut(in_plane)
            .zip(grad_output.par_chunks(out_plane))
            .with_min_len(min_len)
            .for_each(body),
        None => grad_input
            .chunks_mut(in_plane)
            .zip(grad_output.chunks(out_plane))
            .for_each(body),
    }
}

/// The divisor of a window (PyTorch's `divide_factor`).
#[inline(always)]
fn divisor(rows: Span, cols: Span, count_include_pad: bool) -> f32 {
    if count_include_pad {
        (rows.padded_len * cols.padded_len) as f32
    } else {
        (rows.len() * cols.len()) as f32
    }
}

/// One plane of the forward.
fn forward_plane(shape: &Pool2dShape, count_include_pad: bool, x: &[f32], out: &mut [f32]) {
    let (w, out_w) = (shape.w, shape.out_w());
    for (oh, orow) in out.chunks_exact_mut(out_w).enumerate() {
        let rows = shape.row_span(oh);
        for (ow, o) in orow.iter_mut().enumerate() {
            let cols = shape.col_span(ow);
            // Validated geometry never yields an empty window; PyTorch writes 0 if it did.
            if rows.len() == 0 || cols.len() == 0 {
                *o = 0.0;
                continue;
            }
            let mut sum = 0.0f32;
            for ih in rows.start..rows.end {
                for &v in &x[ih * w + cols.start..ih * w + cols.end] {
                    sum += v;
                }
            }
            *o = sum / divisor(rows, cols, count_include_pad);
        }
    }
}

/// One plane of the backward.
fn backward_plane(shape: &Pool2dShape, count_include_pad: bool, go: &[f32], gi: &mut [f32]) {
    let (w, out_w) = (shape.w, shape.out_w());
    gi.fill(0.0);
    for (oh, grow) in go.chunks_exact(out_w).enumerate() {
        let rows = shape.row_span(oh);
        for (ow, &g) in grow.iter().enumerate() {
            let cols = shape.col_span(ow);
            if rows.len() == 0 || cols.len() == 0 {
                continue;
            }
            let delta = g / divisor(rows, cols, count_include_pad);
            for ih in rows.start..rows.end {
                for v in &mut gi[ih * w + cols.start..ih * w + cols.end] {
                    *v += delta;
                }
            }
        }
    }
}
