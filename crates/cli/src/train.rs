//! `ganglion train`: train a zoo model on MNIST-format, CIFAR-10 or image-folder data and
//! write a run directory (`config.json`, `metrics.jsonl`, `model.safetensors`).

use crate::checkpoint::resume::Resume;
use crate::datasets::{self, DatasetKind};
use crate::trainer::{self, EpochPlan, PassStats, Tally};
use crate::{atomic, checkpoint, threads};
use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use ganglion::autograd::Graph;
use ganglion::data::{Augment, BatchLoader, LoaderConfig};
use ganglion::models::{self, ModelMeta, Module};
use ganglion::optim::{
    Adam, AdamConfig, AdamW, Constant, Cosine, LinearWarmup, OneCycle, Optimizer, Schedule, Sgd,
    SgdConfig, StepLr,
};
use ganglion::tensor::Rng;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Optimizers `train` offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// SGD with momentum (`--momentum`) and Nesterov (`--nesterov`).
    Sgd,
    /// Adam (L2 weight decay added to the gradient).
    Adam,
    /// AdamW (decoupled weight decay).
    Adamw,
}

/// Learning-rate schedules, stepped once per batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleKind {
    /// The same rate throughout.
    Constant,
    /// Multiply by 0.1 every third of the run (`StepLR`).
    Step,
    /// Cosine annealing to zero over the run.
    Cosine,
    /// One-cycle: warm up to `--lr` over 30% of the run, then anneal (`OneCycleLR`).
    Onecycle,
}

/// Train a CNN and write its run directory.
///
/// With no arguments: trains `lenet5` on the repository's bundled MNIST (data/mnist) and writes
/// runs/lenet5-mnist-N/. Every option below is recorded in the run's config.json.
#[derive(Debug, Args, Serialize)]
pub struct TrainArgs {
    /// Model from the zoo: lenet5, mnistnet, allconv, resnet20.
    #[arg(long, default_value = "lenet5")]
    pub model: String,
    /// Data-set format; MNIST format also reads Fashion-MNIST and any IDX set; folder reads
    /// one sub-folder of images per class (train it with --model allconv, which takes any
    /// image size).
    #[arg(long, value_enum, default_value = "mnist")]
    pub dataset: DatasetKind,
    /// Directory with the data set's files [default: data/mnist, data/cifar10 or data/images].
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// How image folders are read.
    #[command(flatten)]
    #[serde(flatten)]
    pub folder: datasets::FolderArgs,
    /// Normalisation: auto (published constants for MNIST and CIFAR-10, training-split
    /// statistics for folders), computed (training-split statistics), unit ([0, 1] only) or
    /// a JSON file from `ganglion data stats`.
    #[arg(long, default_value = "auto")]
    pub normalize: String,
    /// Threads that decode, augment and batch training images ahead of the training step.
    #[arg(long, default_value_t = 1)]
    pub data_workers: usize,
    /// Passes over the training set.
    #[arg(long, default_value_t = 15)]
    pub epochs: usize,
    /// Images per optimisation step.
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// Optimizer.
    #[arg(long, value_enum, default_value = "adamw")]
    pub optimizer: OptimizerKind,
    /// Peak learning rate (the schedule scales it per step).
    #[serde(serialize_with = "short_f32")]
    #[arg(long, default_value_t = 3e-3)]
    pub lr: f32,
    /// Momentum for SGD.
    #[serde(serialize_with = "short_f32")]
    #[arg(long, default_value_t = 0.9)]
    pub momentum: f32,
    /// Nesterov momentum for SGD.
    #[arg(long)]
    pub nesterov: bool,
    /// Learning-rate schedule, stepped every batch.
    #[arg(long, value_enum, default_value = "onecycle")]
    pub schedule: ScheduleKind,
    /// Linear warm-up over this many epochs before the schedule (not with onecycle).
    #[arg(long, default_value_t = 0)]
    pub warmup_epochs: usize,
    /// Weight decay (L2 for SGD and Adam, decoupled for AdamW).
    #[serde(serialize_with = "short_f32")]
    #[arg(long, default_value_t = 5e-4)]
    pub weight_decay: f32,
    /// Label smoothing of the cross-entropy loss, in [0, 1).
    #[serde(serialize_with = "short_f32")]
    #[arg(long, default_value_t = 0.0)]
    pub label_smoothing: f32,
    /// Augment training images: random crop with padding (and horizontal flip for CIFAR-10);
    /// for folders random-resized crop, flip and colour jitter.
    #[arg(long)]
    pub augment: bool,
    /// Seed of initialisation, shuffling, augmentation and dropout.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Worker threads for the kernels [default: all cores].
    #[arg(long)]
    pub threads: Option<usize>,
    /// Run directory [default: runs/MODEL-DATASET-N, the first N not taken].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Train on the first N training images only (quick experiments).
    #[arg(long)]
    pub train_limit: Option<usize>,
    /// Evaluate on the first N test images only.
    #[arg(long)]
    pub test_limit: Option<usize>,
    /// Do not draw a progress bar.
    #[arg(long)]
    pub no_progress: bool,
    /// Every N steps, write a checkpoint to RUN/checkpoint (model, optimizer, schedule
    /// position, metrics so far), atomically: a killed run loses at most N steps.
    #[arg(long, value_name = "N")]
    pub checkpoint_every: Option<u64>,
    /// Continue the run in DIR from its checkpoint with the run's saved arguments, ending with
    /// the same weights as an uninterrupted run.
    #[arg(long, value_name = "DIR")]
    pub resume: Option<PathBuf>,
}

#[derive(Serialize)]
struct EpochRecord {
    epoch: usize,
    train_loss: f64,
    train_accuracy: f64,
    test_loss: f64,
    test_accuracy: f64,
    images_per_sec: f64,
    seconds: f64,
}

fn validate(args: &TrainArgs) -> Result<()> {
    if args.epochs == 0 {
        bail!("--epochs must be at least 1");
    }
    if args.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    if !(args.lr.is_finite() && args.lr > 0.0) {
        bail!("--lr must be a positive number, got {}", args.lr);
    }
    if args.checkpoint_every == Some(0) {
        bail!("--checkpoint-every must be at least 1");
    }
    if !(args.weight_decay.is_finite() && args.weight_decay >= 0.0) {
        bail!(
            "--weight-decay must be zero or positive, got {}",
            args.weight_decay
        );
    }
    if !(0.0..1.0).contains(&args.label_smoothing) {
        bail!(
            "--label-smoothing must be in [0, 1), got {}",
            args.label_smoothing
        );
    }
    if args.data_workers == 0 {
        bail!("--data-workers must be at least 1");
    }
    if args.train_limit == Some(0) || args.test_limit == Some(0) {
        bail!("--train-limit and --test-limit must be at least 1");
    }
    if args.warmup_epochs > 0 && args.schedule == ScheduleKind::Onecycle {
        bail!("--warmup-epochs does not combine with --schedule onecycle, which warms up itself");
    }
    if !models::ZOO.contains(&args.model.as_str()) {
        bail!(
            "unknown model `{}`; the zoo has: {}",
            args.model,
            models::ZOO.join(", ")
        );
    }
    Ok(())
}

fn run_dir(args: &TrainArgs) -> Result<PathBuf> {
    let dir = match &args.out {
        Some(dir) => dir.clone(),
        None => {
            let base = format!("{}-{}", args.model, args.dataset.name());
            (1..)
                .map(|n| Path::new("runs").join(format!("{base}-{n}")))
                .find(|p| !p.exists())
                .context("no free run directory name")?
        }
    };
    if dir.exists() && !dir.is_dir() {
        bail!("--out {}: is a file, expected a directory", dir.display());
    }
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("--out {}: cannot create the directory", dir.display()))?;
    Ok(dir)
}

fn build_optimizer(args: &TrainArgs, model: &dyn Module) -> Result<Box<dyn Optimizer>> {
    let params = model.parameters();
    Ok(match args.optimizer {
        OptimizerKind::Sgd => Box::new(Sgd::new(
            params,
            SgdConfig {
                lr: args.lr,
                momentum: args.momentum,
                dampening: 0.0,
                weight_decay: args.weight_decay,
                nesterov: args.nesterov,
            },
        )?),
        OptimizerKind::Adam => Box::new(Adam::new(
            params,
            AdamConfig {
                lr: args.lr,
                weight_decay: args.weight_decay,
                ..AdamConfig::default()
            },
        )?),
        OptimizerKind::Adamw => Box::new(AdamW::new(
            params,
            AdamConfig {
                lr: args.lr,
                weight_decay: args.weight_decay,
                ..AdamConfig::adamw()
            },
        )?),
    })
}

fn build_schedule(args: &TrainArgs, steps_per_epoch: u64) -> Result<Box<dyn Schedule>> {
    let warmup = args.warmup_epochs as u64 * steps_per_epoch;
    let total = args.epochs as u64 * steps_per_epoch;
    let main_steps = total.saturating_sub(warmup).max(1);
    let inner: Box<dyn Schedule> = match args.schedule {
        ScheduleKind::Constant => Box::new(Constant::new(args.lr)?),
        ScheduleKind::Step => Box::new(StepLr::new(args.lr, (main_steps / 3).max(1), 0.1)?),
        ScheduleKind::Cosine => Box::new(Cosine::new(args.lr, main_steps, 0.0)?),
        ScheduleKind::Onecycle => return Ok(Box::new(OneCycle::new(args.lr, total.max(2))?)),
    };
    Ok(if warmup > 0 {
        Box::new(LinearWarmup::new(inner, warmup, 0.01)?)
    } else {
        inner
    })
}

/// Runs `ganglion train`.
pub fn run(args: &TrainArgs) -> Result<ExitCode> {
    let resume = checkpoint::prepare_resume(args)?;
    let args = resume.as_ref().map_or(args, |r| &r.args);
    validate(args)?;
    threads::run_on_pool(args.threads, || train(args, resume.as_ref()))?
}

/// `ganglion train` once its arguments are checked (and `resume` read), on the thread pool.
fn train(args: &TrainArgs, resume: Option<&Resume>) -> Result<ExitCode> {
    let data_dir = args
        .data
        .clone()
        .unwrap_or_else(|| args.dataset.default_dir());
    datasets::check_dir(&data_dir, "--data")?;
    let split = args
        .dataset
        .load(&data_dir, &args.folder.options(args.seed)?)?;
    let train_set = datasets::limit(split.train, args.train_limit);
    let test_set = datasets::limit(split.test, args.test_limit);

    let mut rng = Rng::seed_from(args.seed);
    let mut model: Box<dyn Module> = if args.model == "allconv" {
        // Fully convolutional: built for the data's channels and declared for its image size
        // (the same draws as the zoo's `allconv` for MNIST).
        let shape = train_set.image_shape();
        Box::new(models::allconv_with(shape[0], &mut rng)?.with_input_shape(&shape))
    } else {
        models::by_name(&args.model, &mut rng)?
    };
    datasets::check_shapes(model.input_shape(), train_set.image_shape(), &args.model)?;
    let classes = model.num_classes().unwrap_or(10);
    if train_set.num_classes() > classes {
        bail!(
            "the data set has {} classes but model `{}` predicts {classes}",
            train_set.num_classes(),
            args.model
        );
    }
    let out = run_dir(args)?;
    let normalize = datasets::normalization(&args.normalize, args.dataset, &train_set)?;
    let augment = if args.augment {
        args.dataset.augmentation(train_set.image_shape())
    } else {
        Augment::none()
    };
    let train_loader = BatchLoader::new(
        train_set,
        &normalize,
        LoaderConfig::train(args.batch_size, args.seed)
            .with_augment(augment)
            .with_workers(args.data_workers),
    )?;
    let test_loader = BatchLoader::evaluation(test_set, &normalize, 1000)?;
    let steps_per_epoch = train_loader.num_batches() as u64;
    let mut optimizer = build_optimizer(args, model.as_ref())?;
    let schedule = build_schedule(args, steps_per_epoch)?;
    let start = match resume {
        Some(r) => {
            r.checkpoint.restore(model.as_ref(), optimizer.as_mut())?;
            r.checkpoint.start(args.epochs, steps_per_epoch)?
        }
        None => checkpoint::Start::default(),
    };
    let saver = checkpoint::Saver::new(&out, args, &data_dir, resume.map(|r| &r.checkpoint))?;

    let config = serde_json::json!({
        "args": args,
        "data_dir": data_dir,
        "out": out,
        "train_images": train_loader.dataset().len(),
        "test_images": test_loader.dataset().len(),
        "parameters": model.num_parameters(),
        "normalize": { "mean": normalize.mean, "std": normalize.std },
        "threads": rayon_threads(),
        "version": env!("CARGO_PKG_VERSION"),
    });
    atomic::write(
        &out.join("config.json"),
        serde_json::to_string_pretty(&config)?.as_bytes(),
    )?;

    let mut meta = ModelMeta::for_model(model.as_ref());
    meta.normalize_mean = Some(normalize.mean.clone());
    meta.normalize_std = Some(normalize.std.clone());
    meta.classes = train_loader.dataset().class_names().map(<[String]>::to_vec);

    outln!(
        "training {} ({} parameters) on {} ({} train / {} test images) for {} epochs, {} threads -> {}",
        args.model,
        model.num_parameters(),
        data_dir.display(),
        train_loader.dataset().len(),
        test_loader.dataset().len(),
        args.epochs,
        rayon_threads(),
        out.display()
    );
    let mut graph = Graph::new();
    let mut eval_graph = Graph::inference();
    if start.epoch > 0 || start.batch > 0 {
        outln!(
            "resuming at epoch {}, batch {} (step {})",
            start.epoch + 1,
            start.batch,
            start.epoch as u64 * steps_per_epoch + start.batch as u64
        );
    }
    let mut metrics = start.metrics.clone();
    let mut best = PassStats {
        accuracy: start.best_test_accuracy,
        ..PassStats::default()
    };
    for epoch in start.epoch..args.epochs {
        let resumed = epoch == start.epoch;
        let label = format!("epoch {}/{}", epoch + 1, args.epochs);
        model.set_training(true);
        let plan = EpochPlan {
            epoch: epoch as u64,
            first_step: epoch as u64 * steps_per_epoch,
            label_smoothing: args.label_smoothing,
            seed: args.seed,
            label: &label,
            progress: !args.no_progress,
            first_batch: if resumed { start.batch } else { 0 },
            tally: if resumed {
                start.tally
            } else {
                Tally::default()
            },
            after_step: &|at, model, optimizer| {
                saver.after_step(at, model, &meta, optimizer, &metrics, best.accuracy)
            },
        };
        let train = trainer::train_epoch(
            model.as_ref(),
            &mut graph,
            optimizer.as_mut(),
            schedule.as_ref(),
            &train_loader,
            &plan,
        )
        .map_err(|e| saver.explain(e))?;
        model.set_training(false);
        let test = trainer::evaluate(model.as_ref(), &mut eval_graph, &test_loader)
            .map_err(|e| saver.explain(e))?;
        let record = EpochRecord {
            epoch: epoch + 1,
            train_loss: train.loss,
            train_accuracy: train.accuracy,
            test_loss: test.loss,
            test_accuracy: test.accuracy,
            images_per_sec: train.images_per_sec(),
            seconds: train.seconds + test.seconds,
        };
        metrics.push_str(&serde_json::to_string(&record)?);
        metrics.push('\n');
        atomic::write(&out.join("metrics.jsonl"), metrics.as_bytes())?;
        crate::plot::write_curves(&out)?;
        models::save(model.as_ref(), &meta, out.join("model.safetensors"))?;
        outln!(
            "{label}: train loss {:.4} acc {:.2}% | test loss {:.4} acc {:.2}% | {:.0} img/s | {:.1} s",
            train.loss,
            100.0 * train.accuracy,
            test.loss,
            100.0 * test.accuracy,
            train.images_per_sec(),
            record.seconds
        );
        if test.accuracy > best.accuracy {
            best = test;
        }
    }
    outln!(
        "best test accuracy {:.2}%; model written to {}",
        100.0 * best.accuracy,
        out.join("model.safetensors").display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Writes an `f32` as the shortest decimal that reads back to it (`0.003`, not
/// `0.003000000026077032`), so config.json shows what was typed.
pub(crate) fn short_f32<S: serde::Serializer>(v: &f32, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(v.to_string().parse().unwrap_or(f64::from(*v)))
}

fn rayon_threads() -> usize {
    rayon::current_num_threads()
}
