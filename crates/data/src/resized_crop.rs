//! [`RandomResizedCrop`]: torchvision's `RandomResizedCrop` — a random region of random area
//! and aspect ratio, resampled to a fixed size with an antialiased bilinear (triangle) filter.

use crate::DataError;
use ganglion_tensor::Rng;

/// A random region covering a fraction `scale` of the image with aspect ratio (width / height)
/// in `ratio`, resized to `height x width`; torchvision's `RandomResizedCrop(size, scale,
/// ratio)`, whose defaults are `scale = [0.08, 1]` and `ratio = [3/4, 4/3]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RandomResizedCrop {
    /// Rows of the output.
    pub height: usize,
    /// Columns of the output.
    pub width: usize,
    /// Range of the region's area as a fraction of the image's, within `(0, 1]`.
    pub scale: [f32; 2],
    /// Range of the region's aspect ratio (width / height), positive.
    pub ratio: [f32; 2],
}

/// A region of an image: rows `top..top + height`, columns `left..left + width`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CropBox {
    /// First row.
    pub top: usize,
    /// First column.
    pub left: usize,
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
}

impl RandomResizedCrop {
    /// torchvision's defaults for a `size x size` output.
    pub fn new(size: usize) -> Self {
        Self {
            height: size,
            width: size,
            scale: [0.08, 1.0],
            ratio: [3.0 / 4.0, 4.0 / 3.0],
        }
    }

    /// Checks the sizes and ranges.
    ///
    /// # Errors
    /// [`DataError::Invalid`] for a zero output side, a scale range outside `(0, 1]` or
    /// reversed, or a ratio range that is not positive or reversed.
    pub fn validate(&self) -> Result<(), DataError> {
        let op = "RandomResizedCrop";
        let [s0, s1] = self.scale;
        let [r0, r1] = self.ratio;
        if self.height == 0 || self.width == 0 {
            return Err(DataError::invalid(
                op,
                format!("output {}x{} has a zero side", self.height, self.width),
            ));
        }
        if !(s0 > 0.0 && s0 <= s1 && s1 <= 1.0) {
            return Err(DataError::invalid(
                op,
                format!("scale range [{s0}, {s1}] is not within (0, 1] in order"),
            ));
        }
        if !(r0 > 0.0 && r0 <= r1 && r1.is_finite()) {
            return Err(DataError::invalid(
                op,
                format!("ratio range [{r0}, {r1}] is not positive and in order"),
            ));
        }
        Ok(())
    }

    /// Draws the region of an `h x w` image, as torchvision's `get_params`: up to ten tries of
    /// a random area and log-uniform aspect ratio that fit, else the central crop of the
    /// clamped ratio.
    pub fn draw(&self, rng: &mut Rng, h: usize, w: usize) -> CropBox {
        let area = (h * w) as f32;
        let (lr0, lr1) = (self.ratio[0].ln(), self.ratio[1].ln());
        for _ in 0..10 {
            let target = area * rng.uniform_range(self.scale[0], self.scale[1]);
            let aspect = rng.uniform_range(lr0, lr1).exp();
            let bw = (target * aspect).sqrt().round_ties_even() as usize;
            let bh = (target / aspect).sqrt().round_ties_even() as usize;
            if 0 < bw && bw <= w && 0 < bh && bh <= h {
                let top = rng.below(h - bh + 1);
                let left = rng.below(w - bw + 1);
                return CropBox {
                    top,
                    left,
                    height: bh,
                    width: bw,
                };
            }
        }
        let in_ratio = w as f32 / h as f32;
        let (bh, bw) = if in_ratio < self.ratio[0] {
            ((w as f32 / self.ratio[0]).round_ties_even() as usize, w)
        } else if in_ratio > self.ratio[1] {
            (h, (h as f32 * self.ratio[1]).round_ties_even() as usize)
        } else {
            (h, w)
        };
        let (bh, bw) = (bh.clamp(1, h), bw.clamp(1, w));
        CropBox {
            top: (h - bh) / 2,
            left: (w - bw) / 2,
            height: bh,
            width: bw,
        }
    }
}

/// Reusable buffers of [`resample`]: the horizontal pass and the filter taps, so that a warm
/// loader resamples without allocating.
#[derive(Debug, Default)]
pub(crate) struct ResampleScratch {
    pass: Vec<f32>,
    cols: Taps,
    rows: Taps,
}

/// Filter taps for each output position: `(first source index, tap count, weight offset)`.
#[derive(Debug, Default)]
struct Taps {
    spans: Vec<(usize, usize, usize)>,
    weights: Vec<f32>,
}

impl Taps {
    /// Triangle-filter taps for `n` outputs over source positions `start..start + len`, the
    /// triangle widened by the downscale factor (PIL's antialiased bilinear) and normalised.
    fn fill(&mut self, start: usize, len: usize, n: usize) {
        self.spans.clear();
        self.weights.clear();
        let scale = len as f32 / n as f32;
        let support = scale.max(1.0);
        for i in 0..n {
            let centre = (i as f32 + 0.5) * scale;
            let lo = (centre - support).floor().max(0.0) as usize;
            let hi = ((centre + support).ceil() as usize).min(len);
            let offset = self.weights.len();
            self.weights.extend(
                (lo..hi).map(|s| (1.0 - ((s as f32 + 0.5 - centre) / support).abs()).max(0.0)),
            );
            let total: f32 = self.weights[offset..].iter().sum();
            self.weights[offset..].iter_mut().for_each(|w| *w /= total);
            self.spans.push((start + lo, hi - lo, offset));
        }
    }

    fn get(&self, i: usize) -> (usize, &[f32]) {
        let (first, count, offset) = self.spans[i];
        (first, &self.weights[offset..offset + count])
    }
}

/// Resamples `region` of each `h x w` plane of `src` (`[c, h, w]` bytes) to `oh x ow` planes
/// in `out`, mirrored left-right when `flip`, with an antialiased bilinear (triangle) filter;
/// values are rounded to the nearest byte.
///
/// # Panics
/// Panics if `region` is empty or does not lie inside the image, or `src` / `out` lengths do
/// not match the shapes.
pub(crate) fn resample(
    src: &[u8],
    [c, h, w]: [usize; 3],
    region: CropBox,
    [oh, ow]: [usize; 2],
    flip: bool,
    out: &mut [u8],
    scratch: &mut ResampleScratch,
) {
    assert!(
        region.height > 0 && region.width > 0,
        "resample: empty region"
    );
    assert!(region.top + region.height <= h && region.left + region.width <= w);
    assert_eq!(src.len(), c * h * w, "resample: source length");
    assert_eq!(out.len(), c * oh * ow, "resample: output length");
    let ResampleScratch { pass, cols, rows } = scratch;
    pass.clear();
    pass.resize(region.height * ow, 0.0);
    cols.fill(region.left, region.width, ow);
    rows.fill(region.top, region.height, oh);
    for (plane, out_plane) in src.chunks_exact(h * w).zip(out.chunks_exact_mut(oh * ow)) {
        // Horizontal pass: region rows x output columns.
        for (r, pass_row) in pass.chunks_exact_mut(ow).enumerate() {
            let row = &plane[(region.top + r) * w..(region.top + r + 1) * w];
            for (x, t) in pass_row.iter_mut().enumerate() {
                let (first, weights) = cols.get(x);
                *t = weights
                    .iter()
                    .zip(&row[first..])
                    .map(|(wt, &p)| wt * f32::from(p))
                    .sum();
            }
        }
        // Vertical pass, then rounding and the flip.
        for (y, out_row) in out_plane.chunks_exact_mut(ow).enumerate() {
            let (first, weights) = rows.get(y);
            let first = first - region.top;
            for x in 0..ow {
                let v: f32 = weights
                    .iter()
                    .enumerate()
                    .map(|(k, wt)| wt * pass[(first + k) * ow + x])
                    .sum();
                let dst = if flip { ow - 1 - x } else { x };
                out_row[dst] = (v + 0.5).clamp(0.0, 255.0) as u8;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_region_at_full_size_is_a_copy_and_flip_mirrors() {
        let src: Vec<u8> = (0..2 * 3 * 5).map(|i| (i * 7) as u8).collect();
        let all = CropBox {
            top: 0,
            left: 0,
            height: 3,
            width: 5,
        };
        let mut out = vec![0; 30];
        let mut scratch = ResampleScratch::default();
        resample(&src, [2, 3, 5], all, [3, 5], false, &mut out, &mut scratch);
        assert_eq!(out, src);
        resample(&src, [2, 3, 5], all, [3, 5], true, &mut out, &mut scratch);
        let mirrored: Vec<u8> = src
            .chunks(5)
            .flat_map(|r| r.iter().rev().copied())
            .collect();
        assert_eq!(out, mirrored);
    }

    #[test]
    fn downscaling_averages_and_constant_stays_constant() {
        // 1x4 row [0, 100, 200, 100] halved: each output averages its two sources.
        let src = [0u8, 100, 200, 100];
        let all = CropBox {
            top: 0,
            left: 0,
            height: 1,
            width: 4,
        };
        let mut out = [0u8; 2];
        resample(
            &src,
            [1, 1, 4],
            all,
            [1, 2],
            false,
            &mut out,
            &mut ResampleScratch::default(),
        );
        // Triangles of half-width 2 centred at 1.0 and 3.0, clipped at the edges: weights
        // (3/4, 3/4, 1/4) / 1.75 and (1/4, 3/4, 3/4) / 1.75.
        assert_eq!(out, [71, 143]);
        let flat = vec![77u8; 9 * 9];
        let mut out = vec![0u8; 4 * 4];
        let region = CropBox {
            top: 1,
            left: 2,
            height: 7,
            width: 5,
        };
        resample(
            &flat,
            [1, 9, 9],
            region,
            [4, 4],
            false,
            &mut out,
            &mut ResampleScratch::default(),
        );
        assert!(out.iter().all(|&v| v == 77));
    }

    #[test]
    fn drawn_regions_fit_and_follow_scale_and_ratio() {
        let rrc = RandomResizedCrop::new(8);
        rrc.validate().unwrap();
        let mut rng = Rng::seed_from(3);
        let mut areas = Vec::new();
        for _ in 0..500 {
            let b = rrc.draw(&mut rng, 40, 30);
            assert!(b.height >= 1 && b.width >= 1);
            assert!(b.top + b.height <= 40 && b.left + b.width <= 30);
            areas.push((b.height * b.width) as f32 / 1200.0);
        }
        assert!(areas.iter().all(|&a| a > 0.05 && a <= 1.0));
        assert!(areas.iter().any(|&a| a < 0.3) && areas.iter().any(|&a| a > 0.7));
        // A 1x50 strip never fits the ratio range: the fallback is the clamped central crop.
        let b = rrc.draw(&mut rng, 1, 50);
        assert_eq!((b.height, b.width, b.top), (1, 1, 0));
        assert_eq!(b.left, 24);
        assert!(
            RandomResizedCrop {
                scale: [0.5, 0.2],
                ..rrc
            }
            .validate()
            .is_err()
        );
        assert!(
            RandomResizedCrop {
                ratio: [0.0, 1.0],
                ..rrc
            }
            .validate()
            .is_err()
        );
        assert!(RandomResizedCrop { height: 0, ..rrc }.validate().is_err());
    }
}
