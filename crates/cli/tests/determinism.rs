//! The same seed gives bit-identical weights and metrics, whatever the thread count or the
//! number of data-loading workers.

use assert_cmd::Command;
use ganglion::models;
use std::path::{Path, PathBuf};

fn train(out: &Path, threads: &str, seed: &str, workers: &str) {
    let mnist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist");
    Command::cargo_bin("ganglion")
        .unwrap()
        .args([
            "train",
            "--model",
            "mnistnet",
            "--epochs",
            "2",
            "--batch-size",
            "32",
        ])
        .args([
            "--train-limit",
            "256",
            "--test-limit",
            "128",
            "--no-progress",
        ])
        .args(["--augment", "--data-workers", workers])
        .args(["--threads", threads, "--seed", seed, "--out"])
        .arg(out)
        .arg("--data")
        .arg(&mnist)
        .assert()
        .success();
}

/// Every state tensor of the run's model, by name, as raw bits.
fn weights(run: &Path) -> Vec<(String, Vec<u32>)> {
    let (model, _) = models::load(run.join("model.safetensors"), None).unwrap();
    let mut out: Vec<(String, Vec<u32>)> = model
        .named_parameters()
        .into_iter()
        .chain(model.named_buffers())
        .map(|(name, p)| (name, p.value().data().iter().map(|v| v.to_bits()).collect()))
        .collect();
    out.sort();
    out
}

/// metrics.jsonl without the timing fields.
fn metrics(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            let obj = v.as_object_mut().unwrap();
            obj.remove("images_per_sec");
            obj.remove("seconds");
            v
        })
        .collect()
}

#[test]
fn same_seed_same_bits_at_one_two_and_eight_threads() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |name: &str, threads: &str, seed: &str, workers: &str| -> PathBuf {
        let dir = tmp.path().join(name);
        train(&dir, threads, seed, workers);
        dir
    };
    let a = run("a", "2", "7", "1");
    let b = run("b", "2", "7", "1");
    let c = run("c", "1", "7", "1");
    let d = run("d", "2", "8", "1");
    let e = run("e", "2", "7", "3");
    // More threads than this machine's cores: a larger machine's splits.
    let f = run("f", "8", "7", "1");
    assert_eq!(weights(&a), weights(&b), "two runs with one seed differ");
    assert_eq!(metrics(&a), metrics(&b));
    assert_eq!(
        weights(&a),
        weights(&c),
        "--threads 1 and --threads 2 differ"
    );
    assert_eq!(metrics(&a), metrics(&c));
    assert_eq!(
        weights(&a),
        weights(&f),
        "--threads 2 and --threads 8 differ"
    );
    assert_eq!(metrics(&a), metrics(&f));
    // The files themselves, header included.
    let file = |run: &Path| std::fs::read(run.join("model.safetensors")).unwrap();
    assert!(file(&a) == file(&b) && file(&a) == file(&c) && file(&a) == file(&f));
    assert_eq!(
        weights(&a),
        weights(&e),
        "--data-workers 1 and --data-workers 3 differ"
    );
    assert_eq!(metrics(&a), metrics(&e));
    assert_ne!(
        weights(&a),
        weights(&d),
        "another seed gave the same weights"
    );
}
