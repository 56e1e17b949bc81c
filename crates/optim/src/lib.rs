//! `ganglion-optim`: will own SGD (momentum, Nesterov, weight decay), Adam/AdamW, LR schedules
//! and gradient clipping, matching PyTorch's update rules.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
