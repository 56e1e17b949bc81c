//! Fixed-order `f64` reductions over `f32` slices and per-channel loops over NCHW planes:
//! eight interleaved partial sums (so the compiler can vectorise them) combined in one order,
//! so results never depend on how work is split over threads, nor on the vector width.

use rayon::prelude::*;

/// Partial sums per reduction.
const LANES: usize = 8;

/// `sum_i f(a[i], b[i])` in `f64`, with [`LANES`] partial sums (element `i` in sum
/// `i % LANES`, the tail after them), added in order.
#[inline(always)]
fn lanes(a: &[f32], b: &[f32], f: impl Fn(f64, f64) -> f64) -> f64 {
    let mut acc = [0.0f64; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ta, tb) = (ca.remainder(), cb.remainder());
    for (xa, xb) in ca.zip(cb) {
        for l in 0..LANES {
            acc[l] += f(xa[l] as f64, xb[l] as f64);
        }
    }
    let mut out: f64 = acc.iter().sum();
    for (&x, &y) in ta.iter().zip(tb) {
        out += f(x as f64, y as f64);
    }
    out
}

/// [`lanes`] compiled for the widest vectors this CPU has (AVX-512 or AVX2, else the
/// baseline), chosen at run time. At the baseline, two-wide conversions and sums made batch
/// norm's statistics 12% of `resnet20`'s training step. One function per pass: with two in
/// one loop the compiler paired each element's two terms instead of filling the vectors
/// with lanes, and a plane's second pass reads it from the cache. The sums, and their order,
/// are the same on every level (no fused multiply-add is formed from separate operations).
fn vectorized<F: Fn(f64, f64) -> f64>(a: &[f32], b: &[f32], f: F) -> f64 {
    struct Sum<'a, F> {
        a: &'a [f32],
        b: &'a [f32],
        f: F,
    }
    impl<F: Fn(f64, f64) -> f64> pulp::WithSimd for Sum<'_, F> {
        type Output = f64;
        #[inline(always)]
        fn with_simd<S: pulp::Simd>(self, _: S) -> f64 {
            lanes(self.a, self.b, self.f)
        }
    }
    static ARCH: std::sync::OnceLock<pulp::Arch> = std::sync::OnceLock::new();
    ARCH.get_or_init(pulp::Arch::new).dispatch(Sum { a, b, f })
}

/// `sum(x)`.
pub(crate) fn sum(x: &[f32]) -> f64 {
    vectorized(x, x, |v, _| v)
}

/// `(sum(x - k), sum((x - k)^2))`.
pub(crate) fn sum_and_sq_dev(x: &[f32], k: f64) -> (f64, f64) {
    (
        vectorized(x, x, |v, _| v - k),
        vectorized(x, x, |v, _| (v - k) * (v - k)),
    )
}

/// `(sum(g), sum(g * (x - mu)))`.
pub(crate) fn sum_and_dot_dev(g: &[f32], x: &[f32], mu: f64) -> (f64, f64) {
    (sum(g), vectorized(g, x, |g, x| g * (x - mu)))
}

/// Channel `ch`'s `hw`-long planes of an `[n, c, h, w]` buffer, batch item after batch item.
pub(crate) fn planes(data: &[f32], c: usize, hw: usize, ch: usize) -> impl Iterator<Item = &[f32]> {
    data.chunks_exact(hw.max(1))
        .skip(ch)
        .step_by(c.max(1))
        .take(if hw == 0 { 0 } else { usize::MAX })
}

/// Below this many elements per call, per-channel and per-plane loops stay on one thread.
const PAR_MIN: usize = 1 << 15;

/// `out[ch] = f(ch)` for every channel, over threads when `work` (elements read) is large.
pub(crate) fn for_each_channel(out: &mut [f32], work: usize, f: impl Fn(usize) -> f32 + Sync) {
    if work < PAR_MIN {
        out.iter_mut().enumerate().for_each(|(ch, o)| *o = f(ch));
    } else {
        out.par_iter_mut()
            .enumerate()
            .for_each(|(ch, o)| *o = f(ch));
    }
}

/// `(a[ch], b[ch]) = f(ch)` for every channel, over threads when `work` is large.
pub(crate) fn for_each_channel2(
    a: &mut [f32],
    b: &mut [f32],
    work: usize,
    f: impl Fn(usize) -> (f32, f32) + Sync,
) {
    let body = |(ch, (a, b)): (usize, (&mut f32, &mut f32))| (*a, *b) = f(ch);
    if work < PAR_MIN {
        a.iter_mut().zip(b.iter_mut()).enumerate().for_each(body);
    } else {
        a.par_iter_mut()
            .zip(b.par_iter_mut())
            .enumerate()
            .for_each(body);
    }
}

/// Calls `f(plane_index, out_plane, in_plane)` for each `hw`-long plane of `out` and `x`,
/// over threads when large; plane `k` belongs to channel `k % c`.
pub(crate) fn for_each_plane(
    out: &mut [f32],
    x: &[f32],
    hw: usize,
    f: impl Fn(usize, &mut [f32], &[f32]) + Sync,
) {
    if hw == 0 {
        return;
    }
    let body = |(k, (o, x)): (usize, (&mut [f32], &[f32]))| f(k, o, x);
    if out.len() < PAR_MIN {
        out.chunks_exact_mut(hw)
            .zip(x.chunks_exact(hw))
            .enumerate()
            .for_each(body);
    } else {
        out.par_chunks_exact_mut(hw)
            .zip(x.par_chunks_exact(hw))
            .enumerate()
            .with_min_len((PAR_MIN / hw).max(1))
            .for_each(body);
    }
}

/// Calls `f(plane_index, plane)` for each `hw`-long plane of `data`, over threads when large
/// (split as [`for_each_plane`] splits).
pub(crate) fn for_each_plane_inplace(
    data: &mut [f32],
    hw: usize,
    f: impl Fn(usize, &mut [f32]) + Sync,
) {
    if hw == 0 {
        return;
    }
    if data.len() < PAR_MIN {
        data.chunks_exact_mut(hw)
            .enumerate()
            .for_each(|(k, p)| f(k, p));
    } else {
        data.par_chunks_exact_mut(hw)
            .enumerate()
            .with_min_len((PAR_MIN / hw).max(1))
            .for_each(|(k, p)| f(k, p));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_match_naive_f64() {
        let x: Vec<f32> = (0..37).map(|i| (i as f32 * 0.7).sin()).collect();
        let g: Vec<f32> = (0..37).map(|i| (i as f32 * 0.3).cos()).collect();
        let naive: f64 = x.iter().map(|&v| v as f64).sum();
        assert!((sum(&x) - naive).abs() < 1e-12);
        let mu = 0.25;
        let sq: f64 = x.iter().map(|&v| (v as f64 - mu).powi(2)).sum();
        let (s1, s2) = sum_and_sq_dev(&x, mu);
        assert!((s1 - (naive - 37.0 * mu)).abs() < 1e-12);
        assert!((s2 - sq).abs() < 1e-12);
        let (s, d) = sum_and_dot_dev(&g, &x, mu);
        let dn: f64 = g
            .iter()
            .zip(&x)
            .map(|(&g, &x)| g as f64 * (x as f64 - mu))
            .sum();
        assert!((s - g.iter().map(|&v| v as f64).sum::<f64>()).abs() < 1e-12);
        assert!((d - dn).abs() < 1e-12);
    }

    #[test]
    fn vector_code_gives_the_baseline_bits() {
        // Values over many magnitudes, so that any other order of the sums (or a fused
        // multiply-add) would change low bits; lengths with and without a tail.
        for n in [0i32, 5, 8, 64, 1001] {
            let x: Vec<f32> = (0..n)
                .map(|i| (i as f32 * 0.37).sin() * 10f32.powi(i % 7 - 3))
                .collect();
            let g: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
            let k = 0.123_456_789;
            let dot = |g: f64, x: f64| g * (x - k);
            let sq = |v: f64, _: f64| (v - k) * (v - k);
            // `lanes` outside the dispatch runs as compiled for the baseline.
            assert_eq!(
                vectorized(&g, &x, dot).to_bits(),
                lanes(&g, &x, dot).to_bits()
            );
            assert_eq!(
                vectorized(&x, &x, sq).to_bits(),
                lanes(&x, &x, sq).to_bits()
            );
        }
    }

    #[test]
    fn planes_walk_one_channel() {
        let data: Vec<f32> = (0..2 * 3 * 2).map(|i| i as f32).collect();
        let got: Vec<&[f32]> = planes(&data, 3, 2, 1).collect();
        assert_eq!(got, vec![&[2.0, 3.0][..], &[8.0, 9.0][..]]);
        assert_eq!(planes(&[], 3, 0, 1).count(), 0);
    }
}
