//! Training curves: loss and accuracy per epoch (train and test) from run directories'
//! `metrics.jsonl`, drawn as SVG. `train` writes `curves.svg` into its run directory after
//! every epoch; `ganglion plot` overlays several runs.

use crate::atomic;
use anyhow::{Context, Result, bail};
use clap::Args;
use plotters::prelude::*;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Overlay the training curves (loss and accuracy per epoch, train and test) of run
/// directories in one SVG file.
#[derive(Debug, Args)]
pub struct PlotArgs {
    /// Run directories written by `ganglion train` (or their metrics.jsonl files).
    #[arg(required = true)]
    pub runs: Vec<PathBuf>,
    /// The SVG file to write.
    #[arg(long, default_value = "curves.svg")]
    pub out: PathBuf,
}

/// The fields of a `metrics.jsonl` record the curves use.
#[derive(Debug, Clone, Deserialize)]
struct Epoch {
    epoch: usize,
    train_loss: f64,
    train_accuracy: f64,
    test_loss: f64,
    test_accuracy: f64,
}

/// One run's records with its legend label.
#[derive(Debug, Clone)]
struct Run {
    label: String,
    epochs: Vec<Epoch>,
}

/// Run colours: readable on white and apart from each other.
const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(23, 190, 207),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
];

const SIZE: (u32, u32) = (1100, 460);

fn metrics_path(run: &Path) -> PathBuf {
    if run.is_dir() {
        run.join("metrics.jsonl")
    } else {
        run.to_path_buf()
    }
}

fn read_run(path: &Path, label: String) -> Result<Run> {
    let file = metrics_path(path);
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("{}: cannot read the run's metrics", file.display()))?;
    let epochs = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str::<Epoch>(l)
                .with_context(|| format!("{} line {}: not an epoch record", file.display(), i + 1))
        })
        .collect::<Result<Vec<_>>>()?;
    if epochs.is_empty() {
        bail!("{}: no epochs recorded yet", file.display());
    }
    Ok(Run { label, epochs })
}

/// Which curve of a run a panel draws.
#[derive(Clone, Copy)]
enum Metric {
    Loss,
    Accuracy,
}

impl Metric {
    fn values(self, e: &Epoch) -> (f64, f64) {
        match self {
            Self::Loss => (e.train_loss, e.test_loss),
            Self::Accuracy => (100.0 * e.train_accuracy, 100.0 * e.test_accuracy),
        }
    }

    fn range(self, runs: &[Run]) -> std::ops::Range<f64> {
        let all = runs.iter().flat_map(|r| &r.epochs).flat_map(|e| {
            let (a, b) = self.values(e);
            [a, b]
        });
        let finite: Vec<f64> = all.filter(|v| v.is_finite()).collect();
        let hi = finite.iter().copied().fold(0.0, f64::max);
        let lo = finite.iter().copied().fold(f64::INFINITY, f64::min);
        match self {
            Self::Loss => 0.0..if hi > 0.0 { hi * 1.1 } else { 1.0 },
            Self::Accuracy => {
                let lo = if lo.is_finite() { lo } else { 0.0 };
                (((lo - 2.0) / 10.0).floor() * 10.0).clamp(0.0, 90.0)..100.0
            }
        }
    }
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

fn panel(area: &Area<'_>, runs: &[Run], metric: Metric) -> Result<()> {
    let last = runs
        .iter()
        .flat_map(|r| r.epochs.iter().map(|e| e.epoch))
        .max()
        .unwrap_or(1)
        .max(2) as i32;
    let (title, y_desc, legend_at) = match metric {
        Metric::Loss => ("loss", "cross-entropy", SeriesLabelPosition::UpperRight),
        Metric::Accuracy => ("accuracy", "accuracy (%)", SeriesLabelPosition::LowerRight),
    };
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(1..last, metric.range(runs))?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(y_desc)
        .x_labels((last as usize).min(12))
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 15))
        .max_light_lines(1)
        .light_line_style(RGBColor(238, 238, 238))
        .draw()?;
    for (k, run) in runs.iter().enumerate() {
        // One run: train and test in two colours. Several: a colour per run, the line's
        // dashes telling train from test.
        let (colour, test_colour, prefix) = if runs.len() > 1 {
            let c = PALETTE[k % PALETTE.len()];
            (c, c, format!("{} ", run.label))
        } else {
            (PALETTE[0], PALETTE[1], String::new())
        };
        let train: Vec<(i32, f64)> = run
            .epochs
            .iter()
            .map(|e| (e.epoch as i32, metric.values(e).0))
            .collect();
        let test: Vec<(i32, f64)> = run
            .epochs
            .iter()
            .map(|e| (e.epoch as i32, metric.values(e).1))
            .collect();
        let solid = colour.stroke_width(2);
        chart
            .draw_series(LineSeries::new(train.iter().copied(), solid))?
            .label(format!("{prefix}train"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], solid));
        chart.draw_series(train.iter().map(|&p| Circle::new(p, 3, colour.filled())))?;
        let dashed = test_colour.stroke_width(2);
        chart
            .draw_series(DashedLineSeries::new(test.iter().copied(), 7, 4, dashed))?
            .label(format!("{prefix}test"))
            .legend(move |(x, y)| {
                EmptyElement::at((x, y))
                    + PathElement::new(vec![(0, 0), (8, 0)], dashed)
                    + PathElement::new(vec![(14, 0), (22, 0)], dashed)
            });
        chart.draw_series(
            test.iter()
                .map(|&p| TriangleMarker::new(p, 4, test_colour.filled())),
        )?;
    }
    chart
        .configure_series_labels()
        .position(legend_at)
        .label_font(("sans-serif", 14))
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(180, 180, 180))
        .draw()?;
    Ok(())
}

/// The curves of `runs` side by side (loss left, accuracy right) as an SVG document.
fn render(runs: &[Run]) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE)?;
        let title = runs
            .iter()
            .map(|r| r.label.as_str())
            .collect::<Vec<_>>()
            .join(" vs ");
        let root = root.titled(&title, ("sans-serif", 24))?;
        let (left, right) = root.split_horizontally(SIZE.0 / 2);
        panel(&left, runs, Metric::Loss)?;
        panel(&right, runs, Metric::Accuracy)?;
        root.present()?;
    }
    Ok(svg)
}

/// The legend label of a run: its directory's name.
fn label(path: &Path) -> String {
    let dir = if path.is_dir() {
        path
    } else {
        path.parent().unwrap_or(path)
    };
    dir.file_name().map_or_else(
        || dir.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Writes `curves.svg` into the run directory `run` from its `metrics.jsonl`.
pub fn write_curves(run: &Path) -> Result<()> {
    let data = read_run(run, label(run))?;
    let svg = render(&[data])?;
    atomic::write(&run.join("curves.svg"), svg.as_bytes())
}

/// Runs `ganglion plot`.
pub fn run(args: &PlotArgs) -> Result<ExitCode> {
    let names: Vec<String> = args.runs.iter().map(|p| label(p)).collect();
    // Runs with the same directory name in different places are told apart by their paths.
    let labels = names.iter().zip(&args.runs).map(|(n, p)| {
        if names.iter().filter(|m| *m == n).count() > 1 {
            p.display().to_string()
        } else {
            n.clone()
        }
    });
    let runs = args
        .runs
        .iter()
        .zip(labels)
        .map(|(p, l)| read_run(p, l))
        .collect::<Result<Vec<_>>>()?;
    let svg = render(&runs)?;
    atomic::write(&args.out, svg.as_bytes())?;
    let epochs: usize = runs.iter().map(|r| r.epochs.len()).sum();
    outln!(
        "{} runs, {epochs} epochs -> {}",
        runs.len(),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}
