//! x86-64 broadcast convolution kernel: a tile of output pixels by a block of output channels,
//! vectorised over the output channels. Each step broadcasts one input value per pixel and
//! multiplies it by a vector of weights (one per output channel), so neither the row width
//! nor the stride wastes lanes: the forward kernel for rows that do not tile the vectors.

use super::{Vector, Ymm, Zmm};

/// Tiles of the AVX2 kernel, by weight vectors per tap (output channels / 8): pixels. At most
/// two vectors: with four, the 12 accumulators, 4 weight vectors and the broadcast need 17 of
/// the 16 `ymm` registers, and the spills halve the speed. The last entry is the alternative
/// to the one of the same width that callers may choose (here the same).
pub(crate) const AVX2_TILES: [(usize, usize); 4] = [(1, 12), (2, 6), (2, 6), (2, 6)];
/// Tiles of the AVX-512 kernel, by weight vectors per tap (output channels / 16): pixels (25
/// with one vector: `lenet.c2`'s 10x10 outputs and 150 taps split into whole tiles, where 24
/// wasted 11-17%). Two vectors take 12 pixels or, the last entry, 13 (29 of the 32 `zmm`
/// registers), whichever covers the layer's pixels in fewer multiply-adds: 13 for
/// `mnist.c2`'s backward-data (+3%) and `resnet20`'s 8x8 scatter (+12%), 12 for its 16x16
/// backward-data (13 was 2-5% slower).
pub(crate) const AVX512_TILES: [(usize, usize); 4] = [(1, 25), (2, 12), (4, 6), (2, 13)];
/// The weight-gradient kernel's tiles (output channels: taps), the first three of
/// [`AVX2_TILES`] and [`AVX512_TILES`]: with two AVX-512 vectors, 12 taps split a 3x3
/// kernel's taps per channel into whole tiles (13 was 7% slower on `resnet20`'s 32-channel
/// layers).
pub(crate) const AVX2_GRAD_TILES: [(usize, usize); 3] =
    [AVX2_TILES[0], AVX2_TILES[1], AVX2_TILES[2]];
pub(crate) const AVX512_GRAD_TILES: [(usize, usize); 3] =
    [AVX512_TILES[0], AVX512_TILES[1], AVX512_TILES[2]];

/// Geometry of the zero-padded input the kernel reads.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BcastGeom {
    /// Input channels, kernel height and width.
    pub(crate) dims: [usize; 3],
    /// Padded plane and row strides.
    pub(crate) xs: usize,
    pub(crate) xw: usize,
    /// Dilation: rows and columns between taps.
    pub(crate) dilation: [usize; 2],
    /// The kernel rows `k0..k1` and columns `j0..j1` the tile runs: the others read only
    /// padding for all its pixels, and their terms are zero.
    pub(crate) window: [[usize; 2]; 2],
    /// Whether the sums are added to the tile's rows (which are read first) rather than
    /// stored over them.
    pub(crate) add: bool,
}

/// One tap of [`bcast_body`]: `acc[p][v] += x[at[p] + off] * w[v * LANES ..]`.
///
/// # Safety
/// The CPU has `V`'s features; every `at[p] + off` is readable, and `w` for `COV` vectors.
#[inline(always)]
unsafe fn step<V: Vector, const COV: usize, const P: usize>(
    acc: &mut [[V; COV]; P],
    at: &[*const f32; P],
    off: usize,
    w: *const f32,
) {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        let wv: [V; COV] = std::array::from_fn(|v| V::load(w.add(v * V::LANES)));
        for (a, &xp) in acc.iter_mut().zip(at) {
            let xv = V::splat(*xp.add(off));
            for (av, &wvv) in a.iter_mut().zip(&wv) {
                *av = xv.fma(wvv, *av);
            }
        }
    }
}

/// `tile[dst[p] * C + c] (+)= bias[c] + sum_{ci, ki, kj} w[t * C + c] * x[offs[p] + ci * xs +
/// ki * dh * xw + kj * dw]` for `p < P`, `c < C = COV * LANES`, tap `t = (ci * kh + ki) * kw +
/// kj`, kernel rows `ki` and columns `kj` in `g.window`: the sums run over the taps in order,
/// started from the bias (or zero), then, with `g.add`, are added to the tile's rows (pixel
/// after pixel, so pixels sharing a row add up).
///
/// # Safety
/// The CPU has `V`'s features; `x` is readable at every offset above; `w` for `taps * C`
/// floats; `bias`, unless null, for `C`; `offs` and `dst` for `P` values each and `tile`
/// readable and writable for `C` floats at every `dst[p] * C`.
#[inline(always)]
unsafe fn bcast_body<V: Vector, const COV: usize, const P: usize>(
    x: *const f32,
    offs: *const usize,
    g: BcastGeom,
    w: *const f32,
    bias: *const f32,
    tile: *mut f32,
    dst: *const usize,
) {
    let [cin, kh, kw] = g.dims;
    let [dh, dw] = g.dilation;
    let c_len = COV * V::LANES;
    // SAFETY: every read and write is at an offset the contract makes valid; the features
    // are present.
    unsafe {
        let at: [*const f32; P] = std::array::from_fn(|p| x.add(*offs.add(p)));
        let mut acc = [[V::zero(); COV]; P];
        if !bias.is_null() {
            let b: [V; COV] = std::array::from_fn(|v| V::load(bias.add(v * V::LANES)));
            acc.fill(b);
        }
        let [[k0, k1], [j0, j1]] = g.window;
        if g.window == [[0, kh], [0, kw]] {
            // The whole kernel (every tap of the scatter, every interior tile): the loops
            // with no skips, whose few live values leave AVX2's registers to the tile.
            let mut wt = w;
            for ci in 0..cin {
                for ki in 0..kh {
                    let row = ci * g.xs + ki * dh * g.xw;
                    for kj in 0..kw {
                        step::<V, COV, P>(&mut acc, &at, row + kj * dw, wt);
                        wt = wt.add(c_len);
                    }
                }
            }
        } else {
            // One pointer walks the window's weights: past a row's last column to the next
            // row's first, past a channel's last row to the next channel's first. It moves by
            // `wrapping_add`: after the last tap it may point past the weights, unread.
            let row_skip = (kw - (j1 - j0)) * c_len;
            let channel_skip = (kh - (k1 - k0)) * kw * c_len;
            let mut wt = w.wrapping_add((k0 * kw + j0) * c_len);
            for ci in 0..cin {
                for ki in k0..k1 {
                    let row = ci * g.xs + ki * dh * g.xw;
                    for kj in j0..j1 {
                        step::<V, COV, P>(&mut acc, &at, row + kj * dw, wt);
                        wt = wt.wrapping_add(c_len);
                    }
                    wt = wt.wrapping_add(row_skip);
                }
                wt = wt.wrapping_add(channel_skip);
            }
        }
        for (p, a) in acc.iter().enumerate() {
            let row = tile.add(*dst.add(p) * c_len);
            for (v, &av) in a.iter().enumerate() {
                let at = row.add(v * V::LANES);
                if g.add {
                    V::load(at).add(av).store(at);
                } else {
                    av.store(at);
                }
            }
        }
    }
}

/// Dispatches a `(COV, P)` tile of [`AVX2_TILES`] or [`AVX512_TILES`] to its instantiation.
macro_rules! bcast_entry {
    ($name:ident, $feature:literal, $vector:ty, $tiles:ident) => {
        /// The broadcast kernel at this level, for tile `$tiles[which]`.
        ///
        /// # Safety
        /// The CPU has the level's features; the pointers satisfy [`bcast_body`]'s contract
        /// for that tile; `which < 4`.
        #[target_feature(enable = $feature)]
        #[allow(clippy::too_many_arguments)]
        pub(crate) unsafe fn $name(
            which: usize,
            x: *const f32,
            offs: *const usize,
            g: BcastGeom,
            w: *const f32,
            bias: *const f32,
            tile: *mut f32,
            dst: *const usize,
        ) {
            const T0: (usize, usize) = $tiles[0];
            const T1: (usize, usize) = $tiles[1];
            const T2: (usize, usize) = $tiles[2];
            const T3: (usize, usize) = $tiles[3];
            // SAFETY: forwarded from this function's contract.
            unsafe {
                match which {
                    0 => bcast_body::<$vector, { T0.0 }, { T0.1 }>(x, offs, g, w, bias, tile, dst),
                    1 => bcast_body::<$vector, { T1.0 }, { T1.1 }>(x, offs, g, w, bias, tile, dst),
                    2 => bcast_body::<$vector, { T2.0 }, { T2.1 }>(x, offs, g, w, bias, tile, dst),
                    _ => bcast_body::<$vector, { T3.0 }, { T3.1 }>(x, offs, g, w, bias, tile, dst),
                }
            }
        }
    };
}

bcast_entry!(bcast_avx2, "avx2,fma", Ymm, AVX2_TILES);
bcast_entry!(bcast_avx512, "avx512f", Zmm, AVX512_TILES);

/// Weight-gradient tile of the broadcast kernel over `images` images, vectorised over output
/// channels: `tile[i * C + c] += sum over images g, then output pixels (oh, ow), in order, of
/// dyt[((g * out_h + oh) * out_w + ow) * dyt_stride + c] * x[g * xi + oh * sh * xw + ow * sw +
/// taps[i]]` for `i < T`, `c < C = COV * LANES`. `x` holds the zero-padded images (`xi`
/// floats apart), `taps` each tap's offset in one, `dyt` the output gradients transposed to
/// pixel-major (`dyt_stride` floats per pixel, image after image). The sums stay in
/// registers across the images.
///
/// # Safety
/// The CPU has `V`'s features; `x` is readable at every offset above, `dyt` for `C` floats
/// at every pixel's row, `taps` for `T` values, and `tile` readable and writable for `T * C`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn wgrad_bcast_body<V: Vector, const COV: usize, const T: usize>(
    x: *const f32,
    [images, xi]: [usize; 2],
    [out_h, out_w]: [usize; 2],
    [sh, sw]: [usize; 2],
    xw: usize,
    taps: *const usize,
    dyt: *const f32,
    dyt_stride: usize,
    tile: *mut f32,
) {
    let c_len = COV * V::LANES;
    // SAFETY: every read and write is at an offset the contract makes valid; the features
    // are present.
    unsafe {
        let tap: [usize; T] = std::array::from_fn(|i| *taps.add(i));
        let mut acc: [[V; COV]; T] = std::array::from_fn(|i| {
            std::array::from_fn(|v| V::load(tile.add(i * c_len + v * V::LANES)))
        });
        let mut d = dyt;
        for g in 0..images {
            let image = x.add(g * xi);
            for oh in 0..out_h {
                let row = image.add(oh * sh * xw);
                for ow in 0..out_w {
                    let xp = row.add(ow * sw);
                    let dv: [V; COV] = std::array::from_fn(|v| V::load(d.add(v * V::LANES)));
                    for (a, &off) in acc.iter_mut().zip(&tap) {
                        let xv = V::splat(*xp.add(off));
                        for (av, &dvv) in a.iter_mut().zip(&dv) {
                            *av = xv.fma(dvv, *av);
                        }
                    }
                    d = d.add(dyt_stride);
                }
            }
        }
        for (i, a) in acc.iter().enumerate() {
            for (v, &av) in a.iter().enumerate() {
                av.store(tile.add(i * c_len + v * V::LANES));
            }
        }
    }
}

/// Dispatches a `(COV, T)` tile of [`AVX2_GRAD_TILES`] or [`AVX512_GRAD_TILES`] to its instantiation.
macro_rules! wgrad_bcast_entry {
    ($name:ident, $feature:literal, $vector:ty, $tiles:ident) => {
        /// The broadcast weight-gradient kernel at this level, for tile `$tiles[which]`.
        ///
        /// # Safety
        /// The CPU has the level's features; the pointers satisfy [`wgrad_bcast_body`]'s
        /// contract for that tile; `which < 3`.
        #[target_feature(enable = $feature)]
        #[allow(clippy::too_many_arguments)]
        pub(crate) unsafe fn $name(
            which: usize,
            x: *const f32,
            images: [usize; 2],
            out: [usize; 2],
            stride: [usize; 2],
            xw: usize,
            taps: *const usize,
            dyt: *const f32,
            dyt_stride: usize,
            tile: *mut f32,
        ) {
            const T0: (usize, usize) = $tiles[0];
            const T1: (usize, usize) = $tiles[1];
            const T2: (usize, usize) = $tiles[2];
            // SAFETY: forwarded from this function's contract.
            unsafe {
                match which {
                    0 => wgrad_bcast_body::<$vector, { T0.0 }, { T0.1 }>(
                        x, images, out, stride, xw, taps, dyt, dyt_stride, tile,
                    ),
                    1 => wgrad_bcast_body::<$vector, { T1.0 }, { T1.1 }>(
                        x, images, out, stride, xw, taps, dyt, dyt_stride, tile,
                    ),
                    _ => wgrad_bcast_body::<$vector, { T2.0 }, { T2.1 }>(
                        x, images, out, stride, xw, taps, dyt, dyt_stride, tile,
                    ),
                }
            }
        }
    };
}

wgrad_bcast_entry!(wgrad_bcast_avx2, "avx2,fma", Ymm, AVX2_GRAD_TILES);
wgrad_bcast_entry!(wgrad_bcast_avx512, "avx512f", Zmm, AVX512_GRAD_TILES);
