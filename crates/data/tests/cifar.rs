//! The CIFAR-10 binary reader on files written here: layout, the nested archive folder, and
//! wrong sizes, bad labels and missing files.

use ganglion_data::{
    CIFAR10_RECORD_LEN, CIFAR10_TEST_FILE, CIFAR10_TRAIN_FILES, Split, load_cifar10,
    load_cifar10_split,
};
use std::path::Path;

/// `labels.len()` records; record `k` has every red byte `k`, green `k + 1`, blue `k + 2`.
fn records(labels: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    for (k, &l) in labels.iter().enumerate() {
        v.push(l);
        for plane in 0..3 {
            v.extend(std::iter::repeat_n((k + plane) as u8, 1024));
        }
    }
    v
}

fn write_set(dir: &Path) {
    for (f, name) in CIFAR10_TRAIN_FILES.iter().enumerate() {
        std::fs::write(dir.join(name), records(&[f as u8, 9 - f as u8])).unwrap();
    }
    std::fs::write(dir.join(CIFAR10_TEST_FILE), records(&[3, 1, 4])).unwrap();
}

#[test]
fn small_files_load_with_planes_in_order() {
    let dir = tempfile::tempdir().unwrap();
    write_set(dir.path());
    let sets = load_cifar10(dir.path()).unwrap();
    assert_eq!((sets.train.len(), sets.test.len()), (10, 3));
    assert_eq!(sets.train.image_shape(), [3, 32, 32]);
    assert_eq!(sets.train.labels(), &[0, 9, 1, 8, 2, 7, 3, 6, 4, 5]);
    assert_eq!(sets.test.labels(), &[3, 1, 4]);
    let img = sets.test.image(2);
    assert_eq!(
        (img[0], img[1023], img[1024], img[2048], img[3071]),
        (2, 2, 3, 4, 4)
    );
    assert_eq!(sets.test.class_names().unwrap()[3], "cat");
}

#[test]
fn the_archive_folder_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("cifar-10-batches-bin");
    std::fs::create_dir(&nested).unwrap();
    write_set(&nested);
    let test = load_cifar10_split(dir.path(), Split::Test).unwrap();
    assert_eq!(test.len(), 3);
}

#[test]
fn wrong_size_bad_label_and_missing_files_fail_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    write_set(dir.path());
    let test = dir.path().join(CIFAR10_TEST_FILE);
    let mut bytes = records(&[1, 2]);
    bytes.push(0);
    std::fs::write(&test, &bytes).unwrap();
    let e = load_cifar10_split(dir.path(), Split::Test)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        format!(
            "data: {}: size {} bytes is not a multiple of the 3073-byte CIFAR-10 record (2 \
             whole records and 1 bytes over)",
            test.display(),
            2 * CIFAR10_RECORD_LEN + 1
        )
    );
    std::fs::write(&test, records(&[1, 12])).unwrap();
    let e = load_cifar10_split(dir.path(), Split::Test)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        format!(
            "data: {}: label 12 of record 1 is not below the 10 classes",
            test.display()
        )
    );
    std::fs::remove_file(dir.path().join(CIFAR10_TRAIN_FILES[3])).unwrap();
    let e = load_cifar10(dir.path()).unwrap_err().to_string();
    assert!(
        e.contains("CIFAR-10") && e.contains("no data_batch_4.bin; expected"),
        "{e}"
    );
    assert!(
        e.contains("test_batch.bin") && e.contains("cifar-10-binary.tar.gz"),
        "{e}"
    );
    let e = load_cifar10(&dir.path().join("none"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("no such directory"), "{e}");
}
