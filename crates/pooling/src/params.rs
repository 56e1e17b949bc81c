//! Pooling geometry: window parameters, the validated input/output shape and the window spans.

use crate::PoolError;

/// Window parameters of a 2-D pooling, per axis `[h, w]`, as in PyTorch's `MaxPool2d` /
/// `AvgPool2d` (dilation 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool2dParams {
    /// Window size `[kh, kw]`.
    pub kernel: [usize; 2],
    /// Step between windows `[sh, sw]`.
    pub stride: [usize; 2],
    /// Implicit padding on both sides `[ph, pw]`; at most half the kernel.
    pub padding: [usize; 2],
    /// Round the output size up instead of down (the last window may hang over the edge).
    pub ceil_mode: bool,
}

impl Pool2dParams {
    /// Windows of `kernel` with stride equal to the kernel, no padding, floor rounding
    /// (PyTorch's defaults).
    pub fn new(kernel: [usize; 2]) -> Self {
        Self {
            kernel,
            stride: kernel,
            padding: [0, 0],
            ceil_mode: false,
        }
    }

    /// The same parameters with another stride.
    pub fn with_stride(self, stride: [usize; 2]) -> Self {
        Self { stride, ..self }
    }

    /// The same parameters with another padding.
    pub fn with_padding(self, padding: [usize; 2]) -> Self {
        Self { padding, ..self }
    }

    /// The same parameters with another rounding mode.
    pub fn with_ceil_mode(self, ceil_mode: bool) -> Self {
        Self { ceil_mode, ..self }
    }
}

/// PyTorch's `pooling_output_shape` (dilation 1) along one axis, signed so that a window that
/// never fits shows as zero or less:
///
/// `out = floor((in + 2p - k + (ceil ? s - 1 : 0)) / s) + 1`, and with `ceil_mode`, when the
/// last window would start at or past `in + p` (entirely in the right padding), `out -= 1`.
pub(crate) fn output_len(
    input: usize,
    kernel: usize,
    stride: usize,
    pad: usize,
    ceil: bool,
) -> i64 {
    // i128 so that no usize geometry can overflow the intermediate sums.
    let (i, k, s, p) = (input as i128, kernel as i128, stride as i128, pad as i128);
    if s == 0 {
        return 0;
    }
    let round = if ceil { s - 1 } else { 0 };
    let mut out = (i + 2 * p - k + round).div_euclid(s) + 1;
    if ceil && (out - 1) * s >= i + p {
        out -= 1;
    }
    out.clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

/// Validated geometry of a 2-D pooling over an NCHW `f32` input.
///
/// Build it with [`Pool2dShape::new`]; the kernels assume its invariants (non-zero kernel and
/// stride, padding at most half the kernel, non-empty planes, non-empty output).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool2dShape {
    /// Batch size.
    pub n: usize,
    /// Channels.
    pub c: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// The window parameters.
    pub params: Pool2dParams,
}

impl Pool2dShape {
    /// Checks `params` against an input of dims `[n, c, h, w]` with PyTorch's rules.
    ///
    /// A batch of zero is allowed (the kernels then do nothing).
    ///
    /// # Errors
    /// [`PoolError::ZeroKernel`], [`PoolError::ZeroStride`], [`PoolError::PaddingTooLarge`]
    /// (padding over `kernel / 2`), [`PoolError::EmptyInput`] (`c`, `h` or `w` zero),
    /// [`PoolError::TooLarge`] (element count overflows or a plane exceeds `u32` indices),
    /// [`PoolError::EmptyOutput`] (the window never fits).
    pub fn new(input: [usize; 4], params: Pool2dParams) -> Result<Self, PoolError> {
        let Pool2dParams {
            kernel,
            stride,
            padding,
            ceil_mode,
        } = params;
        if kernel.contains(&0) {
            return Err(PoolError::ZeroKernel { kernel });
        }
        if stride.contains(&0) {
            return Err(PoolError::ZeroStride { stride });
        }
        if padding[0] > kernel[0] / 2 || padding[1] > kernel[1] / 2 {
            return Err(PoolError::PaddingTooLarge { padding, kernel });
        }
        let [n, c, h, w] = input;
        if c == 0 || h == 0 || w == 0 {
            return Err(PoolError::EmptyInput { input });
        }
        let plane = h.checked_mul(w);
        // argmax entries are u32 offsets inside a plane.
        if plane.is_none_or(|p| p - 1 > u32::MAX as usize)
            || input
                .iter()
                .try_fold(1usize, |a, &d| a.checked_mul(d))
                .is_none()
        {
            return Err(PoolError::TooLarge { input });
        }
        let out_h = output_len(h, kernel[0], stride[0], padding[0], ceil_mode);
        let out_w = output_len(w, kernel[1], stride[1], padding[1], ceil_mode);
        let output_fits = out_h > 0
            && out_w > 0
            && [n, c, out_h as usize, out_w as usize]
                .iter()
                .try_fold(1usize, |a, &d| a.checked_mul(d))
                .is_some();
        if !output_fits {
            return Err(PoolError::EmptyOutput {
                input,
                kernel,
                stride,
                padding,
                out_h,
                out_w,
            });
        }
        Ok(Self { n, c, h, w, params })
    }

    /// Output height.
    pub fn out_h(&self) -> usize {
        let p = &self.params;
        output_len(self.h, p.kernel[0], p.stride[0], p.padding[0], p.ceil_mode).max(0) as usize
    }

    /// Output width.
    pub fn out_w(&self) -> usize {
        let p = &self.params;
        output_len(self.w, p.kernel[1], p.stride[1], p.padding[1], p.ceil_mode).max(0) as usize
    }

    /// `[n, c, h, w]`.
    pub fn input_dims(&self) -> [usize; 4] {
        [self.n, self.c, self.h, self.w]
    }

    /// `[n, c, out_h, out_w]`.
    pub fn output_dims(&self) -> [usize; 4] {
        [self.n, self.c, self.out_h(), self.out_w()]
    }

    /// Elements of the input (`n * c * h * w`).
    pub fn input_len(&self) -> usize {
        self.n * self.c * self.h * self.w
    }

    /// Elements of the output (`n * c * out_h * out_w`), also the argmax length.
    pub fn output_len(&self) -> usize {
        self.n * self.c * self.out_h() * self.out_w()
    }

    /// Whether every window is a whole 2x2 block at stride 2 without padding: the case with a
    /// specialised max-pool kernel.
    pub(crate) fn is_2x2_stride_2(&self) -> bool {
        let p = &self.params;
        p.kernel == [2, 2]
            && p.stride == [2, 2]
            && p.padding == [0, 0]
            && 2 * self.out_h() <= self.h
            && 2 * self.out_w() <= self.w
    }

    /// The window of output row `oh`.
    pub(crate) fn row_span(&self, oh: usize) -> Span {
        let p = &self.params;
        Span::new(oh, self.h, p.kernel[0], p.stride[0], p.padding[0])
    }

    /// The window of output column `ow`.
    pub(crate) fn col_span(&self, ow: usize) -> Span {
        let p = &self.params;
        Span::new(ow, self.w, p.kernel[1], p.stride[1], p.padding[1])
    }
}

/// One axis of one pooling window, as PyTorch's CPU kernels compute it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Span {
    /// First input index inside the input.
    pub start: usize,
    /// One past the last input index inside the input.
    pub end: usize,
    /// Length of the window clipped to the padded extent `[-p, in + p)`: the
    /// count-include-pad divisor along this axis.
    pub padded_len: usize,
}

impl Span {
    fn new(o: usize, input: usize, kernel: usize, stride: usize, pad: usize) -> Self {
        let start = (o * stride) as isize - pad as isize;
        let padded_end = (start + kernel as isize).min((input + pad) as isize);
        Self {
            start: start.max(0) as usize,
            end: padded_end.clamp(0, input as isize) as usize,
            padded_len: (padded_end - start).max(0) as usize,
        }
    }

    /// Input elements covered along this axis.
    pub fn len(&self) -> usize {
        self.end.saturating_sub(self.start)
    }
}
