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
use crate::plan::{Par, Plan, enough_tasks};
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
/// Channel rows per transpose task: one 8 x 8 block high.
const TRANSPOSE_ROWS: usize = 8;

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
    /// Staging areas per task: one, or one per group of channel blocks when a single image's
    /// blocks split over the threads.
    slots: usize,
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
        let threads = rayon::current_num_threads();
        let slots = if enough_tasks(s.n, threads) {
            1
        } else {
            threads.min(s.cout.div_ceil(channels))
        };
        Self {
            slots,
            padded: Padded::new(s),
            cout: s.cout,
            channels,
            tile,
            taps: p.k_all,
            stride: s.params.stride,
            dilation: s.params.dilation,
        }
    }

    /// Floats of one task's scratch: an image's zero-padded copy with the kernels' read
    /// margin (none for an unpadded layer, whose image the kernel reads in place), then
    /// [`Broadcast::slots`] staging areas, each one channel block's pixel-major tiles.
    pub(crate) fn buf_len(&self) -> usize {
        self.padded_len() + self.slots * self.staging_len()
    }

    /// Floats of the padded copy of an image (0 when the layer has no padding).
    fn padded_len(&self) -> usize {
        if self.padded.is_unpadded() {
            0
        } else {
            self.padded.buf_len(1)
        }
    }

    /// Floats of one staging area: every pixel tile of one channel block.
    fn staging_len(&self) -> usize {
        let d = &self.padded;
        (d.out_h * d.out_w).div_ceil(self.tile) * self.tile * self.channels
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
    /// [`Broadcast::buf_len`]. Each channel block's tiles are computed into a staging area,
    /// then transposed into `y`'s channel-major rows at once, by whole 8 x 8 blocks: a tile
    /// at a time, its 6 or 12 pixels left most of the transpose to scalar edges (10% of
    /// `mnist.c2`'s forward pass). In `Split` mode, groups of channel blocks go to the
    /// threads, one staging area each, or, with fewer blocks than threads (one image of at
    /// most 64 channels), each block's pixel tiles and then its transpose do (no sum changes
    /// order either way).
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
        let (xbuf, staging) = buf[..self.buf_len()].split_at_mut(self.padded_len());
        let xbuf: &[f32] = if d.is_unpadded() {
            x
        } else {
            d.pad(x, xbuf, par);
            xbuf
        };
        let (ch, tile) = (self.channels, self.tile);
        let pixels = d.out_h * d.out_w;
        let blocks = self.cout.div_ceil(ch);
        let block_len = ch * pixels;
        match par {
            Par::Split(threads) if blocks < threads => {
                let staging = &mut staging[..self.staging_len()];
                for (b, y_rows) in y.chunks_mut(block_len).enumerate() {
                    staging
                        .par_chunks_mut(tile * ch)
                        .enumerate()
                        .for_each(|(j, out)| self.tile(kern, xbuf, packed, bias, b, j * tile, out));
                    // Eight channel rows per task: whole transpose blocks.
                    let staging: &[f32] = staging;
                    y_rows
                        .par_chunks_mut(TRANSPOSE_ROWS * pixels)
                        .enumerate()
                        .for_each(|(r, rows)| {
                            let depth = rows.len() / pixels;
                            let src = &staging[r * TRANSPOSE_ROWS..];
                            kern.transpose(src, ch, pixels, depth, rows, pixels);
                        });
                }
            }
            Par::Split(_) => {
                // Consecutive blocks per task, as many tasks as staging areas.
                let per_task = blocks.div_ceil(self.slots.min(blocks));
                y.par_chunks_mut(per_task * block_len)
                    .zip(staging.par_chunks_mut(self.staging_len()))
                    .enumerate()
                    .for_each(|(task, (y_blocks, staging))| {
                        let b0 = task * per_task;
                        self.blocks(kern, xbuf, packed, bias, b0, y_blocks, staging);
                    });
            }
            Par::Seq => {
                let staging = &mut staging[..self.staging_len()];
                self.blocks(kern, xbuf, packed, bias, 0, y, staging);
            }
        }
    }

    /// Channel blocks `b0..` of one image, into `y_blocks` (their `[channels, pixels]` rows),
    /// one after the other through `staging`.
    #[allow(clippy::too_many_arguments)]
    fn blocks(
        &self,
        kern: Kernel,
        xbuf: &[f32],
        packed: &[f32],
        bias: Option<&[f32]>,
        b0: usize,
        y_blocks: &mut [f32],
        staging: &mut [f32],
    ) {
        let (ch, tile) = (self.channels, self.tile);
        let pixels = self.padded.out_h * self.padded.out_w;
        for (i, y_rows) in y_blocks.chunks_mut(ch * pixels).enumerate() {
            for (j, out) in staging.chunks_exact_mut(tile * ch).enumerate() {
                self.tile(kern, xbuf, packed, bias, b0 + i, j * tile, out);
            }
            // Pixel-major tiles to channel-major rows (the tiles lie back to back), after
            // all the tiles: transposing each tile's 8-pixel blocks as they were ready
            // measured 1-3% slower on `mnist.c2`.
            let rows = y_rows.len() / pixels;
            kern.transpose(staging, ch, pixels, rows, y_rows, pixels);
        }
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
        // The kernel rows any of the tile's output rows reads real input with.
        let first = f0 / d.out_w;
        let last = (f0 + tile - 1).min(pixels - 1) / d.out_w;
        kern.broadcast(
            self.cout,
            xbuf,
            &offs[..tile],
            [d.cin, d.kh, d.kw],
            d.kernel_rows([first, last], sh, self.dilation[0]),
            [d.xs, d.xw],
            self.dilation,
            w,
            bias.map(|_| &bias_block[..ch]),
            out,
        );
    }
}
