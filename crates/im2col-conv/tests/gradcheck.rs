//! Finite differences in `f64`: the reference's backward-data and backward-weight (and bias
//! gradient) are the derivatives of `L = sum(forward(x, w, b) * g)`. With the fast path tested
//! against the reference, this closes the chain from the definition to the fast kernels.

mod common;

use common::{random, shapes, widen};
use ganglion_im2col_conv::{Conv2dShape, reference};
use proptest::prelude::*;

/// `L = sum(forward(x, w, b) * g)` in `f64`.
fn loss(shape: &Conv2dShape, x: &[f64], w: &[f64], b: &[f64], g: &[f64]) -> f64 {
    let mut out = vec![0.0; shape.output_len()];
    reference::forward(shape, x, w, Some(b), &mut out);
    out.iter().zip(g).map(|(o, g)| o * g).sum()
}

/// Central differences of `loss` with respect to every element of `which`, checked against
/// `analytic`.
fn check_central_differences(
    name: &str,
    analytic: &[f64],
    mut which: Vec<f64>,
    loss_at: impl Fn(&[f64]) -> f64,
) -> Result<(), String> {
    const EPS: f64 = 1e-3;
    for i in 0..which.len() {
        let v = which[i];
        which[i] = v + EPS;
        let up = loss_at(&which);
        which[i] = v - EPS;
        let down = loss_at(&which);
        which[i] = v;
        let numeric = (up - down) / (2.0 * EPS);
        let scale = analytic[i].abs().max(1.0);
        if (numeric - analytic[i]).abs() > 1e-6 * scale {
            return Err(format!(
                "{name}[{i}]: analytic {} but central difference {numeric}",
                analytic[i]
            ));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn reference_gradients_match_central_differences(
        shape in shapes(1..=2, 1..=2, 1..=2, 1..=6, 1..=3),
        seed in 0u64..1000,
    ) {
        let x = widen(&random(shape.input_len(), seed));
        let w = widen(&random(shape.weight_len(), seed + 1));
        let b = widen(&random(shape.cout, seed + 2));
        let g = widen(&random(shape.output_len(), seed + 3));
        let mut gx = vec![0.0; x.len()];
        reference::backward_data(&shape, &g, &w, &mut gx);
        let mut gw = vec![0.0; w.len()];
        let mut gb = vec![0.0; b.len()];
        reference::backward_weight(&shape, &x, &g, &mut gw, Some(&mut gb));

        let by_x = |x: &[f64]| loss(&shape, x, &w, &b, &g);
        let by_w = |w: &[f64]| loss(&shape, &x, w, &b, &g);
        let by_b = |b: &[f64]| loss(&shape, &x, &w, b, &g);
        let checks = check_central_differences("grad_input", &gx, x.clone(), by_x)
            .and_then(|()| check_central_differences("grad_weight", &gw, w.clone(), by_w))
            .and_then(|()| check_central_differences("grad_bias", &gb, b.clone(), by_b));
        if let Err(e) = checks {
            prop_assert!(false, "{} for {:?}", e, shape);
        }
    }
}
