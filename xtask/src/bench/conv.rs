//! `--suite conv`: this machine's limits (FMA peak, sgemm roofline), then forward,
//! backward-data and backward-weight of every layer of `benches/conv_suite.toml` at each
//! thread count, each cell set against PyTorch's time for it.

use super::JsonSink;
use super::machine::Isa;
use super::peak;
use super::peers::Peers;
use super::report::{self, Limits, Machine, Pass, Row};
use super::suite::{Layer, Suite};
use super::timing::Plan;
use anyhow::Result;
use ganglion_im2col_conv::{
    Conv2dShape, ConvWorkspace, conv2d_backward_data, conv2d_backward_weight, conv2d_forward,
};
use ganglion_tensor::Rng;

/// What the conv suite measured.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvResults {
    /// The machine's limits at each thread count.
    pub limits: Vec<Limits>,
    /// One cell per layer, pass and thread count, in suite order.
    pub rows: Vec<Row>,
    /// Interleaved rounds each cell's figure is the median of.
    pub rounds: usize,
}

/// Measures the limits and every cell of `suite` at each of `threads`, in `rounds`
/// interleaved rounds over the whole suite (each cell's figure is the median of its rounds'
/// medians, as PyTorch's figures are, so that a burst of load on a shared machine moves one
/// round of a cell, not the cell), printing the table as the last round finishes each cell
/// and writing a JSON line per cell to `json`.
///
/// # Errors
/// When a thread pool cannot be built, a layer's geometry is invalid or the JSON file cannot
/// be written.
#[allow(clippy::too_many_arguments)]
pub fn run(
    suite: &Suite,
    threads: &[usize],
    plan: Plan,
    rounds: usize,
    isa: Isa,
    machine: &Machine,
    peers: &Peers,
    mut json: Option<&mut JsonSink>,
) -> Result<ConvResults> {
    let rounds = rounds.max(1);
    let pools = threads
        .iter()
        .map(|&t| super::pool(t))
        .collect::<Result<Vec<_>>>()?;
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

    let mut buffers = suite
        .layers
        .iter()
        .map(Buffers::new)
        .collect::<Result<Vec<_>>>()?;
    let cells = suite.layers.len() * Pass::ALL.len() * pools.len();
    let mut seconds: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds); cells];
    let mut rows = Vec::new();
    let mut workspace = ConvWorkspace::default();
    for round in 0..rounds {
        let last = round + 1 == rounds;
        if last {
            println!("{}", report::table_header());
        } else {
            println!("round {}/{rounds}", round + 1);
        }
        let mut cell = 0;
        for (layer, buffers) in suite.layers.iter().zip(&mut buffers) {
            for pass in Pass::ALL {
                for (pool, limits) in pools.iter().zip(&limits) {
                    let s =
                        pool.install(|| plan.median_seconds(|| buffers.call(pass, &mut workspace)));
                    seconds[cell].push(s);
                    if last {
                        let median = super::timing::median(&mut seconds[cell]);
                        let peer_ms = peers.conv_ms(&layer.name, pass, limits.threads);
                        let row = Row::new(&layer.name, pass, limits, median, buffers.flops)
                            .with_peer(peer_ms, buffers.flops);
                        println!("{}", report::table_row(&row));
                        if let Some(out) = json.as_deref_mut() {
                            out.line(&report::json_line(&row, machine))?;
                        }
                        rows.push(row);
                    }
                    cell += 1;
                }
            }
        }
    }
    Ok(ConvResults {
        limits,
        rows,
        rounds,
    })
}

/// One layer's preallocated tensors, reused by every timed call of its cells.
struct Buffers {
    shape: Conv2dShape,
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
