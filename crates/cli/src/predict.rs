//! `ganglion predict`: the top classes of saved weights for image files.

use crate::{datasets, weights};
use anyhow::{Result, bail};
use clap::Args;
use ganglion::autograd::Graph;
use ganglion::tensor::Tensor;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Classify PNG or JPEG images with saved weights.
///
/// Each image is converted to the model's channels (grey or RGB), resized to its input size and
/// normalised as in training. MNIST models expect white digits on black: pass --invert for
/// dark ink on a light background.
#[derive(Debug, Args)]
pub struct PredictArgs {
    /// The weights file (model.safetensors of a run, or a PyTorch state dict with --model).
    #[arg(long)]
    pub weights: PathBuf,
    /// Zoo architecture, for weights files that do not name theirs.
    #[arg(long)]
    pub model: Option<String>,
    /// How many classes to print per image.
    #[arg(long, default_value_t = 5)]
    pub top: usize,
    /// Invert grey levels (dark ink on light paper -> light on dark, as MNIST is).
    #[arg(long)]
    pub invert: bool,
    /// Image files (PNG or JPEG).
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
}

/// Reads an image file as `c` planar channels of `h x w` bytes (grey or RGB, resized),
/// inverted when asked; shared with `visualize activations`. The file's size and the image's
/// declared dimensions are checked before anything large is allocated.
pub(crate) fn read_image(path: &Path, shape: [usize; 3], invert: bool) -> Result<Vec<u8>> {
    Ok(ganglion::data::read_image_file(
        path,
        shape,
        invert,
        &ganglion::data::DecodeLimits::default(),
    )?)
}

/// Runs `ganglion predict`.
pub fn run(args: &PredictArgs) -> Result<ExitCode> {
    if args.top == 0 {
        bail!("--top must be at least 1");
    }
    let loaded = weights::load(&args.weights, args.model.as_deref())?;
    let shape: [usize; 3] = match loaded.model.input_shape() {
        Some(&[c, h, w]) => [c, h, w],
        _ => bail!(
            "{}: the file does not say the model's input shape; name the architecture with --model",
            args.weights.display()
        ),
    };
    let normalize = weights::normalize(&loaded.meta, shape[0])?;
    let mut graph = Graph::inference();
    for path in &args.images {
        let pixels = read_image(path, shape, args.invert)?;
        let input = normalize.to_tensor(&pixels, &[1, shape[0], shape[1], shape[2]])?;
        graph.reset();
        let x = graph.input(input);
        let logits = loaded.model.forward(&mut graph, x)?;
        let probs = graph.softmax(logits)?;
        let probs: &Tensor = graph.value(probs);
        let mut ranked: Vec<(usize, f32)> = probs.data().iter().copied().enumerate().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        outln!("{} ({} input):", path.display(), datasets::dims(&shape));
        for (class, p) in ranked.iter().take(args.top) {
            let name = loaded
                .meta
                .classes
                .as_ref()
                .and_then(|c| c.get(*class).cloned())
                .unwrap_or_else(|| class.to_string());
            outln!("  {name:>12}  {:6.2}%", 100.0 * p);
        }
    }
    Ok(ExitCode::SUCCESS)
}
