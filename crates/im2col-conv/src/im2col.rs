//! im2col (gather input patches into column rows) and col2im (scatter-add them back), one input
//! channel and one tile of output pixels at a time.
//!
//! Layout of a column tile for output pixels `t0..t1`: row `(c * kh + ki) * kw + kj` holds, for
//! each output pixel `q` of the tile, the input value at `(c, oh*sh - ph + ki*dh,
//! ow*sw - pw + kj*dw)` (zero in the padding), where `q = oh * out_w + ow`. The rows of one
//! channel are contiguous, so channels can be filled in parallel.

use crate::Conv2dShape;
use crate::kernels::Kernel;

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
        self.im2col_strided(plane, t0, t1, col, t1 - t0);
    }

    /// [`Taps::im2col`] with rows `row_stride >= t1 - t0` apart; the elements between rows are
    /// left alone. With `row_stride` the micro-kernel's tile width this writes packed B panels
    /// straight from the input (implicit GEMM).
    pub(crate) fn im2col_strided(
        &self,
        plane: &[f32],
        t0: usize,
        t1: usize,
        col: &mut [f32],
        row_stride: usize,
    ) {
        let sw = self.stride[1];
        self.walk(t0, t1, |row, seg| {
            let dst = &mut col[row * row_stride + seg.at..][..seg.total()];
            let (before, rest) = dst.split_at_mut(seg.zeros_before);
            let (body, after) = rest.split_at_mut(seg.len);
            before.fill(0.0);
            after.fill(0.0);
            if seg.len == 0 {
                return;
            }
            if sw == 1 {
                copy_floats(body, &plane[seg.src..seg.src + seg.len]);
            } else {
                let src = &plane[seg.src..=seg.src + (seg.len - 1) * sw];
                for (d, s) in body.iter_mut().zip(src.iter().step_by(sw)) {
                    *d = *s;
                }
            }
        });
    }

    /// Writes the column rows of `channels` consecutive input planes in `x` (each `h * w`)
    /// for output pixels `j0..j0 + cols`: row `ch * kh * kw + tap`, `row_width >= cols` apart,
    /// gets that tap's inputs (zero in the padding); elements past `cols` in a row are left
    /// alone. With `row_width` the micro-kernel's tile width this packs a B panel of the
    /// implicit GEMM straight from the input; with `row_width == cols` it is im2col.
    ///
    /// Each tap's valid range and each output-row run are worked out once, then every channel
    /// is copied with the same geometry (vector row copies, no `memcpy` call per row).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn pack_rows(
        &self,
        kernel: Kernel,
        x: &[f32],
        channels: usize,
        j0: usize,
        cols: usize,
        dst: &mut [f32],
        row_width: usize,
    ) {
        assert!(
            cols <= row_width,
            "pack_rows: {cols} columns in rows of {row_width}"
        );
        if cols == 0 || channels == 0 {
            return;
        }
        let taps = self.kh * self.kw;
        let plane = self.h * self.w;
        let row_stride = taps * row_width;
        let (oh0, col0) = (j0 / self.out_w, j0 % self.out_w);
        let [sh, sw] = self.stride;
        let [ph, pw] = self.padding;
        let [dh, dw] = self.dilation;
        for ki in 0..self.kh {
            let off_h = (ki * dh) as isize - ph as isize;
            let (oh_lo, oh_hi) = valid_range(off_h, sh, self.h, self.out_h);
            for kj in 0..self.kw {
                let off_w = (kj * dw) as isize - pw as isize;
                let (ow_lo, ow_hi) = valid_range(off_w, sw, self.w, self.out_w);
                let tap = ki * self.kw + kj;
                // Runs of the pixels within output rows: row `oh`, columns `c0..c1`, at `at`.
                let (mut oh, mut c0, mut at) = (oh0, col0, 0);
                while at < cols {
                    let c1 = self.out_w.min(c0 + (cols - at));
                    let out = &mut dst[tap * row_width + at..];
                    if oh < oh_lo || oh >= oh_hi {
                        kernel.zero_rows(out, row_stride, c1 - c0, channels);
                    } else {
                        let lo = ow_lo.clamp(c0, c1);
                        let hi = ow_hi.clamp(lo, c1);
                        kernel.zero_rows(out, row_stride, lo - c0, channels);
                        kernel.zero_rows(&mut out[hi - c0..], row_stride, c1 - hi, channels);
                        if hi > lo {
                            // In bounds: `lo` lies in the valid range, so its tap is inside.
                            let ih = (oh * sh) as isize + off_h;
                            let src = ih as usize * self.w + ((lo * sw) as isize + off_w) as usize;
                            let body = &mut out[lo - c0..];
                            let len = hi - lo;
                            if sw == 1 {
                                kernel.copy_rows(body, row_stride, &x[src..], plane, len, channels);
                            } else {
                                for ch in 0..channels {
                                    let s = &x[ch * plane + src..];
                                    let d = &mut body[ch * row_stride..ch * row_stride + len];
                                    for (d, s) in d.iter_mut().zip(s.iter().step_by(sw)) {
                                        *d = *s;
                                    }
                                }
                            }
                        }
                    }
                    at += c1 - c0;
                    (oh, c0) = (oh + 1, 0);
                }
            }
        }
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

/// `dst.copy_from_slice(src)` for the short runs of im2col and packing (one output row, one
/// tile width): fixed-size chunks compile to vector moves, where a `memmove` call per run would
/// cost more than the copy.
#[inline]
pub(crate) fn copy_floats(dst: &mut [f32], src: &[f32]) {
    assert_eq!(dst.len(), src.len(), "copy_floats: lengths differ");
    let mut d = dst.chunks_exact_mut(8);
    let mut s = src.chunks_exact(8);
    for (d, s) in (&mut d).zip(&mut s) {
        let s: &[f32; 8] = s.try_into().expect("chunks of 8");
        let d: &mut [f32; 8] = d.try_into().expect("chunks of 8");
        *d = *s;
    }
    for (d, s) in d.into_remainder().iter_mut().zip(s.remainder()) {
        *d = *s;
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
    fn packed_panels_equal_im2col_rows_on_every_level() {
        let p = Conv2dParams {
            stride: [2, 1],
            padding: [1, 2],
            dilation: [1, 2],
            groups: 1,
        };
        for (params, dims) in [(p, [2, 3, 3, 3]), (p.with_stride(3), [2, 3, 2, 3])] {
            let s = Conv2dShape::new([1, 3, 9, 7], dims, params).unwrap();
            let taps = Taps::new(&s);
            let pixels = s.out_h() * s.out_w();
            let x: Vec<f32> = (0..3 * 63).map(|i| i as f32 + 1.0).collect();
            let rows = s.kh * s.kw;
            for isa in crate::kernels::Isa::available_levels() {
                let kern = Kernel::new(isa);
                for nr in [4, 16] {
                    for j0 in (0..pixels).step_by(nr) {
                        let cols = nr.min(pixels - j0);
                        let mut panel = vec![f32::NAN; 3 * rows * nr];
                        taps.pack_rows(kern, &x, 3, j0, cols, &mut panel, nr);
                        for c in 0..3 {
                            let mut want = vec![0.0; rows * cols];
                            taps.im2col(&x[c * 63..(c + 1) * 63], j0, j0 + cols, &mut want);
                            for r in 0..rows {
                                let got = &panel[(c * rows + r) * nr..][..cols];
                                assert_eq!(got, &want[r * cols..(r + 1) * cols], "{isa:?}");
                            }
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
