//! Backward-weight on the broadcast kernel: per image, the zero-padded input and the output
//! gradient transposed to pixel-major; each tile of taps x output channels sums the image's
//! pixels in registers (one lane per output channel, so no sums across lanes) into a
//! tap-major gradient, unpacked into the OIHW weight gradient once per call.
//!
//! Against GEMM with `k` = pixels, there is no im2col matrix and no transposing pack of both
//! operands per tile: only the output gradient is transposed, once per image, and each of its
//! values then serves every tap.

use crate::Conv2dShape;
use crate::broadcast::Broadcast;
use crate::direct::Padded;
use crate::kernels::Kernel;
use crate::plan::{Par, Plan, for_chunks};

/// Most taps of any level's tile.
const TAPS_MAX: usize = 25;

/// Output pixels a kernel call should sum at least: each call sums a group of images in
/// registers, so that small images do not each pay a tile's loads and stores (`cifar.256`,
/// 8 x 8: 1.06-1.1x; `lenet.c2`, 10 x 10: 1.1-1.2x). Larger images run one at a time
/// (`mnist.c2` in twos ran 2% slower).
const GROUP_PIXELS: usize = 512;
/// Most floats of staged images (padded inputs and transposed output gradients) per group,
/// 512 KiB: half the per-core L2.
const GROUP_FLOATS: usize = 1 << 17;
/// Most images per group.
const GROUP_MAX: usize = 8;

/// A backward-weight convolution on the broadcast kernel.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BroadcastGrad {
    padded: Padded,
    /// Floats of one input image.
    in_img: usize,
    cout: usize,
    /// Output channels and taps of one kernel tile.
    channels: usize,
    tile_taps: usize,
    /// Blocks of `channels` output channels.
    blocks: usize,
    /// `cin * kh * kw`, and rounded up to whole tiles.
    taps: usize,
    taps_padded: usize,
    stride: [usize; 2],
    dilation: [usize; 2],
    /// Images staged and summed per kernel call.
    group: usize,
}

impl BroadcastGrad {
    /// Whether the broadcast kernel can run this weight gradient: the layers of
    /// [`Broadcast::applies`] (a SIMD level, one group, a kernel larger than 1x1 and at least
    /// [`MIN_DEPTH`](crate::broadcast::MIN_DEPTH) taps). Measured at one thread against GEMM:
    /// `lenet.c2` 1.5x, `mnist.c2` 1.15x, stride-2 layers 1.4-2.3x, `resnet20`'s 16x16
    /// and 8x8 layers 1.1-1.3x, and at two threads against the direct kernel on 32-wide rows
    /// 1.2-1.3x; shallower layers (`cifar.stem`, `mnist.c1`) lose 2-3x, as each image's pass
    /// over few taps cannot amortise the tile's loads and stores.
    pub(crate) fn applies(s: &Conv2dShape, p: &Plan) -> bool {
        Broadcast::applies(s, p)
    }

    /// The geometry of `s` (which [`BroadcastGrad::applies`] to).
    pub(crate) fn new(s: &Conv2dShape, p: &Plan) -> Self {
        let (channels, tile_taps) = p
            .kernel
            .broadcast_grad_tile(s.cout)
            .expect("broadcast path needs a SIMD level");
        debug_assert!(tile_taps <= TAPS_MAX);
        let padded = Padded::new(s);
        let blocks = s.cout.div_ceil(channels);
        // A padded image and its transposed output gradient (`channels_padded` per pixel).
        let per_image = padded.image_len() + padded.out_h * padded.out_w * blocks * channels;
        Self {
            padded,
            in_img: s.cin * s.h * s.w,
            cout: s.cout,
            channels,
            tile_taps,
            blocks,
            taps: p.k_all,
            taps_padded: p.k_all.next_multiple_of(tile_taps),
            stride: s.params.stride,
            dilation: s.params.dilation,
            group: GROUP_PIXELS
                .div_ceil(padded.out_h * padded.out_w)
                .min(GROUP_FLOATS / per_image.max(1))
                .clamp(1, GROUP_MAX),
        }
    }

    /// Output channels rounded up to whole blocks: the transposed gradient's row length.
    fn channels_padded(&self) -> usize {
        self.blocks * self.channels
    }

    /// Floats of one task's scratch: a group of padded images and their transposed output
    /// gradients.
    pub(crate) fn buf_len(&self) -> usize {
        let d = &self.padded;
        d.buf_len(self.group) + self.group * d.out_h * d.out_w * self.channels_padded()
    }

    /// Floats of a tap-major gradient: block `b`, tap `t`, channel `c` at
    /// `(b * taps_padded + t) * channels + c`.
    pub(crate) fn grad_len(&self) -> usize {
        self.blocks * self.taps_padded * self.channels
    }

    /// The tap-major gradient of the images `x` (`[images, cin, h, w]`) and `dy`
    /// (`[images, cout, out_h, out_w]`) into `grad` (overwritten), a group of images per
    /// kernel call; blocks of output channels split across threads in `Split` mode. Every
    /// sum runs over the images, then the pixels, in order, whatever the group size.
    pub(crate) fn block(
        &self,
        kern: Kernel,
        x: &[f32],
        dy: &[f32],
        grad: &mut [f32],
        buf: &mut [f32],
        par: Par,
    ) {
        let d = &self.padded;
        let pixels = d.out_h * d.out_w;
        let cp = self.channels_padded();
        let (xbuf, dyt) = buf[..self.buf_len()].split_at_mut(d.buf_len(self.group));
        grad.fill(0.0);
        let dy_img = self.cout * pixels;
        for (xs, dys) in x
            .chunks(self.group * self.in_img)
            .zip(dy.chunks(self.group * dy_img))
        {
            let images = xs.len() / self.in_img;
            d.pad(kern, xs, &mut xbuf[..d.buf_len(images)], par);
            for (dy_one, dyt_one) in dys.chunks(dy_img).zip(dyt.chunks_mut(pixels * cp)) {
                // Pixel-major, padded with zero channels up to whole blocks.
                kern.transpose(dy_one, pixels, self.cout, pixels, dyt_one, cp);
                if cp > self.cout {
                    for row in dyt_one.chunks_exact_mut(cp) {
                        row[self.cout..].fill(0.0);
                    }
                }
            }
            let (xbuf, dyt): (&[f32], &[f32]) = (xbuf, dyt);
            let (ch, tt) = (self.channels, self.tile_taps);
            let tiles_per_block = self.taps_padded / tt;
            // One task per tile of taps x channels, so a single image still spreads over the
            // threads (`infer.64`: one block of 64 channels but 96 tiles).
            for_chunks(grad, tt * ch, par, |i, tile| {
                let (b, t0) = (i / tiles_per_block, (i % tiles_per_block) * tt);
                // Taps past the last repeat it: their sums land in the padding rows.
                let mut offs = [0usize; TAPS_MAX];
                for (k, off) in offs[..tt].iter_mut().enumerate() {
                    *off = self.tap_offset((t0 + k).min(self.taps - 1));
                }
                kern.broadcast_weight_grad(
                    self.cout,
                    xbuf,
                    [images, d.image_len()],
                    [d.out_h, d.out_w],
                    self.stride,
                    d.xw,
                    &offs[..tt],
                    &dyt[b * ch..],
                    cp,
                    tile,
                );
            });
        }
    }

    /// Offset in the padded image of tap `t = (ci * kh + ki) * kw + kj`.
    fn tap_offset(&self, t: usize) -> usize {
        let d = &self.padded;
        let [dh, dw] = self.dilation;
        let (ci, k) = (t / (d.kh * d.kw), t % (d.kh * d.kw));
        ci * d.xs + (k / d.kw) * dh * d.xw + (k % d.kw) * dw
    }

    /// The OIHW weight gradient from a tap-major one.
    pub(crate) fn unpack(&self, grad: &[f32], grad_weight: &mut [f32]) {
        let ch = self.channels;
        for (co, row) in grad_weight.chunks_exact_mut(self.taps).enumerate() {
            let (b, c) = (co / ch, co % ch);
            let block = &grad[b * self.taps_padded * ch..];
            for (t, v) in row.iter_mut().enumerate() {
                *v = block[t * ch + c];
            }
        }
    }
}
