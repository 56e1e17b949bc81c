//! `ganglion selftest` end to end: the bundled cases, and directories of cases it has never seen
//! (perturbed, hand-made, unknown op, garbage, missing tensor, out-of-range target, missing
//! directory).

use assert_cmd::Command;
use ganglion_oracle::{Case, bundled_dir, load_case};
use safetensors::{Dtype, tensor::TensorView};
use std::collections::HashMap;
use std::path::Path;

fn selftest() -> Command {
    let mut cmd = assert_cmd::cargo::cargo_bin_cmd!("ganglion");
    cmd.arg("selftest");
    cmd
}

fn stdout_of(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    (out.status.success(), stdout, stderr)
}

/// The report line of case `name`.
fn line_of<'a>(stdout: &'a str, name: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("no line for {name} in:\n{stdout}"))
}

/// Writes a case file: `op` and `params` as metadata, tensors as `F32`.
fn write_case(
    path: &Path,
    op: &str,
    params: &[(&str, &str)],
    tensors: &[(&str, &[usize], &[f32])],
) {
    let mut metadata: HashMap<String, String> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    metadata.insert("op".to_string(), op.to_string());
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(name, shape, data)| {
            let raw = data.iter().flat_map(|v| v.to_le_bytes()).collect();
            (name.to_string(), shape.to_vec(), raw)
        })
        .collect();
    let views = bytes.iter().map(|(name, shape, raw)| {
        (
            name.clone(),
            TensorView::new(Dtype::F32, shape.clone(), raw).unwrap(),
        )
    });
    let file = safetensors::serialize(views, Some(metadata)).unwrap();
    std::fs::write(path, file).unwrap();
}

/// Rewrites a loaded case, with `edit` applied to its tensors first.
fn rewrite(case: &Case, path: &Path, edit: impl FnOnce(&mut Vec<(String, Vec<usize>, Vec<f32>)>)) {
    let mut tensors: Vec<(String, Vec<usize>, Vec<f32>)> = case
        .tensors
        .iter()
        .map(|(n, t)| (n.clone(), t.shape().to_vec(), t.data().to_vec()))
        .collect();
    edit(&mut tensors);
    let params: Vec<(&str, &str)> = case
        .params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let refs: Vec<(&str, &[usize], &[f32])> = tensors
        .iter()
        .map(|(n, s, d)| (n.as_str(), s.as_slice(), d.as_slice()))
        .collect();
    write_case(path, &case.op, &params, &refs);
}

fn bundled(name: &str) -> Case {
    load_case(&bundled_dir().join(format!("{name}.safetensors"))).unwrap()
}

fn bundled_conv() -> Case {
    bundled("conv2d_000")
}

/// The data of tensor `name` among rewritten tensors.
fn data_of<'a>(tensors: &'a mut [(String, Vec<usize>, Vec<f32>)], name: &str) -> &'a mut Vec<f32> {
    &mut tensors.iter_mut().find(|(n, _, _)| n == name).unwrap().2
}

#[test]
fn every_bundled_case_passes() {
    // From a directory without tests/fixtures, the compiled-in bundled path is used.
    let cwd = tempfile::tempdir().unwrap();
    let (ok, stdout, stderr) = stdout_of(selftest().current_dir(cwd.path()));
    assert!(ok, "{stdout}\n{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("cpu: "), "{stdout}");
    assert_eq!(lines[lines.len() - 1], "200 passed, 0 failed");
    assert!(!stdout.contains("skipped"), "{stdout}");
    for (prefix, op) in [
        ("conv2d_", "conv2d"),
        ("pool_", "pool2d"),
        ("linear_", "linear"),
        ("cross_entropy_", "cross_entropy"),
        ("batchnorm2d_", "batchnorm2d_train"),
    ] {
        let cases: Vec<&&str> = lines.iter().filter(|l| l.starts_with(prefix)).collect();
        assert_eq!(cases.len(), 40, "{prefix}");
        assert!(
            cases.iter().all(|l| l.contains(op) && l.ends_with(" pass")),
            "{prefix}"
        );
    }
    assert!(line_of(&stdout, "pool_000").contains("max_pool2d"));
}

#[test]
fn a_perturbed_output_fails_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let case = bundled_conv();
    std::fs::copy(
        bundled_dir().join("conv2d_000.safetensors"),
        dir.path().join("conv2d_000.safetensors"),
    )
    .unwrap();
    rewrite(
        &case,
        &dir.path().join("conv2d_bad.safetensors"),
        |tensors| {
            let output = tensors.iter_mut().find(|(n, _, _)| n == "output").unwrap();
            output.2[3] += 0.5;
        },
    );
    let (ok, stdout, _) = stdout_of(selftest().arg("--vectors").arg(dir.path()));
    assert!(!ok, "{stdout}");
    assert!(
        line_of(&stdout, "conv2d_000").ends_with(" pass"),
        "{stdout}"
    );
    let bad = line_of(&stdout, "conv2d_bad");
    assert!(
        bad.contains("FAIL") && bad.contains("output") && bad.contains("5.00e-1"),
        "{bad}"
    );
    assert!(stdout.ends_with("1 passed, 1 failed\n"), "{stdout}");
}

#[test]
fn a_perturbed_running_variance_fails_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let case = bundled("batchnorm2d_000");
    rewrite(
        &case,
        &dir.path().join("batchnorm2d_000.safetensors"),
        |_| {},
    );
    rewrite(
        &case,
        &dir.path().join("batchnorm2d_bad.safetensors"),
        |tensors| data_of(tensors, "new_running_var")[1] += 0.25,
    );
    let (ok, stdout, _) = stdout_of(selftest().arg("--vectors").arg(dir.path()));
    assert!(!ok, "{stdout}");
    assert!(
        line_of(&stdout, "batchnorm2d_000").ends_with(" pass"),
        "{stdout}"
    );
    let bad = line_of(&stdout, "batchnorm2d_bad");
    assert!(
        bad.contains("FAIL") && bad.contains("new_running_var") && bad.contains("2.50e-1"),
        "{bad}"
    );
    // Only the running variance is off; the other results still match.
    assert!(
        !bad.contains("new_running_mean") && !bad.contains("grad_"),
        "{bad}"
    );
    assert!(stdout.ends_with("1 passed, 1 failed\n"), "{stdout}");
}

#[test]
fn cross_entropy_targets_must_be_class_indices() {
    let dir = tempfile::tempdir().unwrap();
    let case = bundled("cross_entropy_000");
    let classes = case.tensor("logits").unwrap().shape()[1];
    rewrite(&case, &dir.path().join("ce_range.safetensors"), |tensors| {
        data_of(tensors, "target")[2] = classes as f32;
    });
    rewrite(
        &case,
        &dir.path().join("ce_fraction.safetensors"),
        |tensors| {
            data_of(tensors, "target")[0] = 1.5;
        },
    );
    rewrite(&case, &dir.path().join("ce_count.safetensors"), |tensors| {
        let target = tensors.iter_mut().find(|(n, _, _)| n == "target").unwrap();
        target.2.pop();
        target.1 = vec![target.2.len()];
    });
    let (ok, stdout, _) = stdout_of(selftest().arg("--vectors").arg(dir.path()));
    assert!(!ok, "{stdout}");
    let range = line_of(&stdout, "ce_range");
    assert!(
        range.contains("FAIL")
            && range.contains(&format!(
                "at batch index 2 is out of range for {classes} classes"
            )),
        "{range}"
    );
    let fraction = line_of(&stdout, "ce_fraction");
    assert!(
        fraction.contains("FAIL") && fraction.contains("1.5 at batch index 0 is not a class index"),
        "{fraction}"
    );
    let count = line_of(&stdout, "ce_count");
    assert!(
        count.contains("FAIL") && count.contains("`target`"),
        "{count}"
    );
    assert!(stdout.ends_with("0 passed, 3 failed\n"), "{stdout}");
}

#[test]
fn new_shapes_and_unknown_ops_are_handled() {
    let dir = tempfile::tempdir().unwrap();
    // A 2x2 all-ones kernel over a 3x3 ramp, worked by hand: each output is a window sum, each
    // input gradient counts the windows covering the pixel, each weight gradient sums the
    // pixels that tap saw.
    let ramp: Vec<f32> = (0..9).map(|v| v as f32).collect();
    write_case(
        &dir.path().join("conv2d_by_hand.safetensors"),
        "conv2d",
        &[
            ("stride", "[1, 1]"),
            ("padding", "[0, 0]"),
            ("dilation", "[1, 1]"),
            ("groups", "1"),
        ],
        &[
            ("input", &[1, 1, 3, 3], &ramp),
            ("weight", &[1, 1, 2, 2], &[1.0; 4]),
            ("output", &[1, 1, 2, 2], &[8.0, 12.0, 20.0, 24.0]),
            ("grad_output", &[1, 1, 2, 2], &[1.0; 4]),
            (
                "grad_input",
                &[1, 1, 3, 3],
                &[1.0, 2.0, 1.0, 2.0, 4.0, 2.0, 1.0, 2.0, 1.0],
            ),
            ("grad_weight", &[1, 1, 2, 2], &[8.0, 12.0, 20.0, 24.0]),
        ],
    );
    // y = x W^T + b for x = [1, 2]; with L = sum(y * go): dx = W^T go, dW = go x^T, db = go.
    write_case(
        &dir.path().join("linear_by_hand.safetensors"),
        "linear",
        &[],
        &[
            ("input", &[1, 2], &[1.0, 2.0]),
            ("weight", &[3, 2], &[1.0, 0.0, 0.0, 1.0, 1.0, 1.0]),
            ("bias", &[3], &[0.5, -1.0, 0.0]),
            ("output", &[1, 3], &[1.5, 1.0, 3.0]),
            ("grad_output", &[1, 3], &[1.0, 2.0, 3.0]),
            ("grad_input", &[1, 2], &[4.0, 5.0]),
            ("grad_weight", &[3, 2], &[1.0, 2.0, 2.0, 4.0, 3.0, 6.0]),
            ("grad_bias", &[3], &[1.0, 2.0, 3.0]),
        ],
    );
    write_case(
        &dir.path().join("mystery_000.safetensors"),
        "frobnicate",
        &[],
        &[("input", &[2], &[1.0, 2.0])],
    );
    let (ok, stdout, stderr) = stdout_of(selftest().arg("--vectors").arg(dir.path()));
    assert!(ok, "{stdout}\n{stderr}");
    for name in ["conv2d_by_hand", "linear_by_hand"] {
        assert!(line_of(&stdout, name).ends_with(" pass"), "{stdout}");
    }
    let mystery = line_of(&stdout, "mystery_000");
    assert!(
        mystery.contains("skipped") && mystery.contains("frobnicate"),
        "{mystery}"
    );
    assert!(
        stdout.ends_with("1 skipped (ops not implemented: frobnicate)\n2 passed, 0 failed\n"),
        "{stdout}"
    );
}

#[test]
fn garbage_files_and_missing_tensors_fail_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("garbage.safetensors"),
        b"\x10\0\0\0\0\0\0\0not a header",
    )
    .unwrap();
    rewrite(
        &bundled_conv(),
        &dir.path().join("conv2d_short.safetensors"),
        |tensors| {
            tensors.retain(|(n, _, _)| n != "grad_weight");
        },
    );
    rewrite(
        &bundled_conv(),
        &dir.path().join("conv2d_wrong.safetensors"),
        |tensors| {
            let go = tensors
                .iter_mut()
                .find(|(n, _, _)| n == "grad_output")
                .unwrap();
            go.1 = vec![go.2.len()];
        },
    );
    let (ok, stdout, _) = stdout_of(selftest().arg("--vectors").arg(dir.path()));
    assert!(!ok, "{stdout}");
    let garbage = line_of(&stdout, "garbage");
    assert!(
        garbage.contains("FAIL") && garbage.contains("not a valid safetensors"),
        "{garbage}"
    );
    let short = line_of(&stdout, "conv2d_short");
    assert!(
        short.contains("FAIL") && short.contains("missing tensor `grad_weight`"),
        "{short}"
    );
    let wrong = line_of(&stdout, "conv2d_wrong");
    assert!(
        wrong.contains("FAIL") && wrong.contains("grad_output"),
        "{wrong}"
    );
    assert!(stdout.ends_with("0 passed, 3 failed\n"), "{stdout}");
}

#[test]
fn a_missing_directory_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dir");
    let (ok, stdout, stderr) = stdout_of(selftest().arg("--vectors").arg(&missing));
    assert!(!ok);
    assert!(!stdout.contains("passed"), "{stdout}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(&missing.display().to_string()), "{stderr}");
}
