//! [`OptimError`]: every way building an optimizer or schedule, or loading its state, can fail.

/// An invalid hyper-parameter, parameter list or checkpoint state.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum OptimError {
    /// A hyper-parameter outside its valid range (negative learning rate, beta of 1, ...).
    #[error("{op}: {name} must be {requirement}, got {value}")]
    InvalidHyperParameter {
        /// The optimizer or schedule (`sgd`, `adam`, `cosine`, ...).
        op: &'static str,
        /// The hyper-parameter (`lr`, `betas.0`, `t_max`, ...).
        name: &'static str,
        /// What it must satisfy, in words (`finite and >= 0`).
        requirement: &'static str,
        /// The value given.
        value: f64,
    },
    /// Nesterov momentum without momentum, or with dampening (as `torch.optim.SGD` refuses).
    #[error(
        "sgd: nesterov requires momentum > 0 and dampening 0, \
         got momentum {momentum} and dampening {dampening}"
    )]
    NesterovRequiresMomentum {
        /// The momentum given.
        momentum: f32,
        /// The dampening given.
        dampening: f32,
    },
    /// The same parameter handle appears twice, so it would be updated twice per step.
    #[error("{op}: parameter {index} is the same tensor as parameter {first}")]
    DuplicateParam {
        /// The optimizer.
        op: &'static str,
        /// Position of the repeated handle.
        index: usize,
        /// Position of its first occurrence.
        first: usize,
    },
    /// The state was exported by a different optimizer.
    #[error("{op}: cannot load state written by {found}")]
    StateKind {
        /// The optimizer loading the state.
        op: &'static str,
        /// The `kind` recorded in the state.
        found: String,
    },
    /// The state covers a different number of parameters.
    #[error("{op}: state has {found} parameters but the optimizer has {expected}")]
    StateParamCount {
        /// The optimizer loading the state.
        op: &'static str,
        /// Parameters of the optimizer.
        expected: usize,
        /// Parameters recorded in the state.
        found: usize,
    },
    /// A state buffer whose length disagrees with its parameter.
    #[error(
        "{op}: state buffer {name} has {found} elements but parameter {index} has shape \
         {shape:?} ({expected} elements)"
    )]
    StateShape {
        /// The optimizer loading the state.
        op: &'static str,
        /// The buffer (`exp_avg.3`).
        name: String,
        /// The parameter it belongs to.
        index: usize,
        /// That parameter's shape.
        shape: Vec<usize>,
        /// That parameter's element count.
        expected: usize,
        /// The buffer's length.
        found: usize,
    },
    /// A buffer the optimizer needs is absent from the state.
    #[error("{op}: state lacks buffer {name}")]
    MissingStateBuffer {
        /// The optimizer loading the state.
        op: &'static str,
        /// The missing buffer (`momentum_buffer.0`).
        name: String,
    },
    /// The state holds a buffer this optimizer does not use (another configuration, a typo).
    #[error("{op}: state holds unexpected buffer {name}")]
    UnexpectedStateBuffer {
        /// The optimizer loading the state.
        op: &'static str,
        /// The unexpected buffer.
        name: String,
    },
}

/// Checks that `value` is finite and not negative.
pub(crate) fn non_negative(
    op: &'static str,
    name: &'static str,
    value: f32,
) -> Result<(), OptimError> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(OptimError::InvalidHyperParameter {
            op,
            name,
            requirement: "finite and >= 0",
            value: f64::from(value),
        })
    }
}

/// Checks that `value` is finite and strictly positive.
pub(crate) fn positive(op: &'static str, name: &'static str, value: f32) -> Result<(), OptimError> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(OptimError::InvalidHyperParameter {
            op,
            name,
            requirement: "finite and > 0",
            value: f64::from(value),
        })
    }
}

/// Checks that a step count is at least one.
pub(crate) fn at_least_one(
    op: &'static str,
    name: &'static str,
    value: u64,
) -> Result<(), OptimError> {
    if value >= 1 {
        Ok(())
    } else {
        Err(OptimError::InvalidHyperParameter {
            op,
            name,
            requirement: ">= 1",
            value: value as f64,
        })
    }
}
