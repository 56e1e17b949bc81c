//! Selftest runners that call the convolution and pooling kernels directly.

use super::{Compared, Workspaces, compare, dims4, input_of, unwritten};
use anyhow::Result;
use ganglion::conv::{
    Conv2dParams, Conv2dShape, conv2d_backward_data, conv2d_backward_weight, conv2d_forward,
};
use ganglion::pooling::{
    Pool2dParams, Pool2dShape, avg_pool2d_backward, avg_pool2d_forward, max_pool2d_backward,
    max_pool2d_forward,
};
use ganglion::tensor::Tensor;
use ganglion_oracle::Case;

pub(super) fn run_conv2d(case: &Case, workspaces: &mut Workspaces) -> Result<Vec<Compared>> {
    let params = Conv2dParams {
        stride: case.pair("stride")?,
        padding: case.pair("padding")?,
        dilation: case.pair("dilation")?,
        groups: case.usize("groups")?,
    };
    let (input_dims, weight_dims) = (dims4(case, "input")?, dims4(case, "weight")?);
    let shape = Conv2dShape::new(input_dims, weight_dims, params)?;
    let out_dims = shape.output_dims();
    let (input, weight) = (case.tensor("input")?, case.tensor("weight")?);
    let bias = match case.optional_tensor("bias") {
        Some(_) => Some(input_of(case, "bias", &[weight_dims[0]])?),
        None => None,
    };
    let grad_output = input_of(case, "grad_output", &out_dims)?;
    let ws = &mut workspaces.conv;

    let mut output = unwritten(out_dims.iter().product());
    let bias_data = bias.map(Tensor::data);
    conv2d_forward(
        &shape,
        input.data(),
        weight.data(),
        bias_data,
        &mut output,
        ws,
    );
    let mut grad_input = unwritten(input.len());
    conv2d_backward_data(
        &shape,
        grad_output.data(),
        weight.data(),
        &mut grad_input,
        ws,
    );
    let mut grad_weight = unwritten(weight.len());
    let mut grad_bias = bias.map(|b| unwritten(b.len()));
    let (x, dy) = (input.data(), grad_output.data());
    conv2d_backward_weight(
        &shape,
        x,
        dy,
        &mut grad_weight,
        grad_bias.as_deref_mut(),
        ws,
    );

    let mut compared = vec![
        compare(case, "output", &output, &out_dims)?,
        compare(case, "grad_input", &grad_input, &input_dims)?,
        compare(case, "grad_weight", &grad_weight, &weight_dims)?,
    ];
    if let Some(grad_bias) = &grad_bias {
        compared.push(compare(case, "grad_bias", grad_bias, &[weight_dims[0]])?);
    }
    Ok(compared)
}

/// The pooling geometry of a case and its input tensor.
fn pool_shape(case: &Case) -> Result<(Pool2dShape, &Tensor)> {
    let params = Pool2dParams {
        kernel: case.pair("kernel")?,
        stride: case.pair("stride")?,
        padding: case.pair("padding")?,
        ceil_mode: case.bool("ceil_mode")?,
    };
    let shape = Pool2dShape::new(dims4(case, "input")?, params)?;
    Ok((shape, case.tensor("input")?))
}

pub(super) fn run_max_pool2d(case: &Case, _: &mut Workspaces) -> Result<Vec<Compared>> {
    let (shape, input) = pool_shape(case)?;
    let out_dims = shape.output_dims();
    let grad_output = input_of(case, "grad_output", &out_dims)?;
    let mut output = unwritten(grad_output.len());
    let mut argmax = vec![0u32; grad_output.len()];
    max_pool2d_forward(&shape, input.data(), &mut output, &mut argmax);
    let mut grad_input = unwritten(input.len());
    max_pool2d_backward(&shape, grad_output.data(), &argmax, &mut grad_input);
    Ok(vec![
        compare(case, "output", &output, &out_dims)?,
        compare(case, "grad_input", &grad_input, input.shape())?,
    ])
}

/// Average pooling; `count_include_pad` says whether padding counts in the divisor.
fn avg_pool(case: &Case, count_include_pad: bool) -> Result<Vec<Compared>> {
    let (shape, input) = pool_shape(case)?;
    let out_dims = shape.output_dims();
    let grad_output = input_of(case, "grad_output", &out_dims)?;
    let mut output = unwritten(grad_output.len());
    avg_pool2d_forward(&shape, count_include_pad, input.data(), &mut output);
    let mut grad_input = unwritten(input.len());
    avg_pool2d_backward(
        &shape,
        count_include_pad,
        grad_output.data(),
        &mut grad_input,
    );
    Ok(vec![
        compare(case, "output", &output, &out_dims)?,
        compare(case, "grad_input", &grad_input, input.shape())?,
    ])
}

pub(super) fn run_avg_pool2d(case: &Case, _: &mut Workspaces) -> Result<Vec<Compared>> {
    avg_pool(case, true)
}

pub(super) fn run_avg_exclude_pad_pool2d(case: &Case, _: &mut Workspaces) -> Result<Vec<Compared>> {
    avg_pool(case, false)
}
