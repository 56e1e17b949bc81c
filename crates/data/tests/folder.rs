//! Image folders made by the tests (a few PNG and JPEG files per class): layouts, class order,
//! decoding and fitting, the seeded split, and the errors for empty classes, too few classes
//! and unreadable images.

use ganglion_data::{Fit, FolderLayout, FolderOptions, load_image_folder};
use image::{Rgb, RgbImage};
use std::path::Path;

/// A solid `w x h` image of `colour`, written as PNG or JPEG by the file's extension.
fn solid(path: &Path, w: u32, h: u32, colour: [u8; 3]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    RgbImage::from_pixel(w, h, Rgb(colour)).save(path).unwrap();
}

const COLOURS: [(&str, [u8; 3]); 3] = [
    ("dog", [200, 40, 40]),
    ("cat", [40, 200, 40]),
    ("bird", [40, 40, 200]),
];

/// `n` images per class under `root/<class>/`, of assorted sizes; one JPEG in each class.
fn classes(root: &Path, n: usize) {
    for (class, colour) in COLOURS {
        for i in 0..n {
            let ext = if i == 0 { "jpg" } else { "png" };
            let path = root.join(class).join(format!("{i:02}.{ext}"));
            solid(&path, 6 + i as u32, 9 - (i as u32 % 3), colour);
        }
    }
}

fn options(size: usize, channels: usize) -> FolderOptions {
    FolderOptions {
        image_size: size,
        channels,
        ..FolderOptions::default()
    }
}

#[test]
fn a_train_test_folder_loads_with_sorted_classes_and_its_colours() {
    let tmp = tempfile::tempdir().unwrap();
    classes(&tmp.path().join("train"), 3);
    classes(&tmp.path().join("test"), 2);
    // Not classes or images: ignored.
    std::fs::write(tmp.path().join("train/cat/notes.txt"), "x").unwrap();
    std::fs::create_dir_all(tmp.path().join("train/.cache")).unwrap();
    let folder = load_image_folder(tmp.path(), &options(8, 3)).unwrap();
    assert!(matches!(folder.layout, FolderLayout::TrainTest { .. }));
    let (train, test) = (&folder.data.train, &folder.data.test);
    assert_eq!(train.class_names().unwrap(), ["bird", "cat", "dog"]);
    assert_eq!(test.class_names(), train.class_names());
    assert_eq!((train.len(), test.len()), (9, 6));
    assert_eq!(train.image_shape(), [3, 8, 8]);
    assert_eq!(train.class_counts(), [3, 3, 3]);
    // Sample order: by class, then file name; each image keeps its class's colour (the JPEG
    // within a few levels).
    for i in 0..train.len() {
        let name = &train.class_names().unwrap()[train.label(i)];
        let want = COLOURS.iter().find(|(c, _)| c == name).unwrap().1;
        for (ch, plane) in train.image(i).chunks(64).enumerate() {
            for &p in plane {
                assert!(
                    (i32::from(p) - i32::from(want[ch])).abs() <= 6,
                    "{name} {i}: {p}"
                );
            }
        }
    }
    assert_eq!(train.labels(), [0, 0, 0, 1, 1, 1, 2, 2, 2]);
    assert!(folder.skipped.is_empty());

    let grey = load_image_folder(tmp.path(), &options(5, 1)).unwrap();
    assert_eq!(grey.data.train.image_shape(), [1, 5, 5]);
}

#[test]
fn a_single_folder_is_split_per_class_by_the_seed() {
    let tmp = tempfile::tempdir().unwrap();
    // Blue levels tell the images apart.
    for (class, colour) in COLOURS {
        for i in 0..5u8 {
            let path = tmp.path().join(class).join(format!("{i}.png"));
            solid(&path, 4, 4, [colour[0], colour[1], 20 * i]);
        }
    }
    let split = |seed, fraction| {
        let opts = FolderOptions {
            seed,
            val_fraction: fraction,
            ..options(4, 3)
        };
        load_image_folder(tmp.path(), &opts).unwrap()
    };
    let a = split(1, 0.4);
    assert!(matches!(a.layout, FolderLayout::Split { .. }));
    assert_eq!(a.data.train.class_counts(), [3, 3, 3]);
    assert_eq!(a.data.test.class_counts(), [2, 2, 2]);
    assert_eq!(a.data.test.class_names().unwrap(), ["bird", "cat", "dog"]);
    // The same seed gives the same split; another seed another one.
    let same = split(1, 0.4);
    assert_eq!(a.data.test.images(), same.data.test.images());
    let other = (2..8)
        .map(|s| split(s, 0.4))
        .any(|o| o.data.test.images() != a.data.test.images());
    assert!(other, "six other seeds all chose the same split");
    // Every image is in exactly one split.
    assert_eq!(a.data.train.len() + a.data.test.len(), 15);
    let none = split(1, 0.0);
    assert_eq!((none.data.train.len(), none.data.test.len()), (15, 0));
    let e = load_image_folder(
        tmp.path(),
        &FolderOptions {
            val_fraction: 1.0,
            ..options(4, 3)
        },
    );
    assert!(e.unwrap_err().to_string().contains("not in [0, 1)"));
}

#[test]
fn centre_crop_keeps_the_middle_and_stretch_keeps_everything() {
    let tmp = tempfile::tempdir().unwrap();
    // 30x10: black side bands 10 wide, a white centre square.
    let img = RgbImage::from_fn(30, 10, |x, _| {
        if (10..20).contains(&x) {
            Rgb([255; 3])
        } else {
            Rgb([0; 3])
        }
    });
    std::fs::create_dir_all(tmp.path().join("a")).unwrap();
    img.save(tmp.path().join("a/wide.png")).unwrap();
    solid(&tmp.path().join("b/x.png"), 4, 4, [9, 9, 9]);
    let load = |fit| {
        let opts = FolderOptions {
            fit,
            val_fraction: 0.0,
            ..options(6, 1)
        };
        load_image_folder(tmp.path(), &opts).unwrap().data.train
    };
    let cropped = load(Fit::CenterCrop);
    assert!(
        cropped.image(0).iter().all(|&p| p == 255),
        "{:?}",
        cropped.image(0)
    );
    let stretched = load(Fit::Stretch);
    let row = &stretched.image(0)[..6];
    assert!(
        row[0] == 0 && row[5] == 0 && row[2] > 150 && row[2] < 255,
        "{row:?}"
    );
}

#[test]
fn empty_classes_too_few_classes_and_missing_folders_are_errors_that_say_so() {
    let tmp = tempfile::tempdir().unwrap();
    classes(tmp.path(), 2);
    std::fs::create_dir_all(tmp.path().join("empty")).unwrap();
    std::fs::write(tmp.path().join("empty/readme.txt"), "no images").unwrap();
    let e = load_image_folder(tmp.path(), &options(4, 3))
        .unwrap_err()
        .to_string();
    assert!(e.contains("empty") && e.contains("holds no image"), "{e}");

    let one = tempfile::tempdir().unwrap();
    solid(&one.path().join("only/a.png"), 3, 3, [1, 2, 3]);
    let e = load_image_folder(one.path(), &options(4, 3))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("1 class folder(s) (only)") && e.contains("at least two"),
        "{e}"
    );

    let e = load_image_folder(&tmp.path().join("nope"), &options(4, 3)).unwrap_err();
    assert!(e.to_string().contains("no such directory"), "{e}");
    let e = load_image_folder(tmp.path(), &options(4, 2)).unwrap_err();
    assert!(e.to_string().contains("2 channels"), "{e}");

    // A test class that training does not have.
    let tt = tempfile::tempdir().unwrap();
    classes(&tt.path().join("train"), 1);
    classes(&tt.path().join("test"), 1);
    solid(&tt.path().join("test/fish/a.png"), 3, 3, [0, 0, 0]);
    let e = load_image_folder(tt.path(), &options(4, 3))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("fish") && e.contains("not one of the training classes"),
        "{e}"
    );
}

#[test]
fn unreadable_images_are_named_or_skipped_and_counted() {
    let tmp = tempfile::tempdir().unwrap();
    classes(tmp.path(), 3);
    std::fs::write(tmp.path().join("cat/broken.png"), "not a png").unwrap();
    std::fs::write(tmp.path().join("dog/empty.jpg"), "").unwrap();
    let opts = FolderOptions {
        val_fraction: 0.0,
        ..options(4, 3)
    };
    let e = load_image_folder(tmp.path(), &opts)
        .unwrap_err()
        .to_string();
    assert!(e.contains("broken.png"), "{e}");
    assert!(e.contains("1 more unreadable image"), "{e}");

    let skip = FolderOptions {
        skip_bad_images: true,
        ..opts.clone()
    };
    let folder = load_image_folder(tmp.path(), &skip).unwrap();
    assert_eq!(folder.skipped.len(), 2);
    assert!(folder.skipped[0].0.ends_with("cat/broken.png"));
    assert_eq!(folder.data.train.len(), 9);

    // A class whose every image is unreadable is still an error.
    let bad = tempfile::tempdir().unwrap();
    classes(bad.path(), 1);
    std::fs::write(bad.path().join("ghost.png"), "x").unwrap();
    std::fs::create_dir_all(bad.path().join("ghost")).unwrap();
    std::fs::write(bad.path().join("ghost/a.png"), "x").unwrap();
    let e = load_image_folder(bad.path(), &skip)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("ghost") && e.contains("no readable image"),
        "{e}"
    );
}
