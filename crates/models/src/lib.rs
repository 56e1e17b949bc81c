//! `ganglion-models`: will own the `Module` trait, the layers, the model zoo (lenet5, mnistnet,
//! allconv, resnet20) and safetensors save/load with PyTorch's state-dict names.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
