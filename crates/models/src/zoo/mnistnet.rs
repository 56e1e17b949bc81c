//! `mnistnet`: the `Net` of PyTorch's official MNIST example (`pytorch/examples`,
//! `mnist/main.py`).

use super::{Network, fixed};
use crate::layers::{Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU, Sequential};
use ganglion_im2col_conv::Conv2dParams;
use ganglion_pooling::Pool2dParams;
use ganglion_tensor::Rng;

/// The PyTorch MNIST example's network for `[1, 28, 28]` inputs and 10 classes, 1,199,882
/// parameters:
///
/// ```text
/// conv1  Conv2d(1, 32, 3), ReLU        [32, 26, 26]        320
/// conv2  Conv2d(32, 64, 3), ReLU       [64, 24, 24]     18,496
///        MaxPool2d(2), Dropout(0.25)   [64, 12, 12]
///        Flatten                       [9216]
/// fc1    Linear(9216, 128), ReLU       [128]         1,179,776
///        Dropout(0.5)
/// fc2    Linear(128, 10)               [10]              1,290
/// ```
///
/// The example applies `log_softmax` in `forward`; here the network returns logits and the
/// loss (`cross_entropy`) applies it, which trains identically.
pub fn mnistnet(rng: &mut Rng) -> Network {
    let conv = |cin, cout, rng: &mut Rng| {
        fixed(Conv2d::new(
            cin,
            cout,
            [3, 3],
            Conv2dParams::default(),
            true,
            rng,
        ))
    };
    let conv1 = conv(1, 32, rng);
    let conv2 = conv(32, 64, rng);
    let body = Sequential::new()
        .push_named("conv1", conv1)
        .push_named("relu1", ReLU::inplace())
        .push_named("conv2", conv2)
        .push_named("relu2", ReLU::inplace())
        .push_named("pool", MaxPool2d::new(Pool2dParams::new([2, 2])))
        .push_named("dropout1", fixed(Dropout::new(0.25)))
        .push_named("flatten", Flatten::new())
        .push_named("fc1", Linear::new(9216, 128, true, rng))
        .push_named("relu3", ReLU::new())
        .push_named("dropout2", fixed(Dropout::new(0.5)))
        .push_named("fc2", Linear::new(128, 10, true, rng));
    Network::new("mnistnet", body, &[1, 28, 28], 10)
}
