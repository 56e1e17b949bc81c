//! Backward-data (input gradient) by GEMM + col2im: per image, pixel tile and group,
//! `col_g = W_g^T x dY_g`, then the columns are scatter-added into `dX`. Stride-1 layers with
//! enough input channels run instead as the forward convolution of `dY` by the rotated,
//! transposed weights (see [`Rotated`]): no column matrix, no scatter.

use crate::direct::Padded;
use crate::forward::runs_direct;
use crate::gemm::{Backend, Beta, KBlocks, MatMut, MatRef, PackedA, gemm, gemm_prepacked, pack_b};
use crate::im2col::Taps;
use crate::lane_grad::{self, LaneGrad};
use crate::params::assert_len;
use crate::plan::{Par, Plan, enough_tasks, for_chunks, for_images, image_slots};
use crate::scatter::Scatter;
use crate::{Conv2dParams, conv2d_forward};
use crate::{Conv2dShape, ConvWorkspace};

/// Input gradient of a convolution: `grad_input = d(sum(output * grad_output)) / d input`,
/// overwriting `grad_input`.
///
/// `grad_output` is `[n, cout, out_h, out_w]`, `weight` `[cout, cin/groups, kh, kw]` and
/// `grad_input` `[n, cin, h, w]`. The result does not depend on the rayon thread count: every
/// element of `grad_input` receives its contributions in the same order (pixel tile, then
/// kernel tap, then output pixel).
///
/// # Panics
/// If a slice length disagrees with `shape`, or `shape` was edited into one
/// [`Conv2dShape::new`] rejects.
pub fn conv2d_backward_data(
    shape: &Conv2dShape,
    grad_output: &[f32],
    weight: &[f32],
    grad_input: &mut [f32],
    ws: &mut ConvWorkspace,
) {
    const OP: &str = "conv2d_backward_data";
    shape.assert_valid(OP);
    assert_len(OP, "grad_output", grad_output.len(), shape.output_len());
    assert_len(OP, "weight", weight.len(), shape.weight_len());
    assert_len(OP, "grad_input", grad_input.len(), shape.input_len());
    let baseline = Backend::selected() == Backend::MatrixMultiply;
    let plan = Plan::new(shape);
    if !baseline && LaneGrad::applies(shape, &plan) {
        return lane_grad::run(shape, &plan, grad_output, weight, grad_input, ws);
    }
    if !baseline && let Some(rotated) = Rotated::of(shape) {
        return rotated.run(shape, grad_output, weight, grad_input, ws);
    }
    if !baseline && Scatter::applies(shape, &plan) {
        return scatter(shape, &plan, grad_output, weight, grad_input, ws);
    }
    let groups = shape.params.groups;
    let kern = plan.kernel;
    let per_group = PackedA::len(kern, plan.k_g, plan.cout_g);
    let slot_count = image_slots(shape.n, rayon::current_num_threads());
    let packed_len = if baseline { 0 } else { groups * per_group };
    let (packed, slots) = ws.packed_and_slots(packed_len, slot_count, plan.col_len(), 0);
    // `W_g^T` packed once here, into the workspace, shared read-only by every task: views
    // are rebuilt per group from these floats, so a call allocates nothing.
    let kb = KBlocks::new(plan.cout_g, 1);
    if !baseline {
        for (g, dst) in packed.chunks_exact_mut(per_group).enumerate() {
            let a = weight_t(weight, &plan, g, 0, plan.k_g);
            PackedA::pack(kern, a, kb, dst);
        }
    }
    let packed: &[f32] = packed;
    let bwd = BackwardData {
        plan,
        taps: Taps::new(shape),
        weight,
        packed,
        per_group,
        kb,
    };
    for_images(
        grad_input,
        plan.in_img,
        grad_output,
        plan.out_img,
        slots,
        |dy, dx, col, par| {
            bwd.image(dy, dx, col, par);
        },
    );
}

/// Backward-data by scatter (see [`Scatter`]): weights packed once into the workspace, then
/// image by image.
fn scatter(
    shape: &Conv2dShape,
    plan: &Plan,
    grad_output: &[f32],
    weight: &[f32],
    grad_input: &mut [f32],
    ws: &mut ConvWorkspace,
) {
    let threads = rayon::current_num_threads();
    let sc = Scatter::new(shape, plan, !enough_tasks(shape.n, threads));
    let slot_count = image_slots(shape.n, threads);
    let (packed, slots) = ws.packed_and_slots(sc.packed_len(), slot_count, sc.buf_len(), 0);
    sc.pack(weight, packed);
    let packed: &[f32] = packed;
    let kern = plan.kernel;
    for_images(
        grad_input,
        plan.in_img,
        grad_output,
        plan.out_img,
        slots,
        |dy, dx, buf, par| sc.image(kern, dy, packed, dx, buf, par),
    );
}

/// Backward-data of a stride-1 convolution as a forward convolution:
/// `dX = conv2d(dY, W', padding = dilation * (k - 1) - padding)`, where `W'[g, ci, co, i, j] =
/// W[g, co, ci, kh-1-i, kw-1-j]` (each group's weights transposed between in- and out-channels
/// and rotated by 180 degrees). The forward implicit GEMM packs its panels straight from `dY`,
/// so this skips the column matrix and the scatter-add of col2im, which cost the GEMM route
/// 10-20% on the large 3x3 layers.
///
/// It applies when the stride is 1 on both axes, the padding is at most the dilated kernel's
/// reach (so the new padding is not negative), the kernel is not 1x1 (whose GEMM route needs
/// no columns anyway), and the forward pass it becomes is fast: the input channels become
/// that pass's output channels, so there must be enough of them to fill its register tiles
/// ([`Rotated::MIN_CHANNELS`] for the implicit GEMM, whose `dY` panels are packed once for
/// all of them; at 32, `mnist.c2`, the GEMM route is still faster), or the forward runs on
/// a direct kernel (full-width rows or the broadcast kernel, see
/// [`runs_direct`]) with at least [`Rotated::MIN_DIRECT_CHANNELS`] (`resnet20`'s
/// 16-channel layers: 3x faster than col2im), or on the row kernel with at least
/// [`Rotated::MIN_ROW_CHANNELS`].
pub(crate) struct Rotated {
    shape: Conv2dShape,
}

impl Rotated {
    /// Fewest input channels per group for which the rotated implicit GEMM beats GEMM +
    /// col2im.
    pub(crate) const MIN_CHANNELS: usize = 64;
    /// Fewest input channels for which the rotated direct forward beats GEMM + col2im (below
    /// it the direct kernels' tiles run mostly empty, as for `cifar.stem`).
    pub(crate) const MIN_DIRECT_CHANNELS: usize = 16;
    /// Fewest input channels for which the rotated forward on the row kernel still beats GEMM
    /// + col2im (its tile is 8 channels at AVX-512: `lenet.c2`, 6 channels, 1.25x).
    pub(crate) const MIN_ROW_CHANNELS: usize = 6;

    /// The forward convolution computing `shape`'s backward-data, where it applies.
    pub(crate) fn of(shape: &Conv2dShape) -> Option<Self> {
        let p = &shape.params;
        let cin_g = shape.cin / p.groups;
        let reach = |k: usize, d: usize| d * (k - 1);
        if p.stride != [1, 1]
            || (shape.kh == 1 && shape.kw == 1)
            || cin_g < Self::MIN_ROW_CHANNELS
            || p.padding[0] > reach(shape.kh, p.dilation[0])
            || p.padding[1] > reach(shape.kw, p.dilation[1])
        {
            return None;
        }
        let params = Conv2dParams {
            stride: [1, 1],
            padding: [
                reach(shape.kh, p.dilation[0]) - p.padding[0],
                reach(shape.kw, p.dilation[1]) - p.padding[1],
            ],
            dilation: p.dilation,
            groups: p.groups,
        };
        let forward = Conv2dShape::new(
            [shape.n, shape.cout, shape.out_h(), shape.out_w()],
            [shape.cin, shape.cout / p.groups, shape.kh, shape.kw],
            params,
        )
        .ok()?;
        // Stride 1 maps the output size back onto the input size exactly.
        debug_assert_eq!([forward.out_h(), forward.out_w()], [shape.h, shape.w]);
        let fast = cin_g >= Self::MIN_CHANNELS
            || (cin_g >= Self::MIN_DIRECT_CHANNELS && runs_direct(&forward))
            || (cin_g >= Self::MIN_ROW_CHANNELS && Padded::applies(&forward, &Plan::new(&forward)));
        fast.then_some(Self { shape: forward })
    }

    /// Rotates `weight` into the workspace and runs the forward convolution into `grad_input`.
    fn run(
        &self,
        shape: &Conv2dShape,
        grad_output: &[f32],
        weight: &[f32],
        grad_input: &mut [f32],
        ws: &mut ConvWorkspace,
    ) {
        // Taken out of the workspace for the call (a move, not an allocation) so the forward
        // pass can borrow the rest of it.
        let mut rotated = std::mem::take(&mut ws.flipped);
        rotated.grow(shape.weight_len());
        let rotated_w = &mut rotated[..shape.weight_len()];
        let groups = shape.params.groups;
        let (cin_g, cout_g) = (shape.cin / groups, shape.cout / groups);
        let taps = shape.kh * shape.kw;
        // Large weights rotate in parallel: a single image's backward-data otherwise waits on
        // this copy with every other thread idle.
        let threads = rayon::current_num_threads();
        let par = if rotated_w.len() >= PARALLEL_ROTATION && threads > 1 {
            Par::Split(threads)
        } else {
            Par::Seq
        };
        // One row of the rotated weights per (group, input channel): its output channels'
        // planes, each reversed (a 180-degree rotation of a row-major kh x kw plane).
        for_chunks(rotated_w, cout_g * taps, par, |r, dst| {
            let (g, ci) = (r / cin_g, r % cin_g);
            for (co, plane) in dst.chunks_exact_mut(taps).enumerate() {
                let src = &weight[((g * cout_g + co) * cin_g + ci) * taps..][..taps];
                for (d, s) in plane.iter_mut().zip(src.iter().rev()) {
                    *d = *s;
                }
            }
        });
        conv2d_forward(&self.shape, grad_output, rotated_w, None, grad_input, ws);
        ws.flipped = rotated;
    }
}

/// Weights (floats) from which the rotation for the rotated forward runs in parallel.
const PARALLEL_ROTATION: usize = 1 << 14;

/// What every task of one backward-data call shares.
struct BackwardData<'a> {
    plan: Plan,
    taps: Taps,
    weight: &'a [f32],
    /// `W_g^T` packed for the micro-kernel, group after group, `per_group` floats each
    /// (empty on the baseline backend).
    packed: &'a [f32],
    /// Floats of one group's packed `W_g^T`.
    per_group: usize,
    /// How the packed `W_g^T`'s depth is cut.
    kb: KBlocks,
}

/// Rows `r0..r0 + rows` of `W_g^T` (`[cin/g*kh*kw, cout/g]`), read in place from the OIHW
/// weight: element `(i, j)` is `W[g * cout/g + j, r0 + i]`.
fn weight_t<'a>(weight: &'a [f32], p: &Plan, g: usize, r0: usize, rows: usize) -> MatRef<'a> {
    let at = g * p.cout_g * p.k_g + r0;
    MatRef::new(&weight[at..], rows, p.cout_g, 1, p.k_g)
}

impl BackwardData<'_> {
    /// The packed `W_g^T` of group `g`.
    fn weights_t(&self, g: usize) -> PackedA<'_> {
        let data = &self.packed[g * self.per_group..(g + 1) * self.per_group];
        PackedA::packed(self.plan.kernel, data, self.plan.k_g, self.kb)
    }

    /// One image: `dy` is `[cout, out_h, out_w]`, `dx` is `[cin, h, w]`.
    fn image(&self, dy: &[f32], dx: &mut [f32], col: &mut [f32], par: Par) {
        let p = &self.plan;
        if p.pointwise {
            // The input gradient is its own column matrix: one GEMM per group, no scatter.
            self.gemm_tile(dy, (0, p.pixels), dx, p.pixels, par);
            return;
        }
        dx.fill(0.0);
        for (t0, t1) in p.tiles() {
            let len = t1 - t0;
            let col = &mut col[..p.k_all * len];
            self.gemm_tile(dy, (t0, t1), col, len, par);
            let col: &[f32] = col;
            for_chunks(dx, p.plane, par, |c, plane| {
                let rows = &col[c * p.taps * len..(c + 1) * p.taps * len];
                self.taps.col2im(rows, t0, t1, plane);
            });
        }
    }

    /// `C_g = W_g^T x dY_g[:, t0..t1]` for every group, overwriting `c`, which holds the
    /// `k_all` rows (row stride `c_rs`) of the tile.
    fn gemm_tile(
        &self,
        dy: &[f32],
        (t0, t1): (usize, usize),
        c: &mut [f32],
        c_rs: usize,
        par: Par,
    ) {
        let p = &self.plan;
        let len = t1 - t0;
        let packed = !self.packed.is_empty();
        let mr = if packed { p.kernel.mr() } else { 1 };
        let nr = p.kernel.nr();
        let rb = Plan::row_block(p.k_g, mr, par);
        for_chunks(c, p.k_g * c_rs, par, |g, c_g| {
            let dy_g = MatRef::new(
                &dy[g * p.cout_g * p.pixels + t0..],
                p.cout_g,
                len,
                p.pixels,
                1,
            );
            for_chunks(c_g, rb * c_rs, par, |blk, c_rows| {
                let rows = c_rows.len() / c_rs;
                let c = MatMut::new(c_rows, rows, len, c_rs);
                if packed {
                    let a = self.weights_t(g).rows(blk * rb, blk * rb + rows);
                    let fill = |k0, kc, j0, cols, dst: &mut [f32]| {
                        pack_b(p.kernel, dy_g, k0, kc, j0, cols, nr, dst);
                    };
                    gemm_prepacked(p.kernel, &a, len, fill, Beta::Overwrite, c);
                } else {
                    let w_t = weight_t(self.weight, p, g, blk * rb, rows);
                    gemm(p.kernel, w_t, dy_g, Beta::Overwrite, c);
                }
            });
        });
    }
}
