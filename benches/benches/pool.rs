//! Pooling benchmarks: 2x2 stride-2 max pool over N=64, C=64, 32x32 (the shape of the PyTorch
//! figures in the project's peer table), forward and backward, plus average and global average
//! pooling on the same input.
//!
//! Throughput is in `f32` elements read plus written per call (input + output for a forward,
//! grad-output + grad-input for a backward; argmax indices not counted), so that
//! `elements * 4 / time` is the GB/s figure of the peer table.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ganglion_pooling::{
    Pool2dParams, Pool2dShape, avg_pool2d_backward, avg_pool2d_forward, global_avg_pool2d_forward,
    max_pool2d_backward, max_pool2d_forward,
};
use std::hint::black_box;

const DIMS: [usize; 4] = [64, 64, 32, 32];

fn input(len: usize) -> Vec<f32> {
    // A fixed, tie-free-ish pattern; values do not affect the timing of these kernels.
    (0..len)
        .map(|i| ((i.wrapping_mul(2_654_435_761) >> 7) % 1000) as f32 * 1e-3 - 0.5)
        .collect()
}

fn pool(c: &mut Criterion) {
    let shape = Pool2dShape::new(DIMS, Pool2dParams::new([2, 2])).expect("valid geometry");
    let (in_len, out_len) = (shape.input_len(), shape.output_len());
    let x = input(in_len);
    let grad_out = input(out_len);
    // Buffers allocated once: the kernels overwrite them, as a training loop reuses its own.
    let mut out = vec![0.0f32; out_len];
    let mut argmax = vec![0u32; out_len];
    let mut grad_in = vec![0.0f32; in_len];
    let mut means = vec![0.0f32; DIMS[0] * DIMS[1]];

    let mut group = c.benchmark_group("pool");
    group.throughput(Throughput::Elements((in_len + out_len) as u64));
    group.bench_function("max_2x2_n64c64_32x32_fwd", |b| {
        b.iter(|| max_pool2d_forward(&shape, black_box(&x), &mut out, &mut argmax));
    });
    max_pool2d_forward(&shape, &x, &mut out, &mut argmax);
    group.bench_function("max_2x2_n64c64_32x32_bwd", |b| {
        b.iter(|| max_pool2d_backward(&shape, black_box(&grad_out), &argmax, &mut grad_in));
    });
    group.bench_function("avg_2x2_n64c64_32x32_fwd", |b| {
        b.iter(|| avg_pool2d_forward(&shape, true, black_box(&x), &mut out));
    });
    group.bench_function("avg_2x2_n64c64_32x32_bwd", |b| {
        b.iter(|| avg_pool2d_backward(&shape, true, black_box(&grad_out), &mut grad_in));
    });
    group.throughput(Throughput::Elements((in_len + means.len()) as u64));
    group.bench_function("global_avg_n64c64_32x32_fwd", |b| {
        b.iter(|| global_avg_pool2d_forward(DIMS, black_box(&x), &mut means));
    });
    group.finish();
}

criterion_group!(benches, pool);
criterion_main!(benches);
