//! How a convolution's work is cut: derived sizes, pixel tiles, batch chunks and the fixed
//! batch blocks of the weight-gradient reduction.
//!
//! Everything that decides an order of floating-point additions (pixel tiles, weight blocks)
//! depends on the shape alone. The thread count only decides which task runs where, and which
//! of two equivalent loop nests runs (whole images per thread, or one image split across
//! threads), never what is summed in which order.

use crate::Conv2dShape;
use crate::kernels::Kernel;
use crate::workspace::Slot;
use rayon::prelude::*;

/// Target elements of one column tile (`cin * kh * kw` rows by tile pixels), 1 MiB: written by
/// im2col and read back by the GEMM's packing while still in the per-core L2, and it bounds
/// per-task scratch for large images.
const COL_TILE_FLOATS: usize = 1 << 18;

/// Tiles are a multiple of this many pixels, so that only an image's last tile has a ragged
/// edge for the GEMM's register blocks.
const TILE_ALIGN: usize = 64;

/// Batch blocks the weight gradient is reduced over: enough to feed a few cores, few enough that
/// the partial gradients stay small.
const WEIGHT_BLOCKS: usize = 4;

/// Sizes derived from a validated shape.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    /// Output channels per group.
    pub(crate) cout_g: usize,
    /// Kernel taps per channel, `kh * kw`.
    pub(crate) taps: usize,
    /// Column rows per group, `cin_g * kh * kw` (the GEMM depth of forward).
    pub(crate) k_g: usize,
    /// Column rows of all groups, `cin * kh * kw`.
    pub(crate) k_all: usize,
    /// Input channels.
    pub(crate) cin: usize,
    /// Input plane, `h * w`.
    pub(crate) plane: usize,
    /// Output pixels per channel, `out_h * out_w`.
    pub(crate) pixels: usize,
    /// One input image, `cin * h * w`.
    pub(crate) in_img: usize,
    /// One output image, `cout * out_h * out_w`.
    pub(crate) out_img: usize,
    /// 1x1 kernel, stride 1, no padding: the input image is its own column matrix.
    pub(crate) pointwise: bool,
    /// Output pixels per column tile.
    pub(crate) tile: usize,
    /// The micro-kernels of the calling thread's instruction-set level, chosen once per call
    /// so that every task of the call uses the same ones.
    pub(crate) kernel: Kernel,
}

impl Plan {
    pub(crate) fn new(s: &Conv2dShape) -> Self {
        let groups = s.params.groups;
        let taps = s.kh * s.kw;
        let k_all = s.cin * taps;
        let pixels = s.out_h() * s.out_w();
        let pointwise =
            s.kh == 1 && s.kw == 1 && s.params.stride == [1, 1] && s.params.padding == [0, 0];
        let tile = if pointwise {
            pixels
        } else {
            let aligned = (COL_TILE_FLOATS / k_all) / TILE_ALIGN * TILE_ALIGN;
            aligned.max(TILE_ALIGN).min(pixels)
        };
        Self {
            cout_g: s.cout / groups,
            taps,
            k_g: k_all / groups,
            k_all,
            cin: s.cin,
            plane: s.h * s.w,
            pixels,
            in_img: s.cin * s.h * s.w,
            out_img: s.cout * pixels,
            pointwise,
            tile,
            kernel: Kernel::current(),
        }
    }

    /// Column scratch one task needs (none for pointwise convolutions).
    pub(crate) fn col_len(&self) -> usize {
        if self.pointwise {
            0
        } else {
            self.k_all * self.tile
        }
    }

    /// The pixel tiles `t0..t1` of one image, in order.
    pub(crate) fn tiles(&self) -> impl Iterator<Item = (usize, usize)> {
        let (pixels, tile) = (self.pixels, self.tile);
        (0..pixels)
            .step_by(tile)
            .map(move |t0| (t0, (t0 + tile).min(pixels)))
    }

    /// Images per batch block of the weight gradient (depends on the batch size only).
    pub(crate) fn weight_block_images(n: usize) -> usize {
        n.div_ceil(WEIGHT_BLOCKS)
    }

    /// Rows per GEMM task when one image's output rows are split across `threads`: whole
    /// register tiles of `mr` rows, so that packed weights split at panel boundaries.
    pub(crate) fn row_block(rows: usize, mr: usize, par: Par) -> usize {
        match par {
            Par::Seq => rows.max(1),
            // One block per thread: each block repacks the shared operand, so fewer is better.
            Par::Split(threads) => rows
                .div_ceil(threads)
                .max(8)
                .next_multiple_of(mr.max(1))
                .min(rows)
                .max(1),
        }
    }
}

/// Whether one image's work is split across threads, and over how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Par {
    /// One task does the whole image.
    Seq,
    /// Split into tasks for this many threads.
    Split(usize),
}

/// Whether `tasks` independent units (images, blocks) keep `threads` threads busy without a
/// long tail; otherwise each unit is split across the threads instead.
pub(crate) fn enough_tasks(tasks: usize, threads: usize) -> bool {
    tasks >= threads && (tasks.is_multiple_of(threads) || tasks >= 2 * threads)
}

/// Scratch slots a per-image pass needs for `n` images on `threads` threads: one per task of
/// whole images, or one when each image is split across the threads (see [`for_images`]).
pub(crate) fn image_slots(n: usize, threads: usize) -> usize {
    if enough_tasks(n, threads) {
        n.div_ceil(n.div_ceil(threads))
    } else {
        1
    }
}

/// Scratch slots a pass over `n` images in groups of `group` needs: [`image_slots`] of the
/// groups, which [`for_images`] then runs as its units (a short last group counting as one).
pub(crate) fn group_slots(n: usize, group: usize) -> usize {
    image_slots(n.div_ceil(group), rayon::current_num_threads())
}

/// Runs `f(src_img, dst_img, scratch, par)` on every image of `src` (`src_img` floats each) and
/// `dst` (`dst_img` floats each). With enough images, tasks of whole images run in parallel,
/// one slot of [`image_slots`] each, and `f` runs `Par::Seq`; otherwise images run one after
/// the other with slot 0, and `f` splits each one over the threads (`Par::Split`).
pub(crate) fn for_images<F>(
    dst: &mut [f32],
    dst_img: usize,
    src: &[f32],
    src_img: usize,
    slots: &mut [Slot],
    f: F,
) where
    F: Fn(&[f32], &mut [f32], &mut [f32], Par) + Sync,
{
    let threads = rayon::current_num_threads();
    // A short last image (a ragged group of images) counts as one.
    let n = dst.len().div_ceil(dst_img.max(1));
    if enough_tasks(n, threads) {
        let per = n.div_ceil(threads);
        dst.par_chunks_mut(per * dst_img)
            .zip(src.par_chunks(per * src_img))
            .zip(slots.par_iter_mut())
            .for_each(|((d, s), slot)| {
                for (d_img, s_img) in d.chunks_mut(dst_img).zip(s.chunks(src_img)) {
                    f(s_img, d_img, &mut slot.col, Par::Seq);
                }
            });
    } else {
        let col = &mut slots[0].col;
        for (d_img, s_img) in dst.chunks_mut(dst_img).zip(src.chunks(src_img)) {
            f(s_img, d_img, col, Par::Split(threads));
        }
    }
}

/// Runs `f(index, chunk)` on consecutive `chunk_len`-element chunks of `data`, in parallel
/// when `par` splits and one after the other otherwise.
pub(crate) fn for_chunks<F>(data: &mut [f32], chunk_len: usize, par: Par, f: F)
where
    F: Fn(usize, &mut [f32]) + Sync + Send,
{
    match par {
        Par::Seq => data
            .chunks_mut(chunk_len.max(1))
            .enumerate()
            .for_each(|(i, c)| f(i, c)),
        Par::Split(_) => data
            .par_chunks_mut(chunk_len.max(1))
            .enumerate()
            .for_each(|(i, c)| f(i, c)),
    }
}

/// Runs `f(index, a_chunk, b_chunk)` on consecutive chunks of `a` (`a_len` floats) and `b`
/// (`b_len` floats) taken in pairs, in parallel when `par` splits (as [`for_chunks`]).
pub(crate) fn for_chunk_pairs<F>(
    a: &mut [f32],
    a_len: usize,
    b: &mut [f32],
    b_len: usize,
    par: Par,
    f: F,
) where
    F: Fn(usize, &mut [f32], &mut [f32]) + Sync + Send,
{
    match par {
        Par::Seq => a
            .chunks_mut(a_len.max(1))
            .zip(b.chunks_mut(b_len.max(1)))
            .enumerate()
            .for_each(|(i, (x, y))| f(i, x, y)),
        Par::Split(_) => a
            .par_chunks_mut(a_len.max(1))
            .zip(b.par_chunks_mut(b_len.max(1)))
            .enumerate()
            .for_each(|(i, (x, y))| f(i, x, y)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Conv2dParams;

    #[test]
    fn tiles_cover_the_pixels_in_order() {
        let s = Conv2dShape::new([1, 64, 40, 40], [4, 64, 3, 3], Conv2dParams::default()).unwrap();
        let plan = Plan::new(&s);
        assert!(plan.tile < plan.pixels);
        let tiles: Vec<_> = plan.tiles().collect();
        assert_eq!(tiles[0].0, 0);
        assert_eq!(tiles.last().unwrap().1, plan.pixels);
        assert!(tiles.windows(2).all(|w| w[0].1 == w[1].0));
        assert!(plan.col_len() <= COL_TILE_FLOATS);
        assert!(
            tiles
                .iter()
                .rev()
                .skip(1)
                .all(|(t0, t1)| (t1 - t0) % TILE_ALIGN == 0)
        );
    }

    #[test]
    fn pointwise_needs_no_columns() {
        let s = Conv2dShape::new([2, 8, 5, 5], [4, 8, 1, 1], Conv2dParams::default()).unwrap();
        let plan = Plan::new(&s);
        assert!(plan.pointwise);
        assert_eq!(plan.col_len(), 0);
        let strided = Conv2dShape::new(
            [2, 8, 5, 5],
            [4, 8, 1, 1],
            Conv2dParams::default().with_stride(2),
        );
        assert!(!Plan::new(&strided.unwrap()).pointwise);
    }
}
