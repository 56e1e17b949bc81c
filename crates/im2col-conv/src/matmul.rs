//! [`sgemm`]: the packed micro-kernel GEMM as a public, general matrix product over strided
//! operands, packing into a caller-kept [`GemmWorkspace`] so that it allocates nothing once
//! warm (fully connected layers use it beside the convolutions).

use crate::gemm::{Beta, KBlocks, MatMut, MatRef, PackedA, gemm_prepacked_in, pack_b};
use crate::kernels::Kernel;

/// Reusable packing buffers for [`sgemm`]: grown to the largest product served, never shrunk.
/// Keep one per caller thread (it is `Send`).
#[derive(Debug, Default)]
pub struct GemmWorkspace {
    a: Vec<f32>,
    b: Vec<f32>,
}

impl GemmWorkspace {
    /// An empty workspace; it allocates on first use.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of `f32` elements currently held (for memory accounting and tests).
    pub fn allocated_floats(&self) -> usize {
        self.a.len() + self.b.len()
    }
}

/// A read-only strided operand: element `(i, j)` of a `rows x cols` matrix is
/// `data[i * rs + j * cs]`, so a transpose is read in place by swapping the strides.
#[derive(Debug, Clone, Copy)]
pub struct Strided<'a> {
    /// The elements.
    pub data: &'a [f32],
    /// Distance between rows.
    pub rs: usize,
    /// Distance between columns.
    pub cs: usize,
}

/// `C <- A B` (or `C <- C + A B` with `accumulate`) for `A: m x k`, `B: k x n` and a row-major
/// `C: m x n`, on the current instruction set's micro-kernels, single-threaded.
///
/// Every element of `C` is the same sequence of multiply-adds over `k` (blocks cut by `k`
/// alone), so the result does not depend on the caller's thread count.
///
/// # Panics
/// If an operand's slice is shorter than its sizes and strides need.
#[allow(clippy::too_many_arguments)]
pub fn sgemm(
    m: usize,
    k: usize,
    n: usize,
    a: Strided<'_>,
    b: Strided<'_>,
    accumulate: bool,
    c: &mut [f32],
    ws: &mut GemmWorkspace,
) {
    let kernel = Kernel::current();
    let a = MatRef::new(a.data, m, k, a.rs, a.cs);
    let b = MatRef::new(b.data, k, n, b.rs, b.cs);
    let c = MatMut::new(c, m, n, n);
    let beta = if accumulate {
        Beta::Accumulate
    } else {
        Beta::Overwrite
    };
    let len = PackedA::len(kernel, m, k);
    if ws.a.len() < len {
        ws.a.resize(len, 0.0);
    }
    let packed = PackedA::pack(kernel, a, KBlocks::new(k, 1), &mut ws.a);
    let nr = kernel.nr();
    let fill = |k0, kc, j0, cols, dst: &mut [f32]| pack_b(kernel, b, k0, kc, j0, cols, nr, dst);
    gemm_prepacked_in(kernel, &packed, n, fill, beta, c, &mut ws.b);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_naive_with_transposed_operands_and_accumulates() {
        let (m, k, n) = (19, 300, 37);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let bt: Vec<f32> = (0..n * k).map(|i| (i as f32 * 0.61).cos()).collect();
        let av = Strided {
            data: &a,
            rs: k,
            cs: 1,
        };
        let bv = Strided {
            data: &bt,
            rs: 1,
            cs: k,
        };
        let mut ws = GemmWorkspace::new();
        let mut c = vec![f32::NAN; m * n];
        sgemm(m, k, n, av, bv, false, &mut c, &mut ws);
        for i in 0..m {
            for j in 0..n {
                let want: f64 = (0..k)
                    .map(|p| f64::from(a[i * k + p]) * f64::from(bt[j * k + p]))
                    .sum();
                let got = f64::from(c[i * n + j]);
                assert!((got - want).abs() < 1e-4, "({i},{j}): {got} vs {want}");
            }
        }
        let held = ws.allocated_floats();
        assert!(held > 0);
        let once = c.clone();
        sgemm(m, k, n, av, bv, true, &mut c, &mut ws);
        for (two, one) in c.iter().zip(&once) {
            assert!((two - 2.0 * one).abs() <= 1e-5 * one.abs().max(1.0));
        }
        // A smaller product reuses the buffers.
        sgemm(3, 5, 4, av, bv, false, &mut c[..12], &mut ws);
        assert_eq!(ws.allocated_floats(), held);
    }

    #[test]
    #[should_panic(expected = "overruns")]
    fn short_operand_panics() {
        let a = [1.0f32; 4];
        let b = [1.0f32; 3];
        let mut c = [0.0f32; 4];
        let view = |data| Strided { data, rs: 2, cs: 1 };
        sgemm(
            2,
            2,
            2,
            view(&a),
            view(&b),
            false,
            &mut c,
            &mut GemmWorkspace::new(),
        );
    }
}
