//! [`ConvWorkspace`]: scratch memory reused across convolution calls.

use crate::aligned::AlignedBuf;

/// Reusable scratch for the convolution kernels: the weights packed for the micro-kernels, and
/// one column buffer (and, for backward-weight, one partial weight gradient) per parallel task.
///
/// It grows to the largest shape and thread count it has served and never shrinks, so once a
/// network's layers have each run once, further calls allocate nothing here. Keep one per
/// thread of the caller (it is `Send`); a workspace serves any shape in any order.
///
/// Besides this, each worker thread keeps its own B-panel packing buffer (a few hundred KiB,
/// grown once): threads never share scratch, so no lock is taken on the hot path.
#[derive(Debug, Default)]
pub struct ConvWorkspace {
    slots: Vec<Slot>,
    packed: AlignedBuf,
    /// Backward-data's rotated weights, when it runs as a forward convolution.
    pub(crate) flipped: AlignedBuf,
}

/// Scratch of one parallel task.
#[derive(Debug, Default)]
pub(crate) struct Slot {
    /// im2col / col2im columns of one pixel tile.
    pub(crate) col: AlignedBuf,
    /// A partial weight gradient of one batch block.
    pub(crate) partial: AlignedBuf,
}

impl ConvWorkspace {
    /// An empty workspace; it allocates on first use.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of `f32` elements currently held (for memory accounting and tests).
    pub fn allocated_floats(&self) -> usize {
        self.packed.len()
            + self.flipped.len()
            + self
                .slots
                .iter()
                .map(|s| s.col.len() + s.partial.len())
                .sum::<usize>()
    }

    /// A buffer of at least `packed_len` floats for packed weights, and [`ConvWorkspace::slots`].
    pub(crate) fn packed_and_slots(
        &mut self,
        packed_len: usize,
        count: usize,
        col_len: usize,
        partial_len: usize,
    ) -> (&mut [f32], &mut [Slot]) {
        self.packed.grow(packed_len);
        self.slots(count, col_len, partial_len);
        (&mut self.packed[..packed_len], &mut self.slots[..count])
    }

    /// At least `count` slots whose buffers hold at least `col_len` and `partial_len` elements,
    /// growing any that are smaller. The contents are unspecified.
    pub(crate) fn slots(
        &mut self,
        count: usize,
        col_len: usize,
        partial_len: usize,
    ) -> &mut [Slot] {
        if self.slots.len() < count {
            self.slots.resize_with(count, Slot::default);
        }
        for slot in &mut self.slots[..count] {
            slot.col.grow(col_len);
            slot.partial.grow(partial_len);
        }
        &mut self.slots[..count]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_but_never_shrinks() {
        let mut ws = ConvWorkspace::new();
        assert_eq!(ws.allocated_floats(), 0);
        ws.slots(2, 10, 3);
        assert_eq!(ws.allocated_floats(), 26);
        let slots = ws.slots(1, 4, 0);
        assert_eq!(slots.len(), 1);
        assert_eq!(slots[0].col.len(), 10);
        assert_eq!(ws.allocated_floats(), 26);
        ws.slots(3, 12, 0);
        assert_eq!(ws.allocated_floats(), 12 * 3 + 3 * 2);
    }
}
