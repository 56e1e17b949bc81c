//! Tensor-level conveniences: validate [`Tensor`] shapes, allocate the results, run the fast
//! kernels. For repeated calls, use the slice kernels with a kept [`ConvWorkspace`] instead.

use crate::{
    Conv2dParams, Conv2dShape, ConvError, ConvWorkspace, conv2d_backward_data,
    conv2d_backward_weight, conv2d_forward,
};
use ganglion_tensor::Tensor;

fn dims4(t: &Tensor, tensor: &'static str, layout: &'static str) -> Result<[usize; 4], ConvError> {
    t.dims4().map_err(|_| ConvError::Rank {
        tensor,
        layout,
        shape: t.shape().to_vec(),
    })
}

fn expect_shape(
    t: &Tensor,
    tensor: &'static str,
    expected: &[usize],
    s: &Conv2dShape,
) -> Result<(), ConvError> {
    if t.shape() == expected {
        Ok(())
    } else {
        Err(ConvError::ShapeMismatch {
            tensor,
            shape: t.shape().into(),
            expected: expected.into(),
            input: s.input_dims(),
            weight: s.weight_dims(),
        })
    }
}

impl Conv2dShape {
    /// The geometry of convolving `input` (`[n, cin, h, w]`) by `weight`
    /// (`[cout, cin/groups, kh, kw]`).
    ///
    /// # Errors
    /// [`ConvError::Rank`] when either tensor is not rank 4, otherwise as [`Conv2dShape::new`].
    pub fn from_tensors(
        input: &Tensor,
        weight: &Tensor,
        params: Conv2dParams,
    ) -> Result<Self, ConvError> {
        Self::new(
            dims4(input, "input", "NCHW")?,
            dims4(weight, "weight", "OIHW")?,
            params,
        )
    }
}

/// `conv2d(input, weight) + bias` as a new `[n, cout, out_h, out_w]` tensor.
///
/// # Errors
/// [`ConvError`] when a tensor has the wrong rank or shape (bias must be `[cout]`) or the
/// geometry is invalid (see [`Conv2dShape::new`]).
///
/// # Examples
/// ```
/// use ganglion_im2col_conv::{Conv2dParams, conv2d};
/// use ganglion_tensor::Tensor;
/// let x = Tensor::ones(&[1, 1, 3, 3]);
/// let w = Tensor::ones(&[1, 1, 2, 2]);
/// let y = conv2d(&x, &w, None, Conv2dParams::default().with_padding(1))?;
/// assert_eq!(y.shape(), &[1, 1, 4, 4]);
/// assert_eq!(y.get(&[0, 0, 1, 1]), Some(4.0)); // a full 2x2 window of ones
/// assert_eq!(y.get(&[0, 0, 0, 0]), Some(1.0)); // three of its taps in the padding
/// # Ok::<(), ganglion_im2col_conv::ConvError>(())
/// ```
pub fn conv2d(
    input: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    params: Conv2dParams,
) -> Result<Tensor, ConvError> {
    let shape = Conv2dShape::from_tensors(input, weight, params)?;
    if let Some(b) = bias {
        expect_shape(b, "bias", &[shape.cout], &shape)?;
    }
    let mut output = Tensor::zeros(&shape.output_dims());
    conv2d_forward(
        &shape,
        input.data(),
        weight.data(),
        bias.map(Tensor::data),
        output.data_mut(),
        &mut ConvWorkspace::new(),
    );
    Ok(output)
}

/// Gradients of `L = sum(conv2d(input, weight) * grad_output)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Conv2dGrads {
    /// `dL/d input`, shaped like the input.
    pub grad_input: Tensor,
    /// `dL/d weight`, shaped like the weight.
    pub grad_weight: Tensor,
    /// `dL/d bias` (`[cout]`) when asked for.
    pub grad_bias: Option<Tensor>,
}

/// All gradients of a convolution given the gradient of its output.
///
/// # Errors
/// [`ConvError`] when a tensor has the wrong rank or shape (`grad_output` must be
/// `[n, cout, out_h, out_w]`) or the geometry is invalid (see [`Conv2dShape::new`]).
pub fn conv2d_backward(
    input: &Tensor,
    weight: &Tensor,
    grad_output: &Tensor,
    params: Conv2dParams,
    with_bias: bool,
) -> Result<Conv2dGrads, ConvError> {
    let shape = Conv2dShape::from_tensors(input, weight, params)?;
    expect_shape(grad_output, "grad_output", &shape.output_dims(), &shape)?;
    let mut ws = ConvWorkspace::new();
    let mut grad_input = Tensor::zeros(input.shape());
    conv2d_backward_data(
        &shape,
        grad_output.data(),
        weight.data(),
        grad_input.data_mut(),
        &mut ws,
    );
    let mut grad_weight = Tensor::zeros(weight.shape());
    let mut grad_bias = with_bias.then(|| Tensor::zeros(&[shape.cout]));
    conv2d_backward_weight(
        &shape,
        input.data(),
        grad_output.data(),
        grad_weight.data_mut(),
        grad_bias.as_mut().map(Tensor::data_mut),
        &mut ws,
    );
    Ok(Conv2dGrads {
        grad_input,
        grad_weight,
        grad_bias,
    })
}
