//! Property tests: the fast kernels agree bit for bit with the reference loops over random
//! geometries, values with and without ties, and any rayon thread count.

use ganglion_pooling::{
    Pool2dParams, Pool2dShape, avg_pool2d_backward, avg_pool2d_forward, global_avg_pool2d_backward,
    global_avg_pool2d_forward, max_pool2d_backward, max_pool2d_forward, reference,
};
use ganglion_tensor::Rng;
use proptest::prelude::*;

/// How test inputs are drawn.
#[derive(Debug, Clone, Copy)]
enum Values {
    /// Standard normal: no ties.
    Normal,
    /// Small integers: windows often hold equal maxima.
    Ties,
    /// Small integers mixed with NaN and negative infinity.
    Special,
}

fn values(len: usize, seed: u64, kind: Values) -> Vec<f32> {
    let mut rng = Rng::seed_from(seed);
    (0..len)
        .map(|_| match kind {
            Values::Normal => rng.normal(),
            Values::Ties => rng.below(5) as f32 - 2.0,
            Values::Special => match rng.below(8) {
                0 => f32::NAN,
                1 => f32::NEG_INFINITY,
                k => k as f32 - 4.0,
            },
        })
        .collect()
}

fn value_kind() -> impl Strategy<Value = Values> {
    prop_oneof![
        Just(Values::Normal),
        Just(Values::Ties),
        Just(Values::Special)
    ]
}

/// Bit patterns, so that NaN compares equal to NaN.
fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Geometries as in the brief: n 1-3, c 1-4, h/w 1-12, kernel 1-4, stride 1-3,
/// padding 0..=k/2, either rounding; only those PyTorch accepts.
fn geometry() -> impl Strategy<Value = Pool2dShape> {
    (
        (1usize..=3, 1usize..=4, 1usize..=12, 1usize..=12),
        (
            1usize..=4,
            1usize..=4,
            1usize..=3,
            1usize..=3,
            any::<bool>(),
        ),
    )
        .prop_flat_map(|(dims, (kh, kw, sh, sw, ceil))| {
            (
                Just(dims),
                Just([kh, kw]),
                Just([sh, sw]),
                0..=kh / 2,
                0..=kw / 2,
                Just(ceil),
            )
        })
        .prop_filter_map(
            "window never fits",
            |((n, c, h, w), kernel, stride, ph, pw, ceil)| {
                let params = Pool2dParams {
                    kernel,
                    stride,
                    padding: [ph, pw],
                    ceil_mode: ceil,
                };
                Pool2dShape::new([n, c, h, w], params).ok()
            },
        )
}

/// Runs every kernel of `shape` both ways and asserts identical results.
fn compare_all(shape: &Pool2dShape, seed: u64, kind: Values) {
    let x = values(shape.input_len(), seed, kind);
    let g = values(shape.output_len(), seed ^ 0x9e37_79b9, Values::Normal);

    let (mut fast, mut slow) = (vec![0.0; shape.output_len()], vec![0.0; shape.output_len()]);
    let (mut fast_arg, mut slow_arg) = (vec![0; shape.output_len()], vec![0; shape.output_len()]);
    max_pool2d_forward(shape, &x, &mut fast, &mut fast_arg);
    reference::max_pool2d_forward(shape, &x, &mut slow, &mut slow_arg);
    assert_eq!(bits(&fast), bits(&slow), "max forward {shape:?}");
    assert_eq!(fast_arg, slow_arg, "max argmax {shape:?}");

    // Poison the outputs: the kernels must overwrite, not accumulate into, grad_input.
    let (mut fast_gi, mut slow_gi) = (vec![7.0; shape.input_len()], vec![0.0; shape.input_len()]);
    max_pool2d_backward(shape, &g, &fast_arg, &mut fast_gi);
    reference::max_pool2d_backward(shape, &g, &slow_arg, &mut slow_gi);
    assert_eq!(bits(&fast_gi), bits(&slow_gi), "max backward {shape:?}");

    for include in [true, false] {
        avg_pool2d_forward(shape, include, &x, &mut fast);
        reference::avg_pool2d_forward(shape, include, &x, &mut slow);
        assert_eq!(
            bits(&fast),
            bits(&slow),
            "avg forward include_pad={include} {shape:?}"
        );
        fast_gi.fill(7.0);
        avg_pool2d_backward(shape, include, &g, &mut fast_gi);
        reference::avg_pool2d_backward(shape, include, &g, &mut slow_gi);
        assert_eq!(
            fast_gi, slow_gi,
            "avg backward include_pad={include} {shape:?}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn kernels_match_reference(shape in geometry(), seed in any::<u64>(), kind in value_kind()) {
        compare_all(&shape, seed, kind);
    }

    /// The specialised 2x2 stride-2 max pool: whole blocks of outputs and tails, even and odd
    /// sizes, floor and ceil (ceil with an odd size leaves it for the general path).
    #[test]
    fn two_by_two_matches_reference(
        n in 1usize..=2, c in 1usize..=3, h in 2usize..=40, w in 2usize..=40,
        ceil_mode in any::<bool>(), seed in any::<u64>(), kind in value_kind(),
    ) {
        let params = Pool2dParams::new([2, 2]).with_ceil_mode(ceil_mode);
        compare_all(&Pool2dShape::new([n, c, h, w], params).unwrap(), seed, kind);
    }

    #[test]
    fn global_matches_reference(
        n in 1usize..=3, c in 1usize..=4, h in 1usize..=12, w in 1usize..=12, seed in any::<u64>()
    ) {
        let dims = [n, c, h, w];
        let x = values(n * c * h * w, seed, Values::Normal);
        let (mut fast, mut slow) = (vec![0.0f32; n * c], vec![0.0f32; n * c]);
        global_avg_pool2d_forward(dims, &x, &mut fast);
        reference::global_avg_pool2d_forward(dims, &x, &mut slow);
        // The fast sum runs in eight lanes, so it may round differently from the serial sum.
        for (a, b) in fast.iter().zip(&slow) {
            prop_assert!((a - b).abs() <= 1e-6 * (1.0 + b.abs()), "{a} vs {b}");
        }
        let g = values(n * c, seed ^ 1, Values::Normal);
        let (mut fast_gi, mut slow_gi) = (vec![7.0f32; x.len()], vec![0.0f32; x.len()]);
        global_avg_pool2d_backward(dims, &g, &mut fast_gi);
        reference::global_avg_pool2d_backward(dims, &g, &mut slow_gi);
        prop_assert_eq!(fast_gi, slow_gi);
    }
}

/// Shapes large enough that every kernel takes the rayon path (over 2^16 element visits), including the specialised 2x2 stride-2 max
/// pool (even and odd sizes, floor and ceil), give the same bits on 1 and 3 threads and agree
/// with the reference.
#[test]
fn parallel_paths_are_thread_count_independent() {
    let cases = [
        ([4, 16, 32, 32], Pool2dParams::new([2, 2])),
        ([4, 32, 33, 31], Pool2dParams::new([2, 2])),
        (
            [4, 32, 33, 31],
            Pool2dParams::new([2, 2]).with_ceil_mode(true),
        ),
        (
            [2, 48, 30, 27],
            Pool2dParams::new([3, 3])
                .with_stride([2, 2])
                .with_padding([1, 1]),
        ),
        (
            [2, 48, 29, 30],
            Pool2dParams::new([4, 3])
                .with_stride([3, 2])
                .with_padding([2, 1])
                .with_ceil_mode(true),
        ),
    ];
    let pool = |threads| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
    };
    // 16 threads (more than this machine's cores) take a larger machine's splits.
    let (one, three, sixteen) = (pool(1), pool(3), pool(16));
    for (i, (dims, params)) in cases.into_iter().enumerate() {
        let shape = Pool2dShape::new(dims, params).unwrap();
        let kind = [Values::Normal, Values::Ties, Values::Special][i % 3];
        let x = values(shape.input_len(), i as u64, kind);
        let g = values(shape.output_len(), 100 + i as u64, Values::Normal);
        let run = || {
            let mut out = vec![0.0; shape.output_len()];
            let mut arg = vec![0; shape.output_len()];
            let mut gi = vec![0.0; shape.input_len()];
            let mut avg = vec![0.0; shape.output_len()];
            let mut avg_gi = vec![0.0; shape.input_len()];
            let mut glob = vec![0.0; dims[0] * dims[1]];
            let mut glob_gi = vec![0.0; shape.input_len()];
            max_pool2d_forward(&shape, &x, &mut out, &mut arg);
            max_pool2d_backward(&shape, &g, &arg, &mut gi);
            avg_pool2d_forward(&shape, false, &x, &mut avg);
            avg_pool2d_backward(&shape, true, &g, &mut avg_gi);
            global_avg_pool2d_forward(dims, &x, &mut glob);
            global_avg_pool2d_backward(dims, &glob, &mut glob_gi);
            // As bits, so that NaN outputs compare equal.
            [&out, &gi, &avg, &avg_gi, &glob, &glob_gi]
                .map(|v| bits(v))
                .into_iter()
                .chain([arg])
                .collect::<Vec<_>>()
        };
        let a = one.install(run);
        for (threads, pool) in [(3, &three), (16, &sixteen)] {
            assert!(
                a == pool.install(run),
                "{threads} threads changed results for {dims:?} {params:?}"
            );
        }
        compare_all(&shape, i as u64, kind);
    }
}
