//! `Module::summary` and `Module::forward_traced`: shapes, parameters, multiply-accumulates and
//! receptive fields of zoo models and of models built in code.

use ganglion_autograd::Graph;
use ganglion_im2col_conv::Conv2dParams;
use ganglion_models::layers::{Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential};
use ganglion_models::{Entry, Footprint, ModelError, Module, Summary, by_name, lenet5, resnet20};
use ganglion_pooling::Pool2dParams;
use ganglion_tensor::{Rng, Tensor};

fn rng() -> Rng {
    Rng::seed_from(7)
}

fn rf(s: &Summary, name: &str) -> (usize, usize) {
    let l = s.layer(name).unwrap_or_else(|| panic!("no row {name}"));
    assert_eq!(l.receptive_field[0], l.receptive_field[1], "{name}");
    (l.receptive_field[0], l.jump[0])
}

#[test]
fn lenet5_rows_read_the_lecture_numbers() {
    let s = lenet5(&mut rng()).summary(&[1, 28, 28]).unwrap();
    assert_eq!(s.model, "lenet5");
    assert_eq!(s.total_params, 61_706);
    assert_eq!(s.trainable_params, 61_706);
    assert_eq!(s.output_shape, [10]);
    assert_eq!(rf(&s, "conv1"), (5, 1));
    assert_eq!(rf(&s, "pool1"), (6, 2));
    assert_eq!(rf(&s, "conv2"), (14, 2));
    assert_eq!(rf(&s, "pool2"), (16, 4));
    let conv1 = s.layer("conv1").unwrap();
    assert_eq!(conv1.macs, 6 * 28 * 28 * 25);
    assert_eq!(conv1.params, 156);
    assert_eq!(conv1.output_shape.as_deref(), Some(&[6, 28, 28][..]));
    assert_eq!(conv1.start, [-2, -2]);
    assert_eq!(s.layer("conv2").unwrap().macs, 16 * 10 * 10 * 6 * 25);
    assert_eq!(s.layer("fc1").unwrap().macs, 400 * 120);
    assert_eq!(s.total_macs, 117_600 + 240_000 + 48_000 + 10_080 + 840);
    assert_eq!(s.layers.iter().map(|l| l.params).sum::<usize>(), 61_706);
    let names: Vec<&str> = s.layers.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names[..4], ["conv1", "relu1", "pool1", "conv2"]);
    assert!(s.layers.iter().all(|l| l.is_leaf && l.depth == 0));
    // conv1 + relu1 outputs are 2 x 4,704 values of the 15,002 the leaves produce.
    assert_eq!(s.activation_elements, 15_002);
    assert_eq!(s.batch_activation_bytes(), 64 * 4 * 15_002);
    assert_eq!(
        s.with_batch_size(8).batch_activation_bytes(),
        8 * 4 * 15_002
    );
}

#[test]
fn lenet5_table_prints_rows_and_totals() {
    let s = lenet5(&mut rng()).summary(&[1, 28, 28]).unwrap();
    let text = s.to_string();
    assert!(text.contains("61,706 (61,706 trainable)"), "{text}");
    assert!(text.contains("117,600"), "{text}");
    let pool2 = text
        .lines()
        .find(|l| l.starts_with("pool2"))
        .expect("a pool2 row");
    let cells: Vec<&str> = pool2.split_whitespace().collect();
    assert_eq!(cells, ["pool2", "MaxPool2d", "16x5x5", "0", "0", "16", "4"]);
}

#[test]
fn resnet20_has_block_rows_over_their_convolutions() {
    let model = resnet20(&mut rng());
    let s = model.summary(&[3, 32, 32]).unwrap();
    assert_eq!(s.total_params, 269_722);
    let block = s.layer("layer1.0").unwrap();
    assert_eq!(block.kind, "BasicBlock");
    assert!(!block.is_leaf);
    assert_eq!(block.depth, 1);
    assert_eq!(s.layer("layer1").unwrap().depth, 0);
    let inner = s.layer("layer1.0.conv1").unwrap();
    assert_eq!((inner.depth, inner.kind.as_str()), (2, "Conv2d"));
    assert_eq!(inner.macs, 16 * 32 * 32 * 16 * 9);
    // stem 3 -> block conv1 5 -> block conv2 7: the block's field is its main path's.
    assert_eq!(rf(&s, "conv1"), (3, 1));
    assert_eq!(rf(&s, "layer1.0"), (7, 1));
    assert_eq!(rf(&s, "layer2.0.conv1"), (17, 2));
    // layer1 ends at 3 + 6 * 2 = 15. A stage's first convolution adds 2 * the previous jump,
    // the five after it 2 * the doubled jump: layer2 15 + 2 + 5 * 4, layer3 37 + 4 + 5 * 8.
    assert_eq!(rf(&s, "layer2"), (37, 2));
    assert_eq!(rf(&s, "layer3"), (81, 4));
    let block_macs: u64 = s
        .layers
        .iter()
        .filter(|l| l.is_leaf && l.name.starts_with("layer2.0."))
        .map(|l| l.macs)
        .sum();
    assert_eq!(s.layer("layer2.0").unwrap().macs, block_macs);
    assert_eq!(
        s.layer("layer2").unwrap().output_shape.as_deref(),
        Some(&[32, 16, 16][..])
    );
    let leaves: u64 = s.layers.iter().filter(|l| l.is_leaf).map(|l| l.macs).sum();
    assert_eq!(s.total_macs, leaves);
    assert!(s.buffer_elements > 0);
}

#[test]
fn summary_leaves_training_state_untouched() {
    let model = resnet20(&mut rng());
    assert!(model.is_training());
    model.summary(&[3, 32, 32]).unwrap();
    for (name, e) in model.state_entries() {
        match e {
            Entry::Counter(c) => {
                assert_eq!(c.load(std::sync::atomic::Ordering::Relaxed), 0, "{name}");
            }
            Entry::Buffer(p) if name.ends_with("running_mean") => {
                assert!(p.value().data().iter().all(|&v| v == 0.0), "{name}");
            }
            _ => {}
        }
    }
}

#[test]
fn two_stacked_3x3_convolutions_built_in_code_see_5x5() {
    let mut r = rng();
    let conv = |cin, cout, dilation: usize, r: &mut Rng| {
        let p = Conv2dParams {
            padding: [dilation, dilation],
            dilation: [dilation, dilation],
            ..Conv2dParams::default()
        };
        Conv2d::new(cin, cout, [3, 3], p, true, r).unwrap()
    };
    let model = Sequential::new()
        .push(conv(3, 4, 1, &mut r))
        .push(ReLU::new())
        .push(conv(4, 4, 1, &mut r))
        .push(conv(4, 4, 2, &mut r))
        .push(MaxPool2d::new(Pool2dParams::new([2, 2])))
        .push(Flatten::new())
        .push(Linear::new(4 * 4 * 4, 5, true, &mut r));
    let s = model.summary(&[3, 8, 8]).unwrap();
    assert_eq!(s.model, "Sequential");
    assert_eq!(rf(&s, "0"), (3, 1));
    assert_eq!(rf(&s, "2"), (5, 1));
    // dilation 2 widens a 3x3 window to 5 taps apart: 5 + 2 * 2.
    assert_eq!(rf(&s, "3"), (9, 1));
    assert_eq!(rf(&s, "4"), (10, 2));
    // The fully connected layer covers the whole 4x4 map: 10 + 3 * 2.
    assert_eq!(rf(&s, "6"), (16, 2));
    assert_eq!(s.layer("6").unwrap().footprint, Footprint::Global);
    assert_eq!(s.total_params, model.num_parameters());
    assert_eq!(s.layer("6").unwrap().macs, 64 * 5);
}

#[test]
fn a_single_layer_summarises_as_one_row() {
    let conv = Conv2d::new(
        1,
        2,
        [5, 3],
        Conv2dParams {
            stride: [2, 1],
            ..Conv2dParams::default()
        },
        false,
        &mut rng(),
    )
    .unwrap();
    let s = conv.summary(&[1, 9, 9]).unwrap();
    assert_eq!(s.layers.len(), 1);
    let row = &s.layers[0];
    assert_eq!(row.name, "Conv2d");
    assert_eq!(row.receptive_field, [5, 3]);
    assert_eq!(row.jump, [2, 1]);
    assert_eq!(row.output_shape.as_deref(), Some(&[2, 3, 7][..]));
    assert_eq!(row.macs, 2 * 3 * 7 * 15);
}

#[test]
fn every_zoo_model_summarises_at_its_input_shape() {
    for name in ganglion_models::ZOO {
        let model = by_name(name, &mut rng()).unwrap();
        let input = model.input_shape().unwrap().to_vec();
        let s = model.summary(&input).unwrap();
        assert_eq!(s.total_params, model.num_parameters(), "{name}");
        assert_eq!(s.output_shape, [10], "{name}");
        assert!(s.total_macs > 0, "{name}");
        assert!(s.layers.iter().all(|l| l.output_shape.is_some()), "{name}");
    }
}

#[test]
fn a_wrong_input_names_the_layer_and_a_zero_size_is_refused() {
    let model = lenet5(&mut rng());
    let err = model.summary(&[3, 28, 28]).unwrap_err().to_string();
    assert!(err.contains("conv1"), "{err}");
    let err = model.summary(&[1, 0, 28]).unwrap_err();
    assert!(matches!(err, ModelError::Config { .. }), "{err}");
}

#[test]
fn forward_traced_reports_each_layer_and_matches_forward() {
    let mut model = resnet20(&mut rng());
    model.set_training(false);
    let x = ganglion_tensor::init::normal(&[1, 3, 32, 32], 0.0, 1.0, &mut rng());
    let plain = model.infer(x.clone()).unwrap();
    let mut g = Graph::inference();
    let input = g.input(x);
    let mut events: Vec<(String, String, Vec<usize>)> = Vec::new();
    let y = model
        .forward_traced(&mut g, input, "", &mut |e| {
            events.push((e.name.into(), e.kind.into(), e.value.shape().to_vec()));
        })
        .unwrap();
    let traced: &Tensor = g.value(y);
    assert_eq!(traced.data(), plain.data());
    assert_eq!(events[0].0, "conv1");
    let i = events.iter().position(|e| e.0 == "layer1.0").unwrap();
    assert_eq!(events[i - 1].0, "layer1.0.bn2");
    assert_eq!(events[i].1, "BasicBlock");
    assert_eq!(events.last().unwrap().0, "");
    assert_eq!(events.last().unwrap().2, [1, 10]);
}
