//! The broadcast kernel's side of a forward convolution: when it runs, its weight packing, and
//! one image's loop over output-channel blocks and pixel tiles.
//!
//! The kernel vectorises over output channels and broadcasts one input value per output pixel,
//! so a tile is any run of output pixels: rows of any width (`lenet.c2`'s 10, `mnist.c2`'s 24)
//! and any stride fill the vectors, where the direct row kernel wastes lanes on every tap and
//! the implicit GEMM packs a panel per few multiply-adds. Its tile is transposed into the
//! channel-major output once, after all the taps.

use crate::Conv2dShape;
use crate::direct::{DIRECT_MAX_DEPTH, Padded};
use crate::kernels::Kernel;
use crate::plan::{Par, Plan, for_chunks};
use rayon::prelude::*;

/// Fewest multiply-adds per output for the broadcast kernels: the layers too deep for the
/// few-channel direct kernels (see [`Broadcast::applies`]).
pub(crate) const MIN_DEPTH: usize = DIRECT_MAX_DEPTH + 1;
/// Floats of the largest tile any level computes (pixels x channels).
pub(crate) const TILE_MAX: usize = 400;
/// Most pixels of any level's tile.
pub(crate) const PIXELS_MAX: usize = 25;
/// Most channels of any level's tile.
const CHANNELS_MAX: usize = 64;

/// A forward convolution on the broadcast kernel.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Broadcast {
    padded: Padded,
    cout: usize,
    /// Output channels per kernel call, and output pixels.
    channels: usize,
    tile: usize,
    taps: usize,
    stride: [usize; 2],
    dilation: [usize; 2],
}

impl Broadcast {
    /// Whether the broadcast kernel runs this forward convolution (where the direct row
    /// kernel does not): a SIMD level, one group, a kernel larger than 1x1 and at least
    /// [`MIN_DEPTH`] multiply-adds per output. Measured at one thread against the implicit GEMM:
    /// `lenet.c2` 1.7x, `cifar.down` (stride 2) 1.2x, `resnet20`'s downsampling 1.8x,
    /// `mnist.c2` and 8x8 layers 1.03-1.1x; shallower layers (`cifar.stem`, `mnist.c1`) lose,
    /// as the transposed store of each tile outweighs its few multiply-adds.
    /// The weight gradient's broadcast kernel takes the same layers
    /// ([`BroadcastGrad::applies`](crate::broadcast_weight::BroadcastGrad::applies)).
    pub(crate) fn applies(s: &Conv2dShape, p: &Plan) -> bool {
        p.kernel.broadcast_tile(s.cout).is_some()
            && s.params.groups == 1
            && !p.pointwise
            && p.k_all >= MIN_DEPTH
    }

    /// The geometry of `s` (which [`Broadcast::applies`] to).
    pub(crate) fn new(s: &Conv2dShape, p: &Plan) -> Self {
        let (channels, tile) = p
            .kernel
            .broadcast_tile(s.cout)
            .expect("broadcast path needs a SIMD level");
        debug_assert!(channels * tile <= TILE_MAX && tile <= PIXELS_MAX);
        Self {
            padded: Padded::new(s),
            cout: s.cout,
            channels,
            tile,
            taps: p.k_all,
            stride: s.params.stride,
            dilation: s.params.dilation,
        }
    }

    /// Floats of one task's scratch: an image's zero-padded copy (with the kernels' read
    /// margin), then room for one channel block's pixel tiles.
    pub(crate) fn buf_len(&self) -> usize {
        let d = &self.padded;
        let tiles = (d.out_h * d.out_w).div_ceil(self.tile);
        d.buf_len(1) + tiles * self.tile * self.channels
    }

    /// Floats of the packed weights.
    pub(crate) fn packed_len(&self) -> usize {
        self.cout.div_ceil(self.channels) * self.taps * self.channels
    }

    /// Packs the OIHW `weight` tap-major per block of output channels: block `b`, tap `t`,
    /// channel `c` at `(b * taps + t) * channels + c`, zero past the layer's channels.
    pub(crate) fn pack(&self, weight: &[f32], dst: &mut [f32]) {
        let (ch, taps) = (self.channels, self.taps);
        for (b, block) in dst.chunks_exact_mut(taps * ch).enumerate() {
            for (t, row) in block.chunks_exact_mut(ch).enumerate() {
                for (c, v) in row.iter_mut().enumerate() {
                    let co = b * ch + c;
                    *v = if co < self.cout {
                        weight[co * taps + t]
                    } else {
                        0.0
                    };
                }
            }
        }
    }

    /// One image: `x` is `[cin, h, w]`, `y` `[cout, out_h, out_w]`, `buf` scratch of
    /// [`Broadcast::buf_len`]. In `Split` mode, blocks of output channels go to the threads,
    /// or, with fewer blocks than threads (one image of at most 64 channels), each block's
    /// pixel tiles do: they are computed in parallel into `buf`'s staging area, then
    /// transposed into `y` (no sum changes order either way).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn image(
        &self,
        kern: Kernel,
        x: &[f32],
        packed: &[f32],
        bias: Option<&[f32]>,
        y: &mut [f32],
        buf: &mut [f32],
        par: Par,
    ) {
        let d = &self.padded;
        let (xbuf, staging) = buf[..self.buf_len()].split_at_mut(d.buf_len(1));
        d.pad(x, xbuf, par);
        let xbuf: &[f32] = xbuf;
        let (ch, tile) = (self.channels, self.tile);
        let pixels = d.out_h * d.out_w;
        let blocks = self.cout.div_ceil(ch);
        if let Par::Split(threads) = par
            && blocks < threads
        {
            for (b, y_rows) in y.chunks_mut(ch * pixels).enumerate() {
                staging
                    .par_chunks_mut(tile * ch)
                    .enumerate()
                    .for_each(|(j, out)| self.tile(kern, xbuf, packed, bias, b, j * tile, out));
                // Pixel-major tiles to channel-major rows, the rows split across the threads.
                let staging: &[f32] = staging;
                y_rows
                    .par_chunks_mut(pixels)
                    .enumerate()
                    .for_each(|(c, row)| {
                        // The tiles lie back to back: pixel `p` is at `p * ch`.
                        for (p, v) in row.iter_mut().enumerate() {
                            *v = staging[p * ch + c];
                        }
                    });
            }
            return;
        }
        for_chunks(y, ch * pixels, par, |b, y_rows| {
            let rows = y_rows.len() / pixels;
            let mut out = [0.0f32; TILE_MAX];
            for f0 in (0..pixels).step_by(tile) {
                let valid = tile.min(pixels - f0);
                self.tile(kern, xbuf, packed, bias, b, f0, &mut out[..tile * ch]);
                // Pixel-major tile to channel-major rows.
                kern.transpose(&out, ch, valid, rows, &mut y_rows[f0..], pixels);
            }
        });
    }

    /// The pixel-major tile of output-channel block `b` and output pixels `f0..f0 + tile` into
    /// `out` (`tile * channels` floats); pixels past the image's last repeat it (computed,
    /// never stored).
    #[allow(clippy::too_many_arguments)]
    fn tile(
        &self,
        kern: Kernel,
        xbuf: &[f32],
        packed: &[f32],
        bias: Option<&[f32]>,
        b: usize,
        f0: usize,
        out: &mut [f32],
    ) {
        let d = &self.padded;
        let (ch, tile) = (self.channels, self.tile);
        let pixels = d.out_h * d.out_w;
        let [sh, sw] = self.stride;
        let w = &packed[b * self.taps * ch..(b + 1) * self.taps * ch];
        let rows = ch.min(self.cout - b * ch);
        let mut bias_block = [0.0f32; CHANNELS_MAX];
        if let Some(bias) = bias {
            bias_block[..rows].copy_from_slice(&bias[b * ch..b * ch + rows]);
        }
        let mut offs = [0usize; PIXELS_MAX];
        for (p, off) in offs[..tile].iter_mut().enumerate() {
            let f = (f0 + p).min(pixels - 1);
            *off = (f / d.out_w) * sh * d.xw + (f % d.out_w) * sw;
        }
        kern.broadcast(
            self.cout,
            xbuf,
            &offs[..tile],
            [d.cin, d.kh, d.kw],
            [d.xs, d.xw],
            self.dilation,
            w,
            bias.map(|_| &bias_block[..ch]),
            out,
        );
    }
}
