//! Which data set a command reads, where it lives, how its pixels are normalised and augmented,
//! and how an image folder is read.

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use ganglion::data::{
    self, Augment, ColorJitter, Dataset, Fit, FolderOptions, Normalize, RandomResizedCrop,
    TrainTest,
};
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
    /// An image folder: one sub-folder of PNG/JPEG files per class, optionally under
    /// `train/` and `test/`.
    Folder,
}

/// How an image folder's files are fitted to the square `--image-size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ResizeKind {
    /// Resize the whole image, as `ganglion predict` does.
    Stretch,
    /// Take the largest centred square, then resize it.
    Crop,
}

/// How `--dataset folder` reads its images (flags shared by `train`, `data stats`, `data show`).
#[derive(Debug, Clone, Args, Serialize)]
pub struct FolderArgs {
    /// Image folders: side of the square the images are resized to.
    #[arg(long, default_value_t = 32)]
    pub image_size: usize,
    /// Image folders: 1 (grey) or 3 (RGB) channels.
    #[arg(long, default_value_t = 3)]
    pub channels: usize,
    /// Image folders: stretch each image to the square, or crop its centre square first.
    #[arg(long, value_enum, default_value = "stretch")]
    pub resize: ResizeKind,
    /// Image folders without a test/ split: fraction of each class held out for testing,
    /// chosen by --seed.
    #[serde(serialize_with = "crate::train::short_f32")]
    #[arg(long, default_value_t = 0.2)]
    pub val_fraction: f32,
    /// Image folders: skip unreadable images (listing them) instead of stopping at the first.
    #[arg(long)]
    pub skip_bad_images: bool,
}

impl FolderArgs {
    /// The reader's options; `seed` chooses the validation split.
    pub fn options(&self, seed: u64) -> Result<FolderOptions> {
        if !(self.channels == 1 || self.channels == 3) {
            bail!(
                "--channels must be 1 (grey) or 3 (RGB), got {}",
                self.channels
            );
        }
        if self.image_size == 0 || self.image_size > 4096 {
            bail!(
                "--image-size must be between 1 and 4096, got {}",
                self.image_size
            );
        }
        if !(0.0..1.0).contains(&self.val_fraction) {
            bail!(
                "--val-fraction must be in [0, 1), got {}",
                self.val_fraction
            );
        }
        Ok(FolderOptions {
            image_size: self.image_size,
            channels: self.channels,
            fit: match self.resize {
                ResizeKind::Stretch => Fit::Stretch,
                ResizeKind::Crop => Fit::CenterCrop,
            },
            val_fraction: self.val_fraction,
            seed,
            skip_bad_images: self.skip_bad_images,
        })
    }
}

/// Folder options for a model's input shape `[c, h, w]` (square `h == w`), as `eval` needs:
/// the images must come out the size the model was trained on.
pub fn folder_options_for(shape: Option<&[usize]>) -> FolderOptions {
    let mut options = FolderOptions::default();
    if let Some(&[c, h, _]) = shape {
        options.channels = c;
        options.image_size = h;
    }
    options
}

impl DatasetKind {
    /// The directory used when `--data` is not given: `data/<name>` under the current
    /// directory, else the repository's bundled copy (MNIST only).
    pub fn default_dir(self) -> PathBuf {
        let local = PathBuf::from(match self {
            Self::Mnist => "data/mnist",
            Self::Cifar10 => "data/cifar10",
            Self::Folder => "data/images",
        });
        if local.is_dir() || self != Self::Mnist {
            return local;
        }
        data::bundled_mnist_dir()
    }

    /// The format of the data set in `dir`: IDX files, CIFAR-10 batches, else a folder.
    pub fn detect(dir: &Path) -> Self {
        let has = |name: &str| dir.join(name).is_file();
        if has("train-images-idx3-ubyte") || has("train-images-idx3-ubyte.gz") {
            Self::Mnist
        } else if has(data::CIFAR10_TRAIN_FILES[0]) {
            Self::Cifar10
        } else {
            Self::Folder
        }
    }

    /// The name used in run directories (`lenet5-mnist-1`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Mnist => "mnist",
            Self::Cifar10 => "cifar10",
            Self::Folder => "folder",
        }
    }

    /// Reads both splits from `dir`; `folder` says how for image folders (ignored otherwise).
    /// Skipped unreadable images are listed on stderr.
    pub fn load(self, dir: &Path, folder: &FolderOptions) -> Result<TrainTest> {
        Ok(match self {
            Self::Mnist => data::load_mnist(dir)?,
            Self::Cifar10 => data::load_cifar10(dir)?,
            Self::Folder => {
                let loaded = data::load_image_folder(dir, folder).map_err(|e| {
                    // A format error about a file (not a class folder) is an unreadable image.
                    let image =
                        matches!(&e, data::DataError::Format { path, .. } if path.is_file());
                    let hint = if image && !folder.skip_bad_images {
                        " (--skip-bad-images continues past unreadable images)"
                    } else {
                        ""
                    };
                    // `{:#}` keeps the causes that a plain `{e}` would drop.
                    anyhow::anyhow!("{:#}{hint}", anyhow::Error::new(e))
                })?;
                if !loaded.skipped.is_empty() {
                    eprintln!("skipped {} unreadable image(s):", loaded.skipped.len());
                    for (path, why) in &loaded.skipped {
                        eprintln!("  {}: {why}", path.display());
                    }
                }
                loaded.data
            }
        })
    }

    /// The training augmentation `--augment` turns on for images of `[c, h, w]`: MNIST a
    /// 2-pixel padded crop; CIFAR-10 a 4-pixel padded crop and a flip; image folders a
    /// random-resized crop (25-100% of the area), a flip and colour jitter of 0.2.
    pub fn augmentation(self, [_, h, w]: [usize; 3]) -> Augment {
        match self {
            Self::Mnist => Augment::none().with_crop(h, w, 2),
            Self::Cifar10 => Augment::crop_flip(h, 4),
            Self::Folder => Augment::none()
                .with_resized_crop(RandomResizedCrop {
                    height: h,
                    width: w,
                    scale: [0.25, 1.0],
                    ..RandomResizedCrop::new(h)
                })
                .with_hflip()
                .with_jitter(ColorJitter::uniform(0.2)),
        }
    }
}

/// The `--normalize` value: `auto` (MNIST's and CIFAR-10's published constants, statistics
/// of the training split for folders), `computed` (statistics of the training split), `unit`
/// (scale to [0, 1] only) or the path of a JSON file with `mean` and `std` lists (what
/// `ganglion data stats` prints).
pub fn normalization(spec: &str, kind: DatasetKind, train: &Dataset) -> Result<Normalize> {
    let computed =
        || Normalize::from_dataset(train).context("--normalize: cannot compute the statistics");
    match spec {
        "auto" => match kind {
            DatasetKind::Mnist => Ok(Normalize::mnist()),
            DatasetKind::Cifar10 => Ok(Normalize::cifar10()),
            DatasetKind::Folder => computed(),
        },
        "computed" => computed(),
        "unit" => Ok(Normalize::unit(train.channels())),
        path => {
            let text = std::fs::read_to_string(path).with_context(|| {
                format!("--normalize {path}: not auto, computed or unit, and not a readable file")
            })?;
            #[derive(serde::Deserialize)]
            struct Stats {
                mean: Vec<f32>,
                std: Vec<f32>,
            }
            let stats: Stats = serde_json::from_str(&text).with_context(|| {
                format!("--normalize {path}: expected JSON with `mean` and `std` lists")
            })?;
            let n = Normalize::new(stats.mean, stats.std)
                .with_context(|| format!("--normalize {path}"))?;
            if n.channels() != train.channels() {
                bail!(
                    "--normalize {path}: {} channels, but the images have {}",
                    n.channels(),
                    train.channels()
                );
            }
            Ok(n)
        }
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
             pick a model for this data set (`--model`; allconv takes any image size and \
             channel count) or another data set (`--dataset`)",
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
