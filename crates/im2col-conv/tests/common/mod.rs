//! Helpers shared by the integration tests: random data, running every pass of the fast path
//! and of the reference, tolerant comparison, and a generator of valid shapes.
#![allow(dead_code)]

use ganglion_im2col_conv::{
    Conv2dParams, Conv2dShape, ConvWorkspace, Isa, conv2d_backward_data, conv2d_backward_weight,
    conv2d_forward, reference, with_isa,
};
use ganglion_tensor::Rng;
use proptest::prelude::*;

/// `len` values uniform in [-1, 1) from `seed`.
pub fn random(len: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::seed_from(seed);
    (0..len).map(|_| rng.uniform_range(-1.0, 1.0)).collect()
}

pub fn widen(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| f64::from(x)).collect()
}

/// The operands of one convolution test.
pub struct Operands {
    pub input: Vec<f32>,
    pub weight: Vec<f32>,
    pub bias: Option<Vec<f32>>,
    pub grad_output: Vec<f32>,
}

impl Operands {
    pub fn random(shape: &Conv2dShape, with_bias: bool, seed: u64) -> Self {
        Self {
            input: random(shape.input_len(), seed),
            weight: random(shape.weight_len(), seed + 1),
            bias: with_bias.then(|| random(shape.cout, seed + 2)),
            grad_output: random(shape.output_len(), seed + 3),
        }
    }
}

/// Every result of a convolution and its gradients.
#[derive(Debug, Clone, PartialEq)]
pub struct Results<T> {
    pub output: Vec<T>,
    pub grad_input: Vec<T>,
    pub grad_weight: Vec<T>,
    pub grad_bias: Vec<T>,
}

/// All three fast kernels. Outputs start as NaN so that anything left unwritten shows.
pub fn fast(shape: &Conv2dShape, ops: &Operands, ws: &mut ConvWorkspace) -> Results<f32> {
    let mut r = Results {
        output: vec![f32::NAN; shape.output_len()],
        grad_input: vec![f32::NAN; shape.input_len()],
        grad_weight: vec![f32::NAN; shape.weight_len()],
        grad_bias: vec![f32::NAN; shape.cout],
    };
    conv2d_forward(
        shape,
        &ops.input,
        &ops.weight,
        ops.bias.as_deref(),
        &mut r.output,
        ws,
    );
    conv2d_backward_data(shape, &ops.grad_output, &ops.weight, &mut r.grad_input, ws);
    conv2d_backward_weight(
        shape,
        &ops.input,
        &ops.grad_output,
        &mut r.grad_weight,
        Some(&mut r.grad_bias),
        ws,
    );
    r
}

/// The instruction-set levels this CPU has: every fast-path test runs on each.
pub fn levels() -> Vec<Isa> {
    Isa::available_levels()
}

/// [`fast`] with the kernels forced to `isa`.
pub fn fast_at(
    isa: Isa,
    shape: &Conv2dShape,
    ops: &Operands,
    ws: &mut ConvWorkspace,
) -> Results<f32> {
    with_isa(isa, || fast(shape, ops, ws))
}

/// All three reference passes in `f32`.
pub fn reference_f32(shape: &Conv2dShape, ops: &Operands) -> Results<f32> {
    let mut r = Results {
        output: vec![f32::NAN; shape.output_len()],
        grad_input: vec![f32::NAN; shape.input_len()],
        grad_weight: vec![f32::NAN; shape.weight_len()],
        grad_bias: vec![f32::NAN; shape.cout],
    };
    reference::forward(
        shape,
        &ops.input,
        &ops.weight,
        ops.bias.as_deref(),
        &mut r.output,
    );
    reference::backward_data(shape, &ops.grad_output, &ops.weight, &mut r.grad_input);
    reference::backward_weight(
        shape,
        &ops.input,
        &ops.grad_output,
        &mut r.grad_weight,
        Some(&mut r.grad_bias),
    );
    r
}

/// All three reference passes in `f64`.
pub fn reference_f64(shape: &Conv2dShape, ops: &Operands) -> Results<f64> {
    let bias = ops.bias.as_deref().map(widen);
    let mut r = Results {
        output: vec![f64::NAN; shape.output_len()],
        grad_input: vec![f64::NAN; shape.input_len()],
        grad_weight: vec![f64::NAN; shape.weight_len()],
        grad_bias: vec![f64::NAN; shape.cout],
    };
    let (x, w, gy) = (
        widen(&ops.input),
        widen(&ops.weight),
        widen(&ops.grad_output),
    );
    reference::forward(shape, &x, &w, bias.as_deref(), &mut r.output);
    reference::backward_data(shape, &gy, &w, &mut r.grad_input);
    reference::backward_weight(shape, &x, &gy, &mut r.grad_weight, Some(&mut r.grad_bias));
    r
}

/// `max |got - want| <= rel * max(1, max |want|)`, or a message naming the worst element.
pub fn close(name: &str, got: &[f32], want: &[f64], rel: f64) -> Result<(), String> {
    if got.len() != want.len() {
        return Err(format!(
            "{name}: {} elements, expected {}",
            got.len(),
            want.len()
        ));
    }
    let scale = want.iter().fold(1.0f64, |m, w| m.max(w.abs()));
    let (worst, err) = got
        .iter()
        .zip(want)
        .map(|(&g, &w)| (f64::from(g) - w).abs())
        .map(|e| if e.is_nan() { f64::INFINITY } else { e })
        .enumerate()
        .fold(
            (0, 0.0),
            |(wi, we), (i, e)| if e > we { (i, e) } else { (wi, we) },
        );
    if err <= rel * scale {
        Ok(())
    } else {
        Err(format!(
            "{name}: element {worst} is {} but should be {} (error {err:e}, allowed {:e})",
            got[worst],
            want[worst],
            rel * scale
        ))
    }
}

/// Compares every fast result with the `f64` reference.
pub fn check_against_f64(
    shape: &Conv2dShape,
    got: &Results<f32>,
    want: &Results<f64>,
    rel: f64,
) -> Result<(), String> {
    close("output", &got.output, &want.output, rel)
        .and_then(|()| close("grad_input", &got.grad_input, &want.grad_input, rel))
        .and_then(|()| close("grad_weight", &got.grad_weight, &want.grad_weight, rel))
        .and_then(|()| close("grad_bias", &got.grad_bias, &want.grad_bias, rel))
        .map_err(|e| format!("{e} for {shape:?}"))
}

/// The fast path on every level against the `f64` reference, within `1e-4`: the first
/// disagreement, naming the level.
pub fn matches_reference(shape: &Conv2dShape, with_bias: bool, seed: u64) -> Result<(), String> {
    let ops = Operands::random(shape, with_bias, seed);
    let want = reference_f64(shape, &ops);
    for isa in levels() {
        let got = fast_at(isa, shape, &ops, &mut ConvWorkspace::new());
        check_against_f64(shape, &got, &want, 1e-4).map_err(|e| format!("{isa:?}: {e}"))?;
    }
    Ok(())
}

/// Valid shapes: batch, groups, channels per group, input size, kernel, stride, padding and
/// dilation in the given ranges per axis; the input is enlarged where the dilated kernel would
/// not fit the padded input.
pub fn shapes(
    batch: std::ops::RangeInclusive<usize>,
    groups: std::ops::RangeInclusive<usize>,
    channels: std::ops::RangeInclusive<usize>,
    size: std::ops::RangeInclusive<usize>,
    kernel: std::ops::RangeInclusive<usize>,
) -> impl Strategy<Value = Conv2dShape> {
    let axis = (size, kernel, 1usize..=3, 0usize..=2, 1usize..=2);
    (
        batch,
        groups,
        channels.clone(),
        channels,
        axis.clone(),
        axis,
    )
        .prop_map(
            |(n, groups, cin_g, cout_g, (h, kh, sh, ph, dh), (w, kw, sw, pw, dw))| {
                let fit = |size: usize, k: usize, p: usize, d: usize| {
                    size.max((d * (k - 1) + 1).saturating_sub(2 * p))
                };
                let params = Conv2dParams {
                    stride: [sh, sw],
                    padding: [ph, pw],
                    dilation: [dh, dw],
                    groups,
                };
                Conv2dShape::new(
                    [n, groups * cin_g, fit(h, kh, ph, dh), fit(w, kw, pw, dw)],
                    [groups * cout_g, cin_g, kh, kw],
                    params,
                )
                .expect("generated shapes are valid")
            },
        )
}
