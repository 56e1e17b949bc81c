//! The `ganglion` command: one subcommand per module, each `run(args) -> Result<ExitCode>`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod atomic;
mod datasets;
mod eval;
mod predict;
mod selftest;
mod threads;
mod train;
mod trainer;
mod weights;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Convolutional neural networks on the CPU.
#[derive(Debug, Parser)]
#[command(name = "ganglion", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands; each variant's arguments are parsed by its module.
#[derive(Debug, Subcommand)]
enum Command {
    /// Train a CNN (default: lenet5 on the bundled MNIST) and write a run directory.
    Train(train::TrainArgs),
    /// Evaluate saved weights on a data set's test split.
    Eval(eval::EvalArgs),
    /// Classify image files with saved weights.
    Predict(predict::PredictArgs),
    /// Check the kernels on this CPU against the PyTorch reference vectors.
    Selftest(selftest::SelftestArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Train(args) => train::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Predict(args) => predict::run(args),
        Command::Selftest(args) => selftest::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
