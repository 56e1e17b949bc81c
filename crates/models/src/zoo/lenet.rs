//! `lenet5`: LeCun et al.'s LeNet-5 as the usual PyTorch port has it (ReLU, max pooling,
//! 28x28 input padded by the first convolution).

use super::{Network, fixed};
use crate::layers::{Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential};
use ganglion_im2col_conv::Conv2dParams;
use ganglion_pooling::Pool2dParams;
use ganglion_tensor::Rng;

/// LeNet-5 for `[1, 28, 28]` inputs and 10 classes, 61,706 parameters:
///
/// ```text
/// conv1  Conv2d(1, 6, 5, padding 2)   [6, 28, 28]     156
///        ReLU, MaxPool2d(2)           [6, 14, 14]
/// conv2  Conv2d(6, 16, 5)             [16, 10, 10]  2,416
///        ReLU, MaxPool2d(2)           [16, 5, 5]
///        Flatten                      [400]
/// fc1    Linear(400, 120), ReLU       [120]        48,120
/// fc2    Linear(120, 84), ReLU        [84]         10,164
/// fc3    Linear(84, 10)               [10]            850
/// ```
///
/// Every layer has PyTorch's default initialisation.
pub fn lenet5(rng: &mut Rng) -> Network {
    let pad2 = Conv2dParams {
        padding: [2, 2],
        ..Conv2dParams::default()
    };
    let conv1 = fixed(Conv2d::new(1, 6, [5, 5], pad2, true, rng));
    let conv2 = fixed(Conv2d::new(
        6,
        16,
        [5, 5],
        Conv2dParams::default(),
        true,
        rng,
    ));
    let body = Sequential::new()
        .push_named("conv1", conv1)
        .push_named("relu1", ReLU::new())
        .push_named("pool1", MaxPool2d::new(Pool2dParams::new([2, 2])))
        .push_named("conv2", conv2)
        .push_named("relu2", ReLU::new())
        .push_named("pool2", MaxPool2d::new(Pool2dParams::new([2, 2])))
        .push_named("flatten", Flatten::new())
        .push_named("fc1", Linear::new(400, 120, true, rng))
        .push_named("relu3", ReLU::new())
        .push_named("fc2", Linear::new(120, 84, true, rng))
        .push_named("relu4", ReLU::new())
        .push_named("fc3", Linear::new(84, 10, true, rng));
    Network::new("lenet5", body, &[1, 28, 28], 10)
}
