//! The error type of tensor construction and reshaping.

/// What went wrong building or reshaping a [`crate::Tensor`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TensorError {
    /// The data length is not the product of the shape.
    #[error("tensor: shape {shape:?} holds {expected} elements but the data has {actual}")]
    LengthMismatch {
        /// The requested shape.
        shape: Vec<usize>,
        /// Product of the shape.
        expected: usize,
        /// Length of the data given.
        actual: usize,
    },
    /// A reshape to a shape with a different element count.
    #[error("tensor: cannot reshape {from:?} ({from_len} elements) to {to:?} ({to_len} elements)")]
    ReshapeMismatch {
        /// The current shape.
        from: Vec<usize>,
        /// Its element count.
        from_len: usize,
        /// The requested shape.
        to: Vec<usize>,
        /// Its element count.
        to_len: usize,
    },
    /// An operation needed a tensor of a given rank.
    #[error("tensor: {op} needs a rank-{expected} tensor but got shape {shape:?}")]
    Rank {
        /// The operation asking.
        op: &'static str,
        /// The rank it needs.
        expected: usize,
        /// The shape it got.
        shape: Vec<usize>,
    },
    /// Two tensors that must have the same shape do not.
    #[error("tensor: {op} needs equal shapes but got {left:?} and {right:?}")]
    ShapeMismatch {
        /// The operation asking.
        op: &'static str,
        /// Shape of the left operand.
        left: Vec<usize>,
        /// Shape of the right operand.
        right: Vec<usize>,
    },
    /// An ndarray that is not in standard (row-major, contiguous) layout.
    #[error("tensor: the ndarray is not contiguous in row-major order")]
    NotContiguous,
    /// A shape whose element count overflows `usize`.
    #[error("tensor: the element count of shape {shape:?} overflows")]
    Overflow {
        /// The shape.
        shape: Vec<usize>,
    },
}
