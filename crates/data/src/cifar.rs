//! The CIFAR-10 binary reader: `data_batch_1.bin` .. `data_batch_5.bin` (train) and
//! `test_batch.bin` (test), each a run of 3073-byte records (one label byte, then the red, green
//! and blue 32x32 planes).

use crate::{DataError, Dataset, Split, TrainTest};
use std::fs::File;
use std::io::{BufReader, ErrorKind, Read};
use std::path::{Path, PathBuf};

/// Side of a CIFAR image.
pub const CIFAR_SIDE: usize = 32;
/// Bytes of pixels per CIFAR image: 3 planes of 32x32.
pub const CIFAR_IMAGE_LEN: usize = 3 * CIFAR_SIDE * CIFAR_SIDE;
/// Bytes per CIFAR-10 record: one label byte and the pixels.
pub const CIFAR10_RECORD_LEN: usize = 1 + CIFAR_IMAGE_LEN;
/// The training files of CIFAR-10's binary version, in order.
pub const CIFAR10_TRAIN_FILES: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];
/// The test file of CIFAR-10's binary version.
pub const CIFAR10_TEST_FILE: &str = "test_batch.bin";
/// CIFAR-10's class names (index = label).
pub const CIFAR10_CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];
/// The folder the official archive unpacks to; [`load_cifar10`] also looks inside it.
const ARCHIVE_FOLDER: &str = "cifar-10-batches-bin";
const HINT: &str = "download cifar-10-binary.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html \
                    and unpack it, or run `cargo xtask data fetch cifar10`";

/// Loads CIFAR-10's binary version from `dir` (or from `dir/cifar-10-batches-bin`).
///
/// # Errors
/// [`DataError::Missing`] when the directory or a file is missing (the message lists the
/// expected files and how to get them); the errors of [`read_cifar10_files`].
pub fn load_cifar10(dir: &Path) -> Result<TrainTest, DataError> {
    Ok(TrainTest {
        train: load_cifar10_split(dir, Split::Train)?,
        test: load_cifar10_split(dir, Split::Test)?,
    })
}

/// Loads one split of CIFAR-10's binary version from `dir` (or `dir/cifar-10-batches-bin`).
///
/// # Errors
/// As [`load_cifar10`].
pub fn load_cifar10_split(dir: &Path, split: Split) -> Result<Dataset, DataError> {
    let names: &[&str] = match split {
        Split::Train => &CIFAR10_TRAIN_FILES,
        Split::Test => &[CIFAR10_TEST_FILE],
    };
    let base = resolve_dir(dir)?;
    let paths: Vec<PathBuf> = names.iter().map(|n| base.join(n)).collect();
    let absent: Vec<&str> = names
        .iter()
        .zip(&paths)
        .filter(|(_, p)| !p.is_file())
        .map(|(n, _)| *n)
        .collect();
    if !absent.is_empty() {
        return Err(missing(&base, format!("no {}", absent.join(" or "))));
    }
    read_cifar10_files(&paths)
}

fn missing(dir: &Path, problem: String) -> DataError {
    let mut expected: Vec<&str> = CIFAR10_TRAIN_FILES.to_vec();
    expected.push(CIFAR10_TEST_FILE);
    DataError::Missing {
        dataset: "CIFAR-10".into(),
        dir: dir.to_path_buf(),
        problem,
        expected: expected.join(", "),
        hint: HINT.into(),
    }
}

/// `dir` itself when it holds CIFAR files, else its `cifar-10-batches-bin` folder when that does.
fn resolve_dir(dir: &Path) -> Result<PathBuf, DataError> {
    if !dir.is_dir() {
        return Err(missing(dir, "no such directory".into()));
    }
    let nested = dir.join(ARCHIVE_FOLDER);
    let has_files =
        |d: &Path| d.join(CIFAR10_TEST_FILE).is_file() || d.join(CIFAR10_TRAIN_FILES[0]).is_file();
    if !has_files(dir) && has_files(&nested) {
        Ok(nested)
    } else {
        Ok(dir.to_path_buf())
    }
}

/// Reads CIFAR-10 binary files into one data set, records in file order. Every file's size is
/// checked before any pixel buffer is allocated.
///
/// # Errors
/// [`DataError::Io`] when a file cannot be read; [`DataError::Format`], naming the file, when
/// its size is not a multiple of 3073 bytes, it changes size while being read, or a label is
/// not below 10.
pub fn read_cifar10_files(paths: &[PathBuf]) -> Result<Dataset, DataError> {
    let mut records = Vec::with_capacity(paths.len());
    for path in paths {
        let len = std::fs::metadata(path)
            .map_err(|e| DataError::io(path, e))?
            .len();
        let record = CIFAR10_RECORD_LEN as u64;
        if len % record != 0 {
            return Err(DataError::format(
                path,
                format!(
                    "size {len} bytes is not a multiple of the {record}-byte CIFAR-10 record \
                     ({} whole records and {} bytes over)",
                    len / record,
                    len % record
                ),
            ));
        }
        let count = usize::try_from(len / record)
            .map_err(|_| DataError::format(path, format!("size {len} bytes is too large")))?;
        records.push(count);
    }
    let total: usize = records.iter().sum();
    let mut images = vec![0u8; total * CIFAR_IMAGE_LEN];
    let mut labels = Vec::with_capacity(total);
    let mut pixels = images.chunks_exact_mut(CIFAR_IMAGE_LEN);
    for (path, &count) in paths.iter().zip(&records) {
        let file = File::open(path).map_err(|e| DataError::io(path, e))?;
        let mut reader = BufReader::with_capacity(16 * CIFAR10_RECORD_LEN, file);
        let ended_early = |i: usize| {
            DataError::format(
                path,
                format!("file ended at record {i} of {count} (it changed while being read)"),
            )
        };
        for i in 0..count {
            let mut label = [0u8; 1];
            let image = pixels.next().unwrap_or_default();
            reader
                .read_exact(&mut label)
                .and_then(|()| reader.read_exact(image))
                .map_err(|e| match e.kind() {
                    ErrorKind::UnexpectedEof => ended_early(i),
                    _ => DataError::io(path, e),
                })?;
            if label[0] >= 10 {
                return Err(DataError::format(
                    path,
                    format!(
                        "label {} of record {i} is not below the 10 classes",
                        label[0]
                    ),
                ));
            }
            labels.push(u16::from(label[0]));
        }
    }
    let dataset = Dataset::new(images, labels, [3, CIFAR_SIDE, CIFAR_SIDE], 10)?;
    dataset.with_class_names(CIFAR10_CLASSES.iter().map(|s| s.to_string()).collect())
}
