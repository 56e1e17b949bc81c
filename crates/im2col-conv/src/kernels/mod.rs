//! SIMD micro-kernels behind safe entry points: `Kernel` checks slice lengths, then dispatches
//! on the instruction-set level chosen once per call (see `isa`).
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
//!
//! Besides the micro-kernel: a direct convolution row kernel for layers with few input
//! channels (vectorised over the output width, 4 or 8 output channels per call), row copies
//! for implicit im2col packing, and an 8 x 8 transposing pack for backward-weight's operands;
//! at AVX-512, the Winograd route's input transform, forward tiles and weight-gradient
//! tiles. The scalar level has no direct
//! kernel (its convolutions all run as GEMM).
//!
//! Safety: `x86_64` holds the only `unsafe` code of the kernels, in `#[target_feature]`
//! functions taking raw pointers. Everything here checks slice extents first and calls them
//! only through a `Kernel`, which is built for a level only when the CPU has it.

#![allow(unsafe_code)]

pub(crate) mod isa;
mod scalar;
#[cfg(target_arch = "x86_64")]
mod x86_64;

pub use isa::{Isa, current_isa, isa_name, with_isa};

/// Where the pixels of one broadcast-kernel tile read and write (see [`Kernel::broadcast`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct TilePixels<'a> {
    /// Each pixel's window corner in the padded image.
    pub(crate) offs: &'a [usize],
    /// Each pixel's row in the pixel-major output (a tile's pixels past the end of its run
    /// repeat its last pixel, offset and row both: the same sums, stored twice).
    pub(crate) dst: &'a [usize],
    /// The kernel rows `k0..k1` and columns `j0..j1` to run.
    pub(crate) window: [[usize; 2]; 2],
    /// Whether each pixel's sums are added to its row (pixels sharing a row adding up in
    /// turn) rather than stored over it.
    pub(crate) add: bool,
}

/// An entry of a level's broadcast tile table: weight vectors per tap, and pixels (or taps).
type TileEntry = (usize, usize);

/// Side of the FFT convolution's planes ([`Kernel::fft_spectrum`]).
pub(crate) const FFT_SIZE: usize = 16;
/// Columns of bins a spectrum keeps of a real plane (the others are their conjugates).
pub(crate) const FFT_COLS: usize = FFT_SIZE / 2 + 1;

/// Input pixels along a row per tile of the lane kernel ([`Kernel::lane_row`]).
pub(crate) const LANE_PIXELS: usize = 4;

/// The lane kernel's tile (see [`Kernel::lane_row`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LaneTile {
    /// Images per vector.
    pub(crate) images: usize,
    /// Input channels per call.
    pub(crate) channels: usize,
}

/// One of a level's broadcast-kernel tiles (see [`Kernel::broadcast_tiles`]): output channels
/// per call and output pixels, and which instantiation computes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BroadcastTile {
    which: usize,
    pub(crate) channels: usize,
    pub(crate) pixels: usize,
}

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

impl Kernel {
    /// `dst[r * dst_stride..][..len] = src[r * src_stride..][..len]` for `r < count`: the
    /// short rows of implicit im2col packing, without a `memcpy` call per row.
    ///
    /// # Panics
    /// If a row lies outside its slice.
    #[inline]
    pub(crate) fn copy_rows(
        self,
        dst: &mut [f32],
        dst_stride: usize,
        src: &[f32],
        src_stride: usize,
        len: usize,
        count: usize,
    ) {
        if len == 0 || count == 0 {
            return;
        }
        assert!(
            (count - 1) * dst_stride + len <= dst.len()
                && (count - 1) * src_stride + len <= src.len()
                && (count == 1 || dst_stride >= len),
            "copy_rows: {count} rows of {len} overrun {} or {} floats",
            dst.len(),
            src.len()
        );
        self.rows_raw(dst, dst_stride, Some((src, src_stride)), len, count);
    }

    /// `dst[r * dst_stride..][..len] = 0` for `r < count`.
    ///
    /// # Panics
    /// If a row lies outside `dst`.
    #[inline]
    pub(crate) fn zero_rows(self, dst: &mut [f32], dst_stride: usize, len: usize, count: usize) {
        if len == 0 || count == 0 {
            return;
        }
        assert!(
            (count - 1) * dst_stride + len <= dst.len() && (count == 1 || dst_stride >= len),
            "zero_rows: {count} rows of {len} overrun {} floats",
            dst.len()
        );
        self.rows_raw(dst, dst_stride, None, len, count);
    }

    /// `dst[p * ldd + j] = src[j * lds + p]` for `j < rows`, `p < depth`: packs an operand
    /// whose contiguous axis is the product's depth (backward-weight's rows of `dY` and of the
    /// columns) into the `depth`-major layout of the micro-kernel's panels.
    ///
    /// # Panics
    /// If an element lies outside its slice, or `ldd < rows` with several depth steps.
    pub(crate) fn transpose(
        self,
        src: &[f32],
        lds: usize,
        rows: usize,
        depth: usize,
        dst: &mut [f32],
        ldd: usize,
    ) {
        if rows == 0 || depth == 0 {
            return;
        }
        assert!(
            (rows - 1) * lds + depth <= src.len()
                && (depth - 1) * ldd + rows <= dst.len()
                && (depth == 1 || ldd >= rows),
            "transpose: {rows}x{depth} with strides {lds}, {ldd} overruns {} or {} floats",
            src.len(),
            dst.len()
        );
        match self.isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the match guard checked the CPU has AVX2 (an AVX-512 level does not
            // imply it, so it is checked, not assumed); the assertion bounds every element
            // read and written, and `dst` is a unique borrow, so it overlaps no source.
            Isa::Avx2Fma | Isa::Avx512 if Isa::Avx2Fma.available() => unsafe {
                x86_64::transpose_avx2(src.as_ptr(), lds, rows, depth, dst.as_mut_ptr(), ldd)
            },
            _ => {
                for j in 0..rows {
                    for p in 0..depth {
                        dst[p * ldd + j] = src[j * lds + p];
                    }
                }
            }
        }
    }

    /// Output channels one call of [`Kernel::direct_rows`] computes, or `None` at the scalar
    /// level (which has no direct kernel: its convolutions all run as GEMM).
    pub(crate) fn direct_channels(self) -> Option<usize> {
        match self.isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2Fma => Some(x86_64::AVX2_DIRECT_CO),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => Some(x86_64::AVX512_DIRECT_CO),
            _ => None,
        }
    }

    /// The lane kernel's tile: images per vector and input channels per call
    /// ([`Kernel::lane_row`]). `None` at the scalar level.
    pub(crate) fn lane_tile(self) -> Option<LaneTile> {
        #[cfg(target_arch = "x86_64")]
        let channels = [x86_64::AVX2_LANE_CHANNELS, x86_64::AVX512_LANE_CHANNELS];
        #[cfg(not(target_arch = "x86_64"))]
        let channels = [0; 2];
        self.images_in_lanes(channels)
    }

    /// A tile of one image per lane (8 at AVX2, 16 at AVX-512) by `channels[0]` (AVX2) or
    /// `channels[1]` (AVX-512) channels. `None` at the scalar level.
    #[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
    fn images_in_lanes(self, channels: [usize; 2]) -> Option<LaneTile> {
        match self.isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2Fma => Some(LaneTile {
                images: 8,
                channels: channels[0],
            }),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => Some(LaneTile {
                images: 16,
                channels: channels[1],
            }),
            _ => None,
        }
    }

    /// One row `ih` of a stride-1 convolution's input gradient for input channels
    /// `ci0..ci0 + channels`, with the images of a group in the vector lanes:
    /// `dxt[(c * in_w4 + iw) * L + l] = sum_{co, ki, kj} w[co][ci0 + c][ki][kj] *
    /// dyt[((co * out_h + oh) * cols + left + ow) * L + l]` for `oh = ih + ph - ki` and
    /// `ow = iw + pw - kj` inside the output, where `L` is [`LaneTile::images`] and `in_w4`
    /// the input width rounded up to [`LANE_PIXELS`]. `dyt` is the output gradient
    /// transposed to pixel-major, with `left` zero columns before each row and at least
    /// `LANE_PIXELS - 1` after (`cols >= left + out_w + LANE_PIXELS - 1`, `left >= min(kw -
    /// 1, LANE_PIXELS - 1)`: how far a tile's pixels reach past a row's ends). `dims` is `[cin, kh,
    /// kw]`, `out` `[cout, out_h, out_w]`. Pixels past `in_w` in the last tile are written
    /// with values of no meaning.
    ///
    /// # Panics
    /// At the scalar level, if `channels` is not in `1..=` [`LaneTile::channels`], the
    /// geometry is inconsistent or a slice is shorter than it needs.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn lane_row(
        self,
        dyt: &[f32],
        [cols, left]: [usize; 2],
        out: [usize; 3],
        w: &[f32],
        dims: [usize; 3],
        pad: [usize; 2],
        [ci0, channels]: [usize; 2],
        [ih, in_w]: [usize; 2],
        dxt: &mut [f32],
    ) {
        let tile = self
            .lane_tile()
            .expect("lane_row: the scalar level has no lane kernel");
        let ([cout, out_h, out_w], [cin, kh, kw]) = (out, dims);
        assert!(
            (1..=tile.channels).contains(&channels)
                && ci0 + channels <= cin
                && kh >= 1
                && kw >= 1
                && left >= (kw - 1).min(LANE_PIXELS - 1)
                && cols >= out_w + left + LANE_PIXELS - 1
                && dyt.len() >= cout * out_h * cols * tile.images
                && w.len() >= cout * cin * kh * kw
                && dxt.len() >= channels * in_w.next_multiple_of(LANE_PIXELS) * tile.images,
            "lane_row: the slices or the geometry do not fit"
        );
        #[cfg(target_arch = "x86_64")]
        let call = x86_64::LaneRow {
            dyt: dyt.as_ptr(),
            cols,
            left,
            out,
            w: w.as_ptr(),
            dims,
            pad,
            ci0,
            channels,
            ih,
            in_w,
            dxt: dxt.as_mut_ptr(),
        };
        match self.isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Kernel::new` checked AVX2 and FMA; the assertion gives every extent
            // `lanes_body` reads and writes, the column margins it relies on and a channel
            // count inside its tile. The zero columns are the caller's promise (their values
            // only reach outputs outside a pixel's reach, never memory safety).
            Isa::Avx2Fma => unsafe { x86_64::lanes_avx2(call) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above, with AVX-512F checked by `Kernel::new`.
            Isa::Avx512 => unsafe { x86_64::lanes_avx512(call) },
            _ => unreachable!("lane_tile returned Some"),
        }
    }

    /// The FFT convolution's tile: images per vector and output channels per call of
    /// [`Kernel::fft_products`]. `None` at the scalar level.
    pub(crate) fn fft_tile(self) -> Option<LaneTile> {
        #[cfg(target_arch = "x86_64")]
        let channels = [x86_64::AVX2_FFT_CHANNELS, x86_64::AVX512_FFT_CHANNELS];
        #[cfg(not(target_arch = "x86_64"))]
        let channels = [0; 2];
        self.images_in_lanes(channels)
    }

    /// Floats of one spectrum (a plane's bins, a lane per image): `16 * 9 * 2 * L`.
    pub(crate) fn fft_spectrum_len(self) -> usize {
        self.fft_tile()
            .map_or(0, |t| FFT_SIZE * FFT_COLS * 2 * t.images)
    }

    /// The 2D DFT of a real `16 x 16` plane of a vector of images (`src[(r * 16 + c) * L +
    /// l]`) whose rows outside `rows` are zero (and not read): bin `(r, c)`, `c < 9`, at
    /// `dst[((r * 9 + c) * 2 + part) * L + l]`, `part` 0 real, 1 imaginary.
    ///
    /// # Panics
    /// At the scalar level, if `rows` is not a range inside the plane, or a slice is short.
    pub(crate) fn fft_spectrum(self, src: &[f32], [r0, r1]: [usize; 2], dst: &mut [f32]) {
        let tile = self
            .fft_tile()
            .expect("fft_spectrum: the scalar level has no FFT kernels");
        assert!(
            r0 <= r1
                && r1 <= FFT_SIZE
                && src.len() >= FFT_SIZE * FFT_SIZE * tile.images
                && dst.len() >= self.fft_spectrum_len(),
            "fft_spectrum: the rows or the slices do not fit"
        );
        match self.isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Kernel::new` checked AVX2 and FMA; the assertion gives the rows inside
            // the plane and both extents.
            Isa::Avx2Fma => unsafe {
                x86_64::spectrum_avx2(src.as_ptr(), [r0, r1], dst.as_mut_ptr())
            },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above, with AVX-512F checked by `Kernel::new`.
            Isa::Avx512 => unsafe {
                x86_64::spectrum_avx512(src.as_ptr(), [r0, r1], dst.as_mut_ptr())
            },
            _ => unreachable!("fft_tile returned Some"),
        }
    }

    /// The spectra of output channels `co0..co0 + count` of a correlation: for every bin,
    /// `y[co] = sum_ci x[ci] * conj(w[co0 + co][ci])`, summed over `ci` in order, where `x`
    /// holds `cin` spectra (see [`Kernel::fft_spectrum`]) and `w` the spectra of the layer's
    /// kernels `k = co * cin + ci` in lanes (kernel `k` in lane `k % L` of spectrum `k /
    /// L`); `y` receives `count` spectra.
    ///
    /// # Panics
    /// At the scalar level, if `count` is not in `1..=` [`LaneTile::channels`] of
    /// [`Kernel::fft_tile`], or a slice is short.
    pub(crate) fn fft_products(
        self,
        x: &[f32],
        cin: usize,
        w: &[f32],
        [co0, count]: [usize; 2],
        y: &mut [f32],
    ) {
        let tile = self
            .fft_tile()
            .expect("fft_products: the scalar level has no FFT kernels");
        let spec = self.fft_spectrum_len();
        let kernels = (co0 + count) * cin;
        assert!(
            (1..=tile.channels).contains(&count)
                && x.len() >= cin * spec
                && w.len() >= kernels.div_ceil(tile.images) * spec
                && y.len() >= count * spec,
            "fft_products: the slices or the channels do not fit"
        );
        match self.isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Kernel::new` checked AVX2 and FMA; the assertion bounds the spectra
            // read and written and the tile's channels.
            Isa::Avx2Fma => unsafe {
                x86_64::products_avx2(x.as_ptr(), cin, w.as_ptr(), [co0, count], y.as_mut_ptr())
            },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above, with AVX-512F checked by `Kernel::new`.
            Isa::Avx512 => unsafe {
                x86_64::products_avx512(x.as_ptr(), cin, w.as_ptr(), [co0, count], y.as_mut_ptr())
            },
            _ => unreachable!("fft_tile returned Some"),
        }
    }

    /// The inverse 2D DFT of spectrum `spec` (which it overwrites), divided by 256, plus
    /// `bias`, at rows `< out_h` and columns `< out_w`: `dst[(r * out_w + c) * L + l]`.
    ///
    /// # Panics
    /// At the scalar level, if the output is larger than the plane, or a slice is short.
    pub(crate) fn fft_inverse(
        self,
        spec: &mut [f32],
        [out_h, out_w]: [usize; 2],
        bias: f32,
        dst: &mut [f32],
    ) {
        let tile = self
            .fft_tile()
            .expect("fft_inverse: the scalar level has no FFT kernels");
        assert!(
            out_h <= FFT_SIZE
                && out_w <= FFT_SIZE
                && spec.len() >= self.fft_spectrum_len()
                && dst.len() >= out_h * out_w * tile.images,
            "fft_inverse: the output or the slices do not fit"
        );
        match self.isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Kernel::new` checked AVX2 and FMA; the assertion bounds the output
            // and both extents.
            Isa::Avx2Fma => unsafe {
                x86_64::inverse_avx2(spec.as_mut_ptr(), [out_h, out_w], bias, dst.as_mut_ptr())
            },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above, with AVX-512F checked by `Kernel::new`.
            Isa::Avx512 => unsafe {
                x86_64::inverse_avx512(spec.as_mut_ptr(), [out_h, out_w], bias, dst.as_mut_ptr())
            },
            _ => unreachable!("fft_tile returned Some"),
        }
    }

    /// Floats past the end of the last padded input row that [`Kernel::direct_rows`] may read
    /// (at most 31: two vectors of 16 past the last output; their values only reach outputs it
    /// does not store).
    pub(crate) const DIRECT_MARGIN: usize = 32;

    /// Direct convolution (stride 1, dilation 1) of output rows `oh0..oh1` for `rows` output
    /// channels, vectorised over the output width: `y[co * ys + oh * out_w + ow] = bias[co] +
    /// sum_{ci, ki, kj} w[co * cin*kh*kw + (ci * kh + ki) * kw + kj] * x[ci * xs + (oh + ki) *
    /// xw + ow + kj]`, where `x` is the zero-padded input (row stride `xw`, channel stride
    /// `xs`), and `ki` runs only over the kernel rows that read real input for the row: with
    /// `vert = [pad, h]`, the padding above the input and its height, the others read nothing
    /// but padding. The small-channel layers' forward path (their GEMM would be all packing
    /// and no arithmetic), and that of layers whose rows fill the vectors exactly. With
    /// `pair`, rows at most one vector wide (`out_w <= nr() / 2`) go two at a time, to fill
    /// the kernel's two vectors (an odd last row alone).
    ///
    /// # Panics
    /// At the scalar level, if `rows` is not in `1..=direct_channels()`, or a slice is shorter
    /// than the geometry needs (`x` must extend [`Kernel::DIRECT_MARGIN`] floats past the
    /// last input its outputs read).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn direct_rows(
        self,
        x: &[f32],
        xs: usize,
        xw: usize,
        [cin, kh, kw]: [usize; 3],
        [oh0, oh1]: [usize; 2],
        vert: [usize; 2],
        w: &[f32],
        bias: Option<&[f32]>,
        rows: usize,
        y: &mut [f32],
        ys: usize,
        out_w: usize,
        pair: bool,
    ) {
        let cob = self
            .direct_channels()
            .expect("direct_rows: the scalar level has no direct kernel");
        if oh0 >= oh1 {
            return;
        }
        let wk = cin * kh * kw;
        // The last input row read is `oh1 - 1 + kh - 1`; a pair's second vector reads a whole
        // vector from that row, inside the margin past its last needed input.
        let x_need = (cin.max(1) - 1) * xs + (oh1 - 1 + kh.max(1) - 1) * xw + out_w + kw - 1
            + Self::DIRECT_MARGIN;
        let y_len = oh1 * out_w;
        assert!(
            (1..=cob).contains(&rows)
                && wk > 0
                && out_w > 0
                && (!pair || out_w <= self.nr() / 2)
                && x.len() >= x_need
                && w.len() >= rows * wk
                && bias.is_none_or(|b| b.len() >= rows)
                && y.len() >= (rows - 1) * ys + y_len
                && (rows == 1 || ys >= y_len),
            "direct_rows: {rows} channels of {oh1} rows of {out_w} outputs do not fit the slices"
        );
        #[cfg(target_arch = "x86_64")]
        {
            let kernel: unsafe fn(x86_64::RowCall, bool) = match self.isa {
                Isa::Avx2Fma => x86_64::direct_avx2,
                Isa::Avx512 => x86_64::direct_avx512,
                _ => unreachable!("direct_channels returned Some"),
            };
            let (bp, yp) = (
                bias.map_or(std::ptr::null(), <[f32]>::as_ptr),
                y.as_mut_ptr(),
            );
            let call = |out_rows| x86_64::RowCall {
                x: x.as_ptr(),
                xs,
                xw,
                dims: [cin, kh, kw],
                out_rows,
                vert,
                w: w.as_ptr(),
                bias: bp,
                rows,
                y: yp,
                ys,
                out_w,
            };
            // Pairs first, then an odd last row alone.
            let paired = if pair { oh0 + (oh1 - oh0) / 2 * 2 } else { oh0 };
            let spans = [(true, [oh0, paired]), (false, [paired, oh1])];
            for (pair, span) in spans.into_iter().filter(|(_, [a, b])| a < b) {
                // SAFETY: `Kernel::new` checked the level's features (AVX2 and FMA, or
                // AVX-512F); `direct_body` reads at most `2 * LANES - 1` floats past the last
                // input the outputs need (with `pair`, in the row below, which the asserted
                // extent includes), inside the asserted margin, and writes only the asserted
                // rows of `y`, a unique borrow; a pair's span is even.
                unsafe { kernel(call(span), pair) }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!("direct_channels returned Some");
    }

    /// Output channels per tile of [`Kernel::winograd_rows`], or `None` below AVX-512 (where
    /// the direct row kernel is faster: the reason is in the kernel's module).
    pub(crate) fn winograd_channels(self) -> Option<usize> {
        match self.isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => Some(x86_64::AVX512_WINOGRAD_CO),
            _ => None,
        }
    }

    /// Output columns per chunk of the Winograd route: two vectors, the width of the
    /// micro-kernel's tile ([`Kernel::nr`]).
    pub(crate) fn winograd_chunk(self) -> usize {
        self.nr()
    }

    /// The Winograd route's input transform of one pair of output rows (`F(2, 3)` along the
    /// columns): with `x` the padded input from the pair's first row (plane stride `xs`, row
    /// stride `xw`), `cin` channels and `chunks` chunks of [`Kernel::winograd_chunk`]
    /// columns, writes for each chunk `k`, channel `ci` and kernel column `kx` the four rows
    /// `d0 - d2`, `d1 + d2`, `d2 - d1`, `d1 - d3` (one chunk each) into `v` at `k *
    /// chunk_stride + s * 4 * chunk`, source `s = 3 * ci + kx`, where `d_j` is row `j` of
    /// channel `ci` from column `k * chunk + kx`.
    ///
    /// # Panics
    /// Below AVX-512, or if a slice is shorter than the geometry needs.
    pub(crate) fn winograd_inputs(
        self,
        x: &[f32],
        [xs, xw]: [usize; 2],
        cin: usize,
        [chunks, chunk_stride]: [usize; 2],
        v: &mut [f32],
    ) {
        let chunk = self.winograd_chunk();
        let sources_len = 3 * cin * 4 * chunk;
        assert!(
            self.winograd_channels().is_some()
                && cin > 0
                && chunks > 0
                && xw >= chunks * chunk + 2
                && (cin == 1 || xs >= 4 * xw)
                && chunk_stride >= sources_len
                && x.len() >= (cin - 1) * xs + 3 * xw + chunks * chunk + 2
                && v.len() >= (chunks - 1) * chunk_stride + sources_len,
            "winograd_inputs: {cin} channels of {chunks} chunks do not fit the slices"
        );
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: `winograd_channels` is `Some` at AVX-512 only, whose features
            // `Kernel::new` checked; the assert covers the extents `inputs_body` reads and
            // writes.
            unsafe {
                x86_64::inputs_avx512(
                    x.as_ptr(),
                    [xs, xw],
                    cin,
                    [chunks, chunk_stride],
                    v.as_mut_ptr(),
                )
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!("winograd_channels returned Some");
    }

    /// The Winograd route's tiles of one chunk of a pair of output rows, for a block of
    /// `channels` output channels: for each channel `c`, the four sums `m_i = sum_s
    /// u[c0 * sources * 4 + (s * 4 + i) * width + c - c0] * v[(s * 4 + i) * chunk ..]` over the
    /// `sources` in order (`v` one chunk from [`Kernel::winograd_inputs`], `u` the block's
    /// weights in tiles of [`Kernel::winograd_channels`] channels from `c0`, the last of
    /// `width` possibly narrower), then `m_0 + bias + (m_1 + m_2)` into output row 0 and
    /// `(m_1 - m_2) + bias - m_3` into row 1 (if `rows == 2`), `cols` floats each, at `y[at +
    /// c * ys + r * out_w ..]`. `next`, the offset of the chunk the block computes next, is
    /// where the last tiles prefetch the outputs they will write.
    ///
    /// # Panics
    /// Below AVX-512, if `rows` is not 1 or 2, `cols` not in `1..=chunk`, or a slice is
    /// shorter than the geometry needs.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn winograd_rows(
        self,
        v: &[f32],
        u: &[f32],
        sources: usize,
        bias: Option<&[f32]>,
        y: &mut [f32],
        [channels, ys, out_w]: [usize; 3],
        [at, rows, cols]: [usize; 3],
        next: Option<usize>,
    ) {
        let chunk = self.winograd_chunk();
        assert!(
            self.winograd_channels().is_some()
                && channels > 0
                && (1..=2).contains(&rows)
                && (1..=chunk).contains(&cols)
                && cols <= out_w
                && (channels == 1 || ys >= rows * out_w)
                && v.len() >= sources * 4 * chunk
                && u.len() >= channels * sources * 4
                && bias.is_none_or(|b| b.len() >= channels)
                && at
                    .checked_add((channels - 1) * ys + (rows - 1) * out_w + cols)
                    .is_some_and(|end| end <= y.len())
                && next.is_none_or(|n| n < y.len()),
            "winograd_rows: {channels} channels of {rows} rows of {cols} outputs do not fit the \
             slices"
        );
        #[cfg(target_arch = "x86_64")]
        {
            let base = y.as_mut_ptr();
            let call = x86_64::WinogradRow {
                v: v.as_ptr(),
                u: u.as_ptr(),
                sources,
                bias: bias.map_or(std::ptr::null(), <[f32]>::as_ptr),
                channels,
                // SAFETY: `at` is inside `y`, as asserted.
                y: unsafe { base.add(at) },
                ys,
                out_w,
                rows,
                cols,
                // Only prefetched: any address would do, this one is inside `y`.
                next: next.map_or(std::ptr::null(), |n| base.wrapping_add(n).cast_const()),
            };
            // SAFETY: `winograd_channels` is `Some` at AVX-512 only, whose features
            // `Kernel::new` checked; the assert covers the extents `row_body` reads and writes,
            // and `y` is a unique borrow.
            unsafe { x86_64::rows_avx512(call) }
        }
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!("winograd_channels returned Some");
    }

    /// Output channels per tile of [`Kernel::winograd_grad`] (`None` below AVX-512).
    pub(crate) fn winograd_grad_channels(self) -> Option<usize> {
        match self.isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => Some(x86_64::AVX512_WINOGRAD_GRAD_TILE[0]),
            _ => None,
        }
    }

    /// Adds one image's products to the Winograd route's weight-gradient sums, for a block
    /// of `channels` output channels: for channel `c`, source `s < sources` and transformed
    /// row `i`, `g[c * gs + (s * 4 + i) * lanes ..] += a_i * v_i` lane by lane over every pair
    /// of output rows and chunk of columns, where `a_0 = dy_0`, `a_1 = dy_0 + dy_1`, `a_2 =
    /// dy_0 - dy_1`, `a_3 = -dy_1` are the pair's output-gradient rows transformed (`dy` from
    /// the block's first channel, channel stride `ys`, `[out_h, out_w]`) and `v_i` the
    /// source's rows from [`Kernel::winograd_inputs`], laid out input channel after input
    /// channel (`v_strides[2]` apart), each pair after pair (`v_strides[0]`) and chunk after
    /// chunk (`v_strides[1]`), `dy_1` taken as zero past the last row. `lanes` is half a
    /// [`Kernel::winograd_chunk`], and rows are whole chunks. `next_dy`, the next image's
    /// output gradient from the block's first channel, is prefetched into L2 along the way.
    ///
    /// # Panics
    /// Below AVX-512, if `out_w` is not a multiple of the chunk, or if a slice is shorter
    /// than the geometry needs.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn winograd_grad(
        self,
        dy: &[f32],
        ys: usize,
        [out_h, out_w]: [usize; 2],
        v: &[f32],
        [pair_stride, chunk_stride, channel_stride]: [usize; 3],
        sources: usize,
        g: &mut [f32],
        gs: usize,
        channels: usize,
        next_dy: Option<&[f32]>,
    ) {
        let chunk = self.winograd_chunk();
        let chunks = out_w.div_ceil(chunk);
        let pairs = out_h.div_ceil(2);
        let source_len = 4 * chunk;
        let sums = sources * 2 * chunk;
        // One input channel's three sources per tile of sources.
        let tiles = sources / 3;
        assert!(
            self.winograd_grad_channels().is_some()
                && channels > 0
                && sources > 0
                && sources.is_multiple_of(3)
                && out_h > 0
                && out_w > 0
                && out_w.is_multiple_of(chunk)
                && (channels == 1 || (ys >= out_h * out_w && gs >= sums))
                && dy.len() >= (channels - 1) * ys + out_h * out_w
                && chunk_stride >= 3 * source_len
                && (pairs == 1 || pair_stride >= chunks * chunk_stride)
                && (tiles == 1 || channel_stride >= pairs * pair_stride)
                && v.len()
                    >= (tiles - 1) * channel_stride
                        + (pairs - 1) * pair_stride
                        + (chunks - 1) * chunk_stride
                        + 3 * source_len
                && g.len() >= (channels - 1) * gs + sums,
            "winograd_grad: {channels} channels of {out_h} x {out_w} outputs do not fit the slices"
        );
        #[cfg(target_arch = "x86_64")]
        {
            let call = x86_64::WinogradGrad {
                dy: dy.as_ptr(),
                ys,
                out: [out_h, out_w],
                chunks,
                v: v.as_ptr(),
                v_strides: [pair_stride, chunk_stride, channel_stride],
                sources,
                g: g.as_mut_ptr(),
                gs,
                channels,
                // Only prefetched: any address would do.
                next_dy: next_dy.map_or(std::ptr::null(), <[f32]>::as_ptr),
            };
            // SAFETY: `winograd_grad_channels` is `Some` at AVX-512 only, whose features
            // `Kernel::new` checked; the assert covers the extents `grad_body` reads and
            // writes, and `g` is a unique borrow.
            unsafe { x86_64::grad_avx512(call) }
        }
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!("winograd_grad_channels returned Some");
    }

    /// Direct weight gradient (stride 1, dilation 1) of `rows` output channels over a block of
    /// `images`: `dw[co * taps + t] = sum_{img, oh, ow} dy[img][co][oh][ow] *
    /// x[img][ci][oh + ki][ow + kj]`, tap `t = (ci * kh + ki) * kw + kj`, overwriting `dw`.
    /// `x` is the zero-padded block (image stride `xi`, plane `xs`, row `xw`), `dy` the block's
    /// output gradient from the first of the `rows` channels (image stride `dyi`); `cout`, the
    /// layer's output channels, picks the register tile ([`Kernel::weight_grad_tile`]). The
    /// small-channel layers' backward-weight: the sums stay in registers across the block.
    ///
    /// # Panics
    /// At the scalar level (see [`Kernel::direct_channels`]), or if a slice is shorter than
    /// the geometry needs.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn direct_weight_grad(
        self,
        cout: usize,
        x: &[f32],
        [images, xi, xs, xw]: [usize; 4],
        [cin, kh, kw]: [usize; 3],
        dy: &[f32],
        [dyi, out_h, out_w]: [usize; 3],
        rows: usize,
        dw: &mut [f32],
    ) {
        let taps = cin * kh * kw;
        let pixels = out_h * out_w;
        if images == 0 || rows == 0 || taps == 0 || pixels == 0 {
            dw[..rows * taps].fill(0.0);
            return;
        }
        // The furthest read: last image, channel and row, tap `(kh - 1, kw - 1)`, column
        // `out_w - 1`. (Rows may overlap: a shifted copy's "row" is its whole plane.)
        let x_need = (images - 1) * xi + (cin - 1) * xs + (out_h + kh - 2) * xw + out_w + kw - 1;
        let dy_need = (images - 1) * dyi + (rows - 1) * pixels + pixels;
        assert!(
            x.len() >= x_need && dy.len() >= dy_need && dw.len() >= rows * taps,
            "direct_weight_grad: the block's slices are shorter than its geometry"
        );
        #[cfg(target_arch = "x86_64")]
        let which = self.weight_grad_which(cout, taps).map_or(0, |(i, _)| i);
        #[cfg(target_arch = "x86_64")]
        let g = x86_64::WgradGeom {
            images,
            xi,
            xs,
            xw,
            dims: [cin, kh, kw],
            dyi,
            out_h,
            out_w,
        };
        match self.isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Kernel::new` checked AVX2 and FMA; the assertion bounds the furthest
            // element `wgrad_body` reads in `x` (last image, channel, row, and column
            // `out_w - 1 + kw - 1`) and in `dy` (last image, channel and pixel), and the
            // `rows * taps` it writes in `dw`, a unique borrow.
            Isa::Avx2Fma => unsafe {
                x86_64::wgrad_avx2(which, x.as_ptr(), dy.as_ptr(), g, rows, dw.as_mut_ptr())
            },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above, with AVX-512F checked by `Kernel::new`.
            Isa::Avx512 => unsafe {
                x86_64::wgrad_avx512(which, x.as_ptr(), dy.as_ptr(), g, rows, dw.as_mut_ptr())
            },
            _ => panic!("direct_weight_grad: the scalar level has no direct kernel"),
        }
    }

    /// The broadcast kernel's tile for a layer of `cout` output channels: its output
    /// channels per call (a multiple of the vector width, the narrowest that holds `cout`, at
    /// most four vectors at AVX-512 and two at AVX2) and its first choice of output pixels.
    /// `None` at the scalar level.
    pub(crate) fn broadcast_tile(self, cout: usize) -> Option<BroadcastTile> {
        self.broadcast_tiles(cout).into_iter().flatten().next()
    }

    /// The broadcast kernel's tiles for `cout` output channels: [`Kernel::broadcast_tile`],
    /// then, where the level has one, a tile of the same channels and other pixels.
    pub(crate) fn broadcast_tiles(self, cout: usize) -> [Option<BroadcastTile>; 2] {
        let Some((which, lanes, tiles)) = self.broadcast_plan(cout, false) else {
            return [None, None];
        };
        let tile = |which: usize| BroadcastTile {
            which,
            channels: tiles[which].0 * lanes,
            pixels: tiles[which].1,
        };
        let other = tiles.len() - 1;
        let alternative =
            (tiles[other].0 == tiles[which].0 && tiles[other] != tiles[which]).then(|| tile(other));
        [Some(tile(which)), alternative]
    }

    /// The weight-gradient broadcast kernel's tile for `cout` output channels: `(channels,
    /// taps)`, as [`Kernel::broadcast_tile`].
    pub(crate) fn broadcast_grad_tile(self, cout: usize) -> Option<(usize, usize)> {
        let (which, lanes, tiles) = self.broadcast_plan(cout, true)?;
        Some((tiles[which].0 * lanes, tiles[which].1))
    }

    /// The index of `cout`'s tile in the level's table of broadcast tiles (or, with `grad`,
    /// of weight-gradient tiles), which selects the kernel's instantiation, the level's lanes
    /// per vector and the table (in vectors: pixels or taps).
    fn broadcast_plan(
        self,
        cout: usize,
        grad: bool,
    ) -> Option<(usize, usize, &'static [TileEntry])> {
        let (lanes, tiles): (usize, &'static [TileEntry]) = match (self.isa, grad) {
            #[cfg(target_arch = "x86_64")]
            (Isa::Avx2Fma, false) => (8, &x86_64::AVX2_TILES),
            #[cfg(target_arch = "x86_64")]
            (Isa::Avx2Fma, true) => (8, &x86_64::AVX2_GRAD_TILES),
            #[cfg(target_arch = "x86_64")]
            (Isa::Avx512, false) => (16, &x86_64::AVX512_TILES),
            #[cfg(target_arch = "x86_64")]
            (Isa::Avx512, true) => (16, &x86_64::AVX512_GRAD_TILES),
            _ => return None,
        };
        let which = match cout.div_ceil(lanes) {
            0 | 1 => 0,
            2 => 1,
            _ => 2,
        };
        Some((which, lanes, tiles))
    }

    /// One tile of the broadcast convolution kernel: `tile[dst[p] * C + c] (+)= bias[c] + sum
    /// over taps t = (ci * kh + ki) * kw + kj of w[t * C + c] * x[offs[p] + ci * xs + ki * dh *
    /// xw + kj * dw]`, for the `(C, P)` of `tile_shape` (one of [`Kernel::broadcast_tiles`]), `p < P`,
    /// `c < C`, over the kernel rows `ki` and columns `kj` of `px.window` (the caller skips
    /// those whose every term reads padding). `x` is a zero-padded image (plane `xs`, row
    /// `xw`), `px` where each output pixel's window starts, where its row of the pixel-major
    /// `tile` lies and whether it is added there (`+=`, with `px.add`) or stored, `w` the
    /// weights packed tap-major (`C` per tap, zero past the layer's channels).
    ///
    /// # Panics
    /// At the scalar level, or if a slice is shorter than the geometry needs.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn broadcast(
        self,
        tile_shape: BroadcastTile,
        x: &[f32],
        px: &TilePixels<'_>,
        [cin, kh, kw]: [usize; 3],
        [xs, xw]: [usize; 2],
        [dh, dw]: [usize; 2],
        w: &[f32],
        bias: Option<&[f32]>,
        tile: &mut [f32],
    ) {
        let BroadcastTile {
            which,
            channels: c_len,
            pixels,
        } = tile_shape;
        let (_, lanes, tiles) = self
            .broadcast_plan(c_len, false)
            .expect("broadcast: the scalar level has no broadcast kernel");
        assert!(
            tiles.get(which) == Some(&(c_len / lanes, pixels)),
            "broadcast: {tile_shape:?} is not a tile of this level"
        );
        let taps = cin * kh * kw;
        let [[k0, k1], [j0, j1]] = px.window;
        let reach = px.offs.iter().take(pixels).max().copied().unwrap_or(0)
            + (cin.max(1) - 1) * xs
            + (kh.max(1) - 1) * dh * xw
            + (kw.max(1) - 1) * dw;
        let rows = px.dst.iter().take(pixels).max().map_or(0, |&d| d + 1);
        assert!(
            taps > 0
                && k0 <= k1
                && k1 <= kh
                && j0 <= j1
                && j1 <= kw
                && px.offs.len() >= pixels
                && px.dst.len() >= pixels
                && x.len() > reach
                && w.len() >= taps * c_len
                && bias.is_none_or(|b| b.len() >= c_len)
                && tile.len() >= rows * c_len,
            "broadcast: a {pixels}-pixel tile of {c_len} channels does not fit the slices"
        );
        #[cfg(target_arch = "x86_64")]
        let g = x86_64::BcastGeom {
            dims: [cin, kh, kw],
            xs,
            xw,
            dilation: [dh, dw],
            window: px.window,
            add: px.add,
        };
        #[cfg(target_arch = "x86_64")]
        let bp = bias.map_or(std::ptr::null(), <[f32]>::as_ptr);
        match self.isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Kernel::new` checked AVX2 and FMA; the assertion bounds the furthest
            // input any pixel's window reads (`reach`, over the whole kernel, a superset of
            // the window), the `taps * C` packed weights, the `C` biases, the `P` offsets and
            // destinations, and the `C` floats read (with `add`) and written at each
            // destination row (below `rows`, a unique borrow).
            Isa::Avx2Fma => unsafe {
                x86_64::bcast_avx2(
                    which,
                    x.as_ptr(),
                    px.offs.as_ptr(),
                    g,
                    w.as_ptr(),
                    bp,
                    tile.as_mut_ptr(),
                    px.dst.as_ptr(),
                )
            },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above, with AVX-512F checked by `Kernel::new`.
            Isa::Avx512 => unsafe {
                x86_64::bcast_avx512(
                    which,
                    x.as_ptr(),
                    px.offs.as_ptr(),
                    g,
                    w.as_ptr(),
                    bp,
                    tile.as_mut_ptr(),
                    px.dst.as_ptr(),
                )
            },
            _ => unreachable!("the level has broadcast tiles"),
        }
    }

    /// The contribution of `images` images to a weight-gradient tile of the broadcast kernel:
    /// `tile[i * C + c] += sum over images g, then output pixels (oh, ow), in order, of
    /// dyt[((g * out_h + oh) * out_w + ow) * dyt_stride + c] *
    /// x[g * xi + oh * sh * xw + ow * sw + taps[i]]`, for the `(C, T)` =
    /// [`Kernel::broadcast_grad_tile`] of `cout`, `i < T`, `c < C`.
    /// `x` holds the zero-padded images (row `xw`, `xi` floats apart), `taps` each tap's
    /// offset in one, `dyt` the output gradients transposed to pixel-major, image after
    /// image. The sums stay in registers, one lane per output channel, across the images.
    ///
    /// # Panics
    /// At the scalar level, or if a slice is shorter than the geometry needs.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn broadcast_weight_grad(
        self,
        cout: usize,
        x: &[f32],
        [images, xi]: [usize; 2],
        [out_h, out_w]: [usize; 2],
        [sh, sw]: [usize; 2],
        xw: usize,
        taps: &[usize],
        dyt: &[f32],
        dyt_stride: usize,
        tile: &mut [f32],
    ) {
        let (which, lanes, tiles) = self
            .broadcast_plan(cout, true)
            .expect("broadcast_weight_grad: the scalar level has no broadcast kernel");
        let (c_len, t_len) = (tiles[which].0 * lanes, tiles[which].1);
        let pixels = images * out_h * out_w;
        let reach = (images.max(1) - 1) * xi
            + (out_h.max(1) - 1) * sh * xw
            + (out_w.max(1) - 1) * sw
            + taps.iter().take(t_len).max().copied().unwrap_or(0);
        assert!(
            pixels > 0
                && taps.len() >= t_len
                && x.len() > reach
                && dyt_stride >= c_len
                && dyt.len() >= (pixels - 1) * dyt_stride + c_len
                && tile.len() >= t_len * c_len,
            "broadcast_weight_grad: a {t_len}-tap tile of {c_len} channels over {pixels} pixels \
             does not fit the slices"
        );
        match self.isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Kernel::new` checked AVX2 and FMA; the assertion bounds the furthest
            // input read (`reach`: last pixel plus the largest tap offset), the last pixel's
            // `C` gradients, the `T` tap offsets and the `T * C` tile floats read and written
            // (a unique borrow).
            Isa::Avx2Fma => unsafe {
                x86_64::wgrad_bcast_avx2(
                    which,
                    x.as_ptr(),
                    [images, xi],
                    [out_h, out_w],
                    [sh, sw],
                    xw,
                    taps.as_ptr(),
                    dyt.as_ptr(),
                    dyt_stride,
                    tile.as_mut_ptr(),
                )
            },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above, with AVX-512F checked by `Kernel::new`.
            Isa::Avx512 => unsafe {
                x86_64::wgrad_bcast_avx512(
                    which,
                    x.as_ptr(),
                    [images, xi],
                    [out_h, out_w],
                    [sh, sw],
                    xw,
                    taps.as_ptr(),
                    dyt.as_ptr(),
                    dyt_stride,
                    tile.as_mut_ptr(),
                )
            },
            _ => unreachable!("the level has broadcast tiles"),
        }
    }

    /// The register tile (output channels, taps) [`Kernel::direct_weight_grad`] uses for a
    /// layer of `cout` output channels and `taps` taps: the level's first tile, or its second
    /// where that computes clearly fewer sums (`lenet.c1`'s 6 channels at AVX-512: 8 on `4 x
    /// 5`, 6 on `3 x 7`). The taps are spread over tiles of nearly equal width, so only the
    /// output channels leave sums unused. `None` at the scalar level.
    pub(crate) fn weight_grad_tile(self, cout: usize, taps: usize) -> Option<(usize, usize)> {
        self.weight_grad_which(cout, taps).map(|(_, tile)| tile)
    }

    /// [`Kernel::weight_grad_tile`] with its index in the level's table.
    fn weight_grad_which(self, cout: usize, taps: usize) -> Option<(usize, (usize, usize))> {
        let tiles = match self.isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2Fma => x86_64::AVX2_WGRAD,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => x86_64::AVX512_WGRAD,
            _ => return None,
        };
        let cost = |(co, _): (usize, usize)| cout.div_ceil(co) * co * taps;
        // The second tile only where it saves more than a tenth of the sums: at nearly equal
        // waste the first is faster (at AVX-512, `mnist.c1` 9% and `cifar.stem` 12% slower
        // on `3 x 7`).
        let which = usize::from(10 * cost(tiles[1]) < 9 * cost(tiles[0]));
        Some((which, tiles[which]))
    }

    /// The dispatch of [`Kernel::copy_rows`] and [`Kernel::zero_rows`], extents checked.
    fn rows_raw(
        self,
        dst: &mut [f32],
        dst_stride: usize,
        src: Option<(&[f32], usize)>,
        len: usize,
        count: usize,
    ) {
        #[cfg(target_arch = "x86_64")]
        let (sp, ss) = src.map_or((std::ptr::null(), 0), |(s, ss)| (s.as_ptr(), ss));
        match self.isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Kernel::new` checked the CPU has AVX2; the callers checked every row of
            // `dst` (and of `src`, when given) lies inside its slice, and `dst` is a unique
            // borrow, so the rows do not overlap the source.
            Isa::Avx2Fma => unsafe {
                x86_64::copy_rows_avx2(dst.as_mut_ptr(), dst_stride, sp, ss, len, count)
            },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above, with AVX-512F checked by `Kernel::new`.
            Isa::Avx512 => unsafe {
                x86_64::copy_rows_avx512(dst.as_mut_ptr(), dst_stride, sp, ss, len, count)
            },
            _ => {
                for r in 0..count {
                    let d = &mut dst[r * dst_stride..r * dst_stride + len];
                    match src {
                        Some((s, ss)) => d.copy_from_slice(&s[r * ss..r * ss + len]),
                        None => d.fill(0.0),
                    }
                }
            }
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
                                let want = dot
                                    + if accumulate {
                                        f64::from(start[i * rs + j])
                                    } else {
                                        0.0
                                    };
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
                assert_eq!(
                    &corner[i * 3..i * 3 + 3],
                    &full[i * nr..i * nr + 3],
                    "{isa:?}"
                );
            }
        }
    }

    #[test]
    fn row_copies_and_zeroes_match_on_every_level() {
        let src = values(200, 7);
        for isa in Isa::available_levels() {
            let kern = Kernel::new(isa);
            for len in [1, 7, 8, 15, 16, 17, 33] {
                let mut dst = vec![f32::NAN; 3 * 40];
                kern.copy_rows(&mut dst, 40, &src, 50, len, 3);
                for r in 0..3 {
                    assert_eq!(&dst[r * 40..r * 40 + len], &src[r * 50..r * 50 + len]);
                    assert!(dst[r * 40 + len..(r + 1) * 40].iter().all(|v| v.is_nan()));
                }
                kern.zero_rows(&mut dst, 40, len, 2);
                assert!(
                    dst[..len]
                        .iter()
                        .chain(&dst[40..40 + len])
                        .all(|&v| v == 0.0)
                );
                assert_eq!(&dst[80..80 + len], &src[100..100 + len], "{isa:?}");
            }
        }
    }

    #[test]
    fn transposes_match_on_every_level() {
        let src = values(40 * 30, 9);
        for isa in Isa::available_levels() {
            let kern = Kernel::new(isa);
            for (rows, depth) in [(8, 8), (17, 23), (3, 16), (24, 5), (1, 1)] {
                let ldd = rows + 2;
                let mut dst = vec![f32::NAN; depth * ldd];
                kern.transpose(&src, 30, rows, depth, &mut dst, ldd);
                for p in 0..depth {
                    for j in 0..ldd {
                        let got = dst[p * ldd + j];
                        if j < rows {
                            assert_eq!(got, src[j * 30 + p], "{isa:?} {rows}x{depth}");
                        } else {
                            assert!(got.is_nan(), "{isa:?} wrote outside the rows");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn direct_weight_gradient_matches_a_naive_sum_for_every_tap_count() {
        // Tap counts 1 to 45 spread over tiles of every width, and output-channel counts that
        // pick each level's both tiles, ragged channel blocks included; 5-wide rows leave a
        // tail. `dw` starts as NaN: every gradient must be written.
        let (images, out_h, out_w) = (2, 2, 5);
        for isa in Isa::available_levels() {
            let kern = Kernel::new(isa);
            if kern.direct_channels().is_none() {
                continue;
            }
            for [cin, kh, kw] in
                (1..=3).flat_map(|c| (1..=3).flat_map(move |h| (1..=5).map(move |w| [c, h, w])))
            {
                let xw = out_w + kw - 1;
                let xs = (out_h + kh - 1) * xw;
                let xi = cin * xs;
                let x = values(images * xi, 11);
                let taps = cin * kh * kw;
                for cout in [2, 3, 4, 5, 6, 8] {
                    let dyi = cout * out_h * out_w;
                    let dy = values(images * dyi, 12);
                    let mut dw = vec![f32::NAN; cout * taps];
                    kern.direct_weight_grad(
                        cout,
                        &x,
                        [images, xi, xs, xw],
                        [cin, kh, kw],
                        &dy,
                        [dyi, out_h, out_w],
                        cout,
                        &mut dw,
                    );
                    for co in 0..cout {
                        for (t, &got) in dw[co * taps..(co + 1) * taps].iter().enumerate() {
                            let (ci, ki, kj) = (t / (kh * kw), t / kw % kh, t % kw);
                            let mut want = 0.0f64;
                            for img in 0..images {
                                for oh in 0..out_h {
                                    for ow in 0..out_w {
                                        let d = dy[img * dyi + (co * out_h + oh) * out_w + ow];
                                        let v = x[img * xi + ci * xs + (oh + ki) * xw + ow + kj];
                                        want += f64::from(d) * f64::from(v);
                                    }
                                }
                            }
                            assert!(
                                (f64::from(got) - want).abs() <= 1e-5,
                                "{isa:?} [{cin}, {kh}, {kw}] cout {cout} ({co}, {t}): {got} vs \
                                 {want}"
                            );
                        }
                    }
                }
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
