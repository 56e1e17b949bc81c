//! Training checkpoints: `ganglion train --checkpoint-every N` writes `RUN/checkpoint/`, and
//! `ganglion train --resume RUN` continues from it to the same bits an uninterrupted run gives.
//!
//! A checkpoint is a directory of three files:
//! * `model.safetensors`: the model's parameters, buffers and counters (as `model.safetensors`
//!   of a run, so `eval` and `predict` read it too);
//! * `optimizer.safetensors`: the optimizer's buffers as `F32` tensors, its kind, step count,
//!   learning rate and per-parameter step counts in the metadata;
//! * `state.json`: the position (epoch, batch of the epoch, global step, which is also the
//!   learning-rate schedule's position), the seed (every random stream derives from the seed
//!   and the position: shuffles and augmentation from the epoch, dropout from the step), the
//!   tallies of the epoch so far, the metrics records so far, the command line, and the size
//!   and SHA-256 of the two other files.
//!
//! Writing is atomic at the directory level: the files go to `checkpoint.tmp-<pid>/`, each
//! synced, then the directory is synced; the current `checkpoint/` is renamed to
//! `checkpoint.old/`, the new one renamed to `checkpoint/`, and the old one removed. A process
//! killed at any instant therefore leaves a complete `checkpoint/`, or (between the two
//! renames) a complete `checkpoint.old/`, which [`load`] falls back to. Every file is checked
//! against its recorded size and digest on load, so damage is refused with a message rather
//! than resumed from.

use crate::faults::{self, At, Fault, Origin};
use crate::train::TrainArgs;
use crate::trainer::{StepPoint, Tally};
use anyhow::{Context, Result, bail};
use clap::Parser;
use ganglion::models::{self, ModelMeta, Module};
use ganglion::optim::{Optimizer, OptimizerState};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The checkpoint directory inside a run directory.
pub const CHECKPOINT: &str = "checkpoint";
/// The previous checkpoint, present only while a new one is being swapped in.
pub const PREVIOUS: &str = "checkpoint.old";
const TEMP_PREFIX: &str = "checkpoint.tmp-";
const STATE: &str = "state.json";
const MODEL: &str = "model.safetensors";
const OPTIMIZER: &str = "optimizer.safetensors";
const FORMAT: u32 = 1;

/// Size and SHA-256 of a file of the checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSum {
    /// Length in bytes.
    pub bytes: u64,
    /// Lowercase hexadecimal SHA-256.
    pub sha256: String,
}

impl FileSum {
    fn of(bytes: &[u8]) -> Self {
        let digest = Sha256::digest(bytes);
        Self {
            bytes: bytes.len() as u64,
            sha256: digest.iter().map(|b| format!("{b:02x}")).collect(),
        }
    }
}

/// The epoch's tallies, the loss sum kept as its bit pattern so it reloads exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedTally {
    /// `f64::to_bits` of the loss sum.
    pub loss_sum_bits: u64,
    /// Images classified correctly.
    pub correct: usize,
    /// Images seen.
    pub images: usize,
}

impl From<Tally> for SavedTally {
    fn from(t: Tally) -> Self {
        Self {
            loss_sum_bits: t.loss_sum.to_bits(),
            correct: t.correct,
            images: t.images,
        }
    }
}

impl From<SavedTally> for Tally {
    fn from(t: SavedTally) -> Self {
        Self {
            loss_sum: f64::from_bits(t.loss_sum_bits),
            correct: t.correct,
            images: t.images,
        }
    }
}

/// `state.json`: where training stands and how to rebuild the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// Layout version of the checkpoint.
    pub format: u32,
    /// The version of Ganglion that wrote it.
    pub version: String,
    /// The epoch in progress (0-based).
    pub epoch: usize,
    /// Batches of that epoch done.
    pub batch: usize,
    /// Steps done since the start: the learning-rate schedule's position.
    pub step: u64,
    /// The learning rate of the last step.
    pub lr: f32,
    /// The run's seed; shuffles and augmentation derive from it and the epoch, dropout from it
    /// and the step.
    pub seed: u64,
    /// The epoch's tallies so far.
    pub tally: SavedTally,
    /// `metrics.jsonl` of the epochs finished.
    pub metrics: String,
    /// The best test accuracy of the epochs finished.
    pub best_test_accuracy: f64,
    /// The `train` arguments as typed.
    pub argv: Vec<String>,
    /// The directory the run was started in (relative paths in `argv` are relative to it).
    pub cwd: PathBuf,
    /// The data directory, resolved.
    pub data_dir: PathBuf,
    /// Size and digest of the other files, by name.
    pub files: BTreeMap<String, FileSum>,
}

/// A checkpoint read back and verified.
#[derive(Debug)]
pub struct Loaded {
    /// The directory it was read from (`checkpoint/` or `checkpoint.old/`).
    pub dir: PathBuf,
    /// Its `state.json`.
    pub state: State,
    model: Vec<u8>,
    optimizer: OptimizerState,
}

impl Loaded {
    /// Loads the saved model state into `model` and optimizer state into `optimizer`.
    ///
    /// # Errors
    /// When the model or optimizer does not match the checkpoint's (another architecture or
    /// optimizer), naming the mismatch.
    pub fn restore(&self, model: &dyn Module, optimizer: &mut dyn Optimizer) -> Result<()> {
        let path = self.dir.join(MODEL);
        models::load_from_bytes(model, &self.model, &path)
            .with_context(|| format!("{}: cannot restore the model", path.display()))?;
        optimizer
            .load_state(self.optimizer.clone())
            .with_context(|| {
                format!(
                    "{}: cannot restore the optimizer",
                    self.dir.join(OPTIMIZER).display()
                )
            })?;
        Ok(())
    }

    /// The tallies of the epoch in progress.
    pub fn tally(&self) -> Tally {
        self.state.tally.into()
    }

    /// Where a run of `epochs` epochs of `steps_per_epoch` steps resumes.
    ///
    /// # Errors
    /// When the checkpoint's position does not fit that run (the data changed since).
    pub fn start(&self, epochs: usize, steps_per_epoch: u64) -> Result<Start> {
        let s = &self.state;
        let consistent = s.epoch < epochs
            && s.batch as u64 <= steps_per_epoch
            && s.epoch as u64 * steps_per_epoch + s.batch as u64 == s.step;
        if !consistent {
            bail!(
                "{}: the checkpoint is at epoch {}, batch {}, step {}, which a run of {epochs}                  epochs of {steps_per_epoch} steps never reaches (did the data change?)",
                self.dir.display(),
                s.epoch + 1,
                s.batch,
                s.step
            );
        }
        Ok(Start {
            epoch: s.epoch,
            batch: s.batch,
            tally: self.tally(),
            metrics: s.metrics.clone(),
            best_test_accuracy: s.best_test_accuracy,
        })
    }
}

/// Where the training loop starts: the beginning, or a checkpoint's position.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Start {
    /// The first epoch to train (0-based).
    pub epoch: usize,
    /// Batches of that epoch already done.
    pub batch: usize,
    /// Their tallies.
    pub tally: Tally,
    /// `metrics.jsonl` of the epochs before.
    pub metrics: String,
    /// The best test accuracy of the epochs before.
    pub best_test_accuracy: f64,
}

/// Reads the checkpoint of run directory `run`: `checkpoint/`, or `checkpoint.old/` when a
/// write was interrupted between its two renames (or `checkpoint/` is damaged).
///
/// # Errors
/// When neither holds a complete, intact checkpoint; the message says what is wrong with each.
pub fn load(run: &Path) -> Result<Loaded> {
    let current = run.join(CHECKPOINT);
    let previous = run.join(PREVIOUS);
    let first = if current.exists() {
        match load_dir(&current) {
            Ok(c) => return Ok(c),
            Err(e) => Some(e),
        }
    } else {
        None
    };
    if previous.exists() {
        return match (load_dir(&previous), first) {
            (Ok(c), None) => Ok(c),
            (Ok(c), Some(e)) => {
                eprintln!("warning: {e:#}; resuming from the previous checkpoint instead");
                Ok(c)
            }
            (Err(old), Some(e)) => Err(e.context(format!("and {old:#}"))),
            (Err(old), None) => Err(old),
        };
    }
    match first {
        Some(e) => Err(e),
        None => bail!(
            "{}: no checkpoint there (train with --checkpoint-every N to write one)",
            current.display()
        ),
    }
}

fn load_dir(dir: &Path) -> Result<Loaded> {
    let state_path = dir.join(STATE);
    let text =
        fs::read(&state_path).with_context(|| format!("{}: cannot read", state_path.display()))?;
    let state: State = serde_json::from_slice(&text).with_context(|| {
        format!(
            "{}: not a complete checkpoint state (torn or damaged)",
            state_path.display()
        )
    })?;
    if state.format != FORMAT {
        bail!(
            "{}: checkpoint format {} is not the {FORMAT} this version reads",
            state_path.display(),
            state.format
        );
    }
    let read = |name: &str| -> Result<Vec<u8>> {
        let path = dir.join(name);
        let want = state
            .files
            .get(name)
            .with_context(|| format!("{}: does not list {name}", state_path.display()))?;
        let bytes = fs::read(&path).with_context(|| format!("{}: cannot read", path.display()))?;
        let got = FileSum::of(&bytes);
        if &got != want {
            bail!(
                "{}: damaged checkpoint file: {} bytes with SHA-256 {}, but the checkpoint \
                 recorded {} bytes with SHA-256 {}",
                path.display(),
                got.bytes,
                got.sha256,
                want.bytes,
                want.sha256
            );
        }
        Ok(bytes)
    };
    let model = read(MODEL)?;
    let optimizer_bytes = read(OPTIMIZER)?;
    let optimizer = parse_optimizer(&optimizer_bytes, &dir.join(OPTIMIZER))?;
    Ok(Loaded {
        dir: dir.to_path_buf(),
        state,
        model,
        optimizer,
    })
}

fn optimizer_bytes(state: &OptimizerState) -> Result<Vec<u8>> {
    let raw: Vec<(&str, Vec<u8>)> = state
        .buffers
        .iter()
        .map(|(name, v)| {
            (
                name.as_str(),
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            )
        })
        .collect();
    let mut views = Vec::with_capacity(raw.len());
    for (name, bytes) in &raw {
        views.push((
            *name,
            TensorView::new(Dtype::F32, vec![bytes.len() / 4], bytes)?,
        ));
    }
    let meta = HashMap::from([
        ("kind".to_string(), state.kind.clone()),
        ("step".to_string(), state.step.to_string()),
        ("lr_bits".to_string(), state.lr.to_bits().to_string()),
        (
            "param_steps".to_string(),
            serde_json::to_string(&state.param_steps)?,
        ),
    ]);
    Ok(safetensors::serialize(views, Some(meta))?)
}

fn parse_optimizer(bytes: &[u8], path: &Path) -> Result<OptimizerState> {
    let bad = |what: String| anyhow::anyhow!("{}: {what}", path.display());
    let file = SafeTensors::deserialize(bytes)
        .map_err(|e| bad(format!("not a valid optimizer state: {e}")))?;
    let (_, header) = SafeTensors::read_metadata(bytes)
        .map_err(|e| bad(format!("not a valid optimizer state: {e}")))?;
    let meta = header
        .metadata()
        .as_ref()
        .ok_or_else(|| bad("no optimizer metadata".into()))?;
    let field = |key: &str| {
        meta.get(key)
            .ok_or_else(|| bad(format!("metadata lacks `{key}`")))
    };
    let number = |key: &str| -> Result<u64> {
        field(key)?
            .parse()
            .map_err(|e| bad(format!("metadata `{key}` is not a number: {e}")))
    };
    let lr_bits = u32::try_from(number("lr_bits")?)
        .map_err(|_| bad("metadata `lr_bits` is out of range".into()))?;
    let param_steps: Vec<u64> = serde_json::from_str(field("param_steps")?)
        .map_err(|e| bad(format!("metadata `param_steps`: {e}")))?;
    let mut buffers = BTreeMap::new();
    for (name, view) in file.tensors() {
        if view.dtype() != Dtype::F32 || view.shape().len() != 1 {
            return Err(bad(format!(
                "buffer `{name}` is {:?} {:?}, expected a 1-D F32 tensor",
                view.dtype(),
                view.shape()
            )));
        }
        let values = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        buffers.insert(name, values);
    }
    Ok(OptimizerState {
        kind: field("kind")?.clone(),
        step: number("step")?,
        lr: f32::from_bits(lr_bits),
        param_steps,
        buffers,
    })
}

/// Writes `bytes` to a new file at `path` and syncs it to disk.
fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file =
        File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Syncs a directory, so the renames in it are on disk.
fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync the directory {}", dir.display()))
}

/// Writes a checkpoint of `model` and `optimizer` with `state` (whose `files` it fills) into
/// run directory `run`, atomically as the module documentation describes.
///
/// # Errors
/// When a file cannot be written or renamed; the previous checkpoint is then left in place.
pub fn write(
    run: &Path,
    mut state: State,
    model: &dyn Module,
    meta: &ModelMeta,
    optimizer: &dyn Optimizer,
) -> Result<()> {
    let model_bytes = models::to_bytes(model, meta)?;
    let optimizer_bytes = optimizer_bytes(&optimizer.state())?;
    state.files = BTreeMap::from([
        (MODEL.to_string(), FileSum::of(&model_bytes)),
        (OPTIMIZER.to_string(), FileSum::of(&optimizer_bytes)),
    ]);
    let state_bytes = serde_json::to_vec_pretty(&state)?;

    let temp = run.join(format!("{TEMP_PREFIX}{}", std::process::id()));
    if temp.exists() {
        fs::remove_dir_all(&temp)
            .with_context(|| format!("cannot remove the stale {}", temp.display()))?;
    }
    fs::create_dir(&temp).with_context(|| format!("cannot create {}", temp.display()))?;
    let filled = (|| -> Result<()> {
        write_synced(&temp.join(MODEL), &model_bytes)?;
        write_synced(&temp.join(OPTIMIZER), &optimizer_bytes)?;
        write_synced(&temp.join(STATE), &state_bytes)?;
        sync_dir(&temp)
    })();
    if let Err(e) = filled {
        let _ = fs::remove_dir_all(&temp);
        return Err(e);
    }

    let current = run.join(CHECKPOINT);
    let previous = run.join(PREVIOUS);
    if current.exists() {
        // A `checkpoint.old` beside a complete `checkpoint` is left from an interrupted swap.
        if previous.exists() {
            fs::remove_dir_all(&previous)
                .with_context(|| format!("cannot remove {}", previous.display()))?;
        }
        fs::rename(&current, &previous).with_context(|| {
            format!(
                "cannot move {} to {}",
                current.display(),
                previous.display()
            )
        })?;
    }
    fs::rename(&temp, &current)
        .with_context(|| format!("cannot move {} to {}", temp.display(), current.display()))?;
    sync_dir(run)?;
    if previous.exists() {
        fs::remove_dir_all(&previous)
            .with_context(|| format!("cannot remove {}", previous.display()))?;
    }
    Ok(())
}

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
            remove_stale_temporaries(run);
        }
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
fn remove_stale_temporaries(run: &Path) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use ganglion::models::lenet5;
    use ganglion::optim::{Adam, AdamConfig};
    use ganglion::tensor::Rng;

    fn state() -> State {
        State {
            format: FORMAT,
            version: "0".into(),
            epoch: 1,
            batch: 3,
            step: 19,
            lr: 0.01,
            seed: 5,
            tally: Tally {
                loss_sum: 0.1 + 0.2,
                correct: 7,
                images: 9,
            }
            .into(),
            metrics: "{\"epoch\":1}\n".into(),
            best_test_accuracy: 0.5,
            argv: vec!["--epochs".into(), "2".into()],
            cwd: PathBuf::from("/"),
            data_dir: PathBuf::from("/data"),
            files: BTreeMap::new(),
        }
    }

    /// A model and an Adam optimizer that has taken one step, so it has buffers.
    fn trained() -> (Box<dyn Module>, Box<dyn Optimizer>) {
        let model: Box<dyn Module> = Box::new(lenet5(&mut Rng::seed_from(3)));
        let mut opt = Adam::new(model.parameters(), AdamConfig::default()).unwrap();
        for (i, p) in model.parameters().iter().enumerate() {
            p.write().grad.data_mut().fill(0.01 * (i + 1) as f32);
        }
        opt.step();
        (model, Box::new(opt))
    }

    #[test]
    fn round_trip_restores_model_optimizer_and_state_exactly() {
        let tmp = tempfile::tempdir().unwrap();
        let (model, opt) = trained();
        write(
            tmp.path(),
            state(),
            model.as_ref(),
            &ModelMeta::default(),
            opt.as_ref(),
        )
        .unwrap();
        let names: Vec<String> = fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, [CHECKPOINT], "no temporaries or old copies left");

        let loaded = load(tmp.path()).unwrap();
        let mut want = state();
        want.files = loaded.state.files.clone();
        assert_eq!(loaded.state, want);
        assert_eq!(loaded.tally().loss_sum.to_bits(), (0.1f64 + 0.2).to_bits());

        let fresh: Box<dyn Module> = Box::new(lenet5(&mut Rng::seed_from(99)));
        let mut fresh_opt = Adam::new(fresh.parameters(), AdamConfig::default()).unwrap();
        loaded.restore(fresh.as_ref(), &mut fresh_opt).unwrap();
        assert_eq!(fresh_opt.state(), opt.state());
        for ((_, a), (_, b)) in model
            .named_parameters()
            .iter()
            .zip(fresh.named_parameters())
        {
            assert_eq!(a.value(), b.value());
        }
    }

    #[test]
    fn a_second_write_replaces_the_first_and_an_interrupted_swap_falls_back() {
        let tmp = tempfile::tempdir().unwrap();
        let (model, opt) = trained();
        let meta = ModelMeta::default();
        write(tmp.path(), state(), model.as_ref(), &meta, opt.as_ref()).unwrap();
        let mut later = state();
        later.step = 40;
        write(tmp.path(), later, model.as_ref(), &meta, opt.as_ref()).unwrap();
        assert_eq!(load(tmp.path()).unwrap().state.step, 40);

        // Killed between the two renames: only `checkpoint.old` is there.
        fs::rename(tmp.path().join(CHECKPOINT), tmp.path().join(PREVIOUS)).unwrap();
        let loaded = load(tmp.path()).unwrap();
        assert_eq!(loaded.state.step, 40);
        assert!(loaded.dir.ends_with(PREVIOUS));
        // The next write cleans up.
        write(tmp.path(), state(), model.as_ref(), &meta, opt.as_ref()).unwrap();
        assert!(!tmp.path().join(PREVIOUS).exists());
        assert_eq!(load(tmp.path()).unwrap().state.step, 19);
    }

    #[test]
    fn damaged_files_are_refused_naming_them() {
        let tmp = tempfile::tempdir().unwrap();
        let (model, opt) = trained();
        write(
            tmp.path(),
            state(),
            model.as_ref(),
            &ModelMeta::default(),
            opt.as_ref(),
        )
        .unwrap();
        let dir = tmp.path().join(CHECKPOINT);

        let model_path = dir.join(MODEL);
        let mut bytes = fs::read(&model_path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(&model_path, &bytes).unwrap();
        let err = format!("{:#}", load(tmp.path()).unwrap_err());
        assert!(
            err.contains("model.safetensors") && err.contains("damaged"),
            "{err}"
        );

        let state_path = dir.join(STATE);
        let text = fs::read(&state_path).unwrap();
        fs::write(&state_path, &text[..text.len() / 2]).unwrap();
        let err = format!("{:#}", load(tmp.path()).unwrap_err());
        assert!(err.contains("state.json") && err.contains("torn"), "{err}");

        let err = format!("{:#}", load(&tmp.path().join("nowhere")).unwrap_err());
        assert!(err.contains("--checkpoint-every"), "{err}");
    }
}
