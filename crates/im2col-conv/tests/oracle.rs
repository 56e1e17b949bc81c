//! Every `conv2d` case of the bundled PyTorch reference vectors, through the fast kernels on
//! every instruction-set level this CPU has and through the `f32` reference.

mod common;

use common::{Operands, Results, fast_at, levels, reference_f32};
use ganglion_im2col_conv::{Conv2dParams, Conv2dShape, ConvWorkspace};
use ganglion_oracle::{Case, bundled_dir, check, load_dir};

fn shape_of(case: &Case) -> Conv2dShape {
    let params = Conv2dParams {
        stride: case.pair("stride").unwrap(),
        padding: case.pair("padding").unwrap(),
        dilation: case.pair("dilation").unwrap(),
        groups: case.usize("groups").unwrap(),
    };
    let input = case.tensor("input").unwrap().dims4().unwrap();
    let weight = case.tensor("weight").unwrap().dims4().unwrap();
    Conv2dShape::new(input, weight, params).unwrap_or_else(|e| panic!("{}: {e}", case.name))
}

/// Names of the tensors of `got` that miss their reference.
fn failures(case: &Case, got: &Results<f32>) -> Vec<String> {
    let mut wanted = vec![
        ("output", &got.output),
        ("grad_input", &got.grad_input),
        ("grad_weight", &got.grad_weight),
    ];
    if case.optional_tensor("grad_bias").is_some() {
        wanted.push(("grad_bias", &got.grad_bias));
    }
    wanted
        .into_iter()
        .filter_map(|(name, values)| {
            let c = check(values, case.tensor(name).unwrap().data());
            (!c.passed()).then(|| {
                format!(
                    "{name} (max error {}, allowed {})",
                    c.max_abs_err, c.tolerance
                )
            })
        })
        .collect()
}

#[test]
fn bundled_pytorch_cases_pass_fast_and_reference() {
    let cases: Vec<Case> = load_dir(&bundled_dir())
        .unwrap()
        .into_iter()
        .filter(|c| c.op == "conv2d")
        .collect();
    assert_eq!(cases.len(), 40, "the bundle holds 40 conv2d cases");
    let mut ws = ConvWorkspace::new();
    let mut failed = Vec::new();
    let mut with_groups = 0;
    for case in &cases {
        let shape = shape_of(case);
        with_groups += usize::from(shape.params.groups > 1);
        let ops = Operands {
            input: case.tensor("input").unwrap().data().to_vec(),
            weight: case.tensor("weight").unwrap().data().to_vec(),
            bias: case.optional_tensor("bias").map(|b| b.data().to_vec()),
            grad_output: case.tensor("grad_output").unwrap().data().to_vec(),
        };
        let runs = levels()
            .into_iter()
            .map(|isa| (isa.name(), fast_at(isa, &shape, &ops, &mut ws)))
            .chain([("reference", reference_f32(&shape, &ops))]);
        for (path, got) in runs {
            let bad = failures(case, &got);
            if !bad.is_empty() {
                failed.push(format!("{} ({path}): {}", case.name, bad.join(", ")));
            }
        }
    }
    assert!(with_groups > 0, "the bundle exercises groups");
    assert!(failed.is_empty(), "failing cases:\n{}", failed.join("\n"));
}
