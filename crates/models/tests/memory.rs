//! What a training step keeps: resnet20's blocks run their ReLUs and residual additions in
//! place (as torchvision's do) and the graph releases intermediate gradients, with results
//! bit-identical to the out-of-place computation and traced values read before they are
//! overwritten.

use ganglion_autograd::Graph;
use ganglion_models::layers::{BasicBlock, BatchNorm2d, ReLU, Sequential, Sigmoid};
use ganglion_models::{Module, TraceEvent, resnet20};
use ganglion_tensor::{Rng, Tensor, init};

/// Batch of the resnet20 step: small, the bound scales with it.
const BATCH: usize = 8;

/// One resnet20 training step after a warm-up; returns the `f32`s the graph's pool keeps for
/// the next step (all its tensor storage) and the model's parameter count.
fn resnet20_kept_floats() -> (usize, usize) {
    let mut rng = Rng::seed_from(4);
    let mut model = resnet20(&mut rng);
    model.set_training(true);
    let x = init::normal(&[BATCH, 3, 32, 32], 0.0, 1.0, &mut rng);
    let labels: Vec<usize> = (0..BATCH).map(|i| i % 10).collect();
    let mut g = Graph::new();
    for _ in 0..2 {
        g.reset();
        let xv = g.input_from(x.shape(), x.data()).unwrap();
        let logits = model.forward(&mut g, xv).unwrap();
        let loss = g.cross_entropy(logits, &labels, 0.0).unwrap();
        g.backward(loss).unwrap();
    }
    g.reset();
    (g.pooled_floats(), model.num_parameters())
}

#[test]
fn resnet20_keeps_about_thirty_stage_one_activations() {
    // One stage-1 activation, [BATCH, 16, 32, 32]. The forward pass must keep 14 of them
    // (stem convolution and activation, then per block the two convolutions' outputs, the
    // first activation and the block's output), 13 half-size ones in stage 2 and 14
    // quarter-size ones in stage 3 (with the shortcuts' subsampled and padded inputs), about
    // 24 in all; backward adds three gradients of each size, about 30 in all. Keeping every
    // activation and gradient, as before in-place ops and released gradients, took about 81.
    // Besides, the graph holds a copy of every parameter and its gradient.
    let act = BATCH * 16 * 32 * 32;
    let (kept, params) = resnet20_kept_floats();
    let activations = kept.saturating_sub(2 * params) as f64 / act as f64;
    assert!(
        activations <= 31.0,
        "resnet20 keeps {activations:.1} stage-1 activations"
    );
}

/// `(output, input gradient, parameter gradients)` of `sum(output * r)` for a fixed `r`.
type Outcome = (Tensor, Tensor, Vec<Tensor>);

fn loss_of(g: &mut Graph, y: ganglion_autograd::Var) -> ganglion_autograd::Var {
    let r = Tensor::from_fn(g.shape(y), |i| ((i * 7919) % 13) as f32 / 6.0 - 1.0);
    let r = g.input(r);
    let p = g.mul(y, r).unwrap();
    g.sum(p).unwrap()
}

/// The block's forward pass written out with out-of-place ops, from its own layers.
fn reference(block: &BasicBlock, x: &Tensor) -> Outcome {
    block.parameters().iter().for_each(|p| p.zero_grad());
    let mut g = Graph::new();
    let xv = g.variable(x.clone());
    let out = block.conv1().forward(&mut g, xv).unwrap();
    let out = block.bn1().forward(&mut g, out).unwrap();
    let out = g.relu(out).unwrap();
    let out = block.conv2().forward(&mut g, out).unwrap();
    let out = block.bn2().forward(&mut g, out).unwrap();
    let short = g.subsample(xv, [2, 2]).unwrap();
    let short = g.pad_channels(short, 4, 4).unwrap();
    let sum = g.add(out, short).unwrap();
    let y = g.relu(sum).unwrap();
    let loss = loss_of(&mut g, y);
    g.backward(loss).unwrap();
    let grads = block.parameters().iter().map(|p| p.grad()).collect();
    (g.value(y).clone(), g.grad(xv).unwrap().clone(), grads)
}

fn block_outcome(block: &BasicBlock, x: &Tensor) -> Outcome {
    block.parameters().iter().for_each(|p| p.zero_grad());
    let mut g = Graph::new();
    let xv = g.variable(x.clone());
    let y = block.forward(&mut g, xv).unwrap();
    let loss = loss_of(&mut g, y);
    g.backward(loss).unwrap();
    let grads = block.parameters().iter().map(|p| p.grad()).collect();
    (g.value(y).clone(), g.grad(xv).unwrap().clone(), grads)
}

#[test]
fn inplace_block_matches_the_out_of_place_computation_bit_for_bit() {
    let mut rng = Rng::seed_from(6);
    let block = BasicBlock::new(8, 16, 2, &mut rng).unwrap();
    let x = init::normal(&[4, 8, 16, 16], 0.0, 1.0, &mut rng);
    let want = reference(&block, &x);
    let got = block_outcome(&block, &x);
    assert_eq!(got.0, want.0, "output");
    assert_eq!(got.1, want.1, "input gradient");
    assert_eq!(got.2, want.2, "parameter gradients");
    assert!(got.0.data().iter().any(|&v| v > 0.0) && got.0.data().contains(&0.0));
}

#[test]
fn inplace_relu_layer_matches_and_falls_back_where_a_rule_needs_its_input() {
    let x = Tensor::from_fn(&[2, 3, 4, 4], |i| (i as f32 * 0.61).sin());
    let run = |relu: ReLU, first_sigmoid: bool| {
        let mut g = Graph::new();
        let mut net = Sequential::new();
        net = if first_sigmoid {
            net.push(Sigmoid::new())
        } else {
            net.push(BatchNorm2d::new(3))
        };
        let net = net.push(relu);
        let xv = g.variable(x.clone());
        let y = net.forward(&mut g, xv).unwrap();
        let loss = loss_of(&mut g, y);
        g.backward(loss).unwrap();
        (g.value(y).clone(), g.grad(xv).unwrap().clone())
    };
    for sigmoid in [false, true] {
        assert_eq!(run(ReLU::inplace(), sigmoid), run(ReLU::new(), sigmoid));
    }
    assert!(ReLU::inplace().is_inplace() && !ReLU::new().is_inplace());
    assert_eq!(ReLU::inplace().describe(), "ReLU(inplace=True)");
    assert_eq!(ReLU::new().describe(), "ReLU()");
}

#[test]
fn traced_values_are_read_before_the_inplace_ops_overwrite_them() {
    let mut rng = Rng::seed_from(9);
    let model = resnet20(&mut rng);
    let x = init::normal(&[2, 3, 32, 32], 0.0, 1.0, &mut rng);
    let mut g = Graph::new();
    let xv = g.input(x);
    let mut seen: Vec<(String, Tensor)> = Vec::new();
    model
        .forward_traced(&mut g, xv, "", &mut |e: TraceEvent<'_>| {
            if ["bn1", "relu", "layer1.0.bn2", "layer1.0"].contains(&e.name) {
                seen.push((e.name.to_string(), e.value.clone()));
            }
        })
        .unwrap();
    let get = |name: &str| &seen.iter().find(|(n, _)| n == name).unwrap().1;
    let (bn, relu) = (get("bn1"), get("relu"));
    assert!(bn.data().iter().any(|&v| v < 0.0), "bn1 before its ReLU");
    assert_eq!(relu, &bn.map(|v| v.max(0.0)));
    assert!(get("layer1.0.bn2").data().iter().any(|&v| v < 0.0));
    assert!(get("layer1.0").data().iter().all(|&v| v >= 0.0));
}
