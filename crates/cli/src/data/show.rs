//! `ganglion data show`: a PNG grid of sample images, each with its label underneath and, with
//! `--augment`, the same image after the training augmentation beside it.

use super::Source;
use super::font::{self, GLYPH_H};
use crate::picture;
use anyhow::{Result, bail};
use clap::{Args, ValueEnum};
use ganglion::data::{Augment, Dataset};
use ganglion::tensor::Rng;
use image::{Rgb, RgbImage};
use std::path::PathBuf;
use std::process::ExitCode;

/// Background between cells.
const BACKGROUND: Rgb<u8> = Rgb([40, 70, 110]);
/// The label strip under each cell.
const STRIP: Rgb<u8> = Rgb([24, 24, 24]);
/// Label text.
const INK: Rgb<u8> = Rgb([240, 240, 240]);
/// Pixels between cells, and between an image and its augmented copy.
const GAP: u32 = 4;

/// Which split to sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SplitKind {
    Train,
    Test,
}

/// A grid of labelled samples.
#[derive(Debug, Args)]
pub struct ShowArgs {
    #[command(flatten)]
    source: Source,
    /// How many samples (chosen at random by --seed, then grouped by class).
    #[arg(long, default_value_t = 64)]
    n: usize,
    /// Draw each sample's training augmentation (`ganglion train --augment`, epoch 1 with the
    /// same --seed) beside it.
    #[arg(long)]
    augment: bool,
    /// Which split to sample.
    #[arg(long, value_enum, default_value = "train")]
    split: SplitKind,
    /// The PNG file to write.
    #[arg(long, default_value = "samples.png")]
    out: PathBuf,
}

/// The picture of one image: planar bytes `[c, h, w]` (grey or RGB) scaled by `scale`.
fn blit(img: &mut RgbImage, x0: u32, y0: u32, bytes: &[u8], [c, h, w]: [usize; 3], scale: u32) {
    let plane = h * w;
    for y in 0..h as u32 * scale {
        for x in 0..w as u32 * scale {
            let i = (y / scale) as usize * w + (x / scale) as usize;
            let px = if c >= 3 {
                [bytes[i], bytes[plane + i], bytes[2 * plane + i]]
            } else {
                [bytes[i]; 3]
            };
            img.put_pixel(x0 + x, y0 + y, Rgb(px));
        }
    }
}

/// The samples to draw: `n` indices chosen by `seed`, grouped by label.
fn pick(data: &Dataset, n: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..data.len()).collect();
    Rng::seed_from(seed).fork(0x5A_4D_50).shuffle(&mut order);
    order.truncate(n);
    order.sort_by_key(|&i| (data.label(i), i));
    order
}

/// Draws the grid: cells in rows of `cols`, each the image (and its augmented copy) over a
/// label strip.
pub(crate) fn render(
    data: &Dataset,
    picks: &[usize],
    augment: Option<(&Augment, u64)>,
) -> Result<RgbImage> {
    let shape = data.image_shape();
    let [_, h, w] = shape;
    let aug_shape = match augment {
        Some((a, _)) => Some(a.output_shape(shape)?),
        None => None,
    };
    let scale = picture::scale_for(h.max(w), 64);
    let (img_w, img_h) = (w as u32 * scale, h as u32 * scale);
    let aug_w = aug_shape.map_or(0, |[_, _, aw]| aw as u32 * scale + GAP);
    let aug_h = aug_shape.map_or(0, |[_, ah, _]| ah as u32 * scale);
    let cell_w = img_w + aug_w;
    let text_scale = if cell_w >= 96 { 2 } else { 1 };
    let strip_h = GLYPH_H * text_scale + 6;
    let cell_h = img_h.max(aug_h) + strip_h;
    let cols = picture::square_cols(picks.len()) as u32;
    let rows = (picks.len() as u32).div_ceil(cols).max(1);
    let mut img = RgbImage::from_pixel(
        cols * (cell_w + GAP) + GAP,
        rows * (cell_h + GAP) + GAP,
        BACKGROUND,
    );
    for (k, &i) in picks.iter().enumerate() {
        let x0 = GAP + (k as u32 % cols) * (cell_w + GAP);
        let y0 = GAP + (k as u32 / cols) * (cell_h + GAP);
        // The cell's own background joins an image, its augmented copy and its label.
        for y in y0..y0 + cell_h {
            for x in x0..x0 + cell_w {
                img.put_pixel(x, y, STRIP);
            }
        }
        blit(&mut img, x0, y0, data.image(i), shape, scale);
        if let (Some((a, seed)), Some(out_shape)) = (augment, aug_shape) {
            let mut rng = Augment::sample_rng(seed, 0, i);
            let bytes = a.apply(data.image(i), shape, &mut rng)?;
            blit(&mut img, x0 + img_w + GAP, y0, &bytes, out_shape, scale);
        }
        let strip_y = y0 + cell_h - strip_h;
        let label = data.label(i);
        let text = match data.class_names() {
            Some(names) if names[label] != label.to_string() => format!("{label} {}", names[label]),
            _ => label.to_string(),
        };
        let text = font::fit(&text, cell_w - 4, text_scale);
        font::draw_text(&mut img, x0 + 3, strip_y + 3, &text, text_scale, INK);
    }
    Ok(img)
}

/// Runs `ganglion data show`.
pub fn run(args: &ShowArgs) -> Result<ExitCode> {
    if args.n == 0 {
        bail!("--n must be at least 1");
    }
    let (kind, split) = args.source.load()?;
    let data = match args.split {
        SplitKind::Train => split.train,
        SplitKind::Test => split.test,
    };
    if data.is_empty() {
        bail!(
            "{}: the {:?} split holds no image",
            args.source.dir.display(),
            args.split
        );
    }
    let picks = pick(&data, args.n, args.source.seed);
    let augment = kind.augmentation(data.image_shape());
    let aug = args.augment.then_some((&augment, args.source.seed));
    let img = render(&data, &picks, aug)?;
    picture::save_png(&img, &args.out)?;
    outln!(
        "wrote {} {} samples of {} ({} classes{}) to {} ({}x{} pixels)",
        picks.len(),
        kind.name(),
        args.source.dir.display(),
        data.num_classes(),
        if args.augment {
            ", with their augmented versions"
        } else {
            ""
        },
        args.out.display(),
        img.width(),
        img.height()
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grid_has_a_cell_per_sample_with_its_pixels_and_a_label() {
        // Four 2x2 grey images of levels 0, 80, 160, 240, labels 0 1 0 1.
        let pixels: Vec<u8> = (0..4u8).flat_map(|k| [k * 80; 4]).collect();
        let data = Dataset::new(pixels, vec![0, 1, 0, 1], [1, 2, 2], 2)
            .unwrap()
            .with_class_names(vec!["cat".into(), "dog".into()])
            .unwrap();
        let picks = pick(&data, 10, 0);
        assert_eq!(picks, [0, 2, 1, 3]);
        let img = render(&data, &picks, None).unwrap();
        let scale = picture::scale_for(2, 64);
        // The first cell's image starts at (GAP, GAP) and is image 0 (black); the second
        // cell holds image 2.
        assert_eq!(img.get_pixel(GAP, GAP).0, [0, 0, 0]);
        let second = GAP + 2 * scale + GAP;
        assert_eq!(img.get_pixel(second + 1, GAP + 1).0, [160; 3]);
        // The strip under the first cell holds ink.
        let strip: Vec<&Rgb<u8>> = (GAP..GAP + 2 * scale)
            .flat_map(|x| (GAP + 2 * scale..GAP + 2 * scale + 20).map(move |y| (x, y)))
            .map(|(x, y)| img.get_pixel(x, y))
            .collect();
        assert!(strip.contains(&&INK) && strip.contains(&&STRIP));

        let aug = Augment::none().with_hflip();
        let wide = render(&data, &picks, Some((&aug, 1))).unwrap();
        assert!(wide.width() > img.width());
    }
}
