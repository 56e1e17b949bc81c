//! Portable micro-kernel without `unsafe`: the fallback on CPUs without AVX2 and the oracle the
//! SIMD kernels are tested against.
//!
//! Same contract as the SIMD kernels (see `kernels::Kernel::micro`): `a` holds `kc` steps of
//! `MR` packed values, `b` `kc` steps of `NR`, and the `rows x cols` corner of the product is
//! written (or added) into `c` with row stride `rs_c`. Each product element is the sum over `k`
//! in order, started from zero, then stored or added to `c` once.

/// Rows of the register tile.
pub(crate) const MR: usize = 4;
/// Columns of the register tile.
pub(crate) const NR: usize = 8;

/// `c[i][j] (+)= sum_k a[k][i] * b[k][j]` for `i < rows`, `j < cols`.
///
/// # Panics
/// If a slice is shorter than the contract says.
#[allow(clippy::too_many_arguments)]
pub(crate) fn micro(
    kc: usize,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    rs_c: usize,
    rows: usize,
    cols: usize,
    accumulate: bool,
) {
    let mut acc = [[0.0f32; NR]; MR];
    for (ak, bk) in a[..kc * MR]
        .chunks_exact(MR)
        .zip(b[..kc * NR].chunks_exact(NR))
    {
        for (row, &ai) in acc.iter_mut().zip(ak) {
            for (x, &bj) in row.iter_mut().zip(bk) {
                *x += ai * bj;
            }
        }
    }
    for (i, row) in acc.iter().enumerate().take(rows) {
        let dst = &mut c[i * rs_c..i * rs_c + cols];
        if accumulate {
            dst.iter_mut().zip(row).for_each(|(d, &v)| *d += v);
        } else {
            dst.copy_from_slice(&row[..cols]);
        }
    }
}
