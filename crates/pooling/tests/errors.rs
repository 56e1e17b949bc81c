//! Invalid geometry and mismatched tensors give errors that name the problem; mismatched
//! slices make the kernels panic with the kernel's name.

use ganglion_pooling::{
    Pool2dParams, Pool2dShape, PoolError, avg_pool2d, avg_pool2d_forward, global_avg_pool2d,
    global_avg_pool2d_grad, max_pool2d, max_pool2d_backward, max_pool2d_forward, max_pool2d_grad,
};
use ganglion_tensor::Tensor;

fn shape_err(dims: [usize; 4], params: Pool2dParams) -> PoolError {
    Pool2dShape::new(dims, params).unwrap_err()
}

#[test]
fn invalid_geometry_is_rejected_with_pytorch_rules() {
    let err = shape_err([1, 1, 4, 4], Pool2dParams::new([0, 2]));
    assert!(
        matches!(err, PoolError::ZeroKernel { kernel: [0, 2] }),
        "{err}"
    );
    assert_eq!(err.to_string(), "pool2d: kernel [0, 2] has a zero side");

    let err = shape_err([1, 1, 4, 4], Pool2dParams::new([2, 2]).with_stride([1, 0]));
    assert!(
        matches!(err, PoolError::ZeroStride { stride: [1, 0] }),
        "{err}"
    );

    // PyTorch allows padding up to kernel / 2: 1 for a kernel of 3, 0 for a kernel of 1.
    assert!(Pool2dShape::new([1, 1, 4, 4], Pool2dParams::new([3, 3]).with_padding([1, 1])).is_ok());
    let err = shape_err([1, 1, 4, 4], Pool2dParams::new([3, 1]).with_padding([1, 1]));
    assert_eq!(
        err.to_string(),
        "pool2d: padding [1, 1] exceeds half the kernel [3, 1]"
    );
    let err = shape_err([1, 1, 4, 4], Pool2dParams::new([3, 3]).with_padding([2, 0]));
    assert!(matches!(err, PoolError::PaddingTooLarge { .. }), "{err}");

    for dims in [[1, 0, 4, 4], [1, 1, 0, 4], [1, 1, 4, 0]] {
        let err = shape_err(dims, Pool2dParams::new([1, 1]));
        assert!(
            matches!(err, PoolError::EmptyInput { input } if input == dims),
            "{err}"
        );
    }

    let err = shape_err([2, 3, 1, 5], Pool2dParams::new([2, 2]));
    assert!(
        matches!(
            err,
            PoolError::EmptyOutput {
                out_h: 0,
                out_w: 2,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "pool2d: input [2, 3, 1, 5] with kernel [2, 2], stride [2, 2], padding [0, 0] gives an \
         empty output 0x2"
    );
    // ceil_mode accepts a window larger than the input when the rounding leaves one (as
    // PyTorch does for in 3, k 4, s 4), but not at stride 1
    let ceil = Pool2dParams::new([4, 4]).with_ceil_mode(true);
    assert_eq!(
        Pool2dShape::new([1, 1, 3, 3], ceil).unwrap().output_dims(),
        [1, 1, 1, 1]
    );
    let err = shape_err([1, 1, 3, 3], ceil.with_stride([1, 1]));
    assert!(matches!(err, PoolError::EmptyOutput { .. }), "{err}");

    let err = shape_err([usize::MAX, 2, 2, 2], Pool2dParams::new([1, 1]));
    assert!(matches!(err, PoolError::TooLarge { .. }), "{err}");
    let err = shape_err([1, 1, 1 << 17, 1 << 16], Pool2dParams::new([1, 1]));
    assert!(matches!(err, PoolError::TooLarge { .. }), "{err}");
}

#[test]
fn tensor_functions_check_rank_and_shapes() {
    let p = Pool2dParams::new([2, 2]);
    let err = max_pool2d(&Tensor::zeros(&[3, 4, 4]), p).unwrap_err();
    assert_eq!(
        err.to_string(),
        "max_pool2d: input must be rank 4 [n, c, h, w] but has shape [3, 4, 4]"
    );
    assert!(matches!(
        avg_pool2d(&Tensor::zeros(&[4, 4]), p, true),
        Err(PoolError::Rank {
            op: "avg_pool2d",
            ..
        })
    ));
    assert!(matches!(
        avg_pool2d(
            &Tensor::zeros(&[1, 1, 4, 4]),
            Pool2dParams::new([5, 5]),
            true
        ),
        Err(PoolError::EmptyOutput { .. })
    ));
    assert!(matches!(
        global_avg_pool2d(&Tensor::zeros(&[1, 2, 0, 3])),
        Err(PoolError::EmptyInput { .. })
    ));

    let shape = Pool2dShape::new([1, 2, 4, 4], p).unwrap();
    let (_, argmax) = max_pool2d(&Tensor::zeros(&[1, 2, 4, 4]), p).unwrap();
    let err = max_pool2d_grad(&shape, &Tensor::zeros(&[1, 2, 2, 3]), &argmax).unwrap_err();
    assert_eq!(
        err.to_string(),
        "max_pool2d_grad: grad_output has shape [1, 2, 2, 3] but [1, 2, 2, 2] was expected"
    );
    let err = max_pool2d_grad(&shape, &Tensor::zeros(&[1, 2, 2, 2]), &argmax[1..]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "max_pool2d_grad: argmax has 7 elements but the shape [1, 2, 2, 2] needs 8"
    );
    let mut bad = argmax.clone();
    bad[3] = 16;
    let err = max_pool2d_grad(&shape, &Tensor::zeros(&[1, 2, 2, 2]), &bad).unwrap_err();
    assert!(
        matches!(
            err,
            PoolError::ArgmaxOutOfRange {
                index: 3,
                value: 16,
                plane: 16,
                ..
            }
        ),
        "{err}"
    );
    let err = global_avg_pool2d_grad([2, 3, 4, 4], &Tensor::zeros(&[3, 2])).unwrap_err();
    assert!(matches!(err, PoolError::ShapeMismatch { .. }), "{err}");
}

#[test]
#[should_panic(expected = "max_pool2d_forward: output has 3 elements but the shape needs 4")]
fn forward_panics_on_short_output() {
    let shape = Pool2dShape::new([1, 1, 4, 4], Pool2dParams::new([2, 2])).unwrap();
    max_pool2d_forward(&shape, &[0.0; 16], &mut [0.0; 3], &mut [0; 4]);
}

#[test]
#[should_panic(expected = "max_pool2d_backward: grad_input has 15 elements")]
fn backward_panics_on_short_grad_input() {
    let shape = Pool2dShape::new([1, 1, 4, 4], Pool2dParams::new([2, 2])).unwrap();
    max_pool2d_backward(&shape, &[0.0; 4], &[0; 4], &mut [0.0; 15]);
}

#[test]
#[should_panic(expected = "avg_pool2d_forward: input has 17 elements")]
fn avg_forward_panics_on_long_input() {
    let shape = Pool2dShape::new([1, 1, 4, 4], Pool2dParams::new([2, 2])).unwrap();
    avg_pool2d_forward(&shape, true, &[0.0; 17], &mut [0.0; 4]);
}
