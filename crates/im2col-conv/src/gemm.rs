//! GEMM on one tile: `C <- A B` or `C <- C + A B` over strided views of slices.
//!
//! This is the only module that calls into the matrix-multiply kernel and the only one with
//! `unsafe`: the views check their extents against their slices when built, so the call below is
//! in bounds by construction. A packed micro-kernel replaces the body of [`gemm`] without
//! touching its callers.
//!
//! Determinism: with `alpha = 1` and `beta` in `{0, 1}`, every element of `C` is the same
//! sequence of fused multiply-adds over the `k` dimension (cut into fixed-size blocks) wherever
//! the element sits in the tile, so splitting `C` into row or column blocks never changes the
//! result. Callers rely on that to split work by the thread count.
#![allow(unsafe_code)]

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

/// `C <- A B` or `C <- C + A B`.
///
/// # Panics
/// If the dimensions of `a`, `b` and `c` disagree.
pub(crate) fn gemm(a: MatRef<'_>, b: MatRef<'_>, beta: Beta, c: MatMut<'_>) {
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
    let (m, k, n) = (a.rows, a.cols, b.cols);
    if m == 0 || n == 0 {
        return;
    }
    let beta = match beta {
        Beta::Overwrite => 0.0,
        Beta::Accumulate => 1.0,
    };
    // Slices never exceed isize::MAX bytes, so strides bounded by their lengths fit in isize.
    let s = |x: usize| x as isize;
    // SAFETY: `MatRef::new` and `MatMut::new` checked that every element `(i, j)` of each view,
    // at `i * rs + j * cs`, lies inside its slice, and the dimension check above makes the
    // kernel touch exactly those elements (with k == 0 it only scales C). `c` has unit column
    // stride and `rs >= cols`, so its elements do not alias, and it is a unique borrow, so it
    // aliases neither `a` nor `b`. With beta == 0 the kernel never reads C, so stale contents
    // (even NaN) are overwritten.
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
        let (m, k, n) = (5, 7, 3);
        let a: Vec<f32> = (0..m * k).map(|i| (i % 5) as f32 - 2.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i % 3) as f32 + 0.5).collect();
        let want = naive(&a, &b, m, k, n);
        // C embedded with row stride 4 and an offset, starting as NaN: overwrite ignores it.
        let mut c = vec![f32::NAN; 1 + 4 * m];
        gemm(
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
    #[should_panic(expected = "overruns")]
    fn views_check_their_extent() {
        let data = [0.0f32; 5];
        MatRef::new(&data, 2, 3, 3, 1);
    }
}
