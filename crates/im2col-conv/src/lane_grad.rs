//! Backward-data with the images of a batch in the vector lanes: each group of as many images
//! as a vector holds is transposed to pixel-major (a vector of images per pixel), the input
//! gradient is gathered a row at a time by [`Kernel::lane_row`], and transposed back.
//!
//! The row kernels vectorise over a row of pixels, so a small image with a large kernel
//! multiplies zeros: `lenet.c2`'s backward-data (a 10 x 10 gradient, 5 x 5 kernel, 14 x 14
//! input) is a forward pass over the gradient padded by 4, and of its multiply-adds only 58%
//! read real values (the padding columns every row reads, the rows a pair shares, the 2 of 16
//! lanes a 14-wide row leaves). With the images in the lanes every lane is real, each row
//! reads only the kernel rows that reach the gradient, and each tile of 4 (or, at a row's
//! ends, 2) pixels only the columns its pixels reach: 89% of its multiply-adds are real.

use crate::kernels::{Kernel, LANE_PIXELS, LaneTile};
use crate::plan::{Par, Plan, for_chunks, for_images, group_slots};
use crate::{Conv2dShape, ConvWorkspace};

/// Largest image side the route takes: it was measured on images up to 28 x 28; larger ones,
/// whose rows the padding wastes less of, stay with the row kernels.
const MAX_SIDE: usize = 32;

/// Columns past the gradient's edge a kernel must reach for the lanes to pay (see
/// [`LaneGrad::applies`]).
const FAR_REACH: usize = 4;
/// Rows at most this wide take the lanes whatever the kernel.
const NARROW_ROW: usize = 10;

/// A backward-data convolution with the images in the lanes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LaneGrad {
    tile: LaneTile,
    cin: usize,
    cout: usize,
    in_hw: [usize; 2],
    out_hw: [usize; 2],
    kernel: [usize; 2],
    pad: [usize; 2],
    /// Columns of a transposed gradient row, and the zero columns before the real ones.
    cols: usize,
    left: usize,
}

impl LaneGrad {
    /// Whether this route runs the backward-data of `s`: a SIMD level, stride and dilation
    /// 1, one group, a kernel larger than 1x1, images at most [`MAX_SIDE`] on a side, at
    /// least a vector's worth of images, input channels filling one to three of the kernel's
    /// tiles (6, 12 or 18 at AVX-512; 2, 4 or 6 at AVX2), and a layer on which the row
    /// kernels read mostly zeros: its kernel reaches at least [`FAR_REACH`] columns past the
    /// gradient's edge (the rotated forward pads it by `kw - 1 - pw`), or its rows are at
    /// most [`NARROW_ROW`] wide.
    ///
    /// Measured at one thread against the route it replaces: `lenet.c2` 62 -> 90.5 GFLOP/s
    /// (AVX2: 62 -> 70); 8x8 and 10x10 images with 6 to 18 channels 2.5-3.4x; 14x14 with 12
    /// and 18 channels and 5x5 kernels 1.5-1.7x; a 28x28 6-channel 5x5 layer 1.17x. It
    /// lost (with tiles of 4 pixels only), and does not apply, with 3x3 kernels on rows 14
    /// to 16 wide (5-7%) and with 1 or 3 input channels (1.05-2.2x: the tile's channels run
    /// empty).
    pub(crate) fn applies(s: &Conv2dShape, p: &Plan) -> bool {
        let Some(tile) = p.kernel.lane_tile() else {
            return false;
        };
        s.unit_stride_one_group()
            && s.kh * s.kw > 1
            && s.h.max(s.w) <= MAX_SIDE
            && s.n >= tile.images
            && s.cin.is_multiple_of(tile.channels)
            && s.cin <= 3 * tile.channels
            // The rotated forward's padding, `kw - 1 - pw`, at least `FAR_REACH`.
            && (s.kw >= s.params.padding[1] + 1 + FAR_REACH || s.w <= NARROW_ROW)
    }

    /// The geometry of `s` (which [`LaneGrad::applies`] to).
    pub(crate) fn new(s: &Conv2dShape, p: &Plan) -> Self {
        let tile = p.kernel.lane_tile().expect("lane route needs a SIMD level");
        // A tile's pixels reach at most `LANE_PIXELS - 1` columns before the row's first and
        // after its last (see `Kernel::lane_row`).
        let reach = LANE_PIXELS - 1;
        let left = (s.kw - 1).min(reach);
        Self {
            tile,
            cin: s.cin,
            cout: s.cout,
            in_hw: [s.h, s.w],
            out_hw: [s.out_h(), s.out_w()],
            kernel: [s.kh, s.kw],
            pad: s.params.padding,
            cols: left + s.out_w() + reach,
            left,
        }
    }

    /// Images per group, one per lane.
    pub(crate) fn group(&self) -> usize {
        self.tile.images
    }

    /// Floats of one group's transposed output gradient.
    fn dyt_len(&self) -> usize {
        self.cout * self.out_hw[0] * self.cols * self.tile.images
    }

    /// Floats of one input row of a block of channels, transposed.
    fn dxt_row(&self) -> usize {
        self.tile.channels * self.in_hw[1].next_multiple_of(LANE_PIXELS) * self.tile.images
    }

    /// Blocks of input channels.
    fn blocks(&self) -> usize {
        self.cin.div_ceil(self.tile.channels)
    }

    /// Floats of one task's scratch: a group's transposed output and input gradients.
    pub(crate) fn buf_len(&self) -> usize {
        self.dyt_len() + self.blocks() * self.in_hw[0] * self.dxt_row()
    }

    /// The input gradient `dx` (`[images, cin, h, w]`, at most a group) of the output
    /// gradient `dy` (`[images, cout, out_h, out_w]`) and the weights `w`. In `Split` mode
    /// the transposed rows and the kernel's rows spread over the threads.
    pub(crate) fn images(
        &self,
        kern: Kernel,
        dy: &[f32],
        w: &[f32],
        dx: &mut [f32],
        buf: &mut [f32],
        par: Par,
    ) {
        let ([in_h, in_w], [out_h, out_w]) = (self.in_hw, self.out_hw);
        let (in_img, out_img) = (self.cin * in_h * in_w, self.cout * out_h * out_w);
        let images = dx.len() / in_img;
        let lanes = self.tile.images;
        let (dyt, dxt) = buf[..self.buf_len()].split_at_mut(self.dyt_len());
        // Each output-gradient row: zero columns, the images' rows side by side, zero
        // columns. Lanes past the group's images keep stale values, which reach only their
        // own lanes.
        let (cols, left) = (self.cols, self.left);
        for_chunks(dyt, cols * lanes, par, |r, row| {
            row[..left * lanes].fill(0.0);
            row[(left + out_w) * lanes..].fill(0.0);
            let src = &dy[r * out_w..];
            kern.transpose(src, out_img, images, out_w, &mut row[left * lanes..], lanes);
        });
        let dyt: &[f32] = dyt;
        let ch = self.tile.channels;
        for_chunks(dxt, self.dxt_row(), par, |i, row| {
            let (blk, ih) = (i / in_h, i % in_h);
            let ci0 = blk * ch;
            kern.lane_row(
                dyt,
                [cols, left],
                [self.cout, out_h, out_w],
                w,
                [self.cin, self.kernel[0], self.kernel[1]],
                self.pad,
                [ci0, ch.min(self.cin - ci0)],
                [ih, in_w],
                row,
            );
        });
        let plane_row = in_w.next_multiple_of(LANE_PIXELS) * lanes;
        for (i, row) in dxt.chunks_exact(self.dxt_row()).enumerate() {
            let (blk, ih) = (i / in_h, i % in_h);
            for c in 0..ch.min(self.cin - blk * ch) {
                let dst = &mut dx[((blk * ch + c) * in_h + ih) * in_w..];
                kern.transpose(&row[c * plane_row..], lanes, in_w, images, dst, in_img);
            }
        }
    }
}

/// Backward-data by the lane route: groups of images in parallel (or, with fewer groups than
/// threads keep busy, each group split across them).
pub(crate) fn run(
    shape: &Conv2dShape,
    plan: &Plan,
    grad_output: &[f32],
    weight: &[f32],
    grad_input: &mut [f32],
    ws: &mut ConvWorkspace,
) {
    let lg = LaneGrad::new(shape, plan);
    let group = lg.group();
    let (_, slots) = ws.packed_and_slots(0, group_slots(shape.n, group), lg.buf_len(), 0);
    let kern = plan.kernel;
    for_images(
        grad_input,
        group * plan.in_img,
        grad_output,
        group * plan.out_img,
        slots,
        |dy, dx, buf, par| lg.images(kern, dy, weight, dx, buf, par),
    );
}
