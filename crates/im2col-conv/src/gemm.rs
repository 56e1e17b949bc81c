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

use crate::im2col::copy_floats;
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

/// Target depth of one packed block: a B micro-panel of `KC_MAX x NR` floats (32 KiB for the
/// AVX-512 tile) stays in L1 while the A panels stream through it from L2.
const KC_MAX: usize = 256;

/// Columns of B packed at once (a multiple of every tile width): with `KC_MAX` rows, 512 KiB,
/// half the per-core L2.
const NC_MAX: usize = 512;

thread_local! {
    /// A panels packed by [`gemm`] on this thread, grown on demand and kept.
    static PACK_A: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    /// B panels packed on this thread, grown on demand and kept: once a thread has served a
    /// shape, products allocate nothing.
    static PACK_B: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// How the depth `k` of a product is cut into blocks: all `step` deep but the last. The cut
/// depends on `k` and `unit` alone, so it is the same however the product is split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KBlocks {
    k: usize,
    step: usize,
}

impl KBlocks {
    /// Blocks of at most `KC_MAX` (or one `unit` where that is larger), as even as possible,
    /// each a whole number of `unit`s (one input channel's kernel taps, so that implicit
    /// packing fills whole channels).
    pub(crate) fn new(k: usize, unit: usize) -> Self {
        let unit = unit.max(1);
        let units = k.div_ceil(unit);
        let per_block = (KC_MAX / unit).max(1);
        let blocks = units.div_ceil(per_block).max(1);
        Self {
            k,
            step: (units.div_ceil(blocks) * unit).max(1),
        }
    }

    /// The blocks `(k0, kc)`, in order.
    pub(crate) fn iter(self) -> impl Iterator<Item = (usize, usize)> {
        (0..self.k)
            .step_by(self.step)
            .map(move |k0| (k0, self.step.min(self.k - k0)))
    }
}

/// An A matrix packed once for the micro-kernel (a weight, shared by every task of a call):
/// block-major, then panels of `MR` rows, each `kc` steps of `MR` values.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PackedA<'a> {
    data: &'a [f32],
    kb: KBlocks,
    mr: usize,
    /// Rows of this view.
    rows: usize,
    /// First panel of this view within the packed matrix.
    first_panel: usize,
    /// Panels of the whole packed matrix (the stride between blocks, per step).
    all_panels: usize,
}

impl<'a> PackedA<'a> {
    /// Floats needed to pack `rows x k` for `kernel`.
    pub(crate) fn len(kernel: Kernel, rows: usize, k: usize) -> usize {
        rows.div_ceil(kernel.mr()) * kernel.mr() * k
    }

    /// Packs `a` cut by `kb` into `dst` (at least [`PackedA::len`] floats).
    ///
    /// # Panics
    /// If `kb` does not cut `a.cols` or `dst` is too short.
    pub(crate) fn pack(kernel: Kernel, a: MatRef<'_>, kb: KBlocks, dst: &'a mut [f32]) -> Self {
        assert_eq!(kb.k, a.cols, "gemm: depth blocks do not cut A");
        let mr = kernel.mr();
        let panels = a.rows.div_ceil(mr);
        let dst = &mut dst[..panels * mr * a.cols];
        for (k0, kc) in kb.iter() {
            let block = &mut dst[panels * mr * k0..panels * mr * (k0 + kc)];
            pack_a(kernel, a, k0, kc, mr, block);
        }
        Self {
            data: dst,
            kb,
            mr,
            rows: a.rows,
            first_panel: 0,
            all_panels: panels,
        }
    }

    /// A view of `rows x kb.k` that [`PackedA::pack`] already packed for `kernel` into `data`,
    /// so callers can keep the packed floats and rebuild views without storing them.
    ///
    /// # Panics
    /// If `data` is shorter than [`PackedA::len`].
    pub(crate) fn packed(kernel: Kernel, data: &'a [f32], rows: usize, kb: KBlocks) -> Self {
        let mr = kernel.mr();
        let panels = rows.div_ceil(mr);
        Self {
            data: &data[..panels * mr * kb.k],
            kb,
            mr,
            rows,
            first_panel: 0,
            all_panels: panels,
        }
    }

    /// Rows `r0..r1` of this view; `r0` must start a panel.
    ///
    /// # Panics
    /// If `r0` is not a multiple of `MR` or the range is outside the view.
    pub(crate) fn rows(&self, r0: usize, r1: usize) -> Self {
        assert!(
            r0.is_multiple_of(self.mr) && r0 <= r1 && r1 <= self.rows,
            "gemm: rows {r0}..{r1} of a packed A of {} rows in panels of {}",
            self.rows,
            self.mr
        );
        Self {
            rows: r1 - r0,
            first_panel: self.first_panel + r0 / self.mr,
            ..*self
        }
    }

    fn panel(&self, k0: usize, kc: usize, p: usize) -> &[f32] {
        let at = self.all_panels * self.mr * k0 + (self.first_panel + p) * kc * self.mr;
        &self.data[at..at + kc * self.mr]
    }
}

/// `C <- A B` or `C <- C + A B` with the micro-kernels of `kernel`, both operands packed per
/// call.
///
/// # Panics
/// If the dimensions of `a`, `b` and `c` disagree.
pub(crate) fn gemm(kernel: Kernel, a: MatRef<'_>, b: MatRef<'_>, beta: Beta, c: MatMut<'_>) {
    gemm_sized(kernel, a, b, beta, c, 0);
}

/// [`gemm`], growing this thread's A-packing buffer to at least `a_len` floats: callers pass
/// the most any tile of their shape needs, so that whichever thread a tile lands on, the
/// buffer reaches its final size on first use and later tiles of the shape allocate nothing.
///
/// # Panics
/// If the dimensions of `a`, `b` and `c` disagree.
pub(crate) fn gemm_sized(
    kernel: Kernel,
    a: MatRef<'_>,
    b: MatRef<'_>,
    beta: Beta,
    c: MatMut<'_>,
    a_len: usize,
) {
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
    if Backend::selected() == Backend::MatrixMultiply {
        return baseline(a, b, beta, c);
    }
    PACK_A.with(|buf| {
        let mut buf = buf.borrow_mut();
        grow(&mut buf, PackedA::len(kernel, a.rows, a.cols).max(a_len));
        let packed = PackedA::pack(kernel, a, KBlocks::new(a.cols, 1), &mut buf);
        let nr = kernel.nr();
        gemm_prepacked(
            kernel,
            &packed,
            b.cols,
            |k0, kc, j0, cols, dst| pack_b(kernel, b, k0, kc, j0, cols, nr, dst),
            beta,
            c,
        );
    });
}

/// `C <- A B` or `C <- C + A B` for a prepacked `A` and a `B` (`a.k x n`) whose panels
/// `fill_b(k0, kc, j0, cols, dst)` packs: rows `k0..k0 + kc`, columns `j0..j0 + cols`, step
/// `k` column `j` at `dst[k * NR + j]` (columns past `cols` may hold anything: they only reach
/// outputs that are not stored).
///
/// Each element of `C` is the sum of its block products added in block order, whatever the
/// tile or the split of `C`.
///
/// # Panics
/// If `c` is not `a.rows x n`.
pub(crate) fn gemm_prepacked(
    kernel: Kernel,
    a: &PackedA<'_>,
    n: usize,
    fill_b: impl FnMut(usize, usize, usize, usize, &mut [f32]),
    beta: Beta,
    c: MatMut<'_>,
) {
    PACK_B.with(|bp| gemm_prepacked_in(kernel, a, n, fill_b, beta, c, &mut bp.borrow_mut()));
}

/// [`gemm_prepacked`] packing B into `bp` (grown on demand and kept) instead of this thread's
/// buffer.
///
/// # Panics
/// If `c` is not `a.rows x n`.
pub(crate) fn gemm_prepacked_in(
    kernel: Kernel,
    a: &PackedA<'_>,
    n: usize,
    mut fill_b: impl FnMut(usize, usize, usize, usize, &mut [f32]),
    beta: Beta,
    c: MatMut<'_>,
    bp: &mut Vec<f32>,
) {
    assert!(
        c.rows == a.rows && c.cols == n && kernel.mr() == a.mr,
        "gemm: a packed A of {} rows cannot fill a {}x{} product",
        a.rows,
        c.rows,
        c.cols
    );
    let m = a.rows;
    if m == 0 || n == 0 {
        return;
    }
    if a.kb.k == 0 {
        if beta == Beta::Overwrite {
            for i in 0..m {
                c.data[i * c.rs..i * c.rs + n].fill(0.0);
            }
        }
        return;
    }
    let (mr, nr) = (kernel.mr(), kernel.nr());
    let m_panels = m.div_ceil(mr);
    {
        // Sized for the deepest block any shape cuts (`KC_MAX`, unless one unit is deeper),
        // not this product's: a thread then grows it once, whichever layers it serves.
        grow(bp, NC_MAX.div_ceil(nr) * nr * a.kb.step.max(KC_MAX));
        for (block, (k0, kc)) in a.kb.iter().enumerate() {
            let accumulate = block > 0 || beta == Beta::Accumulate;
            for c0 in (0..n).step_by(NC_MAX) {
                let nc = NC_MAX.min(n - c0);
                let q_panels = nc.div_ceil(nr);
                for (q, panel) in bp[..q_panels * kc * nr]
                    .chunks_exact_mut(kc * nr)
                    .enumerate()
                {
                    fill_b(k0, kc, c0 + q * nr, nr.min(nc - q * nr), panel);
                }
                for q in 0..q_panels {
                    let cols = nr.min(nc - q * nr);
                    let b_panel = &bp[q * kc * nr..(q + 1) * kc * nr];
                    for p in 0..m_panels {
                        let rows = mr.min(m - p * mr);
                        let at = p * mr * c.rs + c0 + q * nr;
                        kernel.micro(
                            kc,
                            a.panel(k0, kc, p),
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
    }
}

fn grow(buf: &mut Vec<f32>, len: usize) {
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
}

/// Packs columns `k0..k0 + kc` of `a` into panels of `mr` rows: panel `p`, step `k`, row `i`
/// at `(p * kc + k) * mr + i`; rows past the end of `a` are zero.
fn pack_a(kernel: Kernel, a: MatRef<'_>, k0: usize, kc: usize, mr: usize, dst: &mut [f32]) {
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
                copy_floats(&mut step[..rows], &a.data[at..at + rows]);
            }
        } else if a.cs == 1 {
            // Row-major with the depth contiguous (rows of `dY` in backward-weight).
            let at = p * mr * a.rs + k0;
            kernel.transpose(&a.data[at..], a.rs, rows, kc, panel, mr);
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

/// Packs rows `k0..k0 + kc`, columns `j0..j0 + cols` of `b` into one panel `nr` wide:
/// step `k`, column `j` at `k * nr + j`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn pack_b(
    kernel: Kernel,
    b: MatRef<'_>,
    k0: usize,
    kc: usize,
    j0: usize,
    cols: usize,
    nr: usize,
    dst: &mut [f32],
) {
    let panel = &mut dst[..kc * nr];
    if b.cs == 1 {
        for (k, step) in panel.chunks_exact_mut(nr).enumerate() {
            let at = (k0 + k) * b.rs + j0;
            copy_floats(&mut step[..cols], &b.data[at..at + cols]);
        }
    } else if b.rs == 1 {
        // Transposed (column rows of backward-weight): the depth is contiguous.
        let at = k0 + j0 * b.cs;
        kernel.transpose(&b.data[at..], b.cs, cols, kc, panel, nr);
    } else {
        for j in 0..cols {
            let at = k0 * b.rs + (j0 + j) * b.cs;
            for (k, step) in panel.chunks_exact_mut(nr).enumerate() {
                step[j] = b.data[at + k * b.rs];
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
#[path = "gemm_tests.rs"]
mod tests;
