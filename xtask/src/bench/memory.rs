//! `--suite memory`: the peak resident set of a training process, read from `VmHWM` in
//! `/proc/self/status` at the end of a run of training steps in a fresh worker process (this
//! binary re-executed with `--worker memory`), against PyTorch's in peers.md.

use super::peers::{self, Peers};
use super::report::Machine;
use super::step::Trainer;
use super::{JsonSink, worker};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// The model and batch measured unless `--models` / `--batches` say otherwise (the issue's
/// target: at most 25% of PyTorch's peak RSS for them).
pub const MODEL: &str = "resnet20";
/// See [`MODEL`].
pub const BATCH: usize = 128;
/// The target: Ganglion's peak RSS over PyTorch's.
pub const TARGET_FRACTION: f64 = 0.25;

/// What a memory worker reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measured {
    /// Zoo model.
    pub model: String,
    /// Images per step.
    pub batch: usize,
    /// Worker threads.
    pub threads: usize,
    /// Training steps run.
    pub steps: usize,
    /// `VmHWM` before the model was built, KiB: the binary's own footprint.
    pub start_peak_kib: u64,
    /// `VmHWM` after the last step, KiB.
    pub peak_kib: u64,
}

/// The measurement set against PyTorch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemoryRow {
    /// Zoo model.
    pub model: String,
    /// Images per step.
    pub batch: usize,
    /// Worker threads.
    pub threads: usize,
    /// Training steps run.
    pub steps: usize,
    /// Peak RSS of the training process, MiB.
    pub peak_rss_mib: f64,
    /// Peak RSS before the model was built, MiB.
    pub start_rss_mib: f64,
    /// PyTorch's peak RSS for the same model and batch, MiB (peers.md).
    pub pytorch_peak_rss_mib: Option<f64>,
    /// `peak_rss_mib` over PyTorch's.
    pub fraction_of_pytorch: Option<f64>,
    /// What importing torch alone costs, MiB (peers.md).
    pub pytorch_import_rss_mib: f64,
}

impl MemoryRow {
    /// A worker's figures set against the peers'.
    pub fn new(m: &Measured, peers: &Peers) -> MemoryRow {
        let mib = |kib: u64| kib as f64 / 1024.0;
        let peak = mib(m.peak_kib);
        let torch = peers.peak_rss_mib(&m.model, m.batch);
        MemoryRow {
            model: m.model.clone(),
            batch: m.batch,
            threads: m.threads,
            steps: m.steps,
            peak_rss_mib: peak,
            start_rss_mib: mib(m.start_peak_kib),
            pytorch_peak_rss_mib: torch,
            fraction_of_pytorch: torch.map(|t| peak / t),
            pytorch_import_rss_mib: peers.import_rss_mib,
        }
    }

    /// The console lines.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "peak RSS training {} at batch {} ({} steps, {} threads): {:.1} MiB \
             (process before the model: {:.1} MiB)",
            self.model, self.batch, self.steps, self.threads, self.peak_rss_mib, self.start_rss_mib
        );
        if let (Some(torch), Some(f)) = (self.pytorch_peak_rss_mib, self.fraction_of_pytorch) {
            s.push_str(&format!(
                "\nPyTorch: {torch:.0} MiB, of which {:.0} MiB is importing torch ({}); \
                 Ganglion uses {:.1}% of it (target <= {:.0}%)",
                self.pytorch_import_rss_mib,
                peers::SOURCE,
                100.0 * f,
                100.0 * TARGET_FRACTION
            ));
        }
        s
    }
}

/// Runs one memory worker and prints and returns its figures.
///
/// # Errors
/// When the worker fails or its report cannot be read, or the JSON file cannot be written.
pub fn run(
    model: &str,
    batch: usize,
    threads: usize,
    steps: usize,
    machine: &Machine,
    peers: &Peers,
    json: Option<&mut JsonSink>,
) -> Result<MemoryRow> {
    let args = [
        "--models".to_string(),
        model.to_string(),
        "--batches".to_string(),
        batch.to_string(),
        "--threads".to_string(),
        threads.to_string(),
        "--steps".to_string(),
        steps.to_string(),
    ];
    let lines = worker::spawn(worker::Kind::Memory.name(), &args)?;
    let line = lines
        .first()
        .context("memory: the worker reported nothing")?;
    let measured: Measured =
        serde_json::from_str(line).with_context(|| format!("memory: worker line `{line}`"))?;
    let row = MemoryRow::new(&measured, peers);
    println!("{}", row.describe());
    if let Some(out) = json {
        out.line(&json_line(&row, machine))?;
    }
    Ok(row)
}

/// One JSON line: the row's fields, then `isa` and `cpu`.
pub fn json_line(row: &MemoryRow, machine: &Machine) -> String {
    #[derive(Serialize)]
    struct Record<'a> {
        #[serde(flatten)]
        row: &'a MemoryRow,
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

/// The worker: `steps` training steps of `model` at `batch` in a pool of `threads`, then one
/// JSON line with the peak RSS on stdout.
///
/// # Errors
/// When `/proc/self/status` has no `VmHWM` (not Linux), or building or stepping the model
/// fails.
pub fn worker(model: &str, batch: usize, threads: usize, steps: usize) -> Result<()> {
    let start_peak_kib = peak_rss_kib()?;
    let pool = super::pool(threads)?;
    pool.install(|| -> Result<()> {
        let mut trainer = Trainer::new(model, batch, 0x3e3)?;
        for _ in 0..steps {
            trainer.step()?;
        }
        Ok(())
    })?;
    let measured = Measured {
        model: model.to_string(),
        batch,
        threads,
        steps,
        start_peak_kib,
        peak_kib: peak_rss_kib()?,
    };
    println!("{}", serde_json::to_string(&measured)?);
    Ok(())
}

/// This process's peak resident set so far, KiB.
fn peak_rss_kib() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")
        .context("memory: cannot read /proc/self/status (the memory suite needs Linux)")?;
    vm_hwm_kib(&status).context("memory: /proc/self/status has no VmHWM line")
}

/// The `VmHWM:` value of a `/proc/<pid>/status` text, in KiB.
fn vm_hwm_kib(status: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix("VmHWM:")?;
        let mut parts = rest.split_whitespace();
        let value = parts.next()?.parse().ok()?;
        (parts.next() == Some("kB")).then_some(value)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_hwm_is_read_in_kib() {
        let status = "Name:\txtask\nVmPeak:\t  900000 kB\nVmHWM:\t  123456 kB\nVmRSS:\t 1000 kB\n";
        assert_eq!(vm_hwm_kib(status), Some(123_456));
        assert_eq!(vm_hwm_kib("VmRSS:\t 1000 kB\n"), None);
        assert_eq!(vm_hwm_kib("VmHWM:\t 12 MB\n"), None);
        if cfg!(target_os = "linux") {
            assert!(peak_rss_kib().unwrap() > 0);
        }
    }

    #[test]
    fn a_measurement_is_set_against_pytorch() {
        let m = Measured {
            model: "resnet20".to_string(),
            batch: 128,
            threads: 2,
            steps: 3,
            start_peak_kib: 10 * 1024,
            peak_kib: 579 * 1024,
        };
        let row = MemoryRow::new(&m, &Peers::embedded());
        assert_eq!(row.peak_rss_mib, 579.0);
        assert_eq!(row.start_rss_mib, 10.0);
        assert_eq!(row.pytorch_peak_rss_mib, Some(1158.0));
        assert!((row.fraction_of_pytorch.unwrap() - 0.5).abs() < 1e-12);
        assert_eq!(row.pytorch_import_rss_mib, 648.0);
        assert!(row.describe().contains("50.0%"), "{}", row.describe());
        let other = Measured { batch: 7, ..m };
        assert_eq!(
            MemoryRow::new(&other, &Peers::embedded()).fraction_of_pytorch,
            None
        );
    }
}
