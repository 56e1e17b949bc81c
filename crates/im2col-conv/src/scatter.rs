//! Backward-data on the broadcast kernel, by scatter: for each kernel tap, a tile of
//! output-gradient pixels times that tap's transposed weights, `W_t^T x dY` (one input channel
//! per vector lane), added into the input gradient at the pixels the tap read.
//!
//! Against GEMM + col2im there is no column matrix and no scatter of single floats: each
//! product is a vector of input channels, added where it belongs. Against the rotated forward
//! ([`Rotated`](crate::backward_data::Rotated)) it needs no stride of 1; it does no
//! multiply-adds over zero padding either, but its sums run over the output channels only,
//! so the rotated forward's longer ones keep the unpadded stride-1 layers it takes (see
//! [`Scatter::applies`]).

use crate::Conv2dShape;
use crate::broadcast::{PIXELS_MAX, TILE_MAX};
use crate::kernels::{BroadcastTile, Kernel, TilePixels};
use crate::plan::{Par, Plan, for_chunk_pairs};

/// Fewest input channels: below one vector the lanes run mostly empty.
const MIN_CHANNELS: usize = 16;
/// Fewest output channels, the depth of each tile's sum: below it the tile's load and store
/// outweigh its multiply-adds.
const MIN_DEPTH: usize = 32;

/// A backward-data convolution by scatter.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scatter {
    cin: usize,
    cout: usize,
    /// Input size, and its zero-padded extent (products of taps that read padding land there
    /// and are dropped).
    h: usize,
    w: usize,
    hp: usize,
    wp: usize,
    pad: [usize; 2],
    kh: usize,
    kw: usize,
    out_h: usize,
    out_w: usize,
    stride: [usize; 2],
    dilation: [usize; 2],
    /// The kernel's tile: input channels and pixels of one call; blocks of its channels.
    shape: BroadcastTile,
    blocks: usize,
}

impl Scatter {
    /// Whether the scatter route can run this backward-data: a SIMD level, one group, a
    /// kernel larger than 1x1, at least a vector of input channels and [`MIN_DEPTH`] output
    /// channels, and a stride above 1 or padding other than half the kernel's reach. It runs
    /// where the rotated forward does not take the layer (see `conv2d_backward_data`): all
    /// strided layers. Measured against GEMM + col2im: `cifar.down` 1.17x at two threads
    /// (one image: 1.5x), `resnet20`'s downsampling layers 1.3x and 1.5x at one thread.
    /// Against the rotated forward on unpadded stride-1 layers (`mnist.c2`, a 48-channel
    /// layer) it runs level at AVX-512 but 15% slower at AVX2, so the rotated forward keeps
    /// those.
    pub(crate) fn applies(s: &Conv2dShape, p: &Plan) -> bool {
        let q = &s.params;
        let reach = |k: usize, d: usize| d * (k - 1);
        let same = q.padding[0] * 2 == reach(s.kh, q.dilation[0])
            && q.padding[1] * 2 == reach(s.kw, q.dilation[1]);
        p.kernel.broadcast_tile(s.cin).is_some()
            && q.groups == 1
            && s.kh * s.kw > 1
            && s.cin >= MIN_CHANNELS
            && s.cout >= MIN_DEPTH
            && (q.stride != [1, 1] || !same)
    }

    /// The geometry of `s` (which [`Scatter::applies`] to), for images that each run on one
    /// thread, or (`split`) across all of them: then each block is one vector of input
    /// channels, so that even one image has several blocks to share out. Each lane's sums
    /// are the same whatever the block width, so the results are too.
    pub(crate) fn new(s: &Conv2dShape, p: &Plan, split: bool) -> Self {
        let lanes = p.kernel.nr() / 2;
        // Of the level's tiles for these channels, the one that covers the output-gradient
        // pixels with the fewest unused ones.
        let pixels = s.out_h() * s.out_w();
        let shape = p
            .kernel
            .broadcast_tiles(if split { lanes } else { s.cin })
            .into_iter()
            .flatten()
            .min_by_key(|t| pixels.div_ceil(t.pixels) * t.pixels)
            .expect("scatter path needs a SIMD level");
        debug_assert!(shape.channels * shape.pixels <= TILE_MAX && shape.pixels <= PIXELS_MAX);
        let [ph, pw] = s.params.padding;
        Self {
            cin: s.cin,
            cout: s.cout,
            h: s.h,
            w: s.w,
            hp: s.h + 2 * ph,
            wp: s.w + 2 * pw,
            pad: s.params.padding,
            kh: s.kh,
            kw: s.kw,
            out_h: s.out_h(),
            out_w: s.out_w(),
            stride: s.params.stride,
            dilation: s.params.dilation,
            shape,
            blocks: s.cin.div_ceil(shape.channels),
        }
    }

    /// Floats of the packed weights: per block of input channels and tap, `cout` rows of
    /// `channels`.
    pub(crate) fn packed_len(&self) -> usize {
        self.blocks * self.kh * self.kw * self.cout * self.shape.channels
    }

    /// Packs the OIHW `weight` for the kernel: block `b`, tap `t`, output channel `co`, input
    /// channel `c` of the block at `((b * taps + t) * cout + co) * channels + c`, zero past
    /// the layer's input channels.
    pub(crate) fn pack(&self, weight: &[f32], dst: &mut [f32]) {
        let (ch, taps) = (self.shape.channels, self.kh * self.kw);
        for (bt, rows) in dst.chunks_exact_mut(self.cout * ch).enumerate() {
            let (b, t) = (bt / taps, bt % taps);
            for (co, row) in rows.chunks_exact_mut(ch).enumerate() {
                for (c, v) in row.iter_mut().enumerate() {
                    let ci = b * ch + c;
                    *v = if ci < self.cin {
                        weight[(co * self.cin + ci) * taps + t]
                    } else {
                        0.0
                    };
                }
            }
        }
    }

    /// Floats of one block's accumulator: the padded input gradient, pixel-major, then one
    /// row where a tile's pixels past the image add their (repeated) products.
    fn acc_len(&self) -> usize {
        (self.hp * self.wp + 1) * self.shape.channels
    }

    /// Floats of one task's scratch: an accumulator per block of input channels.
    pub(crate) fn buf_len(&self) -> usize {
        self.blocks * self.acc_len()
    }

    /// One image: `dy` is `[cout, out_h, out_w]`, `dx` `[cin, h, w]`, `buf` scratch of
    /// [`Scatter::buf_len`]. Blocks of input channels go to the threads in `Split` mode.
    ///
    /// Each input-gradient element receives its products in the order (tap, output pixel),
    /// each product summed over the output channels in order: fixed by the shape alone.
    pub(crate) fn image(
        &self,
        kern: Kernel,
        dy: &[f32],
        packed: &[f32],
        dx: &mut [f32],
        buf: &mut [f32],
        par: Par,
    ) {
        let plane = self.h * self.w;
        let block_floats = self.shape.channels * plane;
        let acc_len = self.acc_len();
        let bufs = &mut buf[..self.buf_len()];
        for_chunk_pairs(dx, block_floats, bufs, acc_len, par, |b, dx_block, acc| {
            self.block(kern, dy, packed, b, dx_block, acc);
        });
    }

    /// Input channels `b * channels ..` of one image into `dx_block` (`[rows, h, w]`), through
    /// the accumulator `acc`.
    fn block(
        &self,
        kern: Kernel,
        dy: &[f32],
        packed: &[f32],
        b: usize,
        dx_block: &mut [f32],
        acc: &mut [f32],
    ) {
        let (ch, tile) = (self.shape.channels, self.shape.pixels);
        let taps = self.kh * self.kw;
        let pixels = self.out_h * self.out_w;
        let [sh, sw] = self.stride;
        let [dh, dw] = self.dilation;
        acc.fill(0.0);
        let unused = self.hp * self.wp;
        let (mut offs, mut rows) = ([0usize; PIXELS_MAX], [0usize; PIXELS_MAX]);
        for t in 0..taps {
            let (ki, kj) = (t / self.kw, t % self.kw);
            let tap_at = ki * dh * self.wp + kj * dw;
            let w = &packed[(b * taps + t) * self.cout * ch..][..self.cout * ch];
            for f0 in (0..pixels).step_by(tile) {
                // Walk the tile's pixels row by row: one division per tile, not per pixel.
                let (mut oh, mut ow) = (f0 / self.out_w, f0 % self.out_w);
                for p in 0..tile {
                    offs[p] = (f0 + p).min(pixels - 1);
                    rows[p] = if f0 + p < pixels {
                        (oh * sh) * self.wp + ow * sw + tap_at
                    } else {
                        unused
                    };
                    ow += 1;
                    if ow == self.out_w {
                        (oh, ow) = (oh + 1, 0);
                    }
                }
                // `W_t^T x dY` for the tile, added into the accumulator where the tap read:
                // the output channels are the kernel's "input channels", each a plane of
                // `pixels`, read at one pixel (a 1x1 window).
                let px = TilePixels {
                    offs: &offs[..tile],
                    dst: &rows[..tile],
                    window: [[0, 1], [0, 1]],
                    add: true,
                };
                kern.broadcast(
                    self.shape,
                    dy,
                    &px,
                    [self.cout, 1, 1],
                    [pixels, self.out_w],
                    [1, 1],
                    w,
                    None,
                    acc,
                );
            }
        }
        // Pixel-major accumulator to channel-major rows, dropping the padding.
        let rows = dx_block.len() / (self.h * self.w);
        let [ph, pw] = self.pad;
        for y in 0..self.h {
            let src = &acc[((y + ph) * self.wp + pw) * ch..];
            kern.transpose(
                src,
                ch,
                self.w,
                rows,
                &mut dx_block[y * self.w..],
                self.h * self.w,
            );
        }
    }
}
