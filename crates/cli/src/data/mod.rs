//! `ganglion data`: look at a data set before training on it: per-channel statistics for
//! normalisation (`stats`) and a picture of labelled samples, as the model sees them (`show`).

mod font;
mod show;
mod stats;

use crate::datasets::{self, DatasetKind, FolderArgs};
use anyhow::Result;
use clap::{Args, Subcommand};
use ganglion::data::TrainTest;
use std::path::PathBuf;
use std::process::ExitCode;

/// Inspect a data set: statistics and sample pictures.
#[derive(Debug, Args)]
pub struct DataArgs {
    #[command(subcommand)]
    command: DataCommand,
}

#[derive(Debug, Subcommand)]
enum DataCommand {
    /// Print the per-channel mean and standard deviation of the training split as JSON (for
    /// `ganglion train --normalize FILE`).
    Stats(stats::StatsArgs),
    /// Write a PNG grid of sample images with their labels (and, with --augment, the same
    /// images after training augmentation).
    Show(show::ShowArgs),
}

/// The data set a `data` subcommand reads.
#[derive(Debug, Args)]
struct Source {
    /// The data set's directory (IDX files, CIFAR-10 batches or an image folder).
    dir: PathBuf,
    /// Its format [default: found from the files in DIR].
    #[arg(long, value_enum)]
    dataset: Option<DatasetKind>,
    #[command(flatten)]
    folder: FolderArgs,
    /// Seed of the folder's validation split and of the sampling and augmentation.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

impl Source {
    /// The format and both splits.
    fn load(&self) -> Result<(DatasetKind, TrainTest)> {
        datasets::check_dir(&self.dir, "DIR")?;
        let kind = self
            .dataset
            .unwrap_or_else(|| DatasetKind::detect(&self.dir));
        let split = kind.load(&self.dir, &self.folder.options(self.seed)?)?;
        Ok((kind, split))
    }
}

/// Runs `ganglion data`.
pub fn run(args: &DataArgs) -> Result<ExitCode> {
    match &args.command {
        DataCommand::Stats(a) => stats::run(a),
        DataCommand::Show(a) => show::run(a),
    }
}
