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
//! renames) a complete `checkpoint.old/`, which [`load`](store::load) falls back to. Every
//! file is checked against its recorded size and digest on load, so damage is refused with a
//! message rather than resumed from.

pub mod resume;
pub mod saver;
pub mod state;
pub mod store;

// Only what the rest of the crate names is re-exported; the other public items are reached
// through their modules (`checkpoint::store::load`, ...).
pub use resume::prepare_resume;
pub use saver::Saver;
pub use state::Start;

/// The checkpoint directory inside a run directory.
pub const CHECKPOINT: &str = "checkpoint";
/// The previous checkpoint, present only while a new one is being swapped in.
pub const PREVIOUS: &str = "checkpoint.old";
const TEMP_PREFIX: &str = "checkpoint.tmp-";
const STATE: &str = "state.json";
const MODEL: &str = "model.safetensors";
const OPTIMIZER: &str = "optimizer.safetensors";
const FORMAT: u32 = 1;
