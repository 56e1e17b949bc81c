//! The tape itself: buffer reuse across `reset`, inference mode, dropout, parameter
//! accumulation, determinism across thread counts and the error messages.

use ganglion_autograd::{
    AutogradError, BatchNormMode, Conv2dParams, Graph, Param, Pool2dParams, Var,
};
use ganglion_tensor::{Rng, Tensor, init};

/// The parameters of a small CNN: conv -> batch norm -> relu -> max pool -> linear.
struct Net {
    conv_w: Param,
    conv_b: Param,
    bn_w: Param,
    bn_b: Param,
    bn_mean: Param,
    bn_var: Param,
    fc_w: Param,
    fc_b: Param,
}

impl Net {
    fn new(seed: u64) -> Self {
        let mut rng = Rng::seed_from(seed);
        Self {
            conv_w: Param::new(init::normal(&[4, 3, 3, 3], 0.0, 0.3, &mut rng)),
            conv_b: Param::new(init::normal(&[4], 0.0, 0.1, &mut rng)),
            bn_w: Param::new(Tensor::ones(&[4])),
            bn_b: Param::new(Tensor::zeros(&[4])),
            bn_mean: Param::buffer(Tensor::zeros(&[4])),
            bn_var: Param::buffer(Tensor::ones(&[4])),
            fc_w: Param::new(init::normal(&[5, 64], 0.0, 0.2, &mut rng)),
            fc_b: Param::new(Tensor::zeros(&[5])),
        }
    }

    fn params(&self) -> [&Param; 6] {
        [
            &self.conv_w,
            &self.conv_b,
            &self.bn_w,
            &self.bn_b,
            &self.fc_w,
            &self.fc_b,
        ]
    }

    /// Logits for `x: [n, 3, 8, 8]`; `train` picks batch statistics and dropout.
    fn forward(&self, g: &mut Graph, x: Var, train: bool) -> Result<Var, AutogradError> {
        let (w, b) = (g.param(&self.conv_w), g.param(&self.conv_b));
        let y = g.conv2d(x, w, Some(b), Conv2dParams::default().with_padding(1))?;
        let (bw, bb) = (g.param(&self.bn_w), g.param(&self.bn_b));
        let mode = if train {
            BatchNormMode::Train { momentum: 0.1 }
        } else {
            BatchNormMode::Eval
        };
        let y = g.batch_norm2d(y, bw, bb, &self.bn_mean, &self.bn_var, mode, 1e-5)?;
        let y = g.relu(y)?;
        let y = g.max_pool2d(y, Pool2dParams::new([2, 2]))?;
        let y = g.flatten(y)?;
        let y = if train { g.dropout(y, 0.25)? } else { y };
        let (fw, fb) = (g.param(&self.fc_w), g.param(&self.fc_b));
        g.linear(y, fw, Some(fb))
    }
}

fn batch(n: usize) -> (Vec<f32>, Vec<usize>) {
    let mut rng = Rng::seed_from(99);
    let x = (0..n * 3 * 64).map(|_| rng.normal()).collect();
    let y = (0..n).map(|_| rng.below(5)).collect();
    (x, y)
}

/// One training step; returns the loss and a copy of every parameter gradient.
fn train_step(g: &mut Graph, net: &Net, x: &[f32], y: &[usize]) -> (f32, Vec<Tensor>) {
    net.params().iter().for_each(|p| p.zero_grad());
    g.reset();
    g.set_seed(7);
    let xv = g.input_from(&[y.len(), 3, 8, 8], x).unwrap();
    let logits = net.forward(g, xv, true).unwrap();
    let loss = g.cross_entropy(logits, y, 0.1).unwrap();
    g.backward(loss).unwrap();
    let loss = g.value(loss).data()[0];
    (loss, net.params().iter().map(|p| p.grad()).collect())
}

#[test]
fn reset_reuses_every_buffer_and_repeats_results() {
    let net = Net::new(1);
    let (x, y) = batch(6);
    let mut g = Graph::new();
    let (loss1, grads1) = train_step(&mut g, &net, &x, &y);
    let misses = g.pool_misses();
    assert!(misses > 0);
    assert!(grads1.iter().all(|t| t.data().iter().any(|&v| v != 0.0)));
    for _ in 0..2 {
        let (loss2, grads2) = train_step(&mut g, &net, &x, &y);
        assert_eq!(loss1.to_bits(), loss2.to_bits());
        assert_eq!(grads1, grads2);
        assert_eq!(g.pool_misses(), misses, "a warm step allocated");
    }
    // A fresh graph agrees with the recycled one.
    let (loss3, grads3) = train_step(&mut Graph::new(), &net, &x, &y);
    assert_eq!(loss1.to_bits(), loss3.to_bits());
    assert_eq!(grads1, grads3);
    // Reset empties the tape and invalidates its vars.
    let stale = g.input(Tensor::ones(&[1]));
    g.reset();
    assert!(g.is_empty());
    assert!(g.pooled_buffers() > 0);
    let err = g.relu(stale).unwrap_err();
    assert!(matches!(err, AutogradError::UnknownVar { .. }), "{err}");
    assert!(err.to_string().starts_with("relu: unknown var"), "{err}");
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let net = Net::new(2);
    let (x, y) = batch(8);
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| train_step(&mut Graph::new(), &net, &x, &y))
    };
    let (loss1, grads1) = run(1);
    // 8 and 16 threads (more than this machine's cores) take a larger machine's splits.
    for threads in [2, 3, 8, 16] {
        let (loss, grads) = run(threads);
        assert_eq!(loss1.to_bits(), loss.to_bits(), "{threads} threads");
        assert_eq!(grads1, grads, "{threads} threads");
    }
}

#[test]
fn inference_mode_computes_the_same_values_and_refuses_backward() {
    let net = Net::new(3);
    let (x, _) = batch(4);
    let mut recording = Graph::new();
    let mut inference = Graph::inference();
    assert!(recording.is_recording() && !inference.is_recording());
    let a = recording.input_from(&[4, 3, 8, 8], &x).unwrap();
    let a = net.forward(&mut recording, a, false).unwrap();
    let b = inference.input_from(&[4, 3, 8, 8], &x).unwrap();
    let b = net.forward(&mut inference, b, false).unwrap();
    assert_eq!(recording.value(a), inference.value(b));
    let loss = inference.sum(b).unwrap();
    let err = inference.backward(loss).unwrap_err();
    assert!(matches!(err, AutogradError::InferenceMode));
    assert!(err.to_string().contains("inference mode"), "{err}");
    assert!(inference.grad(b).is_none());
    // Inference graphs recycle too.
    inference.reset();
    let misses = inference.pool_misses();
    let b = inference.input_from(&[4, 3, 8, 8], &x).unwrap();
    net.forward(&mut inference, b, false).unwrap();
    assert_eq!(inference.pool_misses(), misses);
}

#[test]
fn dropout_is_seeded_scaled_and_identity_at_zero() {
    let x = Tensor::from_fn(&[4000], |i| 1.0 + i as f32 * 1e-3);
    let masks = |seed: u64, p: f32| {
        let mut g = Graph::new();
        g.set_seed(seed);
        let v = g.input(x.clone());
        let y = g.dropout(v, p).unwrap();
        g.value(y).clone()
    };
    let a = masks(5, 0.3);
    assert_eq!(a, masks(5, 0.3));
    assert_ne!(a, masks(6, 0.3));
    let mut dropped = 0;
    for (&y, &x) in a.data().iter().zip(x.data()) {
        if y == 0.0 {
            dropped += 1;
        } else {
            assert!((y - x / 0.7).abs() <= 1e-6 * y.abs(), "{y} vs {x} / 0.7");
        }
    }
    assert!(
        (1000..1400).contains(&dropped),
        "{dropped} of 4000 dropped at p = 0.3"
    );
    assert_eq!(masks(5, 0.0), x);
    // The gradient passes through the same mask.
    let mut g = Graph::new();
    g.set_seed(5);
    let v = g.variable(x.clone());
    let y = g.dropout(v, 0.3).unwrap();
    let s = g.sum(y).unwrap();
    g.backward(s).unwrap();
    for (&d, &y) in g.grad(v).unwrap().data().iter().zip(a.data()) {
        assert_eq!(d == 0.0, y == 0.0);
    }
    for p in [1.0, -0.1, f32::NAN] {
        let err = g.dropout(v, p).unwrap_err();
        assert!(err.to_string().starts_with("dropout: p = "), "{err}");
    }
}

#[test]
fn parameters_accumulate_and_respect_requires_grad() -> Result<(), AutogradError> {
    let w = Param::new(Tensor::from_fn(&[3], |i| i as f32));
    let frozen = Param::buffer(Tensor::ones(&[3]));
    let mut g = Graph::new();
    let (a, b, f) = (g.param(&w), g.param(&w), g.param(&frozen));
    let ab = g.mul(a, b)?; // w^2, through two copies of the same parameter
    let y = g.mul(ab, f)?;
    let loss = g.sum(y)?;
    g.backward(loss)?;
    assert_eq!(w.grad().data(), &[0.0, 2.0, 4.0]); // d sum(w^2) / dw = 2w
    assert_eq!(frozen.grad().data(), &[0.0; 3]);
    assert!(
        g.grad(f).is_none(),
        "no gradient is computed for a frozen parameter"
    );
    // A second backward adds again, like a second loss term.
    g.backward(loss)?;
    assert_eq!(w.grad().data(), &[0.0, 4.0, 8.0]);
    // Constants get no gradient; the loss's own gradient is one, kept only on request.
    let c = g.input(Tensor::ones(&[3]));
    let wc = g.param(&w);
    let y = g.mul(wc, c)?;
    let s = g.mean(y)?;
    g.backward(s)?;
    assert!(g.grad(c).is_none());
    assert!(g.grad(s).is_none(), "an intermediate gradient is released");
    assert_eq!(g.grad(wc).unwrap().data(), &[1.0 / 3.0; 3]);
    g.set_retain_grads(true);
    g.backward(s)?;
    assert_eq!(g.grad(s).unwrap().data(), &[1.0]);
    assert_eq!(g.grad(y).unwrap().data(), &[1.0 / 3.0; 3]);
    assert_eq!(g.grad(wc).unwrap().data(), &[1.0 / 3.0; 3]);
    Ok(())
}

#[track_caller]
fn message(r: Result<Var, AutogradError>) -> String {
    r.expect_err("the op should reject its operands")
        .to_string()
}

#[test]
fn shape_errors_name_the_op_and_the_shapes() {
    let mut g = Graph::new();
    let a = g.input(Tensor::zeros(&[2, 3]));
    let b = g.input(Tensor::zeros(&[3, 2]));
    let img = g.input(Tensor::zeros(&[1, 3, 5, 5]));
    let w4 = g.input(Tensor::zeros(&[2, 4, 3, 3]));
    let c5 = g.input(Tensor::zeros(&[5]));

    let m = message(g.add(a, b));
    assert!(
        m.starts_with("add:") && m.contains("[2, 3]") && m.contains("[3, 2]"),
        "{m}"
    );
    let m = message(g.mul(a, b));
    assert!(
        m.starts_with("mul:") && m.contains("[2, 3]") && m.contains("[3, 2]"),
        "{m}"
    );
    let m = message(g.add(img, c5));
    assert!(
        m.starts_with("add:") && m.contains("[1, 3, 5, 5]") && m.contains("[5]"),
        "{m}"
    );
    let m = message(g.linear(a, b, None));
    assert!(
        m.starts_with("linear:") && m.contains("[2, 3]") && m.contains("[3, 2]"),
        "{m}"
    );
    let m = message(g.linear(a, a, Some(c5)));
    assert!(m.starts_with("linear: bias has shape [5]"), "{m}");
    let m = message(g.matmul(a, a));
    assert!(m.starts_with("matmul:") && m.contains("[2, 3]"), "{m}");
    let m = message(g.conv2d(img, w4, None, Conv2dParams::default()));
    assert!(
        m.starts_with("conv2d:") && m.contains("[2, 4, 3, 3]"),
        "{m}"
    );
    let m = message(g.conv2d(a, w4, None, Conv2dParams::default()));
    assert!(m.starts_with("conv2d: input has shape [2, 3]"), "{m}");
    let m = message(g.max_pool2d(a, Pool2dParams::new([2, 2])));
    assert!(m.starts_with("max_pool2d: input has shape [2, 3]"), "{m}");
    let m = message(g.max_pool2d(img, Pool2dParams::new([7, 7])));
    assert!(m.contains("[1, 3, 5, 5]") || m.contains('7'), "{m}");
    let m = message(g.reshape(a, &[4]));
    assert!(
        m.starts_with("reshape:") && m.contains("[2, 3]") && m.contains("[4]"),
        "{m}"
    );
    let m = message(g.concat(&[a, b], 0));
    assert!(m.starts_with("concat:") && m.contains("[3, 2]"), "{m}");
    let m = message(g.concat(&[a], 2));
    assert!(m.starts_with("concat: axis 2"), "{m}");
    let m = message(g.subsample(a, [2, 2]));
    assert!(m.starts_with("subsample: input has shape [2, 3]"), "{m}");
    let m = message(g.mse(a, b));
    assert!(
        m.starts_with("mse:") && m.contains("[2, 3]") && m.contains("[3, 2]"),
        "{m}"
    );
    let (rm, rv) = (
        Param::buffer(Tensor::zeros(&[3])),
        Param::buffer(Tensor::ones(&[3])),
    );
    let m = message(g.batch_norm2d(img, c5, c5, &rm, &rv, BatchNormMode::Eval, 1e-5));
    assert!(
        m.starts_with("batch_norm2d: weight has shape [5] but must be [3]"),
        "{m}"
    );
    let one = g.input(Tensor::zeros(&[1, 3, 1, 1]));
    let w3 = g.input(Tensor::ones(&[3]));
    let m = message(g.batch_norm2d(
        one,
        w3,
        w3,
        &rm,
        &rv,
        BatchNormMode::Train { momentum: 0.1 },
        1e-5,
    ));
    assert!(m.contains("more than one value per channel"), "{m}");
    let logits = g.input(Tensor::zeros(&[2, 5]));
    let m = message(g.cross_entropy(logits, &[1, 7], 0.0));
    assert_eq!(
        m,
        "cross_entropy: target 7 at batch index 1 is out of range for 5 classes"
    );
    let m = message(g.cross_entropy(logits, &[1], 0.0));
    assert!(
        m.starts_with("cross_entropy: 1 targets for logits of shape [2, 5]"),
        "{m}"
    );
    let m = message(g.input_from(&[2, 2], &[1.0; 3]));
    assert!(m.contains("[2, 2]") && m.contains('3'), "{m}");

    let err = g.backward(a).unwrap_err();
    assert_eq!(
        err.to_string(),
        "backward: the loss must have exactly one element but has shape [2, 3]"
    );
    let other = Graph::new().input(Tensor::zeros(&[1]));
    let m = message(g.relu(other));
    assert!(m.starts_with("relu: unknown var"), "{m}");
}

#[test]
fn shape_ops_forward_values() -> Result<(), AutogradError> {
    let mut g = Graph::new();
    let x = g.input(Tensor::from_fn(&[1, 2, 3, 3], |i| i as f32));
    let s = g.subsample(x, [2, 2])?;
    assert_eq!(g.shape(s), &[1, 2, 2, 2]);
    assert_eq!(
        g.value(s).data(),
        &[0.0, 2.0, 6.0, 8.0, 9.0, 11.0, 15.0, 17.0]
    );
    let p = g.pad_channels(s, 1, 2)?;
    assert_eq!(g.shape(p), &[1, 5, 2, 2]);
    assert_eq!(&g.value(p).data()[..4], &[0.0; 4]);
    assert_eq!(&g.value(p).data()[4..8], &[0.0, 2.0, 6.0, 8.0]);
    assert_eq!(&g.value(p).data()[12..], &[0.0; 8]);
    let a = g.input(Tensor::from_fn(&[2, 2], |i| i as f32));
    let b = g.input(Tensor::from_fn(&[2, 1], |i| 10.0 + i as f32));
    let c = g.concat(&[a, b], 1)?;
    assert_eq!(g.value(c).data(), &[0.0, 1.0, 10.0, 2.0, 3.0, 11.0]);
    let f = g.flatten(x)?;
    assert_eq!(g.shape(f), &[1, 18]);
    let gp = g.global_avg_pool2d(x)?;
    assert_eq!(g.value(gp).data(), &[4.0, 13.0]);
    let sm = g.softmax(a)?;
    let row: f32 = g.value(sm).data()[..2].iter().sum();
    assert!((row - 1.0).abs() < 1e-6);
    let bias = g.input(Tensor::new(&[2], vec![100.0, 200.0])?);
    let shifted = g.add(s, bias)?;
    assert_eq!(g.value(shifted).data()[..2], [100.0, 102.0]);
    assert_eq!(g.value(shifted).data()[4..6], [209.0, 211.0]);
    Ok(())
}

/// Tensors large enough for the threaded loops: the same bits whatever the thread count, and
/// the batch statistics those loops compute agree with a plain f64 computation.
#[test]
fn large_tensors_take_threaded_paths_with_identical_results() {
    let mut rng = Rng::seed_from(11);
    let (n, c, hw) = (4, 8, 32 * 32);
    let x = init::normal(&[n, c, 32, 32], 0.5, 2.0, &mut rng);
    let bias = init::normal(&[c], 0.0, 1.0, &mut rng);
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let (rm, rv) = (
                Param::buffer(Tensor::zeros(&[c])),
                Param::buffer(Tensor::ones(&[c])),
            );
            let (w, b) = (
                Param::new(Tensor::ones(&[c])),
                Param::new(Tensor::zeros(&[c])),
            );
            let mut g = Graph::new();
            let xv = g.variable(x.clone());
            let (wv, bv) = (g.param(&w), g.param(&b));
            let mode = BatchNormMode::Train { momentum: 1.0 };
            let y = g.batch_norm2d(xv, wv, bv, &rm, &rv, mode, 1e-5).unwrap();
            let bias = g.input(bias.clone());
            let y = g.add(y, bias).unwrap();
            let y = g.sigmoid(y).unwrap();
            let y = g.mul(y, xv).unwrap();
            let loss = g.mean(y).unwrap();
            g.backward(loss).unwrap();
            (
                rm.value(),
                rv.value(),
                g.grad(xv).unwrap().clone(),
                w.grad(),
                b.grad(),
            )
        })
    };
    let one = run(1);
    assert_eq!(one, run(3));
    // momentum 1 leaves exactly the batch statistics in the running buffers.
    let m = (n * hw) as f64;
    for ch in 0..c {
        let vals: Vec<f64> = (0..n)
            .flat_map(|i| {
                x.data()[(i * c + ch) * hw..(i * c + ch + 1) * hw]
                    .iter()
                    .map(|&v| v as f64)
            })
            .collect();
        let mean = vals.iter().sum::<f64>() / m;
        let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (m - 1.0);
        assert!(
            (one.0.data()[ch] as f64 - mean).abs() < 1e-5,
            "mean of channel {ch}"
        );
        assert!(
            (one.1.data()[ch] as f64 - var).abs() < 1e-4 * var,
            "variance of channel {ch}"
        );
    }
}

#[test]
fn graphs_are_send() {
    fn assert_send<T: Send>() {}
    assert_send::<Graph>();
    assert_send::<AutogradError>();
}

/// Batch statistics of values far from zero that differ only in their last bits (1e4 and
/// 2e4 plus 0 to 3 units in the last place): the variance, a few 1e-7, must come out as a
/// two-pass `f64` reference computes it, where `sum(x^2) / m - mean^2` would lose it to
/// cancellation (mean^2 / variance ~ 1e15).
#[test]
fn batch_norm_statistics_survive_a_large_offset() {
    let (n, c, hw) = (4, 2, 25);
    let x: Vec<f32> = (0..n * c * hw)
        .map(|i| {
            let base = 1e4 * (1 + i / hw % c) as f32;
            let ulp = f32::from_bits(base.to_bits() + 1) - base;
            base + ulp * ((i * 7) % 4) as f32
        })
        .collect();
    let mut g = Graph::new();
    let xv = g.input_from(&[n, c, 5, 5], &x).unwrap();
    let ones = g.input(Tensor::ones(&[c]));
    let zeros = g.input(Tensor::zeros(&[c]));
    let (rm, rv) = (
        Param::buffer(Tensor::zeros(&[c])),
        Param::buffer(Tensor::ones(&[c])),
    );
    let mode = BatchNormMode::Train { momentum: 1.0 };
    let y = g
        .batch_norm2d(xv, ones, zeros, &rm, &rv, mode, 0.0)
        .unwrap();
    let y = g.value(y).data().to_vec();
    for ch in 0..c {
        let of = |v: &[f32]| -> Vec<f64> {
            (0..n)
                .flat_map(|i| &v[(i * c + ch) * hw..(i * c + ch + 1) * hw])
                .map(|&v| v as f64)
                .collect()
        };
        let (xs, ys) = (of(&x), of(&y));
        let m = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / m;
        let var = xs.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / m;
        assert!(var > 0.0);
        let unbiased = var * m / (m - 1.0);
        let (got_mean, got_var) = (rm.read().value.data()[ch], rv.read().value.data()[ch]);
        assert_eq!(got_mean, mean as f32, "channel {ch}");
        assert!(
            ((got_var as f64 - unbiased) / unbiased).abs() < 1e-6,
            "channel {ch}: running variance {got_var} vs {unbiased}"
        );
        // Normalised: unit variance.
        let y_mean = ys.iter().sum::<f64>() / m;
        let y_var = ys.iter().map(|v| (v - y_mean).powi(2)).sum::<f64>() / m;
        assert!((y_var - 1.0).abs() < 1e-3, "channel {ch}: variance {y_var}");
    }
}
