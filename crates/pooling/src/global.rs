//! Global average pooling: the mean of each (n, c) plane, forward and backward.

use crate::planes::{check_len, parallel_grain};
use rayon::prelude::*;

/// Lanes of independent partial sums: enough for the compiler to vectorise, and a fixed
/// summation order, so the result does not depend on the thread count.
const LANES: usize = 8;

/// Global average pooling forward: `output[n * c]` is the mean of each `h x w` plane of the NCHW
/// `input` (the `[n, c, 1, 1]` result of PyTorch's `adaptive_avg_pool2d(x, 1)`, flattened).
///
/// The sum runs in eight interleaved partial sums combined in a fixed order. Planes with no
/// elements (`h * w == 0`) give NaN, like PyTorch's mean of an empty tensor.
///
/// # Panics
/// If `input.len()` is not `n * c * h * w` or `output.len()` is not `n * c`.
pub fn global_avg_pool2d_forward(input_dims: [usize; 4], input: &[f32], output: &mut [f32]) {
    const OP: &str = "global_avg_pool2d_forward";
    let [n, c, h, w] = input_dims;
    let plane = h * w;
    check_len(OP, "input", n * c * plane, input.len());
    check_len(OP, "output", n * c, output.len());
    if plane == 0 {
        output.fill(f32::NAN);
        return;
    }
    let scale = plane as f32;
    let body = |(o, x): (&mut f32, &[f32])| *o = plane_sum(x) / scale;
    match parallel_grain(n * c, plane) {
        Some(min_len) => output
            .par_iter_mut()
            .zip(input.par_chunks(plane))
            .with_min_len(min_len)
            .for_each(body),
        None => output.iter_mut().zip(input.chunks(plane)).for_each(body),
    }
}

/// Global average pooling backward: every element of plane `i` of `grad_input` is overwritten
/// with `grad_output[i] / (h * w)`.
///
/// # Panics
/// If `grad_output.len()` is not `n * c` or `grad_input.len()` is not `n * c * h * w`.
pub fn global_avg_pool2d_backward(
    input_dims: [usize; 4],
    grad_output: &[f32],
    grad_input: &mut [f32],
) {
    const OP: &str = "global_avg_pool2d_backward";
    let [n, c, h, w] = input_dims;
    let plane = h * w;
    check_len(OP, "grad_output", n * c, grad_output.len());
    check_len(OP, "grad_input", n * c * plane, grad_input.len());
    if plane == 0 {
        return;
    }
    let scale = plane as f32;
    let body = |(gi, &g): (&mut [f32], &f32)| gi.fill(g / scale);
    match parallel_grain(n * c, plane) {
        Some(min_len) => grad_input
            .par_chunks_mut(plane)
            .zip(grad_output.par_iter())
            .with_min_len(min_len)
            .for_each(body),
        None => grad_input
            .chunks_mut(plane)
            .zip(grad_output.iter())
            .for_each(body),
    }
}

/// Sum of a plane in [`LANES`] interleaved partial sums, then the tail, then the lanes in order.
fn plane_sum(x: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (a, &v) in acc.iter_mut().zip(chunk) {
            *a += v;
        }
    }
    for (a, &v) in acc.iter_mut().zip(tail) {
        *a += v;
    }
    // Pairwise, so the combination is as balanced as the lanes.
    let [a0, a1, a2, a3, a4, a5, a6, a7] = acc;
    ((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7))
}
