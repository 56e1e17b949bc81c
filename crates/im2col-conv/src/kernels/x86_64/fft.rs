//! x86-64 kernels of the FFT convolution, with the images of a group in the vector lanes: a
//! 16 x 16 real 2D FFT of a plane, the products of the input and weight spectra summed over
//! the input channels, and the inverse FFT of an output plane. Each is one `#[inline(always)]`
//! body over the parent's `Vector` trait, instantiated for AVX2+FMA and AVX-512F under
//! `#[target_feature]` wrappers.
//!
//! A spectrum holds the bins `(r, c)`, `r < 16`, `c < 9` of a real plane (the others are
//! their conjugates): bin `(r, c)` at `((r * 9 + c) * 2 + part) * LANES`, `part` 0 for the
//! real and 1 for the imaginary part, a lane per image.
#![allow(unsafe_code)]

use super::{Vector, Ymm, Zmm};
use crate::kernels::{FFT_COLS, FFT_SIZE};

/// Output channels per pointwise tile, AVX2: 4 x 2 sums with the input bin and a weight's
/// two parts, 12 of the 16 `ymm`.
pub(crate) const AVX2_FFT_CHANNELS: usize = 4;
/// Output channels per pointwise tile, AVX-512: 8 x 2 sums, 20 of the 32 `zmm`.
pub(crate) const AVX512_FFT_CHANNELS: usize = 8;

/// `exp(-2 pi i k / 16)`, `k < 16`.
const TWIDDLES: [(f32, f32); 16] = [
    (1.0, 0.0),
    (0.923_879_5, -0.382_683_43),
    (
        std::f32::consts::FRAC_1_SQRT_2,
        -std::f32::consts::FRAC_1_SQRT_2,
    ),
    (0.382_683_43, -0.923_879_5),
    (0.0, -1.0),
    (-0.382_683_43, -0.923_879_5),
    (
        -std::f32::consts::FRAC_1_SQRT_2,
        -std::f32::consts::FRAC_1_SQRT_2,
    ),
    (-0.923_879_5, -0.382_683_43),
    (-1.0, 0.0),
    (-0.923_879_5, 0.382_683_43),
    (
        -std::f32::consts::FRAC_1_SQRT_2,
        std::f32::consts::FRAC_1_SQRT_2,
    ),
    (-0.382_683_43, 0.923_879_5),
    (0.0, 1.0),
    (0.382_683_43, 0.923_879_5),
    (
        std::f32::consts::FRAC_1_SQRT_2,
        std::f32::consts::FRAC_1_SQRT_2,
    ),
    (0.923_879_5, 0.382_683_43),
];

/// A complex value per lane.
#[derive(Clone, Copy)]
struct Cplx<V> {
    re: V,
    im: V,
}

impl<V: Vector> Cplx<V> {
    /// # Safety
    /// The CPU has `V`'s features.
    #[inline(always)]
    unsafe fn zero() -> Self {
        // SAFETY: forwarded from this function's contract.
        unsafe {
            Self {
                re: V::zero(),
                im: V::zero(),
            }
        }
    }

    /// # Safety
    /// The CPU has `V`'s features; `p` is readable for `2 * LANES` floats.
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: forwarded from this function's contract.
        unsafe {
            Self {
                re: V::load(p),
                im: V::load(p.add(V::LANES)),
            }
        }
    }

    /// # Safety
    /// The CPU has `V`'s features; `p` is writable for `2 * LANES` floats.
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: forwarded from this function's contract.
        unsafe {
            self.re.store(p);
            self.im.store(p.add(V::LANES));
        }
    }

    /// # Safety
    /// The CPU has `V`'s features.
    #[inline(always)]
    unsafe fn add(self, o: Self) -> Self {
        // SAFETY: forwarded from this function's contract.
        unsafe {
            Self {
                re: self.re.add(o.re),
                im: self.im.add(o.im),
            }
        }
    }

    /// # Safety
    /// The CPU has `V`'s features.
    #[inline(always)]
    unsafe fn sub(self, o: Self) -> Self {
        // SAFETY: forwarded from this function's contract.
        unsafe {
            Self {
                re: self.re.sub(o.re),
                im: self.im.sub(o.im),
            }
        }
    }

    /// The conjugate.
    ///
    /// # Safety
    /// The CPU has `V`'s features.
    #[inline(always)]
    unsafe fn conj(self) -> Self {
        // SAFETY: forwarded from this function's contract.
        unsafe {
            Self {
                re: self.re,
                im: V::zero().sub(self.im),
            }
        }
    }

    /// `self * exp(-2 pi i k / 16)`, with the trivial twiddles (1 and -i) free.
    ///
    /// # Safety
    /// The CPU has `V`'s features.
    #[inline(always)]
    unsafe fn twiddle(self, k: usize) -> Self {
        // SAFETY: forwarded from this function's contract.
        unsafe {
            match k % 16 {
                0 => self,
                4 => Self {
                    re: self.im,
                    im: V::zero().sub(self.re),
                },
                k => {
                    let (wr, wi) = TWIDDLES[k];
                    let (wr, wi) = (V::splat(wr), V::splat(wi));
                    Self {
                        re: self.im.fnma(wi, self.re.mul(wr)),
                        im: self.re.fma(wi, self.im.mul(wr)),
                    }
                }
            }
        }
    }
}

/// The 4-point DFT (`W4 = -i`).
///
/// # Safety
/// The CPU has `V`'s features.
#[inline(always)]
unsafe fn dft4<V: Vector>(a: [Cplx<V>; 4]) -> [Cplx<V>; 4] {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        let (t0, t1) = (a[0].add(a[2]), a[0].sub(a[2]));
        let (t2, t3) = (a[1].add(a[3]), a[1].sub(a[3]));
        [
            t0.add(t2),
            Cplx {
                re: t1.re.add(t3.im),
                im: t1.im.sub(t3.re),
            },
            t0.sub(t2),
            Cplx {
                re: t1.re.sub(t3.im),
                im: t1.im.add(t3.re),
            },
        ]
    }
}

/// The 16-point DFT `X[k] = sum_n x[n] exp(-2 pi i n k / 16)`, in place, as 4 x 4: the
/// 4-point DFTs over `n = 4 n1 + n2` for each `n2`, twiddles `W16^(n2 k1)`, then the 4-point
/// DFTs over `n2` give `X[k1 + 4 k2]`. A radix-2 version, with a bit-reversed copy and four
/// passes, ran about 3x slower in a prototype (`lenet.c2`'s 64 images: 64 against 20 us of
/// forward transforms, 133 against 40 of inverse ones).
///
/// # Safety
/// The CPU has `V`'s features.
#[inline(always)]
unsafe fn fft16<V: Vector>(x: &mut [Cplx<V>; 16]) {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        let mut a = [[x[0]; 4]; 4];
        for (n2, row) in a.iter_mut().enumerate() {
            let d = dft4([x[n2], x[4 + n2], x[8 + n2], x[12 + n2]]);
            for (k1, v) in row.iter_mut().enumerate() {
                *v = d[k1].twiddle(n2 * k1);
            }
        }
        for k1 in 0..4 {
            let d = dft4([a[0][k1], a[1][k1], a[2][k1], a[3][k1]]);
            for (k2, v) in d.into_iter().enumerate() {
                x[k1 + 4 * k2] = v;
            }
        }
    }
}

/// The spectrum of one real 16 x 16 plane (`src[(r * 16 + c) * LANES]`) whose rows outside
/// `rows` are zero (they are not read), into `dst`. Whole rows of 16 are read, so that every
/// loop has a fixed length: a first version, with the plane's width and place as the loops'
/// bounds, ran `lenet.c2` forward at 148 GFLOP/s at one thread, against 166 with this one.
///
/// # Safety
/// The CPU has `V`'s features; `rows[0] <= rows[1] <= 16`; `src` is readable for `16 * 16 *
/// LANES` floats and `dst` writable for a spectrum (`16 * 9 * 2 * LANES` floats).
#[inline(always)]
unsafe fn spectrum_body<V: Vector>(src: *const f32, [r0, r1]: [usize; 2], dst: *mut f32) {
    let lanes = V::LANES;
    let bin = |r: usize, c: usize| ((r * FFT_COLS + c) * 2) * lanes;
    // SAFETY: rows `r < 16` of 16 columns stay inside `src`; bins `r < 16`, `c < 9` inside
    // `dst`.
    unsafe {
        for r in 0..FFT_SIZE {
            if !(r0..r1).contains(&r) {
                for c in 0..FFT_COLS {
                    Cplx::<V>::zero().store(dst.add(bin(r, c)));
                }
                continue;
            }
            let row = src.add(r * FFT_SIZE * lanes);
            let mut v = [Cplx::<V>::zero(); FFT_SIZE];
            for (c, x) in v.iter_mut().enumerate() {
                x.re = V::load(row.add(c * lanes));
            }
            fft16(&mut v);
            for (c, x) in v.iter().enumerate().take(FFT_COLS) {
                x.store(dst.add(bin(r, c)));
            }
        }
        for c in 0..FFT_COLS {
            let mut v = [Cplx::<V>::zero(); FFT_SIZE];
            for (r, x) in v.iter_mut().enumerate() {
                *x = Cplx::load(dst.add(bin(r, c)));
            }
            fft16(&mut v);
            for (r, x) in v.iter().enumerate() {
                x.store(dst.add(bin(r, c)));
            }
        }
    }
}

/// The products of the spectra, summed over the input channels: for `co < count` and every
/// bin, `y[co] = sum_ci x[ci] * conj(w[co0 + co][ci])` (the correlation's spectrum), where
/// `x[ci]` is the spectrum at `x + ci * SPEC` (`SPEC = 16 * 9 * 2 * LANES`), `y[co]` at `y +
/// co * SPEC`, and the weight spectra are the layer's `cout * cin` kernels in lanes:
/// kernel `k = co * cin + ci` in group `k / LANES`, lane `k % LANES`, spectrum at `w + (k /
/// LANES) * SPEC`. Each sum runs over `ci` in order.
///
/// # Safety
/// The CPU has `V`'s features; `1 <= count <= CT`; `x` is readable for `cin` spectra, `w` for
/// `(co0 + count) * cin` kernels' groups, `y` writable for `count` spectra.
#[inline(always)]
unsafe fn products_body<V: Vector, const CT: usize>(
    x: *const f32,
    cin: usize,
    w: *const f32,
    [co0, count]: [usize; 2],
    y: *mut f32,
) {
    let lanes = V::LANES;
    let spec = FFT_SIZE * FFT_COLS * 2 * lanes;
    // SAFETY: spectra and bins stay inside the extents of the contract; kernel indices use
    // channels clamped below `count`, whose sums are not stored.
    unsafe {
        for b in 0..FFT_SIZE * FFT_COLS {
            let at = b * 2 * lanes;
            let mut acc = [Cplx::<V>::zero(); CT];
            for ci in 0..cin {
                let xv = Cplx::<V>::load(x.add(ci * spec + at));
                for (t, a) in acc.iter_mut().enumerate() {
                    let k = (co0 + t.min(count - 1)) * cin + ci;
                    let wp = w.add((k / lanes) * spec + at + k % lanes);
                    let (wr, wi) = (V::splat(*wp), V::splat(*wp.add(lanes)));
                    // (xr + i xi)(wr - i wi) = xr wr + xi wi + i (xi wr - xr wi).
                    a.re = xv.im.fma(wi, xv.re.fma(wr, a.re));
                    a.im = xv.re.fnma(wi, xv.im.fma(wr, a.im));
                }
            }
            for (t, a) in acc.iter().enumerate().take(count) {
                a.store(y.add(t * spec + at));
            }
        }
    }
}

/// The inverse of spectrum `spec` (overwritten), scaled by `1 / 256` and plus `bias`, at
/// rows `< out_h` and columns `< out_w`: `dst[(r * out_w + c) * LANES]`. The loads into the
/// transforms have fixed lengths (see [`spectrum_body`]).
///
/// # Safety
/// The CPU has `V`'s features; `out_h, out_w <= 16`; `spec` is readable and writable for a
/// spectrum, `dst` writable for `out_h * out_w * LANES` floats.
#[inline(always)]
unsafe fn inverse_body<V: Vector>(
    spec: *mut f32,
    [out_h, out_w]: [usize; 2],
    bias: f32,
    dst: *mut f32,
) {
    let lanes = V::LANES;
    let bin = |r: usize, c: usize| ((r * FFT_COLS + c) * 2) * lanes;
    // SAFETY: bins `r < 16`, `c < 9` stay inside `spec`; outputs `r < out_h`, `c < out_w`
    // inside `dst`.
    unsafe {
        // The inverse DFT as the conjugate of the DFT of the conjugate.
        for c in 0..FFT_COLS {
            let mut v = [Cplx::<V>::zero(); FFT_SIZE];
            for (r, x) in v.iter_mut().enumerate() {
                *x = Cplx::<V>::load(spec.add(bin(r, c))).conj();
            }
            fft16(&mut v);
            for (r, x) in v.iter().enumerate() {
                x.conj().store(spec.add(bin(r, c)));
            }
        }
        let (scale, bias) = (V::splat(1.0 / (FFT_SIZE * FFT_SIZE) as f32), V::splat(bias));
        for r in 0..out_h {
            // Columns 9..16 are the conjugates of 7..1 (a real plane); conjugated for the
            // inverse, they are those bins as they are.
            let mut v = [Cplx::<V>::zero(); FFT_SIZE];
            for c in 0..FFT_COLS {
                let x = Cplx::<V>::load(spec.add(bin(r, c)));
                v[c] = x.conj();
                if c > 0 && c < FFT_SIZE - FFT_COLS + 1 {
                    v[FFT_SIZE - c] = x;
                }
            }
            fft16(&mut v);
            // A fixed-length loop with a test per column, not one of `out_w` columns, so
            // that every loop over the transform's values has a length known when compiling
            // (`lenet.c2` forward timed 168 -> 180.5 GFLOP/s at one thread; a rebuild that
            // changed only a comment also timed 167, so the gain is not established).
            for (c, x) in v.iter().enumerate() {
                if c < out_w {
                    x.re.fma(scale, bias)
                        .store(dst.add((r * out_w + c) * lanes));
                }
            }
        }
    }
}

macro_rules! fft_entries {
    ($spectrum:ident, $products:ident, $inverse:ident, $feature:literal, $vector:ty, $ct:expr) => {
        /// [`spectrum_body`] at this level.
        ///
        /// # Safety
        /// The CPU has the level's features; the arguments satisfy [`spectrum_body`]'s
        /// contract.
        #[target_feature(enable = $feature)]
        pub(crate) unsafe fn $spectrum(src: *const f32, rows: [usize; 2], dst: *mut f32) {
            // SAFETY: forwarded from this function's contract.
            unsafe { spectrum_body::<$vector>(src, rows, dst) }
        }

        /// [`products_body`] at this level, tiles of its pointwise channels.
        ///
        /// # Safety
        /// The CPU has the level's features; the arguments satisfy [`products_body`]'s
        /// contract for its tile.
        #[target_feature(enable = $feature)]
        pub(crate) unsafe fn $products(
            x: *const f32,
            cin: usize,
            w: *const f32,
            co: [usize; 2],
            y: *mut f32,
        ) {
            // SAFETY: forwarded from this function's contract.
            unsafe { products_body::<$vector, { $ct }>(x, cin, w, co, y) }
        }

        /// [`inverse_body`] at this level.
        ///
        /// # Safety
        /// The CPU has the level's features; the arguments satisfy [`inverse_body`]'s
        /// contract.
        #[target_feature(enable = $feature)]
        pub(crate) unsafe fn $inverse(spec: *mut f32, out: [usize; 2], bias: f32, dst: *mut f32) {
            // SAFETY: forwarded from this function's contract.
            unsafe { inverse_body::<$vector>(spec, out, bias, dst) }
        }
    };
}

fft_entries!(
    spectrum_avx2,
    products_avx2,
    inverse_avx2,
    "avx2,fma",
    Ymm,
    AVX2_FFT_CHANNELS
);
fft_entries!(
    spectrum_avx512,
    products_avx512,
    inverse_avx512,
    "avx512f",
    Zmm,
    AVX512_FFT_CHANNELS
);
