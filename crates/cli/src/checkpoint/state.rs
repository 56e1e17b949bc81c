//! The checkpoint's `state.json` and the types it is made of: file sums, saved tallies, and
//! the position a run starts from.

use crate::trainer::Tally;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Size and SHA-256 of a file of the checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSum {
    /// Length in bytes.
    pub bytes: u64,
    /// Lowercase hexadecimal SHA-256.
    pub sha256: String,
}

impl FileSum {
    pub(super) fn of(bytes: &[u8]) -> Self {
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
