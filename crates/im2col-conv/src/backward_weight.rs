//! Backward-weight (weight and bias gradients): `dW_g += dY_g x col_g^T` over the batch, reduced
//! in a fixed order so the result does not depend on the thread count.
//!
//! The batch is cut into blocks whose size depends on the batch size alone. Each block's
//! gradient is accumulated image by image and tile by tile (GEMM with `beta = 1`), then the
//! blocks are added in block order: `dW = ((P0 + P1) + P2) + ...`. Blocks run in parallel when
//! there are enough of them; otherwise they run one after the other, each split across the
//! threads by output-channel rows, which changes no sum.

use crate::broadcast_weight::BroadcastGrad;
use crate::direct::{DirectInput, Padded};
use crate::gemm::{Backend, Beta, MatMut, MatRef, PackedA, gemm_sized};
use crate::im2col::Taps;
use crate::params::assert_len;
use crate::plan::{Par, Plan, enough_tasks, for_chunks};
use crate::winograd::Winograd;
use crate::{Conv2dShape, ConvWorkspace};
use rayon::prelude::*;

/// Elements per task when partial gradients are added together.
const REDUCE_CHUNK: usize = 1 << 14;

/// Weight gradient (and optionally bias gradient) of a convolution:
/// `grad_weight = d(sum(output * grad_output)) / d weight`, `grad_bias[co] = sum over n, oh, ow
/// of grad_output[n, co, oh, ow]`, overwriting both.
///
/// `input` is `[n, cin, h, w]`, `grad_output` `[n, cout, out_h, out_w]`, `grad_weight`
/// `[cout, cin/groups, kh, kw]`, `grad_bias` `[cout]`. The bias sums run in `f64`. Results are
/// bit-identical whatever the rayon thread count.
///
/// # Panics
/// If a slice length disagrees with `shape`, or `shape` was edited into one
/// [`Conv2dShape::new`] rejects.
pub fn conv2d_backward_weight(
    shape: &Conv2dShape,
    input: &[f32],
    grad_output: &[f32],
    grad_weight: &mut [f32],
    grad_bias: Option<&mut [f32]>,
    ws: &mut ConvWorkspace,
) {
    const OP: &str = "conv2d_backward_weight";
    shape.assert_valid(OP);
    assert_len(OP, "input", input.len(), shape.input_len());
    assert_len(OP, "grad_output", grad_output.len(), shape.output_len());
    assert_len(OP, "grad_weight", grad_weight.len(), shape.weight_len());
    if let Some(gb) = &grad_bias {
        assert_len(OP, "grad_bias", gb.len(), shape.cout);
    }
    let plan = Plan::new(shape);
    let per = Plan::weight_block_images(shape.n);
    let packed = Backend::selected() == Backend::Packed;
    if packed && !Padded::applies_weight_grad(shape, &plan) && BroadcastGrad::applies(shape, &plan)
    {
        let bg = BroadcastGrad::new(shape, &plan);
        broadcast(&bg, &plan, per, input, grad_output, grad_weight, ws);
        if let Some(gb) = grad_bias {
            bias_grad(&plan, grad_output, gb);
        }
        return;
    }
    let winograd = (packed && Winograd::applies_weight_grad(shape, &plan))
        .then(|| Winograd::new(shape, &plan));
    let direct = (packed && winograd.is_none() && Padded::applies_weight_grad(shape, &plan))
        .then(|| DirectInput::for_weight_grad(shape, &plan));
    let col_len = match (&winograd, direct) {
        (Some(wg), _) => wg.grad_buf_len(),
        (None, Some(d)) => d.buf_len(per),
        (None, None) => plan.col_len(),
    };
    let bwd = BackwardWeight {
        plan,
        taps: Taps::new(shape),
        direct,
        winograd,
    };
    let blocks = shape.n.div_ceil(per);
    let w_len = grad_weight.len();
    let threads = rayon::current_num_threads();
    if threads > 1 && blocks > 1 && enough_tasks(blocks, threads) {
        let slots = ws.slots(blocks, col_len, w_len);
        slots
            .par_iter_mut()
            .zip(input.par_chunks(per * plan.in_img))
            .zip(grad_output.par_chunks(per * plan.out_img))
            .for_each(|((slot, x), dy)| {
                bwd.block(x, dy, &mut slot.partial[..w_len], &mut slot.col, Par::Seq);
            });
        let (first, rest) = slots.split_first().expect("at least two blocks");
        grad_weight.copy_from_slice(&first.partial[..w_len]);
        for slot in rest {
            add_into(grad_weight, &slot.partial[..w_len]);
        }
    } else {
        let par = if threads > 1 {
            Par::Split(threads)
        } else {
            Par::Seq
        };
        let partial_len = if blocks > 1 { w_len } else { 0 };
        let slot = &mut ws.slots(1, col_len, partial_len)[0];
        let x_blocks = input.chunks(per * plan.in_img);
        let dy_blocks = grad_output.chunks(per * plan.out_img);
        for (b, (x, dy)) in x_blocks.zip(dy_blocks).enumerate() {
            if b == 0 {
                bwd.block(x, dy, grad_weight, &mut slot.col, par);
            } else {
                let partial = &mut slot.partial[..w_len];
                bwd.block(x, dy, partial, &mut slot.col, par);
                add_into(grad_weight, partial);
            }
        }
    }
    if let Some(gb) = grad_bias {
        bias_grad(&plan, grad_output, gb);
    }
}

/// The weight gradient on the broadcast kernel, with the batch cut and reduced as on the GEMM
/// path: blocks of `per` images, each summed from zero, added in block order.
fn broadcast(
    bg: &BroadcastGrad,
    plan: &Plan,
    per: usize,
    input: &[f32],
    grad_output: &[f32],
    grad_weight: &mut [f32],
    ws: &mut ConvWorkspace,
) {
    let kern = plan.kernel;
    let blocks = input.len().div_ceil(per * plan.in_img);
    let len = bg.grad_len();
    let threads = rayon::current_num_threads();
    let x_blocks = input.par_chunks(per * plan.in_img);
    let dy_blocks = grad_output.par_chunks(per * plan.out_img);
    if threads > 1 && blocks > 1 && enough_tasks(blocks, threads) {
        let slots = ws.slots(blocks, bg.buf_len(), len);
        slots
            .par_iter_mut()
            .zip(x_blocks)
            .zip(dy_blocks)
            .for_each(|((slot, x), dy)| {
                bg.block(
                    kern,
                    x,
                    dy,
                    &mut slot.partial[..len],
                    &mut slot.col,
                    Par::Seq,
                );
            });
        let (first, rest) = slots.split_first_mut().expect("at least two blocks");
        for slot in rest {
            add_into(&mut first.partial[..len], &slot.partial[..len]);
        }
        bg.unpack(&first.partial[..len], grad_weight);
    } else {
        let par = if threads > 1 {
            Par::Split(threads)
        } else {
            Par::Seq
        };
        let slot = &mut ws.slots(1, bg.buf_len(), 2 * len)[0];
        let (acc, part) = slot.partial[..2 * len].split_at_mut(len);
        let x_blocks = input.chunks(per * plan.in_img);
        let dy_blocks = grad_output.chunks(per * plan.out_img);
        for (b, (x, dy)) in x_blocks.zip(dy_blocks).enumerate() {
            if b == 0 {
                bg.block(kern, x, dy, acc, &mut slot.col, par);
            } else {
                bg.block(kern, x, dy, part, &mut slot.col, par);
                add_into(acc, part);
            }
        }
        bg.unpack(acc, grad_weight);
    }
}

/// `acc += x`, elementwise (each element's sum is independent of how the work is split).
fn add_into(acc: &mut [f32], x: &[f32]) {
    acc.par_chunks_mut(REDUCE_CHUNK)
        .zip(x.par_chunks(REDUCE_CHUNK))
        .for_each(|(a, x)| a.iter_mut().zip(x).for_each(|(a, x)| *a += *x));
}

/// `grad_bias[co] = sum over images and pixels of grad_output[.., co, ..]`, in `f64` with eight
/// fixed lanes per row (vectorisable, and the order is fixed).
fn bias_grad(plan: &Plan, grad_output: &[f32], grad_bias: &mut [f32]) {
    let (pixels, out_img) = (plan.pixels, plan.out_img);
    grad_bias.par_iter_mut().enumerate().for_each(|(co, gb)| {
        let mut total = 0.0f64;
        for img in grad_output.chunks(out_img) {
            let row = &img[co * pixels..(co + 1) * pixels];
            let mut lanes = [0.0f64; 8];
            let chunks = row.chunks_exact(8);
            let tail: f64 = chunks.remainder().iter().map(|&v| f64::from(v)).sum();
            for c in chunks {
                for (l, &v) in lanes.iter_mut().zip(c) {
                    *l += f64::from(v);
                }
            }
            total += lanes.iter().sum::<f64>() + tail;
        }
        *gb = total as f32;
    });
}

/// What every task of one backward-weight call shares.
struct BackwardWeight {
    plan: Plan,
    taps: Taps,
    /// The direct kernel's input when it runs this convolution.
    direct: Option<DirectInput>,
    /// The Winograd route, when it runs this convolution.
    winograd: Option<Winograd>,
}

impl BackwardWeight {
    /// The weight gradient of a block of images into `dw` (overwritten): `x` is
    /// `[images, cin, h, w]`, `dy` is `[images, cout, out_h, out_w]`.
    fn block(&self, x: &[f32], dy: &[f32], dw: &mut [f32], col: &mut [f32], par: Par) {
        let p = &self.plan;
        if let Some(wg) = &self.winograd {
            return wg.weight_grad(x, dy, dw, col, par);
        }
        if let Some(d) = self.direct {
            return self.block_direct(&d, x, dy, dw, col, par);
        }
        let mut beta = Beta::Overwrite;
        for (x_img, dy_img) in x.chunks(p.in_img).zip(dy.chunks(p.out_img)) {
            if p.pointwise {
                self.gemm_tile(x_img, p.pixels, (0, p.pixels), dy_img, dw, beta, par);
                beta = Beta::Accumulate;
                continue;
            }
            for (t0, t1) in p.tiles() {
                let len = t1 - t0;
                let col = &mut col[..p.k_all * len];
                // Whole channels per task: one pass over each tap's geometry per task.
                let per = match par {
                    Par::Seq => p.cin,
                    Par::Split(threads) => p.cin.div_ceil(threads),
                };
                for_chunks(col, per * p.taps * len, par, |i, rows| {
                    let channels = rows.len() / (p.taps * len);
                    let x = &x_img[i * per * p.plane..(i * per + channels) * p.plane];
                    self.taps
                        .pack_rows(p.kernel, x, channels, t0, len, rows, len);
                });
                self.gemm_tile(col, len, (t0, t1), dy_img, dw, beta, par);
                beta = Beta::Accumulate;
            }
        }
    }

    /// The direct path: pad the block's images into `buf`, then each block of output
    /// channels sums over the whole batch block in registers (blocks split across threads in
    /// `Split` mode; each element's order is the same either way).
    fn block_direct(
        &self,
        d: &DirectInput,
        x: &[f32],
        dy: &[f32],
        dw: &mut [f32],
        buf: &mut [f32],
        par: Par,
    ) {
        let p = &self.plan;
        let kern = p.kernel;
        let images = x.len() / p.in_img;
        let buf = &mut buf[..d.buf_len(images)];
        d.fill(kern, x, buf, par);
        let buf: &[f32] = buf;
        let (cob, _) = kern
            .weight_grad_tile(p.cout_g, p.k_all)
            .expect("direct path needs a SIMD level");
        let rows_per = match par {
            Par::Seq => p.cout_g,
            Par::Split(threads) => p.cout_g.div_ceil(threads).next_multiple_of(cob),
        };
        let v = d.view(kern.nr());
        for_chunks(dw, rows_per * p.k_all, par, |blk, dw_rows| {
            let rows = dw_rows.len() / p.k_all;
            kern.direct_weight_grad(
                p.cout_g,
                buf,
                [images, d.image_len(), v.xs, v.xw],
                v.dims,
                &dy[blk * rows_per * p.pixels..],
                [p.out_img, v.out_h, v.out_w],
                rows,
                dw_rows,
            );
            d.restore_grad_order(dw_rows);
        });
    }

    /// `dW_g (+)= dY_g[:, t0..t1] x B_g^T` for every group, where `b` holds the `k_all` column
    /// rows (row stride `b_rs`) of the tile's pixels.
    #[allow(clippy::too_many_arguments)]
    fn gemm_tile(
        &self,
        b: &[f32],
        b_rs: usize,
        (t0, t1): (usize, usize),
        dy: &[f32],
        dw: &mut [f32],
        beta: Beta,
        par: Par,
    ) {
        let p = &self.plan;
        let len = t1 - t0;
        let rb = Plan::row_block(p.cout_g, 1, par);
        // The A panels of the largest tile of this shape (a block of `rb` rows, the full tile
        // length), so each thread's packing buffer grows once per shape, not per tile.
        let a_len = PackedA::len(p.kernel, rb.min(p.cout_g), p.tile.min(p.pixels).max(len));
        for_chunks(dw, p.cout_g * p.k_g, par, |g, dw_g| {
            let b_t = MatRef::new(&b[g * p.k_g * b_rs..], p.k_g, len, b_rs, 1).t();
            for_chunks(dw_g, rb * p.k_g, par, |blk, dw_rows| {
                let rows = dw_rows.len() / p.k_g;
                let r0 = g * p.cout_g + blk * rb;
                let dy_rows = MatRef::new(&dy[r0 * p.pixels + t0..], rows, len, p.pixels, 1);
                gemm_sized(
                    p.kernel,
                    dy_rows,
                    b_t,
                    beta,
                    MatMut::new(dw_rows, rows, p.k_g, p.k_g),
                    a_len,
                );
            });
        });
    }
}
