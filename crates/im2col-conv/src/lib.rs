//! `ganglion-im2col-conv`: 2-D convolution forward, backward-data and backward-weight over
//! NCHW tensors with OIHW weights, by im2col + GEMM (being built).
#![deny(missing_docs)]
