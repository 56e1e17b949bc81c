//! [`DataError`]: what went wrong reading a data set or setting up a loader.

use std::path::PathBuf;

/// What went wrong reading a data set, building a [`crate::Dataset`] or configuring a
/// [`crate::BatchLoader`]. Every message names the file or the operation and the problem.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// A file could not be opened or read.
    #[error("data: cannot read {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file was read but its content is not what its format promises.
    #[error("data: {path}: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The directory of a data set, or some of its files, do not exist.
    #[error("data: {dataset}: {dir}: {problem}; expected {expected} there ({hint})")]
    Missing {
        /// The data set (`MNIST`, `CIFAR-10`).
        dataset: String,
        /// The directory searched.
        dir: PathBuf,
        /// What is missing.
        problem: String,
        /// The files the directory should hold.
        expected: String,
        /// How to get them.
        hint: String,
    },
    /// An image file and its label file disagree on the number of samples.
    #[error("data: {images} holds {image_count} images but {labels} holds {label_count} labels")]
    CountMismatch {
        /// The image file.
        images: PathBuf,
        /// Its image count.
        image_count: usize,
        /// The label file.
        labels: PathBuf,
        /// Its label count.
        label_count: usize,
    },
    /// An argument or an in-memory value is invalid.
    #[error("data: {op}: {message}")]
    Invalid {
        /// The operation that refused it (`Dataset::new`, `BatchLoader::new`, ...).
        op: &'static str,
        /// What is wrong.
        message: String,
    },
}

impl DataError {
    pub(crate) fn invalid(op: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            op,
            message: message.into(),
        }
    }

    pub(crate) fn format(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::Format {
            path: path.into(),
            message: message.into(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

/// `e`'s message followed by its causes (`data: cannot read x.png: permission denied`), for
/// messages that embed another error as text and so would lose its `source` chain.
pub(crate) fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}
