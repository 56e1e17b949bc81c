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
use std::arch::x86_64::{_MM_HINT_T0, _MM_HINT_T1, _mm_prefetch};

/// Output channels per tile at AVX-512: 4 transformed rows x 3 channels x 2 vectors = 24
/// `zmm` sums, with the two input vectors and the broadcast 27 of the 32 registers.
pub(crate) const AVX512_WINOGRAD_CO: usize = 3;

/// The input transform of one pair of output rows: for every chunk `k` of `2 * LANES`
/// output columns, input channel `ci` and kernel column `kx`, with `d_j` the `2 * LANES`
/// floats at `x + ci * xs + j * xw + k * 2 * LANES + kx` (`j < 4`, the four padded input rows
/// the pair reads), writes `d0 - d2`, `d1 + d2`, `d2 - d1`, `d1 - d3` in that order, each
/// `2 * LANES` floats, at `v + k * chunk_stride + (3 * ci + kx) * 8 * LANES`.
///
/// # Safety
/// The CPU has `V`'s features; `x` is readable for `(cin - 1) * xs + 3 * xw + chunks * 2 *
/// LANES + 2` floats and `v` writable for `(chunks - 1) * chunk_stride + 3 * cin * 8 *
/// LANES`; `chunk_stride >= 3 * cin * 8 * LANES`.
#[inline(always)]
unsafe fn inputs_body<V: Vector>(
    x: *const f32,
    [xs, xw]: [usize; 2],
    cin: usize,
    [chunks, chunk_stride]: [usize; 2],
    v: *mut f32,
) {
    let l = V::LANES;
    // SAFETY: every load reads `x` at `ci * xs + j * xw + k * 2 * l + kx + h * l .. + l` with
    // `ci < cin`, `j <= 3`, `k < chunks`, `kx <= 2`, `h <= 1`: inside the readable extent;
    // every store writes inside chunk `k`'s `3 * cin * 8` vectors of `v`.
    unsafe {
        for k in 0..chunks {
            for ci in 0..cin {
                for kx in 0..3 {
                    let dst = v.add(k * chunk_stride + (3 * ci + kx) * 8 * l);
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

/// Output channels and sources per tile of the weight gradient at AVX-512: 2 x 3 (one input
/// channel's kernel columns) x 4 transformed rows = 24 `zmm` sums, with the channels'
/// output-gradient rows (4), their transformed row (2) and an input vector 31 of the 32
/// registers. On `cifar.stem` at two threads: 222-238 GFLOP/s, against 206-214 for tiles
/// of 2 x 2 (16 sums) and 175-195 for the direct kernel.
pub(crate) const AVX512_WINOGRAD_GRAD_TILE: [usize; 2] = [2, 3];

/// One call of the Winograd weight gradient: one image, a block of output channels (see
/// [`grad_body`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct WinogradGrad {
    /// The image's output gradient from the block's first channel, its channel stride, and
    /// the output's height and width.
    pub(crate) dy: *const f32,
    pub(crate) ys: usize,
    pub(crate) out: [usize; 2],
    /// Chunks of `2 * LANES` columns per row.
    pub(crate) chunks: usize,
    /// The image's transformed inputs, tile after tile of `SB` sources (each tile pair
    /// after pair, chunk after chunk, its sources), their pair, chunk and tile strides, and
    /// the sources in all.
    pub(crate) v: *const f32,
    pub(crate) v_strides: [usize; 3],
    pub(crate) sources: usize,
    /// The sums from the block's first channel, and their channel stride (`4 * LANES`
    /// floats per source).
    pub(crate) g: *mut f32,
    pub(crate) gs: usize,
    /// Output channels of the block.
    pub(crate) channels: usize,
    /// The next image's output gradient from the block's first channel (null after the
    /// last), which the last tiles over each channel prefetch into L2 as they go.
    pub(crate) next_dy: *const f32,
}

/// Adds one image's products to the transformed weight gradient's sums, tile after tile of
/// `SB` sources by `CB` channels (the sources outer, so that a tile's transformed inputs stay
/// in L1 while the channels' output gradient streams past; a narrower last tile of channels
/// on its own width, of one channel as `CB` is 2): for channel `c`, source `s` and
/// transformed row `i`, `g[c * gs + (s * 4 + i) * LANES ..] += a_i * v_i` over every pair of
/// output rows and chunk, lane by lane, where `a_0 = dy_0`, `a_1 = dy_0 + dy_1`, `a_2 = dy_0 -
/// dy_1` and `a_3 = -dy_1` are the transformed rows of the pair's output gradient (`dy_1`
/// zero past the last row) and `v_i` the source's transformed input rows. Rows are whole
/// chunks: the kernel has no masked loads. The
/// first tiles over an image's output gradient read it from memory, the others from L2:
/// the last ones prefetch the next image's (`next_dy`) for the first.
///
/// # Safety
/// The CPU has `V`'s features; `dy` is readable at `c * ys + r * out_w + col` for `c <
/// channels`, `r < out_h`, `col < out_w`; `v` at `s / SB * v_strides[2] + p * v_strides[0] +
/// k * v_strides[1] + (s % SB * 4 + i) * 2 * LANES + col` for `p < out_h.div_ceil(2)`, `k <
/// chunks`, `s < sources`, `i < 4`, `col < 2 * LANES`; `g` readable and writable at `c * gs +
/// j` for `c < channels`, `j < sources * 4 * LANES`; `out_w == chunks * 2 * LANES`; `sources`
/// is a multiple of `SB` and `CB <= 2`.
#[inline(always)]
unsafe fn grad_body<V: Vector, const CB: usize, const SB: usize>(t: WinogradGrad) {
    let l = V::LANES;
    // SAFETY: each tile reads and writes the sums of its channels and sources only, reads
    // the output gradient of its channels and the transformed inputs of its sources, inside
    // the extents of the contract.
    unsafe {
        for s0 in (0..t.sources).step_by(SB) {
            let last = s0 + SB == t.sources;
            for c0 in (0..t.channels).step_by(CB) {
                let tile = WinogradGrad {
                    dy: t.dy.add(c0 * t.ys),
                    v: t.v.add(s0 / SB * t.v_strides[2]),
                    g: t.g.add(c0 * t.gs + s0 * 4 * l),
                    next_dy: if last && !t.next_dy.is_null() {
                        t.next_dy.wrapping_add(c0 * t.ys)
                    } else {
                        std::ptr::null()
                    },
                    ..t
                };
                if c0 + CB <= t.channels {
                    grad_tile::<V, CB, SB>(tile)
                } else {
                    grad_tile::<V, 1, SB>(tile)
                }
            }
        }
    }
}

/// One tile of [`grad_body`]: its first `C` channels and `S` sources.
///
/// # Safety
/// As [`grad_body`], with `C <= channels` and `S <= sources`.
#[inline(always)]
unsafe fn grad_tile<V: Vector, const C: usize, const S: usize>(t: WinogradGrad) {
    let l = V::LANES;
    let out_h = t.out[0];
    // SAFETY: as in `grad_body`.
    unsafe {
        let mut acc = [[[V::zero(); 4]; S]; C];
        for (c, sums) in acc.iter_mut().enumerate() {
            for (s, rows) in sums.iter_mut().enumerate() {
                for (i, a) in rows.iter_mut().enumerate() {
                    *a = V::load(t.g.add(c * t.gs + (s * 4 + i) * l));
                }
            }
        }
        // Prefetches of the next image's rows go to this image's when there is none (a
        // harmless reload of lines in cache), so that the loop has no branch for them.
        let next = if t.next_dy.is_null() { t.dy } else { t.next_dy };
        // Whole pairs, then an odd last row: each loop straight-line, with no choice per
        // vector (with a `match` on the row's kind inside the loop, the compiler copied the
        // sums between registers on every step).
        for p in 0..out_h / 2 {
            grad_pair::<V, C, S, true>(&mut acc, t, next, p);
        }
        if out_h % 2 == 1 {
            grad_pair::<V, C, S, false>(&mut acc, t, next, out_h / 2);
        }
        for (c, sums) in acc.iter().enumerate() {
            for (s, rows) in sums.iter().enumerate() {
                for (i, a) in rows.iter().enumerate() {
                    a.store(t.g.add(c * t.gs + (s * 4 + i) * l));
                }
            }
        }
    }
}

/// Every vector of pair `p` of output rows (its second row if `TWO`, else taken as zero)
/// into a tile's sums.
///
/// # Safety
/// As [`grad_tile`], with `p < out_h.div_ceil(2)`, and `2 * p + 1 < out_h` if `TWO`.
#[inline(always)]
unsafe fn grad_pair<V: Vector, const C: usize, const S: usize, const TWO: bool>(
    acc: &mut [[[V; 4]; S]; C],
    t: WinogradGrad,
    next: *const f32,
    p: usize,
) {
    let l = V::LANES;
    let out_w = t.out[1];
    let row = 2 * p * out_w;
    // SAFETY: forwarded from this function's contract; columns `col < chunks * 2 * LANES
    // = out_w`.
    unsafe {
        for k in 0..t.chunks {
            let v = t.v.add(p * t.v_strides[0] + k * t.v_strides[1]);
            for h in 0..2 {
                let col = k * 2 * l + h * l;
                let step = GradStep {
                    dy: t.dy.add(row + col),
                    next: next.wrapping_add(row + col),
                    ys: t.ys,
                    out_w,
                    v: v.add(h * l),
                };
                grad_step::<V, C, S, TWO>(acc, step);
            }
        }
    }
}

/// Where one vector of a pair of output rows reads (see [`grad_step`]).
#[derive(Clone, Copy)]
struct GradStep {
    /// The first channel's output gradient at the pair's first row and the vector's column
    /// (and the next image's, prefetched), the channel stride and the row width.
    dy: *const f32,
    next: *const f32,
    ys: usize,
    out_w: usize,
    /// The first source's transformed inputs at the vector's column.
    v: *const f32,
}

/// The products of one vector of a pair of output rows into a tile's sums, with the pair's
/// second row if `TWO` (else taken as zero).
///
/// # Safety
/// The CPU has `V`'s features; the reads stay inside `grad_body`'s contract (the vector
/// inside the row, of the second row only if `TWO`).
#[inline(always)]
unsafe fn grad_step<V: Vector, const C: usize, const S: usize, const TWO: bool>(
    acc: &mut [[[V; 4]; S]; C],
    st: GradStep,
) {
    let l = V::LANES;
    // SAFETY: as in the contract; prefetches do not fault.
    unsafe {
        for c in 0..C {
            for r in 0..1 + usize::from(TWO) {
                let line = st.next.wrapping_add(c * st.ys + r * st.out_w) as *const i8;
                _mm_prefetch::<_MM_HINT_T1>(line);
            }
        }
        let d0: [V; C] = std::array::from_fn(|c| V::load(st.dy.add(c * st.ys)));
        let d1: [V; C] = std::array::from_fn(|c| {
            if TWO {
                V::load(st.dy.add(c * st.ys + st.out_w))
            } else {
                V::zero()
            }
        });
        for i in 0..4 {
            let a: [V; C] = std::array::from_fn(|c| match i {
                0 => d0[c],
                1 => d0[c].add(d1[c]),
                2 => d0[c].sub(d1[c]),
                _ => d1[c],
            });
            for s in 0..S {
                let x = V::load(st.v.add((s * 4 + i) * 2 * l));
                for (c, sums) in acc.iter_mut().enumerate() {
                    let g = &mut sums[s][i];
                    *g = if i == 3 {
                        a[c].fnma(x, *g)
                    } else {
                        a[c].fma(x, *g)
                    };
                }
            }
        }
    }
}

/// Defines a level's Winograd kernels: the input transform and the tiles of a chunk.
/// Instantiated for AVX-512 only (see the module's comment).
macro_rules! winograd_entry {
    ($inputs:ident, $rows:ident, $grad:ident, $feature:literal, $vector:ty, $cob:expr, $gtile:expr) => {
        /// [`inputs_body`] at this level.
        ///
        /// # Safety
        /// The CPU has the level's features; the pointers satisfy [`inputs_body`]'s contract.
        #[target_feature(enable = $feature)]
        pub(crate) unsafe fn $inputs(
            x: *const f32,
            strides: [usize; 2],
            cin: usize,
            chunks: [usize; 2],
            v: *mut f32,
        ) {
            // SAFETY: forwarded from this function's contract.
            unsafe { inputs_body::<$vector>(x, strides, cin, chunks, v) }
        }

        /// [`grad_body`] at this level.
        ///
        /// # Safety
        /// The CPU has the level's features; the pointers satisfy [`grad_body`]'s contract.
        #[target_feature(enable = $feature)]
        pub(crate) unsafe fn $grad(t: WinogradGrad) {
            // SAFETY: forwarded from this function's contract.
            unsafe { grad_body::<$vector, { $gtile[0] }, { $gtile[1] }>(t) }
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
    grad_avx512,
    "avx512f",
    Zmm,
    AVX512_WINOGRAD_CO,
    AVX512_WINOGRAD_GRAD_TILE
);
