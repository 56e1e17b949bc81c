//! The receptive-field picture: which input pixels one unit of a layer sees, and through how
//! many paths, drawn on an input-sized canvas.
//!
//! The weights come from back-projecting one unit through the layers of the main path, one
//! axis at a time: a window of size `k`, stride `s`, dilation `d` and padding `p` sends output
//! position `o` to inputs `o * s + t * d - p` for `t < k`, counting every path. The count is
//! the field's weighting when all kernel weights are equal: the centre is seen through many
//! more paths than the border.

use anyhow::{Result, bail};
use ganglion::models::{Footprint, LayerSummary, Summary};
use image::{Rgb, RgbImage};

/// Where one unit of a layer looks.
#[derive(Debug, Clone)]
pub struct UnitField {
    /// The unit's position `[row, col]` in its layer's map.
    pub unit: [usize; 2],
    /// The layer's map size `[h, w]` (`[1, 1]` for a vector).
    pub map: [usize; 2],
    /// First input row and column of the field (may be negative: padding).
    pub first: [i64; 2],
    /// Field size `[h, w]`.
    pub size: [usize; 2],
    /// Paths from each input row (index 0) and column (index 1) to the unit.
    pub paths: [Vec<f64>; 2],
}

/// Spatial size of a per-item output shape `[C, H, W]`.
fn spatial(shape: Option<&[usize]>) -> Option<[usize; 2]> {
    match shape {
        Some(&[_, h, w]) => Some([h, w]),
        _ => None,
    }
}

/// The field of the centre unit of layer `name` in `s`.
///
/// # Errors
/// When `s` has no such layer (the message lists the names it has).
pub fn unit_field(s: &Summary, name: &str) -> Result<UnitField> {
    let Some(target) = s.layers.iter().position(|l| l.name == name) else {
        let names: Vec<&str> = s.layers.iter().map(|l| l.name.as_str()).collect();
        bail!(
            "--layer {name}: model `{}` has no such layer; it has {}",
            s.model,
            names.join(", ")
        );
    };
    // The layer itself, or for a container everything inside it.
    let inside = format!("{name}.");
    let last = s
        .layers
        .iter()
        .rposition(|l| l.name == name || l.name.starts_with(&inside))
        .unwrap_or(target);
    let leaves: Vec<&LayerSummary> = s.layers[..=last].iter().filter(|l| l.is_leaf).collect();
    let input = spatial(Some(&s.input_shape)).unwrap_or([1, 1]);
    // Each leaf's input map size: the previous map's (a flattened vector keeps it).
    let mut extents = Vec::with_capacity(leaves.len());
    let mut current = input;
    for l in &leaves {
        extents.push(current);
        if let Some(e) = spatial(l.output_shape.as_deref()) {
            current = e;
        } else if l.footprint == Footprint::Global {
            current = [1, 1];
        }
    }
    let row = &s.layers[target];
    let map = spatial(row.output_shape.as_deref()).unwrap_or([1, 1]);
    let unit = [(map[0] - 1) / 2, (map[1] - 1) / 2];
    let mut paths = [vec![0.0; map[0]], vec![0.0; map[1]]];
    for a in 0..2 {
        paths[a][unit[a]] = 1.0;
    }
    for (l, n_in) in leaves.iter().zip(&extents).rev() {
        for a in 0..2 {
            paths[a] = back_project(&paths[a], l.footprint, a, n_in[a]);
        }
    }
    let first = [
        row.start[0] + (unit[0] * row.jump[0]) as i64,
        row.start[1] + (unit[1] * row.jump[1]) as i64,
    ];
    Ok(UnitField {
        unit,
        map,
        first,
        size: row.receptive_field,
        paths,
    })
}

/// Path counts on a layer's `n_in` inputs along axis `a` from counts on its outputs.
fn back_project(out: &[f64], footprint: Footprint, a: usize, n_in: usize) -> Vec<f64> {
    match footprint {
        Footprint::Pointwise if out.len() == n_in => out.to_vec(),
        // A pointwise layer that changes the map size (a flatten reported as a vector) passes
        // the whole map on.
        Footprint::Pointwise | Footprint::Global => vec![out.iter().sum(); n_in],
        Footprint::Window {
            kernel,
            stride,
            padding,
            dilation,
        } => {
            let mut v = vec![0.0; n_in];
            for (o, &c) in out.iter().enumerate() {
                if c == 0.0 {
                    continue;
                }
                for t in 0..kernel[a] {
                    let i = (o * stride[a] + t * dilation[a]) as i64 - padding[a] as i64;
                    if (0..n_in as i64).contains(&i) {
                        v[i as usize] += c;
                    }
                }
            }
            v
        }
    }
}

/// Draws `f` over an `h x w` input at `scale` output pixels per input pixel: a faint pixel
/// grid, the path counts as a red heat map, the field's outline in blue, and the centres of
/// the layer's units as dots `jump` pixels apart (the chosen unit's larger).
pub fn draw(f: &UnitField, [h, w]: [usize; 2], jump: [usize; 2], scale: u32) -> RgbImage {
    let (hp, wp) = (h as u32 * scale, w as u32 * scale);
    let max = f.paths[0].iter().copied().fold(0.0, f64::max)
        * f.paths[1].iter().copied().fold(0.0, f64::max);
    let mut img = RgbImage::new(wp, hp);
    for y in 0..hp {
        for x in 0..wp {
            let (r, c) = ((y / scale) as usize, (x / scale) as usize);
            let base = if (r + c) % 2 == 0 { 246.0 } else { 236.0 };
            let weight = if max > 0.0 {
                f.paths[0][r] * f.paths[1][c] / max
            } else {
                0.0
            };
            // Every pixel the unit sees is tinted, the most-seen ones fully.
            let alpha = if weight > 0.0 {
                0.2 + 0.8 * weight
            } else {
                0.0
            };
            let heat = [215.0, 48.0, 39.0];
            let px = heat.map(|hc| (base * (1.0 - alpha) + hc * alpha).round() as u8);
            img.put_pixel(x, y, Rgb(px));
        }
    }
    let outline = Rgb([33, 64, 170]);
    let clip = |v: i64, n: u32| v.clamp(0, i64::from(n) - 1) as u32;
    let s = i64::from(scale);
    let (y0, x0) = (f.first[0] * s, f.first[1] * s);
    let (y1, x1) = (y0 + f.size[0] as i64 * s - 1, x0 + f.size[1] as i64 * s - 1);
    for t in 0..2 {
        for x in clip(x0, wp)..=clip(x1, wp) {
            img.put_pixel(x, clip(y0 + t, hp), outline);
            img.put_pixel(x, clip(y1 - t, hp), outline);
        }
        for y in clip(y0, hp)..=clip(y1, hp) {
            img.put_pixel(clip(x0 + t, wp), y, outline);
            img.put_pixel(clip(x1 - t, wp), y, outline);
        }
    }
    // Unit centres, when they are far enough apart to tell.
    let step = [jump[0] as i64 * s, jump[1] as i64 * s];
    if step[0] >= 6 && step[1] >= 6 {
        let start = [
            y0 - f.unit[0] as i64 * step[0],
            x0 - f.unit[1] as i64 * step[1],
        ];
        let half = [f.size[0] as i64 * s / 2, f.size[1] as i64 * s / 2];
        for u in 0..f.map[0] {
            for v in 0..f.map[1] {
                let cy = start[0] + u as i64 * step[0] + half[0];
                let cx = start[1] + v as i64 * step[1] + half[1];
                let chosen = [u, v] == f.unit;
                let (radius, colour) = if chosen {
                    (3, outline)
                } else {
                    (1, Rgb([60, 60, 60]))
                };
                for dy in -radius..=radius {
                    for dx in -radius..=radius {
                        let (py, px) = (cy + dy, cx + dx);
                        if (0..i64::from(hp)).contains(&py) && (0..i64::from(wp)).contains(&px) {
                            img.put_pixel(px as u32, py as u32, colour);
                        }
                    }
                }
            }
        }
    }
    img
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_3x3_window_sends_one_unit_to_three_inputs() {
        let w = Footprint::Window {
            kernel: [3, 3],
            stride: [1, 1],
            padding: [1, 1],
            dilation: [1, 1],
        };
        assert_eq!(back_project(&[0.0, 1.0, 0.0], w, 0, 3), [1.0, 1.0, 1.0]);
        // Two stacked 3x3 windows: 5 inputs, the centre through 3 paths.
        let once = back_project(&[0.0, 0.0, 1.0, 0.0, 0.0], w, 0, 5);
        assert_eq!(back_project(&once, w, 0, 5), [1.0, 2.0, 3.0, 2.0, 1.0]);
    }

    #[test]
    fn stride_and_dilation_spread_the_taps() {
        let w = Footprint::Window {
            kernel: [2, 2],
            stride: [2, 2],
            padding: [0, 0],
            dilation: [3, 3],
        };
        assert_eq!(
            back_project(&[0.0, 1.0], w, 1, 6),
            [0.0, 0.0, 1.0, 0.0, 0.0, 1.0]
        );
        assert_eq!(back_project(&[2.0], Footprint::Global, 0, 3), [2.0; 3]);
    }
}
