//! A checked, safe wrapper over `matrixmultiply::sgemm` (the crate's only unsafe code).
//!
//! Strides let the linear and matmul rules read transposed operands in place, so backward
//! never copies a transposed matrix.
#![allow(unsafe_code)]

/// A strided matrix operand: `rows x cols`, element `(i, j)` at `data[i * rs + j * cs]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mat<'a> {
    pub(crate) data: &'a [f32],
    pub(crate) rs: usize,
    pub(crate) cs: usize,
}

impl<'a> Mat<'a> {
    /// A row-major matrix with `cols` columns.
    pub(crate) fn rows(data: &'a [f32], cols: usize) -> Self {
        Self {
            data,
            rs: cols,
            cs: 1,
        }
    }

    /// The transpose of a row-major matrix with `cols` columns (read in place).
    pub(crate) fn transposed(data: &'a [f32], cols: usize) -> Self {
        Self {
            data,
            rs: 1,
            cs: cols,
        }
    }
}

/// Largest index an `r x c` matrix with strides `rs, cs` touches, plus one (0 when empty).
fn extent(r: usize, c: usize, rs: usize, cs: usize) -> usize {
    if r == 0 || c == 0 {
        0
    } else {
        (r - 1) * rs + (c - 1) * cs + 1
    }
}

#[cold]
#[inline(never)]
fn too_short(which: &str, need: usize, have: usize) -> ! {
    panic!("gemm: operand {which} needs {need} elements but has {have}")
}

/// `C <- alpha * A B + beta * C` for `A: m x k`, `B: k x n`, and row-major `C: m x n`.
/// With `beta == 0`, `C` is overwritten without being read.
///
/// # Panics
/// Panics if an operand's slice is shorter than its strides and sizes require.
#[allow(clippy::too_many_arguments)]
pub(crate) fn sgemm(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: Mat<'_>,
    b: Mat<'_>,
    beta: f32,
    c: &mut [f32],
) {
    let need_a = extent(m, k, a.rs, a.cs);
    let need_b = extent(k, n, b.rs, b.cs);
    let need_c = m * n;
    if a.data.len() < need_a {
        too_short("a", need_a, a.data.len());
    }
    if b.data.len() < need_b {
        too_short("b", need_b, b.data.len());
    }
    if c.len() < need_c {
        too_short("c", need_c, c.len());
    }
    if m == 0 || n == 0 {
        return;
    }
    let s = |x: usize| x as isize;
    // SAFETY: the checks above guarantee that every element of A (m x k with strides a.rs,
    // a.cs), B (k x n with strides b.rs, b.cs) and C (m x n, row-major, strides n and 1, which
    // never alias) lies inside its slice; `c` is borrowed mutably and so does not overlap `a`
    // or `b`; slice lengths are at most isize::MAX, so the stride casts do not wrap.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            alpha,
            a.data.as_ptr(),
            s(a.rs),
            s(a.cs),
            b.data.as_ptr(),
            s(b.rs),
            s(b.cs),
            beta,
            c.as_mut_ptr(),
            s(n),
            1,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(m: usize, k: usize, n: usize, a: Mat<'_>, b: Mat<'_>) -> Vec<f32> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut acc = 0.0f64;
                for p in 0..k {
                    acc += a.data[i * a.rs + p * a.cs] as f64 * b.data[p * b.rs + j * b.cs] as f64;
                }
                c[i * n + j] = acc as f32;
            }
        }
        c
    }

    #[test]
    fn matches_naive_with_transposed_operands() {
        let (m, k, n) = (3, 5, 4);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let bt: Vec<f32> = (0..n * k).map(|i| (i as f32 * 0.61).cos()).collect();
        let am = Mat::rows(&a, k);
        let bm = Mat::transposed(&bt, k);
        let mut c = vec![f32::NAN; m * n];
        sgemm(m, k, n, 1.0, am, bm, 0.0, &mut c);
        let want = naive(m, k, n, am, bm);
        for (g, w) in c.iter().zip(&want) {
            assert!((g - w).abs() < 1e-5, "{g} vs {w}");
        }
        // beta = 1 accumulates.
        sgemm(m, k, n, 1.0, am, bm, 1.0, &mut c);
        assert!((c[0] - 2.0 * want[0]).abs() < 1e-5);
    }

    #[test]
    #[should_panic(expected = "operand b needs")]
    fn short_operand_panics() {
        let a = [1.0f32; 4];
        let b = [1.0f32; 3];
        let mut c = [0.0f32; 4];
        sgemm(
            2,
            2,
            2,
            1.0,
            Mat::rows(&a, 2),
            Mat::rows(&b, 2),
            0.0,
            &mut c,
        );
    }
}
