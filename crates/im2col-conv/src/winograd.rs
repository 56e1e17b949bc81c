//! Convolution by Winograd's minimal filtering `F(2, 3)` along the columns: the forward pass
//! of 3 x 3 kernels on 2 to 8 input channels, and the weight gradient of RGB stems
//! (`cifar.stem`).
//!
//! Directly, two output rows take 2 x 3 multiply-adds per kernel column and input channel.
//! `F(2, 3)` takes 4: from the four input rows `d0..d3` the pair reads, the transformed rows
//! `d0 - d2`, `d1 + d2`, `d2 - d1`, `d1 - d3` are multiplied by the kernel column's
//! transformed taps `g0`, `(g0 + g1 + g2) / 2`, `(g0 - g1 + g2) / 2`, `g2`; summed over the
//! channels and kernel columns into `m0..m3`, they give the rows `m0 + m1 + m2` and `m1 - m2 -
//! m3`. Along the columns the transforms are whole-vector additions (no lane shuffles), the
//! inputs' done once per image and the outputs' a few additions per tile, so the route needs
//! two thirds of the direct kernel's multiply-adds: `cifar.stem` (64 images) runs at 128-134
//! GFLOP/s at one thread against 97-99 on the direct kernel, and 264-271 against 193 at two.
//! The sums are those of the convolution in another order, within a few units in the last
//! place of the output's magnitude (the transforms' `/ 2` is exact).
//!
//! The weight gradient of RGB stems takes the transposed transform: the sums of the output
//! gradient's transformed rows `dy0`, `dy0 + dy1`, `dy0 - dy1`, `-dy1` times the inputs'
//! transformed rows, 24 in registers for 2 channels by one input channel's 3 kernel columns,
//! summed across lanes and transformed back to the taps once per batch block (see
//! [`Winograd::applies_weight_grad`]). Its tile loop is sensitive to where it lies in the
//! binary: with the kernel function 32 bytes past a 64-byte boundary, `cifar.stem` ran at
//! 79-92 GFLOP/s at one thread, against 101-118 on a boundary (the same code in two
//! builds). The workspace builds with every function on a 64-byte boundary
//! (`.cargo/config.toml`); there, in `cargo xtask bench`, `cifar.stem` backward-weight ran at
//! 211-227 GFLOP/s at two threads against 178-185 on the direct kernel, the same binary
//! switching routes. Its transformed inputs start on a cache line: 16 or 48 bytes past one,
//! each tile load had a 32-byte half across two lines and the route ran a fifth slower.

use crate::Conv2dShape;
use crate::aligned::LINE_FLOATS;
use crate::direct::DIRECT_MAX_DEPTH;
use crate::kernels::Kernel;
use crate::plan::{Par, Plan, for_chunks};

/// Most floats of an image's output gradient for which the weight gradient takes the route
/// (256 KiB, a quarter of L2; see [`Winograd::applies_weight_grad`]).
const GRAD_MAX_OUTPUT: usize = 64 * 1024;

/// A forward convolution by `F(2, 3)` along the columns.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Winograd {
    kernel: Kernel,
    /// Output channels per tile, and output columns per chunk.
    cob: usize,
    chunk: usize,
    cin: usize,
    cout: usize,
    in_hw: [usize; 2],
    pad: [usize; 2],
    out_hw: [usize; 2],
    /// Pairs of output rows (the last may have one real row), chunks of output columns.
    pairs: usize,
    chunks: usize,
    /// The padded copy of an image: row and plane strides (rows reach two past the last
    /// pair's, columns two past the last chunk's).
    xw: usize,
    xs: usize,
}

impl Winograd {
    /// Whether the route runs this forward convolution: AVX-512, one group, stride and
    /// dilation 1, a 3 x 3 kernel, from 2 input channels to the direct kernels' depth, rows
    /// of at least one vector and at least two of them. With one input channel a tile's 24
    /// multiply-adds per source pay for its output transform only thrice, and the direct
    /// kernel is faster (`mnist.c1`: 77-79 GFLOP/s here against 89 at one thread; one
    /// channel of 32 x 32 to 64: 76 against 78); from two channels the route wins (two
    /// channels of 32 x 32 to 64: 117 against 93; eight to 32: 136 against 108).
    pub(crate) fn applies(s: &Conv2dShape, p: &Plan) -> bool {
        p.kernel.winograd_channels().is_some()
            && s.unit_stride_one_group()
            && [s.kh, s.kw] == [3, 3]
            && s.cin >= 2
            && p.k_all <= DIRECT_MAX_DEPTH
            && 2 * s.out_w() >= p.kernel.winograd_chunk()
            && s.out_h() >= 2
    }

    /// The route's geometry for `s` (on which [`Winograd::applies`] holds).
    pub(crate) fn new(s: &Conv2dShape, p: &Plan) -> Self {
        let kernel = p.kernel;
        let chunk = kernel.winograd_chunk();
        let [out_h, out_w] = [s.out_h(), s.out_w()];
        let pairs = out_h.div_ceil(2);
        let chunks = out_w.div_ceil(chunk);
        let xw = chunks * chunk + 2;
        Self {
            kernel,
            cob: kernel
                .winograd_channels()
                .expect("Winograd::applies checked the level"),
            chunk,
            cin: s.cin,
            cout: s.cout,
            in_hw: [s.h, s.w],
            pad: s.params.padding,
            out_hw: [out_h, out_w],
            pairs,
            chunks,
            xw,
            xs: (2 * pairs + 2) * xw,
        }
    }

    /// Output channels per task: all of them, or in `Split` mode a thread's share rounded up
    /// to whole tiles of `tile` channels.
    fn channel_block(&self, par: Par, tile: usize) -> usize {
        match par {
            Par::Seq => self.cout,
            Par::Split(threads) => self.cout.div_ceil(threads).next_multiple_of(tile),
        }
    }

    /// Products per output pixel pair: one per input channel and kernel column.
    fn sources(&self) -> usize {
        3 * self.cin
    }

    /// Floats of the transformed inputs of one pair of output rows.
    fn pair_len(&self) -> usize {
        self.chunks * self.sources() * 4 * self.chunk
    }

    /// Floats of one image's scratch: its padded copy, then its transformed inputs.
    pub(crate) fn buf_len(&self) -> usize {
        self.padded_len() + self.pairs * self.pair_len()
    }

    /// Floats of the scratch's padded copy, rounded up to whole cache lines so that the
    /// transformed inputs after it start on a line as the scratch does (see
    /// [`crate::ConvWorkspace`]). The tiles load them as whole vectors, and where they started
    /// 16 or 48 bytes past a line each load had a 32-byte half across two lines.
    fn padded_len(&self) -> usize {
        (self.cin * self.xs).next_multiple_of(LINE_FLOATS)
    }

    /// Floats of the transformed weights.
    pub(crate) fn packed_len(&self) -> usize {
        self.cout * self.sources() * 4
    }

    /// Transforms `weight` (`[cout, cin, 3, 3]`) into `dst`: tile after tile of [`Kernel::
    /// winograd_channels`] channels (the last may be narrower), each `[source][i][channel]`
    /// with source `3 * ci + kx` and `i` the transformed tap.
    pub(crate) fn pack(&self, weight: &[f32], dst: &mut [f32]) {
        let sources = self.sources();
        for c0 in (0..self.cout).step_by(self.cob) {
            let width = self.cob.min(self.cout - c0);
            let tile = &mut dst[c0 * sources * 4..(c0 + width) * sources * 4];
            for c in 0..width {
                let w = &weight[(c0 + c) * self.cin * 9..][..self.cin * 9];
                for ci in 0..self.cin {
                    for kx in 0..3 {
                        let g = |ky: usize| w[(ci * 3 + ky) * 3 + kx];
                        let taps = [
                            g(0),
                            (g(0) + g(1) + g(2)) * 0.5,
                            (g(0) - g(1) + g(2)) * 0.5,
                            g(2),
                        ];
                        let s = 3 * ci + kx;
                        for (i, t) in taps.into_iter().enumerate() {
                            tile[(s * 4 + i) * width + c] = t;
                        }
                    }
                }
            }
        }
    }

    /// One image: `x` is `[cin, h, w]`, `y` `[cout, out_h, out_w]`, `packed` the weights of
    /// [`Winograd::pack`], `buf` [`Winograd::buf_len`] floats of scratch. In `Split` mode the
    /// transforms spread over the threads by pairs of rows, the tiles by blocks of channels.
    pub(crate) fn image(
        &self,
        x: &[f32],
        packed: &[f32],
        bias: Option<&[f32]>,
        y: &mut [f32],
        buf: &mut [f32],
        par: Par,
    ) {
        let (padded, inputs) = buf[..self.buf_len()].split_at_mut(self.padded_len());
        self.transform(x, padded, inputs, par);
        let inputs: &[f32] = inputs;
        let plane = self.out_hw[0] * self.out_hw[1];
        // Blocks of whole tiles, so that each starts on a tile of the packed weights.
        let block = self.channel_block(par, self.cob);
        for_chunks(y, block * plane, par, |b, y_block| {
            self.block(inputs, packed, bias, b * block, y_block);
        });
    }

    /// Whether the route runs this convolution's weight gradient: where the forward pass
    /// takes it ([`Winograd::applies`]), for 3 input channels (an RGB stem), at least 32
    /// output channels, rows of whole chunks, and an image's output gradient of at most 256
    /// KiB. Each input channel's tiles read the image's whole output gradient, so it must
    /// stay in L2 between them, and a tile of transformed inputs must serve enough output
    /// channels to pay for bringing it to L1. Against the direct kernel at one thread
    /// (GFLOP/s, 64 images unless said): `cifar.stem` 99 against 87-90 (229-251 against
    /// 187-195 at two threads), 3 to 32 channels 122 against 73; but 3 to 8 channels 71
    /// against 85, 3 to 16 62 against 70, 16 images of 3 channels of 64 x 64 to 64 (1 MiB of
    /// output gradient an image) 86 against 97, 26-wide rows 80 against 96, and 2, 4 or 8
    /// input channels level or slower (76-83 against 81-87, 84 against 80-86, 86 against 87).
    pub(crate) fn applies_weight_grad(s: &Conv2dShape, p: &Plan) -> bool {
        Self::applies(s, p)
            && p.kernel.winograd_grad_channels().is_some()
            && s.cin == 3
            && s.cout >= 32
            && s.out_w().is_multiple_of(p.kernel.winograd_chunk())
            && s.cout * s.out_h() * s.out_w() <= GRAD_MAX_OUTPUT
    }

    /// Floats of the weight gradient's sums: per output channel and source, the four
    /// transformed rows' vector of lanes.
    fn sums_len(&self) -> usize {
        self.cout * self.sources() * 2 * self.chunk
    }

    /// Floats of a batch block's scratch for the weight gradient: an image's padded copy and
    /// transformed inputs, then the sums.
    pub(crate) fn grad_buf_len(&self) -> usize {
        self.buf_len() + self.sums_len()
    }

    /// The weight gradient of a block of images into `dw` (`[cout, cin, 3, 3]`, overwritten):
    /// `x` is `[images, cin, h, w]`, `dy` `[images, cout, out_h, out_w]`, `buf`
    /// [`Winograd::grad_buf_len`] floats of scratch. The transposed transform: the sums of
    /// the products of the output gradient's transformed rows with the inputs' (image after
    /// image, pair after pair, lane by lane), then across the lanes in order, then the taps
    /// `g0 = G0 + (G1 + G2) / 2`, `g1 = (G1 - G2) / 2`, `g2 = (G1 + G2) / 2 + G3`. In `Split`
    /// mode the threads take blocks of output channels, which changes no sum.
    pub(crate) fn weight_grad(
        &self,
        x: &[f32],
        dy: &[f32],
        dw: &mut [f32],
        buf: &mut [f32],
        par: Par,
    ) {
        let [h, w] = self.in_hw;
        let [out_h, out_w] = self.out_hw;
        let plane = out_h * out_w;
        let (work, sums) = buf[..self.grad_buf_len()].split_at_mut(self.buf_len());
        let (padded, inputs) = work.split_at_mut(self.padded_len());
        sums.fill(0.0);
        let kern = self.kernel;
        let gco = kern
            .winograd_grad_channels()
            .expect("Winograd::applies_weight_grad checked the level");
        let lanes = self.chunk / 2;
        // Sums of one output channel: per source, 4 rows of lanes.
        let gs = self.sources() * 4 * lanes;
        let strides = self.grad_strides();
        let block = self.channel_block(par, gco);
        let dy_len = self.cout * plane;
        for (img, x_img) in x.chunks_exact(self.cin * h * w).enumerate() {
            let dy_img = &dy[img * dy_len..][..dy_len];
            let next_img = dy.get((img + 1) * dy_len..).filter(|d| !d.is_empty());
            self.transform_for_grad(x_img, padded, inputs, par);
            let inputs: &[f32] = inputs;
            for_chunks(sums, block * gs, par, |b, g| {
                let channels = g.len() / gs;
                let dy = &dy_img[b * block * plane..];
                let next = next_img.map(|d| &d[b * block * plane..]);
                kern.winograd_grad(
                    dy,
                    plane,
                    [out_h, out_w],
                    inputs,
                    strides,
                    self.sources(),
                    g,
                    gs,
                    channels,
                    next,
                );
            });
        }
        for (dw, g) in dw.chunks_exact_mut(self.cin * 9).zip(sums.chunks_exact(gs)) {
            for (s, g) in g.chunks_exact(4 * lanes).enumerate() {
                let [g0, g1, g2, g3]: [f32; 4] =
                    std::array::from_fn(|i| g[i * lanes..][..lanes].iter().sum());
                let (ci, kx) = (s / 3, s % 3);
                dw[ci * 9 + kx] = g0 + (g1 + g2) * 0.5;
                dw[ci * 9 + 3 + kx] = (g1 - g2) * 0.5;
                dw[ci * 9 + 6 + kx] = (g1 + g2) * 0.5 + g3;
            }
        }
    }

    /// Copies image `x` into `padded` with its zero padding.
    fn pad(&self, x: &[f32], padded: &mut [f32]) {
        let [h, w] = self.in_hw;
        let [ph, pw] = self.pad;
        padded.fill(0.0);
        for (dst, src) in padded.chunks_exact_mut(self.xs).zip(x.chunks_exact(h * w)) {
            let first = &mut dst[ph * self.xw + pw..];
            self.kernel.copy_rows(first, self.xw, src, w, w, h);
        }
    }

    /// Copies image `x` into `padded` with its zero padding, then writes its transformed
    /// inputs into `inputs` for the forward tiles: pair after pair, chunk after chunk, every
    /// source (pairs spread over the threads in `Split` mode).
    fn transform(&self, x: &[f32], padded: &mut [f32], inputs: &mut [f32], par: Par) {
        self.pad(x, padded);
        let padded: &[f32] = padded;
        let (kern, xs, xw, cin, chunks) = (self.kernel, self.xs, self.xw, self.cin, self.chunks);
        let chunk_stride = self.sources() * 4 * self.chunk;
        for_chunks(inputs, self.pair_len(), par, |p, v| {
            kern.winograd_inputs(
                &padded[2 * p * xw..],
                [xs, xw],
                cin,
                [chunks, chunk_stride],
                v,
            );
        });
    }

    /// Strides of the weight gradient's transformed inputs: input channel after input
    /// channel, each pair after pair and chunk after chunk, its three sources. A channel's
    /// rows for the whole image lie together, so that the tiles over them (which run a
    /// channel at a time) read them from L1 without conflicts: with the forward layout, pairs
    /// lay `3 * cin * 512` bytes apart and, from 4 channels, fell on the same L1 sets.
    fn grad_strides(&self) -> [usize; 3] {
        let chunk_stride = 3 * 4 * self.chunk;
        let pair_stride = self.chunks * chunk_stride;
        [pair_stride, chunk_stride, self.pairs * pair_stride]
    }

    /// [`Winograd::transform`] into the weight gradient's layout ([`Winograd::grad_strides`];
    /// input channels spread over the threads in `Split` mode).
    fn transform_for_grad(&self, x: &[f32], padded: &mut [f32], inputs: &mut [f32], par: Par) {
        self.pad(x, padded);
        let padded: &[f32] = padded;
        let [pair_stride, chunk_stride, channel_stride] = self.grad_strides();
        let (kern, xs, xw, chunks) = (self.kernel, self.xs, self.xw, self.chunks);
        for_chunks(inputs, channel_stride, par, |ci, v| {
            for (p, v) in v.chunks_exact_mut(pair_stride).enumerate() {
                let x = &padded[ci * xs + 2 * p * xw..];
                kern.winograd_inputs(x, [xs, xw], 1, [chunks, chunk_stride], v);
            }
        });
    }

    /// The tiles of output channels `c_first..` (as many as `y` holds, from a multiple of the
    /// tile width): pair after pair, chunk after chunk, one kernel call each.
    fn block(
        &self,
        inputs: &[f32],
        packed: &[f32],
        bias: Option<&[f32]>,
        c_first: usize,
        y: &mut [f32],
    ) {
        let [out_h, out_w] = self.out_hw;
        let plane = out_h * out_w;
        let channels = y.len() / plane;
        let sources = self.sources();
        let chunk_len = sources * 4 * self.chunk;
        let at = |p: usize, k: usize| 2 * p * out_w + k * self.chunk;
        for p in 0..self.pairs {
            let rows = (out_h - 2 * p).min(2);
            for k in 0..self.chunks {
                let cols = (out_w - k * self.chunk).min(self.chunk);
                let v = &inputs[p * self.pair_len() + k * chunk_len..][..chunk_len];
                let next = if k + 1 < self.chunks {
                    Some(at(p, k + 1))
                } else {
                    (p + 1 < self.pairs).then(|| at(p + 1, 0))
                };
                self.kernel.winograd_rows(
                    v,
                    &packed[c_first * sources * 4..(c_first + channels) * sources * 4],
                    sources,
                    bias.map(|b| &b[c_first..c_first + channels]),
                    y,
                    [channels, plane, out_w],
                    [at(p, k), rows, cols],
                    next,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::{Isa, with_isa};
    use crate::reference;
    use crate::{Conv2dParams, ConvWorkspace, conv2d_backward_weight, conv2d_forward};
    use ganglion_tensor::Rng;

    fn shape(n: usize, cin: usize, hw: [usize; 2], cout: usize, pad: [usize; 2]) -> Conv2dShape {
        let params = Conv2dParams {
            padding: pad,
            ..Conv2dParams::default()
        };
        Conv2dShape::new([n, cin, hw[0], hw[1]], [cout, cin, 3, 3], params).unwrap()
    }

    /// `len` values uniform in [-1, 1) from the project's seeded generator.
    fn values(len: usize, seed: u64) -> Vec<f32> {
        let mut rng = Rng::seed_from(seed);
        (0..len).map(|_| rng.uniform_range(-1.0, 1.0)).collect()
    }

    /// The route against the direct reference on shapes that exercise its edges: an odd
    /// number of output rows, ragged and several chunks of columns, tiles narrower than the
    /// widest, uneven padding, no bias; one image (split across the threads) and several
    /// (whole images per task). Below AVX-512 the route does not apply.
    #[test]
    fn matches_the_reference_on_its_edges() {
        let cases = [
            // (n, cin, [h, w], cout, pad)
            (3, 3, [32, 32], 64, [1, 1]),
            (2, 2, [28, 28], 32, [0, 0]),
            (1, 3, [9, 70], 7, [1, 0]),
            (2, 2, [12, 17], 5, [0, 1]),
            (4, 8, [7, 40], 4, [2, 2]),
            (1, 2, [4, 18], 1, [0, 1]),
        ];
        for isa in Isa::available_levels() {
            for (i, &(n, cin, hw, cout, pad)) in cases.iter().enumerate() {
                let s = shape(n, cin, hw, cout, pad);
                let applies = with_isa(isa, || Winograd::applies(&s, &Plan::new(&s)));
                assert_eq!(applies, isa == Isa::Avx512, "{isa:?} case {i}");
                if !applies {
                    continue;
                }
                let x = values(s.input_len(), 1 + i as u64);
                let w = values(s.weight_len(), 100 + i as u64);
                let b = values(s.cout, 200 + i as u64);
                let bias_cases = [Some(&b[..]), None];
                for (bias, threads) in bias_cases.into_iter().zip([1, 3]) {
                    let mut got = vec![f32::NAN; s.output_len()];
                    with_isa(isa, || {
                        let pool = rayon::ThreadPoolBuilder::new()
                            .num_threads(threads)
                            .build()
                            .unwrap();
                        pool.install(|| {
                            conv2d_forward(&s, &x, &w, bias, &mut got, &mut ConvWorkspace::new())
                        });
                    });
                    let wide = |v: &[f32]| v.iter().map(|&v| f64::from(v)).collect::<Vec<_>>();
                    let mut want = vec![0.0; s.output_len()];
                    let b64 = bias.map(wide);
                    reference::forward(&s, &wide(&x), &wide(&w), b64.as_deref(), &mut want);
                    let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
                    for (j, (&g, &e)) in got.iter().zip(&want).enumerate() {
                        assert!(
                            (f64::from(g) - e).abs() <= 1e-5 * scale,
                            "{isa:?} case {i} ({threads} threads) output {j}: {g} != {e}"
                        );
                    }
                }
            }
        }
    }

    /// `got` against `want` (`f64`) within `1e-5` of `want`'s largest magnitude.
    fn assert_close(got: &[f32], want: &[f64], what: &str) {
        let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        for (j, (&g, &e)) in got.iter().zip(want).enumerate() {
            assert!(
                (f64::from(g) - e).abs() <= 1e-5 * scale,
                "{what}, element {j}: {g} != {e}"
            );
        }
    }

    /// The weight gradient against the direct reference: through `conv2d_backward_weight`
    /// where the route takes the layer (an odd number of output rows, a ragged tile of
    /// channels, several images per batch block with the next one prefetched, one image
    /// split across the threads), and through `Winograd::weight_grad` itself on geometry the
    /// route leaves to the direct kernel (other channel counts, an odd row count).
    #[test]
    fn weight_gradient_matches_the_reference() {
        let wide = |v: &[f32]| v.iter().map(|&v| f64::from(v)).collect::<Vec<_>>();
        let routed = [
            // (n, cin, [h, w], cout, pad, threads)
            (3, 3, [32, 32], 64, [1, 1], 1),
            (9, 3, [9, 66], 33, [1, 0], 2),
            (1, 3, [7, 32], 35, [1, 1], 3),
        ];
        let direct_calls = [
            (2, 3, [28, 32], 16, [0, 1]),
            (2, 2, [12, 32], 5, [0, 1]),
            (1, 8, [7, 64], 4, [2, 1]),
        ];
        if !Isa::Avx512.available() {
            return;
        }
        with_isa(Isa::Avx512, || {
            for (i, &(n, cin, hw, cout, pad, threads)) in routed.iter().enumerate() {
                let s = shape(n, cin, hw, cout, pad);
                assert!(
                    Winograd::applies_weight_grad(&s, &Plan::new(&s)),
                    "case {i}"
                );
                let x = values(s.input_len(), 300 + i as u64);
                let dy = values(s.output_len(), 400 + i as u64);
                let mut want = vec![0.0; s.weight_len()];
                reference::backward_weight(&s, &wide(&x), &wide(&dy), &mut want, None);
                let mut got = vec![f32::NAN; s.weight_len()];
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                pool.install(|| {
                    let ws = &mut ConvWorkspace::new();
                    conv2d_backward_weight(&s, &x, &dy, &mut got, None, ws);
                });
                assert_close(&got, &want, &format!("routed case {i}"));
            }
            for (i, &(n, cin, hw, cout, pad)) in direct_calls.iter().enumerate() {
                let s = shape(n, cin, hw, cout, pad);
                let plan = Plan::new(&s);
                assert!(!Winograd::applies_weight_grad(&s, &plan), "case {i}");
                let wg = Winograd::new(&s, &plan);
                let x = values(s.input_len(), 500 + i as u64);
                let dy = values(s.output_len(), 600 + i as u64);
                let mut want = vec![0.0; s.weight_len()];
                reference::backward_weight(&s, &wide(&x), &wide(&dy), &mut want, None);
                let mut got = vec![f32::NAN; s.weight_len()];
                let mut buf = vec![f32::NAN; wg.grad_buf_len()];
                wg.weight_grad(&x, &dy, &mut got, &mut buf, Par::Seq);
                assert_close(&got, &want, &format!("direct call {i}"));
            }
        });
    }
}
