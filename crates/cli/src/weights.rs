//! Loading a weights file for `eval` and `predict`, with the normalisation it was trained with.

use anyhow::{Context, Result, bail};
use ganglion::data::Normalize;
use ganglion::models::{self, ModelMeta, Module};
use std::path::Path;

/// A model ready for inference and what its file says about it.
pub struct Loaded {
    /// The model, in evaluation mode.
    pub model: Box<dyn Module>,
    /// The file's metadata.
    pub meta: ModelMeta,
}

/// Loads `path`; `architecture` names the zoo model for files without Ganglion's metadata
/// (a state dict saved from PyTorch).
pub fn load(path: &Path, architecture: Option<&str>) -> Result<Loaded> {
    if path.is_dir() {
        bail!(
            "--weights {}: is a directory, expected a .safetensors file",
            path.display()
        );
    }
    if let Some(name) = architecture
        && !models::ZOO.contains(&name)
    {
        bail!(
            "unknown model `{name}`; the zoo has: {}",
            models::ZOO.join(", ")
        );
    }
    // The model's errors name the file themselves.
    let (mut model, meta) = models::load(path, architecture).context("cannot load weights")?;
    model.set_training(false);
    Ok(Loaded { model, meta })
}

/// The normalisation stored with the weights, else PyTorch's example values for the channel
/// count (MNIST for one channel, CIFAR-10 for three).
pub fn normalize(meta: &ModelMeta, channels: usize) -> Result<Normalize> {
    match (&meta.normalize_mean, &meta.normalize_std) {
        (Some(mean), Some(std)) => Ok(Normalize::new(mean.clone(), std.clone())?),
        _ if channels == 3 => Ok(Normalize::cifar10()),
        _ if channels == 1 => Ok(Normalize::mnist()),
        _ => Ok(Normalize::unit(channels)),
    }
}
