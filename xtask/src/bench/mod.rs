//! `cargo xtask bench`: the convolution layer suite timed against the machine's measured limits
//! (FMA peak, sgemm roofline), the training-step throughput of the zoo models, the peak memory
//! of a training process, all set against PyTorch's figures, and BENCHMARKS.md from them.

mod alloc_count;
mod conv;
mod machine;
mod markdown;
mod memory;
mod peak;
mod peers;
mod report;
mod step;
mod suite;
mod timing;
mod train;
mod worker;

use anyhow::{Context, Result, bail};
use peers::Peers;
use rayon::ThreadPool;
use report::Machine;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use suite::Suite;
use timing::Plan;

/// The usage text of `cargo xtask bench`.
pub const USAGE: &str = "\
usage: cargo xtask bench [--suite conv|train|memory|all] [--quick] [--threads N,..]
                         [--layers NAME,..] [--suite-file PATH]
                         [--models NAME,..] [--batches N,..] [--rounds N] [--steps N]
                         [--json PATH] [--markdown PATH]

Suites (default conv; all with --markdown):
  conv     this machine's FMA peak and sgemm roofline, then forward, backward-data and
           backward-weight of every layer of the suite file at each thread count, in
           interleaved rounds over the suite
  train    training-step throughput (forward, cross-entropy, backward, SGD momentum update on
           random data) of lenet5, mnistnet and resnet20 at batch 64 and 128 at each thread
           count, in interleaved rounds of fresh processes, with allocations per step
  memory   peak RSS of a process training resnet20 at batch 128
  all      the three
Every figure is set against PyTorch's in ../shared/bench/peers.md where it has one.

  --quick            fewer calls: conv one warm-up and two timed calls per cell; train one
                     round of two timed steps; memory three steps
  --threads 1,2      thread counts (conv default: the suite file's; train: 1,2; memory runs
                     at the largest)
  --layers a,b       conv: only these layers of the suite
  --suite-file PATH  conv: the suite file (default: benches/conv_suite.toml)
  --models a,b       train: these zoo models; memory: the first (default resnet20)
  --batches 64,128   train: these batch sizes; memory: the first (default 128)
  --rounds N         conv and train: interleaved rounds, each figure the median of its
                     rounds (default 3, --quick 1)
  --steps N          memory: training steps before the peak is read (default 5, --quick 3)
  --json PATH        also write one JSON object per measured cell to PATH
  --markdown PATH    also write the report (BENCHMARKS.md) to PATH, atomically";

/// Which measurements to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuiteName {
    /// The conv layer suite (and the machine limits).
    Conv,
    /// Training-step throughput.
    Train,
    /// Peak RSS of a training process.
    Memory,
    /// All three.
    All,
}

impl SuiteName {
    fn parse(value: &str) -> Result<SuiteName> {
        Ok(match value {
            "conv" => SuiteName::Conv,
            "train" => SuiteName::Train,
            "memory" => SuiteName::Memory,
            "all" => SuiteName::All,
            other => bail!(
                "bench: unknown suite `{other}` (expected conv, train, memory or all; \
                 a conv suite file goes to --suite-file)\n\n{USAGE}"
            ),
        })
    }

    fn includes(self, part: SuiteName) -> bool {
        self == SuiteName::All || self == part
    }
}

/// Parsed `cargo xtask bench` options.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchArgs {
    suite: Option<SuiteName>,
    quick: bool,
    layers: Option<Vec<String>>,
    threads: Option<Vec<usize>>,
    json: Option<PathBuf>,
    markdown: Option<PathBuf>,
    suite_file: PathBuf,
    models: Option<Vec<String>>,
    batches: Option<Vec<usize>>,
    rounds: Option<usize>,
    steps: Option<usize>,
    /// Set in worker processes only (not in the usage text).
    worker: Option<worker::Kind>,
}

impl BenchArgs {
    /// Parses the arguments after `bench`.
    ///
    /// # Errors
    /// On an unknown flag or suite, a flag without its value, or a count that is not a
    /// positive integer.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<BenchArgs> {
        let mut parsed = BenchArgs {
            suite: None,
            quick: false,
            layers: None,
            threads: None,
            json: None,
            markdown: None,
            suite_file: crate::project_root().join("benches/conv_suite.toml"),
            models: None,
            batches: None,
            rounds: None,
            steps: None,
            worker: None,
        };
        let mut args = args.into_iter();
        while let Some(flag) = args.next() {
            let mut value = || {
                args.next()
                    .with_context(|| format!("bench: `{flag}` needs a value\n\n{USAGE}"))
            };
            match flag.as_str() {
                "--suite" => parsed.suite = Some(SuiteName::parse(&value()?)?),
                "--quick" => parsed.quick = true,
                "--layers" => parsed.layers = Some(list(&value()?)),
                "--threads" => parsed.threads = Some(counts(&flag, &value()?)?),
                "--json" => parsed.json = Some(value()?.into()),
                "--markdown" => parsed.markdown = Some(value()?.into()),
                "--suite-file" => parsed.suite_file = value()?.into(),
                "--models" => parsed.models = Some(list(&value()?)),
                "--batches" => parsed.batches = Some(counts(&flag, &value()?)?),
                "--rounds" => parsed.rounds = Some(count(&flag, &value()?)?),
                "--steps" => parsed.steps = Some(count(&flag, &value()?)?),
                "--worker" => parsed.worker = Some(worker::Kind::parse(&value()?)?),
                other => bail!("bench: unknown argument `{other}`\n\n{USAGE}"),
            }
        }
        if parsed.models.as_ref().is_some_and(Vec::is_empty) {
            bail!("bench: `--models` names no model");
        }
        Ok(parsed)
    }

    /// The suite to run: the one named, else all with `--markdown`, else conv.
    fn suite(&self) -> SuiteName {
        match (self.suite, &self.markdown) {
            (Some(s), _) => s,
            (None, Some(_)) => SuiteName::All,
            (None, None) => SuiteName::Conv,
        }
    }

    fn models(&self) -> Vec<String> {
        self.models
            .clone()
            .unwrap_or_else(|| train::MODELS.iter().map(|m| m.to_string()).collect())
    }

    fn batches(&self) -> Vec<usize> {
        self.batches
            .clone()
            .unwrap_or_else(|| train::BATCHES.to_vec())
    }

    /// Thread counts of the train and memory suites.
    fn train_threads(&self) -> Vec<usize> {
        self.threads.clone().unwrap_or_else(|| vec![1, 2])
    }
}

fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

fn count(flag: &str, value: &str) -> Result<usize> {
    match value.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => bail!("bench: `{flag} {value}`: expected a positive integer"),
    }
}

fn counts(flag: &str, value: &str) -> Result<Vec<usize>> {
    let counts = list(value)
        .iter()
        .map(|s| s.parse::<usize>().ok().filter(|&t| t > 0))
        .collect::<Option<Vec<_>>>();
    match counts {
        Some(c) if !c.is_empty() => Ok(c),
        _ => bail!("bench: `{flag} {value}`: expected positive integers separated by commas"),
    }
}

/// A rayon pool of `threads` workers, all of them started; each measurement runs inside one,
/// so the thread count is exactly the one reported.
///
/// # Errors
/// When the pool cannot be started.
pub(crate) fn pool(threads: usize) -> Result<ThreadPool> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .with_context(|| format!("cannot start a pool of {threads} threads"))?;
    // Workers start asynchronously (allocating their queues); a start-up in the middle of a
    // timed step would be timed and counted with it.
    pool.broadcast(|_| ());
    Ok(pool)
}

/// The `--json` file: one JSON object per line, from every suite that runs.
pub(crate) struct JsonSink {
    out: BufWriter<File>,
    path: PathBuf,
    lines: usize,
}

impl JsonSink {
    fn create(path: PathBuf) -> Result<JsonSink> {
        let file =
            File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
        Ok(JsonSink {
            out: BufWriter::new(file),
            path,
            lines: 0,
        })
    }

    /// Appends one line.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub(crate) fn line(&mut self, line: &str) -> Result<()> {
        writeln!(self.out, "{line}")
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        self.lines += 1;
        Ok(())
    }

    fn finish(mut self) -> Result<()> {
        self.out
            .flush()
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        println!(
            "\nwrote {} JSON lines to {}",
            self.lines,
            self.path.display()
        );
        Ok(())
    }
}

/// Runs the benchmark as `args` say, printing tables as cells finish.
///
/// # Errors
/// When the suite file cannot be read, a filter names nothing, a thread pool or worker cannot
/// be started, a measurement fails, or an output file cannot be written.
pub fn run(args: &BenchArgs) -> Result<()> {
    if let Some(kind) = args.worker {
        return run_worker(kind, args);
    }
    let suite_name = args.suite();
    let isa = machine::selected_isa()?;
    let machine = Machine {
        cpu: machine::cpu_model(),
        isa: isa.name(),
    };
    let peers = Peers::embedded();
    let mut json = args.json.clone().map(JsonSink::create).transpose()?;
    println!("cpu: {}", machine.cpu);
    println!("isa: {}", machine.isa);

    let mut threads_used = Vec::new();
    let conv = if suite_name.includes(SuiteName::Conv) {
        let mut suite = Suite::load(&args.suite_file)?;
        suite.select_layers(args.layers.as_deref())?;
        let threads = args
            .threads
            .clone()
            .unwrap_or_else(|| suite.threads.clone());
        let plan = if args.quick { Plan::QUICK } else { Plan::FULL };
        let rounds = args.rounds.unwrap_or(if args.quick { 1 } else { 3 });
        let results = conv::run(
            &suite,
            &threads,
            plan,
            rounds,
            isa,
            &machine,
            &peers,
            json.as_mut(),
        )?;
        let s = markdown::summarize(&results.rows, &[]);
        if let Some(g) = s.conv_geomean {
            println!(
                "\nGanglion / PyTorch at {} threads: geometric mean {g:.2}x, lowest {}",
                peers::COMPARE_THREADS,
                s.conv_worst
                    .map_or("-".to_string(), |(v, c)| format!("{v:.2}x ({c})"))
            );
        }
        threads_used.extend(threads);
        Some(results)
    } else {
        None
    };

    let train_rows = if suite_name.includes(SuiteName::Train) {
        println!();
        let threads = args.train_threads();
        let rounds = args.rounds.unwrap_or(if args.quick { 1 } else { 3 });
        let models = args.models();
        let batches = args.batches();
        let rows = train::run(
            &models,
            &batches,
            &threads,
            rounds,
            args.quick,
            &machine,
            &peers,
            json.as_mut(),
        )?;
        threads_used.extend(threads);
        rows
    } else {
        Vec::new()
    };

    let memory = if suite_name.includes(SuiteName::Memory) {
        println!();
        let threads = args.train_threads().into_iter().max().unwrap_or(2);
        let model = args
            .models
            .as_ref()
            .map_or(memory::MODEL.to_string(), |m| m[0].clone());
        let batch = args.batches.as_ref().map_or(memory::BATCH, |b| b[0]);
        let steps = args.steps.unwrap_or(if args.quick { 3 } else { 5 });
        threads_used.push(threads);
        Some(memory::run(
            &model,
            batch,
            threads,
            steps,
            &machine,
            &peers,
            json.as_mut(),
        )?)
    } else {
        None
    };

    if let Some(sink) = json {
        sink.finish()?;
    }
    if let Some(path) = &args.markdown {
        threads_used.sort_unstable();
        threads_used.dedup();
        let report = markdown::Report {
            machine: &machine,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            date: markdown::utc_date(),
            threads: &threads_used,
            conv: conv.as_ref(),
            train: &train_rows,
            memory: memory.as_ref(),
            peers: &peers,
        };
        markdown::write_atomic(path, &markdown::render(&report))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// The worker side of `--worker KIND` (see [`worker`]).
fn run_worker(kind: worker::Kind, args: &BenchArgs) -> Result<()> {
    let models = args.models();
    let batches = args.batches();
    let threads = args.train_threads();
    match kind {
        worker::Kind::Train => train::worker(&models, &batches, &threads, args.quick),
        worker::Kind::Memory => {
            let steps = args.steps.unwrap_or(if args.quick { 3 } else { 5 });
            let threads = threads.into_iter().max().unwrap_or(2);
            memory::worker(&models[0], batches[0], threads, steps)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<BenchArgs> {
        BenchArgs::parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn flags_parse_into_filters() {
        let a = parse(&[
            "--quick",
            "--layers",
            "cifar.64,lenet.c1",
            "--threads",
            "2",
            "--json",
            "x.jsonl",
        ])
        .unwrap();
        assert!(a.quick);
        assert_eq!(a.layers.clone().unwrap(), ["cifar.64", "lenet.c1"]);
        assert_eq!(a.threads.clone().unwrap(), [2]);
        assert_eq!(a.json.clone().unwrap(), PathBuf::from("x.jsonl"));
        assert!(a.suite_file.ends_with("benches/conv_suite.toml"));
        assert_eq!(a.suite(), SuiteName::Conv);
        let d = parse(&[]).unwrap();
        assert!(!d.quick && d.layers.is_none() && d.threads.is_none() && d.json.is_none());
        assert_eq!(d.suite(), SuiteName::Conv);
        assert_eq!(d.models(), ["lenet5", "mnistnet", "resnet20"]);
        assert_eq!(
            (d.batches(), d.train_threads()),
            (vec![64, 128], vec![1, 2])
        );
    }

    #[test]
    fn suites_and_their_options() {
        let t = parse(&[
            "--suite",
            "train",
            "--models",
            "lenet5",
            "--batches",
            "32,64",
            "--rounds",
            "5",
        ])
        .unwrap();
        assert_eq!(t.suite(), SuiteName::Train);
        assert!(t.suite().includes(SuiteName::Train) && !t.suite().includes(SuiteName::Conv));
        assert_eq!(
            (t.models(), t.batches(), t.rounds),
            (vec!["lenet5".to_string()], vec![32, 64], Some(5))
        );
        // --markdown implies all, unless a suite is named.
        let m = parse(&["--markdown", "B.md"]).unwrap();
        assert_eq!(m.suite(), SuiteName::All);
        assert!(
            [SuiteName::Conv, SuiteName::Train, SuiteName::Memory]
                .iter()
                .all(|&s| m.suite().includes(s))
        );
        let mc = parse(&["--markdown", "B.md", "--suite", "conv"]).unwrap();
        assert_eq!(mc.suite(), SuiteName::Conv);
        let f = parse(&["--suite-file", "other.toml", "--steps", "2"]).unwrap();
        assert_eq!(
            (f.suite_file, f.steps),
            (PathBuf::from("other.toml"), Some(2))
        );
        let w = parse(&["--worker", "memory"]).unwrap();
        assert_eq!(w.worker, Some(worker::Kind::Memory));
    }

    #[test]
    fn bad_flags_are_errors() {
        assert!(parse(&["--frobnicate"]).is_err());
        assert!(parse(&["--json"]).is_err());
        assert!(parse(&["--threads", "0"]).is_err());
        assert!(parse(&["--threads", "two"]).is_err());
        assert!(parse(&["--threads", ""]).is_err());
        let suite = parse(&["--suite", "benches/conv_suite.toml"]).unwrap_err();
        assert!(suite.to_string().contains("--suite-file"), "{suite}");
        assert!(parse(&["--rounds", "0"]).is_err());
        assert!(parse(&["--batches", "64,x"]).is_err());
        assert!(parse(&["--models", ","]).is_err());
        assert!(parse(&["--worker", "conv"]).is_err());
    }
}
