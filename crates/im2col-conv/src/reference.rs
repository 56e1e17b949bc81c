//! Direct convolution: seven nested loops straight from the definition, generic over `f32` and
//! `f64`.
//!
//! This is the test oracle for the fast kernels, not something to run in a network: it is slow
//! and does nothing clever, so it is easy to see it is right. In `f64` it is also the model
//! that finite-difference gradient checks run on.
//!
//! For output pixel `(oh, ow)`, kernel tap `(ki, kj)` reads input pixel
//! `(oh * sh - ph + ki * dh, ow * sw - pw + kj * dw)`; taps outside the input read zero.
//! Output channel `co` belongs to group `g = co / (cout / groups)` and sees input channels
//! `g * cin/groups .. (g + 1) * cin/groups`.

use crate::Conv2dShape;
use crate::params::assert_len;
use std::ops::{Add, AddAssign, Mul};

/// The arithmetic the reference needs; implemented for `f32` and `f64`.
pub trait Float:
    Copy
    + Send
    + Sync
    + std::fmt::Debug
    + PartialEq
    + Add<Output = Self>
    + Mul<Output = Self>
    + AddAssign
{
    /// Zero.
    const ZERO: Self;
}

impl Float for f32 {
    const ZERO: Self = 0.0;
}

impl Float for f64 {
    const ZERO: Self = 0.0;
}

/// Input coordinate of tap `k` for output coordinate `o` on one axis, if inside `0..size`.
fn tap(
    o: usize,
    k: usize,
    stride: usize,
    padding: usize,
    dilation: usize,
    size: usize,
) -> Option<usize> {
    (o * stride + k * dilation)
        .checked_sub(padding)
        .filter(|&i| i < size)
}

/// Calls `f(out_index, in_index, weight_index)` for every (output element, tap) pair that
/// reads inside the input, in the order n, co, oh, ow, ci, ki, kj.
fn for_each_tap(s: &Conv2dShape, mut f: impl FnMut(usize, usize, usize)) {
    let [sh, sw] = s.params.stride;
    let [ph, pw] = s.params.padding;
    let [dh, dw] = s.params.dilation;
    let (oh_n, ow_n) = (s.out_h(), s.out_w());
    let cin_g = s.cin / s.params.groups;
    let cout_g = s.cout / s.params.groups;
    for n in 0..s.n {
        for co in 0..s.cout {
            let g = co / cout_g;
            for oh in 0..oh_n {
                for ow in 0..ow_n {
                    let out = ((n * s.cout + co) * oh_n + oh) * ow_n + ow;
                    for ci in 0..cin_g {
                        let c = g * cin_g + ci;
                        for ki in 0..s.kh {
                            let Some(ih) = tap(oh, ki, sh, ph, dh, s.h) else {
                                continue;
                            };
                            for kj in 0..s.kw {
                                let Some(iw) = tap(ow, kj, sw, pw, dw, s.w) else {
                                    continue;
                                };
                                let x = ((n * s.cin + c) * s.h + ih) * s.w + iw;
                                let wt = ((co * cin_g + ci) * s.kh + ki) * s.kw + kj;
                                f(out, x, wt);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `output = conv2d(input, weight) + bias`, overwriting `output`.
///
/// # Panics
/// If a slice length disagrees with `shape`.
pub fn forward<T: Float>(
    shape: &Conv2dShape,
    input: &[T],
    weight: &[T],
    bias: Option<&[T]>,
    output: &mut [T],
) {
    const OP: &str = "reference::forward";
    assert_len(OP, "input", input.len(), shape.input_len());
    assert_len(OP, "weight", weight.len(), shape.weight_len());
    assert_len(OP, "output", output.len(), shape.output_len());
    let pixels = shape.out_h() * shape.out_w();
    match bias {
        Some(b) => {
            assert_len(OP, "bias", b.len(), shape.cout);
            for (i, o) in output.iter_mut().enumerate() {
                *o = b[(i / pixels) % shape.cout];
            }
        }
        None => output.fill(T::ZERO),
    }
    for_each_tap(shape, |o, x, w| output[o] += input[x] * weight[w]);
}

/// `grad_input = d(sum(output * grad_output)) / d input`, overwriting `grad_input`.
///
/// # Panics
/// If a slice length disagrees with `shape`.
pub fn backward_data<T: Float>(
    shape: &Conv2dShape,
    grad_output: &[T],
    weight: &[T],
    grad_input: &mut [T],
) {
    const OP: &str = "reference::backward_data";
    assert_len(OP, "grad_output", grad_output.len(), shape.output_len());
    assert_len(OP, "weight", weight.len(), shape.weight_len());
    assert_len(OP, "grad_input", grad_input.len(), shape.input_len());
    grad_input.fill(T::ZERO);
    for_each_tap(shape, |o, x, w| grad_input[x] += grad_output[o] * weight[w]);
}

/// `grad_weight = d(sum(output * grad_output)) / d weight` and, if asked,
/// `grad_bias[co] = sum of grad_output over n, oh, ow`, overwriting both.
///
/// # Panics
/// If a slice length disagrees with `shape`.
pub fn backward_weight<T: Float>(
    shape: &Conv2dShape,
    input: &[T],
    grad_output: &[T],
    grad_weight: &mut [T],
    grad_bias: Option<&mut [T]>,
) {
    const OP: &str = "reference::backward_weight";
    assert_len(OP, "input", input.len(), shape.input_len());
    assert_len(OP, "grad_output", grad_output.len(), shape.output_len());
    assert_len(OP, "grad_weight", grad_weight.len(), shape.weight_len());
    grad_weight.fill(T::ZERO);
    for_each_tap(shape, |o, x, w| grad_weight[w] += grad_output[o] * input[x]);
    if let Some(gb) = grad_bias {
        assert_len(OP, "grad_bias", gb.len(), shape.cout);
        gb.fill(T::ZERO);
        let pixels = shape.out_h() * shape.out_w();
        for (i, &g) in grad_output.iter().enumerate() {
            gb[(i / pixels) % shape.cout] += g;
        }
    }
}
