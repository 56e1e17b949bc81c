//! End-to-end tests of image folders (`train --dataset folder`, `eval`, `predict` printing
//! class names), `data stats` feeding `--normalize`, `data show`, and the folder errors. The
//! folders are a few PNG files per class written by the tests.

use assert_cmd::Command;
use image::{Rgb, RgbImage};
use std::path::{Path, PathBuf};

fn ganglion() -> Command {
    Command::cargo_bin("ganglion").expect("the ganglion binary is built")
}

fn stderr_of(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(!out.status.success(), "expected failure, got success");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout_of(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `n` images per class: red squares, green bars, blue dots on a dark ground, of assorted
/// sizes.
fn shapes(root: &Path, n: u32) {
    for (class, colour) in [
        ("red", [220, 30, 30]),
        ("green", [30, 220, 30]),
        ("blue", [30, 30, 220]),
    ] {
        let dir = root.join(class);
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..n {
            let (w, h) = (16 + i % 5, 14 + i % 3);
            let img = RgbImage::from_fn(w, h, |x, y| {
                if (x + i) % 7 < 4 && (y + i) % 5 < 3 {
                    Rgb(colour)
                } else {
                    Rgb([10, 10, 10])
                }
            });
            img.save(dir.join(format!("{i}.png"))).unwrap();
        }
    }
}

fn train(data: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut cmd = ganglion();
    cmd.args([
        "train",
        "--dataset",
        "folder",
        "--epochs",
        "1",
        "--batch-size",
        "8",
    ])
    .args(["--no-progress", "--threads", "1"])
    .args(extra);
    // Defaults the test did not set itself.
    for (flag, value) in [("--model", "allconv"), ("--image-size", "12")] {
        if !extra.contains(&flag) {
            cmd.args([flag, value]);
        }
    }
    cmd.arg("--data").arg(data).arg("--out").arg(out);
    cmd
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn a_folder_trains_and_predict_prints_its_class_names() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("shapes");
    shapes(&data, 6);
    let run = tmp.path().join("run");
    let text = stdout_of(&mut train(
        &data,
        &run,
        &["--augment", "--data-workers", "2"],
    ));
    assert!(text.contains("(15 train / 3 test images)"), "{text}");
    let config = json(&run.join("config.json"));
    assert_eq!(config["args"]["dataset"], "folder");
    assert_eq!(config["args"]["image_size"], 12);
    assert_eq!(config["args"]["val_fraction"], 0.2);
    // Statistics of the training split: three channels, dark images.
    let mean = config["normalize"]["mean"].as_array().unwrap();
    assert_eq!(mean.len(), 3);
    assert!(
        mean.iter()
            .all(|m| (0.0..0.5).contains(&m.as_f64().unwrap()))
    );

    let image = data.join("green/3.png");
    let out = stdout_of(
        ganglion()
            .args(["predict", "--top", "3", "--weights"])
            .arg(run.join("model.safetensors"))
            .arg(&image),
    );
    assert!(out.contains("3x12x12 input"), "{out}");
    for name in ["red", "green", "blue"] {
        assert!(out.contains(name), "{out}");
    }
    let eval = stdout_of(
        ganglion()
            .args(["eval", "--json", "--dataset", "folder", "--weights"])
            .arg(run.join("model.safetensors"))
            .arg("--data")
            .arg(&data),
    );
    let eval: serde_json::Value = serde_json::from_str(&eval).unwrap();
    assert_eq!(eval["images"], 3);
}

#[test]
fn data_stats_feeds_normalize_and_data_show_draws_a_grid() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("train");
    shapes(&data, 4);
    // A train/test layout.
    shapes(&tmp.path().join("test"), 1);
    let stats_file = tmp.path().join("stats.json");
    let text = stdout_of(
        ganglion()
            .args([
                "data",
                "stats",
                "--channels",
                "1",
                "--image-size",
                "10",
                "--out",
            ])
            .arg(&stats_file)
            .arg(tmp.path()),
    );
    let stats: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(stats["images"], 12);
    assert_eq!(stats["image_shape"], serde_json::json!([1, 10, 10]));
    assert_eq!(json(&stats_file), stats);

    let run = tmp.path().join("run");
    let normalize = stats_file.to_str().unwrap();
    stdout_of(&mut train(
        tmp.path(),
        &run,
        &[
            "--channels",
            "1",
            "--image-size",
            "10",
            "--normalize",
            normalize,
        ],
    ));
    let config = json(&run.join("config.json"));
    // The same f32 values (config.json writes them at f64 length).
    let as_f32 = |v: &serde_json::Value| -> Vec<f32> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect()
    };
    for key in ["mean", "std"] {
        assert_eq!(
            as_f32(&config["normalize"][key]),
            as_f32(&stats[key]),
            "{key}"
        );
    }
    // The wrong channel count is refused, naming the file.
    let err = stderr_of(&mut train(
        tmp.path(),
        &tmp.path().join("run2"),
        &["--normalize", normalize],
    ));
    assert!(
        err.contains("stats.json") && err.contains("1 channels"),
        "{err}"
    );

    let png = tmp.path().join("grid.png");
    let plain = stdout_of(
        ganglion()
            .args(["data", "show", "--n", "5", "--out"])
            .arg(&png)
            .arg(tmp.path()),
    );
    assert!(plain.contains("wrote 5 folder samples"), "{plain}");
    let small = image::open(&png).unwrap();
    let aug_png = tmp.path().join("aug.png");
    stdout_of(
        ganglion()
            .args(["data", "show", "--n", "5", "--augment", "--out"])
            .arg(&aug_png)
            .arg(tmp.path()),
    );
    let wide = image::open(&aug_png).unwrap();
    assert!(wide.width() > small.width() && wide.height() >= small.height());
}

#[test]
fn folder_problems_are_errors_that_say_so() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("d");
    shapes(&data, 3);
    let run = |extra: &[&str]| -> PathBuf { tmp.path().join(format!("run{}", extra.len())) };

    // A fixed-shape model: the shape error points at allconv.
    let err = stderr_of(&mut train(&data, &run(&[]), &["--model", "lenet5"]));
    assert!(err.contains("allconv takes any image size"), "{err}");

    // An unreadable image is named, with the flag that skips it; the flag skips it.
    std::fs::write(data.join("red/broken.png"), "not a picture").unwrap();
    let err = stderr_of(&mut train(&data, &run(&["a"]), &[]));
    assert!(
        err.contains("broken.png") && err.contains("--skip-bad-images"),
        "{err}"
    );
    let out = train(&data, &run(&["a", "b"]), &["--skip-bad-images"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("skipped 1 unreadable image") && stderr.contains("broken.png"),
        "{stderr}"
    );
    std::fs::remove_file(data.join("red/broken.png")).unwrap();

    // An empty class folder, then a single class.
    std::fs::create_dir_all(data.join("zebra")).unwrap();
    let err = stderr_of(&mut train(&data, &run(&["a", "b", "c"]), &[]));
    assert!(
        err.contains("zebra") && err.contains("holds no image"),
        "{err}"
    );
    let single = tmp.path().join("single");
    std::fs::create_dir_all(&single).unwrap();
    std::fs::rename(data.join("red"), single.join("red")).unwrap();
    let err = stderr_of(&mut train(&single, &run(&["a", "b", "c", "d"]), &[]));
    assert!(err.contains("at least two"), "{err}");
    let err = stderr_of(&mut train(&data, &run(&[]), &["--channels", "2"]));
    assert!(err.contains("--channels must be 1"), "{err}");
}
