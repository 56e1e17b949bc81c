//! Property test: the fast kernels agree with the `f64` reference on random shapes (batch 1-3,
//! groups 1-3 with depthwise, odd sizes, non-square kernels, stride, padding, dilation), on
//! every instruction-set level this CPU has.

mod common;

use common::{matches_reference, shapes};
use ganglion_im2col_conv::{Conv2dParams, Conv2dShape};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn fast_path_matches_f64_reference(
        shape in shapes(1..=3, 1..=3, 1..=3, 1..=9, 1..=4),
        with_bias: bool,
        seed in 0u64..1000,
    ) {
        if let Err(e) = matches_reference(&shape, with_bias, seed) {
            prop_assert!(false, "{}", e);
        }
    }

    #[test]
    fn depthwise_matches_f64_reference(
        shape in shapes(1..=3, 1..=6, 1..=1, 1..=9, 1..=4),
        seed in 0u64..1000,
    ) {
        prop_assert_eq!(shape.cin, shape.params.groups);
        if let Err(e) = matches_reference(&shape, true, seed) {
            prop_assert!(false, "{}", e);
        }
    }

    /// Stride 1 with at least 64 input channels per group: backward-data runs as the forward
    /// convolution of the output gradient by the rotated weights, for every padding up to the
    /// dilated kernel's reach (and the GEMM route beyond it).
    #[test]
    fn rotated_backward_data_matches_f64_reference(
        shape in shapes(1..=2, 1..=2, 64..=66, 1..=6, 1..=4).prop_map(|s| {
            let params = Conv2dParams { stride: [1, 1], ..s.params };
            Conv2dShape::new(s.input_dims(), s.weight_dims(), params).expect("stride 1 fits too")
        }),
        seed in 0u64..1000,
    ) {
        if let Err(e) = matches_reference(&shape, false, seed) {
            prop_assert!(false, "{}", e);
        }
    }

    /// Output rows 32 or 12 to 16 wide (a whole AVX-512 tile, or at most half of one taken
    /// two rows at a time, odd row counts included), or 24 to 31 (three quarters of an
    /// AVX-512 tile or more, one row per call), on deep layers: the direct row kernel runs
    /// the forward pass and, from 6 input channels, the rotated backward-data.
    #[test]
    fn full_width_rows_match_f64_reference(
        n in 1usize..=2,
        cin in 6usize..=17,
        cout in 1usize..=17,
        (k, pad) in (2usize..=3).prop_flat_map(|k| (Just(k), 0..=(k - 1) / 2)),
        out_h in prop_oneof![1usize..=3, 32usize..=33],
        out_w in prop_oneof![Just(16usize), Just(32usize), 12usize..=15, 24usize..=31],
        with_bias: bool,
        seed in 0u64..1000,
    ) {
        let size = |out: usize| out + k - 1 - 2 * pad;
        let params = Conv2dParams::default().with_padding(pad);
        let shape = Conv2dShape::new([n, cin, size(out_h), size(out_w)], [cout, cin, k, k], params)
            .expect("valid by construction");
        prop_assert_eq!(shape.out_w(), out_w);
        if let Err(e) = matches_reference(&shape, with_bias, seed) {
            prop_assert!(false, "{}", e);
        }
    }

    /// 3 x 3 layers of 2 to 8 input channels, stride 1, rows of 16 to 80 outputs (one to
    /// three chunks of columns, ragged ones included) and odd or even row counts: at
    /// AVX-512 the forward pass runs by Winograd's `F(2, 3)`, its tiles of 3 channels
    /// ragged at the end of a block.
    #[test]
    fn winograd_route_matches_f64_reference(
        n in 1usize..=2,
        cin in 2usize..=8,
        cout in 1usize..=13,
        pad in [0usize..=2, 0usize..=2],
        out_h in 2usize..=9,
        out_w in 16usize..=80,
        with_bias: bool,
        seed in 0u64..1000,
    ) {
        let shape = three_by_three(n, cin, cout, pad, [out_h, out_w]);
        if let Err(e) = matches_reference(&shape, with_bias, seed) {
            prop_assert!(false, "{}", e);
        }
    }

    /// RGB stems: 3 input channels, 32 to 40 output channels, rows of 32 or 64 outputs: at
    /// AVX-512 the weight gradient runs by the transposed `F(2, 3)` too, its batch blocks of
    /// one to two images, its tiles of 2 channels ragged at the end.
    #[test]
    fn winograd_weight_gradient_matches_f64_reference(
        n in 1usize..=5,
        cout in 32usize..=40,
        pad in [0usize..=2, 0usize..=2],
        out_h in 2usize..=9,
        out_w in prop_oneof![Just(32usize), Just(64usize)],
        with_bias: bool,
        seed in 0u64..1000,
    ) {
        let shape = three_by_three(n, 3, cout, pad, [out_h, out_w]);
        if let Err(e) = matches_reference(&shape, with_bias, seed) {
            prop_assert!(false, "{}", e);
        }
    }

    /// Deep layers (at least 81 multiply-adds per output) of any stride, padding, dilation and
    /// row width, with 1 to 70 output channels: the broadcast kernels' forward pass and weight
    /// gradient in every tile shape, with ragged channel blocks, pixel tiles and tap tiles
    /// (and the rotated backward-data from 16 input channels).
    #[test]
    fn broadcast_kernel_matches_f64_reference(
        shape in shapes(1..=2, 1..=1, 9..=17, 1..=9, 3..=4),
        cout in 1usize..=70,
        with_bias: bool,
        seed in 0u64..1000,
    ) {
        let [_, cin_g, kh, kw] = shape.weight_dims();
        let shape = Conv2dShape::new(shape.input_dims(), [cout, cin_g, kh, kw], shape.params)
            .expect("only the output channels changed");
        if let Err(e) = matches_reference(&shape, with_bias, seed) {
            prop_assert!(false, "{}", e);
        }
    }

    /// Backward-data by scatter: at least 16 input and 32 output channels, one group, a
    /// kernel larger than 1x1, and a stride above 1 (or, where the rotated forward does not
    /// take the layer, a padding other than half the reach); 16 to 70 input channels cover
    /// one to three channel blocks with ragged last blocks, and every tile shape. Other
    /// shapes drawn here take the other routes, also checked.
    #[test]
    fn scatter_backward_data_matches_f64_reference(
        shape in shapes(1..=3, 1..=1, 32..=34, 1..=9, 2..=4),
        cin in 16usize..=70,
        seed in 0u64..1000,
    ) {
        let [n, _, h, w] = shape.input_dims();
        let [cout, _, kh, kw] = shape.weight_dims();
        let shape = Conv2dShape::new([n, cin, h, w], [cout, cin, kh, kw], shape.params)
            .expect("only the input channels changed");
        if let Err(e) = matches_reference(&shape, false, seed) {
            prop_assert!(false, "{}", e);
        }
    }
}

/// A stride-1 3 x 3 layer of `cin` to `cout` channels whose output is `out` (`[out_h,
/// out_w]`) with padding `pad`, given at least one row and column of real input.
fn three_by_three(
    n: usize,
    cin: usize,
    cout: usize,
    pad: [usize; 2],
    out: [usize; 2],
) -> Conv2dShape {
    let size = |out: usize, pad: usize| (out + 2).saturating_sub(2 * pad).max(1);
    let params = Conv2dParams {
        padding: pad,
        ..Conv2dParams::default()
    };
    let input = [n, cin, size(out[0], pad[0]), size(out[1], pad[1])];
    Conv2dShape::new(input, [cout, cin, 3, 3], params).expect("valid by construction")
}
