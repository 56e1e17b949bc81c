//! The IDX reader and MNIST-style directories on hand-made files: raw and gzip, and hostile
//! headers (huge counts, truncation, wrong magic, trailing data, count mismatch).

use flate2::Compression;
use flate2::write::GzEncoder;
use ganglion_data::{
    DataError, IDX_FILES, IdxDataset, encode_idx, load_mnist, read_idx, read_idx_images,
    read_idx_labels,
};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// A header claiming `count` images of `rows x cols`, followed by `pixels` bytes.
fn image_file(count: u32, rows: u32, cols: u32, pixels: usize) -> Vec<u8> {
    let mut v = vec![0, 0, 8, 3];
    for d in [count, rows, cols] {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v.extend((0..pixels).map(|i| (i % 251) as u8));
    v
}

fn message(r: Result<impl std::fmt::Debug, DataError>) -> String {
    r.unwrap_err().to_string()
}

#[test]
fn raw_and_gzip_files_read_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let pixels: Vec<u8> = (0..3 * 4 * 5).map(|i| i as u8).collect();
    let bytes = encode_idx(&[3, 4, 5], &pixels).unwrap();
    let raw = write(dir.path(), "raw-idx3-ubyte", &bytes);
    let gz = write(dir.path(), "raw-idx3-ubyte.gz", &gzip(&bytes));
    for path in [&raw, &gz] {
        let images = read_idx_images(path).unwrap();
        assert_eq!((images.count, images.rows, images.cols), (3, 4, 5));
        assert_eq!(images.pixels, pixels);
    }
    let labels = write(
        dir.path(),
        "labels",
        &encode_idx(&[4], &[3, 1, 4, 1]).unwrap(),
    );
    assert_eq!(read_idx_labels(&labels).unwrap(), [3, 1, 4, 1]);
    let any = read_idx(&gz).unwrap();
    assert_eq!(any.dims, [3, 4, 5]);
    // Rank 2 through the generic reader.
    let m = write(
        dir.path(),
        "m",
        &encode_idx(&[2, 2], &[1, 2, 3, 4]).unwrap(),
    );
    assert_eq!(read_idx(&m).unwrap().data, [1, 2, 3, 4]);
}

#[test]
fn huge_header_count_fails_fast_without_allocating() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = image_file(4_000_000_000, 28, 28, 10);
    let raw = write(dir.path(), "train-images-idx3-ubyte", &bytes);
    let gz = write(dir.path(), "train-images-idx3-ubyte.gz", &gzip(&bytes));
    let start = Instant::now();
    let e = message(read_idx_images(&raw));
    assert_eq!(
        e,
        format!(
            "data: {}: header claims 4000000000 images of 28x28 but the file holds 10 bytes of \
             pixels",
            raw.display()
        )
    );
    let e = message(read_idx_images(&gz));
    assert!(e.starts_with(&format!("data: {}: ", gz.display())), "{e}");
    assert!(
        e.contains("header claims 4000000000 images of 28x28 but the decompressed file holds 10 bytes of pixels"),
        "{e}"
    );
    // 3.1 TB would take minutes to even zero; the check must come before any such allocation.
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[test]
fn truncated_files_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let short = image_file(3, 2, 2, 11);
    let raw = write(dir.path(), "short", &short);
    assert!(
        message(read_idx_images(&raw))
            .ends_with("header claims 3 images of 2x2 but the file holds 11 bytes of pixels")
    );
    let gz = write(dir.path(), "short.gz", &gzip(&short));
    assert!(message(read_idx_images(&gz)).contains("but the decompressed file holds 11 bytes"));
    // A gzip stream cut in the middle.
    let full = gzip(&image_file(50, 10, 10, 5000));
    let cut = write(dir.path(), "cut.gz", &full[..full.len() / 2]);
    let e = message(read_idx_images(&cut));
    assert!(e.starts_with(&format!("data: {}: ", cut.display())), "{e}");
    // Header cut short, and an empty file.
    let head = write(dir.path(), "head", &image_file(3, 2, 2, 0)[..9]);
    assert!(message(read_idx_images(&head)).contains("dimension 1 of 3 is missing"));
    let empty = write(dir.path(), "empty", &[]);
    assert!(message(read_idx(&empty)).contains("0 bytes, too few for an IDX header"));
}

#[test]
fn wrong_magic_and_types_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let labels = write(dir.path(), "labels", &encode_idx(&[2], &[0, 1]).unwrap());
    assert_eq!(
        message(read_idx_images(&labels)),
        format!(
            "data: {}: wrong magic 0x00000801 (expected 0x00000803 for an IDX image file)",
            labels.display()
        )
    );
    let images = write(dir.path(), "images", &image_file(1, 1, 1, 1));
    assert!(message(read_idx_labels(&images)).contains("expected 0x00000801"));
    let text = write(dir.path(), "text", b"hello world");
    assert!(message(read_idx(&text)).contains("wrong magic 0x68656c6c"));
    let floats = write(
        dir.path(),
        "floats",
        &[0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0],
    );
    assert!(message(read_idx(&floats)).contains("element type 0x0d is not supported"));
    let zero = write(dir.path(), "zero", &image_file(1, 0, 5, 0));
    assert!(message(read_idx_images(&zero)).contains("an empty image size"));
    let missing = dir.path().join("nope");
    assert!(
        message(read_idx(&missing))
            .starts_with(&format!("data: cannot read {}", missing.display()))
    );
}

#[test]
fn trailing_data_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let long = image_file(2, 2, 2, 9);
    let raw = write(dir.path(), "long", &long);
    assert_eq!(
        message(read_idx_images(&raw)),
        format!(
            "data: {}: trailing data: header claims 2 images of 2x2 (8 bytes) but the file holds \
             9 bytes after the header",
            raw.display()
        )
    );
    let gz = write(dir.path(), "long.gz", &gzip(&long));
    assert!(message(read_idx_images(&gz)).contains("trailing data"));
}

/// Writes an MNIST-style directory with `n_images` images and `n_labels` labels per split.
fn idx_dir(dir: &Path, n_images: usize, n_labels: usize, label: u8, gz: bool) {
    let images = encode_idx(&[n_images, 3, 2], &vec![7; n_images * 6]).unwrap();
    let labels = encode_idx(&[n_labels], &vec![label; n_labels]).unwrap();
    for (name, bytes) in IDX_FILES.iter().zip([&images, &labels, &images, &labels]) {
        if gz {
            write(dir, &format!("{name}.gz"), &gzip(bytes));
        } else {
            write(dir, name, bytes);
        }
    }
}

#[test]
fn directories_load_raw_and_gzip() {
    for gz in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        idx_dir(dir.path(), 4, 4, 9, gz);
        let sets = load_mnist(dir.path()).unwrap();
        assert_eq!(sets.train.len(), 4);
        assert_eq!(sets.test.image_shape(), [1, 3, 2]);
        assert_eq!(sets.train.labels(), &[9, 9, 9, 9]);
        assert_eq!(sets.train.class_names().unwrap()[9], "9");
    }
}

#[test]
fn count_mismatch_and_bad_labels_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    idx_dir(dir.path(), 3, 2, 1, false);
    let e = message(load_mnist(dir.path()));
    assert_eq!(
        e,
        format!(
            "data: {} holds 3 images but {} holds 2 labels",
            dir.path().join(IDX_FILES[0]).display(),
            dir.path().join(IDX_FILES[1]).display()
        )
    );
    let dir = tempfile::tempdir().unwrap();
    idx_dir(dir.path(), 2, 2, 10, false);
    let e = message(load_mnist(dir.path()));
    assert!(
        e.contains("label 10 of record 0 is not below the 10 classes of MNIST"),
        "{e}"
    );
    // A generic set with more classes takes the same files.
    let more = IdxDataset::new("digits+", 11).load(dir.path()).unwrap();
    assert_eq!(more.test.num_classes(), 11);
}

#[test]
fn missing_directory_and_files_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let absent = dir.path().join("mnist");
    let e = message(load_mnist(&absent));
    assert!(
        e.starts_with(&format!(
            "data: MNIST: {}: no such directory; expected ",
            absent.display()
        )),
        "{e}"
    );
    for f in IDX_FILES {
        assert!(e.contains(&format!("{f}[.gz]")), "{e}");
    }
    assert!(
        e.contains("copy them from data/mnist in the Ganglion repository"),
        "{e}"
    );
    assert!(e.contains("cargo xtask data fetch mnist"), "{e}");
    idx_dir(dir.path(), 1, 1, 0, true);
    std::fs::remove_file(dir.path().join("t10k-labels-idx1-ubyte.gz")).unwrap();
    let e = message(load_mnist(dir.path()));
    assert!(
        e.contains(": no t10k-labels-idx1-ubyte[.gz]; expected"),
        "{e}"
    );
    let e = message(IdxDataset::fashion_mnist().load(&absent));
    assert!(
        e.contains("Fashion-MNIST") && e.contains("zalandoresearch"),
        "{e}"
    );
}
