//! Every `pool_*` case of the bundled PyTorch reference vectors, forward and backward.

use ganglion_oracle::{Case, bundled_dir, check, load_dir};
use ganglion_pooling::{
    Pool2dParams, Pool2dShape, avg_pool2d_backward, avg_pool2d_forward, max_pool2d_backward,
    max_pool2d_forward,
};

/// Runs one case; `Err` names what disagreed.
fn run_case(case: &Case) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let params = Pool2dParams {
        kernel: case.pair("kernel").map_err(|e| err(&e))?,
        stride: case.pair("stride").map_err(|e| err(&e))?,
        padding: case.pair("padding").map_err(|e| err(&e))?,
        ceil_mode: case.bool("ceil_mode").map_err(|e| err(&e))?,
    };
    let input = case.tensor("input").map_err(|e| err(&e))?;
    let want_out = case.tensor("output").map_err(|e| err(&e))?;
    let grad_output = case.tensor("grad_output").map_err(|e| err(&e))?;
    let want_grad = case.tensor("grad_input").map_err(|e| err(&e))?;
    let dims = input.dims4().map_err(|e| err(&e))?;
    let shape = Pool2dShape::new(dims, params).map_err(|e| err(&e))?;
    if shape.output_dims()[..] != *want_out.shape() {
        return Err(format!(
            "output dims {:?}, PyTorch {:?}",
            shape.output_dims(),
            want_out.shape()
        ));
    }
    let mut out = vec![f32::NAN; shape.output_len()];
    let mut grad_in = vec![f32::NAN; shape.input_len()];
    match case.op.as_str() {
        "max_pool2d" => {
            let mut argmax = vec![u32::MAX; shape.output_len()];
            max_pool2d_forward(&shape, input.data(), &mut out, &mut argmax);
            max_pool2d_backward(&shape, grad_output.data(), &argmax, &mut grad_in);
        }
        "avg_pool2d" | "avg_exclude_pad_pool2d" => {
            let include = case.op == "avg_pool2d";
            avg_pool2d_forward(&shape, include, input.data(), &mut out);
            avg_pool2d_backward(&shape, include, grad_output.data(), &mut grad_in);
        }
        other => return Err(format!("unknown pool op `{other}`")),
    }
    for (what, got, want) in [
        ("output", &out, want_out.data()),
        ("grad_input", &grad_in, want_grad.data()),
    ] {
        let c = check(got, want);
        if !c.passed() {
            return Err(format!(
                "{what}: max abs error {} over tolerance {}",
                c.max_abs_err, c.tolerance
            ));
        }
    }
    Ok(())
}

#[test]
fn every_bundled_pool_case_matches_pytorch() {
    let cases = load_dir(&bundled_dir()).expect("bundled oracle cases load");
    let pool: Vec<&Case> = cases
        .iter()
        .filter(|c| c.name.starts_with("pool_"))
        .collect();
    let mut failures = Vec::new();
    let mut per_op = std::collections::BTreeMap::<&str, usize>::new();
    for case in &pool {
        *per_op.entry(case.op.as_str()).or_default() += 1;
        if let Err(e) = run_case(case) {
            failures.push(format!("{} ({}): {e}", case.name, case.op));
        }
    }
    assert!(
        failures.is_empty(),
        "failed cases:\n{}",
        failures.join("\n")
    );
    assert_eq!(
        pool.len(),
        40,
        "expected 40 pool cases, found {}",
        pool.len()
    );
    for op in ["max_pool2d", "avg_pool2d", "avg_exclude_pad_pool2d"] {
        assert!(
            per_op.get(op).copied().unwrap_or(0) >= 10,
            "too few {op} cases: {per_op:?}"
        );
    }
}

/// The `f64` reference loops agree with PyTorch too, so they are a sound oracle for the
/// property tests.
#[test]
fn reference_in_f64_matches_pytorch() {
    use ganglion_pooling::reference;
    let cases = load_dir(&bundled_dir()).expect("bundled oracle cases load");
    let mut ran = 0;
    for case in cases.iter().filter(|c| c.name.starts_with("pool_")) {
        let params = Pool2dParams {
            kernel: case.pair("kernel").unwrap(),
            stride: case.pair("stride").unwrap(),
            padding: case.pair("padding").unwrap(),
            ceil_mode: case.bool("ceil_mode").unwrap(),
        };
        let to64 = |name: &str| -> Vec<f64> {
            case.tensor(name)
                .unwrap()
                .data()
                .iter()
                .map(|&v| f64::from(v))
                .collect()
        };
        let input = to64("input");
        let grad_output = to64("grad_output");
        let shape = Pool2dShape::new(case.tensor("input").unwrap().dims4().unwrap(), params)
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let mut out = vec![0.0f64; shape.output_len()];
        let mut grad_in = vec![0.0f64; shape.input_len()];
        if case.op == "max_pool2d" {
            let mut argmax = vec![0u32; shape.output_len()];
            reference::max_pool2d_forward(&shape, &input, &mut out, &mut argmax);
            reference::max_pool2d_backward(&shape, &grad_output, &argmax, &mut grad_in);
        } else {
            let include = case.op == "avg_pool2d";
            reference::avg_pool2d_forward(&shape, include, &input, &mut out);
            reference::avg_pool2d_backward(&shape, include, &grad_output, &mut grad_in);
        }
        for (what, got) in [("output", &out), ("grad_input", &grad_in)] {
            let got: Vec<f32> = got.iter().map(|&v| v as f32).collect();
            let c = check(&got, case.tensor(what).unwrap().data());
            assert!(c.passed(), "{} ({}) {what}: {c:?}", case.name, case.op);
        }
        ran += 1;
    }
    assert_eq!(ran, 40);
}
