//! `ganglion data stats`: the per-channel mean and standard deviation of a data set's training
//! split, printed as the JSON that `ganglion train --normalize FILE` reads.

use super::Source;
use crate::atomic;
use anyhow::{Context, Result};
use clap::Args;
use ganglion::data::Normalize;
use std::path::PathBuf;
use std::process::ExitCode;

/// Per-channel statistics of the training split.
#[derive(Debug, Args)]
pub struct StatsArgs {
    #[command(flatten)]
    source: Source,
    /// Also write the JSON to this file.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Runs `ganglion data stats`.
pub fn run(args: &StatsArgs) -> Result<ExitCode> {
    let (kind, split) = args.source.load()?;
    let train = &split.train;
    let stats = Normalize::from_dataset(train)
        .with_context(|| format!("{}: cannot compute statistics", args.source.dir.display()))?;
    // The shortest decimals that read back to the same f32 (0.1307, not 0.13070000708103180).
    let short = |v: &[f32]| -> Vec<f64> {
        v.iter()
            .map(|x| x.to_string().parse().unwrap_or(f64::from(*x)))
            .collect()
    };
    let json = serde_json::json!({
        "mean": short(&stats.mean),
        "std": short(&stats.std),
        "channels": train.channels(),
        "image_shape": train.image_shape(),
        "images": train.len(),
        "dataset": kind,
        "dir": args.source.dir,
    });
    let text = serde_json::to_string_pretty(&json)? + "\n";
    out!("{text}");
    if let Some(path) = &args.out {
        atomic::write(path, text.as_bytes())?;
    }
    Ok(ExitCode::SUCCESS)
}
