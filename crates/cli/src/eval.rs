//! `ganglion eval`: loss and accuracy of saved weights on a data set's test split.

use crate::datasets::{self, DatasetKind};
use crate::{threads, trainer, weights};
use anyhow::{Result, bail};
use clap::Args;
use ganglion::autograd::Graph;
use ganglion::data::BatchLoader;
use std::path::PathBuf;
use std::process::ExitCode;

/// Evaluate saved weights on the test split of a data set.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The weights file (model.safetensors of a run, or a PyTorch state dict with --model).
    #[arg(long)]
    pub weights: PathBuf,
    /// Directory with the data set's files [default: data/mnist, or data/cifar10].
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Data-set format.
    #[arg(long, value_enum, default_value = "mnist")]
    pub dataset: DatasetKind,
    /// Zoo architecture, for weights files that do not name theirs.
    #[arg(long)]
    pub model: Option<String>,
    /// Images per forward pass.
    #[arg(long, default_value_t = 1000)]
    pub batch_size: usize,
    /// Evaluate on the first N test images only.
    #[arg(long)]
    pub test_limit: Option<usize>,
    /// Worker threads [default: all cores].
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print one JSON object (`loss`, `accuracy`, `images`, `seconds`) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs `ganglion eval`.
pub fn run(args: &EvalArgs) -> Result<ExitCode> {
    if args.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    if args.test_limit == Some(0) {
        bail!("--test-limit must be at least 1");
    }
    threads::run_on_pool(args.threads, || evaluate(args))?
}

/// `ganglion eval` once its arguments are checked, on the thread pool.
fn evaluate(args: &EvalArgs) -> Result<ExitCode> {
    let loaded = weights::load(&args.weights, args.model.as_deref())?;
    let data_dir = args
        .data
        .clone()
        .unwrap_or_else(|| args.dataset.default_dir());
    datasets::check_dir(&data_dir, "--data")?;
    // An image folder is read at the size and channel count the model was trained on.
    let folder = datasets::folder_options_for(loaded.model.input_shape());
    let test = datasets::limit(args.dataset.load(&data_dir, &folder)?.test, args.test_limit);
    let name = loaded
        .model
        .architecture()
        .unwrap_or("the model")
        .to_string();
    datasets::check_shapes(loaded.model.input_shape(), test.image_shape(), &name)?;
    let classes = loaded.model.num_classes().unwrap_or(usize::MAX);
    if test.num_classes() > classes {
        bail!(
            "the data set has {} classes but {name} predicts {classes}",
            test.num_classes()
        );
    }
    let normalize = weights::normalize(&loaded.meta, test.channels())?;
    let loader = BatchLoader::evaluation(test, &normalize, args.batch_size)?;
    let mut graph = Graph::inference();
    let stats = trainer::evaluate(loaded.model.as_ref(), &mut graph, &loader)?;
    if args.json {
        outln!(
            "{}",
            serde_json::json!({
                "loss": stats.loss,
                "accuracy": stats.accuracy,
                "images": stats.images,
                "seconds": stats.seconds,
            })
        );
    } else {
        outln!(
            "{}: {} images, loss {:.4}, accuracy {:.2}% ({:.1} s)",
            args.weights.display(),
            stats.images,
            stats.loss,
            100.0 * stats.accuracy,
            stats.seconds
        );
    }
    Ok(ExitCode::SUCCESS)
}
