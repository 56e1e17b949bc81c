//! Tests of the packed GEMM in `gemm.rs`: agreement with a naive product, accumulation, and
//! bit-identical results under row and column splits.

use super::*;
use crate::kernels::Isa;

fn naive(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
    let mut c = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            c[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
        }
    }
    c
}

#[test]
fn overwrite_accumulate_and_transpose() {
    for isa in Isa::available_levels() {
        overwrite_accumulate_and_transpose_on(Kernel::new(isa));
    }
}

fn overwrite_accumulate_and_transpose_on(kern: Kernel) {
    let (m, k, n) = (5, 7, 3);
    let a: Vec<f32> = (0..m * k).map(|i| (i % 5) as f32 - 2.0).collect();
    let b: Vec<f32> = (0..k * n).map(|i| (i % 3) as f32 + 0.5).collect();
    let want = naive(&a, &b, m, k, n);
    // C embedded with row stride 4 and an offset, starting as NaN: overwrite ignores it.
    let mut c = vec![f32::NAN; 1 + 4 * m];
    gemm(
        kern,
        MatRef::new(&a, m, k, k, 1),
        MatRef::new(&b, k, n, n, 1),
        Beta::Overwrite,
        MatMut::new(&mut c[1..], m, n, 4),
    );
    for i in 0..m {
        assert_eq!(&c[1 + 4 * i..1 + 4 * i + n], &want[i * n..(i + 1) * n]);
    }
    // (B^T)^T through a column-major view, accumulated twice: 2 A B.
    let mut bt = vec![0.0; k * n];
    for p in 0..k {
        for j in 0..n {
            bt[j * k + p] = b[p * n + j];
        }
    }
    let mut c2 = vec![0.0; m * n];
    for _ in 0..2 {
        gemm(
            kern,
            MatRef::new(&a, m, k, k, 1),
            MatRef::new(&bt, n, k, k, 1).t(),
            Beta::Accumulate,
            MatMut::new(&mut c2, m, n, n),
        );
    }
    let doubled: Vec<f32> = want.iter().map(|v| 2.0 * v).collect();
    assert_eq!(c2, doubled);
}

#[test]
fn blocked_products_match_f64_and_split_without_changing_bits() {
    // Depth over two k blocks, width over two column blocks, ragged tiles everywhere.
    let (m, k, n) = (19, KC_MAX + 37, NC_MAX + 45);
    let a: Vec<f32> = (0..m * k)
        .map(|i| ((i * 7919) % 201) as f32 / 100.0 - 1.0)
        .collect();
    let b: Vec<f32> = (0..k * n)
        .map(|i| ((i * 104_729) % 199) as f32 / 99.0 - 1.0)
        .collect();
    for isa in Isa::available_levels() {
        let kern = Kernel::new(isa);
        let mut c = vec![f32::NAN; m * n];
        gemm(
            kern,
            MatRef::new(&a, m, k, k, 1),
            MatRef::new(&b, k, n, n, 1),
            Beta::Overwrite,
            MatMut::new(&mut c, m, n, n),
        );
        for i in 0..m {
            for j in 0..n {
                let want: f64 = (0..k)
                    .map(|p| f64::from(a[i * k + p]) * f64::from(b[p * n + j]))
                    .sum();
                let got = f64::from(c[i * n + j]);
                assert!((got - want).abs() < 1e-4 * k as f64, "{isa:?} ({i},{j})");
            }
        }
        // Rows 5.. computed alone, and columns 100.. alone, give the same bits.
        let mut rows = vec![0.0; (m - 5) * n];
        gemm(
            kern,
            MatRef::new(&a[5 * k..], m - 5, k, k, 1),
            MatRef::new(&b, k, n, n, 1),
            Beta::Overwrite,
            MatMut::new(&mut rows, m - 5, n, n),
        );
        assert!(
            rows == c[5 * n..],
            "{isa:?}: a row split changed the result"
        );
        let mut cols = vec![0.0; m * (n - 100)];
        gemm(
            kern,
            MatRef::new(&a, m, k, k, 1),
            MatRef::new(&b[100..], k, n - 100, n, 1),
            Beta::Overwrite,
            MatMut::new(&mut cols, m, n - 100, n - 100),
        );
        for i in 0..m {
            assert!(
                cols[i * (n - 100)..(i + 1) * (n - 100)] == c[i * n + 100..(i + 1) * n],
                "{isa:?}: a column split changed row {i}"
            );
        }
    }
}

#[test]
#[should_panic(expected = "overruns")]
fn views_check_their_extent() {
    let data = [0.0f32; 5];
    MatRef::new(&data, 2, 3, 3, 1);
}
