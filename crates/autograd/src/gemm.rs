//! The matrix product of the linear and matmul rules: strided operands over the convolution
//! crate's packed GEMM, with caller-kept packing buffers.
//!
//! Strides let the linear and matmul rules read transposed operands in place, so backward
//! never copies a transposed matrix.

use ganglion_im2col_conv::{GemmWorkspace, Strided};

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

    /// The same operand as the GEMM's view type.
    fn view(self) -> Strided<'a> {
        Strided {
            data: self.data,
            rs: self.rs,
            cs: self.cs,
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

/// `C <- A B` (or `C <- C + A B` with `accumulate`) for `A: m x k`, `B: k x n`, and row-major
/// `C: m x n`, on the convolution crate's packed micro-kernels with packing buffers from `ws`
/// (so a warm training step allocates nothing here). Single-threaded, so the result does not
/// depend on the rayon thread count.
///
/// # Panics
/// Panics if an operand's slice is shorter than its strides and sizes require.
#[allow(clippy::too_many_arguments)]
pub(crate) fn sgemm(
    m: usize,
    k: usize,
    n: usize,
    a: Mat<'_>,
    b: Mat<'_>,
    accumulate: bool,
    c: &mut [f32],
    ws: &mut GemmWorkspace,
) {
    ganglion_im2col_conv::sgemm(m, k, n, a.view(), b.view(), accumulate, &mut c[..m * n], ws);
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
        let mut ws = GemmWorkspace::new();
        sgemm(m, k, n, am, bm, false, &mut c, &mut ws);
        let want = naive(m, k, n, am, bm);
        for (g, w) in c.iter().zip(&want) {
            assert!((g - w).abs() < 1e-5, "{g} vs {w}");
        }
        // beta = 1 accumulates.
        sgemm(m, k, n, am, bm, true, &mut c, &mut ws);
        assert!((c[0] - 2.0 * want[0]).abs() < 1e-5);
    }

    #[test]
    #[should_panic(expected = "overruns")]
    fn short_operand_panics() {
        let a = [1.0f32; 4];
        let b = [1.0f32; 3];
        let mut c = [0.0f32; 4];
        sgemm(
            2,
            2,
            2,
            Mat::rows(&a, 2),
            Mat::rows(&b, 2),
            false,
            &mut c,
            &mut GemmWorkspace::new(),
        );
    }
}
