//! The direct kernels' side of a convolution with few input channels: when they apply, and
//! the copy of the input they read: zero-padded (so that the kernels never test for padding)
//! and, where the output rows would leave vector lanes empty, shifted so that the kernels
//! run over whole output planes instead of rows.

use crate::Conv2dShape;
use crate::kernels::Kernel;
use crate::plan::{Par, Plan, for_chunks};

/// Largest `cin * kh * kw` the direct kernels take: below it, a GEMM's B panel is mostly
/// packing (one copy per row of only `cout` multiply-adds) and its tile mostly padding.
pub(crate) const DIRECT_MAX_DEPTH: usize = 75;

/// Geometry of a zero-padded input: the direct kernels' view of the images.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Padded {
    pub(crate) cin: usize,
    h: usize,
    w: usize,
    pad: [usize; 2],
    pub(crate) kh: usize,
    pub(crate) kw: usize,
    pub(crate) out_h: usize,
    pub(crate) out_w: usize,
    /// Padded row length.
    pub(crate) xw: usize,
    /// Padded plane.
    pub(crate) xs: usize,
}

impl Padded {
    /// Whether the direct row kernel runs this convolution's forward pass: one group, stride
    /// and dilation 1, a SIMD level, and either few input channels (at most
    /// `DIRECT_MAX_DEPTH` multiply-adds per output, with a row of at least one vector) or
    /// output rows that the kernel's two vectors tile exactly (`out_w` a multiple of the tile
    /// width `NR`, 32 at AVX-512, or rows of half that width taken two at a time). With full vectors the direct kernel needs no packing at all
    /// and runs near the FMA peak whatever the depth (`cifar.64`: 93% of peak at one thread,
    /// against 80% for the implicit GEMM), while a ragged row wastes lanes on every tap
    /// (`mnist.c2`, 24 wide, and 16-wide rows run faster as GEMM).
    pub(crate) fn applies(s: &Conv2dShape, p: &Plan) -> bool {
        Self::geometry_fits(s, p)
            && ((p.k_all <= DIRECT_MAX_DEPTH && s.out_w() >= 16)
                || s.out_w().is_multiple_of(p.kernel.nr())
                || (Self::short_rows(s, p) && s.out_h() >= 2)
                || Self::ragged_row(s, p))
    }

    /// Whether the direct weight-gradient kernel runs this convolution: as for
    /// [`Padded::applies`], with few input channels only (`cin * kh * kw <= 75`, rows at least
    /// one vector wide). Deeper layers run faster on the broadcast kernel, whatever their
    /// width (`cifar.64`: 91% of the FMA peak at two threads against 70% here), as it needs
    /// no sums across lanes.
    pub(crate) fn applies_weight_grad(s: &Conv2dShape, p: &Plan) -> bool {
        Self::geometry_fits(s, p) && p.k_all <= DIRECT_MAX_DEPTH && s.out_w() >= 16
    }

    /// Rows of at most one vector but at least three quarters of one (12 to 16 at AVX-512),
    /// which the row kernel takes two at a time, on layers with fewer output channels than two
    /// vectors hold. There the broadcast kernel's tile runs partly empty or needs a broadcast
    /// per multiply-add, and the row kernel wins (`lenet.c2`'s backward-data, 6 channels of 14
    /// wide rows: 1.25x; 24 channels: 1.15x); with 64 channels, 14 wide, it loses 10%.
    fn short_rows(s: &Conv2dShape, p: &Plan) -> bool {
        let lanes = p.kernel.nr() / 2;
        s.out_w() <= lanes && 4 * s.out_w() >= 3 * lanes && s.cout < 2 * lanes
    }

    /// Rows narrower than the kernel's two vectors but at least three quarters of them (12 to
    /// 15 at AVX2, 24 to 31 at AVX-512), one per call, on layers with fewer output channels
    /// than one vector holds: there the broadcast kernel's vectors run partly empty too, and
    /// the row kernel wastes at most a quarter of its lanes.
    fn ragged_row(s: &Conv2dShape, p: &Plan) -> bool {
        let nr = p.kernel.nr();
        s.out_w() < nr && 4 * s.out_w() >= 3 * nr && s.cout < nr / 2
    }

    /// What every direct kernel needs: a SIMD level, one group, stride and dilation 1, and a
    /// kernel larger than 1x1 (pointwise layers need no columns as GEMM).
    fn geometry_fits(s: &Conv2dShape, p: &Plan) -> bool {
        p.kernel.direct_channels().is_some() && s.unit_stride_one_group() && !p.pointwise
    }

    pub(crate) fn new(s: &Conv2dShape) -> Self {
        let [ph, pw] = s.params.padding;
        let xw = s.w + 2 * pw;
        Self {
            cin: s.cin,
            h: s.h,
            w: s.w,
            pad: s.params.padding,
            kh: s.kh,
            kw: s.kw,
            out_h: s.out_h(),
            out_w: s.out_w(),
            xw,
            xs: (s.h + 2 * ph) * xw,
        }
    }

    /// Whether the layer has no padding: its padded image is the image itself.
    pub(crate) fn is_unpadded(&self) -> bool {
        self.pad == [0, 0]
    }

    /// The kernel rows `k0..k1` that read any real input for output rows `first..=last` at
    /// row stride `sh` and dilation `dh`; the others read only padding, and their terms are
    /// zero.
    pub(crate) fn kernel_rows(&self, rows: [usize; 2], sh: usize, dh: usize) -> [usize; 2] {
        kernel_span(self.pad[0], self.h, self.kh, rows, sh, dh)
    }

    /// The padding above the input and its height: what [`Kernel::direct_rows`] needs to
    /// find the kernel rows each output row reads real input with.
    ///
    /// [`Kernel::direct_rows`]: crate::kernels::Kernel::direct_rows
    pub(crate) fn vertical(&self) -> [usize; 2] {
        [self.pad[0], self.h]
    }

    /// [`Padded::kernel_rows`] along the rows: the kernel columns that read any real input
    /// for output columns `first..=last`.
    pub(crate) fn kernel_cols(&self, cols: [usize; 2], sw: usize, dw: usize) -> [usize; 2] {
        kernel_span(self.pad[1], self.w, self.kw, cols, sw, dw)
    }

    /// Floats of one padded image.
    pub(crate) fn image_len(&self) -> usize {
        self.cin * self.xs
    }

    /// Floats of a buffer for `images` padded images, with the kernels' read margin.
    pub(crate) fn buf_len(&self, images: usize) -> usize {
        images * self.image_len() + Kernel::DIRECT_MARGIN
    }

    /// Copies images `x` (`[images, cin, h, w]`) into `buf` with their zero padding, and
    /// zeroes the rest of `buf` (the kernels' read margin). Each plane is written once, rows
    /// and border by `kern`'s row copies: zeroing the whole buffer first wrote everything twice
    /// to memory (5% of `resnet20`'s training step), and a `memcpy` call per short row cost
    /// `lenet.c2`'s backward-data 4% of its time. In `Split` mode the planes spread over the
    /// threads: when one image is split across them, a serial copy would leave them idle.
    pub(crate) fn pad(&self, kern: Kernel, x: &[f32], buf: &mut [f32], par: Par) {
        let [ph, pw] = self.pad;
        let (h, w, xw) = (self.h, self.w, self.xw);
        let plane = h * w;
        let planes = x.len() / plane.max(1);
        let (body, margin) = buf.split_at_mut(planes * self.xs);
        margin.fill(0.0);
        for_chunks(body, self.xs, par, |i, dst| {
            let src = &x[i * plane..(i + 1) * plane];
            // Row `r` of the image lands at `first + r * xw`; everything else is zero: the
            // rows above and the left border of the first row, the right and left borders
            // between rows, and the rest below.
            let first = ph * xw + pw;
            if h == 0 || w == 0 {
                return dst.fill(0.0);
            }
            dst[..first].fill(0.0);
            kern.copy_rows(&mut dst[first..], xw, src, w, w, h);
            kern.zero_rows(&mut dst[first + w..], xw, xw - w, h - 1);
            dst[first + (h - 1) * xw + w..].fill(0.0);
        });
    }
}

/// What the direct kernels read: the zero-padded images, or `kw` shifted copies of them.
///
/// A few-channel layer's output rows rarely fill the kernels' vectors (`mnist.c1`: 26 of 32
/// lanes). So where the rows are not a multiple of the kernels' width (`nr`), each padded
/// plane is copied `kw` times, copy `kj` shifted left by `kj` columns and cut to rows `out_w`
/// wide: `s[ci][kj][r][ow] = padded[ci][r][ow + kj]`. Output pixel `p = oh * out_w + ow`
/// then reads tap `(ci, ki, kj)` at `s[ci][kj]` plus `p + ki * out_w`: the rows lie back to
/// back, and the kernels run over a whole plane as one row of `out_h * out_w` pixels, a
/// convolution of `cin * kw` channels by a `kh x 1` kernel (the weights' taps reordered to
/// `(ci, kj, ki)` to match). Only the plane's last vector is partly empty. This lowering
/// along one axis is the memory-efficient convolution of Cho and Brand (ICML 2017).
///
/// Only kernels at most 3 wide take the copies. At one thread, `mnist.c1` (3 x 3, 26 wide)
/// went from 73 to 84.5 GFLOP/s forward and from 71 to 80 backward-weight (AVX2: 45 to 64.5
/// and 42 to 60), and a 3-channel 3 x 3 layer 28 wide from 75 to 98 forward; but `lenet.c1`
/// (5 x 5, 28 wide, 6 output channels) lost 15% forward: five copies of its input are as
/// large as its output, its rows already fill 28 of 32 lanes, and the copies give up
/// skipping the kernel rows that read only padding (and 7% backward-weight).
///
/// The weight gradient takes the copies even where the rows fill whole vectors: its loop
/// then runs over a plane, not over rows of two vectors. `cifar.stem` (32 wide) went from
/// 71 to 82 GFLOP/s at one thread, its 16-channel twin in `resnet20` from 86.5 to 96 (AVX2:
/// 57 to 59.5 and 68 to 74); the forward pass lost 4% there.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DirectInput {
    pub(crate) padded: Padded,
    shifted: bool,
}

/// The direct kernels' view of one image of a [`DirectInput`]: the arguments of
/// [`Kernel::direct_rows`] and [`Kernel::direct_weight_grad`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct RowView {
    /// Channel plane and row strides.
    pub(crate) xs: usize,
    pub(crate) xw: usize,
    /// `[channels, kh, kw]` as the kernels see them.
    pub(crate) dims: [usize; 3],
    /// Output rows and their width as the kernels see them.
    pub(crate) out_h: usize,
    pub(crate) out_w: usize,
    /// The padding above the input and its height ([`Padded::vertical`]).
    pub(crate) vert: [usize; 2],
    /// Whether rows at most half the kernel's width go two at a time.
    pub(crate) pair: bool,
}

impl DirectInput {
    /// The input of the direct forward kernel for `s`: shifted copies where `s` has few
    /// input channels, a kernel 2 or 3 wide, and output rows that are not a multiple of the
    /// kernel's width.
    pub(crate) fn for_forward(s: &Conv2dShape, p: &Plan) -> Self {
        let rows_fill = s.out_w().is_multiple_of(p.kernel.nr());
        Self::shifted_if(s, Self::can_shift(s, p) && !rows_fill)
    }

    /// The input of the direct weight-gradient kernel for `s`: shifted copies wherever `s`
    /// has few input channels and a kernel 2 or 3 wide.
    pub(crate) fn for_weight_grad(s: &Conv2dShape, p: &Plan) -> Self {
        Self::shifted_if(s, Self::can_shift(s, p))
    }

    /// Whether shifted copies pay for `s` at all: few input channels, a kernel 2 or 3 wide.
    fn can_shift(s: &Conv2dShape, p: &Plan) -> bool {
        p.k_all <= DIRECT_MAX_DEPTH && (2..=3).contains(&s.kw)
    }

    fn shifted_if(s: &Conv2dShape, shifted: bool) -> Self {
        Self {
            padded: Padded::new(s),
            shifted,
        }
    }

    /// Whether the kernels read shifted copies (and reordered weight taps).
    pub(crate) fn is_shifted(&self) -> bool {
        self.shifted
    }

    /// Floats of one image's copy.
    pub(crate) fn image_len(&self) -> usize {
        let d = &self.padded;
        if self.shifted {
            d.cin * d.kw * self.plane()
        } else {
            d.image_len()
        }
    }

    /// Floats of a buffer for `images` images, with the kernels' read margin.
    pub(crate) fn buf_len(&self, images: usize) -> usize {
        images * self.image_len() + Kernel::DIRECT_MARGIN
    }

    /// One shifted copy of a padded plane: its padded height, `out_w` wide.
    fn plane(&self) -> usize {
        let d = &self.padded;
        (d.out_h + d.kh - 1) * d.out_w
    }

    /// The kernels' view of an image (see [`RowView`]); `nr` is the kernel's width.
    pub(crate) fn view(&self, nr: usize) -> RowView {
        let d = &self.padded;
        if self.shifted {
            let plane = self.plane();
            RowView {
                xs: plane,
                xw: d.out_w,
                dims: [d.cin * d.kw, d.kh, 1],
                out_h: 1,
                out_w: d.out_h * d.out_w,
                vert: [0, plane / d.out_w],
                pair: false,
            }
        } else {
            RowView {
                xs: d.xs,
                xw: d.xw,
                dims: [d.cin, d.kh, d.kw],
                out_h: d.out_h,
                out_w: d.out_w,
                vert: d.vertical(),
                pair: d.out_w <= nr / 2,
            }
        }
    }

    /// Copies images `x` (`[images, cin, h, w]`) into `buf` as the kernels read them, and
    /// zeroes the rest of `buf` (the read margin). In `Split` mode the planes spread over the
    /// threads.
    pub(crate) fn fill(&self, kern: Kernel, x: &[f32], buf: &mut [f32], par: Par) {
        let d = &self.padded;
        if !self.shifted {
            return d.pad(kern, x, buf, par);
        }
        let [ph, pw] = d.pad;
        let (h, out_w) = (d.h, d.out_w);
        let (plane, copies) = (h * d.w, self.plane() * d.kw);
        let planes = x.len() / plane.max(1);
        let (body, margin) = buf.split_at_mut(planes * copies);
        margin.fill(0.0);
        for_chunks(body, copies, par, |i, dst| {
            let src = &x[i * plane..(i + 1) * plane];
            for (kj, copy) in dst.chunks_exact_mut(self.plane()).enumerate() {
                // Output column `ow` reads input column `ow + kj - pw`: real for `lo..hi`, in
                // the rows `ph..ph + h`; the rest of the copy is zero.
                let lo = pw.saturating_sub(kj).min(out_w);
                let hi = (d.w + pw).saturating_sub(kj).clamp(lo, out_w);
                if h == 0 || hi == lo {
                    copy.fill(0.0);
                    continue;
                }
                let (above, rest) = copy.split_at_mut(ph * out_w);
                above.fill(0.0);
                rest[h * out_w..].fill(0.0);
                let at = lo + kj - pw;
                kern.copy_rows(&mut rest[lo..], out_w, &src[at..], d.w, hi - lo, h);
                kern.zero_rows(rest, out_w, lo, h);
                kern.zero_rows(&mut rest[hi..], out_w, out_w - hi, h);
            }
        });
    }

    /// Each tap of an output channel as `(layer, kernels)`: its index in the layer's order,
    /// `(ci * kh + ki) * kw + kj`, and where the kernels read it: `(ci * kw + kj) * kh + ki`
    /// when shifted, else the same index.
    fn tap_order(&self) -> impl Iterator<Item = (usize, usize)> {
        let ([cin, kh, kw], shifted) = (
            [self.padded.cin, self.padded.kh, self.padded.kw],
            self.shifted,
        );
        (0..cin).flat_map(move |ci| {
            (0..kh).flat_map(move |ki| {
                (0..kw).map(move |kj| {
                    let layer = (ci * kh + ki) * kw + kj;
                    (
                        layer,
                        if shifted {
                            (ci * kw + kj) * kh + ki
                        } else {
                            layer
                        },
                    )
                })
            })
        })
    }

    /// The weights `[cout, cin, kh, kw]` with each output channel's taps in the order the
    /// kernels read them (see [`DirectInput::tap_order`]). Writes `dst` (`weight.len()`
    /// floats).
    pub(crate) fn order_weights(&self, weight: &[f32], dst: &mut [f32]) {
        let taps = self.padded.cin * self.padded.kh * self.padded.kw;
        for (w, o) in weight.chunks_exact(taps).zip(dst.chunks_exact_mut(taps)) {
            for (layer, kernels) in self.tap_order() {
                o[kernels] = w[layer];
            }
        }
    }

    /// Puts each row of a weight gradient the kernels summed in their tap order (see
    /// [`DirectInput::tap_order`]) back into the layer's order, in place.
    pub(crate) fn restore_grad_order(&self, dw: &mut [f32]) {
        if !self.shifted {
            return;
        }
        let taps = self.padded.cin * self.padded.kh * self.padded.kw;
        let mut row = [0.0f32; DIRECT_MAX_DEPTH];
        for g in dw.chunks_exact_mut(taps) {
            row[..taps].copy_from_slice(g);
            for (layer, kernels) in self.tap_order() {
                g[layer] = row[kernels];
            }
        }
    }
}

/// Along one axis (padding `pad`, input size `size`, kernel size `k`): the kernel taps
/// `k0..k1` that read any real input for outputs `first..=last` at stride `s` and dilation
/// `d`. Output `o` reads input `o * s + i * d - pad` with tap `i`, so taps below `k0` stay
/// before the input for every output, and taps from `k1` on after it. (Where `s > 1`, a tap
/// in between may still read only padding; it runs, its terms zero.)
pub(crate) fn kernel_span(
    pad: usize,
    size: usize,
    k: usize,
    [first, last]: [usize; 2],
    s: usize,
    d: usize,
) -> [usize; 2] {
    let k0 = pad.saturating_sub(last * s).div_ceil(d).min(k);
    let k1 = (pad + size).saturating_sub(first * s).div_ceil(d).min(k);
    [k0, k1.max(k0)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Conv2dParams;

    /// A layer with padding `[1, 2]`, two input channels and a 3 x 3 kernel, its input read
    /// as shifted copies.
    fn shifted() -> (Conv2dShape, DirectInput) {
        let p = Conv2dParams {
            padding: [1, 2],
            ..Conv2dParams::default()
        };
        let s = Conv2dShape::new([2, 2, 5, 6], [4, 2, 3, 3], p).expect("valid test shape");
        let d = DirectInput {
            padded: Padded::new(&s),
            shifted: true,
        };
        (s, d)
    }

    #[test]
    fn shifted_copies_hold_each_padded_row_shifted_by_its_column() {
        let (s, d) = shifted();
        let x: Vec<f32> = (0..s.input_len()).map(|i| i as f32 + 1.0).collect();
        let p = d.padded;
        let mut padded = vec![f32::NAN; p.buf_len(2)];
        p.pad(Kernel::current(), &x, &mut padded, Par::Seq);
        let mut copies = vec![f32::NAN; d.buf_len(2)];
        d.fill(Kernel::current(), &x, &mut copies, Par::Seq);
        let (rows, out_w) = (p.out_h + p.kh - 1, p.out_w);
        for plane in 0..2 * p.cin {
            for kj in 0..p.kw {
                for r in 0..rows {
                    for ow in 0..out_w {
                        let got = copies[((plane * p.kw + kj) * rows + r) * out_w + ow];
                        let want = padded[plane * p.xs + r * p.xw + ow + kj];
                        assert_eq!(got, want, "plane {plane}, copy {kj}, row {r}, column {ow}");
                    }
                }
            }
        }
        assert!(copies[2 * d.image_len()..].iter().all(|&v| v == 0.0));
    }

    #[test]
    fn weight_taps_reorder_and_gradients_come_back_in_layer_order() {
        let (s, d) = shifted();
        let w: Vec<f32> = (0..s.weight_len()).map(|i| i as f32).collect();
        let mut ordered = vec![0.0; w.len()];
        d.order_weights(&w, &mut ordered);
        let [cin, kh, kw] = [2, 3, 3];
        for co in 0..4 {
            for ci in 0..cin {
                for ki in 0..kh {
                    for kj in 0..kw {
                        let at = co * cin * kh * kw;
                        assert_eq!(
                            ordered[at + (ci * kw + kj) * kh + ki],
                            w[at + (ci * kh + ki) * kw + kj]
                        );
                    }
                }
            }
        }
        d.restore_grad_order(&mut ordered);
        assert_eq!(ordered, w);
    }
}
