//! Convolution benchmarks: forward, backward-data and backward-weight on layers of the project's
//! suite (`conv_suite.toml`: LeNet, MNIST and CIFAR layers plus batch-1 inference), at 1 and 2
//! rayon threads.
//!
//! Throughput is in FLOPs (`Conv2dShape::flops`, padding taps included), so criterion's
//! elements/s is the GFLOP/s figure of the peer table.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ganglion_im2col_conv::{
    Conv2dParams, Conv2dShape, ConvWorkspace, conv2d_backward_data, conv2d_backward_weight,
    conv2d_forward,
};
use std::hint::black_box;
use std::time::Duration;

/// One layer of `conv_suite.toml` (square images and kernels).
struct Layer {
    name: &'static str,
    n: usize,
    cin: usize,
    hw: usize,
    cout: usize,
    k: usize,
    stride: usize,
    pad: usize,
}

const fn layer(name: &'static str, [n, cin, hw, cout, k, stride, pad]: [usize; 7]) -> Layer {
    Layer {
        name,
        n,
        cin,
        hw,
        cout,
        k,
        stride,
        pad,
    }
}

/// Copied from `conv_suite.toml`: `[n, cin, h = w, cout, k, stride, pad]`.
const LAYERS: [Layer; 6] = [
    layer("lenet.c2", [64, 6, 14, 16, 5, 1, 0]),
    layer("cifar.stem", [64, 3, 32, 64, 3, 1, 1]),
    layer("cifar.64", [64, 64, 32, 64, 3, 1, 1]),
    layer("cifar.down", [64, 64, 32, 128, 3, 2, 1]),
    layer("cifar.1x1", [64, 128, 16, 256, 1, 1, 0]),
    layer("infer.64", [1, 64, 32, 64, 3, 1, 1]),
];

/// The suite's thread counts.
const THREADS: [usize; 2] = [1, 2];

fn values(len: usize, salt: usize) -> Vec<f32> {
    // A fixed pattern in [-0.5, 0.5); the values do not affect the timing.
    (0..len)
        .map(|i| {
            ((i.wrapping_add(salt).wrapping_mul(2_654_435_761) >> 7) % 1000) as f32 * 1e-3 - 0.5
        })
        .collect()
}

fn conv(c: &mut Criterion) {
    let mut group = c.benchmark_group("conv");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for Layer {
        name,
        n,
        cin,
        hw,
        cout,
        k,
        stride,
        pad,
    } in LAYERS
    {
        let params = Conv2dParams::default()
            .with_stride(stride)
            .with_padding(pad);
        let shape =
            Conv2dShape::new([n, cin, hw, hw], [cout, cin, k, k], params).expect("suite layer");
        let x = values(shape.input_len(), 1);
        let wt = values(shape.weight_len(), 2);
        let bias = values(cout, 3);
        let gy = values(shape.output_len(), 4);
        // Buffers and workspace allocated once, as a training loop keeps its own.
        let mut y = vec![0.0f32; shape.output_len()];
        let mut gx = vec![0.0f32; shape.input_len()];
        let mut gw = vec![0.0f32; shape.weight_len()];
        let mut gb = vec![0.0f32; cout];
        let mut ws = ConvWorkspace::new();
        group.throughput(Throughput::Elements(shape.flops() as u64));
        for threads in THREADS {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("thread pool");
            let id = |pass: &str| BenchmarkId::new(format!("{name}/{pass}"), format!("{threads}T"));
            group.bench_function(id("fwd"), |b| {
                pool.install(|| {
                    b.iter(|| {
                        conv2d_forward(&shape, black_box(&x), &wt, Some(&bias), &mut y, &mut ws)
                    })
                });
            });
            group.bench_function(id("bwd_data"), |b| {
                pool.install(|| {
                    b.iter(|| conv2d_backward_data(&shape, black_box(&gy), &wt, &mut gx, &mut ws))
                });
            });
            group.bench_function(id("bwd_weight"), |b| {
                pool.install(|| {
                    b.iter(|| {
                        conv2d_backward_weight(
                            &shape,
                            black_box(&x),
                            &gy,
                            &mut gw,
                            Some(&mut gb),
                            &mut ws,
                        )
                    })
                });
            });
        }
    }
    group.finish();
}

criterion_group!(benches, conv);
criterion_main!(benches);
