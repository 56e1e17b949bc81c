//! [`AlignedBuf`]: a growable scratch buffer whose floats start on a cache line.
//!
//! A `Vec<f32>` is only 4-byte aligned, and a large one from the system allocator typically
//! starts 16 bytes past a page. Every 64-byte vector load of such a buffer then straddles two
//! cache lines, and the kernels that stream their scratch from L2 pay for both.

use std::ops::{Deref, DerefMut};

/// Floats per 64-byte cache line.
pub(crate) const LINE_FLOATS: usize = 16;

/// Scratch floats starting at a 64-byte boundary. It grows and never shrinks; its contents
/// after growing are unspecified.
#[derive(Debug, Default)]
pub(crate) struct AlignedBuf {
    /// Backing storage, up to `LINE_FLOATS - 1` floats longer than the buffer.
    data: Vec<f32>,
    /// Index of the first float on a cache line.
    start: usize,
    len: usize,
}

impl AlignedBuf {
    /// Grows the buffer to at least `len` floats.
    pub(crate) fn grow(&mut self, len: usize) {
        if self.len >= len {
            return;
        }
        self.data = vec![0.0; len + LINE_FLOATS - 1];
        let misaligned = (self.data.as_ptr() as usize / size_of::<f32>()) % LINE_FLOATS;
        self.start = (LINE_FLOATS - misaligned) % LINE_FLOATS;
        self.len = len;
    }
}

impl Deref for AlignedBuf {
    type Target = [f32];

    fn deref(&self) -> &[f32] {
        &self.data[self.start..self.start + self.len]
    }
}

impl DerefMut for AlignedBuf {
    fn deref_mut(&mut self) -> &mut [f32] {
        &mut self.data[self.start..self.start + self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_on_a_cache_line_and_grows_but_never_shrinks() {
        let mut buf = AlignedBuf::default();
        assert!(buf.is_empty());
        let mut largest = 0;
        for len in [1, 3, 1000, 40_000, 10, 100_000] {
            buf.grow(len);
            largest = largest.max(len);
            assert_eq!(buf.len(), largest);
            assert_eq!(buf.as_ptr() as usize % 64, 0, "length {len}");
        }
    }
}
