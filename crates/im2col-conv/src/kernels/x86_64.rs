//! x86-64 micro-kernels: one `#[inline(always)]` register-tiled body, instantiated for AVX2+FMA
//! (`ymm`, 6 x 16 tile) and AVX-512F (`zmm`, 8 x 32 tile) under `#[target_feature]` wrappers.
//! Only the dispatcher in `kernels` calls them, after checking the CPU and the slice lengths.
//!
//! Tile sizes: an FMA has 4 cycles of latency on two pipes, so at least 8 independent
//! accumulators must be in flight. The AVX2 tile keeps 12 `ymm` accumulators (of 16 registers);
//! the AVX-512 one keeps 16 `zmm` accumulators (of 32), with 2 vector loads and 8 broadcasts
//! per 16 FMAs, well inside the load ports' budget.
#![allow(unsafe_code)]

use std::arch::x86_64::{
    __m256, __m512, _mm256_add_ps, _mm256_fmadd_ps, _mm256_loadu_ps, _mm256_set1_ps,
    _mm256_setzero_ps, _mm256_storeu_ps, _mm512_add_ps, _mm512_fmadd_ps, _mm512_loadu_ps,
    _mm512_set1_ps, _mm512_setzero_ps, _mm512_storeu_ps,
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
    unsafe fn add(self, o: Self) -> Self;
    /// `self * b + c`, one rounding.
    unsafe fn fma(self, b: Self, c: Self) -> Self;
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
    unsafe fn add(self, o: Self) -> Self {
        // SAFETY: as in `zero`.
        Ymm(unsafe { _mm256_add_ps(self.0, o.0) })
    }
    #[inline(always)]
    unsafe fn fma(self, b: Self, c: Self) -> Self {
        // SAFETY: the caller runs on a CPU with FMA (trait contract).
        Ymm(unsafe { _mm256_fmadd_ps(self.0, b.0, c.0) })
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
    unsafe fn add(self, o: Self) -> Self {
        // SAFETY: as in `zero`.
        Zmm(unsafe { _mm512_add_ps(self.0, o.0) })
    }
    #[inline(always)]
    unsafe fn fma(self, b: Self, c: Self) -> Self {
        // SAFETY: as in `zero`.
        Zmm(unsafe { _mm512_fmadd_ps(self.0, b.0, c.0) })
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
