//! PyTorch's edge semantics: output sizes, `ceil_mode`, padding in max and average pooling,
//! NaN and infinities, and the tensor-level functions.

use ganglion_pooling::{
    Pool2dParams, Pool2dShape, avg_pool2d, avg_pool2d_grad, global_avg_pool2d,
    global_avg_pool2d_grad, max_pool2d, max_pool2d_grad,
};
use ganglion_tensor::Tensor;

fn out_hw(h: usize, w: usize, params: Pool2dParams) -> [usize; 2] {
    let s = Pool2dShape::new([1, 1, h, w], params).unwrap();
    [s.out_h(), s.out_w()]
}

#[test]
fn output_sizes_follow_pytorch() {
    // floor vs ceil on odd sizes
    assert_eq!(out_hw(5, 7, Pool2dParams::new([2, 2])), [2, 3]);
    assert_eq!(
        out_hw(5, 7, Pool2dParams::new([2, 2]).with_ceil_mode(true)),
        [3, 4]
    );
    // ceil_mode drops a last window that would start inside the right padding:
    // in 5, k 3, s 3, p 1 gives floor((5 + 2 - 3 + 2) / 3) + 1 = 3, but (3 - 1) * 3 >= 5 + 1.
    let p = Pool2dParams::new([3, 3])
        .with_padding([1, 1])
        .with_ceil_mode(true);
    assert_eq!(out_hw(5, 5, p), [2, 2]);
    // a window larger than the input is accepted in ceil mode when it starts inside it
    let p = Pool2dParams::new([3, 3])
        .with_stride([2, 2])
        .with_ceil_mode(true);
    assert_eq!(out_hw(2, 2, p), [1, 1]);
    // per-axis parameters
    let p = Pool2dParams::new([4, 1])
        .with_stride([1, 3])
        .with_padding([2, 0]);
    assert_eq!(out_hw(6, 10, p), [7, 4]);
    let s = Pool2dShape::new([2, 3, 6, 10], p).unwrap();
    assert_eq!(s.input_dims(), [2, 3, 6, 10]);
    assert_eq!(s.output_dims(), [2, 3, 7, 4]);
    assert_eq!((s.input_len(), s.output_len()), (360, 168));
}

#[test]
fn max_pool_ignores_padding_and_breaks_ties_first() {
    // All negative: a zero from the padding must never win.
    let x = Tensor::from_fn(&[1, 1, 3, 3], |i| -(i as f32) - 1.0);
    let p = Pool2dParams::new([3, 3])
        .with_stride([2, 2])
        .with_padding([1, 1]);
    let (y, arg) = max_pool2d(&x, p).unwrap();
    // windows cover rows/cols {0, 1} and {1, 2}
    assert_eq!(y.data(), &[-1.0, -2.0, -4.0, -5.0]);
    assert_eq!(arg, [0, 1, 3, 4]);
    // Ties: the first element in row-major window order.
    let (y, arg) = max_pool2d(&Tensor::ones(&[1, 1, 2, 4]), Pool2dParams::new([2, 2])).unwrap();
    assert_eq!(y.data(), &[1.0, 1.0]);
    assert_eq!(arg, [0, 2]);
}

#[test]
fn max_pool_propagates_nan_and_handles_infinities() {
    let nan = f32::NAN;
    let ninf = f32::NEG_INFINITY;
    // Window 1 holds two NaNs (the last one is reported), window 2 is all -inf (its first
    // element is reported), in both the 2x2 fast path and the general path.
    #[rustfmt::skip]
    let data = vec![
        nan, 5.0, ninf, ninf,
        1.0, nan, ninf, ninf,
    ];
    let x = Tensor::new(&[1, 1, 2, 4], data).unwrap();
    for params in [
        Pool2dParams::new([2, 2]),
        Pool2dParams::new([2, 2])
            .with_padding([1, 1])
            .with_stride([2, 2]),
    ] {
        let (y, arg) = max_pool2d(&x, params).unwrap();
        let shape = Pool2dShape::new([1, 1, 2, 4], params).unwrap();
        let dx = max_pool2d_grad(&shape, &Tensor::ones(&shape.output_dims()), &arg).unwrap();
        assert_eq!(dx.data().iter().sum::<f32>(), shape.output_len() as f32);
        if params.padding == [0, 0] {
            assert!(y.data()[0].is_nan());
            assert_eq!(arg, [5, 2]);
            assert_eq!(y.data()[1], ninf);
        } else {
            // padded windows: [x00], [x01 x02], [x03], [x10], [x11 x12], [x13]
            assert!(y.data()[0].is_nan() && y.data()[4].is_nan());
            assert_eq!(arg, [0, 1, 3, 4, 5, 7]);
        }
    }
}

#[test]
fn avg_divisor_counts_padding_up_to_the_padded_edge() {
    // in 3, k 2, s 2, p 1, ceil: the formula gives 3 windows, [-1,1), [1,3), [3,5), but the
    // last would start in the right padding ((3 - 1) * 2 >= 3 + 1), so only two remain.
    let x = Tensor::ones(&[1, 1, 1, 3]);
    let p = Pool2dParams {
        kernel: [1, 2],
        stride: [1, 2],
        padding: [0, 1],
        ceil_mode: true,
    };
    let include = avg_pool2d(&x, p, true).unwrap();
    let exclude = avg_pool2d(&x, p, false).unwrap();
    assert_eq!(include.shape(), &[1, 1, 1, 2]);
    assert_eq!(include.data(), &[0.5, 1.0]);
    assert_eq!(exclude.data(), &[1.0, 1.0]);
    // A window hanging past the right padding: in 4, k 3, s 2, p 1, ceil: starts -1, 1, 3;
    // the last covers [3, 6) but the padded extent ends at 5: divisor 2, not 3.
    let x = Tensor::from_fn(&[1, 1, 1, 4], |i| i as f32 + 1.0);
    let p = Pool2dParams {
        kernel: [1, 3],
        stride: [1, 2],
        padding: [0, 1],
        ceil_mode: true,
    };
    let y = avg_pool2d(&x, p, true).unwrap();
    assert_eq!(y.data(), &[3.0 / 3.0, 9.0 / 3.0, 4.0 / 2.0]);
    let y = avg_pool2d(&x, p, false).unwrap();
    assert_eq!(y.data(), &[3.0 / 2.0, 9.0 / 3.0, 4.0 / 1.0]);
    let shape = Pool2dShape::new([1, 1, 1, 4], p).unwrap();
    let dx = avg_pool2d_grad(&shape, true, &Tensor::ones(&[1, 1, 1, 3])).unwrap();
    assert_eq!(
        dx.data(),
        &[1.0 / 3.0, 2.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0 + 0.5]
    );
}

#[test]
fn global_avg_pool_means_each_plane() {
    let x = Tensor::from_fn(&[2, 3, 2, 5], |i| i as f32);
    let y = global_avg_pool2d(&x).unwrap();
    assert_eq!(y.shape(), &[2, 3, 1, 1]);
    for (i, &m) in y.data().iter().enumerate() {
        assert_eq!(m, (10 * i) as f32 + 4.5);
    }
    for g_shape in [&[2, 3][..], &[2, 3, 1, 1][..]] {
        let g = Tensor::from_fn(g_shape, |i| i as f32 * 10.0);
        let dx = global_avg_pool2d_grad([2, 3, 2, 5], &g).unwrap();
        assert_eq!(dx.shape(), &[2, 3, 2, 5]);
        assert_eq!(dx.data()[10..20], [1.0; 10]);
    }
}

#[test]
fn zero_batch_is_accepted() {
    let (y, arg) = max_pool2d(&Tensor::zeros(&[0, 3, 4, 4]), Pool2dParams::new([2, 2])).unwrap();
    assert_eq!(y.shape(), &[0, 3, 2, 2]);
    assert!(arg.is_empty());
    assert_eq!(
        global_avg_pool2d(&Tensor::zeros(&[0, 2, 3, 3]))
            .unwrap()
            .shape(),
        &[0, 2, 1, 1]
    );
}
