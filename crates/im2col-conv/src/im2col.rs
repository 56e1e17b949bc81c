//! im2col (gather input patches into column rows) and col2im (scatter-add them back), one input
//! channel and one tile of output pixels at a time.
//!
//! Layout of a column tile for output pixels `t0..t1`: row `(c * kh + ki) * kw + kj` holds, for
//! each output pixel `q` of the tile, the input value at `(c, oh*sh - ph + ki*dh,
//! ow*sw - pw + kj*dw)` (zero in the padding), where `q = oh * out_w + ow`. The rows of one
//! channel are contiguous, so channels can be filled in parallel.

use crate::Conv2dShape;

/// Output positions `[lo, hi)` along one axis whose tap at `offset + o * stride` lands inside
/// `0..size`, clamped to `0..out`.
fn valid_range(offset: isize, stride: usize, size: usize, out: usize) -> (usize, usize) {
    let s = stride as isize;
    let lo = if offset >= 0 {
        0
    } else {
        (-offset + s - 1) / s
    };
    let last = size as isize - 1 - offset;
    let hi = if last < 0 { 0 } else { last / s + 1 };
    let lo = (lo as usize).min(out);
    (lo, (hi as usize).clamp(lo, out))
}

/// The geometry one channel's gather or scatter needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Taps {
    h: usize,
    w: usize,
    out_h: usize,
    out_w: usize,
    kh: usize,
    kw: usize,
    stride: [usize; 2],
    padding: [usize; 2],
    dilation: [usize; 2],
}

impl Taps {
    pub(crate) fn new(s: &Conv2dShape) -> Self {
        Self {
            h: s.h,
            w: s.w,
            out_h: s.out_h(),
            out_w: s.out_w(),
            kh: s.kh,
            kw: s.kw,
            stride: s.params.stride,
            padding: s.params.padding,
            dilation: s.params.dilation,
        }
    }

    /// Calls `f(row, segment)` for every kernel tap of one channel and every output-row segment
    /// of the tile `t0..t1`: `segment` says where that tap reads for those pixels.
    fn walk(&self, t0: usize, t1: usize, mut f: impl FnMut(usize, Segment)) {
        let [sh, sw] = self.stride;
        let [ph, pw] = self.padding;
        let [dh, dw] = self.dilation;
        for ki in 0..self.kh {
            let off_h = (ki * dh) as isize - ph as isize;
            let (oh_lo, oh_hi) = valid_range(off_h, sh, self.h, self.out_h);
            for kj in 0..self.kw {
                let off_w = (kj * dw) as isize - pw as isize;
                let (ow_lo, ow_hi) = valid_range(off_w, sw, self.w, self.out_w);
                let row = ki * self.kw + kj;
                let mut q = t0;
                while q < t1 {
                    let oh = q / self.out_w;
                    let c0 = q % self.out_w;
                    let c1 = self.out_w.min(c0 + (t1 - q));
                    let at = q - t0;
                    let seg = if oh < oh_lo || oh >= oh_hi {
                        Segment::padding(at, c1 - c0)
                    } else {
                        let ih = (oh * sh) as isize + off_h;
                        let lo = ow_lo.clamp(c0, c1);
                        let hi = ow_hi.clamp(lo, c1);
                        // In bounds when hi > lo: lo lies in the valid range, so its tap
                        // is inside the row.
                        let src = if hi > lo {
                            ih as usize * self.w + ((lo * sw) as isize + off_w) as usize
                        } else {
                            0
                        };
                        Segment {
                            at,
                            zeros_before: lo - c0,
                            len: hi - lo,
                            zeros_after: c1 - hi,
                            src,
                        }
                    };
                    f(row, seg);
                    q += c1 - c0;
                }
            }
        }
    }

    /// Fills the `kh * kw` column rows of one input channel for output pixels `t0..t1`:
    /// `col` is `kh * kw` rows of `t1 - t0`.
    pub(crate) fn im2col(&self, plane: &[f32], t0: usize, t1: usize, col: &mut [f32]) {
        let len = t1 - t0;
        let sw = self.stride[1];
        self.walk(t0, t1, |row, seg| {
            let dst = &mut col[row * len + seg.at..][..seg.total()];
            let (before, rest) = dst.split_at_mut(seg.zeros_before);
            let (body, after) = rest.split_at_mut(seg.len);
            before.fill(0.0);
            after.fill(0.0);
            if seg.len == 0 {
                return;
            }
            if sw == 1 {
                body.copy_from_slice(&plane[seg.src..seg.src + seg.len]);
            } else {
                let src = &plane[seg.src..=seg.src + (seg.len - 1) * sw];
                for (d, s) in body.iter_mut().zip(src.iter().step_by(sw)) {
                    *d = *s;
                }
            }
        });
    }

    /// Adds the `kh * kw` column rows of one input channel for output pixels `t0..t1` back into
    /// its input-gradient plane (taps in the padding are dropped). The additions into each
    /// element run in tap order, then pixel order.
    pub(crate) fn col2im(&self, col: &[f32], t0: usize, t1: usize, plane: &mut [f32]) {
        let len = t1 - t0;
        let sw = self.stride[1];
        self.walk(t0, t1, |row, seg| {
            if seg.len == 0 {
                return;
            }
            let src = &col[row * len + seg.at + seg.zeros_before..][..seg.len];
            if sw == 1 {
                for (d, s) in plane[seg.src..seg.src + seg.len].iter_mut().zip(src) {
                    *d += *s;
                }
            } else {
                let dst = &mut plane[seg.src..=seg.src + (seg.len - 1) * sw];
                for (d, s) in dst.iter_mut().step_by(sw).zip(src) {
                    *d += *s;
                }
            }
        });
    }
}

/// Where one tap reads for a run of output pixels within one output row.
#[derive(Debug, Clone, Copy)]
struct Segment {
    /// Offset of the run within the tile.
    at: usize,
    /// Pixels at the start of the run whose tap falls in the left padding.
    zeros_before: usize,
    /// Pixels whose tap is inside the input.
    len: usize,
    /// Pixels at the end of the run whose tap falls in the right padding.
    zeros_after: usize,
    /// Input index of the first inside tap (meaningful when `len > 0`).
    src: usize,
}

impl Segment {
    fn padding(at: usize, len: usize) -> Self {
        Self {
            at,
            zeros_before: len,
            len: 0,
            zeros_after: 0,
            src: 0,
        }
    }

    fn total(&self) -> usize {
        self.zeros_before + self.len + self.zeros_after
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Conv2dParams;

    #[test]
    fn valid_range_matches_brute_force() {
        for offset in -5isize..5 {
            for stride in 1..4 {
                for size in 1..6 {
                    for out in 0..6 {
                        let inside = |o: usize| {
                            let t = offset + (o * stride) as isize;
                            t >= 0 && t < size as isize
                        };
                        let (lo, hi) = valid_range(offset, stride, size, out);
                        for o in 0..out {
                            assert_eq!(
                                inside(o),
                                (lo..hi).contains(&o),
                                "{offset} {stride} {size} {o}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn im2col_then_col2im_counts_tap_uses() {
        // col2im(ones) counts, for every input pixel, how many (tap, output) pairs read it;
        // im2col of an index plane must put each index exactly that many times in the columns.
        let p = Conv2dParams {
            stride: [2, 3],
            padding: [1, 2],
            dilation: [2, 1],
            groups: 1,
        };
        let s = Conv2dShape::new([1, 1, 7, 8], [1, 1, 3, 2], p).unwrap();
        let taps = Taps::new(&s);
        let pixels = s.out_h() * s.out_w();
        let plane: Vec<f32> = (1..=56).map(|i| i as f32).collect();
        // Two tiles that split an output row, to exercise partial rows.
        let cut = s.out_w() + 1;
        let mut counts_cols = vec![0usize; 57];
        let mut counts_back = vec![0.0f32; 56];
        for (t0, t1) in [(0, cut), (cut, pixels)] {
            let mut col = vec![f32::NAN; 6 * (t1 - t0)];
            taps.im2col(&plane, t0, t1, &mut col);
            for v in &col {
                counts_cols[*v as usize] += 1;
            }
            taps.col2im(&vec![1.0; col.len()], t0, t1, &mut counts_back);
        }
        for i in 0..56 {
            assert_eq!(counts_cols[i + 1] as f32, counts_back[i], "pixel {i}");
        }
        let total: usize = counts_cols.iter().sum();
        assert_eq!(total, 6 * pixels);
    }
}
