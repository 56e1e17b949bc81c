//! Checkpoints: a run resumed from a checkpoint (after a clean stop or a SIGKILL at a random
//! moment) ends with the same bits as an uninterrupted run; a killed run never leaves a torn
//! checkpoint; a diverging run stops naming the step and the layer and keeps its checkpoint.

use ganglion::models;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn mnist() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist")
}

/// `ganglion train` on 2048 MNIST images for 3 epochs (192 steps) with `extra` arguments.
fn train_command(out: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ganglion"));
    cmd.args(["train", "--model", "lenet5", "--train-limit", "2048"])
        .args(["--test-limit", "128", "--batch-size", "32", "--epochs", "3"])
        .args(["--threads", "2", "--no-progress", "--seed", "11", "--data"])
        .arg(mnist())
        .arg("--out")
        .arg(out)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

fn succeed(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn fail(cmd: &mut Command) -> String {
    let out: Output = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "expected a failure");
    assert!(!err.contains("panicked"), "{err}");
    err
}

fn resume(dir: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ganglion"));
    cmd.args(["train", "--resume"])
        .arg(dir)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// Every parameter and buffer of the run's model, by name, as raw bits.
fn weights(file: &Path) -> Vec<(String, Vec<u32>)> {
    let (model, _) = models::load(file, None).unwrap();
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
fn metrics(run: &Path) -> Vec<Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            let obj = v.as_object_mut().unwrap();
            obj.remove("images_per_sec");
            obj.remove("seconds");
            v
        })
        .collect()
}

fn state(run: &Path) -> Value {
    let text = std::fs::read(run.join("checkpoint/state.json")).unwrap();
    serde_json::from_slice(&text).unwrap()
}

/// Names in `dir` that a finished run must not leave behind.
fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.') || n.starts_with("checkpoint."))
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

fn assert_same_run(reference: &Path, run: &Path, what: &str) {
    let model = |dir: &Path| dir.join("model.safetensors");
    assert!(
        weights(&model(reference)) == weights(&model(run)),
        "{what}: weights differ from the uninterrupted run"
    );
    // The header too: the same run saves the same file, byte for byte.
    assert!(
        std::fs::read(model(reference)).unwrap() == std::fs::read(model(run)).unwrap(),
        "{what}: the model file differs from the uninterrupted run's"
    );
    assert_eq!(metrics(reference), metrics(run), "{what}: metrics differ");
    assert!(leftovers(run).is_empty(), "{what}: {:?}", leftovers(run));
}

#[test]
fn resuming_after_a_clean_stop_gives_the_uninterrupted_bits() {
    let tmp = tempfile::tempdir().unwrap();
    let reference = tmp.path().join("reference");
    succeed(&mut train_command(&reference, &[]));
    assert!(!reference.join("checkpoint").exists());

    // The last checkpoint of a run every N steps is a clean stop at step 192 - 192 % N:
    // mid-epoch 3 (N = 50: step 150), mid-epoch 2 (N = 100: step 100, so the resumed run
    // also replays an epoch boundary and the saved metrics), and the end of the last epoch's
    // batches before its evaluation (N = 64: step 192).
    for (every, step) in [("50", 150), ("100", 100), ("64", 192)] {
        let full = tmp.path().join(format!("every-{every}"));
        succeed(&mut train_command(&full, &["--checkpoint-every", every]));
        assert_eq!(state(&full)["step"], step);
        // Every run checkpointing or not has the same bits.
        assert_same_run(&reference, &full, &format!("--checkpoint-every {every}"));

        // A fresh directory holding only the checkpoint, resumed with another thread count.
        let resumed = tmp.path().join(format!("resumed-{every}"));
        std::fs::create_dir(&resumed).unwrap();
        std::fs::rename(full.join("checkpoint"), resumed.join("checkpoint")).unwrap();
        // A kill after a swap and before the old checkpoint's removal leaves both; a run
        // resumed at its last step writes no checkpoint that would remove the old one.
        copy_dir(&resumed.join("checkpoint"), &resumed.join("checkpoint.old"));
        succeed(&mut resume(&resumed, &["--threads", "1", "--no-progress"]));
        assert_same_run(&reference, &resumed, &format!("resumed at step {step}"));
    }

    // Changing what the numbers depend on is refused, naming the argument.
    let run = tmp.path().join("resumed-50");
    for (flag, value) in [("--lr", "0.1"), ("--seed", "12"), ("--epochs", "4")] {
        let err = fail(&mut resume(&run, &[flag, value]));
        assert!(err.contains(flag) && err.contains("differ"), "{err}");
    }
}

#[test]
fn dropout_and_augmentation_resume_exactly() {
    // mnistnet has dropout (masks from the seed and the step) and --augment draws crops from
    // the seed, the epoch and the image: both must continue where they were.
    let tmp = tempfile::tempdir().unwrap();
    let args = |out: &Path, every: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ganglion"));
        cmd.args(["train", "--model", "mnistnet", "--train-limit", "256"])
            .args(["--test-limit", "64", "--batch-size", "32", "--epochs", "2"])
            .args([
                "--augment",
                "--optimizer",
                "sgd",
                "--nesterov",
                "--threads",
                "2",
            ])
            .args(["--no-progress", "--seed", "5", "--data"])
            .arg(mnist())
            .arg("--out")
            .arg(out)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(n) = every {
            cmd.args(["--checkpoint-every", n]);
        }
        cmd
    };
    let reference = tmp.path().join("reference");
    succeed(&mut args(&reference, None));
    let stopped = tmp.path().join("stopped");
    succeed(&mut args(&stopped, Some("11")));
    assert_eq!(state(&stopped)["step"], 11);
    std::fs::remove_file(stopped.join("model.safetensors")).unwrap();
    std::fs::remove_file(stopped.join("metrics.jsonl")).unwrap();
    succeed(&mut resume(&stopped, &[]));
    assert_same_run(&reference, &stopped, "mnistnet resumed at step 11");
}

/// A small deterministic generator for the kill times; the seed is printed so that a failure
/// can be replayed with `GANGLION_KILL_SEED`.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[test]
fn sigkill_at_random_moments_never_tears_the_checkpoint() {
    let seed = std::env::var("GANGLION_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    eprintln!("kill times from GANGLION_KILL_SEED={seed}");
    let mut rng = SplitMix(seed);
    let tmp = tempfile::tempdir().unwrap();
    // The reference writes checkpoints as the killed runs do (the bits are the same either
    // way), so its duration bounds the kill times to moments inside a run.
    let reference = tmp.path().join("reference");
    let start = Instant::now();
    succeed(&mut train_command(&reference, &["--checkpoint-every", "3"]));
    let window = start
        .elapsed()
        .mul_f64(0.9)
        .clamp(Duration::from_millis(400), Duration::from_secs(3));

    let mut mid_run = 0;
    for round in 0..5 {
        let run = tmp.path().join(format!("killed-{round}"));
        // A checkpoint every 3 steps: most of the run is spent writing them, so most kills
        // land inside a write.
        let mut child = train_command(&run, &["--checkpoint-every", "3"])
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Between 0.3 s and the window's end (at most 3 s). The first round instead kills as
        // soon as the first checkpoint is on disk, so at least one kill lands mid-run however
        // fast or loaded the machine is.
        let span = window.as_millis() as u64 - 300;
        let first_checkpoint = round == 0;
        let delay = if first_checkpoint {
            Duration::from_secs(30)
        } else {
            Duration::from_millis(300 + rng.next() % span)
        };
        let start = Instant::now();
        let mut finished = false;
        while start.elapsed() < delay {
            if child.try_wait().unwrap().is_some() {
                finished = true;
                break;
            }
            if first_checkpoint && run.join("checkpoint").join("state.json").exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(if first_checkpoint { 1 } else { 5 }));
        }
        child.kill().unwrap(); // SIGKILL on Unix.
        child.wait().unwrap();
        eprintln!(
            "round {round}: killed after {:?} (finished first: {finished})",
            start.elapsed()
        );

        if !run.join("checkpoint").exists() && !run.join("checkpoint.old").exists() {
            // Killed before the first checkpoint: resuming says so.
            let err = fail(&mut resume(&run, &[]));
            assert!(err.contains("no checkpoint"), "{err}");
            continue;
        }
        // Whatever the moment, one complete checkpoint is there: its state parses, its model
        // loads, and its files have the sizes the state recorded.
        let dir = if run.join("checkpoint").exists() {
            run.join("checkpoint")
        } else {
            run.join("checkpoint.old")
        };
        let saved: Value =
            serde_json::from_slice(&std::fs::read(dir.join("state.json")).unwrap()).unwrap();
        for (name, sum) in saved["files"].as_object().unwrap() {
            let len = std::fs::metadata(dir.join(name)).unwrap().len();
            assert_eq!(Some(len), sum["bytes"].as_u64(), "round {round}: {name}");
        }
        models::load(dir.join("model.safetensors"), None).unwrap();
        let step = saved["step"].as_u64().unwrap();
        eprintln!(
            "round {round}: resuming from {} at step {step}",
            dir.display()
        );
        if step < 192 {
            mid_run += 1;
        }
        // A kill inside an atomic write of the metrics or curves leaves its temporary; plant
        // one so every round checks that the resumed run sweeps it away, whatever the moment.
        std::fs::write(run.join(".metrics.jsonl.tmp-4294967295"), b"torn").unwrap();
        // Resume (checkpointing on) to the end: the same bits as never killed.
        succeed(&mut resume(&run, &[]));
        assert_same_run(
            &reference,
            &run,
            &format!("round {round}, from step {step}"),
        );
    }
    assert!(
        mid_run > 0,
        "no kill landed after a checkpoint and before the end"
    );
}

#[test]
fn a_diverging_run_names_the_step_and_layer_and_keeps_its_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("diverged");
    let diverge = |run: &Path, model: &str, optimizer: &str, every: &str| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ganglion"));
        cmd.args(["train", "--model", model, "--train-limit", "256"])
            .args(["--test-limit", "64", "--batch-size", "32", "--epochs", "1"])
            .args([
                "--lr=1e30",
                "--schedule",
                "constant",
                "--optimizer",
                optimizer,
            ])
            .args([
                "--checkpoint-every",
                every,
                "--threads",
                "2",
                "--no-progress",
            ])
            .arg("--data")
            .arg(mnist())
            .arg("--out")
            .arg(run)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        cmd
    };
    // SGD at 1e30: step 0 is finite, its update makes the weights huge, and step 1 overflows.
    // Where depends on the order of the overflowing sums, so on the kernels' instruction set:
    // with the SIMD kernels the forward pass of the second convolution (the loss is NaN),
    // with the scalar ones the first linear layer's gradient. Either way the step, the
    // layer, the learning rate and the checkpoint are named.
    let err = fail(&mut diverge(&run, "lenet5", "sgd", "1"));
    for want in ["step 1 ", "1e30", "--lr", "after step 1"] {
        assert!(err.contains(want), "missing {want:?}: {err}");
    }
    let named = |at: &str| {
        (at.contains("the loss is NaN") && at.contains("`conv2` (Conv2d)"))
            || (at.contains("a gradient holds NaN") && at.contains("`fc1.weight` (layer `fc1`)"))
    };
    assert!(
        named(&err),
        "neither the loss nor a gradient named with its layer: {err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one paragraph: {err}");
    // The checkpoint written after step 0 is intact, and resuming from it meets the same
    // fault (so the CLI verified and loaded it).
    assert_eq!(state(&run)["step"], 1);
    assert!(leftovers(&run).is_empty(), "{:?}", leftovers(&run));
    models::load(run.join("checkpoint/model.safetensors"), None).unwrap();
    let again = fail(&mut resume(&run, &[]));
    assert!(again.contains("step 1 ") && named(&again), "{again}");

    // With Adam the first update is bounded, but the gradient overflows (with the scalar
    // kernels, the next forward pass first): the parameter or layer is named, and no
    // checkpoint had been written.
    let run = tmp.path().join("adam");
    let err = fail(&mut diverge(&run, "mnistnet", "adam", "1000"));
    assert!(named(&err), "{err}");
    assert!(err.contains("no checkpoint had been written yet"), "{err}");

    // One step at 3e38 leaves finite but enormous weights: the evaluation overflows and says
    // where, and no model file is written.
    let run = tmp.path().join("one-step");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ganglion"));
    cmd.args([
        "train",
        "--train-limit",
        "32",
        "--batch-size",
        "32",
        "--epochs",
        "1",
    ])
    .args([
        "--test-limit",
        "16",
        "--lr=3e38",
        "--optimizer",
        "sgd",
        "--momentum",
        "0",
    ])
    .args(["--schedule", "constant", "--no-progress", "--data"])
    .arg(mnist())
    .arg("--out")
    .arg(&run)
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    let err = fail(&mut cmd);
    assert!(
        err.contains("evaluation stopped at test batch 1") && err.contains("`conv2` (Conv2d)"),
        "{err}"
    );
    assert!(!run.join("model.safetensors").exists());
}
