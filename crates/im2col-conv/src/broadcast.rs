//! The broadcast kernel's side of a forward convolution: when it runs, its weight packing, and
//! one image's loop over output-channel blocks and pixel tiles.
//!
//! The kernel vectorises over output channels and broadcasts one input value per output pixel,
//! so a tile is any run of output pixels: rows of any width (`lenet.c2`'s 10, `mnist.c2`'s 24)
//! and any stride fill the vectors, where the direct row kernel wastes lanes on every tap and
//! the implicit GEMM packs a panel per few multiply-adds. Which pixels share a tile is
//! [`PixelTiles`]' choice; each channel block's pixel-major outputs are transposed into the
//! channel-major output once, after all its tiles.

use crate::Conv2dShape;
use crate::direct::{DIRECT_MAX_DEPTH, Padded};
use crate::kernels::{BroadcastTile, Kernel, TilePixels};
use crate::plan::{Par, Plan, enough_tasks};
use crate::tiles::PixelTiles;
use rayon::prelude::*;

/// Fewest multiply-adds per output for the broadcast kernels: the layers too deep for the
/// few-channel direct kernels (see [`Broadcast::applies`]).
pub(crate) const MIN_DEPTH: usize = DIRECT_MAX_DEPTH + 1;
/// Floats of the largest tile any level computes (pixels x channels).
pub(crate) const TILE_MAX: usize = 416;
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
    taps: usize,
    dilation: [usize; 2],
    /// The kernel's tile (output channels per call, and output pixels), and how the image's
    /// pixels form tiles of its size.
    shape: BroadcastTile,
    tiles: PixelTiles,
    /// Staging areas per task: one, or one per group of channel blocks when a single image's
    /// blocks split over the threads.
    slots: usize,
    /// Whether a single image's tiles may split over the threads.
    split: bool,
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
        let padded = Padded::new(s);
        let [stride, dilation] = [s.params.stride, s.params.dilation];
        // Of the level's tiles for these channels, the one whose plan runs the fewest taps.
        let (shape, tiles, _) = p
            .kernel
            .broadcast_tiles(s.cout)
            .into_iter()
            .flatten()
            .map(|t| {
                let (tiles, cost) = PixelTiles::cheapest(padded, stride, dilation, t.pixels);
                (t, tiles, cost)
            })
            .min_by_key(|&(_, _, cost)| cost)
            .expect("broadcast path needs a SIMD level");
        debug_assert!(shape.channels * shape.pixels <= TILE_MAX && shape.pixels <= PIXELS_MAX);
        let threads = rayon::current_num_threads();
        let split = !enough_tasks(s.n, threads);
        let slots = if split {
            threads.min(s.cout.div_ceil(shape.channels))
        } else {
            1
        };
        Self {
            shape,
            tiles,
            slots,
            split,
            padded,
            cout: s.cout,
            taps: p.k_all,
            dilation: s.params.dilation,
        }
    }

    /// Floats of one task's scratch: an image's zero-padded copy with the kernels' read
    /// margin (none for an unpadded layer, whose image the kernel reads in place), then
    /// [`Broadcast::slots`] staging areas, each one channel block's pixel-major outputs, and
    /// where a single image's tiles may split over the threads and do not lie in pixel order,
    /// one more, for them.
    pub(crate) fn buf_len(&self) -> usize {
        let areas = self.slots + usize::from(self.split && !self.tiles.in_pixel_order());
        self.padded_len() + areas * self.staging_len()
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
        self.tiles.count() * self.shape.pixels * self.shape.channels
    }

    /// Floats of the packed weights.
    pub(crate) fn packed_len(&self) -> usize {
        self.cout.div_ceil(self.shape.channels) * self.taps * self.shape.channels
    }

    /// Packs the OIHW `weight` tap-major per block of output channels: block `b`, tap `t`,
    /// channel `c` at `(b * taps + t) * channels + c`, zero past the layer's channels.
    pub(crate) fn pack(&self, weight: &[f32], dst: &mut [f32]) {
        let (ch, taps) = (self.shape.channels, self.taps);
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
            d.pad(kern, x, xbuf, par);
            xbuf
        };
        let (ch, tile) = (self.shape.channels, self.shape.pixels);
        let pixels = d.out_h * d.out_w;
        let blocks = self.cout.div_ceil(ch);
        let block_len = ch * pixels;
        match par {
            Par::Split(threads) if blocks < threads => {
                let (staging, rest) = staging.split_at_mut(self.staging_len());
                for (b, y_rows) in y.chunks_mut(block_len).enumerate() {
                    // Tile `j` into rows `j * tile ..` of `tiled`; unless that is the pixel
                    // order, each pixel's row is then copied to its place in `staging`.
                    let tiled = if self.tiles.in_pixel_order() {
                        &mut *staging
                    } else {
                        &mut rest[..self.staging_len()]
                    };
                    tiled
                        .par_chunks_mut(tile * ch)
                        .enumerate()
                        .for_each(|(j, out)| {
                            self.tile(kern, xbuf, packed, bias, b, j, Some(&TILE_ROWS), out)
                        });
                    if !self.tiles.in_pixel_order() {
                        let tiled: &[f32] = &rest[..self.staging_len()];
                        let out_w = d.out_w;
                        staging[..pixels * ch]
                            .par_chunks_mut(out_w * ch)
                            .enumerate()
                            .for_each(|(oh, row)| {
                                for (ow, px) in row.chunks_exact_mut(ch).enumerate() {
                                    let at = self.tiles.tile_row(oh, ow) * ch;
                                    px.copy_from_slice(&tiled[at..at + ch]);
                                }
                            });
                    }
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
        let ch = self.shape.channels;
        let pixels = self.padded.out_h * self.padded.out_w;
        for (i, y_rows) in y_blocks.chunks_mut(ch * pixels).enumerate() {
            for j in 0..self.tiles.count() {
                self.tile(kern, xbuf, packed, bias, b0 + i, j, None, staging);
            }
            // Pixel-major outputs to channel-major rows, after all the tiles: transposing
            // each tile's 8-pixel blocks as they were ready measured 1-3% slower on
            // `mnist.c2`.
            let rows = y_rows.len() / pixels;
            kern.transpose(staging, ch, pixels, rows, y_rows, pixels);
        }
    }

    /// Tile `j` of output-channel block `b` into the pixel-major `out`: each pixel's
    /// `channels` outputs at its index in the image, or with `rows` (the tile's own rows,
    /// `out` one tile), at its place in the tile.
    #[allow(clippy::too_many_arguments)]
    fn tile(
        &self,
        kern: Kernel,
        xbuf: &[f32],
        packed: &[f32],
        bias: Option<&[f32]>,
        b: usize,
        j: usize,
        rows: Option<&[usize]>,
        out: &mut [f32],
    ) {
        let d = &self.padded;
        let ch = self.shape.channels;
        let w = &packed[b * self.taps * ch..(b + 1) * self.taps * ch];
        let real = ch.min(self.cout - b * ch);
        let mut bias_block = [0.0f32; CHANNELS_MAX];
        if let Some(bias) = bias {
            bias_block[..real].copy_from_slice(&bias[b * ch..b * ch + real]);
        }
        let (mut offs, mut dst) = ([0usize; PIXELS_MAX], [0usize; PIXELS_MAX]);
        let window = self.tiles.tile(j, &mut offs, &mut dst);
        let px = TilePixels {
            offs: &offs[..self.shape.pixels],
            dst: rows.unwrap_or(&dst)[..self.shape.pixels].as_ref(),
            window,
            add: false,
        };
        kern.broadcast(
            self.shape,
            xbuf,
            &px,
            [d.cin, d.kh, d.kw],
            [d.xs, d.xw],
            self.dilation,
            w,
            bias.map(|_| &bias_block[..ch]),
            out,
        );
    }
}

/// Rows `0..` of a tile: where its pixels go in a buffer of their own.
const TILE_ROWS: [usize; PIXELS_MAX] = {
    let mut rows = [0; PIXELS_MAX];
    let mut p = 0;
    while p < PIXELS_MAX {
        rows[p] = p;
        p += 1;
    }
    rows
};
