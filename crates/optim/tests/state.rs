//! Checkpoint state: export/import round trips, bit-identical resumption, and the errors for
//! states and hyper-parameters that do not fit.

use ganglion_autograd::Param;
use ganglion_optim::{
    Adam, AdamConfig, AdamW, Cosine, OptimError, Optimizer, Schedule, Sgd, SgdConfig,
};
use ganglion_tensor::Tensor;

/// A small "model": two trainable tensors and a buffer.
fn model(values: Option<&[Param]>) -> Vec<Param> {
    match values {
        Some(src) => src
            .iter()
            .map(|p| {
                if p.requires_grad() {
                    Param::new(p.value())
                } else {
                    Param::buffer(p.value())
                }
            })
            .collect(),
        None => vec![
            Param::new(Tensor::new(&[3], vec![1.0, -2.0, 0.5]).unwrap()),
            Param::new(Tensor::from_fn(&[2, 2], |i| 0.25 * i as f32 - 0.3)),
            Param::buffer(Tensor::ones(&[2])),
        ],
    }
}

/// A deterministic gradient that depends on the values and the step, like a real loss would.
fn fill_grads(params: &[Param], step: u64) {
    for (k, p) in params.iter().enumerate() {
        let mut data = p.write();
        let ganglion_autograd::ParamData { value, grad, .. } = &mut *data;
        for (i, (g, v)) in grad.data_mut().iter_mut().zip(value.data()).enumerate() {
            let phase = (step as f32 + 1.0) * (i as f32 + 1.0) + k as f32;
            *g = 2.0 * (v - 0.1) + 0.3 * phase.sin();
        }
    }
}

fn run(opt: &mut dyn Optimizer, steps: u64) {
    let schedule = Cosine::new(0.05, 10, 0.001).unwrap();
    for _ in 0..steps {
        // The schedule is driven by the optimizer's own step count, so it resumes too.
        opt.set_lr(schedule.lr_at(opt.step_count()));
        fill_grads(opt.params(), opt.step_count());
        opt.step();
    }
}

fn bits(params: &[Param]) -> Vec<Vec<u32>> {
    params
        .iter()
        .map(|p| p.value().data().iter().map(|v| v.to_bits()).collect())
        .collect()
}

type Builder = Box<dyn Fn(Vec<Param>) -> Box<dyn Optimizer>>;

fn builders() -> Vec<(&'static str, Builder)> {
    let sgd = SgdConfig {
        lr: 0.05,
        momentum: 0.9,
        weight_decay: 1e-3,
        nesterov: true,
        ..SgdConfig::default()
    };
    let damped = SgdConfig {
        momentum: 0.8,
        dampening: 0.3,
        nesterov: false,
        ..sgd
    };
    let ams = AdamConfig {
        lr: 0.05,
        weight_decay: 1e-2,
        amsgrad: true,
        ..AdamConfig::default()
    };
    vec![
        (
            "sgd",
            Box::new(move |ps| Box::new(Sgd::new(ps, sgd).unwrap())),
        ),
        (
            "sgd",
            Box::new(move |ps| Box::new(Sgd::new(ps, damped).unwrap())),
        ),
        (
            "adam",
            Box::new(move |ps| Box::new(Adam::new(ps, ams).unwrap())),
        ),
        (
            "adamw",
            Box::new(|ps| Box::new(AdamW::new(ps, AdamConfig::adamw()).unwrap())),
        ),
    ]
}

#[test]
fn resuming_from_state_is_bit_identical() {
    for (kind, make) in builders() {
        let straight = model(None);
        let mut opt = make(straight.clone());
        run(opt.as_mut(), 8);

        let first = model(None);
        let mut opt_a = make(first.clone());
        run(opt_a.as_mut(), 3);
        let saved = opt_a.state();
        assert_eq!(saved.kind, kind);
        assert_eq!(saved.step, 3);
        assert_eq!(saved.param_steps, vec![3, 3, 0]);

        // A fresh process: new handles holding the saved values, a fresh optimizer.
        let resumed = model(Some(&first));
        let mut opt_b = make(resumed.clone());
        opt_b.load_state(saved).unwrap();
        assert_eq!(opt_b.step_count(), 3);
        run(opt_b.as_mut(), 5);

        assert_eq!(bits(&straight), bits(&resumed), "{kind}");
        assert_eq!(opt.state(), opt_b.state(), "{kind}");
        assert_ne!(
            bits(&straight),
            bits(&model(None)),
            "{kind}: training moved nothing"
        );
    }
}

#[test]
fn state_round_trips() {
    for (_, make) in builders() {
        let params = model(None);
        let mut opt = make(params.clone());
        assert!(opt.state().buffers.is_empty());
        run(opt.as_mut(), 2);
        let state = opt.state();
        assert!(
            state
                .buffers
                .keys()
                .all(|k| k.ends_with(".0") || k.ends_with(".1"))
        );
        let mut other = make(model(Some(&params)));
        other.load_state(state.clone()).unwrap();
        assert_eq!(other.state(), state);
        assert_eq!(other.lr(), opt.lr());
    }
}

#[test]
fn adam_state_names_its_buffers() {
    let params = model(None);
    let mut opt = Adam::new(params, AdamConfig::default()).unwrap();
    run(&mut opt, 1);
    let state = opt.state();
    let names: Vec<&str> = state.buffers.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        ["exp_avg.0", "exp_avg.1", "exp_avg_sq.0", "exp_avg_sq.1"]
    );
    assert_eq!(opt.state().buffers["exp_avg.1"].len(), 4);
}

#[test]
fn mismatched_states_are_rejected_and_change_nothing() {
    let params = model(None);
    let mut adam = Adam::new(params.clone(), AdamConfig::default()).unwrap();
    run(&mut adam, 2);
    let good = adam.state();

    let mut sgd = Sgd::new(model(None), SgdConfig::default()).unwrap();
    let err = sgd.load_state(good.clone()).unwrap_err();
    assert_eq!(err.to_string(), "sgd: cannot load state written by adam");

    let two = model(None)[..2].to_vec();
    let mut fewer = Adam::new(two, AdamConfig::default()).unwrap();
    let err = fewer.load_state(good.clone()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "adam: state has 3 parameters but the optimizer has 2"
    );

    let mut target = Adam::new(model(None), AdamConfig::default()).unwrap();
    run(&mut target, 1);
    let before = target.state();

    let mut short = good.clone();
    short.buffers.get_mut("exp_avg_sq.1").unwrap().pop();
    let err = target.load_state(short).unwrap_err();
    assert_eq!(
        err.to_string(),
        "adam: state buffer exp_avg_sq.1 has 3 elements but parameter 1 has shape [2, 2] \
         (4 elements)"
    );

    let mut missing = good.clone();
    missing.buffers.remove("exp_avg.0");
    let err = target.load_state(missing).unwrap_err();
    assert_eq!(err.to_string(), "adam: state lacks buffer exp_avg.0");

    let mut extra = good.clone();
    extra.buffers.insert("exp_avg.2".into(), vec![0.0; 2]);
    let err = target.load_state(extra).unwrap_err();
    assert_eq!(
        err.to_string(),
        "adam: state holds unexpected buffer exp_avg.2"
    );

    // AMSGrad on one side only.
    let mut ams = Adam::new(
        model(None),
        AdamConfig {
            amsgrad: true,
            ..AdamConfig::default()
        },
    )
    .unwrap();
    assert!(matches!(
        ams.load_state(good.clone()),
        Err(OptimError::MissingStateBuffer { .. })
    ));
    run(&mut ams, 1);
    assert!(matches!(
        target.load_state(ams.state()),
        Err(OptimError::UnexpectedStateBuffer { .. })
    ));

    let mut negative = good.clone();
    negative.lr = -1.0;
    assert!(target.load_state(negative).is_err());

    // Every failed load left the optimizer as it was.
    assert_eq!(target.state(), before);
    target.load_state(good.clone()).unwrap();
    assert_eq!(target.state(), good);
}

#[test]
fn invalid_hyper_parameters_are_rejected() {
    let p = || model(None);
    let err = Sgd::new(
        p(),
        SgdConfig {
            lr: -0.1,
            ..SgdConfig::default()
        },
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "sgd: lr must be finite and >= 0, got -0.10000000149011612"
    );
    let nesterov = SgdConfig {
        nesterov: true,
        ..SgdConfig::default()
    };
    let err = Sgd::new(p(), nesterov).unwrap_err();
    assert_eq!(
        err.to_string(),
        "sgd: nesterov requires momentum > 0 and dampening 0, got momentum 0 and dampening 0"
    );
    let damped = SgdConfig {
        momentum: 0.9,
        dampening: 0.1,
        ..nesterov
    };
    assert!(matches!(
        Sgd::new(p(), damped),
        Err(OptimError::NesterovRequiresMomentum { .. })
    ));
    assert!(
        Sgd::new(
            p(),
            SgdConfig {
                momentum: -0.5,
                ..SgdConfig::default()
            }
        )
        .is_err()
    );
    assert!(
        Sgd::new(
            p(),
            SgdConfig {
                weight_decay: f32::NAN,
                ..SgdConfig::default()
            }
        )
        .is_err()
    );

    let betas = |b: (f32, f32)| AdamConfig {
        betas: b,
        ..AdamConfig::default()
    };
    let err = Adam::new(p(), betas((1.0, 0.999))).unwrap_err();
    assert_eq!(err.to_string(), "adam: betas.0 must be in [0, 1), got 1");
    let err = AdamW::new(p(), betas((0.9, -0.5))).unwrap_err();
    assert_eq!(
        err.to_string(),
        "adamw: betas.1 must be in [0, 1), got -0.5"
    );
    assert!(
        Adam::new(
            p(),
            AdamConfig {
                eps: -1e-8,
                ..AdamConfig::default()
            }
        )
        .is_err()
    );
    assert!(
        AdamConfig {
            lr: f32::INFINITY,
            ..AdamConfig::default()
        }
        .validate()
        .is_err()
    );
    assert!(Adam::new(p(), betas((0.0, 0.0))).is_ok());

    let w = p();
    let err = Adam::new(
        vec![w[0].clone(), w[1].clone(), w[0].clone()],
        AdamConfig::default(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "adam: parameter 2 is the same tensor as parameter 0"
    );
}
