//! The forward pass by FFT, for small images and kernels of 5 x 5 or more, with the images of
//! a group in the vector lanes: each input plane's 16 x 16 spectrum, the products with the
//! weights' spectra summed over the input channels, and each output plane's inverse.
//!
//! `lenet.c2` (6 channels of 14 x 14 to 16 channels of 10 x 10, 5 x 5 kernels) takes 240 k
//! multiply-adds an image directly, which the row kernel runs at 86% of the FMA peak:
//! PyTorch runs it at 69%, so twice its speed would be 137% of the peak. Through the spectra
//! an image takes 55 k multiply-adds of products (6 x 16 kernels, 144 bins, 4 each) and 22
//! transforms of 16 x 16, about half the work. The sums are those of a convolution computed
//! in another order, within a few units in the last place of the output's magnitude.

use crate::kernels::{FFT_COLS, FFT_SIZE, Kernel, LaneTile};
use crate::plan::{Par, Plan, for_chunk_pairs, for_chunks, for_images, group_slots};
use crate::{Conv2dShape, ConvWorkspace};

/// Smallest kernel side the FFT route takes: with 3 x 3 kernels the direct kernels' 9
/// multiply-adds per tap and pixel cost less than the transforms.
const MIN_KERNEL: usize = 5;

/// A forward convolution by FFT.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FftConv {
    tile: LaneTile,
    /// Floats of one spectrum.
    spec: usize,
    cin: usize,
    cout: usize,
    in_hw: [usize; 2],
    out_hw: [usize; 2],
    pad: [usize; 2],
    /// `[kh, kw]`.
    kernel: [usize; 2],
}

impl FftConv {
    /// Whether the FFT route runs the forward pass of `s`: a SIMD level, stride and dilation
    /// 1, one group, at least a vector's worth of images, a padded image that fits the 16 x
    /// 16 plane, a kernel at least [`MIN_KERNEL`] on each side, and a direct convolution
    /// that would cost clearly more (see [`FftConv::pays`]).
    pub(crate) fn applies(s: &Conv2dShape, p: &Plan) -> bool {
        let q = &s.params;
        let Some(tile) = p.kernel.fft_tile() else {
            return false;
        };
        s.unit_stride_one_group()
            && s.n >= tile.images
            && s.h + 2 * q.padding[0] <= FFT_SIZE
            && s.w + 2 * q.padding[1] <= FFT_SIZE
            && s.kh.min(s.kw) >= MIN_KERNEL
            && Self::pays(s)
    }

    /// Whether the direct convolution's cost, in vector operations per image (its
    /// multiply-adds at 85% of the peak), is more than 1.5 times the FFT route's: its
    /// products (4 multiply-adds per bin, 144 bins, per kernel) and about 4000 operations
    /// per input and 2900 per output transform, as timed on `lenet.c2`. The factor is what
    /// the estimate missed on the layers timed at one thread: FFT over direct, `lenet.c2`
    /// 1.47-1.66x, 16 to 32 channels of 12 x 12 1.4x, 3 to 8 channels of 12 x 12 padded by
    /// 2 1.43x, 64 channels of 8 x 8 padded by 2 1.53x (all taken); one to 6 channels of 16
    /// x 16 0.76x, 7 x 7 kernels on 10 x 10 images 0.99x (both left to the direct kernels).
    fn pays(s: &Conv2dShape) -> bool {
        let kernels = s.cin * s.cout;
        let direct = kernels * s.out_h() * s.out_w() * s.kh * s.kw * 20 / 17;
        let fft = kernels * 4 * FFT_SIZE * FFT_COLS + s.cin * 4000 + s.cout * 2900;
        2 * direct > 3 * fft
    }

    /// The geometry of `s` (which [`FftConv::applies`] to).
    pub(crate) fn new(s: &Conv2dShape, p: &Plan) -> Self {
        let tile = p.kernel.fft_tile().expect("FFT route needs a SIMD level");
        Self {
            tile,
            spec: p.kernel.fft_spectrum_len(),
            cin: s.cin,
            cout: s.cout,
            in_hw: [s.h, s.w],
            out_hw: [s.out_h(), s.out_w()],
            pad: s.params.padding,
            kernel: [s.kh, s.kw],
        }
    }

    /// Groups of kernels, a lane each.
    fn kernel_groups(&self) -> usize {
        (self.cout * self.cin).div_ceil(self.tile.images)
    }

    /// Floats of one 16 x 16 plane in lanes.
    fn plane(&self) -> usize {
        FFT_SIZE * FFT_SIZE * self.tile.images
    }

    /// Floats of the weights' spectra and the kernels' planes in lanes on the way.
    pub(crate) fn packed_len(&self) -> usize {
        self.kernel_groups() * (self.spec + self.plane())
    }

    /// Floats of one task's scratch: a group's input in lanes, as it comes and in 16 x 16
    /// planes, their spectra, the output spectra and the output in lanes.
    pub(crate) fn buf_len(&self) -> usize {
        let ([h, w], [oh, ow]) = (self.in_hw, self.out_hw);
        let l = self.tile.images;
        self.cin * (h * w * l + self.plane() + self.spec) + self.cout * (self.spec + oh * ow * l)
    }

    /// The spectra of the layer's kernels (`weight`, `[cout, cin, kh, kw]`) into the head of
    /// `packed`, kernel `co * cin + ci` in lane `k % L` of spectrum `k / L`.
    pub(crate) fn pack(&self, kern: Kernel, weight: &[f32], packed: &mut [f32]) {
        let [kh, kw] = self.kernel;
        let (l, taps) = (self.tile.images, kh * kw);
        let kernels = self.cout * self.cin;
        let (spectra, planes) =
            packed[..self.packed_len()].split_at_mut(self.kernel_groups() * self.spec);
        let par = Par::Split(rayon::current_num_threads());
        for_chunk_pairs(
            spectra,
            self.spec,
            planes,
            self.plane(),
            par,
            |g, spec, plane| {
                place(kern, plane, [kh, kw], [0, 0]);
                let rows = l.min(kernels - g * l);
                for r in 0..kh {
                    let src = &weight[g * l * taps + r * kw..];
                    kern.transpose(src, taps, rows, kw, &mut plane[r * FFT_SIZE * l..], l);
                }
                kern.fft_spectrum(plane, [0, kh], spec);
            },
        );
    }

    /// The output `y` (`[images, cout, out_h, out_w]`, at most a group) of the input `x`,
    /// the weights' spectra `wspec` and the bias. In `Split` mode the planes, spectra and
    /// channel tiles spread over the threads.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn images(
        &self,
        kern: Kernel,
        x: &[f32],
        wspec: &[f32],
        bias: Option<&[f32]>,
        y: &mut [f32],
        buf: &mut [f32],
        par: Par,
    ) {
        let ([h, w], [oh, ow]) = (self.in_hw, self.out_hw);
        let (l, spec) = (self.tile.images, self.spec);
        let (in_img, out_img) = (self.cin * h * w, self.cout * oh * ow);
        let images = y.len() / out_img;
        let (xd, rest) = buf[..self.buf_len()].split_at_mut(in_img * l);
        let (xt, rest) = rest.split_at_mut(self.cin * self.plane());
        let (xs, rest) = rest.split_at_mut(self.cin * spec);
        let (ys, yt) = rest.split_at_mut(self.cout * spec);
        // The images pixel-major, a vector of images per pixel: one transpose of the whole
        // group (whole 8 x 8 blocks where a plane's rows would leave ragged edges), then each
        // plane's rows into a zero 16 x 16 plane. Lanes past the group's images keep stale
        // values, which reach only their own lanes.
        kern.transpose(x, in_img, images, in_img, xd, l);
        let xd: &[f32] = xd;
        let [ph, pw] = self.pad;
        let plane = self.plane();
        for_chunks(xt, plane, par, |ci, p| {
            place(kern, p, [h, w], [ph, pw]);
            let dst = &mut p[(ph * FFT_SIZE + pw) * l..];
            kern.copy_rows(dst, FFT_SIZE * l, &xd[ci * h * w * l..], w * l, w * l, h);
        });
        let xt: &[f32] = xt;
        for_chunks(xs, spec, par, |ci, s| {
            kern.fft_spectrum(&xt[ci * plane..], [ph, ph + h], s);
        });
        let xs: &[f32] = xs;
        let ct = self.tile.channels;
        for_chunks(ys, ct * spec, par, |t, s| {
            let count = s.len() / spec;
            kern.fft_products(xs, self.cin, wspec, [t * ct, count], s);
        });
        for_chunk_pairs(ys, spec, yt, oh * ow * l, par, |co, s, out| {
            let b = bias.map_or(0.0, |b| b[co]);
            kern.fft_inverse(s, [oh, ow], b, out);
        });
        kern.transpose(yt, l, out_img, images, y, out_img);
    }
}

/// Zeroes the parts of a 16 x 16 plane in lanes (`p`) outside an `h x w` block at row `top`
/// and column `left`, which the caller fills.
fn place(kern: Kernel, p: &mut [f32], [h, w]: [usize; 2], [top, left]: [usize; 2]) {
    let l = p.len() / (FFT_SIZE * FFT_SIZE);
    let row = FFT_SIZE * l;
    p[..top * row].fill(0.0);
    p[(top + h) * row..].fill(0.0);
    let body = &mut p[top * row..(top + h) * row];
    kern.zero_rows(body, row, left * l, h);
    kern.zero_rows(
        &mut body[(left + w) * l..],
        row,
        (FFT_SIZE - left - w) * l,
        h,
    );
}

/// The forward pass by FFT: the weights' spectra once, then groups of images in parallel
/// (or, with fewer groups than threads keep busy, each group split across them).
pub(crate) fn run(
    shape: &Conv2dShape,
    plan: &Plan,
    input: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    output: &mut [f32],
    ws: &mut ConvWorkspace,
) {
    let fc = FftConv::new(shape, plan);
    let group = fc.tile.images;
    let slot_count = group_slots(shape.n, group);
    let (packed, slots) = ws.packed_and_slots(fc.packed_len(), slot_count, fc.buf_len(), 0);
    let kern = plan.kernel;
    fc.pack(kern, weight, packed);
    let wspec: &[f32] = &packed[..fc.kernel_groups() * fc.spec];
    for_images(
        output,
        group * plan.out_img,
        input,
        group * plan.in_img,
        slots,
        |x, y, buf, par| fc.images(kern, x, wspec, bias, y, buf, par),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Conv2dParams;
    use crate::kernels::isa::Isa;

    fn shape(input: [usize; 4], weight: [usize; 4], pad: [usize; 2]) -> Conv2dShape {
        let params = Conv2dParams {
            padding: pad,
            ..Conv2dParams::default()
        };
        Conv2dShape::new(input, weight, params).expect("valid test shape")
    }

    #[test]
    fn the_route_takes_the_layers_it_pays_on() {
        let taken = [
            shape([64, 6, 14, 14], [16, 6, 5, 5], [0, 0]),
            shape([20, 6, 14, 14], [16, 6, 5, 5], [0, 0]),
            shape([17, 3, 12, 10], [5, 3, 5, 5], [2, 3]),
            shape([16, 2, 16, 16], [8, 2, 6, 5], [0, 0]),
            shape([16, 6, 12, 12], [16, 6, 5, 5], [2, 2]),
            shape([64, 64, 8, 8], [64, 64, 5, 5], [2, 2]),
        ];
        let left = [
            // One input channel, a 7 x 7 kernel on a 10 x 10 image: cheaper directly.
            shape([64, 1, 16, 16], [6, 1, 5, 5], [0, 0]),
            shape([64, 6, 10, 10], [16, 6, 7, 7], [0, 0]),
            // Too large a plane, too small a kernel, too few images for a group.
            shape([64, 6, 14, 14], [16, 6, 5, 5], [2, 0]),
            shape([64, 16, 12, 12], [32, 16, 3, 3], [1, 1]),
            shape([7, 6, 14, 14], [16, 6, 5, 5], [0, 0]),
        ];
        for isa in Isa::available_levels() {
            let plan = |s: &Conv2dShape| Plan {
                kernel: Kernel::new(isa),
                ..Plan::new(s)
            };
            let simd = isa != Isa::Scalar;
            for s in &taken {
                assert_eq!(FftConv::applies(s, &plan(s)), simd, "{isa:?} {s:?}");
            }
            for s in &left {
                assert!(!FftConv::applies(s, &plan(s)), "{isa:?} {s:?}");
            }
        }
    }
}
