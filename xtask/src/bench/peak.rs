//! This machine's arithmetic limits, measured: the f32 FMA peak (independent FMA chains on every
//! thread of a pool) and the sgemm roofline (`matrixmultiply::sgemm` at 2048^3).
//!
//! Apart from the counting allocator (`alloc_count.rs`), the only `unsafe` of xtask lives
//! here: calls into `#[target_feature]` functions after the feature was detected, and the
//! raw-pointer `sgemm` call behind a length-checked wrapper.

use super::machine::Isa;
use super::timing::Plan;
use rayon::ThreadPool;
use rayon::prelude::*;
use std::hint::black_box;

/// Independent accumulator chains per thread: FMA latency 4 x 2 pipes needs at least 8 in flight.
const CHAINS: usize = 12;

/// FMA steps of every chain per call; about 0.1 s per call on one current core.
const STEPS: u64 = 40_000_000;

/// The f32 FMA peak in GFLOP/s of the pool's threads together, on the given path.
///
/// Every thread runs [`CHAINS`] independent FMA chains for [`STEPS`] steps; the figure is all
/// threads' FLOPs over the wall time of the slowest, for the fastest of
/// [`Plan::LIMITS`]'s calls.
pub fn fma_peak_gflops(pool: &ThreadPool, isa: Isa) -> f64 {
    let flops_per_thread = STEPS as f64 * CHAINS as f64 * 2.0 * lanes(isa) as f64;
    let seconds = Plan::LIMITS.best_seconds(|| {
        pool.broadcast(|_| black_box(fma_chains(isa, black_box(STEPS))));
    });
    flops_per_thread * pool.current_num_threads() as f64 / seconds / 1e9
}

fn lanes(isa: Isa) -> usize {
    match isa {
        Isa::Avx512 => 16,
        Isa::Avx2Fma => 8,
        Isa::Scalar => 1,
    }
}

/// Runs the chains on the given path and returns the sum of the chains' first lanes, a value
/// that depends on every chain.
///
/// # Panics
/// When `isa` is not available on this CPU (callers pass [`selected_isa`](super::machine::selected_isa)'s level).
fn fma_chains(isa: Isa, steps: u64) -> f32 {
    assert!(isa.available(), "fma peak: this CPU lacks {}", isa.name());
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `isa.available()` checked above that the CPU has avx512f.
        Isa::Avx512 => unsafe { x86::chains_avx512(steps) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `isa.available()` checked above that the CPU has avx2 and fma.
        Isa::Avx2Fma => unsafe { x86::chains_avx2(steps) },
        _ => chains_scalar(steps),
    }
}

/// `acc <- acc * A + B` with a fixed point far from overflow and denormals.
const A: f32 = 0.999_999;
const B: f32 = 1e-6;

fn chains_scalar(steps: u64) -> f32 {
    let (a, b) = (black_box(A), black_box(B));
    let mut acc = [0.0f32; CHAINS];
    for _ in 0..steps {
        for x in &mut acc {
            *x = *x * a + b;
        }
    }
    acc.iter().sum()
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{A, B, CHAINS};
    use std::arch::x86_64::*;
    use std::hint::black_box;

    #[target_feature(enable = "avx2,fma")]
    pub(super) fn chains_avx2(steps: u64) -> f32 {
        let a = _mm256_set1_ps(black_box(A));
        let b = _mm256_set1_ps(black_box(B));
        let mut acc = [_mm256_setzero_ps(); CHAINS];
        for _ in 0..steps {
            for x in &mut acc {
                *x = _mm256_fmadd_ps(*x, a, b);
            }
        }
        let sum = acc
            .iter()
            .fold(_mm256_setzero_ps(), |s, &x| _mm256_add_ps(s, x));
        _mm256_cvtss_f32(sum)
    }

    #[target_feature(enable = "avx512f")]
    pub(super) fn chains_avx512(steps: u64) -> f32 {
        let a = _mm512_set1_ps(black_box(A));
        let b = _mm512_set1_ps(black_box(B));
        let mut acc = [_mm512_setzero_ps(); CHAINS];
        for _ in 0..steps {
            for x in &mut acc {
                *x = _mm512_fmadd_ps(*x, a, b);
            }
        }
        let sum = acc
            .iter()
            .fold(_mm512_setzero_ps(), |s, &x| _mm512_add_ps(s, x));
        _mm512_cvtss_f32(sum)
    }
}

/// Side of the square sgemm the roofline is measured on.
pub const SGEMM_N: usize = 2048;

/// `matrixmultiply::sgemm` GFLOP/s at [`SGEMM_N`]^3 on the pool: rows of C are split into one
/// block per thread and each block is one single-threaded `sgemm` call; the fastest of
/// [`Plan::LIMITS`]'s calls.
pub fn sgemm_gflops(pool: &ThreadPool) -> f64 {
    let n = SGEMM_N;
    let mut rng = ganglion_tensor::Rng::seed_from(7);
    let a: Vec<f32> = (0..n * n).map(|_| rng.uniform_range(-1.0, 1.0)).collect();
    let b: Vec<f32> = (0..n * n).map(|_| rng.uniform_range(-1.0, 1.0)).collect();
    let mut c = vec![0.0f32; n * n];
    let rows_per_task = n.div_ceil(pool.current_num_threads());
    let seconds = Plan::LIMITS.best_seconds(|| {
        pool.install(|| {
            c.par_chunks_mut(rows_per_task * n)
                .zip(a.par_chunks(rows_per_task * n))
                .for_each(|(c_rows, a_rows)| sgemm(a_rows, &b, c_rows, n, n));
        })
    });
    2.0 * (n * n * n) as f64 / seconds / 1e9
}

/// `C[m x n] = A[m x k] B[k x n]`, all row-major and contiguous, with `m = a.len() / k`.
///
/// # Panics
/// When the slice lengths do not describe such a product.
fn sgemm(a: &[f32], b: &[f32], c: &mut [f32], k: usize, n: usize) {
    let m = a.len() / k;
    assert!(
        a.len() == m * k && b.len() == k * n && c.len() == m * n,
        "sgemm: lengths {}, {}, {} do not fit m={m} k={k} n={n}",
        a.len(),
        b.len(),
        c.len()
    );
    let (k_stride, n_stride) = (k as isize, n as isize);
    // SAFETY: the assertion above guarantees A holds m*k, B k*n and C m*n contiguous row-major
    // values, which are exactly the elements the strides below address; C is borrowed mutably,
    // so it aliases neither A nor B.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            k_stride,
            1,
            b.as_ptr(),
            n_stride,
            1,
            0.0,
            c.as_mut_ptr(),
            n_stride,
            1,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_available_path_computes_the_same_chains() {
        let want = chains_scalar(1000);
        for isa in [Isa::Avx512, Isa::Avx2Fma, Isa::Scalar] {
            if isa.available() {
                // Fused and unfused multiply-add round differently; the sums stay close.
                let got = fma_chains(isa, 1000);
                assert!(
                    (got - want).abs() <= 1e-4 * want.abs(),
                    "{isa:?}: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn sgemm_matches_a_triple_loop() {
        let (m, k, n) = (5, 7, 3);
        let a: Vec<f32> = (0..m * k).map(|i| (i % 5) as f32 - 2.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i % 3) as f32 * 0.5).collect();
        let mut c = vec![f32::NAN; m * n];
        sgemm(&a, &b, &mut c, k, n);
        for i in 0..m {
            for j in 0..n {
                let want: f32 = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
                assert_eq!(c[i * n + j], want);
            }
        }
    }
}
