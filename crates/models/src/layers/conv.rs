//! [`Conv2d`]: 2-D convolution over NCHW inputs with an OIHW weight, PyTorch's `nn.Conv2d`.

use crate::ModelError;
use crate::module::{Entry, Module, join};
use crate::summary::{Footprint, Geometry};
use ganglion_autograd::{Graph, Param, Var};
use ganglion_im2col_conv::Conv2dParams;
use ganglion_tensor::{Rng, init};

/// A 2-D convolution layer: weight `[out, in/groups, kh, kw]`, optional bias `[out]`.
///
/// Initialised as PyTorch does: weight `kaiming_uniform(a = sqrt(5))`, which is
/// `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`, bias `U(-1/sqrt(fan_in), 1/sqrt(fan_in))` with
/// `fan_in = in/groups * kh * kw`.
#[derive(Debug)]
pub struct Conv2d {
    weight: Param,
    bias: Option<Param>,
    in_channels: usize,
    out_channels: usize,
    kernel: [usize; 2],
    params: Conv2dParams,
    training: bool,
}

impl Conv2d {
    /// A convolution from `in_channels` to `out_channels` with a `[kh, kw]` kernel.
    ///
    /// # Errors
    /// [`ModelError::Config`] when a size, stride or dilation is zero, or when `groups` is zero
    /// or does not divide both channel counts.
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        kernel: [usize; 2],
        params: Conv2dParams,
        bias: bool,
        rng: &mut Rng,
    ) -> Result<Self, ModelError> {
        let bad = |reason: String| ModelError::Config {
            layer: "Conv2d",
            reason,
        };
        if in_channels == 0 || out_channels == 0 {
            return Err(bad(format!(
                "channel counts must be positive, got {in_channels} -> {out_channels}"
            )));
        }
        if kernel.contains(&0) || params.stride.contains(&0) || params.dilation.contains(&0) {
            return Err(bad(format!(
                "kernel {kernel:?}, stride {:?} and dilation {:?} must be positive",
                params.stride, params.dilation
            )));
        }
        let groups = params.groups;
        if groups == 0
            || !in_channels.is_multiple_of(groups)
            || !out_channels.is_multiple_of(groups)
        {
            return Err(bad(format!(
                "groups {groups} must divide both {in_channels} input and {out_channels} output channels"
            )));
        }
        let shape = [out_channels, in_channels / groups, kernel[0], kernel[1]];
        let weight = init::kaiming_uniform(&shape, 5f32.sqrt(), rng);
        let bias = bias.then(|| {
            let (fan_in, _) = init::fans(&shape);
            Param::new(init::default_bias(out_channels, fan_in, rng))
        });
        Ok(Self {
            weight: Param::new(weight),
            bias,
            in_channels,
            out_channels,
            kernel,
            params,
            training: true,
        })
    }

    /// The weight `[out, in/groups, kh, kw]`.
    pub fn weight(&self) -> &Param {
        &self.weight
    }

    /// The bias `[out]`, if the layer has one.
    pub fn bias(&self) -> Option<&Param> {
        self.bias.as_ref()
    }

    /// Input channels.
    pub fn in_channels(&self) -> usize {
        self.in_channels
    }

    /// Output channels.
    pub fn out_channels(&self) -> usize {
        self.out_channels
    }

    /// Kernel size `[kh, kw]`.
    pub fn kernel(&self) -> [usize; 2] {
        self.kernel
    }

    /// Stride, padding, dilation and groups.
    pub fn params(&self) -> &Conv2dParams {
        &self.params
    }
}

/// `(a, b)` as PyTorch prints a pair.
pub(crate) fn pair(v: [usize; 2]) -> String {
    format!("({}, {})", v[0], v[1])
}

impl Module for Conv2d {
    fn forward(&self, g: &mut Graph, x: Var) -> Result<Var, ModelError> {
        let w = g.param(&self.weight);
        let b = self.bias.as_ref().map(|b| g.param(b));
        Ok(g.conv2d(x, w, b, self.params)?)
    }

    fn visit<'a>(&'a self, prefix: &str, v: &mut dyn FnMut(&str, Entry<'a>)) {
        v(&join(prefix, "weight"), Entry::Param(&self.weight));
        if let Some(b) = &self.bias {
            v(&join(prefix, "bias"), Entry::Param(b));
        }
    }

    fn set_training(&mut self, on: bool) {
        self.training = on;
    }

    fn is_training(&self) -> bool {
        self.training
    }

    fn kind(&self) -> &str {
        "Conv2d"
    }

    fn geometry(&self) -> Geometry {
        let p = &self.params;
        Geometry {
            footprint: Footprint::Window {
                kernel: self.kernel,
                stride: p.stride,
                padding: p.padding,
                dilation: p.dilation,
            },
            macs_per_output: (self.in_channels / p.groups * self.kernel[0] * self.kernel[1]) as u64,
        }
    }

    fn describe(&self) -> String {
        let p = &self.params;
        let mut s = format!(
            "Conv2d({}, {}, kernel_size={}, stride={}",
            self.in_channels,
            self.out_channels,
            pair(self.kernel),
            pair(p.stride)
        );
        if p.padding != [0, 0] {
            s += &format!(", padding={}", pair(p.padding));
        }
        if p.dilation != [1, 1] {
            s += &format!(", dilation={}", pair(p.dilation));
        }
        if p.groups != 1 {
            s += &format!(", groups={}", p.groups);
        }
        if self.bias.is_none() {
            s += ", bias=False";
        }
        s + ")"
    }
}
