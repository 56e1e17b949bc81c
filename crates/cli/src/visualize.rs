//! `ganglion visualize`: PNG pictures of what a network holds and computes: the filters of a
//! convolution, the feature maps of every layer for one image, and a unit's receptive field.

use crate::picture::{self, Tile};
use crate::summary::{input_shape, model_from};
use crate::{datasets, field, predict, weights};
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use ganglion::autograd::Graph;
use ganglion::models::Module;
use ganglion::models::summary::{dims, side};
use std::collections::HashSet;
use std::path::PathBuf;
use std::process::ExitCode;

/// Draw filters, feature maps or receptive fields as PNG files.
#[derive(Debug, Args)]
pub struct VisualizeArgs {
    /// What to draw.
    #[command(subcommand)]
    pub what: Visualize,
}

/// The pictures `visualize` draws.
#[derive(Debug, Subcommand)]
pub enum Visualize {
    /// The filters of a convolution (default: the first) as a grid, each normalised on its
    /// own: red positive, blue negative, white zero; RGB (from its own range) when the layer
    /// reads 3 channels.
    Filters(FiltersArgs),
    /// One PNG per layer with an image's feature maps as a grid (each map normalised).
    Activations(ActivationsArgs),
    /// The input region one unit of a layer sees, on an input-sized canvas: red by how many
    /// paths lead from a pixel to the unit, the field's outline in blue, dots at the centres
    /// of the layer's units (the jump apart).
    ReceptiveField(ReceptiveFieldArgs),
}

/// Arguments of `visualize filters`.
#[derive(Debug, Args)]
pub struct FiltersArgs {
    /// The weights file (model.safetensors of a run).
    #[arg(long)]
    pub weights: PathBuf,
    /// Zoo architecture, for weights files that do not name theirs.
    #[arg(long)]
    pub model: Option<String>,
    /// The convolution to draw, by name (`conv2`, `layer1.0.conv1`) [default: the first].
    #[arg(long)]
    pub layer: Option<String>,
    /// Output pixels per filter pixel [default: about 60 pixels per filter].
    #[arg(long)]
    pub scale: Option<u32>,
    /// The PNG file to write.
    #[arg(long, default_value = "filters.png")]
    pub out: PathBuf,
}

/// Arguments of `visualize activations`.
#[derive(Debug, Args)]
pub struct ActivationsArgs {
    /// The weights file (model.safetensors of a run).
    #[arg(long)]
    pub weights: PathBuf,
    /// Zoo architecture, for weights files that do not name theirs.
    #[arg(long)]
    pub model: Option<String>,
    /// Invert grey levels (dark ink on light paper -> light on dark, as MNIST is).
    #[arg(long)]
    pub invert: bool,
    /// Directory for the PNG files (00-input.png, 01-conv1.png, ...).
    #[arg(long, default_value = "activations")]
    pub out_dir: PathBuf,
    /// The image file (PNG or JPEG), resized to the model's input.
    pub image: PathBuf,
}

/// Arguments of `visualize receptive-field`.
#[derive(Debug, Args)]
pub struct ReceptiveFieldArgs {
    /// Model from the zoo [default: lenet5].
    #[arg(long)]
    pub model: Option<String>,
    /// A weights file whose architecture to use instead.
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// The layer, as `ganglion summary` names it (`conv2`, `layer2.0`).
    #[arg(long)]
    pub layer: String,
    /// Input shape CxHxW [default: the model's own].
    #[arg(long, value_name = "CxHxW")]
    pub input: Option<String>,
    /// The PNG file to write.
    #[arg(long, default_value = "receptive-field.png")]
    pub out: PathBuf,
}

/// Dotted names of every `Conv2d` in `m`, in order.
fn convolutions(m: &dyn Module, prefix: &str, out: &mut Vec<String>) {
    if m.kind() == "Conv2d" {
        out.push(prefix.to_string());
    }
    for (name, child) in m.children() {
        convolutions(child, &ganglion::models::join(prefix, name), out);
    }
}

fn filters(args: &FiltersArgs) -> Result<ExitCode> {
    let loaded = weights::load(&args.weights, args.model.as_deref())?;
    let model = loaded.model.as_ref();
    let mut convs = Vec::new();
    convolutions(model, "", &mut convs);
    let name = match &args.layer {
        Some(l) if convs.contains(l) => l.clone(),
        Some(l) => bail!(
            "--layer {l}: not a convolution of `{}`; its convolutions are {}",
            model.kind(),
            convs.join(", ")
        ),
        None => convs
            .first()
            .cloned()
            .with_context(|| format!("model `{}` has no convolution", model.kind()))?,
    };
    let key = format!("{name}.weight");
    let weight = model
        .named_parameters()
        .into_iter()
        .find(|(n, _)| *n == key)
        .map(|(_, p)| p.value())
        .with_context(|| format!("{name}: no weight"))?;
    let &[o, i, kh, kw] = weight.shape() else {
        bail!("{key}: expected an OIHW weight, got {:?}", weight.shape());
    };
    let plane = kh * kw;
    let mut tiles = Vec::new();
    for f in 0..o {
        // One normalisation per filter, over all its channels, so its channels compare.
        let values = &weight.data()[f * i * plane..(f + 1) * i * plane];
        if i == 3 {
            tiles.push(Tile::rgb(kh, kw, &picture::to_bytes(values)));
        } else {
            let px = picture::diverging(values);
            tiles.extend(px.chunks(plane).map(|c| Tile::pixels(kh, kw, c.to_vec())));
        }
    }
    // A row per filter when its channels are drawn apart.
    let cols = if i == 1 || i == 3 {
        picture::square_cols(o)
    } else {
        i
    };
    let scale = args
        .scale
        .unwrap_or_else(|| picture::scale_for(kh.max(kw), 60))
        .clamp(1, 64);
    let img = picture::grid(&tiles, cols, scale);
    picture::save_png(&img, &args.out)?;
    let layout = match i {
        1 => "red positive, blue negative, white zero".to_string(),
        3 => "RGB, each filter from its own range".to_string(),
        _ => format!(
            "a row per filter, a column per input channel ({i}); red positive, blue negative"
        ),
    };
    outln!(
        "{name} of {}: {o} filters of {i}x{kh}x{kw}, {layout}, x{scale} -> {} ({}x{})",
        model.kind(),
        args.out.display(),
        img.width(),
        img.height()
    );
    Ok(ExitCode::SUCCESS)
}

fn activations(args: &ActivationsArgs) -> Result<ExitCode> {
    let loaded = weights::load(&args.weights, args.model.as_deref())?;
    let model = loaded.model.as_ref();
    let shape: [usize; 3] = match model.input_shape() {
        Some(&[c, h, w]) => [c, h, w],
        _ => bail!(
            "{}: the file does not say the model's input shape; name the architecture with --model",
            args.weights.display()
        ),
    };
    let [c, h, w] = shape;
    let pixels = predict::read_image(&args.image, shape, args.invert)?;
    let normalize = weights::normalize(&loaded.meta, c)?;
    let input = normalize.to_tensor(&pixels, &[1, c, h, w])?;
    std::fs::create_dir_all(&args.out_dir)
        .with_context(|| format!("--out-dir {}: cannot create", args.out_dir.display()))?;
    let input_tile = if c == 3 {
        Tile::rgb(h, w, &pixels)
    } else {
        Tile::grey(h, w, &pixels[..h * w])
    };
    let first = args.out_dir.join("00-input.png");
    let scale = picture::scale_for(h.max(w), 56);
    picture::save_png(&picture::grid(&[input_tile], 1, scale), &first)?;
    outln!("{}  input {}", first.display(), datasets::dims(&shape));

    let mut g = Graph::inference();
    let x = g.input(input);
    let mut seen = HashSet::new();
    let mut maps = Vec::new();
    let y = model.forward_traced(&mut g, x, "", &mut |e| {
        // Feature maps only, each once: a container repeats its last child's output.
        if !e.name.is_empty() && e.value.rank() == 4 && seen.insert(e.var.index()) {
            maps.push((e.name.to_string(), e.kind.to_string(), e.value.clone()));
        }
    })?;
    for (n, (name, kind, t)) in maps.iter().enumerate() {
        let &[_, mc, mh, mw] = t.shape() else {
            continue;
        };
        let plane = mh * mw;
        let tiles: Vec<Tile> = t
            .data()
            .chunks(plane)
            .take(mc)
            .map(|m| Tile::grey(mh, mw, &picture::to_bytes(m)))
            .collect();
        let img = picture::grid(
            &tiles,
            picture::square_cols(mc),
            picture::scale_for(mh.max(mw), 56),
        );
        let path = args.out_dir.join(format!("{:02}-{name}.png", n + 1));
        picture::save_png(&img, &path)?;
        outln!("{}  {kind} {mc}x{mh}x{mw}", path.display());
    }
    let probs = g.softmax(y)?;
    let probs = g.value(probs).data();
    if let Some((class, p)) = probs
        .iter()
        .copied()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(&b.1))
    {
        let label = loaded
            .meta
            .classes
            .as_ref()
            .and_then(|c| c.get(class).cloned())
            .unwrap_or_else(|| class.to_string());
        outln!("prediction: {label} ({:.1}%)", 100.0 * p);
    }
    Ok(ExitCode::SUCCESS)
}

fn receptive_field(args: &ReceptiveFieldArgs) -> Result<ExitCode> {
    let model = model_from(args.model.as_deref(), args.weights.as_deref())?;
    let input = input_shape(model.as_ref(), args.input.as_deref())?;
    let &[_, h, w] = input.as_slice() else {
        bail!("--input {}: expected an image shape CxHxW", dims(&input));
    };
    let s = model.summary(&input)?;
    let f = field::unit_field(&s, &args.layer)?;
    let row = s
        .layer(&args.layer)
        .context("the layer vanished from the summary")?;
    let scale = picture::scale_for(h.max(w), 320);
    let img = field::draw(&f, [h, w], row.jump, scale);
    picture::save_png(&img, &args.out)?;
    let last = [
        f.first[0] + f.size[0] as i64 - 1,
        f.first[1] + f.size[1] as i64 - 1,
    ];
    outln!(
        "{} ({}) of {} on a {} input: receptive field {}, jump {}",
        row.name,
        row.kind,
        s.model,
        dims(&input),
        side(row.receptive_field),
        side(row.jump)
    );
    outln!(
        "unit ({}, {}) of its {}x{} map sees input rows {}..={}, columns {}..={}{}",
        f.unit[0],
        f.unit[1],
        f.map[0],
        f.map[1],
        f.first[0],
        last[0],
        f.first[1],
        last[1],
        if f.first.iter().any(|&v| v < 0) || last[0] >= h as i64 || last[1] >= w as i64 {
            " (partly padding)"
        } else {
            ""
        }
    );
    outln!(
        "-> {} ({}x{}, {scale} pixels per input pixel)",
        args.out.display(),
        img.width(),
        img.height()
    );
    Ok(ExitCode::SUCCESS)
}

/// Runs `ganglion visualize`.
pub fn run(args: &VisualizeArgs) -> Result<ExitCode> {
    match &args.what {
        Visualize::Filters(a) => filters(a),
        Visualize::Activations(a) => activations(a),
        Visualize::ReceptiveField(a) => receptive_field(a),
    }
}
