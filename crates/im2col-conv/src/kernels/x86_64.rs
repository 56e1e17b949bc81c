//! x86-64 micro-kernels: one `#[inline(always)]` register-tiled body, instantiated for AVX2+FMA
//! (`ymm`, 6 x 16 tile) and AVX-512F (`zmm`, 8 x 32 tile) under `#[target_feature]` wrappers.
//! Only the dispatcher in `kernels` calls them, after checking the CPU and the slice lengths.
//! Also here: row copies for implicit im2col packing and an 8 x 8 transposing pack; the direct
//! kernels for few-channel layers live in `direct`, the backward-data kernel with images in
//! the lanes in `lanes`, the FFT convolution's in `fft`, the Winograd route's in
//! `winograd`.
//!
//! Tile sizes: an FMA has 4 cycles of latency on two pipes, so at least 8 independent
//! accumulators must be in flight. The AVX2 tile keeps 12 `ymm` accumulators (of 16 registers);
//! the AVX-512 one keeps 16 `zmm` accumulators (of 32), with 2 vector loads and 8 broadcasts
//! per 16 FMAs, well inside the load ports' budget.
#![allow(unsafe_code)]

mod broadcast;
mod direct;
mod fft;
mod lanes;
mod winograd;

pub(crate) use broadcast::{
    AVX2_GRAD_TILES, AVX2_TILES, AVX512_GRAD_TILES, AVX512_TILES, BcastGeom, bcast_avx2,
    bcast_avx512, wgrad_bcast_avx2, wgrad_bcast_avx512,
};
pub(crate) use direct::{
    AVX2_DIRECT_CO, AVX2_WGRAD, AVX512_DIRECT_CO, AVX512_WGRAD, RowCall, WgradGeom, direct_avx2,
    direct_avx512, wgrad_avx2, wgrad_avx512,
};
pub(crate) use fft::{
    AVX2_FFT_CHANNELS, AVX512_FFT_CHANNELS, inverse_avx2, inverse_avx512, products_avx2,
    products_avx512, spectrum_avx2, spectrum_avx512,
};
pub(crate) use lanes::{
    AVX2_LANE_CHANNELS, AVX512_LANE_CHANNELS, LaneRow, lanes_avx2, lanes_avx512,
};
use std::arch::x86_64::*;
pub(crate) use winograd::{
    AVX512_WINOGRAD_CO, AVX512_WINOGRAD_GRAD_TILE, WinogradGrad, WinogradRow, grad_avx512,
    inputs_avx512, rows_avx512,
};

/// AVX2 tile rows.
pub(crate) const AVX2_MR: usize = 6;
/// AVX2 tile columns (two `ymm` vectors).
pub(crate) const AVX2_NR: usize = 16;
/// AVX-512 tile rows.
pub(crate) const AVX512_MR: usize = 8;
/// AVX-512 tile columns (two `zmm` vectors).
pub(crate) const AVX512_NR: usize = 32;

/// The vector operations the body needs, for one register width.
///
/// # Safety
/// Every method needs the CPU features of its register type (AVX2+FMA for `Ymm`, AVX-512F for
/// `Zmm`); pointer arguments must be valid for `LANES` floats.
trait Vector: Copy {
    const LANES: usize;
    unsafe fn zero() -> Self;
    unsafe fn splat(x: f32) -> Self;
    unsafe fn load(p: *const f32) -> Self;
    unsafe fn store(self, p: *mut f32);
    /// Stores the first `n < LANES` lanes only.
    unsafe fn store_first(self, p: *mut f32, n: usize);
    /// Stores the first `n <= LANES` lanes: a full store when `n == LANES`, a masked one
    /// below, none when `n == 0` (a row's ragged end).
    #[inline(always)]
    unsafe fn store_part(self, p: *mut f32, n: usize) {
        // SAFETY: the caller guarantees `n` writable floats at `p` and the features; a full
        // store writes `LANES == n` of them, a masked one only the first `n`.
        unsafe {
            if n == Self::LANES {
                self.store(p)
            } else if n > 0 {
                self.store_first(p, n)
            }
        }
    }
    /// Loads the first `n <= LANES` lanes (the rest zero), reading only those.
    unsafe fn load_first(p: *const f32, n: usize) -> Self;
    /// The sum of the lanes, in a fixed order.
    unsafe fn hsum(self) -> f32;
    unsafe fn add(self, o: Self) -> Self;
    unsafe fn sub(self, o: Self) -> Self;
    unsafe fn mul(self, o: Self) -> Self;
    /// `self * b + c`, one rounding.
    unsafe fn fma(self, b: Self, c: Self) -> Self;
    /// `c - self * b`, one rounding.
    unsafe fn fnma(self, b: Self, c: Self) -> Self;
}

#[derive(Clone, Copy)]
struct Ymm(__m256);

impl Vector for Ymm {
    const LANES: usize = 8;
    #[inline(always)]
    unsafe fn zero() -> Self {
        // SAFETY: the caller runs on a CPU with AVX2 (trait contract).
        Ymm(unsafe { _mm256_setzero_ps() })
    }
    #[inline(always)]
    unsafe fn splat(x: f32) -> Self {
        // SAFETY: as in `zero`.
        Ymm(unsafe { _mm256_set1_ps(x) })
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: AVX2 as in `zero`; the caller guarantees 8 readable floats at `p` (unaligned
        // loads are allowed).
        Ymm(unsafe { _mm256_loadu_ps(p) })
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: AVX2 as in `zero`; the caller guarantees 8 writable floats at `p`.
        unsafe { _mm256_storeu_ps(p, self.0) }
    }
    #[inline(always)]
    unsafe fn store_first(self, p: *mut f32, n: usize) {
        // SAFETY: AVX2 as in `zero`; lanes at or past `n` are masked off, so only the `n`
        // floats the caller guarantees writable are written.
        unsafe {
            let idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
            let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(n as i32), idx);
            _mm256_maskstore_ps(p, mask, self.0)
        }
    }
    #[inline(always)]
    unsafe fn load_first(p: *const f32, n: usize) -> Self {
        // SAFETY: AVX2 as in `zero`; lanes at or past `n` are masked off and not read.
        unsafe {
            let idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
            let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(n as i32), idx);
            Ymm(_mm256_maskload_ps(p, mask))
        }
    }
    #[inline(always)]
    unsafe fn hsum(self) -> f32 {
        // SAFETY: AVX2 (which implies SSE3) as in `zero`.
        unsafe {
            let half = _mm_add_ps(
                _mm256_castps256_ps128(self.0),
                _mm256_extractf128_ps::<1>(self.0),
            );
            let pair = _mm_hadd_ps(half, half);
            _mm_cvtss_f32(_mm_hadd_ps(pair, pair))
        }
    }
    #[inline(always)]
    unsafe fn add(self, o: Self) -> Self {
        // SAFETY: as in `zero`.
        Ymm(unsafe { _mm256_add_ps(self.0, o.0) })
    }
    #[inline(always)]
    unsafe fn sub(self, o: Self) -> Self {
        // SAFETY: as in `zero`.
        Ymm(unsafe { _mm256_sub_ps(self.0, o.0) })
    }
    #[inline(always)]
    unsafe fn mul(self, o: Self) -> Self {
        // SAFETY: as in `zero`.
        Ymm(unsafe { _mm256_mul_ps(self.0, o.0) })
    }
    #[inline(always)]
    unsafe fn fma(self, b: Self, c: Self) -> Self {
        // SAFETY: the caller runs on a CPU with FMA (trait contract).
        Ymm(unsafe { _mm256_fmadd_ps(self.0, b.0, c.0) })
    }
    #[inline(always)]
    unsafe fn fnma(self, b: Self, c: Self) -> Self {
        // SAFETY: as in `fma`.
        Ymm(unsafe { _mm256_fnmadd_ps(self.0, b.0, c.0) })
    }
}

#[derive(Clone, Copy)]
struct Zmm(__m512);

impl Vector for Zmm {
    const LANES: usize = 16;
    #[inline(always)]
    unsafe fn zero() -> Self {
        // SAFETY: the caller runs on a CPU with AVX-512F (trait contract).
        Zmm(unsafe { _mm512_setzero_ps() })
    }
    #[inline(always)]
    unsafe fn splat(x: f32) -> Self {
        // SAFETY: as in `zero`.
        Zmm(unsafe { _mm512_set1_ps(x) })
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: AVX-512F as in `zero`; the caller guarantees 16 readable floats at `p`.
        Zmm(unsafe { _mm512_loadu_ps(p) })
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: AVX-512F as in `zero`; the caller guarantees 16 writable floats at `p`.
        unsafe { _mm512_storeu_ps(p, self.0) }
    }
    #[inline(always)]
    unsafe fn store_first(self, p: *mut f32, n: usize) {
        // SAFETY: AVX-512F as in `zero`; the mask enables only the first `n < 16` lanes, the
        // floats the caller guarantees writable.
        unsafe { _mm512_mask_storeu_ps(p, ((1u32 << n) - 1) as u16, self.0) }
    }
    #[inline(always)]
    unsafe fn load_first(p: *const f32, n: usize) -> Self {
        // SAFETY: AVX-512F as in `zero`; only the first `n <= 16` lanes are read.
        Zmm(unsafe { _mm512_maskz_loadu_ps(((1u32 << n) - 1) as u16, p) })
    }
    #[inline(always)]
    unsafe fn hsum(self) -> f32 {
        // SAFETY: AVX-512F as in `zero`.
        unsafe { _mm512_reduce_add_ps(self.0) }
    }
    #[inline(always)]
    unsafe fn add(self, o: Self) -> Self {
        // SAFETY: as in `zero`.
        Zmm(unsafe { _mm512_add_ps(self.0, o.0) })
    }
    #[inline(always)]
    unsafe fn sub(self, o: Self) -> Self {
        // SAFETY: as in `zero`.
        Zmm(unsafe { _mm512_sub_ps(self.0, o.0) })
    }
    #[inline(always)]
    unsafe fn mul(self, o: Self) -> Self {
        // SAFETY: as in `zero`.
        Zmm(unsafe { _mm512_mul_ps(self.0, o.0) })
    }
    #[inline(always)]
    unsafe fn fma(self, b: Self, c: Self) -> Self {
        // SAFETY: as in `zero`.
        Zmm(unsafe { _mm512_fmadd_ps(self.0, b.0, c.0) })
    }
    #[inline(always)]
    unsafe fn fnma(self, b: Self, c: Self) -> Self {
        // SAFETY: as in `zero`.
        Zmm(unsafe { _mm512_fnmadd_ps(self.0, b.0, c.0) })
    }
}

/// The register-tiled body: `c[i][j] (+)= sum_k a[k * MR + i] * b[k * NR + j]` for `i < rows`,
/// `j < cols`, where `NR = NV * V::LANES`. Accumulators start at zero and meet `c` once.
///
/// # Safety
/// The CPU has `V`'s features; `a` is readable for `kc * MR` floats, `b` for `kc * NR`, and
/// `c` is writable at `i * rs_c + j` for `i < rows <= MR`, `j < cols <= NR`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn body<V: Vector, const MR: usize, const NV: usize>(
    kc: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    rs_c: usize,
    rows: usize,
    cols: usize,
    accumulate: bool,
) {
    let nr = NV * V::LANES;
    // SAFETY: the features are present (contract); step `k` reads `a[k * MR..][..MR]` and
    // `b[k * nr..][..nr]`, inside the `kc * MR` and `kc * nr` readable floats.
    let acc = unsafe {
        let mut acc = [[V::zero(); NV]; MR];
        for k in 0..kc {
            let bk = b.add(k * nr);
            let ak = a.add(k * MR);
            let mut bv = [V::zero(); NV];
            for (v, slot) in bv.iter_mut().enumerate() {
                *slot = V::load(bk.add(v * V::LANES));
            }
            for (i, row) in acc.iter_mut().enumerate() {
                let ai = V::splat(*ak.add(i));
                for (x, &bj) in row.iter_mut().zip(&bv) {
                    *x = ai.fma(bj, *x);
                }
            }
        }
        acc
    };
    if rows == MR && cols == nr {
        // SAFETY: a full tile: `c` is writable (and, to accumulate, readable) at
        // `i * rs_c + v * LANES .. + LANES` for every row `i < MR` and vector `v < NV`.
        unsafe {
            for (i, row) in acc.iter().enumerate() {
                let ci = c.add(i * rs_c);
                for (v, &x) in row.iter().enumerate() {
                    let p = ci.add(v * V::LANES);
                    let out = if accumulate { V::load(p).add(x) } else { x };
                    out.store(p);
                }
            }
        }
    } else {
        // A ragged edge: spill the tile and copy its valid corner with scalar code.
        let mut spill = [[[0.0f32; 16]; NV]; MR];
        for (srow, row) in spill.iter_mut().zip(&acc) {
            for (s, &x) in srow.iter_mut().zip(row) {
                // SAFETY: the features are present and `s` holds 16 >= LANES floats.
                unsafe { x.store(s.as_mut_ptr()) };
            }
        }
        for (i, srow) in spill.iter().enumerate().take(rows) {
            for j in 0..cols {
                let v = srow[j / V::LANES][j % V::LANES];
                // SAFETY: `i < rows` and `j < cols`, so `c` is writable here (contract).
                unsafe {
                    let p = c.add(i * rs_c + j);
                    *p = if accumulate { *p + v } else { v };
                }
            }
        }
    }
}

/// The AVX2+FMA micro-kernel (6 x 16 tile).
///
/// # Safety
/// The CPU has AVX2 and FMA; the pointers satisfy [`body`]'s contract with `MR = 6`,
/// `NR = 16`.
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn micro_avx2(
    kc: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    rs_c: usize,
    rows: usize,
    cols: usize,
    accumulate: bool,
) {
    // SAFETY: forwarded from this function's contract.
    unsafe { body::<Ymm, AVX2_MR, 2>(kc, a, b, c, rs_c, rows, cols, accumulate) }
}

/// The AVX-512F micro-kernel (8 x 32 tile).
///
/// # Safety
/// The CPU has AVX-512F; the pointers satisfy [`body`]'s contract with `MR = 8`, `NR = 32`.
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn micro_avx512(
    kc: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    rs_c: usize,
    rows: usize,
    cols: usize,
    accumulate: bool,
) {
    // SAFETY: forwarded from this function's contract.
    unsafe { body::<Zmm, AVX512_MR, 2>(kc, a, b, c, rs_c, rows, cols, accumulate) }
}

/// Copies (or, with `src` null, zeroes) `count` rows of `len` floats: row `r` of `dst` at
/// `r * dst_stride`, of `src` at `r * src_stride`. The short rows of implicit im2col packing,
/// where a `memcpy` call per row would cost more than the row.
///
/// # Safety
/// The CPU has AVX2; for `r < count`, `dst` is writable and (unless null) `src` readable for
/// `len` floats at row `r`'s offset, and the two do not overlap.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn copy_rows_avx2(
    dst: *mut f32,
    dst_stride: usize,
    src: *const f32,
    src_stride: usize,
    len: usize,
    count: usize,
) {
    // SAFETY: every access is at `r * stride + j` with `r < count`, `j < len` (the vector
    // ones at `j + 8 <= len`), inside the extents the caller guarantees; AVX2 is present.
    unsafe {
        for r in 0..count {
            let d = dst.add(r * dst_stride);
            let mut j = 0;
            if src.is_null() {
                while j + 8 <= len {
                    _mm256_storeu_ps(d.add(j), _mm256_setzero_ps());
                    j += 8;
                }
                while j < len {
                    *d.add(j) = 0.0;
                    j += 1;
                }
            } else {
                let s = src.add(r * src_stride);
                while j + 8 <= len {
                    _mm256_storeu_ps(d.add(j), _mm256_loadu_ps(s.add(j)));
                    j += 8;
                }
                while j < len {
                    *d.add(j) = *s.add(j);
                    j += 1;
                }
            }
        }
    }
}

/// [`copy_rows_avx2`] with 512-bit vectors and a masked tail.
///
/// # Safety
/// As [`copy_rows_avx2`], with AVX-512F present.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn copy_rows_avx512(
    dst: *mut f32,
    dst_stride: usize,
    src: *const f32,
    src_stride: usize,
    len: usize,
    count: usize,
) {
    let tail = len % 16;
    let mask: u16 = if tail == 0 { 0 } else { (1u16 << tail) - 1 };
    // SAFETY: full vectors touch `j..j + 16 <= len - tail`; the masked tail touches only the
    // `tail` lanes below `len` (masked-off lanes are neither read nor written, so they may lie
    // outside the buffers). All offsets are inside the caller's extents; AVX-512F is present.
    unsafe {
        for r in 0..count {
            let d = dst.add(r * dst_stride);
            let mut j = 0;
            if src.is_null() {
                while j + 16 <= len {
                    _mm512_storeu_ps(d.add(j), _mm512_setzero_ps());
                    j += 16;
                }
                if mask != 0 {
                    _mm512_mask_storeu_ps(d.add(j), mask, _mm512_setzero_ps());
                }
            } else {
                let s = src.add(r * src_stride);
                while j + 16 <= len {
                    _mm512_storeu_ps(d.add(j), _mm512_loadu_ps(s.add(j)));
                    j += 16;
                }
                if mask != 0 {
                    _mm512_mask_storeu_ps(d.add(j), mask, _mm512_maskz_loadu_ps(mask, s.add(j)));
                }
            }
        }
    }
}

/// `dst[p * ldd + j] = src[j * lds + p]` for `j < rows`, `p < depth`: the transposing pack of
/// backward-weight's operands (whose contiguous axis is the product's depth) and the
/// broadcast kernels' pixel-major tiles into channel-major rows, by 8 x 8 blocks in `ymm`
/// registers, with scalar edges. The blocks walk along the rows of whichever side has its
/// rows further apart (the large, strided array), eight rows at a time: eight streams the
/// prefetchers follow, where walking the other way wrote (or read) one block in each of all
/// its rows in turn (`mnist.c2`'s forward pass +2%, the weight gradient's packing of `dY`
/// 4% slower the other way round).
///
/// # Safety
/// The CPU has AVX2; `src` is readable at `j * lds + p` and `dst` writable at `p * ldd + j`
/// for every `j < rows`, `p < depth`, and the two do not overlap.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn transpose_avx2(
    src: *const f32,
    lds: usize,
    rows: usize,
    depth: usize,
    dst: *mut f32,
    ldd: usize,
) {
    let (rows8, depth8) = (rows / 8 * 8, depth / 8 * 8);
    // SAFETY: the blocks read `src[(j0 + r) * lds + p0 .. + 8]` and write
    // `dst[(p0 + r) * ldd + j0 .. + 8]` with `j0 + 8 <= rows`, `p0 + 8 <= depth`; the edges
    // touch single elements with `j < rows`, `p < depth`: all inside the caller's extents.
    unsafe {
        let block = |j0: usize, p0: usize| {
            let s = src.add(j0 * lds + p0);
            let r = |i: usize| _mm256_loadu_ps(s.add(i * lds));
            let (r0, r1, r2, r3) = (r(0), r(1), r(2), r(3));
            let (r4, r5, r6, r7) = (r(4), r(5), r(6), r(7));
            let (t0, t1) = (_mm256_unpacklo_ps(r0, r1), _mm256_unpackhi_ps(r0, r1));
            let (t2, t3) = (_mm256_unpacklo_ps(r2, r3), _mm256_unpackhi_ps(r2, r3));
            let (t4, t5) = (_mm256_unpacklo_ps(r4, r5), _mm256_unpackhi_ps(r4, r5));
            let (t6, t7) = (_mm256_unpacklo_ps(r6, r7), _mm256_unpackhi_ps(r6, r7));
            let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
            let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
            let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
            let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
            let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
            let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
            let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
            let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
            let d = dst.add(p0 * ldd + j0);
            _mm256_storeu_ps(d, _mm256_permute2f128_ps::<0x20>(u0, u4));
            _mm256_storeu_ps(d.add(ldd), _mm256_permute2f128_ps::<0x20>(u1, u5));
            _mm256_storeu_ps(d.add(2 * ldd), _mm256_permute2f128_ps::<0x20>(u2, u6));
            _mm256_storeu_ps(d.add(3 * ldd), _mm256_permute2f128_ps::<0x20>(u3, u7));
            _mm256_storeu_ps(d.add(4 * ldd), _mm256_permute2f128_ps::<0x31>(u0, u4));
            _mm256_storeu_ps(d.add(5 * ldd), _mm256_permute2f128_ps::<0x31>(u1, u5));
            _mm256_storeu_ps(d.add(6 * ldd), _mm256_permute2f128_ps::<0x31>(u2, u6));
            _mm256_storeu_ps(d.add(7 * ldd), _mm256_permute2f128_ps::<0x31>(u3, u7));
        };
        if ldd >= lds {
            for p0 in (0..depth8).step_by(8) {
                for j0 in (0..rows8).step_by(8) {
                    block(j0, p0);
                }
            }
        } else {
            for j0 in (0..rows8).step_by(8) {
                for p0 in (0..depth8).step_by(8) {
                    block(j0, p0);
                }
            }
        }
        for j in 0..rows8 {
            for p in depth8..depth {
                *dst.add(p * ldd + j) = *src.add(j * lds + p);
            }
        }
        for j in rows8..rows {
            for p in 0..depth {
                *dst.add(p * ldd + j) = *src.add(j * lds + p);
            }
        }
    }
}
