//! `ganglion-data`: image-classification data sets for Ganglion: the IDX (MNIST,
//! Fashion-MNIST) and CIFAR-10 binary readers, image folders ([`load_image_folder`]), an
//! in-memory [`Dataset`], per-channel [`Normalize`], seeded [`Augment`]ation and a
//! [`BatchLoader`] whose worker threads prepare batches ahead.
//!
//! Contract:
//! * A [`Dataset`] holds images as bytes `[count, channels, height, width]` and labels below
//!   its class count; readers check every header against the file's real size before
//!   allocating, and every error names the file and the problem.
//! * A [`Batch`] holds `images: Tensor [b, c, h, w]` of `f32` computed as torchvision's
//!   `ToTensor()` then `Normalize(mean, std)`: `(p / 255 - mean[c]) / std[c]`, and the labels.
//! * Epoch `e` of seed `s` visits the samples in the shuffle of `Rng::seed_from(s).fork(e)`;
//!   sample `i` is augmented from [`Augment::sample_rng`]`(s, e, i)`.
//!
//! Architecture invariant: the batch sequence depends only on the data, the
//! [`LoaderConfig`] and the epoch, never on timing, the prefetch depth or the number of
//! worker threads.
//!
//! # Examples
//! ```
//! use ganglion_data::{Augment, BatchLoader, Dataset, LoaderConfig, Normalize};
//! // Six 1x4x4 images, labels 0 1 2 0 1 2.
//! let pixels: Vec<u8> = (0..6 * 16).map(|i| (i * 5 % 256) as u8).collect();
//! let data = Dataset::new(pixels, vec![0, 1, 2, 0, 1, 2], [1, 4, 4], 3)?;
//! let config = LoaderConfig::train(4, 42).with_augment(Augment::crop_flip(4, 1));
//! let loader = BatchLoader::new(data, &Normalize::mnist(), config)?;
//! let mut seen = Vec::new();
//! for batch in loader.epoch(0) {
//!     assert_eq!(&batch.images.shape()[1..], &[1, 4, 4]);
//!     seen.extend(batch.indices);
//! }
//! seen.sort_unstable();
//! assert_eq!(seen, [0, 1, 2, 3, 4, 5]);
//! // The same seed and epoch give the same batches.
//! let a: Vec<_> = loader.epoch(3).collect();
//! let b: Vec<_> = loader.epoch(3).collect();
//! assert_eq!(a, b);
//! # Ok::<(), ganglion_data::DataError>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod augment;
mod cifar;
mod dataset;
mod error;
mod folder;
mod idx;
mod image_input;
mod jitter;
mod loader;
mod mnist;
mod normalize;
mod resized_crop;

pub use augment::{Augment, Placement, RandomCrop, SamplePlan};
pub use cifar::{
    CIFAR_IMAGE_LEN, CIFAR_SIDE, CIFAR10_CLASSES, CIFAR10_RECORD_LEN, CIFAR10_TEST_FILE,
    CIFAR10_TRAIN_FILES, load_cifar10, load_cifar10_split, read_cifar10_files,
};
pub use dataset::{Dataset, TrainTest};
pub use error::DataError;
pub use folder::{
    Fit, FolderLayout, FolderOptions, IMAGE_EXTENSIONS, ImageFolder, find_classes,
    load_image_folder,
};
pub use idx::{
    IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, IdxArray, IdxImages, encode_idx, read_idx, read_idx_images,
    read_idx_labels,
};
pub use image_input::{DecodeLimits, decode_image, read_image_file};
pub use jitter::{ColorJitter, JitterDraw};
pub use loader::{Batch, BatchLoader, Batches, DEFAULT_PREFETCH, LoaderConfig};
pub use mnist::{IDX_FILES, IdxDataset, Split, bundled_mnist_dir, load_mnist};
pub use normalize::{CIFAR10_MEAN, CIFAR10_STD, MNIST_MEAN, MNIST_STD, Normalize};
pub use resized_crop::{CropBox, RandomResizedCrop};

// Compiles the README's example with the doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
