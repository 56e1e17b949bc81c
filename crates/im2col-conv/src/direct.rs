//! The direct kernels' side of a convolution with few input channels: when they apply, and
//! the zero-padded copy of the input they read (so that the kernels never test for padding).

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
        p.kernel.direct_channels().is_some()
            && s.params.groups == 1
            && s.params.stride == [1, 1]
            && s.params.dilation == [1, 1]
            && !p.pointwise
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
    /// zeroes the rest of `buf` (the kernels' read margin). Each plane is zeroed just before
    /// its rows are copied in, while it is in the cache: zeroing the whole buffer first wrote
    /// everything twice to memory (5% of `resnet20`'s training step), and zeroing only the
    /// border costs a call per row. In `Split` mode the planes spread over the threads: when
    /// one image is split across them, a serial copy would leave them idle.
    pub(crate) fn pad(&self, x: &[f32], buf: &mut [f32], par: Par) {
        let [ph, pw] = self.pad;
        let plane = self.h * self.w;
        let planes = x.len() / plane.max(1);
        let (body, margin) = buf.split_at_mut(planes * self.xs);
        margin.fill(0.0);
        for_chunks(body, self.xs, par, |i, dst| {
            dst.fill(0.0);
            let src = &x[i * plane..(i + 1) * plane];
            for (r, row) in src.chunks_exact(self.w).enumerate() {
                let at = (r + ph) * self.xw + pw;
                dst[at..at + self.w].copy_from_slice(row);
            }
        });
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
