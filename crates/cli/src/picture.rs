//! Pictures for `visualize`: tensors normalised to pixels, tiles laid out in a grid with
//! separators and upscaled by whole pixels (nearest neighbour), and PNG files written
//! atomically.

use crate::atomic;
use anyhow::{Context, Result};
use image::{ImageFormat, Rgb, RgbImage};
use std::io::Cursor;
use std::path::Path;

/// Separator and border colour: a dark blue-grey that no grey tile shares.
pub const SEPARATOR: Rgb<u8> = Rgb([40, 70, 110]);

/// Separator width in output pixels.
pub const GAP: u32 = 2;

/// A small picture: `h x w` RGB pixels, row-major.
#[derive(Debug, Clone)]
pub struct Tile {
    /// Height in pixels.
    pub h: usize,
    /// Width in pixels.
    pub w: usize,
    /// `h * w` pixels.
    pub pixels: Vec<[u8; 3]>,
}

/// Maps `values` linearly from their own `[min, max]` onto `[0, 255]`; a constant (or
/// non-finite) range maps to 0, so a dead feature map shows black.
pub fn to_bytes(values: &[f32]) -> Vec<u8> {
    let (lo, hi) = values
        .iter()
        .filter(|v| v.is_finite())
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    let range = hi - lo;
    if !(range.is_finite() && range > 0.0) {
        return vec![0; values.len()];
    }
    values
        .iter()
        .map(|&v| {
            let t = ((v - lo) / range).clamp(0.0, 1.0);
            (t * 255.0).round() as u8
        })
        .collect()
}

/// Maps `values` onto a diverging scale around zero, scaled by their largest magnitude:
/// blue for negative, white for zero, red for positive, so a filter's sign pattern (an edge:
/// a red band beside a blue one) reads at a glance.
pub fn diverging(values: &[f32]) -> Vec<[u8; 3]> {
    let peak = values
        .iter()
        .filter(|v| v.is_finite())
        .fold(0.0f32, |m, v| m.max(v.abs()));
    let (neg, pos) = ([33.0, 102.0, 172.0], [178.0, 24.0, 43.0]);
    values
        .iter()
        .map(|&v| {
            let t = if peak > 0.0 && v.is_finite() {
                (v / peak).clamp(-1.0, 1.0)
            } else {
                0.0
            };
            let end = if t < 0.0 { neg } else { pos };
            let a = t.abs();
            end.map(|c: f32| (255.0 * (1.0 - a) + c * a).round() as u8)
        })
        .collect()
}

impl Tile {
    /// A grey tile from `h * w` bytes.
    pub fn grey(h: usize, w: usize, bytes: &[u8]) -> Self {
        Self {
            h,
            w,
            pixels: bytes.iter().map(|&b| [b, b, b]).collect(),
        }
    }

    /// A tile of ready pixels.
    pub fn pixels(h: usize, w: usize, pixels: Vec<[u8; 3]>) -> Self {
        Self { h, w, pixels }
    }

    /// A colour tile from three planar `h * w` channels (red, green, blue).
    pub fn rgb(h: usize, w: usize, planes: &[u8]) -> Self {
        let n = h * w;
        Self {
            h,
            w,
            pixels: (0..n)
                .map(|i| [planes[i], planes[n + i], planes[2 * n + i]])
                .collect(),
        }
    }
}

/// A whole-pixel scale that makes a side of `n` pixels about `target` pixels (1 to 32).
pub fn scale_for(n: usize, target: usize) -> u32 {
    target.div_ceil(n.max(1)).clamp(1, 32) as u32
}

/// `tiles` (all of the first tile's size) in rows of `cols`, each pixel drawn as a
/// `scale x scale` block, with [`GAP`]-pixel separators between tiles and around the grid.
pub fn grid(tiles: &[Tile], cols: usize, scale: u32) -> RgbImage {
    let cols = cols.clamp(1, tiles.len().max(1));
    let rows = tiles.len().div_ceil(cols).max(1);
    let (th, tw) = tiles.first().map_or((1, 1), |t| (t.h as u32, t.w as u32));
    let (cell_h, cell_w) = (th * scale, tw * scale);
    let width = cols as u32 * (cell_w + GAP) + GAP;
    let height = rows as u32 * (cell_h + GAP) + GAP;
    let mut img = RgbImage::from_pixel(width, height, SEPARATOR);
    for (i, tile) in tiles.iter().enumerate() {
        let x0 = GAP + (i % cols) as u32 * (cell_w + GAP);
        let y0 = GAP + (i / cols) as u32 * (cell_h + GAP);
        for y in 0..cell_h.min(tile.h as u32 * scale) {
            for x in 0..cell_w.min(tile.w as u32 * scale) {
                let p = tile.pixels[(y / scale) as usize * tile.w + (x / scale) as usize];
                img.put_pixel(x0 + x, y0 + y, Rgb(p));
            }
        }
    }
    img
}

/// Columns for `n` tiles in a near-square grid.
pub fn square_cols(n: usize) -> usize {
    (n as f64).sqrt().ceil().max(1.0) as usize
}

/// Writes `img` as a PNG file at `path`, atomically.
pub fn save_png(img: &RgbImage, path: &Path) -> Result<()> {
    let mut bytes = Vec::new();
    img.write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
        .with_context(|| format!("{}: cannot encode the PNG", path.display()))?;
    atomic::write(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_span_the_range_and_a_constant_is_black() {
        assert_eq!(to_bytes(&[-1.0, 0.0, 1.0]), [0, 128, 255]);
        assert_eq!(to_bytes(&[2.0, 2.0]), [0, 0]);
    }

    #[test]
    fn grid_places_scaled_tiles_between_separators() {
        let a = Tile::grey(1, 2, &[0, 255]);
        let b = Tile::grey(1, 2, &[255, 0]);
        let img = grid(&[a, b], 2, 3);
        // Two 6x3 cells with 2-pixel gaps around and between.
        assert_eq!(img.dimensions(), (2 * 6 + 3 * GAP, 3 + 2 * GAP));
        assert_eq!(img.get_pixel(0, 0), &SEPARATOR);
        assert_eq!(img.get_pixel(GAP, GAP).0, [0, 0, 0]);
        assert_eq!(img.get_pixel(GAP + 3, GAP + 2).0, [255, 255, 255]);
        let second = GAP + 6 + GAP;
        assert_eq!(img.get_pixel(second, GAP).0, [255, 255, 255]);
    }

    #[test]
    fn diverging_is_white_at_zero_and_saturated_at_the_peak() {
        let px = diverging(&[-2.0, 0.0, 1.0, 2.0]);
        assert_eq!(px[0], [33, 102, 172]);
        assert_eq!(px[1], [255, 255, 255]);
        assert_eq!(px[3], [178, 24, 43]);
        assert!(px[2][0] > px[3][0] && px[2][1] > px[3][1]);
    }

    #[test]
    fn rgb_tiles_interleave_planes() {
        let t = Tile::rgb(1, 2, &[1, 2, 3, 4, 5, 6]);
        assert_eq!(t.pixels, [[1, 3, 5], [2, 4, 6]]);
    }
}
