//! The bundled PyTorch reference cases, run through the graph ops end to end: forward values,
//! running statistics and the gradients of `L = sum(output * grad_output)` (for cross-entropy,
//! of the loss itself).

use ganglion_autograd::{BatchNormMode, Conv2dParams, Graph, Param, Pool2dParams, Var};
use ganglion_oracle::{Case, bundled_dir, check, load_dir};
use ganglion_tensor::Tensor;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn cases(prefix: &str) -> Vec<Case> {
    load_dir(&bundled_dir())
        .expect("bundled oracle cases load")
        .into_iter()
        .filter(|c| c.name.starts_with(prefix))
        .collect()
}

fn assert_close(case: &Case, what: &str, got: &[f32], want: &Tensor) {
    let c = check(got, want.data());
    assert!(
        c.passed(),
        "{}: {what} max error {} > tolerance {}",
        case.name,
        c.max_abs_err,
        c.tolerance
    );
}

fn grad<'a>(g: &'a Graph, v: Var, case: &Case, what: &str) -> &'a Tensor {
    g.grad(v)
        .unwrap_or_else(|| panic!("{}: no gradient reached {what}", case.name))
}

/// `sum(out * grad_output)`: its gradients are what the cases store.
fn weighted_sum(g: &mut Graph, out: Var, case: &Case) -> Result<Var, Box<dyn std::error::Error>> {
    let go = g.input(case.tensor("grad_output")?.clone());
    let prod = g.mul(out, go)?;
    Ok(g.sum(prod)?)
}

#[test]
fn linear_cases_match_pytorch() -> TestResult {
    let cases = cases("linear_");
    for case in &cases {
        let mut g = Graph::new();
        let x = g.variable(case.tensor("input")?.clone());
        let w = g.variable(case.tensor("weight")?.clone());
        let b = g.variable(case.tensor("bias")?.clone());
        let y = g.linear(x, w, Some(b))?;
        assert_close(case, "output", g.value(y).data(), case.tensor("output")?);
        let loss = weighted_sum(&mut g, y, case)?;
        g.backward(loss)?;
        for (v, name) in [(x, "grad_input"), (w, "grad_weight"), (b, "grad_bias")] {
            assert_close(
                case,
                name,
                grad(&g, v, case, name).data(),
                case.tensor(name)?,
            );
        }
    }
    assert_eq!(cases.len(), 40);
    Ok(())
}

#[test]
fn cross_entropy_cases_match_pytorch() -> TestResult {
    let cases = cases("cross_entropy_");
    let mut smoothed = 0;
    for case in &cases {
        let ls = case.f64("label_smoothing")? as f32;
        smoothed += usize::from(ls > 0.0);
        let targets: Vec<usize> = case
            .tensor("target")?
            .data()
            .iter()
            .map(|&t| t as usize)
            .collect();
        let mut g = Graph::new();
        let x = g.variable(case.tensor("logits")?.clone());
        let loss = g.cross_entropy(x, &targets, ls)?;
        assert_eq!(g.shape(loss), &[] as &[usize]);
        assert_close(case, "loss", g.value(loss).data(), case.tensor("loss")?);
        g.backward(loss)?;
        let want = case.tensor("grad_logits")?;
        assert_close(
            case,
            "grad_logits",
            grad(&g, x, case, "logits").data(),
            want,
        );
    }
    assert_eq!(cases.len(), 40);
    assert!(smoothed > 0, "no case exercised label smoothing");
    Ok(())
}

#[test]
fn batchnorm2d_train_cases_match_pytorch() -> TestResult {
    let cases = cases("batchnorm2d_");
    for case in &cases {
        assert_eq!(case.op, "batchnorm2d_train", "{}", case.name);
        let momentum = case.f64("momentum")? as f32;
        let eps = case.f64("eps")? as f32;
        let running_mean = Param::buffer(case.tensor("running_mean")?.clone());
        let running_var = Param::buffer(case.tensor("running_var")?.clone());
        // Weight and bias as parameters: their gradients must land in the Param handles.
        let weight = Param::new(case.tensor("weight")?.clone());
        let bias = Param::new(case.tensor("bias")?.clone());
        let mut g = Graph::new();
        let x = g.variable(case.tensor("input")?.clone());
        let (w, b) = (g.param(&weight), g.param(&bias));
        let mode = BatchNormMode::Train { momentum };
        let y = g.batch_norm2d(x, w, b, &running_mean, &running_var, mode, eps)?;
        assert_close(case, "output", g.value(y).data(), case.tensor("output")?);
        let rm = running_mean.value();
        assert_close(
            case,
            "new_running_mean",
            rm.data(),
            case.tensor("new_running_mean")?,
        );
        let rv = running_var.value();
        assert_close(
            case,
            "new_running_var",
            rv.data(),
            case.tensor("new_running_var")?,
        );
        let loss = weighted_sum(&mut g, y, case)?;
        g.backward(loss)?;
        assert_close(
            case,
            "grad_input",
            grad(&g, x, case, "input").data(),
            case.tensor("grad_input")?,
        );
        assert_close(
            case,
            "grad_weight",
            weight.grad().data(),
            case.tensor("grad_weight")?,
        );
        assert_close(
            case,
            "grad_bias",
            bias.grad().data(),
            case.tensor("grad_bias")?,
        );
        // Buffers never receive gradients.
        assert!(running_mean.grad().data().iter().all(|&v| v == 0.0));
    }
    assert_eq!(cases.len(), 40);
    Ok(())
}

#[test]
fn conv2d_cases_match_pytorch() -> TestResult {
    let cases = cases("conv2d_");
    let mut with_bias = 0;
    // One graph for every case: the shared workspace and pool must not leak state between
    // differently shaped convolutions.
    let mut g = Graph::new();
    for case in &cases {
        let params = Conv2dParams {
            stride: case.pair("stride")?,
            padding: case.pair("padding")?,
            dilation: case.pair("dilation")?,
            groups: case.usize("groups")?,
        };
        g.reset();
        let x = g.variable(case.tensor("input")?.clone());
        let w = g.variable(case.tensor("weight")?.clone());
        let b = case.optional_tensor("bias").map(|t| g.variable(t.clone()));
        with_bias += usize::from(b.is_some());
        let y = g.conv2d(x, w, b, params)?;
        assert_close(case, "output", g.value(y).data(), case.tensor("output")?);
        let loss = weighted_sum(&mut g, y, case)?;
        g.backward(loss)?;
        assert_close(
            case,
            "grad_input",
            grad(&g, x, case, "input").data(),
            case.tensor("grad_input")?,
        );
        assert_close(
            case,
            "grad_weight",
            grad(&g, w, case, "weight").data(),
            case.tensor("grad_weight")?,
        );
        if let Some(b) = b {
            assert_close(
                case,
                "grad_bias",
                grad(&g, b, case, "bias").data(),
                case.tensor("grad_bias")?,
            );
        }
    }
    assert_eq!(cases.len(), 40);
    assert!(with_bias > 0 && with_bias < cases.len());
    Ok(())
}

#[test]
fn pool_cases_match_pytorch() -> TestResult {
    let cases = cases("pool_");
    let mut per_op = [0usize; 3];
    let mut g = Graph::new();
    for case in &cases {
        let params = Pool2dParams {
            kernel: case.pair("kernel")?,
            stride: case.pair("stride")?,
            padding: case.pair("padding")?,
            ceil_mode: case.bool("ceil_mode")?,
        };
        g.reset();
        let x = g.variable(case.tensor("input")?.clone());
        let y = match case.op.as_str() {
            "max_pool2d" => {
                per_op[0] += 1;
                g.max_pool2d(x, params)?
            }
            "avg_pool2d" => {
                per_op[1] += 1;
                g.avg_pool2d(x, params, true)?
            }
            "avg_exclude_pad_pool2d" => {
                per_op[2] += 1;
                g.avg_pool2d(x, params, false)?
            }
            other => panic!("{}: unknown pool op {other}", case.name),
        };
        assert_close(case, "output", g.value(y).data(), case.tensor("output")?);
        let loss = weighted_sum(&mut g, y, case)?;
        g.backward(loss)?;
        assert_close(
            case,
            "grad_input",
            grad(&g, x, case, "input").data(),
            case.tensor("grad_input")?,
        );
    }
    assert_eq!(cases.len(), 40);
    assert!(per_op.iter().all(|&n| n > 0), "ops exercised: {per_op:?}");
    Ok(())
}
