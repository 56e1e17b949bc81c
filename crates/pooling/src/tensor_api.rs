//! Tensor-level pooling: validate shapes, allocate the result, call the slice kernels.

use crate::{
    Pool2dParams, Pool2dShape, PoolError, avg_pool2d_backward, avg_pool2d_forward,
    global_avg_pool2d_backward, global_avg_pool2d_forward, max_pool2d_backward, max_pool2d_forward,
};
use ganglion_tensor::Tensor;

fn dims4(op: &'static str, what: &'static str, t: &Tensor) -> Result<[usize; 4], PoolError> {
    t.dims4().map_err(|_| PoolError::Rank {
        op,
        what,
        shape: t.shape().to_vec(),
    })
}

fn expect_shape(
    op: &'static str,
    what: &'static str,
    t: &Tensor,
    expected: &[usize],
) -> Result<(), PoolError> {
    if t.shape() == expected {
        Ok(())
    } else {
        Err(PoolError::ShapeMismatch {
            op,
            what,
            expected: expected.to_vec(),
            actual: t.shape().to_vec(),
        })
    }
}

/// Max pooling of an `[n, c, h, w]` tensor: the `[n, c, out_h, out_w]` result and the argmax
/// offsets that [`max_pool2d_grad`] / [`max_pool2d_backward`] take.
///
/// # Errors
/// [`PoolError::Rank`] when `input` is not rank 4; the errors of [`Pool2dShape::new`].
pub fn max_pool2d(input: &Tensor, params: Pool2dParams) -> Result<(Tensor, Vec<u32>), PoolError> {
    let shape = Pool2dShape::new(dims4("max_pool2d", "input", input)?, params)?;
    let mut output = Tensor::zeros(&shape.output_dims());
    let mut argmax = vec![0u32; shape.output_len()];
    max_pool2d_forward(&shape, input.data(), output.data_mut(), &mut argmax);
    Ok((output, argmax))
}

/// Average pooling of an `[n, c, h, w]` tensor (see [`avg_pool2d_forward`] for the divisor).
///
/// # Errors
/// [`PoolError::Rank`] when `input` is not rank 4; the errors of [`Pool2dShape::new`].
pub fn avg_pool2d(
    input: &Tensor,
    params: Pool2dParams,
    count_include_pad: bool,
) -> Result<Tensor, PoolError> {
    let shape = Pool2dShape::new(dims4("avg_pool2d", "input", input)?, params)?;
    let mut output = Tensor::zeros(&shape.output_dims());
    avg_pool2d_forward(&shape, count_include_pad, input.data(), output.data_mut());
    Ok(output)
}

/// Global average pooling: `[n, c, h, w] -> [n, c, 1, 1]`, the mean of each plane.
///
/// # Errors
/// [`PoolError::Rank`] when `input` is not rank 4, [`PoolError::EmptyInput`] when `c`, `h` or
/// `w` is zero.
pub fn global_avg_pool2d(input: &Tensor) -> Result<Tensor, PoolError> {
    let dims = dims4("global_avg_pool2d", "input", input)?;
    let [n, c, h, w] = dims;
    if c == 0 || h == 0 || w == 0 {
        return Err(PoolError::EmptyInput { input: dims });
    }
    let mut output = Tensor::zeros(&[n, c, 1, 1]);
    global_avg_pool2d_forward(dims, input.data(), output.data_mut());
    Ok(output)
}

/// Gradient of [`max_pool2d`] with respect to its input, from the output gradient and argmax.
///
/// # Errors
/// [`PoolError::ShapeMismatch`] when `grad_output` is not [`Pool2dShape::output_dims`],
/// [`PoolError::LengthMismatch`] when `argmax` has another length,
/// [`PoolError::ArgmaxOutOfRange`] when an entry is not below `h * w`.
pub fn max_pool2d_grad(
    shape: &Pool2dShape,
    grad_output: &Tensor,
    argmax: &[u32],
) -> Result<Tensor, PoolError> {
    const OP: &str = "max_pool2d_grad";
    let out_dims = shape.output_dims();
    expect_shape(OP, "grad_output", grad_output, &out_dims)?;
    if argmax.len() != shape.output_len() {
        return Err(PoolError::LengthMismatch {
            op: OP,
            what: "argmax",
            shape: out_dims.to_vec(),
            expected: shape.output_len(),
            actual: argmax.len(),
        });
    }
    let plane = shape.h * shape.w;
    if let Some((index, &value)) = argmax
        .iter()
        .enumerate()
        .find(|&(_, &a)| a as usize >= plane)
    {
        return Err(PoolError::ArgmaxOutOfRange {
            op: OP,
            index,
            value,
            plane,
        });
    }
    let mut grad_input = Tensor::zeros(&shape.input_dims());
    max_pool2d_backward(shape, grad_output.data(), argmax, grad_input.data_mut());
    Ok(grad_input)
}

/// Gradient of [`avg_pool2d`] with respect to its input.
///
/// # Errors
/// [`PoolError::ShapeMismatch`] when `grad_output` is not [`Pool2dShape::output_dims`].
pub fn avg_pool2d_grad(
    shape: &Pool2dShape,
    count_include_pad: bool,
    grad_output: &Tensor,
) -> Result<Tensor, PoolError> {
    expect_shape(
        "avg_pool2d_grad",
        "grad_output",
        grad_output,
        &shape.output_dims(),
    )?;
    let mut grad_input = Tensor::zeros(&shape.input_dims());
    avg_pool2d_backward(
        shape,
        count_include_pad,
        grad_output.data(),
        grad_input.data_mut(),
    );
    Ok(grad_input)
}

/// Gradient of [`global_avg_pool2d`] with respect to its `[n, c, h, w]` input; `grad_output`
/// is `[n, c, 1, 1]` or `[n, c]`.
///
/// # Errors
/// [`PoolError::TooLarge`] when the element count of `input_dims` overflows,
/// [`PoolError::ShapeMismatch`] when `grad_output` has another shape.
pub fn global_avg_pool2d_grad(
    input_dims: [usize; 4],
    grad_output: &Tensor,
) -> Result<Tensor, PoolError> {
    let [n, c, _, _] = input_dims;
    if input_dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .is_none()
    {
        return Err(PoolError::TooLarge { input: input_dims });
    }
    if grad_output.shape() != [n, c] {
        expect_shape(
            "global_avg_pool2d_grad",
            "grad_output",
            grad_output,
            &[n, c, 1, 1],
        )?;
    }
    let mut grad_input = Tensor::zeros(&input_dims);
    global_avg_pool2d_backward(input_dims, grad_output.data(), grad_input.data_mut());
    Ok(grad_input)
}
