//! End-to-end tests of looking inside a network: `ganglion summary` (table, JSON, the dense
//! comparison), `visualize filters|activations|receptive-field`, the run's `curves.svg` and
//! `ganglion plot`.

use assert_cmd::Command;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn ganglion() -> Command {
    Command::cargo_bin("ganglion").expect("the ganglion binary is built")
}

fn stdout_of(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn stderr_of(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(!out.status.success(), "expected failure, got success");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json_of(cmd: &mut Command) -> Value {
    serde_json::from_str(&stdout_of(cmd)).expect("valid JSON")
}

/// A 2-epoch lenet5 run on 256 images; returns the run directory.
fn quick_run(dir: &Path, name: &str, epochs: &str) -> PathBuf {
    let out = dir.join(name);
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist");
    ganglion()
        .args(["train", "--epochs", epochs, "--train-limit", "256"])
        .args(["--test-limit", "100", "--no-progress", "--threads", "2"])
        .arg("--out")
        .arg(&out)
        .arg("--data")
        .arg(data)
        .assert()
        .success();
    out
}

/// Loads a PNG and checks that it has `size` and more than one colour.
fn check_png(path: &Path, size: Option<(u32, u32)>) -> image::RgbImage {
    let img = image::open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .to_rgb8();
    if let Some(size) = size {
        assert_eq!(img.dimensions(), size, "{}", path.display());
    }
    let first = img.get_pixel(0, 0);
    let distinct = img.pixels().filter(|p| *p != first).count();
    assert!(distinct > 0, "{} is uniform", path.display());
    img
}

/// The contents of an SVG document's `<text>` elements, trimmed.
fn svg_texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| {
            let body = &t[t.find('>')? + 1..];
            Some(body[..body.find("</text>")?].trim().to_string())
        })
        .collect()
}

fn row<'a>(s: &'a Value, name: &str) -> &'a Value {
    s["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == name)
        .unwrap_or_else(|| panic!("no row {name}"))
}

#[test]
fn summary_of_lenet5_as_table_and_json() {
    let text = stdout_of(ganglion().args(["summary", "--model", "lenet5"]));
    let pool1: Vec<&str> = text
        .lines()
        .find(|l| l.starts_with("pool1"))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(pool1, ["pool1", "MaxPool2d", "6x14x14", "0", "0", "6", "2"]);
    assert!(text.contains("61,706"), "{text}");
    assert!(text.contains("per batch of 64"), "{text}");

    let s = json_of(ganglion().args(["summary", "--model", "lenet5", "--json", "--batch", "8"]));
    assert_eq!(s["total_params"], 61_706);
    assert_eq!(s["total_macs"], 416_520);
    assert_eq!(s["batch_size"], 8);
    for (name, rf, jump) in [
        ("conv1", 5, 1),
        ("pool1", 6, 2),
        ("conv2", 14, 2),
        ("pool2", 16, 4),
    ] {
        let l = row(&s, name);
        assert_eq!(
            (l["receptive_field"].as_u64(), l["jump"].as_u64()),
            (Some(rf), Some(jump))
        );
    }
    let conv1 = row(&s, "conv1");
    for key in [
        "name",
        "type",
        "output_shape",
        "params",
        "macs",
        "receptive_field",
        "jump",
    ] {
        assert!(conv1.get(key).is_some(), "row lacks {key}");
    }
    assert_eq!(conv1["macs"], 117_600);
    assert_eq!(conv1["type"], "Conv2d");
    assert_eq!(conv1["output_shape"], serde_json::json!([6, 28, 28]));
    assert_eq!(
        s["batch_activation_bytes"].as_u64().unwrap(),
        8 * s["activation_bytes"].as_u64().unwrap()
    );
}

#[test]
fn summary_of_resnet20_and_of_other_inputs() {
    let s = json_of(ganglion().args(["summary", "--model", "resnet20", "--json"]));
    assert_eq!(s["total_params"], 269_722);
    assert_eq!(row(&s, "layer1.0")["type"], "BasicBlock");
    assert_eq!(row(&s, "layer1.0.conv2")["receptive_field"], 7);
    // allconv is fully convolutional: a larger input gives larger maps.
    let s = json_of(ganglion().args([
        "summary", "--model", "allconv", "--input", "1x56x56", "--json",
    ]));
    assert_eq!(
        row(&s, "conv4")["output_shape"],
        serde_json::json!([64, 14, 14])
    );
    let err = stderr_of(ganglion().args(["summary", "--model", "lenet5", "--input", "3x28x28"]));
    assert!(err.contains("conv1"), "{err}");
    let err = stderr_of(ganglion().args(["summary", "--input", "3xx2"]));
    assert!(err.contains("--input"), "{err}");
}

#[test]
fn compare_dense_counts_the_lecture_example() {
    let text = stdout_of(ganglion().args([
        "summary",
        "--compare-dense",
        "3x100x100",
        "--hidden",
        "1000",
    ]));
    assert!(text.contains("30,000,000"), "{text}");
    assert!(text.contains("30,001,000"), "{text}");
    let v = json_of(ganglion().args([
        "summary",
        "--compare-dense",
        "3x100x100",
        "--hidden",
        "1000",
        "--model",
        "lenet5",
        "--json",
    ]));
    assert_eq!(v["dense"]["weights"], 30_000_000);
    assert_eq!(v["dense"]["biases"], 1000);
    assert_eq!(v["dense"]["params"], 30_001_000);
    // lenet5's conv1 on three channels: 6 filters of 3x5x5 plus 6 biases.
    assert_eq!(v["conv"]["weights"], 450);
    assert_eq!(v["conv"]["params"], 456);
    assert_eq!(v["conv"]["output_shape"], serde_json::json!([6, 100, 100]));
    let v = json_of(ganglion().args([
        "summary",
        "--compare-dense",
        "1x28x28",
        "--hidden",
        "10",
        "--model",
        "resnet20",
        "--json",
    ]));
    assert_eq!(v["conv"]["params"], 16 * 9);
    assert_eq!(v["dense"]["params"], 7840 + 10);
}

#[test]
fn receptive_field_picture_shows_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    let png = tmp.path().join("rf.png");
    let out = stdout_of(
        ganglion()
            .args([
                "visualize",
                "receptive-field",
                "--model",
                "lenet5",
                "--layer",
                "conv2",
                "--out",
            ])
            .arg(&png),
    );
    assert!(out.contains("receptive field 14, jump 2"), "{out}");
    let img = check_png(&png, Some((336, 336)));
    // The field's centre is tinted; a corner far outside it is not.
    let centre = img.get_pixel(12 * 11 + 6, 12 * 11 + 6).0;
    let corner = img.get_pixel(3, 3).0;
    assert!(centre[0] > centre[1] + 50, "{centre:?}");
    assert!(corner[0].abs_diff(corner[1]) < 10, "{corner:?}");
    let err = stderr_of(ganglion().args(["visualize", "receptive-field", "--layer", "conv9"]));
    assert!(err.contains("conv9") && err.contains("pool2"), "{err}");
}

fn write_digit_png(path: &Path) {
    let img = image::GrayImage::from_fn(28, 28, |x, y| {
        let stroke = (12..16).contains(&x) && (4..24).contains(&y);
        let bar = (6..22).contains(&x) && (4..7).contains(&y);
        image::Luma([if stroke || bar { 255 } else { 0 }])
    });
    img.save(path).unwrap();
}

#[test]
fn a_run_draws_curves_filters_and_feature_maps() {
    let tmp = tempfile::tempdir().unwrap();
    let first = quick_run(tmp.path(), "first", "2");
    let svg = std::fs::read_to_string(first.join("curves.svg")).unwrap();
    assert!(svg.starts_with("<svg"), "{}", &svg[..60.min(svg.len())]);
    let texts = svg_texts(&svg);
    for text in ["first", "loss", "accuracy", "epoch", "train", "test"] {
        assert!(
            texts.iter().any(|t| t == text),
            "curves.svg lacks {text}: {texts:?}"
        );
    }
    assert!(svg.matches("<polyline").count() >= 4, "four curves");

    let second = quick_run(tmp.path(), "second", "1");
    let overlay = tmp.path().join("both.svg");
    let out = stdout_of(
        ganglion()
            .args(["plot"])
            .arg(&first)
            .arg(&second)
            .arg("--out")
            .arg(&overlay),
    );
    assert!(out.contains("2 runs, 3 epochs"), "{out}");
    let texts = svg_texts(&std::fs::read_to_string(&overlay).unwrap());
    for text in ["first train", "first test", "second train", "second test"] {
        assert!(
            texts.iter().any(|t| t == text),
            "both.svg lacks {text}: {texts:?}"
        );
    }
    let err = stderr_of(ganglion().args(["plot"]).arg(tmp.path().join("nope")));
    assert!(err.contains("nope"), "{err}");

    let weights = first.join("model.safetensors");
    let filters = tmp.path().join("filters.png");
    ganglion()
        .args(["visualize", "filters", "--weights"])
        .arg(&weights)
        .arg("--out")
        .arg(&filters)
        .assert()
        .success();
    // 6 filters of 5x5 at 12x in a 3x2 grid with 2-pixel separators.
    check_png(&filters, Some((3 * 62 + 2, 2 * 62 + 2)));
    let conv2 = tmp.path().join("conv2.png");
    ganglion()
        .args([
            "visualize",
            "filters",
            "--layer",
            "conv2",
            "--scale",
            "4",
            "--weights",
        ])
        .arg(&weights)
        .arg("--out")
        .arg(&conv2)
        .assert()
        .success();
    // 16 filters x 6 input channels of 5x5 at 4x.
    check_png(&conv2, Some((6 * 22 + 2, 16 * 22 + 2)));

    let digit = tmp.path().join("digit.png");
    write_digit_png(&digit);
    let maps = tmp.path().join("maps");
    let out = stdout_of(
        ganglion()
            .args(["visualize", "activations", "--weights"])
            .arg(&weights)
            .arg(&digit)
            .arg("--out-dir")
            .arg(&maps),
    );
    assert!(out.contains("prediction:"), "{out}");
    check_png(&maps.join("00-input.png"), Some((56 + 4, 56 + 4)));
    // 6 maps of 28x28 at 2x in a 3x2 grid.
    check_png(&maps.join("01-conv1.png"), Some((3 * 58 + 2, 2 * 58 + 2)));
    // 16 maps of 5x5 at 12x in a 4x4 grid.
    check_png(&maps.join("06-pool2.png"), Some((4 * 62 + 2, 4 * 62 + 2)));
    let written = std::fs::read_dir(&maps).unwrap().count();
    assert_eq!(written, 7, "input + six rank-4 layers");
}
