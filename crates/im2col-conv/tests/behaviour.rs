//! Error messages, the 1x1 path, thread-count determinism, multi-tile images, workspace reuse
//! and the tensor-level API.

mod common;

use common::{
    Operands, Results, check_against_f64, fast, fast_at, levels, matches_reference, reference_f32,
    reference_f64,
};
use ganglion_im2col_conv::{
    Conv2dParams, Conv2dShape, ConvError, ConvWorkspace, conv2d, conv2d_backward, conv2d_forward,
    with_isa,
};
use ganglion_tensor::Tensor;

fn shape(input: [usize; 4], weight: [usize; 4], params: Conv2dParams) -> Conv2dShape {
    Conv2dShape::new(input, weight, params).unwrap()
}

fn error(input: [usize; 4], weight: [usize; 4], params: Conv2dParams) -> String {
    Conv2dShape::new(input, weight, params)
        .unwrap_err()
        .to_string()
}

fn bits(r: &Results<f32>) -> Vec<Vec<u32>> {
    [&r.output, &r.grad_input, &r.grad_weight, &r.grad_bias]
        .iter()
        .map(|v| v.iter().map(|x| x.to_bits()).collect())
        .collect()
}

fn in_pool<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(f)
}

#[test]
fn invalid_geometry_is_an_error_naming_the_shapes() {
    let p = Conv2dParams::default();
    assert_eq!(
        error([2, 0, 5, 5], [4, 0, 3, 3], p),
        "conv2d: input shape [2, 0, 5, 5] has a zero dimension"
    );
    assert_eq!(
        error([2, 3, 5, 5], [4, 3, 0, 3], p),
        "conv2d: weight shape [4, 3, 0, 3] has a zero dimension"
    );
    assert_eq!(
        error([1, 3, 5, 5], [4, 3, 3, 3], p.with_stride(0)),
        "conv2d: stride [0, 0] must be at least 1 on both axes"
    );
    let no_dilation = Conv2dParams {
        dilation: [1, 0],
        ..p
    };
    assert_eq!(
        error([1, 3, 5, 5], [4, 3, 3, 3], no_dilation),
        "conv2d: dilation [1, 0] must be at least 1 on both axes"
    );
    assert_eq!(
        error([1, 4, 5, 5], [4, 4, 3, 3], p.with_groups(0)),
        "conv2d: groups must be at least 1 (input [1, 4, 5, 5], weight [4, 4, 3, 3])"
    );
    assert_eq!(
        error([1, 4, 5, 5], [3, 1, 3, 3], p.with_groups(3)),
        "conv2d: groups 3 does not divide the 4 input channels of input [1, 4, 5, 5]"
    );
    assert_eq!(
        error([1, 4, 5, 5], [3, 2, 3, 3], p.with_groups(2)),
        "conv2d: groups 2 does not divide the 3 output channels of weight [3, 2, 3, 3]"
    );
    assert_eq!(
        error([1, 3, 5, 5], [4, 2, 3, 3], p),
        "conv2d: input [1, 3, 5, 5] has 3 channels but weight [4, 2, 3, 3] expects 2 \
         (2 per group x 1 groups)"
    );
    assert_eq!(
        error([1, 1, 4, 9], [1, 1, 3, 3], p.with_dilation(2)),
        "conv2d: dilated kernel [5, 5] (kernel [3, 3], dilation [2, 2]) is larger than the \
         padded input [4, 9] (input [1, 1, 4, 9], padding [0, 0])"
    );
    let huge = Conv2dShape::new([usize::MAX / 2, 2, 2, 2], [1, 2, 1, 1], p);
    assert!(matches!(huge, Err(ConvError::TooLarge { .. })), "{huge:?}");
    // Padding makes room for a kernel larger than the input.
    assert!(Conv2dShape::new([1, 1, 2, 2], [1, 1, 4, 4], p.with_padding(1)).is_ok());
}

#[test]
fn tensor_api_rejects_bad_tensors() {
    let x = Tensor::zeros(&[1, 2, 5, 5]);
    let w = Tensor::zeros(&[3, 2, 3, 3]);
    let p = Conv2dParams::default();
    let rank = conv2d(&Tensor::zeros(&[2, 5, 5]), &w, None, p).unwrap_err();
    assert_eq!(
        rank.to_string(),
        "conv2d: input must be rank 4 (NCHW) but has shape [2, 5, 5]"
    );
    let bias = conv2d(&x, &w, Some(&Tensor::zeros(&[2])), p).unwrap_err();
    assert_eq!(
        bias.to_string(),
        "conv2d: bias has shape [2] but [3] was expected for input [1, 2, 5, 5] \
         and weight [3, 2, 3, 3]"
    );
    let gy = conv2d_backward(&x, &w, &Tensor::zeros(&[1, 3, 4, 3]), p, true).unwrap_err();
    assert!(
        gy.to_string()
            .contains("grad_output has shape [1, 3, 4, 3] but [1, 3, 3, 3]"),
        "{gy}"
    );
    let w4 = Tensor::zeros(&[4, 2, 3, 3]);
    let groups = conv2d(&x, &w4, None, p.with_groups(2)).unwrap_err();
    assert!(
        matches!(groups, ConvError::ChannelMismatch { .. }),
        "{groups}"
    );
}

#[test]
fn tensor_api_matches_reference() {
    let params = Conv2dParams {
        stride: [2, 1],
        padding: [1, 2],
        dilation: [1, 2],
        groups: 3,
    };
    let s = shape([2, 6, 7, 9], [9, 2, 3, 2], params);
    let ops = Operands::random(&s, true, 7);
    let want = reference_f32(&s, &ops);
    let t = |dims: [usize; 4], v: &[f32]| Tensor::new(&dims, v.to_vec()).unwrap();
    let x = t(s.input_dims(), &ops.input);
    let w = t(s.weight_dims(), &ops.weight);
    let b = Tensor::new(&[9], ops.bias.clone().unwrap()).unwrap();
    let y = conv2d(&x, &w, Some(&b), params).unwrap();
    assert_eq!(y.shape(), &s.output_dims());
    let grads =
        conv2d_backward(&x, &w, &t(s.output_dims(), &ops.grad_output), params, true).unwrap();
    let got = Results {
        output: y.into_vec(),
        grad_input: grads.grad_input.into_vec(),
        grad_weight: grads.grad_weight.into_vec(),
        grad_bias: grads.grad_bias.unwrap().into_vec(),
    };
    let wide = |v: &[f32]| common::widen(v);
    let want = Results {
        output: wide(&want.output),
        grad_input: wide(&want.grad_input),
        grad_weight: wide(&want.grad_weight),
        grad_bias: wide(&want.grad_bias),
    };
    check_against_f64(&s, &got, &want, 1e-5).unwrap();
}

#[test]
fn pointwise_convolutions_need_no_column_buffer_and_match_reference() {
    // Dilation does not matter for a 1x1 kernel: the input is still its own column matrix.
    let dilated = Conv2dParams::default().with_groups(2).with_dilation(3);
    for s in [
        shape([3, 6, 5, 7], [4, 3, 1, 1], dilated),
        shape([1, 8, 4, 4], [16, 8, 1, 1], Conv2dParams::default()),
        shape(
            [2, 4, 5, 7],
            [3, 4, 1, 1],
            Conv2dParams::default().with_stride(2),
        ),
        shape(
            [2, 4, 5, 7],
            [3, 4, 1, 1],
            Conv2dParams::default().with_padding(1),
        ),
    ] {
        let ops = Operands::random(&s, true, 11);
        let mut ws = ConvWorkspace::new();
        let mut out = vec![0.0; s.output_len()];
        conv2d_forward(
            &s,
            &ops.input,
            &ops.weight,
            ops.bias.as_deref(),
            &mut out,
            &mut ws,
        );
        // Forward packs its columns straight from the input: the workspace holds the packed
        // weights (at most a register tile of padding per row) and no column buffer.
        assert!(
            ws.allocated_floats() <= s.weight_len() + 16 * s.cin * s.kh * s.kw,
            "{s:?}: {} floats",
            ws.allocated_floats()
        );
        for isa in levels() {
            let got = fast_at(isa, &s, &ops, &mut ws);
            check_against_f64(&s, &got, &reference_f64(&s, &ops), 1e-4)
                .unwrap_or_else(|e| panic!("{isa:?}: {e}"));
        }
    }
}

/// Shapes that take every split: a single image (split across threads), batches that do and
/// do not divide the thread count, several weight blocks, and images of several pixel tiles.
fn determinism_shapes() -> Vec<Conv2dShape> {
    let pad = Conv2dParams::default().with_padding(1);
    vec![
        shape([1, 16, 12, 12], [32, 16, 3, 3], pad),
        shape([2, 8, 9, 9], [8, 8, 3, 3], pad),
        shape(
            [5, 6, 11, 10],
            [4, 3, 3, 2],
            pad.with_groups(2).with_stride(2),
        ),
        shape([9, 4, 7, 7], [4, 1, 3, 3], pad.with_groups(4)),
        shape([7, 8, 6, 6], [12, 8, 1, 1], Conv2dParams::default()),
        shape([2, 64, 48, 48], [8, 64, 3, 3], pad),
        // Few input channels and wide rows: the direct kernel, whole images and split images.
        shape([3, 3, 9, 20], [10, 3, 3, 3], pad),
        shape([1, 2, 6, 17], [12, 2, 3, 3], pad),
        // Deep layers with narrow or strided rows: the broadcast kernels, with batch blocks
        // reduced in parallel and (70 channels) two channel blocks.
        shape([8, 12, 10, 10], [20, 12, 3, 3], pad),
        shape([6, 10, 14, 14], [70, 10, 3, 3], pad.with_stride(2)),
        // One image of 160 channels (three blocks at AVX-512, ten at AVX2): groups of channel
        // blocks split over the threads, a staging area each. Unpadded, read in place.
        shape([1, 16, 10, 10], [160, 16, 3, 3], pad),
        shape([3, 12, 9, 9], [40, 12, 3, 3], Conv2dParams::default()),
        // Padding 2 on a 3x3 kernel: tiles that follow the border, at every level's tile; one
        // image split over the threads (tiles laid out apart, then put in pixel order), and
        // a batch.
        shape([1, 16, 20, 20], [32, 16, 3, 3], pad.with_padding(2)),
        shape([3, 16, 20, 20], [40, 16, 3, 3], pad.with_padding(2)),
        // The forward pass by FFT: one group (its planes and tiles split across the
        // threads), and groups in parallel with a short last one.
        shape([16, 6, 12, 12], [16, 6, 5, 5], pad.with_padding(2)),
        shape([37, 6, 14, 14], [16, 6, 5, 5], Conv2dParams::default()),
        // Backward-data with the images in the lanes: one group (its rows split across the
        // threads), and groups in parallel with a short last one.
        shape([16, 6, 14, 14], [16, 6, 5, 5], Conv2dParams::default()),
        shape([40, 6, 8, 8], [8, 6, 3, 3], pad),
        // Backward-data by scatter: one image of two channel blocks (split across threads),
        // and a batch split either way.
        shape([1, 80, 9, 9], [32, 80, 3, 3], pad.with_stride(2)),
        shape(
            [3, 20, 11, 11],
            [40, 20, 3, 3],
            Conv2dParams::default().with_stride(2),
        ),
    ]
}

#[test]
fn small_channel_direct_path_matches_reference() {
    // Wide enough rows (out_w >= 16) and few enough taps (cin * kh * kw <= 75) for the direct
    // kernel: one and two vectors per row, masked tails, ragged output-channel blocks, bias.
    for (s, bias) in [
        (
            shape(
                [2, 1, 20, 18],
                [6, 1, 5, 5],
                Conv2dParams::default().with_padding(2),
            ),
            true,
        ),
        (
            shape(
                [1, 3, 7, 33],
                [9, 3, 3, 3],
                Conv2dParams::default().with_padding(1),
            ),
            true,
        ),
        (
            shape([2, 1, 19, 21], [32, 1, 3, 3], Conv2dParams::default()),
            false,
        ),
        (
            shape([1, 2, 5, 16], [5, 2, 2, 1], Conv2dParams::default()),
            true,
        ),
        // Rows of whole vectors: the forward pass reads the padded image, the weight
        // gradient shifted copies.
        (
            shape(
                [2, 3, 9, 32],
                [6, 3, 3, 3],
                Conv2dParams::default().with_padding(1),
            ),
            true,
        ),
    ] {
        matches_reference(&s, bias, 13).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn fft_forward_matches_reference() {
    // The forward pass by FFT (16 images a group at AVX-512, 8 at AVX2): short last groups,
    // output channels that leave a tile ragged, padding that fills the 16 x 16 plane on
    // either axis, kernels wider than tall, bias.
    for s in [
        shape([20, 6, 14, 14], [16, 6, 5, 5], Conv2dParams::default()),
        shape(
            [17, 3, 12, 10],
            [5, 3, 5, 5],
            Conv2dParams {
                padding: [2, 3],
                ..Conv2dParams::default()
            },
        ),
        shape(
            [9, 4, 12, 12],
            [12, 4, 5, 7],
            Conv2dParams {
                padding: [2, 1],
                ..Conv2dParams::default()
            },
        ),
        shape([16, 2, 16, 16], [8, 2, 6, 5], Conv2dParams::default()),
    ] {
        matches_reference(&s, true, 43).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn lane_backward_data_matches_reference() {
    // Backward-data with a group of images in the vector lanes (16 at AVX-512, 8 at AVX2):
    // short last groups, one to three channel tiles, kernels reaching past a small image on
    // either axis, unequal padding, a kernel taller than wide.
    for s in [
        shape([20, 6, 14, 14], [16, 6, 5, 5], Conv2dParams::default()),
        shape(
            [16, 12, 8, 8],
            [10, 12, 3, 3],
            Conv2dParams::default().with_padding(1),
        ),
        shape(
            [9, 2, 7, 9],
            [5, 2, 3, 3],
            Conv2dParams {
                padding: [0, 2],
                ..Conv2dParams::default()
            },
        ),
        shape(
            [17, 18, 10, 6],
            [4, 18, 5, 3],
            Conv2dParams {
                padding: [1, 0],
                ..Conv2dParams::default()
            },
        ),
    ] {
        matches_reference(&s, false, 41).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn weight_gradient_over_groups_of_images_matches_reference() {
    // Small images with enough taps for the broadcast weight gradient, which sums several
    // images per kernel call: 40 images make batch blocks of 10, a group of 8 and one of 2.
    let s = shape(
        [40, 12, 6, 6],
        [20, 12, 3, 3],
        Conv2dParams::default().with_padding(1),
    );
    matches_reference(&s, true, 17).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn direct_weight_gradient_over_groups_of_images_matches_reference() {
    // One input channel and 68x68 outputs: the direct weight-gradient kernel sums two images
    // per group at AVX-512 (four at AVX2), so batch blocks of eight images make several
    // groups, each summed across lanes and added to the last; 68 is not a multiple of the
    // vector width either.
    let s = shape([32, 1, 70, 70], [8, 1, 3, 3], Conv2dParams::default());
    matches_reference(&s, true, 31).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn thirteen_pixel_tiles_match_reference() {
    // Two AVX-512 vectors of channels, where 13-pixel tiles cover the pixels in fewer
    // multiply-adds than 12-pixel ones: a 13x13 forward pass (13 tiles against 15), and a
    // scatter onto 8x8 output gradients (5 tiles against 6).
    let d = Conv2dParams::default();
    for s in [
        shape([2, 16, 15, 15], [32, 16, 3, 3], d),
        shape(
            [2, 32, 16, 16],
            [48, 32, 3, 3],
            d.with_padding(1).with_stride(2),
        ),
    ] {
        matches_reference(&s, true, 29).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn results_are_bit_identical_for_any_thread_count() {
    for isa in levels() {
        for s in determinism_shapes() {
            let ops = Operands::random(&s, true, 3);
            // 8 and 16 threads (more than this machine's cores) take the splits that a
            // larger machine takes: more tasks than images, channel blocks or batch blocks.
            let threads = [1, 2, 3, 8, 16];
            let runs: Vec<_> = threads
                .into_iter()
                .map(|t| {
                    in_pool(t, || {
                        bits(&fast_at(isa, &s, &ops, &mut ConvWorkspace::new()))
                    })
                })
                .collect();
            for (t, run) in threads.iter().zip(&runs).skip(1) {
                assert!(
                    runs[0] == *run,
                    "{isa:?}: 1 vs {t} threads differ for {s:?}"
                );
            }
        }
    }
}

#[test]
fn backward_weight_is_bit_identical_in_one_and_three_thread_pools() {
    // A batch large enough for several blocks and gradients with a wide dynamic range, so that
    // any change of summation order would show in the low bits.
    let s = shape(
        [13, 6, 10, 10],
        [8, 6, 3, 3],
        Conv2dParams::default().with_padding(1),
    );
    let mut ops = Operands::random(&s, false, 5);
    for (i, g) in ops.grad_output.iter_mut().enumerate() {
        *g *= [1.0, 1e3, 1e-3][i % 3];
    }
    let run = |threads, isa| {
        in_pool(threads, || {
            with_isa(isa, || {
                let mut gw = vec![0.0f32; s.weight_len()];
                let mut gb = vec![0.0f32; s.cout];
                let mut ws = ConvWorkspace::new();
                ganglion_im2col_conv::conv2d_backward_weight(
                    &s,
                    &ops.input,
                    &ops.grad_output,
                    &mut gw,
                    Some(&mut gb),
                    &mut ws,
                );
                (
                    gw.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    gb.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                )
            })
        })
    };
    for isa in levels() {
        assert_eq!(run(1, isa), run(3, isa), "{isa:?}");
    }
}

#[test]
fn images_of_several_tiles_match_reference() {
    let pad = Conv2dParams::default().with_padding(1);
    for s in [
        shape([2, 64, 48, 48], [8, 64, 3, 3], pad),
        shape(
            [1, 48, 128, 121],
            [6, 24, 3, 2],
            pad.with_groups(2).with_dilation(2).with_stride(2),
        ),
    ] {
        // Enough column elements per image that the pixels are cut into tiles.
        assert!(
            s.cin * s.kh * s.kw * s.out_h() * s.out_w() > 1 << 19,
            "{s:?}"
        );
        matches_reference(&s, true, 9).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn one_workspace_serves_shapes_in_any_order() {
    let shapes = determinism_shapes();
    let ops: Vec<_> = shapes
        .iter()
        .enumerate()
        .map(|(i, s)| Operands::random(s, i % 2 == 0, i as u64))
        .collect();
    let fresh: Vec<_> = shapes
        .iter()
        .zip(&ops)
        .map(|(s, o)| bits(&fast(s, o, &mut ConvWorkspace::new())))
        .collect();
    let mut ws = ConvWorkspace::new();
    // Largest last, then back to the small ones: every buffer is reused at another size.
    // Every shape is in the order, or the final pass below would meet new sizes.
    let order = [
        5, 0, 3, 14, 16, 1, 18, 9, 12, 11, 4, 15, 2, 17, 10, 6, 19, 13, 8, 7,
    ];
    let mut all = order.to_vec();
    all.sort_unstable();
    assert_eq!(
        all,
        (0..shapes.len()).collect::<Vec<_>>(),
        "order covers the shapes"
    );
    for round in 0..2 {
        for i in order.into_iter().rev().chain([0, 5, 2, 7]) {
            assert!(
                bits(&fast(&shapes[i], &ops[i], &mut ws)) == fresh[i],
                "shape {i}, round {round}"
            );
        }
    }
    let warm = ws.allocated_floats();
    for (s, o) in shapes.iter().zip(&ops) {
        fast(s, o, &mut ws);
    }
    assert_eq!(
        ws.allocated_floats(),
        warm,
        "a warm workspace does not grow"
    );
}

#[test]
#[should_panic(expected = "conv2d_forward: output has 3 elements but the shape needs 8")]
fn wrong_slice_length_panics_naming_it() {
    let s = shape([1, 1, 3, 3], [2, 1, 2, 2], Conv2dParams::default());
    let mut out = vec![0.0; 3];
    conv2d_forward(
        &s,
        &[0.0; 9],
        &[0.0; 8],
        None,
        &mut out,
        &mut ConvWorkspace::new(),
    );
}

#[test]
#[should_panic(expected = "is not a valid convolution shape")]
fn hand_edited_invalid_shape_panics() {
    let mut s = shape([1, 2, 3, 3], [2, 2, 2, 2], Conv2dParams::default());
    s.params.groups = 0;
    let mut gx = vec![0.0; s.input_len()];
    ganglion_im2col_conv::conv2d_backward_data(
        &s,
        &[0.0; 8],
        &[0.0; 16],
        &mut gx,
        &mut ConvWorkspace::new(),
    );
}
