//! Pooling layers: [`MaxPool2d`], [`AvgPool2d`] and [`GlobalAvgPool2d`] (no parameters).

use super::conv::pair;
use crate::ModelError;
use crate::module::{Entry, Module};
use crate::summary::{Footprint, Geometry};
use ganglion_autograd::{Graph, Var};
use ganglion_pooling::Pool2dParams;

/// Max pooling over `[kh, kw]` windows, PyTorch's `nn.MaxPool2d` (dilation 1).
#[derive(Debug, Clone)]
pub struct MaxPool2d {
    params: Pool2dParams,
    training: bool,
}

impl MaxPool2d {
    /// Max pooling with the given window; invalid geometry is reported by the forward pass,
    /// which knows the input size.
    pub fn new(params: Pool2dParams) -> Self {
        Self {
            params,
            training: true,
        }
    }

    /// The window parameters.
    pub fn params(&self) -> &Pool2dParams {
        &self.params
    }
}

/// A pooling window's footprint; pooling multiplies by no weights.
fn pool_geometry(p: &Pool2dParams) -> Geometry {
    Geometry {
        footprint: Footprint::Window {
            kernel: p.kernel,
            stride: p.stride,
            padding: p.padding,
            dilation: [1, 1],
        },
        macs_per_output: 0,
    }
}

fn describe_pool(kind: &str, p: &Pool2dParams, extra: &str) -> String {
    format!(
        "{kind}(kernel_size={}, stride={}, padding={}, ceil_mode={}{extra})",
        pair(p.kernel),
        pair(p.stride),
        pair(p.padding),
        if p.ceil_mode { "True" } else { "False" }
    )
}

impl Module for MaxPool2d {
    fn forward(&self, g: &mut Graph, x: Var) -> Result<Var, ModelError> {
        Ok(g.max_pool2d(x, self.params)?)
    }

    fn visit<'a>(&'a self, _prefix: &str, _v: &mut dyn FnMut(&str, Entry<'a>)) {}

    fn set_training(&mut self, on: bool) {
        self.training = on;
    }

    fn is_training(&self) -> bool {
        self.training
    }

    fn kind(&self) -> &str {
        "MaxPool2d"
    }

    fn geometry(&self) -> Geometry {
        pool_geometry(&self.params)
    }

    fn describe(&self) -> String {
        describe_pool("MaxPool2d", &self.params, "")
    }
}

/// Average pooling over `[kh, kw]` windows, PyTorch's `nn.AvgPool2d`.
///
/// With `count_include_pad` (PyTorch's default) padded zeros count in the divisor.
#[derive(Debug, Clone)]
pub struct AvgPool2d {
    params: Pool2dParams,
    count_include_pad: bool,
    training: bool,
}

impl AvgPool2d {
    /// Average pooling with the given window.
    pub fn new(params: Pool2dParams, count_include_pad: bool) -> Self {
        Self {
            params,
            count_include_pad,
            training: true,
        }
    }

    /// The window parameters.
    pub fn params(&self) -> &Pool2dParams {
        &self.params
    }

    /// Whether padded zeros count in the divisor.
    pub fn count_include_pad(&self) -> bool {
        self.count_include_pad
    }
}

impl Module for AvgPool2d {
    fn forward(&self, g: &mut Graph, x: Var) -> Result<Var, ModelError> {
        Ok(g.avg_pool2d(x, self.params, self.count_include_pad)?)
    }

    fn visit<'a>(&'a self, _prefix: &str, _v: &mut dyn FnMut(&str, Entry<'a>)) {}

    fn set_training(&mut self, on: bool) {
        self.training = on;
    }

    fn is_training(&self) -> bool {
        self.training
    }

    fn kind(&self) -> &str {
        "AvgPool2d"
    }

    fn geometry(&self) -> Geometry {
        pool_geometry(&self.params)
    }

    fn describe(&self) -> String {
        let extra = if self.count_include_pad {
            ""
        } else {
            ", count_include_pad=False"
        };
        describe_pool("AvgPool2d", &self.params, extra)
    }
}

/// Global average pooling `[n, c, h, w] -> [n, c, 1, 1]`, PyTorch's
/// `nn.AdaptiveAvgPool2d(1)`.
#[derive(Debug, Clone)]
pub struct GlobalAvgPool2d {
    training: bool,
}

impl GlobalAvgPool2d {
    /// The layer.
    pub fn new() -> Self {
        Self { training: true }
    }
}

impl Default for GlobalAvgPool2d {
    fn default() -> Self {
        Self::new()
    }
}

impl Module for GlobalAvgPool2d {
    fn forward(&self, g: &mut Graph, x: Var) -> Result<Var, ModelError> {
        Ok(g.global_avg_pool2d(x)?)
    }

    fn visit<'a>(&'a self, _prefix: &str, _v: &mut dyn FnMut(&str, Entry<'a>)) {}

    fn set_training(&mut self, on: bool) {
        self.training = on;
    }

    fn is_training(&self) -> bool {
        self.training
    }

    fn kind(&self) -> &str {
        "GlobalAvgPool2d"
    }

    fn geometry(&self) -> Geometry {
        Geometry {
            footprint: Footprint::Global,
            macs_per_output: 0,
        }
    }

    fn describe(&self) -> String {
        "GlobalAvgPool2d(output_size=1)".to_string()
    }
}
