//! Learning-rate schedules at their key points, against PyTorch's closed forms.

use ganglion_optim::{Constant, Cosine, LinearWarmup, OneCycle, OptimError, Schedule, StepLr};

fn assert_rel(actual: f32, expected: f64) {
    let err = (f64::from(actual) - expected).abs();
    assert!(
        err <= 1e-6 * expected.abs().max(1e-12),
        "got {actual}, expected {expected}"
    );
}

#[test]
fn step_lr_changes_at_multiples_of_step_size() {
    let s = StepLr::new(0.1, 3, 0.1).unwrap();
    // 0.1 * 0.1^floor(step / 3)
    for (step, expected) in [
        (0, 0.1),
        (2, 0.1),
        (3, 0.01),
        (5, 0.01),
        (6, 0.001),
        (9, 1e-4),
    ] {
        assert_rel(s.lr_at(step), expected);
    }
}

#[test]
fn cosine_hits_base_middle_and_minimum() {
    let s = Cosine::new(0.1, 10, 0.001).unwrap();
    // eta_min + (base - eta_min) * (1 + cos(pi * t / 10)) / 2
    assert_rel(s.lr_at(0), 0.1);
    assert_rel(s.lr_at(5), (0.1 + 0.001) / 2.0);
    assert_rel(s.lr_at(10), 0.001);
    // t = 2: 0.001 + 0.099 * (1 + cos(pi / 5)) / 2 = 0.001 + 0.099 * 0.9045085
    assert_rel(
        s.lr_at(2),
        0.001 + 0.099 * (1.0 + (std::f64::consts::PI / 5.0).cos()) / 2.0,
    );
    let lrs: Vec<f32> = (0..=10).map(|t| s.lr_at(t)).collect();
    assert!(lrs.windows(2).all(|w| w[1] < w[0]), "{lrs:?}");
    // PyTorch's closed form is periodic: past t_max the rate climbs again.
    assert_rel(s.lr_at(15), (0.1 + 0.001) / 2.0);
    assert_rel(s.lr_at(20), 0.1);
}

#[test]
fn warmup_ramps_linearly_then_hands_over() {
    let s = LinearWarmup::new(Constant::new(0.1).unwrap(), 4, 0.25).unwrap();
    // 0.1 * (0.25 + 0.75 * step / 4) for step < 4, then 0.1.
    let expected = [0.025, 0.04375, 0.0625, 0.08125, 0.1, 0.1];
    for (step, want) in expected.iter().enumerate() {
        assert_rel(s.lr_at(step as u64), *want);
    }
    let increments: Vec<f64> = (0..4)
        .map(|t| f64::from(s.lr_at(t + 1)) - f64::from(s.lr_at(t)))
        .collect();
    assert!(
        increments.iter().all(|d| (d - 0.01875).abs() < 1e-8),
        "{increments:?}"
    );

    // The inner schedule starts after the warm-up: step 4 is cosine's step 0.
    let s = LinearWarmup::new(Cosine::new(0.1, 10, 0.0).unwrap(), 4, 0.5).unwrap();
    assert_rel(s.lr_at(0), 0.05);
    assert_rel(s.lr_at(4), 0.1);
    assert_rel(s.lr_at(9), 0.05);
    assert_rel(s.inner().lr_at(5), 0.05);
}

#[test]
fn one_cycle_matches_pytorch() {
    let s = OneCycle::new(0.1, 100).unwrap();
    // Starts at max_lr / div_factor = 0.1 / 25.
    assert_rel(s.lr_at(0), 0.004);
    // Peaks at step pct_start * total - 1 = 29.
    assert!((s.peak_step() - 29.0).abs() < 1e-5);
    assert_rel(s.lr_at(29), 0.1);
    assert!(s.lr_at(28) < s.lr_at(29) && s.lr_at(30) < s.lr_at(29));
    // Ends at initial / final_div_factor = 0.004 / 1e4.
    assert_rel(s.lr_at(99), 4e-7);
    assert_rel(s.lr_at(150), 4e-7);
    // Halfway down (pct = (64 - 29) / (99 - 29) = 0.5): (0.1 + 4e-7) / 2.
    assert_rel(s.lr_at(64), 0.0500002);
    // Values of PyTorch's formula evaluated in f64 (pct_start = 0.3 as an f32 shifts the peak
    // by 1e-6 steps, far below f32 resolution here).
    assert_rel(s.lr_at(15), 0.05459866761210004);
    assert_rel(s.lr_at(28), 0.09971862194340926);
    assert_rel(s.lr_at(30), 0.09994965352845243);
    assert_rel(s.lr_at(98), 5.07464715475788e-05);

    let custom = OneCycle::with_factors(1.0, 10, 0.5, 10.0, 100.0).unwrap();
    assert_rel(custom.lr_at(0), 0.1);
    assert_rel(custom.lr_at(4), 1.0);
    assert_rel(custom.lr_at(9), 0.001);
}

#[test]
fn schedules_work_through_references_and_boxes() {
    let boxed: Box<dyn Schedule> = Box::new(StepLr::new(1.0, 1, 0.5).unwrap());
    assert_eq!(boxed.lr_at(2), 0.25);
    let warm = LinearWarmup::new(&boxed, 2, 0.5).unwrap();
    assert_eq!(warm.lr_at(0), 0.5);
    assert_eq!(warm.lr_at(3), 0.5);
}

#[test]
fn invalid_schedules_are_rejected() {
    let err = StepLr::new(0.1, 0, 0.5).unwrap_err();
    assert_eq!(err.to_string(), "step_lr: step_size must be >= 1, got 0");
    assert!(Cosine::new(0.1, 0, 0.0).is_err());
    assert!(Cosine::new(-0.1, 10, 0.0).is_err());
    assert!(Constant::new(f32::NAN).is_err());
    let err = LinearWarmup::new(Constant::new(0.1).unwrap(), 5, 0.0).unwrap_err();
    assert_eq!(
        err.to_string(),
        "linear_warmup: start_factor must be in (0, 1], got 0"
    );
    assert!(LinearWarmup::new(Constant::new(0.1).unwrap(), 0, 0.5).is_err());
    // pct_start * total_steps = 1: the warm-up phase spans no step (0 / 0 in PyTorch).
    let err = OneCycle::with_factors(0.1, 2, 0.5, 25.0, 1e4).unwrap_err();
    assert!(matches!(
        err,
        OptimError::InvalidHyperParameter {
            name: "pct_start",
            ..
        }
    ));
    assert!(OneCycle::with_factors(0.1, 10, 1.5, 25.0, 1e4).is_err());
    assert!(OneCycle::with_factors(0.1, 10, 0.3, 0.0, 1e4).is_err());
    assert!(OneCycle::new(0.1, 0).is_err());
}

#[test]
fn one_cycle_edge_phases_stay_finite() {
    // pct_start * total_steps < 1 (peak at step -0.7): PyTorch runs the second phase only.
    let s = OneCycle::new(0.1, 1).unwrap();
    assert_rel(s.lr_at(0), 4e-7);
    let s = OneCycle::with_factors(0.1, 10, 0.05, 25.0, 1e4).unwrap();
    // pct = (0 + 0.5) / (9 + 0.5) of the way from 0.1 down to 4e-7.
    let pct = 0.5f64 / 9.5;
    assert_rel(
        s.lr_at(0),
        4e-7 + (0.1 - 4e-7) / 2.0 * ((std::f64::consts::PI * pct).cos() + 1.0),
    );
    // pct_start = 1: all warm-up, peaking at the last step.
    let s = OneCycle::with_factors(0.1, 10, 1.0, 25.0, 1e4).unwrap();
    assert_rel(s.lr_at(0), 0.004);
    assert_rel(s.lr_at(9), 0.1);
    assert!((0..12).all(|t| s.lr_at(t).is_finite()));
}
