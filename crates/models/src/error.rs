//! [`ModelError`]: what can go wrong building, running, saving or loading a model, and
//! [`Mismatch`], one disagreement between a state-dict file and a model.

use ganglion_autograd::AutogradError;
use std::fmt;
use std::path::PathBuf;

/// One disagreement between the tensors of a file and those a model expects.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mismatch {
    /// The model has this tensor; the file does not.
    Missing {
        /// State-dict name (`layer1.0.bn1.running_mean`).
        name: String,
        /// The shape the model expects.
        shape: Vec<usize>,
    },
    /// The file has this tensor; the model does not.
    Unexpected {
        /// State-dict name.
        name: String,
        /// Its shape in the file.
        shape: Vec<usize>,
    },
    /// Both have the tensor but with different shapes.
    Shape {
        /// State-dict name.
        name: String,
        /// The shape the model expects.
        expected: Vec<usize>,
        /// The shape in the file.
        found: Vec<usize>,
    },
    /// Both have the tensor but the file's element type cannot be read into the model's.
    Dtype {
        /// State-dict name.
        name: String,
        /// The element types the model accepts for it.
        expected: &'static str,
        /// The element type in the file.
        found: String,
    },
}

impl Mismatch {
    /// The state-dict name of the tensor concerned.
    pub fn name(&self) -> &str {
        match self {
            Self::Missing { name, .. }
            | Self::Unexpected { name, .. }
            | Self::Shape { name, .. }
            | Self::Dtype { name, .. } => name,
        }
    }
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing { name, shape } => {
                write!(
                    f,
                    "missing tensor `{name}` (the model expects shape {shape:?})"
                )
            }
            Self::Unexpected { name, shape } => {
                write!(f, "unexpected tensor `{name}` of shape {shape:?}")
            }
            Self::Shape {
                name,
                expected,
                found,
            } => write!(
                f,
                "tensor `{name}` has shape {found:?} in the file but the model expects {expected:?}"
            ),
            Self::Dtype {
                name,
                expected,
                found,
            } => write!(
                f,
                "tensor `{name}` has dtype {found} in the file but the model expects {expected}"
            ),
        }
    }
}

/// A list of mismatches, displayed one after another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatches(pub Vec<Mismatch>);

impl fmt::Display for Mismatches {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, m) in self.0.iter().enumerate() {
            if i > 0 {
                write!(f, "; ")?;
            }
            write!(f, "{m}")?;
        }
        Ok(())
    }
}

/// What went wrong building, running, saving or loading a model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// A layer was asked for an impossible configuration.
    #[error("{layer}: {reason}")]
    Config {
        /// The layer type (`Conv2d`).
        layer: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// An operation of the graph failed in a layer that is not inside a container.
    #[error(transparent)]
    Autograd(Box<AutogradError>),
    /// An operation of the graph failed inside the named layer.
    #[error("layer `{path}` ({kind})")]
    Layer {
        /// Dotted path of the layer in the model (`layer2.0.conv1`).
        path: String,
        /// Its type (`Conv2d`).
        kind: String,
        /// The failure (boxed: the error type stays small on the success path).
        #[source]
        source: Box<AutogradError>,
    },
    /// A name that is not in [`crate::ZOO`].
    #[error("unknown model `{name}`; the zoo has {}", crate::ZOO.join(", "))]
    UnknownModel {
        /// The name asked for.
        name: String,
    },
    /// Reading or writing a file failed.
    #[error("{}: {op}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done (`reading`, `renaming the temporary file`).
        op: &'static str,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid safetensors file (truncated, bad header, offsets past its end).
    /// The reader's finding is part of the message, not a separate source: its own message
    /// already quotes the JSON parser's, which a chain of sources would print twice.
    #[error("{}: not a valid safetensors file: {problem}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What the safetensors reader found.
        problem: safetensors::SafeTensorError,
    },
    /// The file is not safetensors at all: shorter than the header length it must start
    /// with, announcing a header longer than itself, or another format recognised by its
    /// first bytes (a PyTorch `torch.save` archive, a pickle, HDF5, NumPy).
    #[error("{}: not a valid safetensors file: {found}", path.display())]
    NotSafetensors {
        /// The file.
        path: PathBuf,
        /// What it is instead, and what to do about it.
        found: String,
    },
    /// The tensors of the file do not match the model's; every mismatch is listed.
    #[error("{}: the file does not match the model ({} problems): {mismatches}", path.display(), mismatches.0.len())]
    StateDict {
        /// The file.
        path: PathBuf,
        /// Every mismatch, by tensor name.
        mismatches: Mismatches,
    },
    /// A Ganglion metadata entry that cannot be parsed.
    #[error("{}: metadata `{key}` = {value:?} is not valid: {reason}", path.display())]
    Metadata {
        /// The file.
        path: PathBuf,
        /// The metadata key (`ganglion.input_shape`).
        key: String,
        /// Its value.
        value: String,
        /// Why it is rejected.
        reason: String,
    },
    /// Two tensors of a model share a state-dict name.
    #[error("state dict: tensor name `{name}` appears twice in the model")]
    DuplicateName {
        /// The name.
        name: String,
    },
    /// A file without `ganglion.architecture` loaded without naming the architecture.
    #[error(
        "{}: the file does not name its architecture (no `ganglion.architecture` metadata); name one of {}",
        path.display(),
        crate::ZOO.join(", ")
    )]
    NoArchitecture {
        /// The file.
        path: PathBuf,
    },
}

impl From<AutogradError> for ModelError {
    fn from(e: AutogradError) -> Self {
        Self::Autograd(Box::new(e))
    }
}

impl ModelError {
    /// The same error as seen from a container: a failure of child `name` (of type `kind`)
    /// gets the child's name prefixed to its layer path.
    pub(crate) fn in_child(self, name: &str, kind: &str) -> Self {
        match self {
            Self::Autograd(source) => Self::Layer {
                path: name.to_string(),
                kind: kind.to_string(),
                source,
            },
            Self::Layer { path, kind, source } => Self::Layer {
                path: format!("{name}.{path}"),
                kind,
                source,
            },
            other => other,
        }
    }
}
