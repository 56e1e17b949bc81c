//! Forward convolution as an implicit GEMM: per image and group,
//! `Y_g[cout/g, pixels] = W_g[cout/g, cin/g*kh*kw] x col_g[cin/g*kh*kw, pixels]` (+ bias), with
//! `W_g` packed once per call and the column panels packed straight from the input in the
//! micro-kernel's layout, never materialised as a whole im2col matrix.

use crate::broadcast::Broadcast;
use crate::direct::{DirectInput, Padded};
use crate::fft_conv::{self, FftConv};
use crate::gemm::{Backend, Beta, KBlocks, MatMut, MatRef, PackedA, gemm, gemm_prepacked, pack_b};
use crate::im2col::Taps;
use crate::params::assert_len;
use crate::plan::{Par, Plan, for_chunks, for_images, image_slots};
use crate::winograd::Winograd;
use crate::{Conv2dShape, ConvWorkspace};

/// Forward convolution: `output = conv2d(input, weight) + bias`, overwriting `output`.
///
/// `input` is `[n, cin, h, w]`, `weight` `[cout, cin/groups, kh, kw]`, `bias` `[cout]` and
/// `output` `[n, cout, out_h, out_w]`, all row-major. Work is spread over the current rayon
/// pool; the result does not depend on its thread count.
///
/// # Panics
/// If a slice length disagrees with `shape`, or `shape` was edited into one
/// [`Conv2dShape::new`] rejects.
pub fn conv2d_forward(
    shape: &Conv2dShape,
    input: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    output: &mut [f32],
    ws: &mut ConvWorkspace,
) {
    const OP: &str = "conv2d_forward";
    shape.assert_valid(OP);
    assert_len(OP, "input", input.len(), shape.input_len());
    assert_len(OP, "weight", weight.len(), shape.weight_len());
    if let Some(b) = bias {
        assert_len(OP, "bias", b.len(), shape.cout);
    }
    assert_len(OP, "output", output.len(), shape.output_len());
    let plan = Plan::new(shape);
    if Backend::selected() != Backend::MatrixMultiply && FftConv::applies(shape, &plan) {
        return fft_conv::run(shape, &plan, input, weight, bias, output, ws);
    }
    let groups = shape.params.groups;
    let kern = plan.kernel;
    let kb = KBlocks::new(plan.k_g, if plan.pointwise { 1 } else { plan.taps });
    let route = Route::of(shape, &plan);
    let baseline = route == Route::Baseline;
    let per_group = PackedA::len(kern, plan.cout_g, plan.k_g);
    let slot_count = image_slots(shape.n, rayon::current_num_threads());
    let winograd = (route == Route::Winograd).then(|| Winograd::new(shape, &plan));
    let direct = (route == Route::Direct).then(|| DirectInput::for_forward(shape, &plan));
    let broadcast = (route == Route::Broadcast).then(|| Broadcast::new(shape, &plan));
    let col_len = if baseline {
        plan.col_len()
    } else if let Some(wg) = &winograd {
        wg.buf_len()
    } else if let Some(b) = &broadcast {
        b.buf_len()
    } else if let Some(d) = &direct {
        d.buf_len(1)
    } else {
        0
    };
    let packed_len = if let Some(wg) = &winograd {
        wg.packed_len()
    } else if let Some(b) = &broadcast {
        b.packed_len()
    } else if direct.is_some_and(|d| d.is_shifted()) {
        // The weights with their taps in the shifted copies' order.
        shape.weight_len()
    } else if baseline || direct.is_some() {
        0
    } else {
        groups * per_group
    };
    let (packed, slots) = ws.packed_and_slots(packed_len, slot_count, col_len, 0);
    // The weights are packed once here, into the workspace, and shared read-only by every
    // task: views are rebuilt per group from these floats, so a call allocates nothing.
    if let Some(wg) = &winograd {
        wg.pack(weight, packed);
    } else if let Some(b) = &broadcast {
        b.pack(weight, packed);
    } else if let Some(d) = direct.filter(DirectInput::is_shifted) {
        d.order_weights(weight, packed);
    } else if !(baseline || direct.is_some() || winograd.is_some()) {
        for (g, dst) in packed.chunks_exact_mut(per_group).enumerate() {
            let w_g = &weight[g * plan.cout_g * plan.k_g..(g + 1) * plan.cout_g * plan.k_g];
            let a = MatRef::new(w_g, plan.cout_g, plan.k_g, plan.k_g, 1);
            PackedA::pack(kern, a, kb, dst);
        }
    }
    let packed: &[f32] = packed;
    let fwd = Forward {
        plan,
        taps: Taps::new(shape),
        weight,
        packed,
        per_group,
        kb,
        bias,
        direct,
        broadcast,
        winograd,
    };
    // Whole images per task where there are enough (no synchronisation inside an image),
    // else each image's output rows split over the threads.
    for_images(
        output,
        plan.out_img,
        input,
        plan.in_img,
        slots,
        |x, y, col, par| {
            fwd.image(x, y, col, par);
        },
    );
}

/// Whether the forward pass of `shape` runs on a direct kernel (the row kernel, the
/// broadcast kernel or the Winograd route's) rather than the implicit GEMM.
pub(crate) fn runs_direct(shape: &Conv2dShape) -> bool {
    matches!(
        Route::of(shape, &Plan::new(shape)),
        Route::Winograd | Route::Direct | Route::Broadcast
    )
}

/// How a forward convolution runs, chosen from its shape alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// im2col + `matrixmultiply` (`GANGLION_CONV_GEMM=matrixmultiply`).
    Baseline,
    /// Winograd's `F(2, 3)` along the columns ([`Winograd::applies`]).
    Winograd,
    /// The direct row kernel ([`Padded::applies`]).
    Direct,
    /// The broadcast kernel ([`Broadcast::applies`]).
    Broadcast,
    /// The implicit GEMM on the packed micro-kernels.
    Gemm,
}

impl Route {
    fn of(shape: &Conv2dShape, plan: &Plan) -> Self {
        if Backend::selected() == Backend::MatrixMultiply {
            Self::Baseline
        } else if Winograd::applies(shape, plan) {
            Self::Winograd
        } else if Padded::applies(shape, plan) {
            Self::Direct
        } else if Broadcast::applies(shape, plan) {
            Self::Broadcast
        } else {
            Self::Gemm
        }
    }
}

/// What every task of one forward call shares.
struct Forward<'a> {
    plan: Plan,
    taps: Taps,
    weight: &'a [f32],
    /// `W_g` packed for the micro-kernel, group after group, `per_group` floats each (empty
    /// on the baseline backend and the direct path, except for the weights in the order of
    /// shifted copies there).
    packed: &'a [f32],
    /// Floats of one group's packed weights.
    per_group: usize,
    /// How the packed weights' depth is cut.
    kb: KBlocks,
    bias: Option<&'a [f32]>,
    /// The input of the direct path, when it applies.
    direct: Option<DirectInput>,
    /// The broadcast path, when it applies (its packed weights are `packed`).
    broadcast: Option<Broadcast>,
    /// The Winograd route, when it applies (its transformed weights are `packed`).
    winograd: Option<Winograd>,
}

impl Forward<'_> {
    /// The packed `W_g` of group `g`.
    fn weights(&self, g: usize) -> PackedA<'_> {
        let data = &self.packed[g * self.per_group..(g + 1) * self.per_group];
        PackedA::packed(self.plan.kernel, data, self.plan.cout_g, self.kb)
    }

    /// One image: `x` is `[cin, h, w]`, `y` is `[cout, out_h, out_w]`; `col` is im2col
    /// scratch for the baseline backend.
    fn image(&self, x: &[f32], y: &mut [f32], col: &mut [f32], par: Par) {
        let p = &self.plan;
        // The direct, broadcast and Winograd kernels add the bias themselves.
        if let Some(wg) = &self.winograd {
            return wg.image(x, self.packed, self.bias, y, col, par);
        }
        if let Some(d) = self.direct {
            return self.image_direct(&d, x, y, col, par);
        }
        if let Some(b) = &self.broadcast {
            return b.image(p.kernel, x, self.packed, self.bias, y, col, par);
        }
        // The bias seeds the output and the product accumulates onto it: one pass, not two.
        let beta = match self.bias {
            Some(bias) => {
                for (row, &b) in y.chunks_mut(p.pixels).zip(bias) {
                    row.fill(b);
                }
                Beta::Accumulate
            }
            None => Beta::Overwrite,
        };
        if self.packed.is_empty() {
            return self.image_baseline(x, y, col, beta, par);
        }
        let nr = p.kernel.nr();
        let rb = Plan::row_block(p.cout_g, p.kernel.mr(), par);
        for_chunks(y, p.cout_g * p.pixels, par, |g, y_g| {
            let x_g = &x[g * p.k_g / p.taps * p.plane..];
            for_chunks(y_g, rb * p.pixels, par, |blk, y_rows| {
                let rows = y_rows.len() / p.pixels;
                let a = self.weights(g).rows(blk * rb, blk * rb + rows);
                let c = MatMut::new(y_rows, rows, p.pixels, p.pixels);
                if p.pointwise {
                    let b = MatRef::new(x_g, p.k_g, p.pixels, p.pixels, 1);
                    let fill = |k0, kc, j0, cols, dst: &mut [f32]| {
                        pack_b(p.kernel, b, k0, kc, j0, cols, nr, dst);
                    };
                    gemm_prepacked(p.kernel, &a, p.pixels, fill, beta, c);
                } else {
                    // Implicit im2col: a panel's rows for channel `ch` are that channel's
                    // kernel taps (blocks hold whole channels), `nr` pixels wide.
                    let fill = |k0: usize, kc: usize, j0: usize, cols: usize, dst: &mut [f32]| {
                        let (c0, channels) = (k0 / p.taps, kc / p.taps);
                        let planes = &x_g[c0 * p.plane..(c0 + channels) * p.plane];
                        self.taps
                            .pack_rows(p.kernel, planes, channels, j0, cols, dst, nr);
                    };
                    gemm_prepacked(p.kernel, &a, p.pixels, fill, beta, c);
                }
            });
        });
    }

    /// The direct path: copy the image into `buf` as the kernel reads it, then one kernel
    /// call per block of output channels (blocks split across threads in `Split` mode).
    fn image_direct(&self, d: &DirectInput, x: &[f32], y: &mut [f32], buf: &mut [f32], par: Par) {
        let p = &self.plan;
        let kern = p.kernel;
        let cob = kern
            .direct_channels()
            .expect("direct path needs a SIMD level");
        let buf = &mut buf[..d.buf_len(1)];
        d.fill(kern, x, buf, par);
        let buf: &[f32] = buf;
        let v = d.view(kern.nr());
        let wk = p.k_all;
        let weight = if d.is_shifted() {
            self.packed
        } else {
            self.weight
        };
        for_chunks(y, cob * p.pixels, par, |blk, y_rows| {
            let co0 = blk * cob;
            let rows = y_rows.len() / p.pixels;
            let w = &weight[co0 * wk..(co0 + rows) * wk];
            let bias = self.bias.map(|b| &b[co0..co0 + rows]);
            kern.direct_rows(
                buf,
                v.xs,
                v.xw,
                v.dims,
                [0, v.out_h],
                v.vert,
                w,
                bias,
                rows,
                y_rows,
                p.pixels,
                v.out_w,
                v.pair,
            );
        });
    }

    /// The baseline backend: im2col tiles, then `matrixmultiply` per tile and group.
    fn image_baseline(&self, x: &[f32], y: &mut [f32], col: &mut [f32], beta: Beta, par: Par) {
        let p = &self.plan;
        if p.pointwise {
            self.gemm_tile(x, p.pixels, (0, p.pixels), y, beta, par);
            return;
        }
        for (t0, t1) in p.tiles() {
            let len = t1 - t0;
            let col = &mut col[..p.k_all * len];
            for_chunks(col, p.taps * len, par, |c, rows| {
                self.taps
                    .im2col(&x[c * p.plane..(c + 1) * p.plane], t0, t1, rows);
            });
            self.gemm_tile(col, len, (t0, t1), y, beta, par);
        }
    }

    /// `Y_g[:, t0..t1] (+)= W_g x B_g` for every group, where `b` holds the `k_all` column rows
    /// (row stride `b_rs`) of the tile's pixels.
    fn gemm_tile(
        &self,
        b: &[f32],
        b_rs: usize,
        (t0, t1): (usize, usize),
        y: &mut [f32],
        beta: Beta,
        par: Par,
    ) {
        let p = &self.plan;
        let len = t1 - t0;
        let rb = Plan::row_block(p.cout_g, 1, par);
        for_chunks(y, p.cout_g * p.pixels, par, |g, y_g| {
            let b_g = MatRef::new(&b[g * p.k_g * b_rs..], p.k_g, len, b_rs, 1);
            for_chunks(y_g, rb * p.pixels, par, |blk, y_rows| {
                let rows = y_rows.len() / p.pixels;
                let r0 = g * p.cout_g + blk * rb;
                let w = MatRef::new(&self.weight[r0 * p.k_g..], rows, p.k_g, p.k_g, 1);
                gemm(
                    p.kernel,
                    w,
                    b_g,
                    beta,
                    MatMut::new(&mut y_rows[t0..], rows, len, p.pixels),
                );
            });
        });
    }
}
