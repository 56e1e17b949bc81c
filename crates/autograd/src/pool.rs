//! [`BufferPool`]: recycled tensors and index buffers, keyed by exact length.
//!
//! A training loop builds the same graph every step, so every buffer it needs has a length it
//! needed the step before. [`crate::Graph::reset`] hands every node's value, gradient and saved
//! state back here, and the next step's ops take them out again: once warm, a step allocates no
//! tensor storage. Backward also returns each intermediate gradient as soon as it is used, so
//! later gradients of the same length reuse it within the step. Whole [`Tensor`]s are kept
//! (not bare `Vec<f32>`) so that their shape vectors are reused too.

use ganglion_tensor::{Tensor, numel};
use std::collections::HashMap;

/// Shape capacity of every tensor the pool makes. Buffers are keyed by element count alone, so
/// a buffer made for a `[n, k]` value may next hold an `[n, c, h, w]` one; a shape vector with
/// room for this many dimensions never has to grow (allocate) when that happens.
const SHAPE_CAPACITY: usize = 6;

/// Free buffers by element count, and how often a request found none.
#[derive(Debug, Default)]
pub(crate) struct BufferPool {
    f32s: HashMap<usize, Vec<Tensor>>,
    u32s: HashMap<usize, Vec<Vec<u32>>>,
    misses: u64,
}

impl BufferPool {
    /// A tensor of `shape` whose contents are unspecified (the caller overwrites all of it).
    pub(crate) fn take(&mut self, shape: &[usize]) -> Tensor {
        let len = numel(shape);
        match self.f32s.get_mut(&len).and_then(Vec::pop) {
            Some(mut t) => {
                // Same element count, so the new shape always fits.
                t.set_shape(shape)
                    .expect("pool: a pooled tensor has the requested element count");
                t
            }
            None => {
                self.misses += 1;
                fresh(shape)
            }
        }
    }

    /// A tensor of `shape` filled with zeros.
    pub(crate) fn take_zeroed(&mut self, shape: &[usize]) -> Tensor {
        let mut t = self.take(shape);
        t.fill(0.0);
        t
    }

    /// A tensor holding a copy of `src`.
    pub(crate) fn take_copy(&mut self, src: &Tensor) -> Tensor {
        let mut t = self.take(src.shape());
        t.data_mut().copy_from_slice(src.data());
        t
    }

    /// An index buffer of `len` entries whose contents are unspecified.
    pub(crate) fn take_u32(&mut self, len: usize) -> Vec<u32> {
        match self.u32s.get_mut(&len).and_then(Vec::pop) {
            Some(v) => v,
            None => {
                self.misses += 1;
                vec![0; len]
            }
        }
    }

    /// Returns a tensor for later reuse.
    pub(crate) fn give(&mut self, t: Tensor) {
        self.f32s.entry(t.len()).or_default().push(t);
    }

    /// Returns an index buffer for later reuse.
    pub(crate) fn give_u32(&mut self, v: Vec<u32>) {
        self.u32s.entry(v.len()).or_default().push(v);
    }

    /// Requests (since the pool was made) that found no free buffer and allocated.
    pub(crate) fn misses(&self) -> u64 {
        self.misses
    }

    /// Number of free buffers held.
    pub(crate) fn free_buffers(&self) -> usize {
        self.f32s.values().map(Vec::len).sum::<usize>()
            + self.u32s.values().map(Vec::len).sum::<usize>()
    }

    /// `f32` elements held by the free tensors.
    pub(crate) fn free_floats(&self) -> usize {
        self.f32s.values().flatten().map(Tensor::len).sum()
    }

    /// Drops every free buffer (memory goes back to the allocator).
    pub(crate) fn clear(&mut self) {
        self.f32s.clear();
        self.u32s.clear();
    }
}

/// A zero tensor of `shape` whose shape vector has room for [`SHAPE_CAPACITY`] dimensions.
fn fresh(shape: &[usize]) -> Tensor {
    let len = numel(shape);
    let mut roomy = [1usize; SHAPE_CAPACITY];
    roomy[0] = len;
    let mut t = if shape.len() < SHAPE_CAPACITY {
        Tensor::zeros(&roomy)
    } else {
        Tensor::zeros(shape)
    };
    // Same element count, so the shape always fits.
    t.set_shape(shape)
        .expect("pool: a fresh tensor has the requested element count");
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_tensors_have_the_requested_shape_and_zeros() {
        for shape in [&[][..], &[3], &[2, 3], &[2, 0, 4], &[1, 2, 3, 4, 5, 6, 7]] {
            let t = fresh(shape);
            assert_eq!(t.shape(), shape);
            assert_eq!(t.len(), numel(shape));
            assert!(t.data().iter().all(|&v| v == 0.0));
        }
    }

    #[test]
    fn reuses_by_length_and_counts_misses() {
        let mut pool = BufferPool::default();
        let a = pool.take(&[2, 3]);
        assert_eq!(pool.misses(), 1);
        pool.give(a);
        let b = pool.take(&[6]);
        assert_eq!(b.shape(), &[6]);
        assert_eq!(pool.misses(), 1);
        let c = pool.take_zeroed(&[3, 2]);
        assert_eq!(pool.misses(), 2);
        assert!(c.data().iter().all(|&v| v == 0.0));
        pool.give(b);
        pool.give(c);
        let ids = pool.take_u32(4);
        pool.give_u32(ids);
        assert_eq!(pool.take_u32(4).len(), 4);
        assert_eq!(pool.misses(), 3);
        assert_eq!(pool.free_buffers(), 2);
        assert_eq!(pool.free_floats(), 12);
        pool.clear();
        assert_eq!(pool.free_buffers(), 0);
    }
}
