//! [`BasicBlock`]: the residual block of He et al. 2016's CIFAR ResNets
//! (conv3x3-bn-relu-conv3x3-bn, plus the shortcut, then relu) with the parameter-free
//! option-A shortcut.

use crate::ModelError;
use crate::layers::{BatchNorm2d, Conv2d};
use crate::module::{Entry, Module, join};
use crate::trace::{Recorder, TraceEvent};
use ganglion_autograd::{Graph, Var};
use ganglion_im2col_conv::Conv2dParams;
use ganglion_tensor::Rng;

/// How the block's input reaches the addition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shortcut {
    /// The input itself (same channels, stride 1).
    Identity,
    /// Option A of He et al.: `x[:, :, ::s, ::s]` with zero channels padded around it,
    /// `before` in front and `after` behind (no parameters).
    OptionA {
        /// Subsampling stride.
        stride: usize,
        /// Zero channels added in front.
        before: usize,
        /// Zero channels added behind.
        after: usize,
    },
}

/// `relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))` with 3x3 convolutions without bias;
/// `conv1` carries the stride.
///
/// State names are `conv1.weight`, `bn1.*`, `conv2.weight`, `bn2.*`, as in the common PyTorch
/// CIFAR ResNet implementations; the option-A shortcut adds none.
#[derive(Debug)]
pub struct BasicBlock {
    conv1: Conv2d,
    bn1: BatchNorm2d,
    conv2: Conv2d,
    bn2: BatchNorm2d,
    shortcut: Shortcut,
    training: bool,
}

impl BasicBlock {
    /// A block from `in_planes` to `planes` channels whose first convolution has `stride`.
    ///
    /// When the stride is not 1 or the channel count grows, the shortcut subsamples by the
    /// stride and pads the missing channels with zeros, half in front and half behind
    /// (`F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, planes // 4, planes // 4))` for the usual
    /// doubling).
    ///
    /// # Errors
    /// [`ModelError::Config`] for zero channels or stride, or `planes < in_planes` (option A
    /// cannot drop channels).
    pub fn new(
        in_planes: usize,
        planes: usize,
        stride: usize,
        rng: &mut Rng,
    ) -> Result<Self, ModelError> {
        if planes < in_planes || stride == 0 {
            return Err(ModelError::Config {
                layer: "BasicBlock",
                reason: format!(
                    "option-A shortcut needs planes >= in_planes and a positive stride, got {in_planes} -> {planes} with stride {stride}"
                ),
            });
        }
        let conv3x3 = |cin, cout, s, rng: &mut Rng| {
            let params = Conv2dParams {
                stride: [s, s],
                padding: [1, 1],
                ..Conv2dParams::default()
            };
            Conv2d::new(cin, cout, [3, 3], params, false, rng)
        };
        let conv1 = conv3x3(in_planes, planes, stride, rng)?;
        let conv2 = conv3x3(planes, planes, 1, rng)?;
        let shortcut = if stride != 1 || in_planes != planes {
            let extra = planes - in_planes;
            Shortcut::OptionA {
                stride,
                before: extra / 2,
                after: extra - extra / 2,
            }
        } else {
            Shortcut::Identity
        };
        Ok(Self {
            conv1,
            bn1: BatchNorm2d::new(planes),
            conv2,
            bn2: BatchNorm2d::new(planes),
            shortcut,
            training: true,
        })
    }

    /// The shortcut in use.
    pub fn shortcut(&self) -> Shortcut {
        self.shortcut
    }

    /// The first convolution (carries the stride).
    pub fn conv1(&self) -> &Conv2d {
        &self.conv1
    }

    /// The second convolution.
    pub fn conv2(&self) -> &Conv2d {
        &self.conv2
    }

    /// The first batch normalisation.
    pub fn bn1(&self) -> &BatchNorm2d {
        &self.bn1
    }

    /// The second batch normalisation.
    pub fn bn2(&self) -> &BatchNorm2d {
        &self.bn2
    }

    /// The forward pass; with `trace` (the block's name and a recorder) every child's output
    /// and the block's own are reported. The plain pass builds no names.
    fn run(
        &self,
        g: &mut Graph,
        x: Var,
        mut trace: Option<(&str, &mut Recorder<'_>)>,
    ) -> Result<Var, ModelError> {
        let mut step = |g: &mut Graph, name: &str, m: &dyn Module, x: Var| {
            match trace.as_mut() {
                Some((prefix, record)) => {
                    m.forward_traced(g, x, &join(prefix, name), &mut **record)
                }
                None => m.forward(g, x),
            }
            .map_err(|e| e.in_child(name, m.kind()))
        };
        let out = step(g, "conv1", &self.conv1, x)?;
        let out = step(g, "bn1", &self.bn1, out)?;
        // In place, as torchvision's blocks: batch norm's rule reads its input, not its
        // output, so the output's buffer can take the activation.
        let out = g.relu_inplace(out)?;
        let out = step(g, "conv2", &self.conv2, out)?;
        let out = step(g, "bn2", &self.bn2, out)?;
        let short = match self.shortcut {
            Shortcut::Identity => x,
            Shortcut::OptionA {
                stride,
                before,
                after,
            } => {
                let s = if stride == 1 {
                    x
                } else {
                    g.subsample(x, [stride, stride])?
                };
                g.pad_channels(s, before, after)?
            }
        };
        // `out += shortcut; relu_(out)`: the addition's rule reads no value, so the second
        // batch norm's output takes the sum and then the activation.
        let sum = g.add_inplace(out, short)?;
        let y = g.relu_inplace(sum)?;
        if let Some((prefix, record)) = trace {
            record(TraceEvent {
                name: prefix,
                kind: self.kind(),
                var: y,
                value: g.value(y),
            });
        }
        Ok(y)
    }

    fn layers(&self) -> [(&'static str, &dyn Module); 4] {
        [
            ("conv1", &self.conv1),
            ("bn1", &self.bn1),
            ("conv2", &self.conv2),
            ("bn2", &self.bn2),
        ]
    }
}

impl Module for BasicBlock {
    fn forward(&self, g: &mut Graph, x: Var) -> Result<Var, ModelError> {
        self.run(g, x, None)
    }

    fn forward_traced(
        &self,
        g: &mut Graph,
        x: Var,
        prefix: &str,
        record: &mut Recorder<'_>,
    ) -> Result<Var, ModelError> {
        self.run(g, x, Some((prefix, record)))
    }

    fn visit<'a>(&'a self, prefix: &str, v: &mut dyn FnMut(&str, Entry<'a>)) {
        for (name, layer) in self.layers() {
            layer.visit(&join(prefix, name), v);
        }
    }

    fn set_training(&mut self, on: bool) {
        self.training = on;
        self.conv1.set_training(on);
        self.bn1.set_training(on);
        self.conv2.set_training(on);
        self.bn2.set_training(on);
    }

    fn is_training(&self) -> bool {
        self.training
    }

    fn kind(&self) -> &str {
        "BasicBlock"
    }

    fn describe(&self) -> String {
        let shortcut = match self.shortcut {
            Shortcut::Identity => "identity".to_string(),
            Shortcut::OptionA {
                stride,
                before,
                after,
            } => format!("option A (stride {stride}, pad channels {before}+{after})"),
        };
        format!(
            "BasicBlock({}, {}, stride={}, shortcut={shortcut})",
            self.conv1.in_channels(),
            self.conv1.out_channels(),
            self.conv1.params().stride[0]
        )
    }

    fn children(&self) -> Vec<(&str, &dyn Module)> {
        self.layers().to_vec()
    }
}
