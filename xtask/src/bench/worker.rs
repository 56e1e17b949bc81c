//! Worker processes: this binary re-executed as `xtask bench --worker KIND ...`, so that a
//! measurement starts in a fresh process (its own heap, page placement and peak RSS) and
//! reports back one JSON object per line on stdout.

use anyhow::{Context, Result, bail};
use std::process::{Command, Stdio};

/// The kinds of worker `--worker` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One round of the training-step cells.
    Train,
    /// A training run whose peak RSS is read at its end.
    Memory,
}

impl Kind {
    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Train => "train",
            Kind::Memory => "memory",
        }
    }

    /// Parses a `--worker` value.
    ///
    /// # Errors
    /// For a name that is not a worker kind.
    pub fn parse(name: &str) -> Result<Kind> {
        match name {
            "train" => Ok(Kind::Train),
            "memory" => Ok(Kind::Memory),
            other => bail!("bench: unknown worker `{other}`"),
        }
    }
}

/// Runs `xtask bench --worker KIND ARGS..` to completion, its stderr shown as it comes, and
/// returns the JSON lines of its stdout.
///
/// # Errors
/// When the binary cannot be found or started, or the worker fails.
pub fn spawn(kind: &str, args: &[String]) -> Result<Vec<String>> {
    let exe = std::env::current_exe().context("bench: cannot locate the xtask binary")?;
    let output = Command::new(&exe)
        .arg("bench")
        .arg("--worker")
        .arg(kind)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("bench: cannot start {}", exe.display()))?;
    if !output.status.success() {
        bail!(
            "bench: the {kind} worker failed ({}); its errors are above",
            output.status
        );
    }
    let stdout = String::from_utf8(output.stdout).context("bench: worker output is not UTF-8")?;
    Ok(json_lines(&stdout))
}

/// The lines of `text` that hold a JSON object.
fn json_lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| l.starts_with('{'))
        .map(String::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_and_only_json_lines_are_kept() {
        for kind in [Kind::Train, Kind::Memory] {
            assert_eq!(Kind::parse(kind.name()).unwrap(), kind);
        }
        assert!(Kind::parse("conv").is_err());
        let lines = json_lines("note\n{\"a\":1}\n  {\"b\":2}  \n\n");
        assert_eq!(lines, ["{\"a\":1}", "{\"b\":2}"]);
    }
}
