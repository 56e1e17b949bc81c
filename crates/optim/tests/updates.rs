//! Three hand-computed steps of every optimizer, checked against values worked out in `f64`.
//!
//! Hyper-parameters are powers of two where possible so the SGD arithmetic is exact in `f32`
//! and the Adam arithmetic differs from the `f64` values only by rounding.

use ganglion_autograd::Param;
use ganglion_optim::{Adam, AdamConfig, AdamW, Optimizer, Sgd, SgdConfig};
use ganglion_tensor::Tensor;

fn param(values: &[f32]) -> Param {
    Param::new(Tensor::new(&[values.len()], values.to_vec()).unwrap())
}

/// Sets the gradient, steps, and returns the new value.
fn step_with(opt: &mut dyn Optimizer, p: &Param, grad: &[f32]) -> Vec<f32> {
    p.write().grad.data_mut().copy_from_slice(grad);
    opt.step();
    p.value().into_vec()
}

fn assert_close(actual: &[f32], expected: &[f64], tol: f64) {
    assert_eq!(actual.len(), expected.len());
    for (a, e) in actual.iter().zip(expected) {
        assert!(
            (f64::from(*a) - e).abs() <= tol,
            "got {actual:?}, expected {expected:?}"
        );
    }
}

#[test]
fn sgd_momentum_dampening_weight_decay() {
    let p = param(&[1.0, -2.0]);
    let config = SgdConfig {
        lr: 0.5,
        momentum: 0.5,
        dampening: 0.5,
        weight_decay: 0.25,
        nesterov: false,
    };
    let mut opt = Sgd::new(vec![p.clone()], config).unwrap();
    // Step 1: g = [1, 2] + 0.25 * [1, -2] = [1.25, 1.5]. First step: buf = g (no dampening).
    //   p = [1, -2] - 0.5 * [1.25, 1.5] = [0.375, -2.75]
    assert_close(&step_with(&mut opt, &p, &[1.0, 2.0]), &[0.375, -2.75], 0.0);
    // Step 2: g = [-1, 0.5] + 0.25 * [0.375, -2.75] = [-0.90625, -0.1875]
    //   buf = 0.5 * [1.25, 1.5] + (1 - 0.5) * g = [0.171875, 0.65625]
    //   p = [0.375, -2.75] - 0.5 * buf = [0.2890625, -3.078125]
    assert_close(
        &step_with(&mut opt, &p, &[-1.0, 0.5]),
        &[0.2890625, -3.078125],
        0.0,
    );
    // Step 3: g = [2, -4] + 0.25 * [0.2890625, -3.078125] = [2.072265625, -4.76953125]
    //   buf = 0.5 * [0.171875, 0.65625] + 0.5 * g = [1.1220703125, -2.056640625]
    //   p = [0.2890625, -3.078125] - 0.5 * buf = [-0.27197265625, -2.0498046875]
    assert_close(
        &step_with(&mut opt, &p, &[2.0, -4.0]),
        &[-0.27197265625, -2.0498046875],
        0.0,
    );
}

#[test]
fn sgd_nesterov() {
    let p = param(&[1.0]);
    let config = SgdConfig {
        lr: 0.5,
        momentum: 0.5,
        nesterov: true,
        ..SgdConfig::default()
    };
    let mut opt = Sgd::new(vec![p.clone()], config).unwrap();
    // Step 1: buf = g = 2; d = g + 0.5 * buf = 3; p = 1 - 0.5 * 3 = -0.5
    assert_close(&step_with(&mut opt, &p, &[2.0]), &[-0.5], 0.0);
    // Step 2: buf = 0.5 * 2 + (-1) = 0; d = -1 + 0.5 * 0 = -1; p = -0.5 + 0.5 = 0
    assert_close(&step_with(&mut opt, &p, &[-1.0]), &[0.0], 0.0);
    // Step 3: buf = 0.5 * 0 + 0.5 = 0.5; d = 0.5 + 0.25 = 0.75; p = 0 - 0.375 = -0.375
    assert_close(&step_with(&mut opt, &p, &[0.5]), &[-0.375], 0.0);
}

#[test]
fn sgd_plain_weight_decay() {
    let p = param(&[2.0]);
    let config = SgdConfig {
        lr: 0.25,
        weight_decay: 0.5,
        ..SgdConfig::default()
    };
    let mut opt = Sgd::new(vec![p.clone()], config).unwrap();
    // g = 1 + 0.5 * 2 = 2; p = 2 - 0.25 * 2 = 1.5
    assert_close(&step_with(&mut opt, &p, &[1.0]), &[1.5], 0.0);
    // g = 1 + 0.75 = 1.75; p = 1.5 - 0.4375 = 1.0625
    assert_close(&step_with(&mut opt, &p, &[1.0]), &[1.0625], 0.0);
    // g = 1 + 0.53125 = 1.53125; p = 1.0625 - 0.3828125 = 0.6796875
    assert_close(&step_with(&mut opt, &p, &[1.0]), &[0.6796875], 0.0);
}

fn adam_config() -> AdamConfig {
    AdamConfig {
        lr: 0.1,
        betas: (0.5, 0.75),
        eps: 1e-8,
        weight_decay: 0.0,
        amsgrad: false,
    }
}

const ADAM_GRADS: [[f32; 2]; 3] = [[0.5, -1.0], [0.25, 2.0], [-1.0, 1.0]];

#[test]
fn adam_bias_correction() {
    let p = param(&[1.0, -0.5]);
    let mut opt = Adam::new(vec![p.clone()], adam_config()).unwrap();
    // Step 1 (t = 1): m = 0.5 * g = [0.25, -0.5]; v = 0.25 * g^2 = [0.0625, 0.25].
    //   m_hat = m / (1 - 0.5) = g; v_hat = v / (1 - 0.75) = g^2, so the step is
    //   lr * g / (|g| + eps) = 0.1 * sign(g) (less 2e-9 for eps): p = [0.9, -0.4].
    assert_close(
        &step_with(&mut opt, &p, &ADAM_GRADS[0]),
        &[0.900000002, -0.400000001],
        1e-7,
    );
    // Step 2 (t = 2), g = [0.25, 2]: m = 0.5 * m + 0.5 * g = [0.25, 0.75];
    //   v = 0.75 * v + 0.25 * g^2 = [0.0625, 1.1875]; 1 - b1^2 = 0.75; 1 - b2^2 = 0.4375.
    //   p0 = 0.9 - 0.1 * (0.25 / 0.75) / sqrt(0.0625 / 0.4375) = 0.9 - 0.0881917 = 0.8118083
    //   p1 = -0.4 - 0.1 * (0.75 / 0.75) / sqrt(1.1875 / 0.4375) = -0.4 - 0.0606977
    assert_close(
        &step_with(&mut opt, &p, &ADAM_GRADS[1]),
        &[0.8118082939645135, -0.46069769849826736],
        1e-6,
    );
    // Step 3 (t = 3), g = [-1, 1]: m = [-0.375, 0.875]; v = [0.296875, 1.140625];
    //   1 - b1^3 = 0.875; 1 - b2^3 = 0.578125.
    //   p0 = 0.8118083 + 0.1 * (0.375 / 0.875) / sqrt(0.296875 / 0.578125) = 0.8716146
    assert_close(
        &step_with(&mut opt, &p, &ADAM_GRADS[2]),
        &[0.8716146401234437, -0.5318910484581922],
        1e-6,
    );
    assert_eq!(opt.step_count(), 3);
}

#[test]
fn adam_l2_weight_decay_enters_the_gradient() {
    let p = param(&[1.0, -0.5]);
    let config = AdamConfig {
        weight_decay: 0.5,
        ..adam_config()
    };
    let mut opt = Adam::new(vec![p.clone()], config).unwrap();
    // Step 1: g = [0.5, -1] + 0.5 * [1, -0.5] = [1, -1.25]; as without decay the first step
    //   is 0.1 * sign(g): p = [0.9, -0.4].
    // Step 2: g = [0.25, 2] + 0.5 * [0.9, -0.4] = [0.7, 1.8]; m = [0.6, 0.5875];
    //   v = 0.75 * [0.25, 0.390625] + 0.25 * [0.49, 3.24] = [0.31, 1.10296875];
    //   p0 = 0.9 - 0.1 * (0.6 / 0.75) / sqrt(0.31 / 0.4375) = 0.8049618
    // Step 3 continues the same way (values from the same formulas in f64).
    let expected = [
        [0.900000001, -0.4000000008],
        [0.80496180945396, -0.4493348754929855],
        [0.8047717809416386, -0.5092248793090682],
    ];
    for (grad, want) in ADAM_GRADS.iter().zip(expected) {
        assert_close(&step_with(&mut opt, &p, grad), &want, 1e-6);
    }
}

#[test]
fn adamw_decouples_weight_decay() {
    let p = param(&[1.0, -0.5]);
    let config = AdamConfig {
        weight_decay: 0.5,
        ..adam_config()
    };
    let mut opt = AdamW::new(vec![p.clone()], config).unwrap();
    // Each step first shrinks p by 1 - lr * wd = 0.95, then applies Adam on the raw gradient,
    // so the moments equal plain Adam's (decay never enters them).
    // Step 1: p = 0.95 * [1, -0.5] - 0.1 * sign(g) = [0.85, -0.375]
    // Step 2: p0 = 0.95 * 0.85 - 0.0881917 = 0.7193083 (Adam's step-2 size from above)
    // Step 3: p0 = 0.95 * 0.7193083 + 0.0598063 = 0.7431492
    let expected = [
        [0.8500000019999999, -0.37500000099999997],
        [0.7193082938645134, -0.41694769844826735],
        [0.743149225330218, -0.46729366348577883],
    ];
    for (grad, want) in ADAM_GRADS.iter().zip(expected) {
        assert_close(&step_with(&mut opt, &p, grad), &want, 1e-6);
    }
    assert_eq!(AdamConfig::adamw().weight_decay, 0.01);
}

#[test]
fn amsgrad_keeps_the_largest_second_moment() {
    // Gradients 2, 0.5, 0.5: v = 1, then 0.75 * 1 + 0.25 * 0.25 = 0.8125, then 0.671875, so
    // AMSGrad keeps v_max = 1 and takes smaller steps than plain Adam.
    // Step 2 with AMSGrad: m = 0.75; p = 0.9 - 0.1 * (0.75 / 0.75) / sqrt(1 / 0.4375) = 0.8338562
    // Step 2 without: p = 0.9 - 0.1 / sqrt(0.8125 / 0.4375) = 0.8266201
    let grads = [[2.0], [0.5], [0.5]];
    for (amsgrad, expected) in [
        (true, [0.9000000005, 0.8338562181608852, 0.7795458388390261]),
        (
            false,
            [0.9000000005, 0.8266200624679272, 0.7603620209723154],
        ),
    ] {
        let p = param(&[1.0]);
        let config = AdamConfig {
            amsgrad,
            ..adam_config()
        };
        let mut opt = Adam::new(vec![p.clone()], config).unwrap();
        for (grad, want) in grads.iter().zip(expected) {
            assert_close(&step_with(&mut opt, &p, grad), &[want], 1e-6);
        }
    }
}

#[test]
fn frozen_params_are_untouched() {
    let sgd = SgdConfig {
        lr: 0.5,
        momentum: 0.9,
        weight_decay: 0.1,
        ..SgdConfig::default()
    };
    let adam = AdamConfig {
        weight_decay: 0.1,
        ..adam_config()
    };
    let build: [&dyn Fn(Vec<Param>) -> Box<dyn Optimizer>; 3] = [
        &|ps| Box::new(Sgd::new(ps, sgd).unwrap()),
        &|ps| Box::new(Adam::new(ps, adam).unwrap()),
        &|ps| Box::new(AdamW::new(ps, adam).unwrap()),
    ];
    for make in build {
        let trained = param(&[1.0, 2.0]);
        let buffer = Param::buffer(Tensor::new(&[2], vec![3.0, 4.0]).unwrap());
        let frozen = param(&[5.0]);
        frozen.write().requires_grad = false;
        for p in [&trained, &buffer, &frozen] {
            p.write().grad.data_mut().fill(1.0);
        }
        let mut opt = make(vec![trained.clone(), buffer.clone(), frozen.clone()]);
        opt.step();
        opt.step();
        assert_ne!(trained.value().data(), &[1.0, 2.0]);
        assert_eq!(buffer.value().data(), &[3.0, 4.0]);
        assert_eq!(frozen.value().data(), &[5.0]);
        assert_eq!(opt.state().param_steps, vec![2, 0, 0]);
    }
}

#[test]
fn adam_bias_correction_counts_per_parameter() {
    // A parameter unfrozen after two steps gets t = 1 on its first update, as PyTorch's
    // per-parameter `state["step"]`: a first Adam step moves by lr * sign(g).
    let early = param(&[0.0]);
    let late = param(&[0.0]);
    late.write().requires_grad = false;
    let mut opt = Adam::new(vec![early.clone(), late.clone()], adam_config()).unwrap();
    for p in [&early, &late] {
        p.write().grad.data_mut()[0] = 3.0;
    }
    opt.step();
    opt.step();
    late.write().requires_grad = true;
    opt.step();
    assert_close(late.value().data(), &[-0.1], 1e-7);
    assert_eq!(opt.state().param_steps, vec![3, 1]);
}

#[test]
fn zero_grad_and_set_lr() {
    let p = param(&[1.0]);
    let mut opt = Sgd::new(vec![p.clone()], SgdConfig::default()).unwrap();
    assert_eq!(opt.lr(), 1e-3);
    p.write().grad.data_mut()[0] = 7.0;
    opt.zero_grad();
    assert_eq!(p.grad().data(), &[0.0]);
    opt.set_lr(0.25);
    assert_eq!(opt.lr(), 0.25);
    assert_eq!(opt.config().lr, 0.25);
    assert!(opt.params()[0].ptr_eq(&p));
}

#[test]
#[should_panic(expected = "set_lr needs a finite lr >= 0")]
fn set_lr_rejects_negative() {
    let mut opt = Adam::new(vec![param(&[1.0])], AdamConfig::default()).unwrap();
    opt.set_lr(-1.0);
}
