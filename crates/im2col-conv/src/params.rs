//! Convolution geometry: [`Conv2dParams`], the validated [`Conv2dShape`], and the output-size
//! formula (it lives here and nowhere else).

use crate::ConvError;

/// Stride, zero padding, dilation and groups of a 2-D convolution, per axis `[h, w]`, with
/// PyTorch's meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2dParams {
    /// Step between output positions, in input pixels.
    pub stride: [usize; 2],
    /// Zeros added on both sides of each axis.
    pub padding: [usize; 2],
    /// Spacing between kernel taps (1 = dense kernel).
    pub dilation: [usize; 2],
    /// Channel groups: input and output channels are split into `groups` independent
    /// convolutions (`groups == cin` is a depthwise convolution).
    pub groups: usize,
}

impl Default for Conv2dParams {
    /// Stride 1, no padding, dilation 1, one group.
    fn default() -> Self {
        Self {
            stride: [1, 1],
            padding: [0, 0],
            dilation: [1, 1],
            groups: 1,
        }
    }
}

impl Conv2dParams {
    /// These parameters with the same stride on both axes.
    pub fn with_stride(self, stride: usize) -> Self {
        Self {
            stride: [stride, stride],
            ..self
        }
    }

    /// These parameters with the same padding on both axes.
    pub fn with_padding(self, padding: usize) -> Self {
        Self {
            padding: [padding, padding],
            ..self
        }
    }

    /// These parameters with the same dilation on both axes.
    pub fn with_dilation(self, dilation: usize) -> Self {
        Self {
            dilation: [dilation, dilation],
            ..self
        }
    }

    /// These parameters with `groups` channel groups.
    pub fn with_groups(self, groups: usize) -> Self {
        Self { groups, ..self }
    }
}

/// Extent of a dilated kernel: `dilation * (kernel - 1) + 1`, `None` on overflow.
fn span(kernel: usize, dilation: usize) -> Option<usize> {
    dilation.checked_mul(kernel.checked_sub(1)?)?.checked_add(1)
}

/// Output length of one axis, `(size + 2 * padding - span) / stride + 1`, or `None` when the
/// dilated kernel does not fit in the padded input (or a size overflows).
fn out_len(
    size: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    dilation: usize,
) -> Option<usize> {
    let padded = padding.checked_mul(2)?.checked_add(size)?;
    let span = span(kernel, dilation)?;
    let room = padded.checked_sub(span)?;
    Some(room.checked_div(stride)? + 1)
}

/// The validated geometry of one 2-D convolution: input `[n, cin, h, w]` (NCHW), weight
/// `[cout, cin/groups, kh, kw]` (OIHW), output `[n, cout, out_h, out_w]`.
///
/// Build it with [`Conv2dShape::new`]; the kernels assume its checks hold. The fields are public
/// for reading; a shape whose fields were edited into an invalid state makes the kernels panic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2dShape {
    /// Batch size.
    pub n: usize,
    /// Input channels.
    pub cin: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Output channels.
    pub cout: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Stride, padding, dilation and groups.
    pub params: Conv2dParams,
}

impl Conv2dShape {
    /// Checks a convolution of an input of dims `[n, cin, h, w]` by a weight of dims
    /// `[cout, cin/groups, kh, kw]`.
    ///
    /// # Errors
    /// A [`ConvError`] naming the shapes when a size is zero, the stride or dilation is zero,
    /// `groups` is zero or does not divide `cin` and `cout`, the weight's in-channels are not
    /// `cin / groups`, the dilated kernel is larger than the padded input, or an element count
    /// overflows `usize`.
    pub fn new(
        input: [usize; 4],
        weight: [usize; 4],
        params: Conv2dParams,
    ) -> Result<Self, ConvError> {
        let [n, cin, h, w] = input;
        let [cout, per_group, kh, kw] = weight;
        if input.contains(&0) {
            return Err(ConvError::ZeroDim {
                tensor: "input",
                dims: input,
            });
        }
        if weight.contains(&0) {
            return Err(ConvError::ZeroDim {
                tensor: "weight",
                dims: weight,
            });
        }
        if params.stride.contains(&0) {
            return Err(ConvError::ZeroStride {
                stride: params.stride,
            });
        }
        if params.dilation.contains(&0) {
            return Err(ConvError::ZeroDilation {
                dilation: params.dilation,
            });
        }
        let groups = params.groups;
        if groups == 0 {
            return Err(ConvError::ZeroGroups { input, weight });
        }
        if cin % groups != 0 {
            return Err(ConvError::GroupsInput { groups, cin, input });
        }
        if cout % groups != 0 {
            return Err(ConvError::GroupsOutput {
                groups,
                cout,
                weight,
            });
        }
        if per_group != cin / groups {
            return Err(ConvError::ChannelMismatch {
                input,
                weight,
                cin,
                per_group,
                groups,
                expected: per_group.saturating_mul(groups),
            });
        }
        let too_large = ConvError::TooLarge { input, weight };
        let [sh, sw] = params.stride;
        let [ph, pw] = params.padding;
        let [dh, dw] = params.dilation;
        let (Some(oh), Some(ow)) = (out_len(h, kh, sh, ph, dh), out_len(w, kw, sw, pw, dw)) else {
            let extent = |size: usize, pad: usize| pad.saturating_mul(2).saturating_add(size);
            let kernel_span = |k: usize, d: usize| span(k, d).unwrap_or(usize::MAX);
            return Err(ConvError::KernelTooLarge {
                span: [kernel_span(kh, dh), kernel_span(kw, dw)],
                kernel: [kh, kw],
                dilation: params.dilation,
                padded: [extent(h, ph), extent(w, pw)],
                input,
                padding: params.padding,
            });
        };
        // Every buffer the kernels index: input, weight, output and one image's columns.
        let product = |dims: &[usize]| dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        let counts = [
            product(&input),
            product(&weight),
            product(&[n, cout, oh, ow]),
            product(&[cin, kh, kw, oh, ow]),
        ];
        if counts
            .iter()
            .any(|c| c.is_none_or(|c| c > isize::MAX as usize / 4))
        {
            return Err(too_large);
        }
        Ok(Self {
            n,
            cin,
            h,
            w,
            cout,
            kh,
            kw,
            params,
        })
    }

    /// Whether stride and dilation are 1 on both axes and there is one group: every output
    /// pixel reads a contiguous window of every input channel, what the direct, lane and FFT
    /// routes need.
    pub(crate) fn unit_stride_one_group(&self) -> bool {
        let p = &self.params;
        p.stride == [1, 1] && p.dilation == [1, 1] && p.groups == 1
    }

    /// Output height.
    pub fn out_h(&self) -> usize {
        let p = &self.params;
        out_len(self.h, self.kh, p.stride[0], p.padding[0], p.dilation[0]).unwrap_or(0)
    }

    /// Output width.
    pub fn out_w(&self) -> usize {
        let p = &self.params;
        out_len(self.w, self.kw, p.stride[1], p.padding[1], p.dilation[1]).unwrap_or(0)
    }

    /// `[n, cin, h, w]`.
    pub fn input_dims(&self) -> [usize; 4] {
        [self.n, self.cin, self.h, self.w]
    }

    /// `[cout, cin / groups, kh, kw]`.
    pub fn weight_dims(&self) -> [usize; 4] {
        [
            self.cout,
            self.cin / self.params.groups.max(1),
            self.kh,
            self.kw,
        ]
    }

    /// `[n, cout, out_h, out_w]`.
    pub fn output_dims(&self) -> [usize; 4] {
        [self.n, self.cout, self.out_h(), self.out_w()]
    }

    /// Elements of the input.
    pub fn input_len(&self) -> usize {
        self.input_dims().iter().product()
    }

    /// Elements of the weight (and of its gradient).
    pub fn weight_len(&self) -> usize {
        self.weight_dims().iter().product()
    }

    /// Elements of the output (and of the output gradient).
    pub fn output_len(&self) -> usize {
        self.output_dims().iter().product()
    }

    /// Floating-point operations of one pass (forward, backward-data or backward-weight):
    /// `2 * n * cout * out_h * out_w * (cin / groups) * kh * kw`, padding taps included.
    pub fn flops(&self) -> f64 {
        let [n, cout, oh, ow] = self.output_dims();
        let [_, per_group, kh, kw] = self.weight_dims();
        2.0 * [n, cout, oh, ow, per_group, kh, kw]
            .iter()
            .map(|&d| d as f64)
            .product::<f64>()
    }

    /// Panics unless the shape is one [`Conv2dShape::new`] accepts (fields edited by hand).
    pub(crate) fn assert_valid(&self, op: &str) {
        let checked = Self::new(self.input_dims(), self.weight_dims(), self.params);
        if checked.as_ref() != Ok(self) {
            invalid_shape(op, self);
        }
    }
}

#[cold]
#[inline(never)]
fn invalid_shape(op: &str, shape: &Conv2dShape) -> ! {
    panic!("{op}: {shape:?} is not a valid convolution shape (build it with Conv2dShape::new)")
}

/// Panics with a message naming the op, the argument and both lengths when they differ.
#[inline]
pub(crate) fn assert_len(op: &str, name: &str, got: usize, expected: usize) {
    if got != expected {
        length_mismatch(op, name, got, expected);
    }
}

#[cold]
#[inline(never)]
fn length_mismatch(op: &str, name: &str, got: usize, expected: usize) -> ! {
    panic!("{op}: {name} has {got} elements but the shape needs {expected}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_size_follows_pytorch() {
        let p = Conv2dParams {
            stride: [2, 3],
            padding: [1, 0],
            dilation: [2, 1],
            groups: 1,
        };
        let s = Conv2dShape::new([1, 2, 9, 10], [3, 2, 3, 4], p).unwrap();
        // h: (9 + 2 - 5) / 2 + 1 = 4; w: (10 - 4) / 3 + 1 = 3
        assert_eq!(s.output_dims(), [1, 3, 4, 3]);
        assert_eq!(s.flops(), 2.0 * 3.0 * 12.0 * 2.0 * 12.0);
    }

    #[test]
    fn kernel_exactly_fitting_gives_one_output() {
        let s = Conv2dShape::new([1, 1, 3, 5], [1, 1, 3, 5], Conv2dParams::default()).unwrap();
        assert_eq!((s.out_h(), s.out_w()), (1, 1));
        let err = Conv2dShape::new([1, 1, 3, 5], [1, 1, 4, 5], Conv2dParams::default());
        assert!(matches!(err, Err(ConvError::KernelTooLarge { .. })));
    }
}
