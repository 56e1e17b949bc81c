//! `ganglion train --resume DIR`: rebuilding the original arguments from a checkpoint and
//! checking the ones given now against them.

use super::STATE;
use super::store::{Loaded, load};
use crate::train::TrainArgs;
use anyhow::{Context, Result, bail};
use clap::Parser;
use std::fs;
use std::path::Path;

/// Parses a `train` command line.
#[derive(Debug, Parser)]
#[command(name = "train")]
struct Replay {
    #[command(flatten)]
    args: TrainArgs,
}

/// Arguments a resumed run may change: they do not affect the numbers (results do not depend
/// on the thread count) or are where the run is.
const FREE: &[&str] = &[
    "threads",
    "no_progress",
    "checkpoint_every",
    "resume",
    "out",
    "data",
];

/// A run to resume: the saved arguments and the checkpoint.
#[derive(Debug)]
pub struct Resume {
    /// The arguments of the original run, with `out`, `data` and `resume` resolved and the
    /// free ones (`--threads`, `--no-progress`, `--checkpoint-every`) as given now.
    pub args: TrainArgs,
    /// The checkpoint.
    pub checkpoint: Loaded,
}

/// Prepares `ganglion train --resume DIR`: reads the checkpoint, rebuilds the original
/// arguments from it and checks `given` against them. An argument given now must equal the
/// saved one, except those that do not change the numbers (`--threads`, `--no-progress`,
/// `--checkpoint-every`); arguments left at their defaults take the saved values. The process
/// moves to the directory the run was started in, so relative paths of the original command
/// line keep their meaning.
///
/// # Errors
/// When DIR has no intact checkpoint, or an argument conflicts with the saved ones (all
/// conflicts are listed).
pub fn prepare_resume(given: &TrainArgs) -> Result<Option<Resume>> {
    let Some(dir) = &given.resume else {
        return Ok(None);
    };
    if !dir.is_dir() {
        bail!("--resume {}: not a run directory", dir.display());
    }
    let run = fs::canonicalize(dir).with_context(|| format!("--resume {}", dir.display()))?;
    let checkpoint = load(&run).with_context(|| format!("--resume {}", dir.display()))?;
    let state = &checkpoint.state;
    let argv = std::iter::once("train".to_string()).chain(state.argv.iter().cloned());
    let saved = Replay::try_parse_from(argv)
        .with_context(|| {
            format!(
                "{}: the saved command line `{}` no longer parses",
                checkpoint.dir.join(STATE).display(),
                state.argv.join(" ")
            )
        })?
        .args;
    let defaults = Replay::try_parse_from(["train"])?.args;

    let given_value = serde_json::to_value(given)?;
    let saved_value = serde_json::to_value(&saved)?;
    let default_value = serde_json::to_value(&defaults)?;
    let mut conflicts = Vec::new();
    if let Some(fields) = given_value.as_object() {
        for (key, value) in fields {
            if FREE.contains(&key.as_str()) {
                continue;
            }
            let (was, default) = (saved_value.get(key), default_value.get(key));
            if Some(value) != default && Some(value) != was {
                conflicts.push(format!(
                    "--{} {value} (the checkpoint's run has {})",
                    key.replace('_', "-"),
                    was.map_or("nothing".to_string(), ToString::to_string)
                ));
            }
        }
    }
    let same_dir = |p: &Path, want: &Path| fs::canonicalize(p).is_ok_and(|p| p == want);
    if let Some(data) = &given.data
        && !same_dir(data, &state.data_dir)
    {
        conflicts.push(format!(
            "--data {} (the checkpoint's run read {})",
            data.display(),
            state.data_dir.display()
        ));
    }
    if let Some(out) = &given.out
        && !same_dir(out, &run)
    {
        conflicts.push(format!(
            "--out {} (a resumed run writes to its own directory, {})",
            out.display(),
            run.display()
        ));
    }
    if !conflicts.is_empty() {
        bail!(
            "--resume {}: these arguments differ from the checkpoint's run: {}; leave them out \
             to resume with the saved ones (only --threads, --no-progress and \
             --checkpoint-every may change)",
            dir.display(),
            conflicts.join(", ")
        );
    }

    let mut args = saved;
    args.out = Some(run.clone());
    args.data = Some(state.data_dir.clone());
    args.resume = Some(run);
    args.threads = given.threads.or(args.threads);
    args.no_progress = given.no_progress;
    args.checkpoint_every = given.checkpoint_every.or(args.checkpoint_every);
    if state.cwd.is_dir() {
        std::env::set_current_dir(&state.cwd)
            .with_context(|| format!("cannot enter {}", state.cwd.display()))?;
    }
    Ok(Some(Resume { args, checkpoint }))
}
