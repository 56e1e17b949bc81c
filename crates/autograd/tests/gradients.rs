//! Every op family's backward rule against central finite differences
//! ([`ganglion_autograd::gradcheck`]), on random small shapes and values.
//!
//! Every element must agree. ReLU and max pooling get inputs that keep every finite-difference
//! step clear of their kinks; only the composite network, whose weights move many values at
//! once, may excuse elements whose step crosses a near-tie in a pooling window.

use ganglion_autograd::gradcheck::{GradCheck, GradCheckReport, check_gradients};
use ganglion_autograd::{
    AutogradError, BatchNormMode, Conv2dParams, Graph, Param, Pool2dParams, Var,
};
use ganglion_tensor::{Rng, Tensor};
use proptest::prelude::*;

fn rand(shape: &[usize], rng: &mut Rng) -> Tensor {
    Tensor::from_fn(shape, |_| rng.uniform_range(-1.0, 1.0))
}

/// Distinct values at least 0.05 apart, none within 0.025 of zero, in random order: no
/// finite-difference step crosses a ReLU kink or swaps a max-pool ranking.
fn separated(shape: &[usize], rng: &mut Rng) -> Tensor {
    let half = (shape.iter().product::<usize>() / 2) as f32;
    let mut t = Tensor::from_fn(shape, |i| (i as f32 - half) * 0.05 + 0.025);
    rng.shuffle(t.data_mut());
    t
}

fn gradcheck<F>(inputs: &[Tensor], build: F) -> GradCheckReport
where
    F: FnMut(&mut Graph, &[Var]) -> Result<Var, AutogradError>,
{
    check_gradients(&GradCheck::default(), inputs, build).expect("the graph builds")
}

/// Smooth ops: every element compared and agreeing.
fn assert_smooth(report: &GradCheckReport, what: &str) {
    assert!(report.passed(), "{what}: {report:?}");
    assert_eq!(
        report.kinks, 0,
        "{what}: a smooth op showed kinks: {report:?}"
    );
    assert!(report.checked > 0, "{what}: nothing checked");
}

/// Piecewise functions: agreeing, with at most one element, or a quarter of them, excused at
/// kinks.
fn assert_piecewise(report: &GradCheckReport, what: &str) {
    assert!(report.passed(), "{what}: {report:?}");
    assert!(
        report.kinks <= 1 || report.kinks * 4 <= report.checked + report.kinks,
        "{what}: too many kinks: {report:?}"
    );
    assert!(report.checked > 0, "{what}: nothing checked");
}

fn config() -> ProptestConfig {
    ProptestConfig::with_cases(48)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn linear_and_matmul(n in 1usize..4, fin in 1usize..6, fout in 1usize..5, bias: bool, seed: u64) {
        let mut rng = Rng::seed_from(seed);
        let inputs = [rand(&[n, fin], &mut rng), rand(&[fout, fin], &mut rng), rand(&[fout], &mut rng)];
        let r = gradcheck(&inputs, |g, v| g.linear(v[0], v[1], bias.then_some(v[2])));
        assert_smooth(&r, "linear");
        let inputs = [rand(&[n, fin], &mut rng), rand(&[fin, fout], &mut rng)];
        assert_smooth(&gradcheck(&inputs, |g, v| g.matmul(v[0], v[1])), "matmul");
    }

    #[test]
    fn add_sub_mul_scale_and_bias_broadcast(n in 1usize..3, c in 1usize..4, hw in 1usize..4, s in -2f32..2.0, seed: u64) {
        let mut rng = Rng::seed_from(seed);
        let shape = [n, c, hw, hw];
        let inputs = [rand(&shape, &mut rng), rand(&shape, &mut rng)];
        let r = gradcheck(&inputs, |g, v| {
            let a = g.add(v[0], v[1])?;
            let b = g.sub(a, v[1])?;
            let m = g.mul(b, v[1])?;
            let same = g.mul(m, v[0])?; // the same var on both sides of mul
            g.scale(same, s)
        });
        assert_smooth(&r, "add/sub/mul/scale");
        let inputs = [rand(&shape, &mut rng), rand(&[c], &mut rng)];
        assert_smooth(&gradcheck(&inputs, |g, v| g.add(v[0], v[1])), "add bias [N,C,H,W] + [C]");
        let inputs = [rand(&[n, c], &mut rng), rand(&[c], &mut rng)];
        assert_smooth(&gradcheck(&inputs, |g, v| g.add(v[0], v[1])), "add bias [N,C] + [C]");
    }

    #[test]
    fn activations(len in 1usize..24, slope in 0f32..0.5, seed: u64) {
        let mut rng = Rng::seed_from(seed);
        let x = [Tensor::from_fn(&[len], |_| 3.0 * rng.uniform_range(-1.0, 1.0))];
        assert_smooth(&gradcheck(&x, |g, v| g.sigmoid(v[0])), "sigmoid");
        assert_smooth(&gradcheck(&x, |g, v| g.tanh(v[0])), "tanh");
        let x = [separated(&[len], &mut rng)];
        assert_smooth(&gradcheck(&x, |g, v| g.relu(v[0])), "relu");
        assert_smooth(&gradcheck(&x, |g, v| g.leaky_relu(v[0], slope)), "leaky_relu");
    }

    #[test]
    fn reshape_flatten_concat(n in 1usize..3, c in 1usize..4, h in 1usize..4, axis in 0usize..4, seed: u64) {
        let mut rng = Rng::seed_from(seed);
        let a = rand(&[n, c, h, 2], &mut rng);
        let mut other = vec![n, c, h, 2];
        other[axis] += 1;
        let b = rand(&other, &mut rng);
        let r = gradcheck(&[a, b], |g, v| {
            let y = g.concat(&[v[0], v[1], v[0]], axis)?;
            let f = g.flatten(y)?;
            let len = g.value(f).len();
            g.reshape(f, &[len])
        });
        assert_smooth(&r, "concat/flatten/reshape");
    }

    #[test]
    fn pad_channels_and_subsample(n in 1usize..3, c in 1usize..4, h in 1usize..6, w in 1usize..6,
                                  before in 0usize..3, after in 0usize..3, sh in 1usize..3, sw in 1usize..4, seed: u64) {
        let mut rng = Rng::seed_from(seed);
        let x = [rand(&[n, c, h, w], &mut rng)];
        let r = gradcheck(&x, |g, v| {
            let s = g.subsample(v[0], [sh, sw])?;
            g.pad_channels(s, before, after)
        });
        assert_smooth(&r, "subsample/pad_channels");
    }

    #[test]
    fn batch_norm2d_train_and_eval(n in 2usize..4, c in 1usize..4, h in 1usize..4, w in 2usize..4, momentum in 0f32..1.0, seed: u64) {
        let mut rng = Rng::seed_from(seed);
        let x = Tensor::from_fn(&[n, c, h, w], |_| 2.0 * rng.uniform_range(-1.0, 1.0) + 0.5);
        let weight = Tensor::from_fn(&[c], |_| rng.uniform_range(0.5, 1.5));
        let bias = rand(&[c], &mut rng);
        let running_mean = Param::buffer(rand(&[c], &mut rng));
        let running_var = Param::buffer(Tensor::from_fn(&[c], |_| rng.uniform_range(0.5, 2.0)));
        let inputs = [x, weight, bias];
        for mode in [BatchNormMode::Train { momentum }, BatchNormMode::Eval] {
            let r = gradcheck(&inputs, |g, v| {
                g.batch_norm2d(v[0], v[1], v[2], &running_mean, &running_var, mode, 1e-5)
            });
            assert_smooth(&r, &format!("batch_norm2d {mode:?}"));
        }
    }

    #[test]
    fn dropout_masks_gradients_too(len in 1usize..40, p in 0f32..0.9, seed: u64) {
        let mut rng = Rng::seed_from(seed);
        let x = [rand(&[len], &mut rng)];
        let r = gradcheck(&x, |g, v| {
            let d = g.dropout(v[0], p)?;
            g.tanh(d)
        });
        assert_smooth(&r, "dropout");
    }

    #[test]
    fn softmax_log_softmax_losses(n in 1usize..4, c in 1usize..6, ls in 0f32..0.3, seed: u64) {
        let mut rng = Rng::seed_from(seed);
        let x = [Tensor::from_fn(&[n, c], |_| 3.0 * rng.uniform_range(-1.0, 1.0))];
        assert_smooth(&gradcheck(&x, |g, v| g.softmax(v[0])), "softmax");
        assert_smooth(&gradcheck(&x, |g, v| g.log_softmax(v[0])), "log_softmax");
        let targets: Vec<usize> = (0..n).map(|_| rng.below(c)).collect();
        assert_smooth(&gradcheck(&x, |g, v| g.cross_entropy(v[0], &targets, ls)), "cross_entropy");
        let pair = [rand(&[n, c], &mut rng), rand(&[n, c], &mut rng)];
        assert_smooth(&gradcheck(&pair, |g, v| g.mse(v[0], v[1])), "mse");
        assert_smooth(&gradcheck(&x, |g, v| g.sum(v[0])), "sum");
        assert_smooth(&gradcheck(&x, |g, v| g.mean(v[0])), "mean");
    }

    #[test]
    fn conv2d(n in 1usize..3, groups in 1usize..3, cin_g in 1usize..3, cout_g in 1usize..3,
              kh in 1usize..4, kw in 1usize..4, stride in 1usize..3, pad in 0usize..2,
              dil in 1usize..3, extra in 0usize..3, bias: bool, seed: u64) {
        let mut rng = Rng::seed_from(seed);
        let (cin, cout) = (groups * cin_g, groups * cout_g);
        let (h, w) = (dil * (kh - 1) + 1 + extra, dil * (kw - 1) + 2);
        let inputs = [rand(&[n, cin, h, w], &mut rng), rand(&[cout, cin_g, kh, kw], &mut rng), rand(&[cout], &mut rng)];
        let params = Conv2dParams { stride: [stride, 1], padding: [pad, 1], dilation: [dil, dil], groups };
        let r = gradcheck(&inputs, |g, v| g.conv2d(v[0], v[1], bias.then_some(v[2]), params));
        assert_smooth(&r, "conv2d");
    }

    #[test]
    fn pooling(n in 1usize..3, c in 1usize..3, kh in 1usize..4, kw in 1usize..4, stride in 1usize..3,
               pad in 0usize..2, ceil_mode: bool, extra in 0usize..4, seed: u64) {
        let mut rng = Rng::seed_from(seed);
        let x = [separated(&[n, c, kh + extra, kw + 1], &mut rng)];
        let params = Pool2dParams {
            kernel: [kh, kw],
            stride: [stride, stride],
            padding: [pad.min(kh / 2), pad.min(kw / 2)],
            ceil_mode,
        };
        assert_smooth(&gradcheck(&x, |g, v| g.max_pool2d(v[0], params)), "max_pool2d");
        for count_include_pad in [true, false] {
            let r = gradcheck(&x, |g, v| g.avg_pool2d(v[0], params, count_include_pad));
            assert_smooth(&r, "avg_pool2d");
        }
        assert_smooth(&gradcheck(&x, |g, v| g.global_avg_pool2d(v[0])), "global_avg_pool2d");
    }

    /// conv -> tanh -> max pool -> flatten -> linear -> cross-entropy, every parameter checked.
    #[test]
    fn composite_small_cnn(n in 1usize..3, ls in 0f32..0.2, seed: u64) {
        let mut rng = Rng::seed_from(seed);
        let inputs = [
            rand(&[n, 2, 6, 6], &mut rng),
            rand(&[3, 2, 3, 3], &mut rng),
            rand(&[3], &mut rng),
            rand(&[4, 27], &mut rng),
            rand(&[4], &mut rng),
        ];
        let targets: Vec<usize> = (0..n).map(|_| rng.below(4)).collect();
        let r = gradcheck(&inputs, |g, v| {
            let y = g.conv2d(v[0], v[1], Some(v[2]), Conv2dParams::default().with_padding(1))?;
            let y = g.tanh(y)?;
            let y = g.max_pool2d(y, Pool2dParams::new([2, 2]))?;
            let y = g.flatten(y)?;
            let y = g.linear(y, v[3], Some(v[4]))?;
            g.cross_entropy(y, &targets, ls)
        });
        // One near-tie in a pooling window is a kink for every weight feeding both values, so
        // a single tie can excuse a tenth of the elements.
        assert_piecewise(&r, "composite");
    }

    /// A residual block with the option-A shortcut and batch norm in train mode.
    #[test]
    fn composite_residual_block(seed: u64) {
        let mut rng = Rng::seed_from(seed);
        let inputs = [
            rand(&[2, 2, 4, 4], &mut rng),
            rand(&[4, 2, 3, 3], &mut rng),
            Tensor::from_fn(&[4], |_| rng.uniform_range(0.5, 1.5)),
            rand(&[4], &mut rng),
        ];
        let rm = Param::buffer(Tensor::zeros(&[4]));
        let rv = Param::buffer(Tensor::ones(&[4]));
        let r = gradcheck(&inputs, |g, v| {
            let params = Conv2dParams::default().with_padding(1).with_stride(2);
            let y = g.conv2d(v[0], v[1], None, params)?;
            let y = g.batch_norm2d(y, v[2], v[3], &rm, &rv, BatchNormMode::Train { momentum: 0.1 }, 1e-5)?;
            let shortcut = g.subsample(v[0], [2, 2])?;
            let shortcut = g.pad_channels(shortcut, 1, 1)?;
            let y = g.add(y, shortcut)?;
            let y = g.sigmoid(y)?;
            let y = g.global_avg_pool2d(y)?;
            let y = g.flatten(y)?;
            let target = g.input(Tensor::full(&[2, 4], 0.5));
            g.mse(y, target)
        });
        assert_smooth(&r, "residual block");
    }
}
