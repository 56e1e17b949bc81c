//! Slow, obvious pooling loops: the oracle the fast kernels are tested against.
//!
//! Each function visits every kernel tap `(ky, kx)` of every output, including taps that fall
//! in the padding, and decides per tap whether it is inside the input (and, for the
//! count-include-pad divisor, inside the padded extent `[-p, in + p)`). No spans, no
//! specialisation, no threads. Generic over [`Float`] so gradient checks run in `f64`.
//! Slice lengths follow the same contract as the fast kernels; the functions panic (by
//! indexing or assertion) when they disagree.

use crate::Pool2dShape;
use std::fmt::Debug;
use std::ops::{Add, AddAssign, Div, Mul, Sub};

/// The floating-point operations the reference loops need; implemented for `f32` and `f64`.
pub trait Float:
    Copy
    + Debug
    + PartialOrd
    + Send
    + Sync
    + Add<Output = Self>
    + AddAssign
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + 'static
{
    /// Zero.
    const ZERO: Self;
    /// Negative infinity.
    const NEG_INFINITY: Self;
    /// The nearest value to `n`.
    fn from_usize(n: usize) -> Self;
    /// Whether the value is NaN.
    fn is_nan(self) -> bool;
}

impl Float for f32 {
    const ZERO: Self = 0.0;
    const NEG_INFINITY: Self = f32::NEG_INFINITY;
    fn from_usize(n: usize) -> Self {
        n as f32
    }
    fn is_nan(self) -> bool {
        f32::is_nan(self)
    }
}

impl Float for f64 {
    const ZERO: Self = 0.0;
    const NEG_INFINITY: Self = f64::NEG_INFINITY;
    fn from_usize(n: usize) -> Self {
        n as f64
    }
    fn is_nan(self) -> bool {
        f64::is_nan(self)
    }
}

/// Input position of tap `k` of output `o` along one axis, if it lies inside `[0, len)`.
fn tap(o: usize, k: usize, stride: usize, pad: usize, len: usize) -> Option<usize> {
    (o * stride + k).checked_sub(pad).filter(|&i| i < len)
}

/// Whether tap `k` of output `o` lies inside the padded extent `[-pad, len + pad)`.
fn in_padded(o: usize, k: usize, stride: usize, pad: usize, len: usize) -> bool {
    o * stride + k < len + 2 * pad
}

/// Calls `f(output_flat_index, plane_offset, taps)` for every output, where `taps` lists the
/// in-bounds input offsets `ih * w + iw` of its window in row-major order and `padded` the
/// number of taps inside the padded extent.
fn for_each_window(shape: &Pool2dShape, mut f: impl FnMut(usize, usize, &[usize], usize)) {
    let p = &shape.params;
    let (oh_n, ow_n) = (shape.out_h(), shape.out_w());
    let mut taps = Vec::new();
    for plane in 0..shape.n * shape.c {
        for oh in 0..oh_n {
            for ow in 0..ow_n {
                taps.clear();
                let mut padded = 0;
                for ky in 0..p.kernel[0] {
                    for kx in 0..p.kernel[1] {
                        let inside_pad = in_padded(oh, ky, p.stride[0], p.padding[0], shape.h)
                            && in_padded(ow, kx, p.stride[1], p.padding[1], shape.w);
                        padded += usize::from(inside_pad);
                        let ih = tap(oh, ky, p.stride[0], p.padding[0], shape.h);
                        let iw = tap(ow, kx, p.stride[1], p.padding[1], shape.w);
                        if let (Some(ih), Some(iw)) = (ih, iw) {
                            taps.push(ih * shape.w + iw);
                        }
                    }
                }
                let out = (plane * oh_n + oh) * ow_n + ow;
                f(out, plane * shape.h * shape.w, &taps, padded);
            }
        }
    }
}

fn assert_lens(shape: &Pool2dShape, input: usize, output: usize) {
    assert_eq!(input, shape.input_len(), "reference: input length");
    assert_eq!(output, shape.output_len(), "reference: output length");
}

/// Max pooling forward: the first strictly largest tap wins, any NaN replaces the maximum.
/// `argmax` gets plane offsets `ih * w + iw`.
pub fn max_pool2d_forward<T: Float>(
    shape: &Pool2dShape,
    input: &[T],
    output: &mut [T],
    argmax: &mut [u32],
) {
    assert_lens(shape, input.len(), output.len());
    assert_eq!(argmax.len(), output.len(), "reference: argmax length");
    for_each_window(shape, |out, base, taps, _| {
        let mut best = T::NEG_INFINITY;
        let mut best_at = taps[0];
        for &t in taps {
            let v = input[base + t];
            if v > best || v.is_nan() {
                best = v;
                best_at = t;
            }
        }
        output[out] = best;
        argmax[out] = best_at as u32;
    });
}

/// Max pooling backward: zeros, then `grad_output[i]` added at `argmax[i]` of its plane.
pub fn max_pool2d_backward<T: Float>(
    shape: &Pool2dShape,
    grad_output: &[T],
    argmax: &[u32],
    grad_input: &mut [T],
) {
    assert_lens(shape, grad_input.len(), grad_output.len());
    assert_eq!(argmax.len(), grad_output.len(), "reference: argmax length");
    grad_input.fill(T::ZERO);
    let out_plane = shape.out_h() * shape.out_w();
    let in_plane = shape.h * shape.w;
    for (i, (&g, &a)) in grad_output.iter().zip(argmax).enumerate() {
        grad_input[(i / out_plane) * in_plane + a as usize] += g;
    }
}

/// Average pooling forward: sum of the in-bounds taps over the number of taps inside the padded
/// extent (`count_include_pad`) or over the number of in-bounds taps.
pub fn avg_pool2d_forward<T: Float>(
    shape: &Pool2dShape,
    count_include_pad: bool,
    input: &[T],
    output: &mut [T],
) {
    assert_lens(shape, input.len(), output.len());
    for_each_window(shape, |out, base, taps, padded| {
        if taps.is_empty() {
            output[out] = T::ZERO;
            return;
        }
        let mut sum = T::ZERO;
        for &t in taps {
            sum += input[base + t];
        }
        let count = if count_include_pad {
            padded
        } else {
            taps.len()
        };
        output[out] = sum / T::from_usize(count);
    });
}

/// Average pooling backward: each output's gradient over its divisor, added to its taps.
pub fn avg_pool2d_backward<T: Float>(
    shape: &Pool2dShape,
    count_include_pad: bool,
    grad_output: &[T],
    grad_input: &mut [T],
) {
    assert_lens(shape, grad_input.len(), grad_output.len());
    grad_input.fill(T::ZERO);
    for_each_window(shape, |out, base, taps, padded| {
        if taps.is_empty() {
            return;
        }
        let count = if count_include_pad {
            padded
        } else {
            taps.len()
        };
        let delta = grad_output[out] / T::from_usize(count);
        for &t in taps {
            grad_input[base + t] += delta;
        }
    });
}

/// Global average pooling forward: plane means, summed in order.
pub fn global_avg_pool2d_forward<T: Float>(input_dims: [usize; 4], input: &[T], output: &mut [T]) {
    let [n, c, h, w] = input_dims;
    assert_eq!(input.len(), n * c * h * w, "reference: input length");
    assert_eq!(output.len(), n * c, "reference: output length");
    for (i, o) in output.iter_mut().enumerate() {
        let mut sum = T::ZERO;
        for &v in &input[i * h * w..(i + 1) * h * w] {
            sum += v;
        }
        *o = sum / T::from_usize(h * w);
    }
}

/// Global average pooling backward: each plane filled with its gradient over `h * w`.
pub fn global_avg_pool2d_backward<T: Float>(
    input_dims: [usize; 4],
    grad_output: &[T],
    grad_input: &mut [T],
) {
    let [n, c, h, w] = input_dims;
    assert_eq!(grad_output.len(), n * c, "reference: grad_output length");
    assert_eq!(
        grad_input.len(),
        n * c * h * w,
        "reference: grad_input length"
    );
    for (i, v) in grad_input.iter_mut().enumerate() {
        *v = grad_output[i / (h * w)] / T::from_usize(h * w);
    }
}
