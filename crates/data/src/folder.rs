//! Image folders, as torchvision's `ImageFolder`: one sub-folder per class holding PNG or JPEG
//! files, either split into `train/` and `test/` (or `val/`) or split here by a seeded,
//! per-class validation fraction; every image decoded once, on worker threads, into a
//! [`Dataset`] of a fixed square size.

use crate::error::with_causes;
use crate::{DataError, Dataset, DecodeLimits, TrainTest, read_image_file};
use ganglion_tensor::Rng;
use image::imageops::FilterType;
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// Image files with their labels.
type Labelled = Vec<(PathBuf, u16)>;

/// File extensions read as images (compared without regard to case).
pub const IMAGE_EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// How an image is brought to the square output size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fit {
    /// Resize the whole image to the square, changing its aspect ratio (as `ganglion predict`
    /// does, so training and prediction see images alike).
    #[default]
    Stretch,
    /// Crop the largest centred square, then resize it (torchvision's `Resize` then
    /// `CenterCrop`).
    CenterCrop,
}

/// How [`load_image_folder`] reads a folder.
#[derive(Debug, Clone, PartialEq)]
pub struct FolderOptions {
    /// Side of the square images, in pixels.
    pub image_size: usize,
    /// 1 (grey) or 3 (RGB).
    pub channels: usize,
    /// Resizing policy.
    pub fit: Fit,
    /// Fraction of each class held out for testing when the folder has no `test/` (or
    /// `val/`) split, in `[0, 1)`.
    pub val_fraction: f32,
    /// Seed of that split.
    pub seed: u64,
    /// Whether unreadable images are skipped (and listed) rather than an error.
    pub skip_bad_images: bool,
}

impl Default for FolderOptions {
    fn default() -> Self {
        Self {
            image_size: 32,
            channels: 3,
            fit: Fit::Stretch,
            val_fraction: 0.2,
            seed: 0,
            skip_bad_images: false,
        }
    }
}

/// Where the two splits of a folder came from.
#[derive(Debug, Clone, PartialEq)]
pub enum FolderLayout {
    /// `DIR/train/<class>/` and `DIR/test/<class>/` (or `DIR/val/<class>/`).
    TrainTest {
        /// The training folder.
        train: PathBuf,
        /// The test folder.
        test: PathBuf,
    },
    /// Class folders split here: `val_fraction` of each class, chosen by the seed, is held out.
    Split {
        /// The folder holding the class folders.
        root: PathBuf,
        /// The fraction held out.
        val_fraction: f32,
    },
}

/// A loaded image folder.
#[derive(Debug, Clone)]
pub struct ImageFolder {
    /// Both splits, with the class names (sorted folder names) attached.
    pub data: TrainTest,
    /// Where the splits came from.
    pub layout: FolderLayout,
    /// Images skipped as unreadable (with `skip_bad_images`), with the reason.
    pub skipped: Vec<(PathBuf, String)>,
}

/// The class folders of `dir`, sorted by name as torchvision sorts them (by code point);
/// hidden folders (`.name`) are not classes.
///
/// # Errors
/// [`DataError::Io`] when `dir` cannot be listed.
pub fn find_classes(dir: &Path) -> Result<Vec<String>, DataError> {
    let mut classes = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))? {
        let entry = entry.map_err(|e| DataError::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // `is_dir` follows symbolic links, as torchvision does.
        if !name.starts_with('.') && entry.path().is_dir() {
            classes.push(name);
        }
    }
    classes.sort();
    Ok(classes)
}

fn is_image(path: &Path) -> bool {
    path.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.as_str()))
}

/// The image files under `dir` (recursively), in torchvision's order: by folder, then by name.
fn list_images(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).map_err(|e| DataError::io(&folder, e))? {
            let path = entry.map_err(|e| DataError::io(&folder, e))?.path();
            if path.is_dir() {
                pending.push(path);
            } else if is_image(&path) {
                found.push((folder.clone(), path));
            }
        }
    }
    found.sort();
    Ok(found.into_iter().map(|(_, p)| p).collect())
}

/// The images of each of `classes` under `root`, labelled by class index; a class folder
/// that is absent contributes nothing, one that is present must hold an image.
fn samples(root: &Path, classes: &[String]) -> Result<Labelled, DataError> {
    let mut all = Vec::new();
    for (label, class) in classes.iter().enumerate() {
        let folder = root.join(class);
        if !folder.is_dir() {
            continue;
        }
        let files = list_images(&folder)?;
        if files.is_empty() {
            return Err(empty_class(&folder));
        }
        all.extend(files.into_iter().map(|p| (p, label as u16)));
    }
    Ok(all)
}

fn empty_class(folder: &Path) -> DataError {
    DataError::format(
        folder,
        format!(
            "class folder holds no image (.{} files); remove it or add images",
            IMAGE_EXTENSIONS.join(", .")
        ),
    )
}

/// Decodes one image file to `[channels, size, size]` planar bytes, fitted as `fit` says:
/// stretched exactly as [`read_image_file`] (and so `ganglion predict`) does, or centre-cropped
/// to a square first, with the same decoder limits and filter.
fn decode_file(path: &Path, size: usize, channels: usize, fit: Fit) -> Result<Vec<u8>, DataError> {
    let limits = DecodeLimits::default();
    if fit == Fit::Stretch {
        return read_image_file(path, [channels, size, size], false, &limits);
    }
    let len = std::fs::metadata(path)
        .map_err(|e| DataError::io(path, e))?
        .len();
    if len > limits.max_file_bytes {
        return Err(DataError::format(
            path,
            format!(
                "file of {len} bytes is larger than the {} bytes an image may have",
                limits.max_file_bytes
            ),
        ));
    }
    let mut reader = image::ImageReader::open(path)
        .map_err(|e| DataError::io(path, e))?
        .with_guessed_format()
        .map_err(|e| DataError::io(path, e))?;
    let mut bounds = image::Limits::default();
    bounds.max_image_width = Some(limits.max_side);
    bounds.max_image_height = Some(limits.max_side);
    bounds.max_alloc = Some(limits.max_alloc);
    reader.limits(bounds);
    let img = reader
        .decode()
        .map_err(|e| DataError::format(path, format!("not a readable PNG or JPEG image: {e}")))?;
    let (w, h) = (img.width(), img.height());
    let side = w.min(h);
    let square = img.crop_imm((w - side) / 2, (h - side) / 2, side, side);
    // The same filter and conversions as read_image_file, so the two fits differ only in the crop.
    let out = size as u32;
    let img = square.resize_exact(out, out, FilterType::Triangle);
    Ok(if channels == 1 {
        img.to_luma8().into_raw()
    } else {
        let rgb = img.to_rgb8().into_raw();
        let plane = size * size;
        let mut planar = vec![0u8; 3 * plane];
        for (i, px) in rgb.chunks_exact(3).enumerate() {
            for (ch, &v) in px.iter().enumerate() {
                planar[ch * plane + i] = v;
            }
        }
        planar
    })
}

/// Decodes `files` on the rayon pool into one [`Dataset`]; unreadable files are an error
/// naming the first (in file order) and counting the rest, or, with `skip`, left out and
/// appended to `skipped`.
fn decode_all(
    files: &[(PathBuf, u16)],
    classes: &[String],
    options: &FolderOptions,
    skipped: &mut Vec<(PathBuf, String)>,
) -> Result<Dataset, DataError> {
    let size = options.image_size;
    let decoded: Vec<Result<Vec<u8>, DataError>> = files
        .par_iter()
        .map(|(path, _)| decode_file(path, size, options.channels, options.fit))
        .collect();
    let mut pixels = Vec::with_capacity(files.len() * options.channels * size * size);
    let mut labels = Vec::with_capacity(files.len());
    let mut bad = Vec::new();
    for ((path, label), result) in files.iter().zip(decoded) {
        match result {
            Ok(bytes) => {
                pixels.extend_from_slice(&bytes);
                labels.push(*label);
            }
            Err(e) => bad.push((path.clone(), e)),
        }
    }
    if !bad.is_empty() && !options.skip_bad_images {
        let count = bad.len();
        let (path, first) = bad.swap_remove(0);
        let more = if count > 1 {
            format!(" ({} more unreadable images)", count - 1)
        } else {
            String::new()
        };
        let first = with_causes(&first);
        return Err(DataError::format(path, format!("{first}{more}")));
    }
    skipped.extend(bad.into_iter().map(|(p, e)| (p, with_causes(&e))));
    let dataset = Dataset::new(
        pixels,
        labels,
        [options.channels, size, size],
        classes.len(),
    )?;
    dataset.with_class_names(classes.to_vec())
}

/// Splits `files` per class: a seeded `fraction` of each class (rounded, at least one image
/// left for training) goes to the second list; both keep file order.
fn split_per_class(
    files: Labelled,
    classes: usize,
    fraction: f32,
    seed: u64,
) -> (Labelled, Labelled) {
    let mut held = vec![false; files.len()];
    let rng = Rng::seed_from(seed);
    for class in 0..classes {
        let members: Vec<usize> = (0..files.len())
            .filter(|&i| usize::from(files[i].1) == class)
            .collect();
        let n = members.len();
        let take = ((n as f32 * fraction).round() as usize).min(n.saturating_sub(1));
        let mut order = members;
        rng.fork(class as u64).shuffle(&mut order);
        for &i in &order[..take] {
            held[i] = true;
        }
    }
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for (file, h) in files.into_iter().zip(held) {
        if h { test.push(file) } else { train.push(file) }
    }
    (train, test)
}

/// Loads an image folder: `dir/train/<class>/` with `dir/test/<class>/` (or `dir/val/`), or
/// `dir/<class>/` split by `options.val_fraction`. Class names are the training folder's
/// sub-folders, sorted; a test folder may lack a class but not add one.
///
/// # Errors
/// [`DataError::Missing`] when `dir` does not exist; [`DataError::Invalid`] for fewer than two
/// classes, a test class unknown to training, a fraction outside `[0, 1)` or bad options;
/// [`DataError::Format`] naming an empty class folder or an unreadable image (unless
/// skipped; a class left with no readable image is still an error).
pub fn load_image_folder(dir: &Path, options: &FolderOptions) -> Result<ImageFolder, DataError> {
    let op = "image folder";
    if !dir.is_dir() {
        return Err(DataError::Missing {
            dataset: "image folder".into(),
            dir: dir.to_path_buf(),
            problem: "no such directory".into(),
            expected: "one sub-folder of PNG or JPEG images per class, or train/<class>/ and \
                       test/<class>/"
                .into(),
            hint: "e.g. DIR/cat/1.png, DIR/dog/1.jpg".into(),
        });
    }
    if !(options.channels == 1 || options.channels == 3) || options.image_size == 0 {
        return Err(DataError::invalid(
            op,
            format!(
                "{} channels of size {}: need 1 (grey) or 3 (RGB) channels and a size above 0",
                options.channels, options.image_size
            ),
        ));
    }
    if !(0.0..1.0).contains(&options.val_fraction) {
        return Err(DataError::invalid(
            op,
            format!(
                "validation fraction {} is not in [0, 1)",
                options.val_fraction
            ),
        ));
    }
    let train_dir = dir.join("train");
    let test_dir = ["test", "val"]
        .map(|n| dir.join(n))
        .into_iter()
        .find(|d| d.is_dir());
    let (root, layout) = match (&test_dir, train_dir.is_dir()) {
        (Some(test), true) => (
            train_dir.clone(),
            FolderLayout::TrainTest {
                train: train_dir.clone(),
                test: test.clone(),
            },
        ),
        _ => {
            let root = if train_dir.is_dir() {
                train_dir
            } else {
                dir.to_path_buf()
            };
            let layout = FolderLayout::Split {
                root: root.clone(),
                val_fraction: options.val_fraction,
            };
            (root, layout)
        }
    };
    let classes = find_classes(&root)?;
    if classes.len() < 2 {
        return Err(DataError::invalid(
            op,
            format!(
                "{} has {} class folder(s) ({}); a classifier needs at least two",
                root.display(),
                classes.len(),
                classes.join(", ")
            ),
        ));
    }
    let files = samples(&root, &classes)?;
    let (train_files, test_files) = match &layout {
        FolderLayout::TrainTest { test, .. } => {
            if let Some(extra) = find_classes(test)?
                .into_iter()
                .find(|c| !classes.contains(c))
            {
                return Err(DataError::invalid(
                    op,
                    format!(
                        "{} is not one of the training classes in {}",
                        test.join(&extra).display(),
                        root.display()
                    ),
                ));
            }
            (files, samples(test, &classes)?)
        }
        FolderLayout::Split { val_fraction, .. } => {
            split_per_class(files, classes.len(), *val_fraction, options.seed)
        }
    };
    let mut skipped = Vec::new();
    let train = decode_all(&train_files, &classes, options, &mut skipped)?;
    if let Some(empty) = train.class_counts().iter().position(|&n| n == 0) {
        return Err(DataError::format(
            root.join(&classes[empty]),
            "class folder holds no readable image",
        ));
    }
    let test = decode_all(&test_files, &classes, options, &mut skipped)?;
    Ok(ImageFolder {
        data: TrainTest { train, test },
        layout,
        skipped,
    })
}
