//! End-to-end tests of `ganglion train`, `eval` and `predict` (their errors on bad input are
//! in misuse.rs).

use assert_cmd::Command;
use std::path::{Path, PathBuf};

fn ganglion() -> Command {
    Command::cargo_bin("ganglion").expect("the ganglion binary is built")
}

fn mnist_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist")
}

/// A short lenet5 run on 1024 images; returns the run directory.
fn quick_run(dir: &Path) -> PathBuf {
    let out = dir.join("run");
    ganglion()
        .args([
            "train",
            "--epochs",
            "2",
            "--train-limit",
            "1024",
            "--test-limit",
            "500",
        ])
        .args(["--no-progress", "--threads", "2", "--out"])
        .arg(&out)
        .arg("--data")
        .arg(mnist_dir())
        .assert()
        .success();
    out
}

#[test]
fn train_writes_the_run_directory_and_eval_reads_it() {
    let tmp = tempfile::tempdir().unwrap();
    let run = quick_run(tmp.path());
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["args"]["model"], "lenet5");
    assert_eq!(config["parameters"], 61_706);
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = metrics
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    for key in [
        "epoch",
        "train_loss",
        "train_accuracy",
        "test_loss",
        "test_accuracy",
        "images_per_sec",
        "seconds",
    ] {
        assert!(lines[1].get(key).is_some(), "metrics.jsonl lacks {key}");
    }
    let test_accuracy = lines[1]["test_accuracy"].as_f64().unwrap();
    assert!(
        test_accuracy > 0.6,
        "2 epochs on 1024 images: {test_accuracy}"
    );
    // No temporary files left behind.
    for entry in std::fs::read_dir(&run).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.starts_with('.'), "left over: {name}");
    }

    let out = ganglion()
        .args(["eval", "--json", "--test-limit", "500", "--weights"])
        .arg(run.join("model.safetensors"))
        .arg("--data")
        .arg(mnist_dir())
        .output()
        .unwrap();
    assert!(out.status.success());
    let eval: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // The same weights on the same 500 images give the accuracy training reported.
    assert!((eval["accuracy"].as_f64().unwrap() - test_accuracy).abs() < 1e-9);
    assert_eq!(eval["images"], 500);
}

fn write_digit_png(path: &Path) {
    // A bright vertical stroke on black, like an MNIST "1".
    let img = image::GrayImage::from_fn(28, 28, |x, y| {
        image::Luma([if (12..16).contains(&x) && (4..24).contains(&y) {
            255
        } else {
            0
        }])
    });
    img.save(path).unwrap();
}

#[test]
fn predict_prints_the_top_five_classes() {
    let tmp = tempfile::tempdir().unwrap();
    let run = quick_run(tmp.path());
    let png = tmp.path().join("one.png");
    write_digit_png(&png);
    let out = ganglion()
        .arg("predict")
        .arg("--weights")
        .arg(run.join("model.safetensors"))
        .arg(&png)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<&str> = text
        .lines()
        .filter(|l| l.trim_end().ends_with('%'))
        .collect();
    assert_eq!(rows.len(), 5, "{text}");
    let total: f64 = rows
        .iter()
        .map(|r| {
            r.trim()
                .trim_end_matches('%')
                .rsplit(' ')
                .next()
                .unwrap()
                .parse::<f64>()
                .unwrap()
        })
        .sum();
    assert!(total <= 100.01 && total > 0.0, "{text}");
}
