//! `ganglion selftest`: runs PyTorch reference cases through this CPU's kernels and reports each
//! case's largest error against the oracle tolerance.
//!
//! The ops it can run are listed in one table, [`RUNNERS`]; a case whose op has no runner is
//! reported as skipped, never as passed. Convolution and pooling cases call the kernels
//! directly; `linear`, `cross_entropy` and `batchnorm2d_train` run through an autograd
//! [`Graph`], which is how training uses them: the forward value and running statistics are
//! read off the tape, and the gradients are those of `L = sum(output * grad_output)` (for
//! cross-entropy, of the loss itself).
//!
//! Every runner checks the shapes of the tensors it reads and of the references it will compare
//! against before anything runs, so a malformed case fails with a reason naming the tensor.

mod graph;
mod kernels;

use anyhow::{Context, Result, bail, ensure};
use clap::Args;
use ganglion::autograd::Graph;
use ganglion::conv::ConvWorkspace;
use ganglion::tensor::Tensor;
use ganglion_oracle::{Case, Check, check, load_case};
use graph::{run_batchnorm2d_train, run_cross_entropy, run_linear};
use kernels::{run_avg_exclude_pad_pool2d, run_avg_pool2d, run_conv2d, run_max_pool2d};
use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Arguments of `ganglion selftest`.
#[derive(Debug, Args)]
pub struct SelftestArgs {
    /// Directory of reference cases, one `.safetensors` file each [default: the bundled copy,
    /// `tests/fixtures/oracle`]
    #[arg(long, value_name = "DIR")]
    pub vectors: Option<PathBuf>,
}

/// What one case came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Every compared tensor is within tolerance; the largest absolute error over all of them.
    Passed(f32),
    /// A tensor is out of tolerance (`max_abs_err` is then the largest error), or the case could
    /// not be run (`max_abs_err` is `None`).
    Failed {
        /// The largest absolute error, when the kernels ran.
        max_abs_err: Option<f32>,
        /// Which tensors are off, or why the case could not be run.
        reason: String,
    },
    /// The case's op has no runner yet.
    Skipped(String),
}

/// Scratch memory reused across cases.
#[derive(Default)]
pub struct Workspaces {
    conv: ConvWorkspace,
    /// The tape for the ops checked through autograd; reset per case so its buffers are reused.
    graph: Graph,
}

/// One computed tensor compared with its reference.
struct Compared {
    tensor: &'static str,
    check: Check,
}

/// Runs one case's op and compares every result the case holds a reference for.
type Runner = fn(&Case, &mut Workspaces) -> Result<Vec<Compared>>;

/// The op dispatch: every op selftest can check, by the `op` value in a case's metadata.
const RUNNERS: &[(&str, Runner)] = &[
    ("conv2d", run_conv2d),
    ("max_pool2d", run_max_pool2d),
    ("avg_pool2d", run_avg_pool2d),
    ("avg_exclude_pad_pool2d", run_avg_exclude_pad_pool2d),
    ("linear", run_linear),
    ("cross_entropy", run_cross_entropy),
    ("batchnorm2d_train", run_batchnorm2d_train),
];

/// Runs `ganglion selftest`: one line per case, then the skipped ops and `N passed, M failed`.
///
/// # Errors
/// When the case directory cannot be read or holds no `.safetensors` file. A case that cannot
/// be read or run is a failed case, not an error.
pub fn run(args: &SelftestArgs) -> Result<ExitCode> {
    let dir = args.vectors.clone().unwrap_or_else(default_dir);
    let files = case_files(&dir)?;
    outln!("cpu: {}, isa: {}", cpu_model(), ganglion::conv::isa_name());
    outln!("vectors: {} ({} files)", dir.display(), files.len());

    let (mut passed, mut failed) = (0usize, 0usize);
    let mut skipped_ops = BTreeSet::new();
    let mut skipped = 0usize;
    let mut workspaces = Workspaces::default();
    for file in &files {
        let name = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (op, outcome) = match load_case(file) {
            Ok(case) => (case.op.clone(), run_case(&case, &mut workspaces)),
            Err(e) => (
                "?".to_string(),
                Outcome::Failed {
                    max_abs_err: None,
                    reason: e.to_string(),
                },
            ),
        };
        outln!("{}", case_line(&name, &op, &outcome));
        match outcome {
            Outcome::Passed(_) => passed += 1,
            Outcome::Failed { .. } => failed += 1,
            Outcome::Skipped(_) => {
                skipped += 1;
                skipped_ops.insert(op);
            }
        }
    }
    if skipped > 0 {
        let ops: Vec<&str> = skipped_ops.iter().map(String::as_str).collect();
        outln!(
            "{skipped} skipped (ops not implemented: {})",
            ops.join(", ")
        );
    }
    outln!("{passed} passed, {failed} failed");
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The bundled cases: `tests/fixtures/oracle` under the current directory when run from the
/// repository, else the copy this binary was built next to.
fn default_dir() -> PathBuf {
    let local = Path::new("tests/fixtures/oracle");
    if local.is_dir() {
        local.to_path_buf()
    } else {
        ganglion_oracle::bundled_dir()
    }
}

/// The `.safetensors` files of `dir`, sorted by name.
fn case_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let context = || format!("selftest: cannot read {}", dir.display());
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(context)? {
        let path = entry.with_context(context)?.path();
        if path.extension().is_some_and(|e| e == "safetensors") {
            files.push(path);
        }
    }
    if files.is_empty() {
        bail!("selftest: no .safetensors files in {}", dir.display());
    }
    files.sort();
    Ok(files)
}

/// One report line: name, op, largest error, verdict.
fn case_line(name: &str, op: &str, outcome: &Outcome) -> String {
    let err = |e: Option<f32>| e.map_or_else(|| "-".to_string(), |e| format!("{e:.2e}"));
    let (max_abs_err, verdict) = match outcome {
        Outcome::Passed(e) => (err(Some(*e)), "pass".to_string()),
        Outcome::Failed {
            max_abs_err,
            reason,
        } => (err(*max_abs_err), format!("FAIL: {reason}")),
        Outcome::Skipped(reason) => (err(None), format!("skipped: {reason}")),
    };
    format!("{name:<24} {op:<24} {max_abs_err:>9}  {verdict}")
}

/// Runs one case through the fast kernels and judges every tensor it computes.
pub fn run_case(case: &Case, workspaces: &mut Workspaces) -> Outcome {
    let failed = |reason: String| Outcome::Failed {
        max_abs_err: None,
        reason,
    };
    if case.op.is_empty() {
        return failed("no `op` in the file's metadata".to_string());
    }
    let Some((_, runner)) = RUNNERS.iter().find(|(op, _)| *op == case.op) else {
        return Outcome::Skipped(format!("op `{}` not implemented", case.op));
    };
    // Shapes are checked before any kernel runs, so a panic is a kernel bug: report it as this
    // case's failure and go on with the others.
    match catch_unwind(AssertUnwindSafe(|| runner(case, workspaces))) {
        Ok(Ok(compared)) => verdict(&compared),
        Ok(Err(e)) => failed(format!("{e:#}")),
        Err(panic) => {
            *workspaces = Workspaces::default();
            let message = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("no message");
            failed(format!("kernel panicked: {message}"))
        }
    }
}

fn verdict(compared: &[Compared]) -> Outcome {
    let max_abs_err = compared
        .iter()
        .fold(0.0f32, |m, c| m.max(c.check.max_abs_err));
    let off: Vec<String> = compared
        .iter()
        .filter(|c| !c.check.passed())
        .map(|c| {
            format!(
                "{} max abs error {:.2e} > tolerance {:.2e}",
                c.tensor, c.check.max_abs_err, c.check.tolerance
            )
        })
        .collect();
    if compared.is_empty() {
        Outcome::Failed {
            max_abs_err: None,
            reason: "nothing to compare".to_string(),
        }
    } else if off.is_empty() {
        Outcome::Passed(max_abs_err)
    } else {
        Outcome::Failed {
            max_abs_err: Some(max_abs_err),
            reason: off.join("; "),
        }
    }
}

/// `got` against the case's reference tensor `name`, which must have shape `dims`.
fn compare(case: &Case, name: &'static str, got: &[f32], dims: &[usize]) -> Result<Compared> {
    let want = case.tensor(name)?;
    ensure!(
        want.shape() == dims,
        "reference `{name}` has shape {:?} but {} gives {dims:?}",
        want.shape(),
        case.op
    );
    Ok(Compared {
        tensor: name,
        check: check(got, want.data()),
    })
}

/// The case's tensor `name`, which must have shape `dims` before a kernel may read it.
fn input_of<'a>(case: &'a Case, name: &str, dims: &[usize]) -> Result<&'a Tensor> {
    let tensor = case.tensor(name)?;
    ensure!(
        tensor.shape() == dims,
        "`{name}` has shape {:?} but {} expects {dims:?}",
        tensor.shape(),
        case.op
    );
    Ok(tensor)
}

fn dims4(case: &Case, name: &str) -> Result<[usize; 4]> {
    let tensor = case.tensor(name)?;
    tensor
        .dims4()
        .with_context(|| format!("`{name}` of {}", case.op))
}

fn dims2(case: &Case, name: &str) -> Result<[usize; 2]> {
    let tensor = case.tensor(name)?;
    tensor
        .dims2()
        .with_context(|| format!("`{name}` of {}", case.op))
}

/// The results an op computes, by reference tensor name, with the shape each must have.
type Results<'a> = [(&'static str, &'a [usize])];

/// Checks that every reference in `results` is present with the shape the op will produce,
/// before the op runs.
fn check_references(case: &Case, results: &Results) -> Result<()> {
    for (name, dims) in results {
        input_of(case, name, dims)?;
    }
    Ok(())
}

/// Compares computed tensors with the references of `results`, given in the same order.
fn compare_all(case: &Case, results: &Results, got: &[&[f32]]) -> Result<Vec<Compared>> {
    ensure!(
        results.len() == got.len(),
        "{}: result count mismatch",
        case.op
    );
    results
        .iter()
        .zip(got)
        .map(|((name, dims), got)| compare(case, name, got, dims))
        .collect()
}

/// An output buffer that shows any element a kernel fails to write.
fn unwritten(len: usize) -> Vec<f32> {
    vec![f32::NAN; len]
}

/// The CPU model (`model name` of `/proc/cpuinfo`), or `unknown` where there is none.
fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines().find_map(|line| {
                let (key, value) = line.split_once(':')?;
                (key.trim() == "model name").then(|| value.trim().to_string())
            })
        })
        .unwrap_or_else(|| "unknown".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compared(tensor: &'static str, max_abs_err: f32) -> Compared {
        Compared {
            tensor,
            check: Check {
                max_abs_err,
                tolerance: 1e-4,
            },
        }
    }

    #[test]
    fn the_verdict_takes_the_largest_error_and_names_what_is_off() {
        let ok = verdict(&[compared("output", 1e-6), compared("grad_input", 3e-5)]);
        assert_eq!(ok, Outcome::Passed(3e-5));
        let off = verdict(&[compared("output", 1e-6), compared("grad_weight", 0.5)]);
        let Outcome::Failed {
            max_abs_err,
            reason,
        } = off
        else {
            panic!("expected a failure, got {off:?}");
        };
        assert_eq!(max_abs_err, Some(0.5));
        assert!(
            reason.contains("grad_weight") && !reason.contains("output"),
            "{reason}"
        );
        assert!(matches!(verdict(&[]), Outcome::Failed { .. }));
    }

    #[test]
    fn unknown_and_missing_ops_are_skipped_or_failed() {
        let mut case = Case {
            name: "x".to_string(),
            op: "frobnicate".to_string(),
            params: Default::default(),
            tensors: Default::default(),
        };
        let mut ws = Workspaces::default();
        assert!(matches!(run_case(&case, &mut ws), Outcome::Skipped(_)));
        case.op.clear();
        assert!(matches!(run_case(&case, &mut ws), Outcome::Failed { .. }));
        case.op = "conv2d".to_string();
        let Outcome::Failed { reason, .. } = run_case(&case, &mut ws) else {
            panic!("a conv2d case without parameters must fail");
        };
        assert!(reason.contains("stride"), "{reason}");
    }
}
