//! `--suite train`: training-step throughput of zoo models, measured in interleaved rounds.
//!
//! Step times differ by 1.1-1.8x from one process to the next on the same machine (peers.md),
//! so each round runs every cell once in a fresh worker process (this binary re-executed with
//! `--worker train`); a cell's figure is the median over rounds of its per-round median step,
//! and "best" is its fastest step of all rounds. Workers also count the allocations of the timed
//! steps.

use super::alloc_count;
use super::peers::{self, Peers};
use super::report::{Machine, optional};
use super::step::Trainer;
use super::timing::{Plan, median};
use super::{JsonSink, worker};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// The models measured unless `--models` says otherwise.
pub const MODELS: [&str; 3] = ["lenet5", "mnistnet", "resnet20"];
/// The batch sizes measured unless `--batches` says otherwise.
pub const BATCHES: [usize; 2] = [64, 128];

/// What one worker measured for one cell in one round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoundCell {
    /// Zoo model.
    pub model: String,
    /// Images per step.
    pub batch: usize,
    /// Worker threads.
    pub threads: usize,
    /// Seconds of each timed step.
    pub step_seconds: Vec<f64>,
    /// Allocation calls per timed step, GEMM packing buffers excluded.
    pub own_allocations_per_step: f64,
    /// `matrixmultiply` packing buffers allocated per timed step.
    pub packing_allocations_per_step: f64,
}

/// One cell over all rounds, set against PyTorch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrainRow {
    /// Zoo model.
    pub model: String,
    /// Images per step.
    pub batch: usize,
    /// Worker threads.
    pub threads: usize,
    /// Median over rounds of each round's median step, ms.
    pub ms_median: f64,
    /// `batch` over the median step.
    pub images_per_sec: f64,
    /// `batch` over the fastest step of all rounds.
    pub images_per_sec_best: f64,
    /// PyTorch's images per second (peers.md; 2 threads only).
    pub pytorch_images_per_sec: Option<f64>,
    /// `images_per_sec` over PyTorch's.
    pub ratio: Option<f64>,
    /// PyTorch's images per second at its best step.
    pub pytorch_images_per_sec_best: Option<f64>,
    /// `images_per_sec_best` over PyTorch's.
    pub ratio_best: Option<f64>,
    /// Slowest over fastest round median.
    pub spread: f64,
    /// Rounds measured.
    pub rounds: usize,
    /// Allocation calls per step, everything included (the largest of the rounds).
    pub allocations_per_step: f64,
    /// Of those, `matrixmultiply`'s packing buffers.
    pub packing_allocations_per_step: f64,
}

/// Combines the rounds of one cell (all with the same model, batch and threads).
///
/// # Panics
/// When `rounds` is empty or a round has no timed step.
pub fn aggregate(rounds: &[RoundCell], peers: &Peers) -> TrainRow {
    let first = &rounds[0];
    let mut medians: Vec<f64> = rounds
        .iter()
        .map(|r| median(&mut r.step_seconds.clone()))
        .collect();
    let best = rounds
        .iter()
        .flat_map(|r| r.step_seconds.iter().copied())
        .fold(f64::INFINITY, f64::min);
    let (fastest, slowest) = medians
        .iter()
        .fold((f64::INFINITY, 0.0f64), |(lo, hi), &m| {
            (lo.min(m), hi.max(m))
        });
    let seconds = median(&mut medians);
    let batch = first.batch as f64;
    let (images_per_sec, images_per_sec_best) = (batch / seconds, batch / best);
    let peer = peers.train(&first.model, first.batch, first.threads);
    let most = |f: fn(&RoundCell) -> f64| rounds.iter().map(f).fold(0.0, f64::max);
    let own = most(|r| r.own_allocations_per_step);
    let packing = most(|r| r.packing_allocations_per_step);
    TrainRow {
        model: first.model.clone(),
        batch: first.batch,
        threads: first.threads,
        ms_median: seconds * 1e3,
        images_per_sec,
        images_per_sec_best,
        pytorch_images_per_sec: peer.map(|p| p.images_per_sec),
        ratio: peer.map(|p| images_per_sec / p.images_per_sec),
        pytorch_images_per_sec_best: peer.map(|p| p.images_per_sec_best),
        ratio_best: peer.map(|p| images_per_sec_best / p.images_per_sec_best),
        spread: slowest / fastest,
        rounds: rounds.len(),
        allocations_per_step: own + packing,
        packing_allocations_per_step: packing,
    }
}

/// The cells of a run: every model at every batch at every thread count, in that nesting.
pub fn cells(
    models: &[String],
    batches: &[usize],
    threads: &[usize],
) -> Vec<(String, usize, usize)> {
    let mut out = Vec::new();
    for model in models {
        for &batch in batches {
            for &t in threads {
                out.push((model.clone(), batch, t));
            }
        }
    }
    out
}

/// Runs `rounds` worker processes over all cells and prints and returns the combined rows.
///
/// # Errors
/// When a worker fails or reports a cell it was not asked for, or the JSON file cannot be
/// written.
#[allow(clippy::too_many_arguments)]
pub fn run(
    models: &[String],
    batches: &[usize],
    threads: &[usize],
    rounds: usize,
    quick: bool,
    machine: &Machine,
    peers: &Peers,
    mut json: Option<&mut JsonSink>,
) -> Result<Vec<TrainRow>> {
    let cells = cells(models, batches, threads);
    let mut measured: Vec<Vec<RoundCell>> = vec![Vec::new(); cells.len()];
    for round in 1..=rounds {
        eprintln!("train: round {round}/{rounds} in a fresh process");
        let mut args = vec![
            "--models".to_string(),
            models.join(","),
            "--batches".to_string(),
            join(batches),
            "--threads".to_string(),
            join(threads),
        ];
        if quick {
            args.push("--quick".to_string());
        }
        for line in worker::spawn("train", &args)? {
            let cell: RoundCell = serde_json::from_str(&line)
                .with_context(|| format!("train: worker line `{line}`"))?;
            let slot = cells
                .iter()
                .position(|(m, b, t)| *m == cell.model && *b == cell.batch && *t == cell.threads)
                .with_context(|| format!("train: worker reported an unknown cell `{line}`"))?;
            anyhow::ensure!(
                !cell.step_seconds.is_empty(),
                "train: worker timed no step for `{line}`"
            );
            measured[slot].push(cell);
        }
    }
    println!("{}", table_header());
    let mut rows = Vec::new();
    for ((model, batch, t), rounds) in cells.iter().zip(&measured) {
        anyhow::ensure!(
            !rounds.is_empty(),
            "train: no round measured {model} at batch {batch} on {t} thread(s)"
        );
        let row = aggregate(rounds, peers);
        println!("{}", table_row(&row));
        if let Some(out) = json.as_deref_mut() {
            out.line(&json_line(&row, machine))?;
        }
        rows.push(row);
    }
    println!(
        "PyTorch: {} (threads={}; SGD without momentum)",
        peers::SOURCE,
        peers::COMPARE_THREADS
    );
    Ok(rows)
}

fn join(values: &[usize]) -> String {
    values
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// The worker side of one round: every cell once, each in a pool of its thread count, one
/// JSON line per cell on stdout and a progress line on stderr.
///
/// # Errors
/// When a model cannot be built or a step fails.
pub fn worker(models: &[String], batches: &[usize], threads: &[usize], quick: bool) -> Result<()> {
    let plan = if quick {
        Plan::TRAIN_QUICK
    } else {
        Plan::TRAIN
    };
    for (model, batch, t) in cells(models, batches, threads) {
        let pool = super::pool(t)?;
        let cell = pool.install(|| measure(&model, batch, t, plan))?;
        eprintln!(
            "  {model:<9} batch {batch:>4} threads {t}: median step {:.2} ms",
            median(&mut cell.step_seconds.clone()) * 1e3
        );
        println!("{}", serde_json::to_string(&cell)?);
    }
    Ok(())
}

/// Times one cell in the current pool, counting the allocations of the timed steps.
fn measure(model: &str, batch: usize, threads: usize, plan: Plan) -> Result<RoundCell> {
    let mut trainer = Trainer::new(model, batch, 0x7ea1)?;
    let mut calls = 0;
    let mut counts = alloc_count::Counts::default();
    let step_seconds = plan.try_timed_calls(|| {
        // Only the steps' own calls count, not the timing's record of them (its vector of
        // times grows while it runs).
        let before = alloc_count::snapshot();
        let step = trainer.step().map(drop);
        if calls >= plan.warmup_calls {
            counts = counts.plus(alloc_count::snapshot().since(before));
        }
        calls += 1;
        step
    })?;
    let steps = step_seconds.len() as f64;
    Ok(RoundCell {
        model: model.to_string(),
        batch,
        threads,
        own_allocations_per_step: counts.own as f64 / steps,
        packing_allocations_per_step: counts.packing as f64 / steps,
        step_seconds,
    })
}

/// Column titles of the console table, with a rule below.
pub fn table_header() -> String {
    let title = format!(
        "{:<9} {:>5} {:>7} {:>10} {:>8} {:>8} {:>8} {:>6} {:>6} {:>10}",
        "model",
        "batch",
        "threads",
        "median ms",
        "img/s",
        "best",
        "torch",
        "ratio",
        "spread",
        "allocs"
    );
    let rule = "-".repeat(title.len());
    format!("{title}\n{rule}")
}

/// One console line: allocations as `total (packing)`.
pub fn table_row(row: &TrainRow) -> String {
    format!(
        "{:<9} {:>5} {:>7} {:>10.2} {:>8.0} {:>8.0} {:>8} {:>6} {:>6.3} {:>10}",
        row.model,
        row.batch,
        row.threads,
        row.ms_median,
        row.images_per_sec,
        row.images_per_sec_best,
        optional(row.pytorch_images_per_sec, 0),
        optional(row.ratio, 2),
        row.spread,
        format!(
            "{:.0} ({:.0})",
            row.allocations_per_step, row.packing_allocations_per_step
        )
    )
}

/// One JSON line: `model`, `batch`, `threads`, `ms_median`, `images_per_sec`,
/// `images_per_sec_best`, `pytorch_images_per_sec`, `ratio` first (PyTorch's `null` where
/// peers.md has no figure), then the best-step comparison, `spread`, `rounds`, the allocation
/// counts, `isa` and `cpu`.
pub fn json_line(row: &TrainRow, machine: &Machine) -> String {
    #[derive(Serialize)]
    struct Record<'a> {
        #[serde(flatten)]
        row: &'a TrainRow,
        isa: &'a str,
        cpu: &'a str,
    }
    let record = Record {
        row,
        isa: machine.isa,
        cpu: &machine.cpu,
    };
    serde_json::to_string(&record).expect("a row of numbers and strings serialises")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(seconds: &[f64], own: f64) -> RoundCell {
        RoundCell {
            model: "resnet20".to_string(),
            batch: 128,
            threads: 2,
            step_seconds: seconds.to_vec(),
            own_allocations_per_step: own,
            packing_allocations_per_step: 10.0,
        }
    }

    #[test]
    fn rounds_combine_into_median_best_and_ratios() {
        let peers = Peers::embedded();
        // Round medians 0.30, 0.40, 0.20 s: the median of medians is 0.30 s; best step 0.16 s.
        let rounds = [
            round(&[0.30, 0.29, 0.31], 0.0),
            round(&[0.40, 0.41, 0.39], 2.0),
            round(&[0.20, 0.16, 0.25], 0.0),
        ];
        let row = aggregate(&rounds, &peers);
        assert!((row.ms_median - 300.0).abs() < 1e-9);
        assert!((row.images_per_sec - 128.0 / 0.3).abs() < 1e-9);
        assert!((row.images_per_sec_best - 800.0).abs() < 1e-9);
        assert_eq!(row.pytorch_images_per_sec, Some(412.0));
        assert!((row.ratio.unwrap() - 128.0 / 0.3 / 412.0).abs() < 1e-12);
        assert!((row.ratio_best.unwrap() - 800.0 / 521.0).abs() < 1e-12);
        assert!((row.spread - 2.0).abs() < 1e-12);
        assert_eq!((row.rounds, row.allocations_per_step), (3, 12.0));
        assert_eq!(row.packing_allocations_per_step, 10.0);
        let mut one_thread = rounds[0].clone();
        one_thread.threads = 1;
        let alone = aggregate(&[one_thread], &peers);
        assert_eq!((alone.pytorch_images_per_sec, alone.ratio), (None, None));
    }

    #[test]
    fn json_keys_come_in_the_contract_order() {
        let row = aggregate(&[round(&[0.25], 0.0)], &Peers::embedded());
        let machine = Machine {
            cpu: "Test CPU".to_string(),
            isa: "avx512",
        };
        let line = json_line(&row, &machine);
        let keys = [
            "model",
            "batch",
            "threads",
            "ms_median",
            "images_per_sec",
            "images_per_sec_best",
            "pytorch_images_per_sec",
            "ratio",
            "allocations_per_step",
            "isa",
        ];
        let positions: Vec<usize> = keys
            .iter()
            .map(|k| line.find(&format!("\"{k}\":")).unwrap())
            .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{line}");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["images_per_sec"], 512.0);
        assert_eq!(v["pytorch_images_per_sec"], 412.0);
        assert!(!line.contains('\n'));
    }

    #[test]
    fn cells_nest_model_batch_threads_and_lines_fit_the_header() {
        let c = cells(&["a".to_string(), "b".to_string()], &[64, 128], &[1, 2]);
        assert_eq!(c.len(), 8);
        assert_eq!(c[0], ("a".to_string(), 64, 1));
        assert_eq!(c[3], ("a".to_string(), 128, 2));
        assert_eq!(c[7], ("b".to_string(), 128, 2));
        let row = aggregate(&[round(&[0.25], 0.0)], &Peers::embedded());
        let header = table_header();
        assert_eq!(header.lines().next().unwrap().len(), table_row(&row).len());
    }

    #[test]
    fn a_worker_measures_a_small_cell() {
        let cell = measure("lenet5", 2, 1, Plan::TRAIN_QUICK).unwrap();
        assert_eq!(cell.step_seconds.len(), 2);
        assert!(cell.step_seconds.iter().all(|&s| s > 0.0));
        assert_eq!(
            (cell.model.as_str(), cell.batch, cell.threads),
            ("lenet5", 2, 1)
        );
    }
}
