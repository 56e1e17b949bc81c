//! Every misuse of the command line fails with a non-zero status and an error naming the
//! argument or file and the problem: one paragraph, never a panic.

use assert_cmd::Command;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn ganglion() -> Command {
    Command::cargo_bin("ganglion").expect("the ganglion binary is built")
}

fn mnist_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist")
}

/// A directory shared by the tests of this file: a one-step lenet5 run with a checkpoint
/// (`run/`), a digit PNG and a few files that are not what they claim to be.
fn fixture() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        ganglion()
            .args(["train", "--train-limit", "64", "--test-limit", "16"])
            .args(["--epochs", "1", "--checkpoint-every", "1", "--no-progress"])
            .args(["--threads", "2", "--data"])
            .arg(mnist_dir())
            .arg("--out")
            .arg(dir.path().join("run"))
            .assert()
            .success();
        let png = image::GrayImage::from_fn(28, 28, |x, _| image::Luma([(x * 9) as u8]));
        png.save(dir.path().join("digit.png")).unwrap();
        let bytes = std::fs::read(dir.path().join("digit.png")).unwrap();
        std::fs::write(dir.path().join("half.png"), &bytes[..bytes.len() / 2]).unwrap();
        std::fs::write(dir.path().join("notes.png"), "not an image").unwrap();
        std::fs::write(dir.path().join("empty.png"), "").unwrap();
        std::fs::write(dir.path().join("a-file"), "x").unwrap();
        std::fs::write(
            dir.path().join("text.safetensors"),
            "{\"not\": \"weights\"}",
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("empty-run")).unwrap();
        dir
    })
    .path()
}

/// Runs `args` (with `{}` replaced by the fixture directory) and checks the failure.
fn check(args: &[&str], want: &[&str]) {
    let dir = fixture().to_string_lossy().into_owned();
    let args: Vec<String> = args.iter().map(|a| a.replace("{}", &dir)).collect();
    let out = ganglion()
        .args(&args)
        .current_dir(fixture())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let code = out.status.code();
    assert!(
        code.is_some_and(|c| c != 0),
        "{args:?}: status {code:?}, stderr {err}"
    );
    assert!(err.starts_with("error:"), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    for w in want {
        assert!(err.contains(w), "{args:?}: wanted {w:?} in {err}");
    }
    // Errors of Ganglion itself (status 1) are one paragraph; argument-parser errors
    // (status 2) add a usage line.
    if code == Some(1) {
        assert!(!err.trim().contains("\n\n"), "{args:?}: {err}");
    }
}

#[test]
fn unknown_names_are_refused_with_the_choices() {
    check(
        &["train", "--model", "vgg99"],
        &["unknown model `vgg99`", "lenet5"],
    );
    check(
        &[
            "eval",
            "--weights",
            "{}/run/model.safetensors",
            "--model",
            "vgg99",
        ],
        &["vgg99"],
    );
    check(
        &[
            "predict",
            "--weights",
            "{}/run/model.safetensors",
            "--model",
            "vgg99",
            "digit.png",
        ],
        &["vgg99"],
    );
    check(&["train", "--dataset", "imagenet"], &["imagenet"]);
    check(&["train", "--optimizer", "lbfgs"], &["lbfgs"]);
    check(&["frobnicate"], &["frobnicate"]);
}

#[test]
fn zero_negative_and_non_finite_sizes_are_refused() {
    for (args, want) in [
        (&["train", "--epochs", "0"][..], "--epochs"),
        (&["train", "--epochs", "-3"], "-3"),
        (&["train", "--batch-size", "0"], "--batch-size"),
        (&["train", "--batch-size=-1"], "-1"),
        (&["train", "--lr=-1"], "--lr"),
        (&["train", "--lr=0"], "--lr"),
        (&["train", "--lr=nan"], "--lr"),
        (&["train", "--lr=inf"], "--lr"),
        (&["train", "--weight-decay=-1"], "--weight-decay"),
        (&["train", "--label-smoothing", "1"], "--label-smoothing"),
        (&["train", "--threads", "0"], "--threads"),
        (&["train", "--train-limit", "0"], "--train-limit"),
        (&["train", "--test-limit", "0"], "--test-limit"),
        (&["train", "--checkpoint-every", "0"], "--checkpoint-every"),
        (&["train", "--data-workers", "0"], "--data-workers"),
        (&["train", "--epochs", "many"], "many"),
        (
            &[
                "eval",
                "--weights",
                "{}/run/model.safetensors",
                "--batch-size",
                "0",
            ],
            "--batch-size",
        ),
        (
            &[
                "eval",
                "--weights",
                "{}/run/model.safetensors",
                "--test-limit",
                "0",
            ],
            "--test-limit",
        ),
        (
            &[
                "eval",
                "--weights",
                "{}/run/model.safetensors",
                "--threads",
                "0",
            ],
            "--threads",
        ),
        (
            &[
                "predict",
                "--weights",
                "{}/run/model.safetensors",
                "--top",
                "0",
                "digit.png",
            ],
            "--top",
        ),
    ] {
        check(args, &[want]);
    }
}

#[test]
fn unreadable_and_misplaced_paths_are_named() {
    check(
        &["train", "--data", "/nonexistent/mnist"],
        &["/nonexistent/mnist"],
    );
    check(&["train", "--data", "{}/a-file"], &["a-file", "is a file"]);
    check(
        &["train", "--data", "{}/empty-run"],
        &["train-images-idx3-ubyte", "t10k-labels-idx1-ubyte"],
    );
    check(
        &["eval", "--weights", "/nonexistent/model.safetensors"],
        &["/nonexistent/model.safetensors"],
    );
    check(&["eval", "--weights", "{}/run"], &["is a directory"]);
    check(
        &["eval", "--weights", "{}/text.safetensors"],
        &["text.safetensors"],
    );
    check(
        &[
            "eval",
            "--weights",
            "{}/run/model.safetensors",
            "--data",
            "/nonexistent/d",
        ],
        &["/nonexistent/d"],
    );
    check(
        &[
            "predict",
            "--weights",
            "{}/run/model.safetensors",
            "missing.png",
        ],
        &["missing.png"],
    );
    check(
        &["predict", "--weights", "{}/run/model.safetensors", "{}"],
        &[&fixture().display().to_string()],
    );
    check(
        &["train", "--resume", "/nonexistent/run"],
        &["--resume", "/nonexistent/run"],
    );
    check(
        &["train", "--resume", "{}/empty-run"],
        &["no checkpoint", "--checkpoint-every"],
    );
}

#[test]
fn an_output_directory_that_is_a_file_is_refused() {
    let mnist = mnist_dir().to_string_lossy().into_owned();
    check(
        &[
            "train",
            "--train-limit",
            "64",
            "--data",
            &mnist,
            "--out",
            "{}/a-file",
        ],
        &["a-file", "is a file"],
    );
    check(
        &[
            "train",
            "--train-limit",
            "64",
            "--data",
            &mnist,
            "--out",
            "{}/a-file/run",
        ],
        &["a-file/run"],
    );
}

#[test]
fn non_images_and_foreign_weights_are_refused() {
    let weights = "{}/run/model.safetensors";
    for file in ["notes.png", "empty.png", "half.png"] {
        check(&["predict", "--weights", weights, file], &[file]);
    }
    // lenet5 weights read as mnistnet: the mismatching tensors are named.
    for cmd in ["eval", "predict"] {
        let mut args = vec![cmd, "--model", "mnistnet", "--weights", weights];
        if cmd == "predict" {
            args.push("digit.png");
        }
        check(&args, &["conv1.weight", "fc3.weight"]);
    }
    // A run's checkpoint resumed with arguments that change the result.
    check(
        &["train", "--resume", "{}/run", "--lr", "0.5"],
        &["--lr 0.5", "0.003"],
    );
    check(
        &["train", "--resume", "{}/run", "--model", "mnistnet"],
        &["--model"],
    );
}

#[test]
fn truncated_data_files_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad");
    std::fs::create_dir(&bad).unwrap();
    for f in std::fs::read_dir(mnist_dir()).unwrap() {
        let f = f.unwrap().path();
        if f.extension().is_some_and(|e| e == "gz") {
            std::fs::copy(&f, bad.join(f.file_name().unwrap())).unwrap();
        }
    }
    let images = bad.join("train-images-idx3-ubyte.gz");
    let bytes = std::fs::read(&images).unwrap();
    std::fs::write(&images, &bytes[..bytes.len() / 2]).unwrap();
    let bad = bad.to_string_lossy().into_owned();
    let out = tmp.path().join("r").to_string_lossy().into_owned();
    check(
        &["train", "--no-progress", "--data", &bad, "--out", &out],
        &["train-images-idx3-ubyte.gz"],
    );
}

/// A reader that goes away (`ganglion summary | head -0`) ends the command quietly with
/// success, as Unix tools do, instead of a panic about a broken pipe.
#[test]
fn a_closed_standard_output_ends_quietly() {
    for args in [
        &["summary", "--model", "resnet20"][..],
        &["selftest", "--help"][..],
    ] {
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("ganglion"))
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("ganglion starts");
        // Close the reading end before the command writes anything.
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("ganglion ends");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && !stderr.contains("panicked"),
            "{args:?}: {:?}, stderr: {stderr}",
            out.status
        );
    }
}
