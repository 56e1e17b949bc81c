//! Reading and writing checkpoint directories: the atomic write and swap, the load with its
//! fallback to the previous checkpoint, and the size and digest checks.

use super::state::{FileSum, Start, State};
use super::{CHECKPOINT, FORMAT, MODEL, OPTIMIZER, PREVIOUS, STATE, TEMP_PREFIX};
use crate::trainer::Tally;
use anyhow::{Context, Result, bail};
use ganglion::models::{self, ModelMeta, Module};
use ganglion::optim::{Optimizer, OptimizerState};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

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
                "{}: the checkpoint is at epoch {}, batch {}, step {}, which a run of {epochs} epochs of {steps_per_epoch} steps never reaches (did the data change?)",
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
    Ok(models::sorted_header(safetensors::serialize(
        views,
        Some(meta),
    )?))
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
