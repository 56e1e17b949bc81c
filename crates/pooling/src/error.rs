//! The error type of pooling: invalid geometry and tensors that disagree with it.

/// What went wrong validating a pooling geometry or the tensors handed to it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// A kernel side is zero.
    #[error("pool2d: kernel {kernel:?} has a zero side")]
    ZeroKernel {
        /// The kernel `[kh, kw]`.
        kernel: [usize; 2],
    },
    /// A stride is zero.
    #[error("pool2d: stride {stride:?} has a zero step")]
    ZeroStride {
        /// The stride `[sh, sw]`.
        stride: [usize; 2],
    },
    /// Padding larger than half the kernel on some axis (PyTorch's limit).
    #[error("pool2d: padding {padding:?} exceeds half the kernel {kernel:?}")]
    PaddingTooLarge {
        /// The padding `[ph, pw]`.
        padding: [usize; 2],
        /// The kernel `[kh, kw]`.
        kernel: [usize; 2],
    },
    /// The input has no channels, rows or columns.
    #[error("pool2d: input {input:?} has an empty channel, height or width dimension")]
    EmptyInput {
        /// The input `[n, c, h, w]`.
        input: [usize; 4],
    },
    /// The window does not fit the (padded) input even once.
    #[error(
        "pool2d: input {input:?} with kernel {kernel:?}, stride {stride:?}, padding {padding:?} \
         gives an empty output {out_h}x{out_w}"
    )]
    EmptyOutput {
        /// The input `[n, c, h, w]`.
        input: [usize; 4],
        /// The kernel `[kh, kw]`.
        kernel: [usize; 2],
        /// The stride `[sh, sw]`.
        stride: [usize; 2],
        /// The padding `[ph, pw]`.
        padding: [usize; 2],
        /// The output height the formula gives (zero or negative).
        out_h: i64,
        /// The output width the formula gives (zero or negative).
        out_w: i64,
    },
    /// The element count overflows, or a plane is too large for `u32` argmax indices.
    #[error("pool2d: input {input:?} is too large (element count or plane size overflows)")]
    TooLarge {
        /// The input `[n, c, h, w]`.
        input: [usize; 4],
    },
    /// A tensor that must be `[n, c, h, w]` has another rank.
    #[error("{op}: {what} must be rank 4 [n, c, h, w] but has shape {shape:?}")]
    Rank {
        /// The operation.
        op: &'static str,
        /// Which tensor.
        what: &'static str,
        /// Its shape.
        shape: Vec<usize>,
    },
    /// A tensor whose shape disagrees with the geometry.
    #[error("{op}: {what} has shape {actual:?} but {expected:?} was expected")]
    ShapeMismatch {
        /// The operation.
        op: &'static str,
        /// Which tensor.
        what: &'static str,
        /// The shape the geometry implies.
        expected: Vec<usize>,
        /// The shape given.
        actual: Vec<usize>,
    },
    /// A buffer whose length disagrees with the geometry.
    #[error("{op}: {what} has {actual} elements but the shape {shape:?} needs {expected}")]
    LengthMismatch {
        /// The operation.
        op: &'static str,
        /// Which buffer.
        what: &'static str,
        /// The shape the length derives from.
        shape: Vec<usize>,
        /// The length the geometry implies.
        expected: usize,
        /// The length given.
        actual: usize,
    },
    /// An argmax entry that points outside its input plane.
    #[error("{op}: argmax[{index}] = {value} is outside the {plane}-element input plane")]
    ArgmaxOutOfRange {
        /// The operation.
        op: &'static str,
        /// Position in the argmax buffer.
        index: usize,
        /// The entry.
        value: u32,
        /// Elements per input plane (`h * w`).
        plane: usize,
    },
}
