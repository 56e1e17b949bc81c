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

/// Fewest sums a tile keeps in flight: two FMA pipes of 4 cycles' latency.
const MIN_SUMS: usize = 8;

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
/// with `cols >= out_w + left + LANE_PIXELS - 1` and `left >= min(kw - 1, LANE_PIXELS - 1)`,
/// its columns `< left` and `>= left + out_w` zero; `w` readable for `cout * cin * kh * kw`
/// floats; `1 <= channels <= CB`, `ci0 + channels <= cin`; `dxt` writable for `channels *
/// in_w.next_multiple_of(LANE_PIXELS) * LANES` floats.
#[inline(always)]
unsafe fn lanes_body<V: Vector, const CB: usize>(call: LaneRow) {
    let reach = |iw0: usize, p: usize| {
        let [j0, j1] = tile_cols(&call, iw0, p);
        j1 - j0
    };
    // SAFETY: forwarded from this function's contract; each tile starts below `in_w`, and
    // one of 2 pixels ends at most at `in_w` rounded up to 2.
    unsafe {
        let mut iw0 = 0;
        while iw0 < call.in_w {
            // Two tiles of 2 pixels where their columns cost a fifth fewer multiply-adds
            // than one of 4 (a row's first pixels reach few columns), and the row's last 1
            // or 2 pixels; but only with enough sums for the FMA pipes' latency: AVX2's 2 x
            // 2 tile ran `lenet.c2` at 65 GFLOP/s, against 71 with tiles of 4 only.
            let left = call.in_w - iw0;
            let split = left <= 2 || 10 * (reach(iw0, 2) + reach(iw0 + 2, 2)) <= 16 * reach(iw0, 4);
            if 2 * CB >= MIN_SUMS && split {
                lanes_tile::<V, CB, 2>(call, iw0);
                iw0 += 2;
            } else {
                lanes_tile::<V, CB, { LANE_PIXELS }>(call, iw0);
                iw0 += LANE_PIXELS;
            }
        }
    }
}

/// The kernel columns `j0..j1` a tile of `p` pixels from `iw0` reaches: `ow = iw + pw - kj`
/// in `0..out_w` for some pixel `iw` of the tile.
#[inline(always)]
fn tile_cols(call: &LaneRow, iw0: usize, p: usize) -> [usize; 2] {
    let ([_, _, out_w], [_, _, kw], pw) = (call.out, call.dims, call.pad[1]);
    [(iw0 + pw + 1).saturating_sub(out_w), kw.min(iw0 + pw + p)]
}

/// One tile of [`lanes_body`]: `P` pixels of the row from `iw0`, for every channel of the
/// call.
///
/// # Safety
/// As [`lanes_body`], with `iw0 < in_w` and `P <= LANE_PIXELS`.
#[inline(always)]
unsafe fn lanes_tile<V: Vector, const CB: usize, const P: usize>(call: LaneRow, iw0: usize) {
    let LaneRow {
        dyt,
        cols,
        left,
        out: [cout, out_h, _],
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
    let [j0, j1] = tile_cols(&call, iw0, P);
    // SAFETY: tile pixel `iw0 + j` reads column `iw0 + j + pw - kj + left` of row `oh`: at
    // least `left - min(kw - 1, P - 1) >= 0` (as `kj <= iw0 + pw + P - 1` and `kj <= kw -
    // 1`) and at most `out_w + P - 2 + left < cols` (as `kj >= iw0 + pw + 1 - out_w`, or
    // `kj >= 0` with `iw0 + pw + 1 <= out_w`). `oh < out_h` by the kernel rows' range.
    // Weight reads use channels clamped below `channels`; stores write rows `c < channels`
    // of `dxt` at pixels below `iw0 + P <= in_w` rounded up to the tile.
    unsafe {
        let wch: [*const f32; CB] =
            std::array::from_fn(|c| w.add((ci0 + c.min(channels - 1)) * taps));
        let mut acc = [[V::zero(); P]; CB];
        for co in 0..cout {
            let wco = co * cin * taps;
            for ki in k0..k1 {
                let row = dyt.add((co * out_h + ih + ph - ki) * cols * lanes);
                for kj in j0..j1 {
                    let first = row.add((iw0 + pw + left - kj) * lanes);
                    let d: [V; P] = std::array::from_fn(|j| V::load(first.add(j * lanes)));
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
