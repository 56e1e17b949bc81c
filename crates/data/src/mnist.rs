//! MNIST-style data sets from a directory of IDX files: [`IdxDataset`] (MNIST, Fashion-MNIST or
//! any set with the same four file names) and [`load_mnist`].

use crate::idx::{read_idx_images, read_idx_labels};
use crate::{DataError, Dataset, TrainTest};
use std::path::{Path, PathBuf};

/// The four files of an MNIST-style directory, each either raw or with a `.gz` suffix:
/// training images, training labels, test images, test labels.
pub const IDX_FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// One of a data set's two splits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Split {
    /// The training split.
    Train,
    /// The test split.
    Test,
}

impl Split {
    fn idx_files(self) -> [&'static str; 2] {
        match self {
            Self::Train => [IDX_FILES[0], IDX_FILES[1]],
            Self::Test => [IDX_FILES[2], IDX_FILES[3]],
        }
    }
}

/// An MNIST-style data set: grey images and labels in the four [`IDX_FILES`] of a directory.
///
/// # Examples
/// ```no_run
/// use ganglion_data::IdxDataset;
/// let fashion = IdxDataset::fashion_mnist().load("data/fashion-mnist".as_ref())?;
/// assert_eq!(fashion.train.class_names().unwrap()[9], "Ankle boot");
/// # Ok::<(), ganglion_data::DataError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxDataset {
    name: String,
    num_classes: usize,
    class_names: Option<Vec<String>>,
    hint: String,
}

impl IdxDataset {
    /// A data set called `name` whose labels are below `num_classes`.
    pub fn new(name: impl Into<String>, num_classes: usize) -> Self {
        Self {
            name: name.into(),
            num_classes,
            class_names: None,
            hint: "any MNIST-style IDX files will do".into(),
        }
    }

    /// MNIST: handwritten digits, 10 classes named `0` to `9`.
    pub fn mnist() -> Self {
        Self::new("MNIST", 10)
            .with_class_names((0..10).map(|d| d.to_string()).collect())
            .with_hint(
                "copy them from data/mnist in the Ganglion repository, or run \
                 `cargo xtask data fetch mnist`",
            )
    }

    /// Fashion-MNIST (Zalando): 28x28 grey clothing images in MNIST's file format, 10 classes.
    pub fn fashion_mnist() -> Self {
        let names = [
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ];
        Self::new("Fashion-MNIST", 10)
            .with_class_names(names.iter().map(|s| s.to_string()).collect())
            .with_hint(
                "download them from https://github.com/zalandoresearch/fashion-mnist \
                 (data/fashion), or run `cargo xtask data fetch fashion-mnist`",
            )
    }

    /// The same set with class names for the loaded splits; loading fails unless there is one
    /// per class.
    pub fn with_class_names(mut self, names: Vec<String>) -> Self {
        self.class_names = Some(names);
        self
    }

    /// The same set with another hint on how to get its files, shown when they are missing.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = hint.into();
        self
    }

    /// The data set's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Loads both splits from `dir`.
    ///
    /// # Errors
    /// [`DataError::Missing`] when `dir` or any of the four files is missing (the message lists
    /// the expected files and how to get them); the errors of [`crate::read_idx`] for a bad
    /// file; [`DataError::CountMismatch`] when an image file and its label file disagree on the
    /// count; [`DataError::Format`] when a label is not below the class count.
    pub fn load(&self, dir: &Path) -> Result<TrainTest, DataError> {
        let [train_images, train_labels, test_images, test_labels] = self.locate(dir, IDX_FILES)?;
        Ok(TrainTest {
            train: self.read_pair(&[train_images, train_labels])?,
            test: self.read_pair(&[test_images, test_labels])?,
        })
    }

    /// Loads one split from `dir` (evaluation needs only the test split).
    ///
    /// # Errors
    /// As [`IdxDataset::load`].
    pub fn load_split(&self, dir: &Path, split: Split) -> Result<Dataset, DataError> {
        let files = self.locate(dir, split.idx_files())?;
        self.read_pair(&files)
    }

    /// Finds each of `names` in `dir`, raw or `.gz` (raw preferred: it need not be inflated).
    fn locate<const N: usize>(
        &self,
        dir: &Path,
        names: [&str; N],
    ) -> Result<[PathBuf; N], DataError> {
        let missing = |problem: String| DataError::Missing {
            dataset: self.name.clone(),
            dir: dir.to_path_buf(),
            problem,
            expected: IDX_FILES.map(|f| format!("{f}[.gz]")).join(", "),
            hint: self.hint.clone(),
        };
        if !dir.is_dir() {
            return Err(missing("no such directory".into()));
        }
        let found = names.map(|name| {
            [dir.join(name), dir.join(format!("{name}.gz"))]
                .into_iter()
                .find(|p| p.is_file())
        });
        let absent: Vec<String> = names
            .iter()
            .zip(&found)
            .filter(|(_, f)| f.is_none())
            .map(|(n, _)| format!("{n}[.gz]"))
            .collect();
        if !absent.is_empty() {
            return Err(missing(format!("no {}", absent.join(" or "))));
        }
        Ok(found.map(|f| f.unwrap_or_default()))
    }

    fn read_pair(&self, [images_path, labels_path]: &[PathBuf; 2]) -> Result<Dataset, DataError> {
        let images = read_idx_images(images_path)?;
        let labels = read_idx_labels(labels_path)?;
        if images.count != labels.len() {
            return Err(DataError::CountMismatch {
                images: images_path.clone(),
                image_count: images.count,
                labels: labels_path.clone(),
                label_count: labels.len(),
            });
        }
        if let Some((i, &l)) = labels
            .iter()
            .enumerate()
            .find(|&(_, &l)| usize::from(l) >= self.num_classes)
        {
            return Err(DataError::format(
                labels_path,
                format!(
                    "label {l} of record {i} is not below the {} classes of {}",
                    self.num_classes, self.name
                ),
            ));
        }
        let labels = labels.into_iter().map(u16::from).collect();
        let dataset = Dataset::new(
            images.pixels,
            labels,
            [1, images.rows, images.cols],
            self.num_classes,
        )?;
        match &self.class_names {
            Some(names) => dataset.with_class_names(names.clone()),
            None => Ok(dataset),
        }
    }
}

/// Loads MNIST from `dir` (the four [`IDX_FILES`], raw or gzip).
///
/// # Errors
/// As [`IdxDataset::load`].
pub fn load_mnist(dir: &Path) -> Result<TrainTest, DataError> {
    IdxDataset::mnist().load(dir)
}

/// Where a source checkout keeps its own copy of MNIST (`data/mnist` at the repository root),
/// as seen from this crate's sources at build time.
pub fn bundled_mnist_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist")
}
