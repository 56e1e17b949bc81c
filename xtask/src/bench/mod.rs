//! `cargo xtask bench`: the convolution layer suite timed on this machine and set against the
//! machine's measured limits (FMA peak, sgemm roofline).

mod machine;
mod peak;
mod report;
mod suite;
mod timing;

use anyhow::{Context, Result, bail};
use ganglion_im2col_conv::{
    ConvWorkspace, conv2d_backward_data, conv2d_backward_weight, conv2d_forward,
};
use ganglion_tensor::Rng;
use machine::Isa;
use rayon::ThreadPool;
use report::{Limits, Machine, Pass, Row};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use suite::{Layer, Suite};
use timing::Plan;

/// The usage text of `cargo xtask bench`.
pub const USAGE: &str = "\
usage: cargo xtask bench [--quick] [--layers NAME,..] [--threads N,..] [--json PATH] [--suite PATH]

Times forward, backward-data and backward-weight of every layer of the suite at each thread
count, after measuring this machine's FMA peak and sgemm roofline.

  --quick            one warm-up and two timed calls per cell (default: >= 5 calls, >= 0.3 s)
  --layers a,b       only these layers of the suite
  --threads 1,2      these thread counts instead of the suite's
  --json PATH        also write one JSON object per cell to PATH
  --suite PATH       the suite file (default: benches/conv_suite.toml)";

/// Parsed `cargo xtask bench` options.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchArgs {
    quick: bool,
    layers: Option<Vec<String>>,
    threads: Option<Vec<usize>>,
    json: Option<PathBuf>,
    suite: PathBuf,
}

impl BenchArgs {
    /// Parses the arguments after `bench`.
    ///
    /// # Errors
    /// On an unknown flag, a flag without its value or a thread count that is not a positive
    /// integer.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<BenchArgs> {
        let mut parsed = BenchArgs {
            quick: false,
            layers: None,
            threads: None,
            json: None,
            suite: crate::project_root().join("benches/conv_suite.toml"),
        };
        let mut args = args.into_iter();
        while let Some(flag) = args.next() {
            let mut value = || {
                args.next()
                    .with_context(|| format!("bench: `{flag}` needs a value\n\n{USAGE}"))
            };
            match flag.as_str() {
                "--quick" => parsed.quick = true,
                "--layers" => parsed.layers = Some(list(&value()?)),
                "--threads" => parsed.threads = Some(thread_counts(&value()?)?),
                "--json" => parsed.json = Some(value()?.into()),
                "--suite" => parsed.suite = value()?.into(),
                other => bail!("bench: unknown argument `{other}`\n\n{USAGE}"),
            }
        }
        Ok(parsed)
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

fn thread_counts(value: &str) -> Result<Vec<usize>> {
    let counts = list(value)
        .iter()
        .map(|s| s.parse::<usize>().ok().filter(|&t| t > 0))
        .collect::<Option<Vec<_>>>();
    match counts {
        Some(c) if !c.is_empty() => Ok(c),
        _ => bail!("bench: `--threads {value}`: expected positive integers separated by commas"),
    }
}

/// Runs the benchmark as `args` say, printing the table as cells finish.
///
/// # Errors
/// When the suite cannot be read, a filter names nothing, a thread pool cannot be built, or the
/// JSON file cannot be written.
pub fn run(args: &BenchArgs) -> Result<()> {
    let mut suite = Suite::load(&args.suite)?;
    suite.select_layers(args.layers.as_deref())?;
    let threads = args
        .threads
        .clone()
        .unwrap_or_else(|| suite.threads.clone());
    let plan = if args.quick { Plan::QUICK } else { Plan::FULL };
    let isa = Isa::selected()?;
    let machine = Machine {
        cpu: machine::cpu_model(),
        isa: isa.name(),
    };
    let mut json = match &args.json {
        Some(path) => {
            Some(BufWriter::new(File::create(path).with_context(|| {
                format!("cannot create {}", path.display())
            })?))
        }
        None => None,
    };

    println!("cpu: {}", machine.cpu);
    println!("isa: {}", machine.isa);
    let pools = threads
        .iter()
        .map(|&t| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(t)
                .build()
                .with_context(|| format!("cannot start a pool of {t} threads"))
        })
        .collect::<Result<Vec<ThreadPool>>>()?;
    let limits: Vec<Limits> = pools
        .iter()
        .map(|pool| Limits {
            threads: pool.current_num_threads(),
            fma_gflops: peak::fma_peak_gflops(pool, isa),
            sgemm_gflops: peak::sgemm_gflops(pool),
        })
        .collect();
    print!("{}", report::limits_table(&limits));
    println!();
    println!("{}", report::table_header());

    let mut rows = Vec::new();
    let mut workspace = ConvWorkspace::default();
    for layer in &suite.layers {
        let mut buffers = Buffers::new(layer)?;
        for pass in Pass::ALL {
            for (pool, limits) in pools.iter().zip(&limits) {
                let seconds =
                    pool.install(|| plan.median_seconds(|| buffers.call(pass, &mut workspace)));
                let row = Row::new(&layer.name, pass, limits, seconds, buffers.flops);
                println!("{}", report::table_row(&row));
                if let Some(out) = json.as_mut() {
                    writeln!(out, "{}", report::json_line(&row, &machine))?;
                }
                rows.push(row);
            }
        }
    }
    if let (Some(out), Some(path)) = (json.as_mut(), &args.json) {
        out.flush()
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("\nwrote {} JSON lines to {}", rows.len(), path.display());
    }
    Ok(())
}

/// One layer's preallocated tensors, reused by every timed call of its cells.
struct Buffers {
    shape: ganglion_im2col_conv::Conv2dShape,
    flops: f64,
    input: Vec<f32>,
    weight: Vec<f32>,
    output: Vec<f32>,
    grad_output: Vec<f32>,
    grad_input: Vec<f32>,
    grad_weight: Vec<f32>,
}

impl Buffers {
    fn new(layer: &Layer) -> Result<Buffers> {
        let shape = layer.shape()?;
        let mut rng = Rng::seed_from(0x5eed);
        let mut random =
            |len: usize| -> Vec<f32> { (0..len).map(|_| rng.uniform_range(-1.0, 1.0)).collect() };
        Ok(Buffers {
            flops: shape.flops(),
            input: random(shape.input_len()),
            weight: random(shape.weight_len()),
            output: random(shape.output_len()),
            grad_output: random(shape.output_len()),
            grad_input: random(shape.input_len()),
            grad_weight: random(shape.weight_len()),
            shape,
        })
    }

    /// One call of the pass; the kernels overwrite their outputs, so calls can repeat.
    fn call(&mut self, pass: Pass, ws: &mut ConvWorkspace) {
        let s = &self.shape;
        match pass {
            Pass::Forward => {
                conv2d_forward(s, &self.input, &self.weight, None, &mut self.output, ws)
            }
            Pass::BackwardData => {
                conv2d_backward_data(s, &self.grad_output, &self.weight, &mut self.grad_input, ws)
            }
            Pass::BackwardWeight => conv2d_backward_weight(
                s,
                &self.input,
                &self.grad_output,
                &mut self.grad_weight,
                None,
                ws,
            ),
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
        assert_eq!(a.layers.unwrap(), ["cifar.64", "lenet.c1"]);
        assert_eq!(a.threads.unwrap(), [2]);
        assert_eq!(a.json.unwrap(), PathBuf::from("x.jsonl"));
        assert!(a.suite.ends_with("benches/conv_suite.toml"));
        let d = parse(&[]).unwrap();
        assert!(!d.quick && d.layers.is_none() && d.threads.is_none() && d.json.is_none());
    }

    #[test]
    fn bad_flags_are_errors() {
        assert!(parse(&["--frobnicate"]).is_err());
        assert!(parse(&["--json"]).is_err());
        assert!(parse(&["--threads", "0"]).is_err());
        assert!(parse(&["--threads", "two"]).is_err());
        assert!(parse(&["--threads", ""]).is_err());
    }
}
