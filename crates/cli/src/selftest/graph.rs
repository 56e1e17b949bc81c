//! Selftest runners for `linear`, `cross_entropy` and `batchnorm2d_train`, run through an
//! autograd [`Graph`] as training uses them.

use super::{Compared, Workspaces, check_references, compare_all, dims2, dims4, input_of};
use anyhow::{Context, Result, ensure};
use ganglion::autograd::{BatchNormMode, Graph, Param, Var};
use ganglion::tensor::Tensor;
use ganglion_oracle::Case;

/// The gradient the last backward pass left on `v`, which must have reached it.
fn grad_of<'g>(g: &'g Graph, v: Var, name: &str) -> Result<&'g [f32]> {
    g.grad(v)
        .map(Tensor::data)
        .with_context(|| format!("no gradient reached `{name}`"))
}

/// `sum(output * grad_output)`: the loss whose gradients the cases store.
fn weighted_sum(g: &mut Graph, output: Var, grad_output: &Tensor) -> Result<Var> {
    let go = g.input_from(grad_output.shape(), grad_output.data())?;
    let product = g.mul(output, go)?;
    Ok(g.sum(product)?)
}

pub(super) fn run_linear(case: &Case, workspaces: &mut Workspaces) -> Result<Vec<Compared>> {
    let [n, fin] = dims2(case, "input")?;
    let [fout, win] = dims2(case, "weight")?;
    ensure!(
        fin == win,
        "`input` has shape [{n}, {fin}] but `weight` [{fout}, {win}] expects {win} features"
    );
    let (input, weight) = (case.tensor("input")?, case.tensor("weight")?);
    let bias = match case.optional_tensor("bias") {
        Some(_) => Some(input_of(case, "bias", &[fout])?),
        None => None,
    };
    let grad_output = input_of(case, "grad_output", &[n, fout])?;
    let (out_dims, weight_dims) = ([n, fout], [fout, fin]);
    let mut results: Vec<(&'static str, &[usize])> = vec![
        ("output", &out_dims),
        ("grad_input", input.shape()),
        ("grad_weight", &weight_dims),
    ];
    if let Some(bias) = bias {
        results.push(("grad_bias", bias.shape()));
    }
    check_references(case, &results)?;

    let g = &mut workspaces.graph;
    g.reset();
    let x = g.variable(input.clone());
    let w = g.variable(weight.clone());
    let b = bias.map(|b| g.variable(b.clone()));
    let y = g.linear(x, w, b)?;
    let loss = weighted_sum(g, y, grad_output)?;
    g.backward(loss)?;
    let mut got = vec![
        g.value(y).data(),
        grad_of(g, x, "input")?,
        grad_of(g, w, "weight")?,
    ];
    if let Some(b) = b {
        got.push(grad_of(g, b, "bias")?);
    }
    compare_all(case, &results, &got)
}

/// The class indices stored as `f32` in `target`: each must be a whole number below `classes`.
fn class_indices(target: &Tensor, classes: usize) -> Result<Vec<usize>> {
    target
        .data()
        .iter()
        .enumerate()
        .map(|(i, &t)| {
            ensure!(
                t.is_finite() && t >= 0.0 && t.fract() == 0.0,
                "`target` {t} at batch index {i} is not a class index"
            );
            ensure!(
                (t as usize) < classes,
                "`target` {t} at batch index {i} is out of range for {classes} classes"
            );
            Ok(t as usize)
        })
        .collect()
}

pub(super) fn run_cross_entropy(case: &Case, workspaces: &mut Workspaces) -> Result<Vec<Compared>> {
    let label_smoothing = case.f64("label_smoothing")?;
    ensure!(
        (0.0..=1.0).contains(&label_smoothing),
        "label_smoothing = {label_smoothing} must be in [0, 1]"
    );
    let [n, classes] = dims2(case, "logits")?;
    let logits = case.tensor("logits")?;
    let targets = class_indices(input_of(case, "target", &[n])?, classes)?;
    // PyTorch stores the mean loss as `[]` or `[1]`; either holds the one number.
    let loss_ref = case.tensor("loss")?;
    ensure!(
        loss_ref.len() == 1 && loss_ref.shape().len() <= 1,
        "`loss` has shape {:?} but cross_entropy gives one number",
        loss_ref.shape()
    );
    let results: [(&'static str, &[usize]); 2] =
        [("loss", loss_ref.shape()), ("grad_logits", &[n, classes])];
    check_references(case, &results)?;

    let g = &mut workspaces.graph;
    g.reset();
    let x = g.variable(logits.clone());
    let loss = g.cross_entropy(x, &targets, label_smoothing as f32)?;
    g.backward(loss)?;
    compare_all(
        case,
        &results,
        &[g.value(loss).data(), grad_of(g, x, "logits")?],
    )
}

pub(super) fn run_batchnorm2d_train(
    case: &Case,
    workspaces: &mut Workspaces,
) -> Result<Vec<Compared>> {
    let momentum = case.f64("momentum")? as f32;
    let eps = case.f64("eps")? as f32;
    let dims = dims4(case, "input")?;
    let c = [dims[1]];
    let [weight, bias, running_mean, running_var] =
        ["weight", "bias", "running_mean", "running_var"].map(|name| input_of(case, name, &c));
    let (weight, bias) = (weight?, bias?);
    let (running_mean, running_var) = (running_mean?, running_var?);
    let grad_output = input_of(case, "grad_output", &dims)?;
    let results: [(&'static str, &[usize]); 6] = [
        ("output", &dims),
        ("new_running_mean", &c),
        ("new_running_var", &c),
        ("grad_input", &dims),
        ("grad_weight", &c),
        ("grad_bias", &c),
    ];
    check_references(case, &results)?;

    // As a model holds them: weight and bias trainable, running statistics buffers updated in
    // place by the forward pass; the gradients must land in the parameter handles.
    let running_mean = Param::buffer(running_mean.clone());
    let running_var = Param::buffer(running_var.clone());
    let (weight, bias) = (Param::new(weight.clone()), Param::new(bias.clone()));
    let g = &mut workspaces.graph;
    g.reset();
    let x = g.variable(case.tensor("input")?.clone());
    let (w, b) = (g.param(&weight), g.param(&bias));
    let mode = BatchNormMode::Train { momentum };
    let y = g.batch_norm2d(x, w, b, &running_mean, &running_var, mode, eps)?;
    let loss = weighted_sum(g, y, grad_output)?;
    g.backward(loss)?;
    let (new_mean, new_var) = (running_mean.value(), running_var.value());
    let (grad_weight, grad_bias) = (weight.grad(), bias.grad());
    compare_all(
        case,
        &results,
        &[
            g.value(y).data(),
            new_mean.data(),
            new_var.data(),
            grad_of(g, x, "input")?,
            grad_weight.data(),
            grad_bias.data(),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_must_be_whole_in_range_class_indices() {
        let target = |data: Vec<f32>| Tensor::new(&[data.len()], data).unwrap();
        assert_eq!(
            class_indices(&target(vec![0.0, 2.0, 1.0]), 3).unwrap(),
            [0, 2, 1]
        );
        for bad in [3.0, -1.0, 0.5, f32::NAN, f32::INFINITY] {
            let err = class_indices(&target(vec![0.0, bad]), 3).unwrap_err();
            assert!(err.to_string().contains("at batch index 1"), "{bad}: {err}");
        }
    }
}
