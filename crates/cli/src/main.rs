//! The `ganglion` command: one subcommand per module, each `run(args) -> Result<ExitCode>`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[macro_use]
mod stdout;
mod atomic;
mod checkpoint;
mod data;
mod datasets;
mod eval;
mod faults;
mod field;
mod picture;
mod plot;
mod predict;
mod selftest;
mod summary;
mod threads;
mod train;
mod trainer;
mod visualize;
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
    /// Inspect a data set: per-channel statistics (`stats`), sample pictures (`show`).
    Data(data::DataArgs),
    /// Show a model layer by layer: shapes, parameters, MACs, receptive fields.
    Summary(summary::SummaryArgs),
    /// Draw filters, feature maps or a receptive field as PNG files.
    Visualize(visualize::VisualizeArgs),
    /// Overlay the training curves of run directories in one SVG file.
    Plot(plot::PlotArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Train(args) => train::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Predict(args) => predict::run(args),
        Command::Selftest(args) => selftest::run(args),
        Command::Data(args) => data::run(args),
        Command::Summary(args) => summary::run(args),
        Command::Visualize(args) => visualize::run(args),
        Command::Plot(args) => plot::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
