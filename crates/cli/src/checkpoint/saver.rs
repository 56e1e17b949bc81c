//! Writing checkpoints during a run: [`Saver`] decides when, and notes where the last good one
//! is when training fails.

use super::state::State;
use super::store::{Loaded, write};
use super::{CHECKPOINT, FORMAT, PREVIOUS, TEMP_PREFIX};
use crate::faults::{self, At, Fault, Origin};
use crate::train::TrainArgs;
use crate::trainer::StepPoint;
use anyhow::{Context, Result};
use ganglion::models::{ModelMeta, Module};
use ganglion::optim::Optimizer;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// Writes checkpoints during a run, every `every` steps.
#[derive(Debug)]
pub struct Saver {
    run: PathBuf,
    every: Option<u64>,
    argv: Vec<String>,
    cwd: PathBuf,
    data_dir: PathBuf,
    seed: u64,
    last: Cell<Option<u64>>,
}

impl Saver {
    /// A saver for run directory `run` of a run with `args`, whose data directory is
    /// `data_dir`. `resumed` is the checkpoint the run resumed from, if any (its command line
    /// is kept, so a resumed run's checkpoints resume the same way).
    ///
    /// # Errors
    /// When the data or current directory cannot be resolved.
    pub fn new(
        run: &Path,
        args: &TrainArgs,
        data_dir: &Path,
        resumed: Option<&Loaded>,
    ) -> Result<Self> {
        let (argv, cwd) = match resumed {
            Some(c) => (c.state.argv.clone(), c.state.cwd.clone()),
            None => (
                train_argv(),
                std::env::current_dir().context("cannot read the current directory")?,
            ),
        };
        if args.checkpoint_every.is_some() {
            remove_stale_checkpoint_dirs(run);
        }
        // Resuming from a complete `checkpoint/`, a `checkpoint.old/` beside it is the
        // previous one, left by a kill after the swap: no later write may come to remove it
        // (a run resumed after its last checkpoint step writes none).
        if resumed.is_some_and(|c| c.dir == run.join(CHECKPOINT)) {
            // Best effort: a leftover costs disk space, not correctness.
            let _ = fs::remove_dir_all(run.join(PREVIOUS));
        }
        // A run killed while writing its metrics or curves left their temporaries here.
        crate::atomic::remove_stale_temporaries(run);
        Ok(Self {
            run: run.to_path_buf(),
            every: args.checkpoint_every,
            argv,
            cwd,
            data_dir: fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf()),
            seed: args.seed,
            last: Cell::new(resumed.map(|c| c.state.step)),
        })
    }

    /// Called after every step: writes a checkpoint when the step count is a multiple of
    /// `--checkpoint-every`. `metrics` and `best_test_accuracy` describe the epochs finished.
    ///
    /// # Errors
    /// A [`Fault`] when the update left a weight non-finite (no checkpoint is written then);
    /// when writing fails.
    pub fn after_step(
        &self,
        at: &StepPoint,
        model: &dyn Module,
        meta: &ModelMeta,
        optimizer: &dyn Optimizer,
        metrics: &str,
        best_test_accuracy: f64,
    ) -> Result<()> {
        let Some(every) = self.every else {
            return Ok(());
        };
        if !at.step.is_multiple_of(every) {
            return Ok(());
        }
        if let Some((param, value)) = faults::non_finite_state(model) {
            return Err(Fault {
                at: At::Step {
                    step: at.step - 1,
                    epoch: at.epoch,
                    batch: at.batch - 1,
                    lr: optimizer.lr(),
                },
                what: format!("a weight became {}", faults::describe(value)),
                origin: Origin::Weight { param },
            }
            .into());
        }
        let state = State {
            format: FORMAT,
            version: env!("CARGO_PKG_VERSION").to_string(),
            epoch: at.epoch as usize,
            batch: at.batch,
            step: at.step,
            lr: optimizer.lr(),
            seed: self.seed,
            tally: at.tally.into(),
            metrics: metrics.to_string(),
            best_test_accuracy,
            argv: self.argv.clone(),
            cwd: self.cwd.clone(),
            data_dir: self.data_dir.clone(),
            files: BTreeMap::new(),
        };
        write(&self.run, state, model, meta, optimizer)
            .with_context(|| format!("checkpoint at step {}", at.step))?;
        self.last.set(Some(at.step));
        Ok(())
    }

    /// Adds to a training [`Fault`] where the last good checkpoint is; other errors pass.
    pub fn explain(&self, err: anyhow::Error) -> anyhow::Error {
        if err.downcast_ref::<Fault>().is_none() {
            return err;
        }
        let note = match self.last.get() {
            Some(step) => format!(
                "the last good checkpoint, {} (after step {step}), is intact",
                self.run.join(CHECKPOINT).display()
            ),
            None if self.every.is_some() => "no checkpoint had been written yet".to_string(),
            None => "no checkpoint was written (--checkpoint-every N writes them)".to_string(),
        };
        anyhow::anyhow!("{err}; {note}")
    }
}

/// The arguments after `train` on this process's command line.
fn train_argv() -> Vec<String> {
    let all: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    match all.iter().position(|a| a == "train") {
        Some(i) => all[i + 1..].to_vec(),
        None => Vec::new(),
    }
}

/// Removes `checkpoint.tmp-*` directories that killed runs left behind.
fn remove_stale_checkpoint_dirs(run: &Path) {
    let Ok(entries) = fs::read_dir(run) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
            // Best effort: a leftover costs disk space, not correctness.
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}
