//! Zoo and layer behaviour: parameter counts and names, output shapes, train/eval modes,
//! batch-norm statistics, error paths and one gradient step.

use ganglion_autograd::Graph;
use ganglion_im2col_conv::Conv2dParams;
use ganglion_models::layers::{
    BasicBlock, BatchNorm2d, Conv2d, Dropout, Linear, ReLU, Sequential, Shortcut,
};
use ganglion_models::{
    Entry, ModelError, Module, ZOO, allconv, allconv_with, by_name, lenet5, mnistnet, resnet20,
};
use ganglion_tensor::{Rng, Tensor, init};

fn names(m: &dyn Module) -> Vec<String> {
    m.named_parameters().into_iter().map(|(n, _)| n).collect()
}

fn weight_bias(layers: &[&str]) -> Vec<String> {
    layers
        .iter()
        .flat_map(|l| [format!("{l}.weight"), format!("{l}.bias")])
        .collect()
}

fn run(m: &dyn Module, x: &Tensor, g: &mut Graph) -> Tensor {
    let v = g.input(x.clone());
    let y = m.forward(g, v).unwrap();
    g.value(y).clone()
}

#[test]
fn parameter_counts_are_exact() {
    let mut rng = Rng::seed_from(1);
    assert_eq!(lenet5(&mut rng).num_parameters(), 61_706);
    assert_eq!(mnistnet(&mut rng).num_parameters(), 1_199_882);
    assert_eq!(allconv(&mut rng).num_parameters(), 65_642);
    assert_eq!(allconv_with(3, &mut rng).unwrap().num_parameters(), 66_218);
    assert_eq!(resnet20(&mut rng).num_parameters(), 269_722);
    for &name in ZOO {
        let m = by_name(name, &mut rng).unwrap();
        assert_eq!(m.architecture(), Some(name));
        assert_eq!(m.num_classes(), Some(10));
        assert_eq!(
            m.parameters().iter().map(|p| p.len()).sum::<usize>(),
            m.num_parameters()
        );
    }
    let err = by_name("vgg16", &mut rng).err().unwrap().to_string();
    assert!(err.contains("vgg16") && err.contains("resnet20"), "{err}");
    assert!(allconv_with(0, &mut rng).is_err());
}

#[test]
fn parameter_names_follow_pytorch() {
    let mut rng = Rng::seed_from(2);
    assert_eq!(
        names(&lenet5(&mut rng)),
        weight_bias(&["conv1", "conv2", "fc1", "fc2", "fc3"])
    );
    assert_eq!(
        names(&mnistnet(&mut rng)),
        weight_bias(&["conv1", "conv2", "fc1", "fc2"])
    );
    assert_eq!(
        names(&allconv(&mut rng)),
        weight_bias(&["conv1", "conv2", "conv3", "conv4", "conv5"])
    );

    let bn = |p: &str| {
        [
            "weight",
            "bias",
            "running_mean",
            "running_var",
            "num_batches_tracked",
        ]
        .map(|s| format!("{p}.{s}"))
    };
    let mut want = vec!["conv1.weight".to_string()];
    want.extend(bn("bn1"));
    for layer in 1..=3 {
        for block in 0..3 {
            let p = format!("layer{layer}.{block}");
            want.push(format!("{p}.conv1.weight"));
            want.extend(bn(&format!("{p}.bn1")));
            want.push(format!("{p}.conv2.weight"));
            want.extend(bn(&format!("{p}.bn2")));
        }
    }
    want.extend(["fc.weight".to_string(), "fc.bias".to_string()]);
    let net = resnet20(&mut rng);
    let state = net.state_shapes();
    let got: Vec<&str> = state.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(got, want);
    let shape_of = |name: &str| state.iter().find(|(n, _)| n == name).unwrap().1.clone();
    assert_eq!(shape_of("conv1.weight"), [16, 3, 3, 3]);
    assert_eq!(shape_of("layer2.0.conv1.weight"), [32, 16, 3, 3]);
    assert_eq!(shape_of("layer3.2.bn2.running_var"), [64]);
    assert_eq!(
        shape_of("layer1.0.bn1.num_batches_tracked"),
        Vec::<usize>::new()
    );
    assert_eq!(shape_of("fc.weight"), [10, 64]);
    // Buffers are not trainable parameters.
    assert!(!names(&net).iter().any(|n| n.contains("running")));
    assert_eq!(net.named_buffers().len(), 2 * 19);
}

#[test]
fn forward_shapes_for_a_batch_of_two() {
    let mut rng = Rng::seed_from(3);
    let mnist = init::normal(&[2, 1, 28, 28], 0.0, 1.0, &mut rng);
    let cifar = init::normal(&[2, 3, 32, 32], 0.0, 1.0, &mut rng);
    let cases: Vec<(Box<dyn Module>, &Tensor)> = vec![
        (Box::new(lenet5(&mut rng)), &mnist),
        (Box::new(mnistnet(&mut rng)), &mnist),
        (Box::new(allconv(&mut rng)), &mnist),
        (Box::new(allconv_with(3, &mut rng).unwrap()), &cifar),
        (Box::new(resnet20(&mut rng)), &cifar),
    ];
    for (mut m, x) in cases {
        assert_eq!(&x.shape()[1..], m.input_shape().unwrap());
        for training in [true, false] {
            m.set_training(training);
            let y = run(m.as_ref(), x, &mut Graph::new());
            assert_eq!(y.shape(), &[2, 10], "{}", m.kind());
            assert!(y.is_finite());
        }
        assert_eq!(m.infer(x.clone()).unwrap().shape(), &[2, 10]);
    }
}

#[test]
fn dropout_is_active_only_in_training_mode() {
    let mut rng = Rng::seed_from(4);
    let mut net = mnistnet(&mut rng);
    let x = init::normal(&[2, 1, 28, 28], 0.0, 1.0, &mut rng);
    let train_run = |net: &dyn Module, seed| {
        let mut g = Graph::new();
        g.set_seed(seed);
        run(net, &x, &mut g)
    };
    assert!(net.is_training());
    let a = train_run(&net, 1);
    assert_eq!(
        a,
        train_run(&net, 1),
        "a seeded graph drops the same elements"
    );
    assert_ne!(a, train_run(&net, 2), "another seed drops other elements");

    net.set_training(false);
    assert!(!net.is_training());
    assert!(net.children().iter().all(|(_, c)| !c.is_training()));
    let e = train_run(&net, 1);
    assert_eq!(e, train_run(&net, 2), "evaluation ignores the seed");
    assert_eq!(e, net.infer(x.clone()).unwrap());
    assert_ne!(e, a);

    let mut d = Dropout::new(0.5).unwrap();
    let ones = Tensor::ones(&[4, 64]);
    let y = run(&d, &ones, &mut Graph::new());
    let zeros = y.data().iter().filter(|&&v| v == 0.0).count();
    assert!((64..192).contains(&zeros), "{zeros} of 256 dropped");
    assert!(y.data().iter().all(|&v| v == 0.0 || v == 2.0));
    d.set_training(false);
    assert_eq!(run(&d, &ones, &mut Graph::new()), ones);
    assert!(Dropout::new(1.0).is_err() && Dropout::new(-0.1).is_err());
}

#[test]
fn batch_norm_updates_running_statistics_in_training_mode_only() {
    let mut bn = BatchNorm2d::new(1);
    let x = Tensor::new(&[2, 1, 1, 2], vec![1.0, 2.0, 3.0, 4.0]).unwrap();
    let y = run(&bn, &x, &mut Graph::new());
    // Batch mean 2.5, biased variance 1.25: normalised with the batch statistics.
    let s = (1.25f32 + 1e-5).sqrt();
    for (got, v) in y.data().iter().zip([1.0f32, 2.0, 3.0, 4.0]) {
        assert!((got - (v - 2.5) / s).abs() < 1e-5);
    }
    // running = 0.9 running + 0.1 batch, with the unbiased variance 5/3.
    assert!((bn.running_mean().value().data()[0] - 0.25).abs() < 1e-6);
    assert!((bn.running_var().value().data()[0] - (0.9 + 0.1 * 5.0 / 3.0)).abs() < 1e-6);
    assert_eq!(bn.num_batches_tracked(), 1);
    run(&bn, &x, &mut Graph::inference());
    assert_eq!(
        bn.num_batches_tracked(),
        2,
        "the mode is the module's, not the graph's"
    );

    bn.set_training(false);
    let mean = bn.running_mean().value();
    let e1 = run(&bn, &x, &mut Graph::new());
    let e2 = run(&bn, &x, &mut Graph::new());
    assert_eq!(e1, e2);
    assert_ne!(e1, y);
    assert_eq!(bn.num_batches_tracked(), 2);
    assert_eq!(bn.running_mean().value(), mean);

    // The same through a whole network: every counter moves together.
    let mut rng = Rng::seed_from(5);
    let mut net = resnet20(&mut rng);
    let x = init::normal(&[2, 3, 32, 32], 0.5, 1.0, &mut rng);
    run(&net, &x, &mut Graph::new());
    let mut counters = Vec::new();
    net.visit("", &mut |name, e| {
        if let Entry::Counter(c) = e {
            counters.push((
                name.to_string(),
                c.load(std::sync::atomic::Ordering::Relaxed),
            ));
        }
    });
    assert_eq!(counters.len(), 19);
    assert!(counters.iter().all(|(_, c)| *c == 1), "{counters:?}");
    let moved = net
        .named_buffers()
        .iter()
        .filter(|(n, _)| n.ends_with("running_mean"))
        .all(|(_, p)| p.value().data().iter().any(|&v| v != 0.0));
    assert!(moved);
    let train_out = run(&net, &x, &mut Graph::new());
    net.set_training(false);
    let a = net.infer(x.clone()).unwrap();
    assert_eq!(a, net.infer(x.clone()).unwrap());
    assert_ne!(a, train_out);
}

#[test]
fn option_a_shortcut_subsamples_and_pads_channels() {
    let mut rng = Rng::seed_from(6);
    let mut block = BasicBlock::new(4, 8, 2, &mut rng).unwrap();
    assert_eq!(
        block.shortcut(),
        Shortcut::OptionA {
            stride: 2,
            before: 2,
            after: 2
        }
    );
    assert_eq!(block.num_parameters(), 4 * 8 * 9 + 8 * 8 * 9 + 4 * 8);
    // With zero convolution weights the residual branch is bn2(0) = 0 in evaluation, so the
    // output is relu(shortcut(x)).
    block.conv2().weight().write().value.fill(0.0);
    block.set_training(false);
    let x = init::normal(&[1, 4, 6, 6], 0.0, 1.0, &mut rng);
    let y = block.infer(x.clone()).unwrap();
    assert_eq!(y.shape(), &[1, 8, 3, 3]);
    for c in 0..8 {
        for i in 0..3 {
            for j in 0..3 {
                let want = if (2..6).contains(&c) {
                    x.get(&[0, c - 2, 2 * i, 2 * j]).unwrap().max(0.0)
                } else {
                    0.0
                };
                assert_eq!(
                    y.get(&[0, c, i, j]).unwrap(),
                    want,
                    "channel {c} ({i}, {j})"
                );
            }
        }
    }
    assert_eq!(
        BasicBlock::new(8, 8, 1, &mut rng).unwrap().shortcut(),
        Shortcut::Identity
    );
    assert!(BasicBlock::new(8, 4, 1, &mut rng).is_err());
}

#[test]
fn layers_describe_themselves_and_name_children() {
    let mut rng = Rng::seed_from(7);
    let net = lenet5(&mut rng);
    let children = net.children();
    let conv1 = children.iter().find(|(n, _)| *n == "conv1").unwrap().1;
    assert_eq!(conv1.kind(), "Conv2d");
    assert_eq!(
        conv1.describe(),
        "Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2))"
    );
    let fc1 = children.iter().find(|(n, _)| *n == "fc1").unwrap().1;
    assert_eq!(
        fc1.describe(),
        "Linear(in_features=400, out_features=120, bias=True)"
    );
    let seq = Sequential::new()
        .push(Linear::new(3, 4, false, &mut rng))
        .push(ReLU::new())
        .push(Sequential::new().push(Linear::new(4, 2, true, &mut rng)));
    assert_eq!(names(&seq), ["0.weight", "2.0.weight", "2.0.bias"]);
    assert_eq!(seq.num_parameters(), 12 + 8 + 2);
}

#[test]
fn errors_name_the_layer_and_bad_configurations_are_refused() {
    let mut rng = Rng::seed_from(8);
    let net = lenet5(&mut rng);
    let err = net.infer(Tensor::zeros(&[2, 1, 32, 32])).unwrap_err();
    assert!(
        matches!(&err, ModelError::Layer { path, .. } if path == "fc1"),
        "{err}"
    );
    let net = resnet20(&mut rng);
    let err = net.infer(Tensor::zeros(&[1, 1, 32, 32])).unwrap_err();
    assert!(
        matches!(&err, ModelError::Layer { path, .. } if path == "conv1"),
        "{err}"
    );

    let grouped = Conv2dParams {
        groups: 3,
        ..Conv2dParams::default()
    };
    let err = Conv2d::new(4, 6, [3, 3], grouped, true, &mut rng).unwrap_err();
    assert!(err.to_string().contains("groups 3"), "{err}");
    assert!(Conv2d::new(0, 6, [3, 3], Conv2dParams::default(), true, &mut rng).is_err());
    assert!(Conv2d::new(1, 6, [0, 3], Conv2dParams::default(), true, &mut rng).is_err());
}

#[test]
fn default_initialisation_has_pytorch_bounds() {
    let mut rng = Rng::seed_from(9);
    let net = lenet5(&mut rng);
    let params = net.named_parameters();
    // Weight and bias of each layer lie in U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    for (layer, fan_in) in [
        ("conv1", 25),
        ("conv2", 150),
        ("fc1", 400),
        ("fc2", 120),
        ("fc3", 84),
    ] {
        let bound = 1.0 / (fan_in as f32).sqrt();
        for part in ["weight", "bias"] {
            let name = format!("{layer}.{part}");
            let p = &params.iter().find(|(n, _)| *n == name).unwrap().1;
            let max = p.value().data().iter().fold(0f32, |m, v| m.max(v.abs()));
            assert!(
                max <= bound && max > 0.2 * bound,
                "{name}: {max} vs {bound}"
            );
        }
    }
    // resnet20 draws its convolutions from N(0, 2 / fan_in).
    let net = resnet20(&mut rng);
    let w = net.named_parameters()[0].1.value();
    let n = w.len() as f32;
    let std = (w.data().iter().map(|v| v * v).sum::<f32>() / n).sqrt();
    let want = (2.0f32 / 27.0).sqrt();
    assert!((std / want - 1.0).abs() < 0.2, "{std} vs {want}");
}

#[test]
fn one_gradient_step_lowers_the_loss() {
    let mut rng = Rng::seed_from(10);
    let net = lenet5(&mut rng);
    let x = init::normal(&[8, 1, 28, 28], 0.0, 1.0, &mut rng);
    let targets: Vec<usize> = (0..8).map(|i| i % 10).collect();
    let loss_of = |g: &mut Graph| {
        let v = g.input(x.clone());
        let logits = net.forward(g, v).unwrap();
        g.cross_entropy(logits, &targets, 0.0).unwrap()
    };
    let mut g = Graph::new();
    let loss = loss_of(&mut g);
    let before = g.value(loss).data()[0];
    g.backward(loss).unwrap();
    for (name, p) in net.named_parameters() {
        let mut d = p.write();
        assert!(
            d.grad.data().iter().any(|&v| v != 0.0),
            "{name} got no gradient"
        );
        let grad = d.grad.clone();
        d.value.axpy_assign(-0.05, &grad).unwrap();
    }
    net.zero_grad();
    assert!(
        net.parameters()
            .iter()
            .all(|p| p.grad().data().iter().all(|&v| v == 0.0))
    );
    let mut g = Graph::inference();
    let loss = loss_of(&mut g);
    let after = g.value(loss).data()[0];
    assert!(after < before, "loss {before} -> {after}");
}
