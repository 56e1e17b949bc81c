//! The differentiable ops, one file per theme, each op's forward method and backward rule
//! side by side; and the elementwise loop helpers they share.

pub(crate) mod conv;
pub(crate) mod elementwise;
pub(crate) mod inplace;
pub(crate) mod linear;
pub(crate) mod loss;
pub(crate) mod norm;
pub(crate) mod pool;
pub(crate) mod reduce;
pub(crate) mod shape;

use rayon::prelude::*;

/// Below this many elements an elementwise loop stays on the calling thread: splitting costs
/// more than it saves.
const PAR_MIN: usize = 1 << 16;
/// Elements per parallel task.
const PAR_CHUNK: usize = 1 << 14;

/// `out[i] = f(x[i])`; split over threads for large tensors (elementwise, so the result does
/// not depend on the split).
///
/// # Panics
/// Panics if the lengths differ.
pub(crate) fn map1(out: &mut [f32], x: &[f32], f: impl Fn(f32) -> f32 + Sync) {
    assert_eq!(out.len(), x.len(), "map1: length mismatch");
    let run = |o: &mut [f32], x: &[f32]| {
        for (o, &x) in o.iter_mut().zip(x) {
            *o = f(x);
        }
    };
    if out.len() < PAR_MIN {
        run(out, x);
    } else {
        out.par_chunks_mut(PAR_CHUNK)
            .zip(x.par_chunks(PAR_CHUNK))
            .for_each(|(o, x)| run(o, x));
    }
}

/// `out[i] = f(a[i], b[i])`; split over threads for large tensors.
///
/// # Panics
/// Panics if the lengths differ.
pub(crate) fn map2(out: &mut [f32], a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32 + Sync) {
    assert!(
        out.len() == a.len() && a.len() == b.len(),
        "map2: length mismatch"
    );
    let run = |o: &mut [f32], a: &[f32], b: &[f32]| {
        for ((o, &a), &b) in o.iter_mut().zip(a).zip(b) {
            *o = f(a, b);
        }
    };
    if out.len() < PAR_MIN {
        run(out, a, b);
    } else {
        out.par_chunks_mut(PAR_CHUNK)
            .zip(a.par_chunks(PAR_CHUNK))
            .zip(b.par_chunks(PAR_CHUNK))
            .for_each(|((o, a), b)| run(o, a, b));
    }
}

/// `x[i] = f(x[i])` in place; split over threads for large tensors as [`map1`] is.
pub(crate) fn map1_inplace(x: &mut [f32], f: impl Fn(f32) -> f32 + Sync) {
    let run = |x: &mut [f32]| {
        for v in x {
            *v = f(*v);
        }
    };
    if x.len() < PAR_MIN {
        run(x);
    } else {
        x.par_chunks_mut(PAR_CHUNK).for_each(run);
    }
}

/// `a[i] = f(a[i], b[i])` in place; split over threads for large tensors as [`map2`] is.
///
/// # Panics
/// Panics if the lengths differ.
pub(crate) fn map2_inplace(a: &mut [f32], b: &[f32], f: impl Fn(f32, f32) -> f32 + Sync) {
    assert_eq!(a.len(), b.len(), "map2_inplace: length mismatch");
    let run = |a: &mut [f32], b: &[f32]| {
        for (a, &b) in a.iter_mut().zip(b) {
            *a = f(*a, b);
        }
    };
    if a.len() < PAR_MIN {
        run(a, b);
    } else {
        a.par_chunks_mut(PAR_CHUNK)
            .zip(b.par_chunks(PAR_CHUNK))
            .for_each(|(a, b)| run(a, b));
    }
}
