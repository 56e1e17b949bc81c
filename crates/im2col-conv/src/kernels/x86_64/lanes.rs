//! x86-64 backward-data kernel with the images of a batch in the vector lanes: one
//! `#[inline(always)]` body over the parent's `Vector` trait, instantiated for AVX2+FMA and
//! AVX-512F under `#[target_feature]` wrappers.
#![allow(unsafe_code)]

use super::{Vector, Ymm, Zmm};
use crate::kernels::LANE_PIXELS;

/// Input channels per AVX2 call: 2 channels x 4 pixels make 8 `ymm` sums, with the 4 output
/// gradient vectors and a weight 13 of the 16 registers.
pub(crate) const AVX2_LANE_CHANNELS: usize = 2;
/// Input channels per AVX-512 call: 6 x 4 sums, 4 output-gradient vectors and a weight, 29 of
/// the 32 `zmm`.
pub(crate) const AVX512_LANE_CHANNELS: usize = 6;

/// One call of the kernel: one input-gradient row of up to a tile's channels, for as many
/// images as a vector has lanes (see [`lanes_body`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct LaneRow {
    /// The output gradient, pixel-major with a vector of images per pixel: `[cout][out_h]
    /// [cols][LANES]`, its columns shifted right by `left` with zero columns around them.
    pub(crate) dyt: *const f32,
    pub(crate) cols: usize,
    pub(crate) left: usize,
    /// `[cout, out_h, out_w]`.
    pub(crate) out: [usize; 3],
    /// The layer's weights `[cout][cin][kh][kw]` and `[cin, kh, kw]`.
    pub(crate) w: *const f32,
    pub(crate) dims: [usize; 3],
    /// The layer's padding `[ph, pw]`.
    pub(crate) pad: [usize; 2],
    /// The first input channel of the call and how many it computes.
    pub(crate) ci0: usize,
    pub(crate) channels: usize,
    /// The input row computed and the input width.
    pub(crate) ih: usize,
    pub(crate) in_w: usize,
    /// The row of the input gradient, `[channels][in_w rounded up to LANE_PIXELS][LANES]`.
    pub(crate) dxt: *mut f32,
}

/// Input-gradient row `ih` of a stride-1 convolution for channels `ci0..ci0 + channels`, a
/// vector of images at a time: `dxt[c][iw] = sum_{co, ki, kj} w[co][ci0 + c][ki][kj] *
/// dyt[co][oh][ow]` with `oh = ih + ph - ki`, `ow = iw + pw - kj` inside the output. Each
/// tile of [`LANE_PIXELS`] pixels sums over `co`, then the kernel rows that reach real
/// output rows, then the union of the kernel columns its pixels reach (a pixel outside that
/// column's reach reads one of the zero columns). No sum crosses lanes, so each image's
/// result is the same whichever images share its vector.
///
/// # Safety
/// The CPU has `V`'s features; `dyt` is readable for `cout * out_h * cols * LANES` floats
/// with `cols >= out_w + left + 3` and `left >= min(kw - 1, 3)`, its columns `< left` and
/// `>= left + out_w` zero; `w` readable for `cout * cin * kh * kw` floats; `1 <= channels <=
/// CB`, `ci0 + channels <= cin`; `dxt` writable for `channels * in_w.next_multiple_of(4) *
/// LANES` floats.
#[inline(always)]
unsafe fn lanes_body<V: Vector, const CB: usize>(call: LaneRow) {
    let LaneRow {
        dyt,
        cols,
        left,
        out: [cout, out_h, out_w],
        w,
        dims: [cin, kh, kw],
        pad: [ph, pw],
        ci0,
        channels,
        ih,
        in_w,
        dxt,
    } = call;
    let lanes = V::LANES;
    let taps = kh * kw;
    let row_len = in_w.next_multiple_of(LANE_PIXELS) * lanes;
    // Kernel rows reaching a real output row: `oh = ih + ph - ki` in `0..out_h`.
    let (k0, k1) = ((ih + ph + 1).saturating_sub(out_h), kh.min(ih + ph + 1));
    // SAFETY: tile pixel `iw0 + j` reads column `iw0 + j + pw - kj + left` of row `oh`, with
    // `kj` in the tiles' union `(iw0 + pw + 1).saturating_sub(out_w)..min(kw, iw0 + pw +
    // 4)`: at least `iw0 + pw - kj + left >= left - min(kw - 1, 3) >= 0` (as `kj <= iw0 + pw
    // + 3` and `kj <= kw - 1`) and at most `out_w - 1 + left + 3 < cols` (as `kj >= iw0 + pw
    // + 1 - out_w`, or `kj >= 0` with `iw0 + pw + 1 <= out_w`). `oh < out_h` by the kernel
    // rows' range. Weight reads use channels clamped below `channels`; stores write rows
    // `c < channels` of `dxt`, whose pixels run to `in_w` rounded up to the tile.
    unsafe {
        let wch: [*const f32; CB] =
            std::array::from_fn(|c| w.add((ci0 + c.min(channels - 1)) * taps));
        for iw0 in (0..in_w).step_by(LANE_PIXELS) {
            let (j0, j1) = ((iw0 + pw + 1).saturating_sub(out_w), kw.min(iw0 + pw + 4));
            let mut acc = [[V::zero(); LANE_PIXELS]; CB];
            for co in 0..cout {
                let wco = co * cin * taps;
                for ki in k0..k1 {
                    let row = dyt.add((co * out_h + ih + ph - ki) * cols * lanes);
                    for kj in j0..j1 {
                        let first = row.add((iw0 + pw + left - kj) * lanes);
                        let d: [V; LANE_PIXELS] =
                            std::array::from_fn(|j| V::load(first.add(j * lanes)));
                        let t = wco + ki * kw + kj;
                        for (a, wc) in acc.iter_mut().zip(&wch) {
                            let wv = V::splat(*wc.add(t));
                            for (s, &dj) in a.iter_mut().zip(&d) {
                                *s = wv.fma(dj, *s);
                            }
                        }
                    }
                }
            }
            for (c, a) in acc.iter().enumerate().take(channels) {
                let out = dxt.add(c * row_len + iw0 * lanes);
                for (j, s) in a.iter().enumerate() {
                    s.store(out.add(j * lanes));
                }
            }
        }
    }
}

/// The AVX2+FMA lane kernel: 8 images, tiles of [`AVX2_LANE_CHANNELS`] channels.
///
/// # Safety
/// The CPU has AVX2 and FMA; `call` satisfies [`lanes_body`]'s contract with 8 lanes.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn lanes_avx2(call: LaneRow) {
    // SAFETY: forwarded from this function's contract.
    unsafe { lanes_body::<Ymm, AVX2_LANE_CHANNELS>(call) }
}

/// The AVX-512F lane kernel: 16 images, tiles of [`AVX512_LANE_CHANNELS`] channels.
///
/// # Safety
/// The CPU has AVX-512F; `call` satisfies [`lanes_body`]'s contract with 16 lanes.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn lanes_avx512(call: LaneRow) {
    // SAFETY: forwarded from this function's contract.
    unsafe { lanes_body::<Zmm, AVX512_LANE_CHANNELS>(call) }
}
