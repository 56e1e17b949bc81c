//! Every optimizer minimises a badly scaled quadratic: `f(p) = sum_i a_i (p_i - c_i)^2 / 2`.

use ganglion_autograd::Param;
use ganglion_optim::{
    Adam, AdamConfig, AdamW, Cosine, LinearWarmup, OneCycle, Optimizer, Schedule, Sgd, SgdConfig,
    clip_grad_norm,
};
use ganglion_tensor::Tensor;

const CURVATURE: [f32; 4] = [1.0, 4.0, 0.5, 2.0];
const TARGET: [f32; 4] = [3.0, -1.0, 0.5, -2.5];

/// Runs `steps` updates from zero with an optional schedule; returns the final distance.
fn minimise(
    make: impl FnOnce(Vec<Param>) -> Box<dyn Optimizer>,
    schedule: Option<&dyn Schedule>,
    clip: Option<f32>,
    steps: u64,
) -> f32 {
    let p = Param::new(Tensor::zeros(&[4]));
    let mut opt = make(vec![p.clone()]);
    for step in 0..steps {
        if let Some(s) = schedule {
            opt.set_lr(s.lr_at(step));
        }
        {
            let mut data = p.write();
            let ganglion_autograd::ParamData { value, grad, .. } = &mut *data;
            for (i, (g, v)) in grad.data_mut().iter_mut().zip(value.data()).enumerate() {
                *g = CURVATURE[i] * (v - TARGET[i]);
            }
        }
        if let Some(max) = clip {
            clip_grad_norm(opt.params(), max);
        }
        opt.step();
    }
    let value = p.value();
    value
        .data()
        .iter()
        .zip(TARGET)
        .map(|(v, t)| (v - t).abs())
        .fold(0.0, f32::max)
}

#[test]
fn sgd_variants_converge() {
    let plain = SgdConfig {
        lr: 0.2,
        ..SgdConfig::default()
    };
    let err = minimise(|ps| Box::new(Sgd::new(ps, plain).unwrap()), None, None, 300);
    assert!(err < 1e-4, "plain sgd: {err}");

    let nesterov = SgdConfig {
        lr: 0.05,
        momentum: 0.9,
        nesterov: true,
        ..SgdConfig::default()
    };
    let err = minimise(
        |ps| Box::new(Sgd::new(ps, nesterov).unwrap()),
        None,
        None,
        300,
    );
    assert!(err < 1e-4, "nesterov sgd: {err}");

    // Clipping slows the start (the first gradient has norm ~16) but not the end.
    let momentum = SgdConfig {
        lr: 0.05,
        momentum: 0.5,
        dampening: 0.5,
        ..SgdConfig::default()
    };
    let err = minimise(
        |ps| Box::new(Sgd::new(ps, momentum).unwrap()),
        None,
        Some(1.0),
        600,
    );
    assert!(err < 1e-4, "clipped sgd: {err}");
}

#[test]
fn adam_variants_converge() {
    let cosine = Cosine::new(0.1, 500, 0.0).unwrap();
    let config = AdamConfig {
        lr: 0.1,
        ..AdamConfig::default()
    };
    let err = minimise(
        |ps| Box::new(Adam::new(ps, config).unwrap()),
        Some(&cosine),
        None,
        500,
    );
    assert!(err < 1e-3, "adam: {err}");

    let ams = AdamConfig {
        amsgrad: true,
        ..config
    };
    let err = minimise(
        |ps| Box::new(Adam::new(ps, ams).unwrap()),
        Some(&cosine),
        None,
        500,
    );
    assert!(err < 1e-3, "amsgrad: {err}");

    // Decoupled decay pulls towards zero a little; a small decay keeps the optimum close.
    let adamw = AdamConfig {
        weight_decay: 1e-4,
        ..config
    };
    let warm = LinearWarmup::new(cosine, 20, 0.1).unwrap();
    let err = minimise(
        |ps| Box::new(AdamW::new(ps, adamw).unwrap()),
        Some(&warm),
        None,
        520,
    );
    assert!(err < 1e-2, "adamw: {err}");

    let one_cycle = OneCycle::new(0.2, 500).unwrap();
    let err = minimise(
        |ps| Box::new(Adam::new(ps, config).unwrap()),
        Some(&one_cycle),
        None,
        500,
    );
    assert!(err < 1e-3, "adam + one-cycle: {err}");
}
