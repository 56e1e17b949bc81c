//! Quick best-of timing of the suite's layers for kernel work:
//! `cargo run --release -p ganglion-im2col-conv --example conv_speed -- [THREADS] [LAYER..]`.
//! `cargo xtask bench` is the reference measurement; this one skips the machine limits and
//! reports the fastest of several calls, the steadier figure on a busy machine.

use ganglion_im2col_conv::{
    Conv2dParams, Conv2dShape, ConvWorkspace, conv2d_backward_data, conv2d_backward_weight,
    conv2d_forward, isa_name,
};
use std::time::Instant;

/// `(name, [n, cin, h = w, cout, k, stride, pad])`, as in `benches/conv_suite.toml`.
const LAYERS: [(&str, [usize; 7]); 11] = [
    ("lenet.c1", [64, 1, 28, 6, 5, 1, 2]),
    ("lenet.c2", [64, 6, 14, 16, 5, 1, 0]),
    ("mnist.c1", [64, 1, 28, 32, 3, 1, 0]),
    ("mnist.c2", [64, 32, 26, 64, 3, 1, 0]),
    ("cifar.stem", [64, 3, 32, 64, 3, 1, 1]),
    ("cifar.64", [64, 64, 32, 64, 3, 1, 1]),
    ("cifar.down", [64, 64, 32, 128, 3, 2, 1]),
    ("cifar.128", [64, 128, 16, 128, 3, 1, 1]),
    ("cifar.256", [64, 256, 8, 256, 3, 1, 1]),
    ("cifar.1x1", [64, 128, 16, 256, 1, 1, 0]),
    ("infer.64", [1, 64, 32, 64, 3, 1, 1]),
];

fn best_ms(mut f: impl FnMut()) -> f64 {
    f();
    let mut best = f64::INFINITY;
    let start = Instant::now();
    let mut calls = 0;
    while calls < 5 || (start.elapsed().as_secs_f64() < 0.4 && calls < 200) {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed().as_secs_f64());
        calls += 1;
    }
    best * 1e3
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let threads: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(1);
    let names: Vec<&str> = args.iter().skip(1).map(String::as_str).collect();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool");
    println!("isa {} threads {threads}", isa_name());
    println!("layer         fwd GF/s  bwd-data  bwd-weight");
    for (name, [n, cin, hw, cout, k, stride, pad]) in LAYERS {
        if !names.is_empty() && !names.contains(&name) {
            continue;
        }
        let p = Conv2dParams::default()
            .with_stride(stride)
            .with_padding(pad);
        let s = Conv2dShape::new([n, cin, hw, hw], [cout, cin, k, k], p).expect("suite shape");
        let fill =
            |len: usize| -> Vec<f32> { (0..len).map(|i| (i % 17) as f32 * 0.1 - 0.8).collect() };
        let (x, w, gy) = (
            fill(s.input_len()),
            fill(s.weight_len()),
            fill(s.output_len()),
        );
        let (mut y, mut gx, mut gw) = (
            fill(s.output_len()),
            fill(s.input_len()),
            fill(s.weight_len()),
        );
        let mut ws = ConvWorkspace::new();
        let gf = |ms: f64| s.flops() / ms / 1e6;
        let (f, d, wt) = pool.install(|| {
            (
                best_ms(|| conv2d_forward(&s, &x, &w, None, &mut y, &mut ws)),
                best_ms(|| conv2d_backward_data(&s, &gy, &w, &mut gx, &mut ws)),
                best_ms(|| conv2d_backward_weight(&s, &x, &gy, &mut gw, None, &mut ws)),
            )
        });
        println!("{name:<12} {:>9.1} {:>9.1} {:>11.1}", gf(f), gf(d), gf(wt));
    }
}
