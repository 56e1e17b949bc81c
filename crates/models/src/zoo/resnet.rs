//! `resnet20`: He et al. 2016's ResNet-20 for CIFAR-10 (three stages of three basic blocks,
//! option-A shortcuts).

use super::{Network, fixed};
use crate::layers::Sequential;
use crate::layers::{BasicBlock, BatchNorm2d, Conv2d, Flatten, GlobalAvgPool2d, Linear, ReLU};
use crate::module::Module;
use ganglion_im2col_conv::Conv2dParams;
use ganglion_tensor::{Rng, init};

/// ResNet-20 for `[3, 32, 32]` inputs and 10 classes, 269,722 parameters
/// (He et al. 2016, section 4.2: `6n + 2` layers with `n = 3`):
///
/// ```text
/// conv1   Conv2d(3, 16, 3, padding 1, no bias)   [16, 32, 32]
/// bn1     BatchNorm2d(16), ReLU (in place)
/// layer1  3 x BasicBlock(16)                     [16, 32, 32]
/// layer2  3 x BasicBlock(32), first stride 2     [32, 16, 16]
/// layer3  3 x BasicBlock(64), first stride 2     [64, 8, 8]
///         GlobalAvgPool2d, Flatten               [64]
/// fc      Linear(64, 10)                         [10]
/// ```
///
/// The first block of `layer2` and `layer3` uses the option-A shortcut (subsample by 2, pad
/// the new channels with zeros). Names follow the common PyTorch implementation
/// (`layer1.0.conv1.weight`, `layer1.0.bn1.running_mean`, `fc.bias`), so its checkpoints load.
///
/// Initialisation follows that implementation too: every convolution and the `fc` weight are
/// `kaiming_normal` (fan in, ReLU gain: `N(0, 2 / fan_in)`), the `fc` bias keeps PyTorch's
/// default `U(-1/sqrt(64), 1/sqrt(64))`, batch normalisation starts at weight 1, bias 0.
pub fn resnet20(rng: &mut Rng) -> Network {
    let stem = Conv2dParams {
        padding: [1, 1],
        ..Conv2dParams::default()
    };
    let conv1 = fixed(Conv2d::new(3, 16, [3, 3], stem, false, rng));
    let mut body = Sequential::new()
        .push_named("conv1", conv1)
        .push_named("bn1", BatchNorm2d::new(16))
        .push_named("relu", ReLU::inplace());
    let mut in_planes = 16;
    for (stage, planes) in [16, 32, 64].into_iter().enumerate() {
        let mut layer = Sequential::new();
        for block in 0..3 {
            let stride = if stage > 0 && block == 0 { 2 } else { 1 };
            layer = layer.push(fixed(BasicBlock::new(in_planes, planes, stride, rng)));
            in_planes = planes;
        }
        body = body.push_named(&format!("layer{}", stage + 1), layer);
    }
    let body = body
        .push_named("avgpool", GlobalAvgPool2d::new())
        .push_named("flatten", Flatten::new())
        .push_named("fc", Linear::new(64, 10, true, rng));
    // The reference implementation's `_weights_init`: kaiming_normal_ on every Conv2d and
    // Linear weight, drawn after the layers are built, in module order.
    for (name, p) in body.named_parameters() {
        let shape = p.shape();
        if name.ends_with("weight") && shape.len() >= 2 {
            // Same shape as the value it replaces, drawn from that shape.
            p.write().value = init::kaiming_normal(&shape, 0.0, rng);
        }
    }
    Network::new("resnet20", body, &[3, 32, 32], 10)
}
