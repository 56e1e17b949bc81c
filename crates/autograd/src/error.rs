//! [`AutogradError`]: everything that can go wrong building a graph or differentiating it.

use ganglion_im2col_conv::ConvError;
use ganglion_pooling::PoolError;
use ganglion_tensor::TensorError;

/// What went wrong recording an op or running [`crate::Graph::backward`].
///
/// Every message names the op and, where shapes are at fault, the shapes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AutogradError {
    /// The convolution geometry is invalid (from `ganglion-im2col-conv`; boxed, as it is
    /// large and rare).
    #[error(transparent)]
    Conv(Box<ConvError>),
    /// The pooling geometry is invalid (from `ganglion-pooling`; boxed, as it is large and
    /// rare).
    #[error(transparent)]
    Pool(Box<PoolError>),
    /// A tensor could not be built (from `ganglion-tensor`).
    #[error(transparent)]
    Tensor(#[from] TensorError),
    /// Two operands whose shapes must agree do not.
    #[error("{op}: shapes {left:?} and {right:?} do not match{detail}")]
    ShapeMismatch {
        /// The op.
        op: &'static str,
        /// Shape of the first operand.
        left: Vec<usize>,
        /// Shape of the second operand.
        right: Vec<usize>,
        /// What the op needed, with a leading separator (`" (needs equal shapes)"`) or empty.
        detail: String,
    },
    /// An operand has a shape the op cannot take.
    #[error("{op}: {what} has shape {shape:?} but {expected}")]
    BadShape {
        /// The op.
        op: &'static str,
        /// The operand (`"input"`, `"weight"`, ...).
        what: &'static str,
        /// Its shape.
        shape: Vec<usize>,
        /// What the op needs (`"must be rank 4"`).
        expected: String,
    },
    /// A scalar argument is outside its range.
    #[error("{op}: {message}")]
    InvalidArgument {
        /// The op.
        op: &'static str,
        /// What is wrong with which argument.
        message: String,
    },
    /// A class index is not below the number of classes.
    #[error("{op}: target {target} at batch index {index} is out of range for {classes} classes")]
    TargetOutOfRange {
        /// The op.
        op: &'static str,
        /// Position in the batch.
        index: usize,
        /// The offending class index.
        target: usize,
        /// Number of classes (logit columns).
        classes: usize,
    },
    /// A [`crate::Var`] that this graph did not create, or created before its last reset.
    #[error(
        "{op}: unknown var #{index} (it belongs to another graph or was recorded before the last reset; the graph holds {len} nodes)"
    )]
    UnknownVar {
        /// The op that was given the var.
        op: &'static str,
        /// The var's index.
        index: usize,
        /// Number of nodes in the graph.
        len: usize,
    },
    /// A node's value was read after an in-place op ([`crate::Graph::relu_inplace`],
    /// [`crate::Graph::add_inplace`]) overwrote it.
    #[error(
        "{op}: the value of node #{index} ({made_by}) was overwritten in place by node #{by} ({by_op}); read it before that op, or use the out-of-place op"
    )]
    Overwritten {
        /// The op (or accessor) that tried to read it.
        op: &'static str,
        /// The overwritten node's index.
        index: usize,
        /// The op that made the overwritten node.
        made_by: &'static str,
        /// The index of the node that overwrote it.
        by: usize,
        /// The in-place op that overwrote it.
        by_op: &'static str,
    },
    /// `backward` was called on something that is not a single number.
    #[error("backward: the loss must have exactly one element but has shape {shape:?}")]
    NonScalarLoss {
        /// The loss's shape.
        shape: Vec<usize>,
    },
    /// `backward` was called on a graph built with [`crate::Graph::inference`].
    #[error(
        "backward: the graph was built in inference mode and recorded nothing to differentiate (use Graph::new)"
    )]
    InferenceMode,
}

impl From<ConvError> for AutogradError {
    fn from(e: ConvError) -> Self {
        Self::Conv(Box::new(e))
    }
}

impl From<PoolError> for AutogradError {
    fn from(e: PoolError) -> Self {
        Self::Pool(Box::new(e))
    }
}

impl AutogradError {
    pub(crate) fn mismatch(
        op: &'static str,
        left: &[usize],
        right: &[usize],
        detail: &str,
    ) -> Self {
        Self::ShapeMismatch {
            op,
            left: left.to_vec(),
            right: right.to_vec(),
            detail: detail.to_string(),
        }
    }

    pub(crate) fn bad_shape(
        op: &'static str,
        what: &'static str,
        shape: &[usize],
        expected: impl Into<String>,
    ) -> Self {
        Self::BadShape {
            op,
            what,
            shape: shape.to_vec(),
            expected: expected.into(),
        }
    }

    pub(crate) fn invalid(op: &'static str, message: impl Into<String>) -> Self {
        Self::InvalidArgument {
            op,
            message: message.into(),
        }
    }
}
