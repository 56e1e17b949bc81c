//! x86-64 kernels of the Winograd forward route (`F(2, 3)` along the columns, see
//! `crate::winograd`): the input transform of a pair of output rows and the register tiles of
//! transformed products, `#[inline(always)]` bodies over the parent's `Vector` trait,
//! instantiated for AVX-512F under `#[target_feature]` wrappers.
//!
//! There is no AVX2 instantiation: its 16 `ymm` hold one channel's 4 x 2 sums with their
//! operands, two loads and a broadcast per two multiply-adds, and on `cifar.stem` at one
//! thread that ran at 74-76 GFLOP/s against 93-99 for the direct row kernel.
#![allow(unsafe_code)]

use super::{Vector, Zmm};
use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};

/// Output channels per tile at AVX-512: 4 transformed rows x 3 channels x 2 vectors = 24
/// `zmm` sums, with the two input vectors and the broadcast 27 of the 32 registers.
pub(crate) const AVX512_WINOGRAD_CO: usize = 3;

/// The input transform of one pair of output rows: for every chunk `k` of `2 * LANES`
/// output columns, input channel `ci` and kernel column `kx`, with `d_j` the `2 * LANES`
/// floats at `x + ci * xs + j * xw + k * 2 * LANES + kx` (`j < 4`, the four padded input rows
/// the pair reads), writes `d0 - d2`, `d1 + d2`, `d2 - d1`, `d1 - d3` in that order, each
/// `2 * LANES` floats, at `v + ((k * 3 * cin + 3 * ci + kx) * 4) * 2 * LANES`.
///
/// # Safety
/// The CPU has `V`'s features; `x` is readable for `(cin - 1) * xs + 3 * xw + chunks * 2 *
/// LANES + 2` floats and `v` writable for `chunks * 3 * cin * 8 * LANES`.
#[inline(always)]
unsafe fn inputs_body<V: Vector>(
    x: *const f32,
    [xs, xw]: [usize; 2],
    cin: usize,
    chunks: usize,
    v: *mut f32,
) {
    let l = V::LANES;
    // SAFETY: every load reads `x` at `ci * xs + j * xw + k * 2 * l + kx + h * l .. + l` with
    // `ci < cin`, `j <= 3`, `k < chunks`, `kx <= 2`, `h <= 1`: inside the readable extent;
    // every store writes one of the `chunks * 3 * cin * 8` vectors of `v`.
    unsafe {
        for k in 0..chunks {
            for ci in 0..cin {
                for kx in 0..3 {
                    let dst = v.add((k * 3 * cin + 3 * ci + kx) * 8 * l);
                    for h in 0..2 {
                        let src = x.add(ci * xs + k * 2 * l + kx + h * l);
                        let d0 = V::load(src);
                        let d1 = V::load(src.add(xw));
                        let d2 = V::load(src.add(2 * xw));
                        let d3 = V::load(src.add(3 * xw));
                        let dst = dst.add(h * l);
                        d0.sub(d2).store(dst);
                        d1.add(d2).store(dst.add(2 * l));
                        d2.sub(d1).store(dst.add(4 * l));
                        d1.sub(d3).store(dst.add(6 * l));
                    }
                }
            }
        }
    }
}

/// How far ahead of the tile it computes, in output channels, a tile prefetches the outputs
/// it will write into L1: about four tiles of three channels, time enough for a line to
/// come from memory. Without it, the stores of an output larger than the caches wait on
/// their lines (`cifar.stem`, 16 MiB for 64 images: 119 against 131 GFLOP/s with it at
/// one thread); on an output that stays in L3 it costs about 2% (two channels of 28 x 28 to
/// 32, 5.5 MiB: 94 against 96).
const PREFETCH_CHANNELS: usize = 12;

/// One call of the Winograd tiles: a chunk of one pair of output rows, for a block of
/// output channels (see [`row_body`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct WinogradRow {
    /// The transformed inputs of the chunk: `sources` blocks of 4 x 2 vectors.
    pub(crate) v: *const f32,
    /// The transformed weights of the block's channels, tile after tile of `COB` channels
    /// (the last may be narrower), each `sources` blocks of 4 x its width.
    pub(crate) u: *const f32,
    pub(crate) sources: usize,
    /// The channels' bias, or null.
    pub(crate) bias: *const f32,
    /// Output channels of the block.
    pub(crate) channels: usize,
    /// The chunk's first output in the block's first channel, the channel stride and the
    /// row width.
    pub(crate) y: *mut f32,
    pub(crate) ys: usize,
    pub(crate) out_w: usize,
    /// Output rows stored (1 or 2) and columns of each (at most `2 * LANES`).
    pub(crate) rows: usize,
    pub(crate) cols: usize,
    /// The first output of the chunk the block computes next (null after the last): the
    /// last tiles prefetch its first channels.
    pub(crate) next: *const f32,
}

/// The chunk's tiles, channel block after channel block: [`tile_body`] for channels `c0..c0 +
/// COB` (a narrower last tile on its own width), each prefetching the outputs
/// `PREFETCH_CHANNELS` channels ahead (in the next chunk past the block's last channel).
///
/// # Safety
/// The CPU has `V`'s features; `v` is readable for `sources * 8 * LANES` floats, `u` for
/// `channels * sources * 4`, `bias` (unless null) for `channels`; `y` writable at `c * ys + r *
/// out_w + col` for `c < channels`, `r < rows`, `col < cols`; `1 <= rows <= 2`, `1 <= cols <= 2 *
/// LANES`. `next` may be any address (prefetches do not fault).
#[inline(always)]
unsafe fn row_body<V: Vector, const COB: usize>(r: WinogradRow) {
    // SAFETY: each tile's operands and outputs lie inside the extents of the contract: its
    // weights at `c0 * sources * 4`, its bias at `c0`, its outputs from channel `c0`, at
    // most `channels - c0` channels.
    unsafe {
        for c0 in (0..r.channels).step_by(COB) {
            let width = COB.min(r.channels - c0);
            let ahead = c0 + PREFETCH_CHANNELS;
            let prefetch = if ahead + width <= r.channels {
                r.y.wrapping_add(ahead * r.ys) as *const f32
            } else if !r.next.is_null() {
                let c = ahead.saturating_sub(r.channels).min(r.channels - width);
                r.next.wrapping_add(c * r.ys)
            } else {
                std::ptr::null()
            };
            let t = Tile {
                v: r.v,
                u: r.u.add(c0 * r.sources * 4),
                sources: r.sources,
                bias: if r.bias.is_null() {
                    r.bias
                } else {
                    r.bias.add(c0)
                },
                y: r.y.add(c0 * r.ys),
                ys: r.ys,
                out_w: r.out_w,
                rows: r.rows,
                cols: r.cols,
                prefetch,
            };
            if width == COB {
                tile_body::<V, COB>(t)
            } else if width == 1 {
                tile_body::<V, 1>(t)
            } else {
                tile_body::<V, 2>(t)
            }
        }
    }
}

/// One tile: its operands and where its outputs go (see [`tile_body`]).
#[derive(Clone, Copy)]
struct Tile {
    v: *const f32,
    u: *const f32,
    sources: usize,
    bias: *const f32,
    y: *mut f32,
    ys: usize,
    out_w: usize,
    rows: usize,
    cols: usize,
    prefetch: *const f32,
}

/// The products of one tile of `C` channels: for `c < C`, `i < 4` and `h < 2`, `m_i =
/// sum_s u[(s * 4 + i) * C + c] * v[(s * 4 + i) * 2 * LANES + h * LANES ..]` over the sources
/// in order, then the output transform `y[row 0] = m_0 + bias + (m_1 + m_2)` and `y[row 1] =
/// (m_1 - m_2) + bias - m_3`, stored at `y + c * ys + r * out_w` for `r < rows`, `cols` floats
/// each.
///
/// # Safety
/// The CPU has `V`'s features; `v` is readable for `sources * 8 * LANES` floats, `u` for
/// `sources * 4 * C`, `bias` (unless null) for `C`; `y` writable at `c * ys + r * out_w + col`
/// for `c < C`, `r < rows`, `col < cols`; `rows <= 2`, `cols <= 2 * LANES`. `prefetch` may be
/// any address (prefetches do not fault).
#[inline(always)]
unsafe fn tile_body<V: Vector, const C: usize>(t: Tile) {
    let l = V::LANES;
    // SAFETY: loads read `v`, `u` and the bias inside the extents of the contract; stores
    // write `cols` floats of `rows` rows of the `C` channels, each full store inside the
    // row, the others masked to it.
    unsafe {
        if !t.prefetch.is_null() {
            for c in 0..C {
                for r in 0..t.rows {
                    let line = t.prefetch.wrapping_add(c * t.ys + r * t.out_w) as *const i8;
                    _mm_prefetch::<_MM_HINT_T0>(line);
                    _mm_prefetch::<_MM_HINT_T0>(line.wrapping_add(t.cols * 4 - 1));
                    if t.cols * 4 > 128 {
                        _mm_prefetch::<_MM_HINT_T0>(line.wrapping_add(64));
                    }
                }
            }
        }
        let mut acc = [[[V::zero(); 2]; C]; 4];
        let (mut v, mut u) = (t.v, t.u);
        for _ in 0..t.sources {
            for (i, sums) in acc.iter_mut().enumerate() {
                let v0 = V::load(v.add(i * 2 * l));
                let v1 = V::load(v.add(i * 2 * l + l));
                for (c, s) in sums.iter_mut().enumerate() {
                    let w = V::splat(*u.add(i * C + c));
                    s[0] = w.fma(v0, s[0]);
                    s[1] = w.fma(v1, s[1]);
                }
            }
            v = v.add(8 * l);
            u = u.add(4 * C);
        }
        // The bias is added here, not used to start the sums: starting `m_0` from it and
        // `m_3` from its negative ran no faster.
        let [s0, s1, s2, s3] = &acc;
        for (c, (((s0, s1), s2), s3)) in s0.iter().zip(s1).zip(s2).zip(s3).enumerate() {
            let b = if t.bias.is_null() {
                V::zero()
            } else {
                V::splat(*t.bias.add(c))
            };
            let y = t.y.add(c * t.ys);
            for (h, (((&m0, &m1), &m2), &m3)) in s0.iter().zip(s1).zip(s2).zip(s3).enumerate() {
                let n = t.cols.saturating_sub(h * l).min(l);
                m0.add(b).add(m1.add(m2)).store_part(y.add(h * l), n);
                if t.rows == 2 {
                    m1.sub(m2)
                        .add(b)
                        .sub(m3)
                        .store_part(y.add(t.out_w + h * l), n);
                }
            }
        }
    }
}

/// Defines a level's Winograd kernels: the input transform and the tiles of a chunk.
/// Instantiated for AVX-512 only (see the module's comment).
macro_rules! winograd_entry {
    ($inputs:ident, $rows:ident, $feature:literal, $vector:ty, $cob:expr) => {
        /// [`inputs_body`] at this level.
        ///
        /// # Safety
        /// The CPU has the level's features; the pointers satisfy [`inputs_body`]'s contract.
        #[target_feature(enable = $feature)]
        pub(crate) unsafe fn $inputs(
            x: *const f32,
            strides: [usize; 2],
            cin: usize,
            chunks: usize,
            v: *mut f32,
        ) {
            // SAFETY: forwarded from this function's contract.
            unsafe { inputs_body::<$vector>(x, strides, cin, chunks, v) }
        }

        /// [`row_body`] at this level.
        ///
        /// # Safety
        /// The CPU has the level's features; the pointers satisfy [`row_body`]'s contract.
        #[target_feature(enable = $feature)]
        pub(crate) unsafe fn $rows(r: WinogradRow) {
            // SAFETY: forwarded from this function's contract.
            unsafe { row_body::<$vector, { $cob }>(r) }
        }
    };
}

winograd_entry!(
    inputs_avx512,
    rows_avx512,
    "avx512f",
    Zmm,
    AVX512_WINOGRAD_CO
);
