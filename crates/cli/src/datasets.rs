//! Which data set a command reads, where it lives, and how its pixels are normalised.

use anyhow::{Context, Result, bail};
use clap::ValueEnum;
use ganglion::data::{self, Normalize, TrainTest};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// The data-set formats `train` and `eval` read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DatasetKind {
    /// MNIST-format IDX files (also Fashion-MNIST and any IDX set).
    Mnist,
    /// The CIFAR-10 binary version (`data_batch_{1..5}.bin`, `test_batch.bin`).
    Cifar10,
}

impl DatasetKind {
    /// The directory used when `--data` is not given: `data/<name>` under the current
    /// directory, else the repository's bundled copy (MNIST only).
    pub fn default_dir(self) -> PathBuf {
        let local = PathBuf::from(match self {
            Self::Mnist => "data/mnist",
            Self::Cifar10 => "data/cifar10",
        });
        if local.is_dir() || self == Self::Cifar10 {
            return local;
        }
        data::bundled_mnist_dir()
    }

    /// PyTorch's example normalisation for this data set.
    pub fn normalize(self) -> Normalize {
        match self {
            Self::Mnist => Normalize::mnist(),
            Self::Cifar10 => Normalize::cifar10(),
        }
    }

    /// Reads both splits from `dir`.
    pub fn load(self, dir: &Path) -> Result<TrainTest> {
        Ok(match self {
            Self::Mnist => data::load_mnist(dir)?,
            Self::Cifar10 => data::load_cifar10(dir)?,
        })
    }
}

/// Takes at most `limit` items of a split (`0` keeps all), for quick runs.
pub fn limit(mut set: data::Dataset, limit: Option<usize>) -> data::Dataset {
    if let Some(n) = limit {
        set.truncate(n);
    }
    set
}

/// Checks that a model's input shape accepts the data set's images.
pub fn check_shapes(
    model_input: Option<&[usize]>,
    data_shape: [usize; 3],
    model: &str,
) -> Result<()> {
    if let Some(want) = model_input
        && want != data_shape
    {
        bail!(
            "model `{model}` takes inputs of shape {} but the data set's images are {}; \
             pick a model for this data set (`--model`) or another data set (`--dataset`)",
            dims(want),
            dims(&data_shape)
        );
    }
    Ok(())
}

/// `1x28x28`.
pub fn dims(shape: &[usize]) -> String {
    shape
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join("x")
}

/// Checks that `dir` names a directory before a reader lists the files it expects there.
pub fn check_dir(dir: &Path, flag: &str) -> Result<()> {
    if dir.exists() && !dir.is_dir() {
        bail!("{flag} {}: is a file, expected a directory", dir.display());
    }
    std::fs::metadata(dir)
        .map(|_| ())
        .or_else(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Ok(())
            } else {
                Err(e)
            }
        })
        .with_context(|| format!("{flag} {}: cannot read", dir.display()))
}
