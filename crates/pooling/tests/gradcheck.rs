//! The reference backward passes against central finite differences in `f64`, of
//! `L = sum(forward(x) * g)`.

use ganglion_pooling::{Pool2dParams, Pool2dShape, reference};
use ganglion_tensor::Rng;
use proptest::prelude::*;

const EPS: f64 = 1e-5;

/// `dL/dx` by central differences, where `L(x) = sum(forward(x) * g)`.
fn numeric_grad(forward: impl Fn(&[f64]) -> Vec<f64>, x: &[f64], g: &[f64]) -> Vec<f64> {
    let loss = |x: &[f64]| -> f64 { forward(x).iter().zip(g).map(|(y, g)| y * g).sum() };
    let mut probe = x.to_vec();
    (0..x.len())
        .map(|i| {
            probe[i] = x[i] + EPS;
            let up = loss(&probe);
            probe[i] = x[i] - EPS;
            let down = loss(&probe);
            probe[i] = x[i];
            (up - down) / (2.0 * EPS)
        })
        .collect()
}

fn assert_close(analytic: &[f64], numeric: &[f64], what: &str) {
    assert_eq!(analytic.len(), numeric.len());
    for (i, (a, n)) in analytic.iter().zip(numeric).enumerate() {
        assert!(
            (a - n).abs() <= 1e-6 * (1.0 + n.abs()),
            "{what}: d/dx[{i}] analytic {a} numeric {n}"
        );
    }
}

/// Distinct values at least 0.01 apart (a shuffled ramp), so no finite-difference step can
/// change which element of a window is the maximum.
fn tie_free(len: usize, rng: &mut Rng) -> Vec<f64> {
    let mut x: Vec<f64> = (0..len).map(|i| i as f64 * 0.01 - 1.0).collect();
    rng.shuffle(&mut x);
    x
}

fn normal(len: usize, rng: &mut Rng) -> Vec<f64> {
    (0..len).map(|_| f64::from(rng.normal())).collect()
}

fn check_shape(shape: &Pool2dShape, seed: u64) {
    let mut rng = Rng::seed_from(seed);
    let g = normal(shape.output_len(), &mut rng);

    let x = tie_free(shape.input_len(), &mut rng);
    let max_fwd = |x: &[f64]| {
        let mut out = vec![0.0; shape.output_len()];
        let mut arg = vec![0; shape.output_len()];
        reference::max_pool2d_forward(shape, x, &mut out, &mut arg);
        out
    };
    let mut arg = vec![0; shape.output_len()];
    let mut out = vec![0.0; shape.output_len()];
    reference::max_pool2d_forward(shape, &x, &mut out, &mut arg);
    let mut analytic = vec![0.0; shape.input_len()];
    reference::max_pool2d_backward(shape, &g, &arg, &mut analytic);
    assert_close(
        &analytic,
        &numeric_grad(max_fwd, &x, &g),
        &format!("max {shape:?}"),
    );

    let x = normal(shape.input_len(), &mut rng);
    for include in [true, false] {
        let avg_fwd = |x: &[f64]| {
            let mut out = vec![0.0; shape.output_len()];
            reference::avg_pool2d_forward(shape, include, x, &mut out);
            out
        };
        reference::avg_pool2d_backward(shape, include, &g, &mut analytic);
        let what = format!("avg include_pad={include} {shape:?}");
        assert_close(&analytic, &numeric_grad(avg_fwd, &x, &g), &what);
    }
}

/// Hand-picked geometries: overlapping windows, padding on one axis, `ceil_mode` windows that
/// hang past the right padding, a 1x1 kernel, the plain 2x2.
#[test]
fn pool_gradients_match_finite_differences() {
    let cases = [
        ([2, 2, 6, 6], Pool2dParams::new([2, 2])),
        (
            [1, 2, 7, 5],
            Pool2dParams::new([3, 3])
                .with_stride([1, 1])
                .with_padding([1, 1]),
        ),
        (
            [2, 1, 7, 8],
            Pool2dParams::new([4, 3])
                .with_stride([3, 2])
                .with_padding([2, 1])
                .with_ceil_mode(true),
        ),
        (
            [1, 3, 5, 6],
            Pool2dParams::new([2, 3])
                .with_stride([2, 2])
                .with_ceil_mode(true),
        ),
        ([1, 1, 4, 5], Pool2dParams::new([1, 1]).with_stride([2, 3])),
    ];
    for (i, (dims, params)) in cases.into_iter().enumerate() {
        check_shape(&Pool2dShape::new(dims, params).unwrap(), i as u64);
    }
}

#[test]
fn global_avg_gradient_matches_finite_differences() {
    let mut rng = Rng::seed_from(11);
    for dims in [[2, 3, 4, 5], [1, 1, 1, 1], [3, 2, 7, 1]] {
        let [n, c, h, w] = dims;
        let x = normal(n * c * h * w, &mut rng);
        let g = normal(n * c, &mut rng);
        let fwd = |x: &[f64]| {
            let mut out = vec![0.0; n * c];
            reference::global_avg_pool2d_forward(dims, x, &mut out);
            out
        };
        let mut analytic = vec![0.0; x.len()];
        reference::global_avg_pool2d_backward(dims, &g, &mut analytic);
        assert_close(
            &analytic,
            &numeric_grad(fwd, &x, &g),
            &format!("global {dims:?}"),
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Random small geometries (n, c 1-2, h/w 1-8, kernel 1-4, stride 1-3, padding 0..=k/2).
    #[test]
    fn random_geometries_match_finite_differences(
        n in 1usize..=2, c in 1usize..=2, h in 1usize..=8, w in 1usize..=8,
        (kernel, padding) in (1usize..=4, 1usize..=4)
            .prop_flat_map(|(kh, kw)| (Just([kh, kw]), (0..=kh / 2, 0..=kw / 2))),
        stride in (1usize..=3, 1usize..=3), ceil_mode in any::<bool>(), seed in any::<u64>(),
    ) {
        let params = Pool2dParams {
            kernel,
            stride: [stride.0, stride.1],
            padding: [padding.0, padding.1],
            ceil_mode,
        };
        if let Ok(shape) = Pool2dShape::new([n, c, h, w], params) {
            check_shape(&shape, seed);
        }
    }
}
