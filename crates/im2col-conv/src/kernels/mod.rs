//! SIMD micro-kernels behind safe entry points: [`Kernel`] checks slice lengths, then dispatches
//! on the instruction-set level chosen once per call (see [`isa`]).
//!
//! The micro-kernel computes one register tile of a packed matrix product:
//! `C[rows x cols] (+)= A_panel x B_panel`, where the A panel holds `kc` steps of `MR` values
//! (one per tile row) and the B panel `kc` steps of `NR` values (one per tile column). Every
//! product element is the sum over `k` in order, started from zero, then stored into or added
//! to `C` once, so the same element gets the same bits wherever its tile sits. Levels:
//!
//! | level | tile (MR x NR) | registers |
//! |---|---|---|
//! | `scalar` | 4 x 8 | portable Rust (autovectorised to the baseline SSE2) |
//! | `avx2-fma` | 6 x 16 | 12 `ymm` accumulators |
//! | `avx512` | 8 x 32 | 16 `zmm` accumulators |

#![allow(unsafe_code)]

pub(crate) mod isa;
mod scalar;
#[cfg(target_arch = "x86_64")]
mod x86_64;

pub use isa::{Isa, current_isa, isa_name, with_isa};

/// A micro-kernel of a level this CPU can run: holding one is the proof the dispatcher relies
/// on to call the `#[target_feature]` code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Kernel {
    isa: Isa,
}

impl Kernel {
    /// The kernel of `isa`, or the scalar one where this CPU cannot run `isa`.
    pub(crate) fn new(isa: Isa) -> Self {
        Self {
            isa: if isa.available() { isa } else { Isa::Scalar },
        }
    }

    /// The kernel of the level the calling thread uses now ([`current_isa`]).
    pub(crate) fn current() -> Self {
        Self::new(current_isa())
    }

    /// Rows of the register tile.
    pub(crate) fn mr(self) -> usize {
        match self.isa {
            Isa::Scalar => scalar::MR,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2Fma => x86_64::AVX2_MR,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => x86_64::AVX512_MR,
            #[cfg(not(target_arch = "x86_64"))]
            _ => scalar::MR,
        }
    }

    /// Columns of the register tile.
    pub(crate) fn nr(self) -> usize {
        match self.isa {
            Isa::Scalar => scalar::NR,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2Fma => x86_64::AVX2_NR,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => x86_64::AVX512_NR,
            #[cfg(not(target_arch = "x86_64"))]
            _ => scalar::NR,
        }
    }

    /// `c[i * rs_c + j] (+)= sum_{k < kc} a[k * MR + i] * b[k * NR + j]` for `i < rows`,
    /// `j < cols`: one register tile of a packed product, its ragged edge included.
    ///
    /// # Panics
    /// If `rows` or `cols` is zero or exceeds the tile, `a` or `b` is shorter than `kc` steps,
    /// rows of `c` would overlap (`rs_c < cols` with several rows), or `c` is too short.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub(crate) fn micro(
        self,
        kc: usize,
        a: &[f32],
        b: &[f32],
        c: &mut [f32],
        rs_c: usize,
        rows: usize,
        cols: usize,
        accumulate: bool,
    ) {
        let (mr, nr) = (self.mr(), self.nr());
        assert!(
            (1..=mr).contains(&rows)
                && (1..=nr).contains(&cols)
                && a.len() >= kc * mr
                && b.len() >= kc * nr
                && (rows == 1 || rs_c >= cols)
                && c.len() >= (rows - 1) * rs_c + cols,
            "micro-kernel: a {rows}x{cols} tile (of {mr}x{nr}) with row stride {rs_c}, depth \
             {kc}, does not fit panels of {} and {} or {} outputs",
            a.len(),
            b.len(),
            c.len()
        );
        match self.isa {
            Isa::Scalar => scalar::micro(kc, a, b, c, rs_c, rows, cols, accumulate),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: a `Kernel` holds `Avx2Fma` only when the CPU has AVX2 and FMA
            // (`Kernel::new`); the assertion above checked every extent `micro_avx2` touches:
            // `kc * 6` floats of `a`, `kc * 16` of `b`, and `c` at `i * rs_c + j` for
            // `i < rows <= 6`, `j < cols <= 16`. `c` is a unique borrow, so nothing aliases it.
            Isa::Avx2Fma => unsafe {
                x86_64::micro_avx2(
                    kc,
                    a.as_ptr(),
                    b.as_ptr(),
                    c.as_mut_ptr(),
                    rs_c,
                    rows,
                    cols,
                    accumulate,
                )
            },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above, for AVX-512F (`Kernel::new` checked it) with an 8 x 32 tile.
            Isa::Avx512 => unsafe {
                x86_64::micro_avx512(
                    kc,
                    a.as_ptr(),
                    b.as_ptr(),
                    c.as_mut_ptr(),
                    rs_c,
                    rows,
                    cols,
                    accumulate,
                )
            },
            #[cfg(not(target_arch = "x86_64"))]
            _ => scalar::micro(kc, a, b, c, rs_c, rows, cols, accumulate),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pseudo-random values in [-1, 1).
    fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len as u32)
            .map(|i| {
                let x = (i.wrapping_add(seed).wrapping_mul(2_654_435_761) >> 9) % 2000;
                x as f32 / 1000.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn every_level_matches_a_naive_product_on_full_and_ragged_tiles() {
        for isa in Isa::available_levels() {
            let kern = Kernel::new(isa);
            assert_eq!(kern.isa, isa);
            let (mr, nr) = (kern.mr(), kern.nr());
            for kc in [0, 1, 3, 17, 64] {
                let a = values(kc * mr, 1);
                let b = values(kc * nr, 2);
                for (rows, cols) in [(mr, nr), (1, 1), (mr - 1, nr), (mr, nr - 3), (2, 5)] {
                    let rs = cols + 3;
                    for accumulate in [false, true] {
                        let start = values(rows * rs, 3);
                        let mut c = start.clone();
                        kern.micro(kc, &a, &b, &mut c, rs, rows, cols, accumulate);
                        for i in 0..rows {
                            for j in 0..rs {
                                let got = c[i * rs + j];
                                if j >= cols {
                                    assert_eq!(got, start[i * rs + j], "{isa:?} wrote past cols");
                                    continue;
                                }
                                let dot: f64 = (0..kc)
                                    .map(|k| f64::from(a[k * mr + i]) * f64::from(b[k * nr + j]))
                                    .sum();
                                let want =
                                    dot + if accumulate { f64::from(start[i * rs + j]) } else { 0.0 };
                                assert!(
                                    (f64::from(got) - want).abs() <= 1e-5 * (1.0 + kc as f64),
                                    "{isa:?} kc {kc} tile {rows}x{cols} ({i},{j}): {got} vs {want}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_tile_gives_the_same_bits_whether_full_or_ragged() {
        for isa in Isa::available_levels() {
            let kern = Kernel::new(isa);
            let (mr, nr, kc) = (kern.mr(), kern.nr(), 37);
            let a = values(kc * mr, 4);
            let b = values(kc * nr, 5);
            let mut full = vec![0.0; mr * nr];
            kern.micro(kc, &a, &b, &mut full, nr, mr, nr, false);
            let mut corner = vec![0.0; 2 * 3];
            kern.micro(kc, &a, &b, &mut corner, 3, 2, 3, false);
            for i in 0..2 {
                assert_eq!(&corner[i * 3..i * 3 + 3], &full[i * nr..i * nr + 3], "{isa:?}");
            }
        }
    }

    #[test]
    #[should_panic(expected = "micro-kernel")]
    fn short_panels_are_rejected() {
        let kern = Kernel::new(Isa::detect());
        let mut c = vec![0.0; kern.mr() * kern.nr()];
        kern.micro(4, &[0.0; 3], &[0.0; 3], &mut c, kern.nr(), 1, 1, false);
    }
}
