//! GEMM on one tile: `C <- A B` or `C <- C + A B` over strided views of slices, by packing
//! panels for the register-tiled micro-kernels of `kernels` (or, as the measured baseline, by
//! `matrixmultiply::sgemm`).
//!
//! The views check their extents against their slices when built, so packing indexes in
//! bounds and the baseline's raw-pointer call is in bounds by construction.
//!
//! Determinism: every element of `C` is the same sequence of multiply-adds over the `k`
//! dimension (cut into blocks whose size depends on `k` alone) wherever the element sits in the
//! tile, so splitting `C` into row or column blocks never changes the result. Callers rely on
//! that to split work by the thread count.
#![allow(unsafe_code)]

use crate::kernels::Kernel;
use std::cell::RefCell;
use std::sync::OnceLock;

/// A read-only `rows x cols` matrix view: element `(i, j)` is `data[i * rs + j * cs]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MatRef<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a> MatRef<'a> {
    /// A strided view.
    ///
    /// # Panics
    /// If the last element lies outside `data`.
    pub(crate) fn new(data: &'a [f32], rows: usize, cols: usize, rs: usize, cs: usize) -> Self {
        assert!(
            extent(rows, cols, rs, cs) <= data.len(),
            "gemm: a {rows}x{cols} view with strides ({rs}, {cs}) overruns {} elements",
            data.len()
        );
        Self {
            data,
            rows,
            cols,
            rs,
            cs,
        }
    }

    /// The transpose (no copy).
    pub(crate) fn t(self) -> Self {
        Self {
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
            ..self
        }
    }
}

/// A writable `rows x cols` view with unit column stride and row stride `rs >= cols`, so no two
/// elements alias.
#[derive(Debug)]
pub(crate) struct MatMut<'a> {
    data: &'a mut [f32],
    rows: usize,
    cols: usize,
    rs: usize,
}

impl<'a> MatMut<'a> {
    /// A row-strided view.
    ///
    /// # Panics
    /// If `rs < cols` (rows would overlap) or the last element lies outside `data`.
    pub(crate) fn new(data: &'a mut [f32], rows: usize, cols: usize, rs: usize) -> Self {
        assert!(
            rows <= 1 || rs >= cols,
            "gemm: row stride {rs} is shorter than {cols} columns"
        );
        assert!(
            extent(rows, cols, rs, 1) <= data.len(),
            "gemm: a {rows}x{cols} view with row stride {rs} overruns {} elements",
            data.len()
        );
        Self {
            data,
            rows,
            cols,
            rs,
        }
    }
}

/// Elements a view spans: one past its last element (0 when empty).
fn extent(rows: usize, cols: usize, rs: usize, cs: usize) -> usize {
    if rows == 0 || cols == 0 {
        0
    } else {
        (rows - 1) * rs + (cols - 1) * cs + 1
    }
}

/// What happens to the previous contents of `C`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Beta {
    /// `C <- A B` (`C` may hold anything before).
    Overwrite,
    /// `C <- C + A B`.
    Accumulate,
}

/// Which matrix product the convolutions run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    /// The packed, register-tiled micro-kernels of `kernels` (the default).
    Packed,
    /// `matrixmultiply::sgemm`, the general-purpose baseline the packed path is measured
    /// against: `GANGLION_CONV_GEMM=matrixmultiply`.
    MatrixMultiply,
}

impl Backend {
    /// The backend named by `GANGLION_CONV_GEMM` (`packed` or `matrixmultiply`), read once.
    pub(crate) fn selected() -> Backend {
        static SELECTED: OnceLock<Backend> = OnceLock::new();
        *SELECTED.get_or_init(|| match std::env::var("GANGLION_CONV_GEMM").as_deref() {
            Ok("matrixmultiply") => Backend::MatrixMultiply,
            _ => Backend::Packed,
        })
    }
}

/// Depth of one packed block: a B micro-panel of `KC_MAX x NR` floats (32 KiB for the
/// AVX-512 tile) and an A micro-panel stay in L1/L2 while a tile is computed.
const KC_MAX: usize = 256;

/// Columns of B packed at once (a multiple of every tile width): with `KC_MAX` rows, 512 KiB,
/// half the per-core L2.
const NC_MAX: usize = 512;

thread_local! {
    /// Packed A and B panels of the calling thread, grown on demand and kept: after the first
    /// call of a shape, products allocate nothing.
    static PACKS: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// `C <- A B` or `C <- C + A B` with the micro-kernels of `kernel`.
///
/// The depth `k` is cut into blocks whose size depends on `k` alone; each element of `C` is the
/// sum of its block products added in block order, whatever the tile or the split of `C`.
///
/// # Panics
/// If the dimensions of `a`, `b` and `c` disagree.
pub(crate) fn gemm(kernel: Kernel, a: MatRef<'_>, b: MatRef<'_>, beta: Beta, c: MatMut<'_>) {
    assert!(
        a.cols == b.rows && a.rows == c.rows && b.cols == c.cols,
        "gemm: cannot multiply {}x{} by {}x{} into {}x{}",
        a.rows,
        a.cols,
        b.rows,
        b.cols,
        c.rows,
        c.cols
    );
    if c.rows == 0 || c.cols == 0 {
        return;
    }
    match Backend::selected() {
        Backend::Packed => packed(kernel, a, b, beta, c),
        Backend::MatrixMultiply => baseline(a, b, beta, c),
    }
}

fn packed(kernel: Kernel, a: MatRef<'_>, b: MatRef<'_>, beta: Beta, c: MatMut<'_>) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    if k == 0 {
        if beta == Beta::Overwrite {
            for i in 0..m {
                c.data[i * c.rs..i * c.rs + n].fill(0.0);
            }
        }
        return;
    }
    let (mr, nr) = (kernel.mr(), kernel.nr());
    let kc_step = k.div_ceil(k.div_ceil(KC_MAX));
    let m_panels = m.div_ceil(mr);
    PACKS.with(|packs| {
        let (ap, bp) = &mut *packs.borrow_mut();
        grow(ap, m_panels * mr * kc_step);
        grow(bp, NC_MAX.div_ceil(nr) * nr * kc_step);
        for (block, k0) in (0..k).step_by(kc_step).enumerate() {
            let kc = kc_step.min(k - k0);
            pack_a(a, k0, kc, mr, ap);
            let accumulate = block > 0 || beta == Beta::Accumulate;
            for c0 in (0..n).step_by(NC_MAX) {
                let nc = NC_MAX.min(n - c0);
                pack_b(b, k0, kc, c0, nc, nr, bp);
                for q in 0..nc.div_ceil(nr) {
                    let cols = nr.min(nc - q * nr);
                    let b_panel = &bp[q * kc * nr..(q + 1) * kc * nr];
                    for p in 0..m_panels {
                        let rows = mr.min(m - p * mr);
                        let a_panel = &ap[p * kc * mr..(p + 1) * kc * mr];
                        let at = p * mr * c.rs + c0 + q * nr;
                        kernel.micro(
                            kc,
                            a_panel,
                            b_panel,
                            &mut c.data[at..],
                            c.rs,
                            rows,
                            cols,
                            accumulate,
                        );
                    }
                }
            }
        }
    });
}

fn grow(buf: &mut Vec<f32>, len: usize) {
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
}

/// Packs columns `k0..k0 + kc` of `a` into panels of `mr` rows: panel `p`, step `k`, row `i`
/// at `(p * kc + k) * mr + i`; rows past the end of `a` are zero.
fn pack_a(a: MatRef<'_>, k0: usize, kc: usize, mr: usize, dst: &mut [f32]) {
    for p in 0..a.rows.div_ceil(mr) {
        let panel = &mut dst[p * kc * mr..(p + 1) * kc * mr];
        let rows = mr.min(a.rows - p * mr);
        if rows < mr {
            panel.fill(0.0);
        }
        if a.rs == 1 {
            // Column-major (a transposed weight): the panel's rows are adjacent.
            for (k, step) in panel.chunks_exact_mut(mr).enumerate() {
                let at = p * mr + (k0 + k) * a.cs;
                step[..rows].copy_from_slice(&a.data[at..at + rows]);
            }
        } else {
            for i in 0..rows {
                let at = (p * mr + i) * a.rs + k0 * a.cs;
                for (k, step) in panel.chunks_exact_mut(mr).enumerate() {
                    step[i] = a.data[at + k * a.cs];
                }
            }
        }
    }
}

/// Packs rows `k0..k0 + kc`, columns `c0..c0 + nc` of `b` into panels of `nr` columns:
/// panel `q`, step `k`, column `j` at `(q * kc + k) * nr + j`; columns past `nc` are zero.
fn pack_b(b: MatRef<'_>, k0: usize, kc: usize, c0: usize, nc: usize, nr: usize, dst: &mut [f32]) {
    for q in 0..nc.div_ceil(nr) {
        let panel = &mut dst[q * kc * nr..(q + 1) * kc * nr];
        let cols = nr.min(nc - q * nr);
        let j0 = c0 + q * nr;
        if cols < nr {
            panel.fill(0.0);
        }
        if b.cs == 1 {
            for (k, step) in panel.chunks_exact_mut(nr).enumerate() {
                let at = (k0 + k) * b.rs + j0;
                step[..cols].copy_from_slice(&b.data[at..at + cols]);
            }
        } else {
            // Transposed (column rows of backward-weight): read each column contiguously.
            for j in 0..cols {
                let at = k0 * b.rs + (j0 + j) * b.cs;
                for (k, step) in panel.chunks_exact_mut(nr).enumerate() {
                    step[j] = b.data[at + k * b.rs];
                }
            }
        }
    }
}

/// The `matrixmultiply` product (the baseline backend).
fn baseline(a: MatRef<'_>, b: MatRef<'_>, beta: Beta, c: MatMut<'_>) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    let beta = match beta {
        Beta::Overwrite => 0.0,
        Beta::Accumulate => 1.0,
    };
    // Slices never exceed isize::MAX bytes, so strides bounded by their lengths fit in isize.
    let s = |x: usize| x as isize;
    // SAFETY: `MatRef::new` and `MatMut::new` checked that every element `(i, j)` of each view,
    // at `i * rs + j * cs`, lies inside its slice, and `gemm` checked the dimensions agree, so
    // the kernel touches exactly those elements (with k == 0 it only scales C). `c` has unit
    // column stride and `rs >= cols`, so its elements do not alias, and it is a unique borrow,
    // so it aliases neither `a` nor `b`. With beta == 0 the kernel never reads C, so stale
    // contents (even NaN) are overwritten.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.data.as_ptr(),
            s(a.rs),
            s(a.cs),
            b.data.as_ptr(),
            s(b.rs),
            s(b.cs),
            beta,
            c.data.as_mut_ptr(),
            s(c.rs),
            1,
        );
    }
}

#[cfg(test)]
mod tests {
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
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 7919) % 201) as f32 / 100.0 - 1.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i * 104_729) % 199) as f32 / 99.0 - 1.0).collect();
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
            assert!(rows == c[5 * n..], "{isa:?}: a row split changed the result");
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
}
