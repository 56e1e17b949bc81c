//! How the kernels spread work over (n, c) planes: on the calling thread for small inputs, over
//! rayon otherwise. Each plane is owned by one task, so results never depend on the thread count.

/// Below this many element visits per call, a kernel stays on the calling thread: rayon's
/// fork/join would cost more than it saves.
const PARALLEL_MIN_WORK: usize = 1 << 16;

/// Element visits a rayon task gets at least, so that many small planes go to one task.
const TASK_MIN_WORK: usize = 1 << 14;

/// `None` to run sequentially, or `Some(min_len)`: the least number of planes per rayon task.
pub(crate) fn parallel_grain(planes: usize, work_per_plane: usize) -> Option<usize> {
    let work_per_plane = work_per_plane.max(1);
    if planes < 2 || planes.saturating_mul(work_per_plane) < PARALLEL_MIN_WORK {
        return None;
    }
    Some(TASK_MIN_WORK.div_ceil(work_per_plane).max(1))
}

/// Panics with a message naming the kernel, the buffer and both lengths.
#[cold]
#[inline(never)]
#[track_caller]
pub(crate) fn length_mismatch(op: &str, what: &str, expected: usize, actual: usize) -> ! {
    panic!("{op}: {what} has {actual} elements but the shape needs {expected}")
}

/// Checks one buffer length against the geometry.
#[inline]
#[track_caller]
pub(crate) fn check_len(op: &str, what: &str, expected: usize, actual: usize) {
    if expected != actual {
        length_mismatch(op, what, expected, actual);
    }
}
