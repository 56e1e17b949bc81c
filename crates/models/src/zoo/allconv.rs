//! `allconv`: a small all-convolutional classifier in the spirit of Springenberg et al. 2015,
//! "Striving for Simplicity: The All Convolutional Net", scaled for 28x28 digits.

use super::{Network, fixed};
use crate::ModelError;
use crate::layers::{Conv2d, Flatten, GlobalAvgPool2d, ReLU, Sequential};
use ganglion_im2col_conv::Conv2dParams;
use ganglion_tensor::Rng;

/// `allconv_with(1, rng)`: the all-convolutional network for `[1, 28, 28]` inputs, 65,642
/// parameters.
pub fn allconv(rng: &mut Rng) -> Network {
    fixed(allconv_with(1, rng))
}

/// The all-convolutional network for `in_channels`-channel images and 10 classes. No pooling
/// layer: stride-2 convolutions downsample, a 1x1 convolution produces one map per class and
/// global average pooling turns each map into a logit:
///
/// ```text
/// conv1  Conv2d(C, 32, 3, padding 1), ReLU             [32, 28, 28]   288 C + 32
/// conv2  Conv2d(32, 32, 3, stride 2, padding 1), ReLU  [32, 14, 14]        9,248
/// conv3  Conv2d(32, 64, 3, padding 1), ReLU            [64, 14, 14]       18,496
/// conv4  Conv2d(64, 64, 3, stride 2, padding 1), ReLU  [64, 7, 7]         36,928
/// conv5  Conv2d(64, 10, 1)                             [10, 7, 7]            650
///        GlobalAvgPool2d, Flatten                      [10]
/// ```
///
/// (shapes for a 28x28 input). That is 65,642 parameters for one channel and 66,218 for
/// three. Being fully convolutional it takes any image of at least 1x1; the declared input
/// shape is `[1, 28, 28]` for one channel (MNIST) and `[C, 32, 32]` otherwise (CIFAR-sized).
/// Every layer has PyTorch's default initialisation.
///
/// # Errors
/// [`ModelError::Config`] when `in_channels` is zero.
pub fn allconv_with(in_channels: usize, rng: &mut Rng) -> Result<Network, ModelError> {
    let conv = |cin, cout, k: usize, stride: usize, rng: &mut Rng| {
        let params = Conv2dParams {
            stride: [stride, stride],
            padding: [k / 2, k / 2],
            ..Conv2dParams::default()
        };
        Conv2d::new(cin, cout, [k, k], params, true, rng)
    };
    let conv1 = conv(in_channels, 32, 3, 1, rng)?;
    let conv2 = fixed(conv(32, 32, 3, 2, rng));
    let conv3 = fixed(conv(32, 64, 3, 1, rng));
    let conv4 = fixed(conv(64, 64, 3, 2, rng));
    let conv5 = fixed(conv(64, 10, 1, 1, rng));
    let body = Sequential::new()
        .push_named("conv1", conv1)
        .push_named("relu1", ReLU::new())
        .push_named("conv2", conv2)
        .push_named("relu2", ReLU::new())
        .push_named("conv3", conv3)
        .push_named("relu3", ReLU::new())
        .push_named("conv4", conv4)
        .push_named("relu4", ReLU::new())
        .push_named("conv5", conv5)
        .push_named("pool", GlobalAvgPool2d::new())
        .push_named("flatten", Flatten::new());
    let input = if in_channels == 1 {
        [1, 28, 28]
    } else {
        [in_channels, 32, 32]
    };
    Ok(Network::new("allconv", body, &input, 10))
}
