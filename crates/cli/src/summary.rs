//! `ganglion summary`: a model layer by layer (shapes, parameters, multiply-accumulates,
//! receptive fields) and the lecture's fully connected versus convolutional comparison.

use crate::weights;
use anyhow::{Context, Result, bail};
use clap::Args;
use ganglion::models::summary::{dims, grouped};
use ganglion::models::{self, Footprint, Module, Summary};
use ganglion::tensor::Rng;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::ExitCode;

/// Show a model layer by layer: output shape, parameters, multiply-accumulates (MACs),
/// receptive field (RF: the input window one unit sees) and jump (input pixels between
/// neighbouring units), with totals and activation memory.
#[derive(Debug, Args)]
pub struct SummaryArgs {
    /// Model from the zoo: lenet5, mnistnet, allconv, resnet20 [default: lenet5].
    #[arg(long)]
    pub model: Option<String>,
    /// Summarise the model of a weights file instead (its architecture from the file, or
    /// --model for files that do not name one).
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Shape of one input image, CxHxW [default: the model's own].
    #[arg(long, value_name = "CxHxW")]
    pub input: Option<String>,
    /// Batch size for the activation memory of a batch.
    #[arg(long, default_value_t = models::summary::DEFAULT_BATCH_SIZE)]
    pub batch: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Compare a fully connected first layer on an input of this shape with the model's first
    /// convolution, instead of summarising.
    #[arg(long, value_name = "CxHxW")]
    pub compare_dense: Option<String>,
    /// Neurons of the fully connected layer for --compare-dense [default: 1000].
    #[arg(long)]
    pub hidden: Option<usize>,
}

/// Parses `3x32x32` (any number of positive sizes).
pub fn parse_shape(text: &str, flag: &str) -> Result<Vec<usize>> {
    let shape: Vec<usize> = text
        .split(['x', 'X'])
        .map(|d| d.trim().parse::<usize>().ok().filter(|&v| v > 0))
        .collect::<Option<_>>()
        .with_context(|| {
            format!("{flag} {text:?}: expected positive sizes joined by x, like 3x32x32")
        })?;
    Ok(shape)
}

/// The model of the weights file `weights` (its architecture `model` when the file does not
/// name one), else a fresh zoo model `model` (default `lenet5`), in evaluation mode.
pub fn model_from(
    model: Option<&str>,
    weights: Option<&std::path::Path>,
) -> Result<Box<dyn Module>> {
    match weights {
        Some(path) => Ok(weights::load(path, model)?.model),
        None => {
            let model = model.unwrap_or("lenet5");
            let mut m = models::by_name(model, &mut Rng::seed_from(0)).map_err(|_| {
                anyhow::anyhow!(
                    "unknown model `{model}`; the zoo has: {}",
                    models::ZOO.join(", ")
                )
            })?;
            m.set_training(false);
            Ok(m)
        }
    }
}

/// The input shape from `--input`, else the model's own.
pub fn input_shape(model: &dyn Module, input: Option<&str>) -> Result<Vec<usize>> {
    match input {
        Some(text) => parse_shape(text, "--input"),
        None => model
            .input_shape()
            .map(<[usize]>::to_vec)
            .context("the model does not say its input shape; give one with --input CxHxW"),
    }
}

/// The summary as JSON: `layers` (one object per row) and the totals.
pub fn to_json(s: &Summary) -> Value {
    let layers: Vec<Value> = s
        .layers
        .iter()
        .map(|l| {
            json!({
                "name": l.name,
                "type": l.kind,
                "depth": l.depth,
                "leaf": l.is_leaf,
                "output_shape": l.output_shape,
                "params": l.params,
                "macs": l.macs,
                // The larger side; the two sides differ only for non-square windows.
                "receptive_field": l.receptive_field[0].max(l.receptive_field[1]),
                "jump": l.jump[0].max(l.jump[1]),
                "receptive_field_hw": l.receptive_field,
                "jump_hw": l.jump,
                "field_start": l.start,
            })
        })
        .collect();
    json!({
        "model": s.model,
        "input_shape": s.input_shape,
        "output_shape": s.output_shape,
        "layers": layers,
        "total_params": s.total_params,
        "trainable_params": s.trainable_params,
        "buffer_elements": s.buffer_elements,
        "total_macs": s.total_macs,
        "param_bytes": s.param_bytes(),
        "input_bytes": s.input_bytes(),
        "activation_bytes": s.activation_bytes(),
        "batch_size": s.batch_size,
        "batch_activation_bytes": s.batch_activation_bytes(),
    })
}

/// The first convolution of a summarised model: name, filters, kernel, padding, stride,
/// dilation, weights per input channel of one filter, and whether it has a bias.
struct FirstConv {
    name: String,
    filters: usize,
    kernel: [usize; 2],
    padding: [usize; 2],
    stride: [usize; 2],
    dilation: [usize; 2],
    groups: usize,
    bias: bool,
}

fn first_conv(model: &dyn Module, s: &Summary) -> Result<FirstConv> {
    let row = s
        .layers
        .iter()
        .find(|l| l.kind == "Conv2d")
        .with_context(|| format!("model `{}` has no convolution", s.model))?;
    let Footprint::Window {
        kernel,
        stride,
        padding,
        dilation,
    } = row.footprint
    else {
        bail!("{}: a convolution without a window", row.name);
    };
    let shapes = model.state_shapes();
    let find = |suffix: &str| {
        let key = format!("{}.{suffix}", row.name);
        shapes
            .iter()
            .find(|(n, _)| *n == key)
            .map(|(_, s)| s.clone())
    };
    let weight = find("weight").with_context(|| format!("{}: no weight", row.name))?;
    let in_channels = s.input_shape.first().copied().unwrap_or(1);
    Ok(FirstConv {
        name: row.name.clone(),
        filters: weight[0],
        kernel,
        padding,
        stride,
        dilation,
        groups: (in_channels / weight[1].max(1)).max(1),
        bias: find("bias").is_some(),
    })
}

fn compare_dense(args: &SummaryArgs, text: &str) -> Result<ExitCode> {
    let hidden = args.hidden.unwrap_or(1000);
    if hidden == 0 {
        bail!("--hidden must be at least 1");
    }
    let shape = parse_shape(text, "--compare-dense")?;
    let &[c, h, w] = shape.as_slice() else {
        bail!("--compare-dense {text:?}: expected an image shape CxHxW, like 3x100x100");
    };
    let model = model_from(args.model.as_deref(), args.weights.as_deref())?;
    let own = input_shape(model.as_ref(), None)?;
    let s = model.summary(&own)?;
    let conv = first_conv(model.as_ref(), &s)?;
    if c % conv.groups != 0 {
        bail!(
            "{}: {} groups cannot split a {c}-channel input",
            conv.name,
            conv.groups
        );
    }
    let inputs = (c * h * w) as u64;
    let dense_weights = inputs * hidden as u64;
    let dense_params = dense_weights + hidden as u64;
    let taps = (c / conv.groups * conv.kernel[0] * conv.kernel[1]) as u64;
    let conv_weights = conv.filters as u64 * taps;
    let conv_biases = if conv.bias { conv.filters as u64 } else { 0 };
    let conv_params = conv_weights + conv_biases;
    let out = |n: usize, a: usize| {
        let span = conv.dilation[a] * (conv.kernel[a] - 1) + 1;
        (n + 2 * conv.padding[a])
            .checked_sub(span)
            .map(|v| v / conv.stride[a] + 1)
    };
    let (Some(oh), Some(ow)) = (out(h, 0), out(w, 1)) else {
        bail!(
            "--compare-dense {text}: {} ({}x{} kernel) does not fit a {h}x{w} image",
            conv.name,
            conv.kernel[0],
            conv.kernel[1]
        );
    };
    let conv_outputs = (conv.filters * oh * ow) as u64;
    let conv_macs = conv_outputs * taps;
    let ratio = dense_params as f64 / conv_params as f64;
    if args.json {
        let v = json!({
            "input_shape": shape,
            "hidden": hidden,
            "dense": {
                "weights": dense_weights,
                "biases": hidden,
                "params": dense_params,
                "macs": dense_weights,
            },
            "conv": {
                "model": s.model,
                "layer": conv.name,
                "filters": conv.filters,
                "kernel": conv.kernel,
                "in_channels": c,
                "weights": conv_weights,
                "biases": conv_biases,
                "params": conv_params,
                "output_shape": [conv.filters, oh, ow],
                "macs": conv_macs,
            },
            "ratio": ratio,
        });
        outln!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    let g = |v: u64| grouped(v);
    outln!(
        "fully connected first layer: {} neurons on a {} input",
        g(hidden as u64),
        dims(&shape)
    );
    outln!(
        "  weights  {c} x {h} x {w} inputs x {} neurons = {}",
        g(hidden as u64),
        g(dense_weights)
    );
    outln!("  biases   {}", g(hidden as u64));
    outln!("  total    {} parameters", g(dense_params));
    outln!(
        "  MACs     {} (every neuron sees all {} input values)",
        g(dense_weights),
        g(inputs)
    );
    outln!(
        "convolutional first layer: {}'s {} ({} filters of {}) on the same {c} channels",
        s.model,
        conv.name,
        conv.filters,
        dims(&conv.kernel)
    );
    outln!(
        "  weights  {} filters x {} x {} x {} = {}",
        conv.filters,
        c / conv.groups,
        conv.kernel[0],
        conv.kernel[1],
        g(conv_weights)
    );
    outln!("  biases   {}", g(conv_biases));
    outln!(
        "  total    {} parameters, shared by every position: the same for any image size",
        g(conv_params)
    );
    outln!(
        "  output   {}x{oh}x{ow} = {} values, {} MACs",
        conv.filters,
        g(conv_outputs),
        g(conv_macs)
    );
    outln!(
        "the fully connected layer has {}x the parameters of the convolution",
        g(ratio.round() as u64)
    );
    Ok(ExitCode::SUCCESS)
}

/// Runs `ganglion summary`.
pub fn run(args: &SummaryArgs) -> Result<ExitCode> {
    if args.batch == 0 {
        bail!("--batch must be at least 1");
    }
    if let Some(text) = &args.compare_dense {
        return compare_dense(args, text);
    }
    if args.hidden.is_some() {
        bail!("--hidden sizes the layer of --compare-dense; give --compare-dense CxHxW too");
    }
    let model = model_from(args.model.as_deref(), args.weights.as_deref())?;
    let input = input_shape(model.as_ref(), args.input.as_deref())?;
    let s = model
        .summary(&input)
        .with_context(|| format!("model `{}` on a {} input", model.kind(), dims(&input)))?
        .with_batch_size(args.batch);
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&to_json(&s))?);
    } else {
        outln!("{s}");
    }
    Ok(ExitCode::SUCCESS)
}
