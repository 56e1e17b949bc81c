//! The xtask binary's global allocator: the system allocator with a count of every call that
//! obtains memory, so the training-step bench can report allocations per step.
//!
//! Requests are split by alignment: `matrixmultiply::sgemm` allocates its packing buffer on
//! every call with an alignment of 16 bytes or more (its SIMD kernels need it), while nothing
//! else in a training step asks for more than 8. Counting costs one relaxed atomic add per
//! allocation, which the conv suite's timed kernels (which allocate only GEMM packing buffers)
//! do not notice.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

/// Requests with at least this alignment are counted as GEMM packing buffers.
const PACKING_ALIGN: usize = 16;

/// Calls below [`PACKING_ALIGN`].
static OWN: AtomicU64 = AtomicU64::new(0);
/// Calls at or above [`PACKING_ALIGN`].
static PACKING: AtomicU64 = AtomicU64::new(0);

/// Allocation calls (`alloc`, `alloc_zeroed`, `realloc`) made by the whole process so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// Calls with an alignment below 16 bytes: everything but GEMM packing buffers.
    pub own: u64,
    /// Calls with an alignment of 16 bytes or more: `matrixmultiply`'s packing buffers.
    pub packing: u64,
}

impl Counts {
    /// The calls of `self` and `other` together.
    pub fn plus(self, other: Counts) -> Counts {
        Counts {
            own: self.own + other.own,
            packing: self.packing + other.packing,
        }
    }

    /// The calls made between `earlier` and `self`.
    pub fn since(self, earlier: Counts) -> Counts {
        Counts {
            own: self.own - earlier.own,
            packing: self.packing - earlier.packing,
        }
    }
}

/// The counts so far.
pub fn snapshot() -> Counts {
    Counts {
        own: OWN.load(Ordering::SeqCst),
        packing: PACKING.load(Ordering::SeqCst),
    }
}

fn count(layout: Layout) {
    let counter = if layout.align() >= PACKING_ALIGN {
        &PACKING
    } else {
        &OWN
    };
    counter.fetch_add(1, Ordering::Relaxed);
}

/// [`System`] behind two counters.
struct Counting;

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so the
// `GlobalAlloc` contract holds exactly as it does for `System`; counting touches only atomics
// and never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout);
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout);
        // SAFETY: forwarded unchanged; the caller upholds `alloc_zeroed`'s contract.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(layout);
        // SAFETY: forwarded unchanged; the caller upholds `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged; the caller upholds `dealloc`'s contract.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocations_are_counted_by_alignment() {
        // Counters are process-wide and tests run in parallel, so only lower bounds hold.
        let before = snapshot();
        let plain: Vec<u64> = std::hint::black_box(Vec::with_capacity(1000));
        let aligned = Layout::from_size_align(256, 64).unwrap();
        // SAFETY: the layout has a non-zero size; the block is freed with the same layout.
        unsafe {
            let p = GLOBAL.alloc(aligned);
            assert!(!p.is_null());
            GLOBAL.dealloc(p, aligned);
        }
        let d = snapshot().since(before);
        assert!(d.own >= 1 && d.packing >= 1, "{d:?}");
        drop(plain);
    }
}
