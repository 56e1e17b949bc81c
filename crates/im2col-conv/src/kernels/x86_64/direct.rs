//! x86-64 direct convolution kernels for layers with few input channels: the forward row
//! kernel and the weight-gradient kernel, each one `#[inline(always)]` body over the parent's
//! `Vector` trait, instantiated for AVX2+FMA and AVX-512F under `#[target_feature]` wrappers.
#![allow(unsafe_code)]

use super::{Vector, Ymm, Zmm};
use crate::direct::kernel_span;
use std::arch::x86_64::{_MM_HINT_T1, _mm_prefetch};

/// Output channels per call of the direct kernel: AVX2 (6 x 2 `ymm` accumulators, 15 of the 16
/// registers with the two input vectors and the broadcast: 8 accumulators left two FMA
/// pipes of latency 4 no slack; blocks of at most 4 or 2 channels run on tiles of that size).
pub(crate) const AVX2_DIRECT_CO: usize = 6;
/// Output channels per call of the direct kernel: AVX-512 (8 x 2 `zmm` accumulators; blocks
/// of at most 6 or 4 channels run on tiles of that size).
pub(crate) const AVX512_DIRECT_CO: usize = 8;

/// One call of the direct row kernel: its pointers and geometry (see [`direct_body`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RowCall {
    /// The zero-padded input, its channel plane and row strides.
    pub(crate) x: *const f32,
    pub(crate) xs: usize,
    pub(crate) xw: usize,
    /// `[cin, kh, kw]`.
    pub(crate) dims: [usize; 3],
    /// The output rows `oh0..oh1` to compute.
    pub(crate) out_rows: [usize; 2],
    /// The padding above the input and its height.
    pub(crate) vert: [usize; 2],
    /// The weights of the call's channels, and their bias (or null).
    pub(crate) w: *const f32,
    pub(crate) bias: *const f32,
    /// Output channels computed.
    pub(crate) rows: usize,
    /// The output, its channel stride and row width.
    pub(crate) y: *mut f32,
    pub(crate) ys: usize,
    pub(crate) out_w: usize,
}

/// Direct convolution of output rows `oh0..oh1` (stride 1, dilation 1) for up to `COB` output
/// channels, vectorised over the output width, two vectors at a time (with `PAIR`, rows at
/// most one vector wide taken two at a time: the second vector is the next output row, so
/// `out_w <= LANES` and `oh1 - oh0` is even): `y[co * ys + oh * out_w + ow] = bias[co] +
/// sum_{ci, ki, kj} w[co * wk + (ci * kh + ki) * kw + kj] * x[ci * xs + (oh + ki) * xw + ow +
/// kj]` for `co < rows`, where `x` is the zero-padded plane, and `ki` runs only over the kernel
/// rows that read real input for the row (or pair): with `[pad, h]` the padding above and the
/// height of the real input, the others read only padding, and their terms are zero. Each sum
/// runs over `ci`, `ki`, `kj` in order, started from the bias (or zero). One call takes a
/// whole block of rows so that its set-up is paid once: `mnist.c1`'s rows are only 9
/// multiply-adds deep.
///
/// # Safety
/// The CPU has `V`'s features; `x` is readable for `(cin - 1) * xs + (oh1 - 1 + kh - 1) * xw +
/// out_w.next_multiple_of(2 * LANES) + kw - 1` floats; `w` for `rows * wk` floats with
/// `wk = cin * kh * kw`; `bias`, unless null, for `rows`; `y` writable at `co * ys + oh *
/// out_w + ow` for `co < rows`, `oh0 <= oh < oh1`, `ow < out_w`; `1 <= rows <= COB`. With
/// `PAIR`: `out_w <= LANES`, `oh1 - oh0` even, and `x` readable for `(cin - 1) * xs + (oh1 - 1 +
/// kh - 1) * xw + LANES + kw - 1` floats. With `KW1`: `kw == 1`.
#[inline(always)]
unsafe fn direct_body<V: Vector, const COB: usize, const PAIR: bool, const KW1: bool>(
    call: RowCall,
) {
    let RowCall {
        x,
        xs,
        xw,
        dims: [cin, kh, kw],
        out_rows: [oh0, oh1],
        vert: [pad, h],
        w,
        bias,
        rows,
        y,
        ys,
        out_w,
    } = call;
    // One column (the view of shifted copies, see `DirectInput`), known when compiling so
    // that the column loop goes away: AVX2 `mnist.c1` 64 -> 78 GFLOP/s at one thread.
    let kw = if KW1 { 1 } else { kw };
    let wk = cin * kh * kw;
    let lanes = V::LANES;
    // The second vector's inputs: the next `lanes` of the row, or (a pair of rows at most
    // one vector wide, whose outputs lie back to back) the next input row.
    let (x_second, width) = if PAIR { (xw, lanes) } else { (lanes, out_w) };
    let step = if PAIR { 2 } else { 1 };
    // SAFETY: the loads read `x` at `ci * xs + (oh + ki) * xw + ow0 + kj + x_second .. +
    // lanes` (and the first vector below it) with `oh < oh1`, `ki < kh` and `ow0 + 2 * lanes
    // <= out_w.next_multiple_of(2 * lanes)`, or with `PAIR` `ow0 = 0`, `oh + 1 < oh1` and
    // `x_second = xw`: inside the readable extent. Weight and bias reads use rows clamped
    // below `rows`. Stores of full vectors stay below `out_w` (with `PAIR`, below `2 *
    // out_w`) in row `oh`; partial ones are masked to the row.
    unsafe {
        let wrow: [*const f32; COB] = std::array::from_fn(|co| w.add(co.min(rows - 1) * wk));
        for oh in (oh0..oh1).step_by(step) {
            let [k0, k1] = kernel_span(pad, h, kh, [oh, oh + step - 1], 1, 1);
            let x = x.add(oh * xw);
            let y = y.add(oh * out_w);
            for ow0 in (0..width).step_by(2 * lanes) {
                let mut acc = [[V::zero(); 2]; COB];
                if !bias.is_null() {
                    for (co, a) in acc.iter_mut().enumerate() {
                        let b = V::splat(*bias.add(co.min(rows - 1)));
                        *a = [b, b];
                    }
                }
                for ci in 0..cin {
                    for ki in k0..k1 {
                        let xr = x.add(ci * xs + ki * xw + ow0);
                        let t = (ci * kh + ki) * kw;
                        for kj in 0..kw {
                            let x0 = V::load(xr.add(kj));
                            let x1 = V::load(xr.add(kj + x_second));
                            for (co, a) in acc.iter_mut().enumerate() {
                                let wv = V::splat(*wrow[co].add(t + kj));
                                a[0] = wv.fma(x0, a[0]);
                                a[1] = wv.fma(x1, a[1]);
                            }
                        }
                    }
                }
                for (co, a) in acc.iter().enumerate().take(rows) {
                    let yp = y.add(co * ys + ow0);
                    if PAIR {
                        // Row `oh` then row `oh + 1`, `out_w` outputs each.
                        a[0].store_part(yp, out_w);
                        a[1].store_part(yp.add(out_w), out_w);
                    } else {
                        let left = (width - ow0).min(2 * lanes);
                        a[0].store_part(yp, left.min(lanes));
                        a[1].store_part(yp.add(lanes), left.saturating_sub(lanes));
                    }
                }
            }
        }
    }
}

/// [`direct_body`] for one tile width, the pair mode and a one-column kernel chosen at run
/// time.
///
/// # Safety
/// As [`direct_body`] with `COB` and `PAIR = pair`.
#[inline(always)]
unsafe fn direct_tile<V: Vector, const COB: usize>(pair: bool, call: RowCall) {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        if pair {
            direct_body::<V, COB, true, false>(call)
        } else if call.dims[2] == 1 {
            direct_body::<V, COB, false, true>(call)
        } else {
            direct_body::<V, COB, false, false>(call)
        }
    }
}

/// Defines the direct row kernel of one level over three tile widths: a call runs on the
/// narrowest that holds its `rows`, so a block of fewer channels (`lenet.c1`'s 6, a ragged
/// last block) does not multiply clamped copies of its last channel.
macro_rules! direct_entry {
    ($(#[$doc:meta])* $name:ident, $feature:literal, $vector:ty, [$small:expr, $mid:expr, $wide:expr]) => {
        $(#[$doc])*
        ///
        /// # Safety
        /// The CPU has the level's features; the pointers satisfy [`direct_body`]'s contract
        /// for `rows` channels (at most the widest tile) and `PAIR = pair`.
        #[target_feature(enable = $feature)]
        pub(crate) unsafe fn $name(call: RowCall, pair: bool) {
            // SAFETY: forwarded from this function's contract; a narrower tile only
            // computes fewer of the `rows` it is given (`rows <= COB` still holds).
            unsafe {
                if call.rows <= $small {
                    direct_tile::<$vector, { $small }>(pair, call)
                } else if call.rows <= $mid {
                    direct_tile::<$vector, { $mid }>(pair, call)
                } else {
                    direct_tile::<$vector, { $wide }>(pair, call)
                }
            }
        }
    };
}

direct_entry!(
    /// The AVX2+FMA direct row kernel: tiles of 2, 4 and [`AVX2_DIRECT_CO`] channels.
    direct_avx2,
    "avx2,fma",
    Ymm,
    [2, 4, AVX2_DIRECT_CO]
);
direct_entry!(
    /// The AVX-512F direct row kernel: tiles of 4, 6 and [`AVX512_DIRECT_CO`] channels.
    direct_avx512,
    "avx512f",
    Zmm,
    [4, 6, AVX512_DIRECT_CO]
);

/// Weight-gradient tiles of the direct backward-weight kernel, AVX2: output channels x taps
/// (9 or 10 sums, with their operands, in the 16 `ymm`). `3 x 4` was the first tile until the
/// taps were spread over tiles of nearly equal width; since then its loop keeps sums on the
/// stack (`cifar.stem` 62 -> 42 GFLOP/s at one thread), and `3 x 3` runs it at 58-63, level
/// with `2 x 5` on `mnist.c1` (80-81) and `lenet.c1` (62-63).
pub(crate) const AVX2_WGRAD: [(usize, usize); 2] = [(3, 3), (2, 5)];
/// Weight-gradient tiles of the direct backward-weight kernel, AVX-512: output channels x
/// taps. At most 21 sums leave the compiler registers to spare for the operands: with 24
/// (`4 x 6`, `6 x 4`) or 20 arranged `5 x 4`, it kept some on the stack (a 5-channel layer
/// on `5 x 4`: 27-46 GFLOP/s at one thread, against 53-70 on `3 x 7`). `lenet.c1` (25 taps,
/// 6 channels) runs at 78 on `3 x 7` against 58 on `4 x 5`; `cifar.stem` and `mnist.c1` run
/// fastest on `4 x 5` of the eleven tiles from `2 x 9` to `6 x 3` timed.
pub(crate) const AVX512_WGRAD: [(usize, usize); 2] = [(4, 5), (3, 7)];

/// Floats of output-gradient tile rows and input planes that one group of images of
/// [`wgrad_body`] reads (256 KiB, a quarter of L2): the sums stay in registers across the
/// group, and are summed across lanes once per group, not once per image. At one thread
/// (groups of one image before): `mnist.c1` 63 -> 71 GFLOP/s, `cifar.stem` 63 -> 68,
/// `lenet.c1` 58 -> 63.
const WGRAD_GROUP_FLOATS: usize = 64 * 1024;

/// Output-gradient floats per image of a call's channels (128 KiB) from which
/// [`wgrad_body`] prefetches each block of channels while it finishes the one before. The
/// first tile over a block otherwise waits on its rows from L3: `cifar.stem` (256 KiB an
/// image) went from 79 to 91 GFLOP/s at one thread, and from 123 to 131-136 at two (each
/// thread 32 channels, 128 KiB). Below it the prefetches only cost: with them, `mnist.c1`
/// (85 KiB) lost 2% at one thread and 3% at two, `lenet.c1` (18 KiB) 3.5%.
const PREFETCH_FLOATS: usize = 1 << 15;

/// Rows shorter than this many vectors load every vector masked in the AVX-512 weight
/// gradient (see [`wgrad_avx512`]).
const MASKED_ROW_VECTORS: usize = 4;

/// Geometry of [`wgrad_body`]: strides of the padded input block and of the output gradient.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WgradGeom {
    /// Images in the block.
    pub(crate) images: usize,
    /// Padded input: image, plane and row strides.
    pub(crate) xi: usize,
    pub(crate) xs: usize,
    pub(crate) xw: usize,
    /// Kernel taps: `[cin, kh, kw]`.
    pub(crate) dims: [usize; 3],
    /// Output gradient: image stride (`cout * out_h * out_w`) and output size.
    pub(crate) dyi: usize,
    pub(crate) out_h: usize,
    pub(crate) out_w: usize,
}

// What limits this kernel (`cifar.stem`, 92-100 GFLOP/s at one thread, against a peak of
// 117): the tiles read `dy` and the input copies from L2. A loop of the same shape (9 loads
// per 20 multiply-adds) runs at the peak from L1, and at 81 with all 9 lines streamed from
// L2. Tried and slower:
// - blocking pixels for L1 (chunks of 8 to 64 vectors, sums stored between tiles): 86-101
//   against 102.5, the stores and the loop set-up per chunk costing more than L2 did;
// - Winograd's `F(3, 2)` along the rows, 2/3 of the multiply-adds: written out, the
//   gradient's four parts (twice its size) took 0.9 ms of the 2.5 to store; taken apart in
//   the loop (two permutes per vector), the sums ran at 64% of the peak; 2.6-2.8 ms in all
//   against 2.45;
// - loading from aligned addresses: no change.

/// Direct weight gradient (stride 1, dilation 1) of `rows` output channels over a block of
/// images: `dw[co * taps + t] = sum_{img, oh, ow} dy[img * dyi + co * out_h * out_w +
/// oh * out_w + ow] * x[img * xi + ci * xs + (oh + ki) * xw + ow + kj]` for tap
/// `t = (ci * kh + ki) * kw + kj`, overwriting `dw`. Vectorised over the output width with
/// `CO x T` accumulators kept in registers over a group of images (see
/// [`WGRAD_GROUP_FLOATS`]), summed across lanes and added to `dw` group by group: each
/// element's order is fixed by the geometry alone.
///
/// # Safety
/// The CPU has `V`'s features; `x` (the zero-padded block) is readable at every offset above
/// for `ow < out_w`, `dy` at every offset for `co < rows`, and `dw` writable for
/// `rows * cin * kh * kw` floats; `rows >= 1`.
#[inline(always)]
unsafe fn wgrad_body<V: Vector, const CO: usize, const T: usize, const MASKED: bool>(
    x: *const f32,
    dy: *const f32,
    g: WgradGeom,
    rows: usize,
    dw: *mut f32,
) {
    let [cin, kh, kw] = g.dims;
    let taps = cin * kh * kw;
    let pixels = g.out_h * g.out_w;
    // Every narrower width below has its arm in the `match`.
    const { assert!(T <= 7) };
    // SAFETY: forwarded from this function's contract to each tile's.
    unsafe {
        // Images per group: the sums stay in registers across a group, whose tile rows of
        // `dy` and input planes stay in L2.
        let group = (WGRAD_GROUP_FLOATS / (CO * pixels + cin * g.xs)).clamp(1, g.images.max(1));
        let prefetch = rows * pixels >= PREFETCH_FLOATS;
        for g0 in (0..g.images).step_by(group) {
            let images = [g0, (g0 + group).min(g.images)];
            for co0 in (0..rows).step_by(CO) {
                // The taps on `taps.div_ceil(T)` tiles of nearly equal width, the wider
                // first: a clamped copy of a tap costs as much as a real one (`mnist.c1`'s 9
                // taps on `4 x 5`: 10% of the multiply-adds), and one narrow last tile has
                // too few sums per load (`cifar.stem`'s 27 as 5 x 5 + 2: 4% slower).
                let tiles = taps.div_ceil(T);
                let (base, wider) = (taps / tiles, taps % tiles);
                let mut t0 = 0;
                for tile in 0..tiles {
                    let width = base + usize::from(tile < wider);
                    // On a large output gradient, the last tile fetches the next block's
                    // into L2 as it goes (see `PREFETCH_FLOATS`).
                    let last = tile + 1 == tiles && co0 + CO < rows;
                    let ahead = if prefetch && last { CO } else { 0 };
                    let at = [co0, t0, ahead];
                    wgrad_width::<V, CO, T, MASKED>(width, x, dy, g, rows, dw, images, at);
                    t0 += width;
                }
            }
        }
    }
}

/// [`wgrad_tile`] `CO x width` for `width <= T`.
///
/// # Safety
/// As [`wgrad_tile`].
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn wgrad_width<V: Vector, const CO: usize, const T: usize, const MASKED: bool>(
    width: usize,
    x: *const f32,
    dy: *const f32,
    g: WgradGeom,
    rows: usize,
    dw: *mut f32,
    images: [usize; 2],
    at: [usize; 3],
) {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        match width {
            1 => wgrad_tile::<V, CO, 1, MASKED>(x, dy, g, rows, dw, images, at),
            2 if T > 2 => wgrad_tile::<V, CO, 2, MASKED>(x, dy, g, rows, dw, images, at),
            3 if T > 3 => wgrad_tile::<V, CO, 3, MASKED>(x, dy, g, rows, dw, images, at),
            4 if T > 4 => wgrad_tile::<V, CO, 4, MASKED>(x, dy, g, rows, dw, images, at),
            5 if T > 5 => wgrad_tile::<V, CO, 5, MASKED>(x, dy, g, rows, dw, images, at),
            6 if T > 6 => wgrad_tile::<V, CO, 6, MASKED>(x, dy, g, rows, dw, images, at),
            _ => wgrad_tile::<V, CO, T, MASKED>(x, dy, g, rows, dw, images, at),
        }
    }
}

/// One register tile of [`wgrad_body`]: output channels `co0..co0 + CO` by taps `t0..t0 +
/// T` (clamped to `rows` and the taps) over images `g0..g1`, summed across lanes into `dw`
/// (overwriting it for the first group, `g0 == 0`). With `ahead > 0` it also prefetches the
/// output gradient `ahead` channels further on.
///
/// # Safety
/// As [`wgrad_body`], with `co0 < rows`, `t0 < taps` and `g1 <= g.images`.
#[inline(always)]
unsafe fn wgrad_tile<V: Vector, const CO: usize, const T: usize, const MASKED: bool>(
    x: *const f32,
    dy: *const f32,
    g: WgradGeom,
    rows: usize,
    dw: *mut f32,
    [g0, g1]: [usize; 2],
    [co0, t0, ahead]: [usize; 3],
) {
    let [cin, kh, kw] = g.dims;
    let taps = cin * kh * kw;
    let pixels = g.out_h * g.out_w;
    let lanes = V::LANES;
    // SAFETY: loads read `n <= out_w - ow0` lanes from `ow0`, so `dy` stays in its rows and
    // `x` in its padded rows (`ow + kj < out_w + kw - 1 = padded width`); channels and taps
    // past `rows` / `taps` are clamped to the last valid one (their sums are not stored).
    // Stores write `dw[co * taps + t]` for `co < rows`, `t < taps` only.
    unsafe {
        let co_at: [usize; CO] = std::array::from_fn(|c| (co0 + c).min(rows - 1) * pixels);
        let tap_at: [usize; T] = std::array::from_fn(|i| {
            let t = (t0 + i).min(taps - 1);
            let (ci, kk) = (t / (kh * kw), t % (kh * kw));
            ci * g.xs + (kk / kw) * g.xw + kk % kw
        });
        let mut acc = [[V::zero(); T]; CO];
        for img in g0..g1 {
            let xb = x.add(img * g.xi);
            let db = dy.add(img * g.dyi);
            for oh in 0..g.out_h {
                let xr = xb.add(oh * g.xw);
                let dr = db.add(oh * g.out_w);
                for ow0 in (0..g.out_w).step_by(lanes) {
                    // One loop for whole vectors and the row's tail: with the tail in a loop
                    // of its own, the compiler kept the sums on the stack.
                    let n = lanes.min(g.out_w - ow0);
                    if ahead > 0 {
                        for &at in &co_at {
                            prefetch_l2(dr.wrapping_add(at + ahead * pixels + ow0));
                        }
                    }
                    let d: [V; CO] =
                        std::array::from_fn(|c| load_n::<V, MASKED>(dr.add(co_at[c] + ow0), n));
                    for (i, &at) in tap_at.iter().enumerate() {
                        let xv = load_n::<V, MASKED>(xr.add(at + ow0), n);
                        for (a, &dc) in acc.iter_mut().zip(&d) {
                            a[i] = dc.fma(xv, a[i]);
                        }
                    }
                }
            }
        }
        for (c, a) in acc.iter().enumerate().take(rows - co0) {
            for (i, v) in a.iter().enumerate().take(taps - t0) {
                let out = dw.add((co0 + c) * taps + t0 + i);
                *out = if g0 == 0 { v.hsum() } else { *out + v.hsum() };
            }
        }
    }
}

/// Asks for the cache line holding `p` in L2. Any address will do: a prefetch never faults.
#[inline(always)]
fn prefetch_l2(p: *const f32) {
    // SAFETY: SSE is part of x86-64, and a prefetch reads nothing the program sees; an
    // invalid address is ignored.
    unsafe { _mm_prefetch::<_MM_HINT_T1>(p.cast::<i8>()) }
}

/// The first `n <= LANES` lanes at `p`: a masked load if `MASKED` or `n < LANES`, else a
/// plain load.
///
/// # Safety
/// The CPU has `V`'s features, and `n` floats at `p` are readable.
#[inline(always)]
unsafe fn load_n<V: Vector, const MASKED: bool>(p: *const f32, n: usize) -> V {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        if MASKED || n < V::LANES {
            V::load_first(p, n)
        } else {
            V::load(p)
        }
    }
}

/// [`wgrad_body`] at AVX2+FMA, one function per tile and load mode, so that each loop is
/// compiled apart from the others: with all of them in one function, `mnist.c1` ran 3.5%
/// slower at AVX-512.
///
/// # Safety
/// The CPU has AVX2 and FMA; the pointers satisfy [`wgrad_body`]'s contract.
#[target_feature(enable = "avx2,fma")]
#[inline(never)]
unsafe fn wgrad_avx2_on<const CO: usize, const T: usize>(
    x: *const f32,
    dy: *const f32,
    g: WgradGeom,
    rows: usize,
    dw: *mut f32,
) {
    // SAFETY: forwarded from this function's contract. `vmaskmovps` is no cheaper than a
    // branch to a plain load, whatever the row (see `load_n`).
    unsafe { wgrad_body::<Ymm, CO, T, false>(x, dy, g, rows, dw) }
}

/// [`wgrad_body`] at AVX-512F, one function per tile and load mode (see [`wgrad_avx2_on`]).
///
/// # Safety
/// The CPU has AVX-512F; the pointers satisfy [`wgrad_body`]'s contract.
#[target_feature(enable = "avx512f")]
#[inline(never)]
unsafe fn wgrad_avx512_on<const CO: usize, const T: usize, const MASKED: bool>(
    x: *const f32,
    dy: *const f32,
    g: WgradGeom,
    rows: usize,
    dw: *mut f32,
) {
    // SAFETY: forwarded from this function's contract.
    unsafe { wgrad_body::<Zmm, CO, T, MASKED>(x, dy, g, rows, dw) }
}

/// The AVX2+FMA direct weight-gradient kernel, tile `AVX2_WGRAD[which]`.
///
/// # Safety
/// The CPU has AVX2 and FMA; the pointers satisfy [`wgrad_body`]'s contract.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn wgrad_avx2(
    which: usize,
    x: *const f32,
    dy: *const f32,
    g: WgradGeom,
    rows: usize,
    dw: *mut f32,
) {
    const A: (usize, usize) = AVX2_WGRAD[0];
    const B: (usize, usize) = AVX2_WGRAD[1];
    // SAFETY: forwarded from this function's contract.
    unsafe {
        if which == 0 {
            wgrad_avx2_on::<{ A.0 }, { A.1 }>(x, dy, g, rows, dw)
        } else {
            wgrad_avx2_on::<{ B.0 }, { B.1 }>(x, dy, g, rows, dw)
        }
    }
}

/// The AVX-512F direct weight-gradient kernel, tile `AVX512_WGRAD[which]`. Rows shorter than
/// [`MASKED_ROW_VECTORS`] vectors load every vector masked; longer ones branch to a plain
/// load for whole vectors. At one thread, `mnist.c1` (the shifted copies' 676-wide row) runs
/// at 100 GFLOP/s with the branch against 89.5 all masked, and `lenet.c1` (28 wide, a tail
/// every other vector) at 76.5 all masked against 64 with the branch, whose loop keeps sums
/// on the stack.
///
/// # Safety
/// The CPU has AVX-512F; the pointers satisfy [`wgrad_body`]'s contract.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn wgrad_avx512(
    which: usize,
    x: *const f32,
    dy: *const f32,
    g: WgradGeom,
    rows: usize,
    dw: *mut f32,
) {
    const A: (usize, usize) = AVX512_WGRAD[0];
    const B: (usize, usize) = AVX512_WGRAD[1];
    let masked = g.out_w < MASKED_ROW_VECTORS * Zmm::LANES;
    // SAFETY: forwarded from this function's contract.
    unsafe {
        match (which, masked) {
            (0, true) => wgrad_avx512_on::<{ A.0 }, { A.1 }, true>(x, dy, g, rows, dw),
            (0, false) => wgrad_avx512_on::<{ A.0 }, { A.1 }, false>(x, dy, g, rows, dw),
            (_, true) => wgrad_avx512_on::<{ B.0 }, { B.1 }, true>(x, dy, g, rows, dw),
            (_, false) => wgrad_avx512_on::<{ B.0 }, { B.1 }, false>(x, dy, g, rows, dw),
        }
    }
}
