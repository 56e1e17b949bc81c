//! [`ConvError`]: why a convolution geometry or a tensor-level call was rejected.

/// What is wrong with a convolution's shapes or parameters.
///
/// Every message names the op and the shapes involved, so it can be shown to a user as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConvError {
    /// The input or the weight has a dimension of size zero.
    #[error("conv2d: {tensor} shape {dims:?} has a zero dimension")]
    ZeroDim {
        /// `"input"` or `"weight"`.
        tensor: &'static str,
        /// Its dimensions.
        dims: [usize; 4],
    },
    /// A stride of zero.
    #[error("conv2d: stride {stride:?} must be at least 1 on both axes")]
    ZeroStride {
        /// The stride `[h, w]`.
        stride: [usize; 2],
    },
    /// A dilation of zero.
    #[error("conv2d: dilation {dilation:?} must be at least 1 on both axes")]
    ZeroDilation {
        /// The dilation `[h, w]`.
        dilation: [usize; 2],
    },
    /// `groups` is zero.
    #[error("conv2d: groups must be at least 1 (input {input:?}, weight {weight:?})")]
    ZeroGroups {
        /// Input dimensions `[n, cin, h, w]`.
        input: [usize; 4],
        /// Weight dimensions `[cout, cin/groups, kh, kw]`.
        weight: [usize; 4],
    },
    /// `groups` does not divide the input channels.
    #[error("conv2d: groups {groups} does not divide the {cin} input channels of input {input:?}")]
    GroupsInput {
        /// The group count.
        groups: usize,
        /// Input channels.
        cin: usize,
        /// Input dimensions.
        input: [usize; 4],
    },
    /// `groups` does not divide the output channels.
    #[error(
        "conv2d: groups {groups} does not divide the {cout} output channels of weight {weight:?}"
    )]
    GroupsOutput {
        /// The group count.
        groups: usize,
        /// Output channels.
        cout: usize,
        /// Weight dimensions.
        weight: [usize; 4],
    },
    /// The weight's in-channels are not `cin / groups`.
    #[error(
        "conv2d: input {input:?} has {cin} channels but weight {weight:?} expects {expected} \
         ({per_group} per group x {groups} groups)"
    )]
    ChannelMismatch {
        /// Input dimensions.
        input: [usize; 4],
        /// Weight dimensions.
        weight: [usize; 4],
        /// Input channels.
        cin: usize,
        /// The weight's in-channels per group.
        per_group: usize,
        /// The group count.
        groups: usize,
        /// `per_group * groups`.
        expected: usize,
    },
    /// The dilated kernel does not fit in the padded input on some axis.
    #[error(
        "conv2d: dilated kernel {span:?} (kernel {kernel:?}, dilation {dilation:?}) is larger \
         than the padded input {padded:?} (input {input:?}, padding {padding:?})"
    )]
    KernelTooLarge {
        /// `dilation * (kernel - 1) + 1` per axis.
        span: [usize; 2],
        /// Kernel size `[kh, kw]`.
        kernel: [usize; 2],
        /// Dilation `[h, w]`.
        dilation: [usize; 2],
        /// `size + 2 * padding` per axis.
        padded: [usize; 2],
        /// Input dimensions.
        input: [usize; 4],
        /// Padding `[h, w]`.
        padding: [usize; 2],
    },
    /// An element count of the input, weight, output or column buffer overflows `usize`.
    #[error("conv2d: input {input:?} with weight {weight:?} is too large to index")]
    TooLarge {
        /// Input dimensions.
        input: [usize; 4],
        /// Weight dimensions.
        weight: [usize; 4],
    },
    /// A tensor given to the tensor-level API does not have rank 4.
    #[error("conv2d: {tensor} must be rank 4 ({layout}) but has shape {shape:?}")]
    Rank {
        /// Which argument.
        tensor: &'static str,
        /// The layout it must have (`NCHW`, `OIHW`).
        layout: &'static str,
        /// The shape it has.
        shape: Vec<usize>,
    },
    /// A tensor given to the tensor-level API (bias, grad_output) has the wrong shape.
    #[error(
        "conv2d: {tensor} has shape {shape:?} but {expected:?} was expected \
         for input {input:?} and weight {weight:?}"
    )]
    ShapeMismatch {
        /// Which argument.
        tensor: &'static str,
        /// The shape it has.
        shape: Box<[usize]>,
        /// The shape it must have.
        expected: Box<[usize]>,
        /// Input dimensions.
        input: [usize; 4],
        /// Weight dimensions.
        weight: [usize; 4],
    },
}
