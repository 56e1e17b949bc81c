//! In-place ops, released gradients and backward rules writing into the gradient they are
//! handed: the same bits as the out-of-place graph that keeps everything, less memory kept,
//! an error naming the node for every read of an overwritten value, and out-of-place
//! fallbacks wherever a backward rule still needs the value.

use ganglion_autograd::gradcheck::{GradCheck, check_gradients};
use ganglion_autograd::{AutogradError, BatchNormMode, Conv2dParams, Graph, Param, Var};
use ganglion_tensor::{Rng, Tensor, init};

/// `[n, c, h, w]` of the block's activations: 65,536 elements, so the elementwise loops take
/// their threaded paths.
const DIMS: [usize; 4] = [8, 8, 32, 32];
const ACT: usize = 8 * 8 * 32 * 32;

/// A residual block as ResNet's, then a classifier head.
struct Block {
    w1: Param,
    w2: Param,
    bn: [[Param; 4]; 2],
    fc: Param,
}

impl Block {
    fn new() -> Self {
        let mut rng = Rng::seed_from(3);
        let c = DIMS[1];
        let bn = || {
            [
                Param::new(Tensor::from_fn(&[c], |i| 1.0 + 0.1 * i as f32)),
                Param::new(Tensor::from_fn(&[c], |i| 0.05 * i as f32 - 0.2)),
                Param::buffer(Tensor::zeros(&[c])),
                Param::buffer(Tensor::ones(&[c])),
            ]
        };
        Self {
            w1: Param::new(init::normal(&[c, c, 3, 3], 0.0, 0.2, &mut rng)),
            w2: Param::new(init::normal(&[c, c, 3, 3], 0.0, 0.2, &mut rng)),
            bn: [bn(), bn()],
            fc: Param::new(init::normal(&[5, c], 0.0, 0.5, &mut rng)),
        }
    }

    fn params(&self) -> Vec<&Param> {
        let mut ps = vec![&self.w1, &self.w2, &self.fc];
        ps.extend(self.bn.iter().flat_map(|b| &b[..2]));
        ps
    }

    fn bn(&self, g: &mut Graph, i: usize, x: Var) -> Result<Var, AutogradError> {
        let [w, b, rm, rv] = &self.bn[i];
        let (w, b) = (g.param(w), g.param(b));
        let mode = BatchNormMode::Train { momentum: 0.1 };
        g.batch_norm2d(x, w, b, rm, rv, mode, 1e-5)
    }

    /// `relu(bn2(conv2(relu(bn1(conv1(x))))) + x)`, pooled, classified; returns the block's
    /// intermediate vars and the loss.
    fn forward(
        &self,
        g: &mut Graph,
        x: Var,
        inplace: bool,
    ) -> Result<(Vec<Var>, Var), AutogradError> {
        let p = Conv2dParams::default().with_padding(1);
        let relu = |g: &mut Graph, v| {
            if inplace {
                g.relu_inplace(v)
            } else {
                g.relu(v)
            }
        };
        let w1 = g.param(&self.w1);
        let c1 = g.conv2d(x, w1, None, p)?;
        let b1 = self.bn(g, 0, c1)?;
        let r1 = relu(g, b1)?;
        let w2 = g.param(&self.w2);
        let c2 = g.conv2d(r1, w2, None, p)?;
        let b2 = self.bn(g, 1, c2)?;
        let sum = if inplace {
            g.add_inplace(b2, x)?
        } else {
            g.add(b2, x)?
        };
        let r2 = relu(g, sum)?;
        let pooled = g.global_avg_pool2d(r2)?;
        let flat = g.flatten(pooled)?;
        let fc = g.param(&self.fc);
        let logits = g.linear(flat, fc, None)?;
        let loss = g.cross_entropy(logits, &[0, 1, 2, 3, 4, 0, 1, 2], 0.0)?;
        Ok((vec![c1, b1, r1, c2, b2, sum, r2], loss))
    }
}

/// What a training step produced, bit for bit.
#[derive(Debug, PartialEq)]
struct Outcome {
    loss: u32,
    grads: Vec<Vec<u32>>,
    input_grad: Vec<u32>,
    running: Vec<Vec<u32>>,
}

fn bits(t: &Tensor) -> Vec<u32> {
    t.data().iter().map(|v| v.to_bits()).collect()
}

fn input() -> Tensor {
    init::normal(&DIMS, 0.0, 1.0, &mut Rng::seed_from(8))
}

/// One step on a fresh block; returns the outcome and the `f32`s the warm pool keeps.
fn step(inplace: bool, retain: bool) -> (Outcome, usize) {
    let net = Block::new();
    let mut g = Graph::new();
    g.set_retain_grads(retain);
    let mut outcome = None;
    for _ in 0..2 {
        net.params().iter().for_each(|p| p.zero_grad());
        g.reset();
        let x = g.variable(input());
        let (_, loss) = net.forward(&mut g, x, inplace).unwrap();
        g.backward(loss).unwrap();
        outcome = Some(Outcome {
            loss: g.value(loss).data()[0].to_bits(),
            grads: net.params().iter().map(|p| bits(&p.grad())).collect(),
            input_grad: bits(g.grad(x).unwrap()),
            running: net
                .bn
                .iter()
                .flat_map(|b| [bits(&b[2].value()), bits(&b[3].value())])
                .collect(),
        });
    }
    g.reset();
    (outcome.unwrap(), g.pooled_floats())
}

fn in_pool(threads: usize, f: impl FnOnce() -> (Outcome, usize) + Send) -> (Outcome, usize) {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(f)
}

#[test]
fn inplace_ops_and_released_gradients_change_memory_not_results() {
    let (reference, kept_all) = in_pool(2, || step(false, true));
    let (released, kept_released) = in_pool(2, || step(false, false));
    let (inplace, kept_inplace) = in_pool(2, || step(true, false));
    let (inplace_1, _) = in_pool(1, || step(true, false));
    assert_eq!(released, reference);
    assert_eq!(inplace, reference);
    assert_eq!(inplace_1, reference);
    // Released gradients: each intermediate one goes back to the pool once used, so the
    // seven activation-sized gradients kept otherwise mostly share buffers.
    assert!(
        kept_released + 4 * ACT <= kept_all,
        "released {kept_released} vs retained {kept_all} floats"
    );
    // In place: the first activation, the sum and the second activation need no buffers.
    assert!(
        kept_inplace + 3 * ACT <= kept_released,
        "in place {kept_inplace} vs out of place {kept_released} floats"
    );
}

#[test]
fn a_warm_step_with_inplace_ops_allocates_nothing() {
    let net = Block::new();
    let mut g = Graph::new();
    let mut misses = 0;
    for step in 0..3 {
        g.reset();
        let x = g.input(input());
        let (_, loss) = net.forward(&mut g, x, true).unwrap();
        g.backward(loss).unwrap();
        if step == 0 {
            misses = g.pool_misses();
        }
    }
    assert_eq!(g.pool_misses(), misses);
}

#[test]
fn reading_an_overwritten_value_is_an_error_naming_the_node() {
    let net = Block::new();
    let mut g = Graph::new();
    let x = g.input(input());
    let (vars, loss) = net.forward(&mut g, x, true).unwrap();
    let [c1, b1, r1, _, b2, sum, r2] = vars[..] else {
        unreachable!()
    };
    assert!(g.is_overwritten(b1) && g.is_overwritten(b2) && g.is_overwritten(sum));
    assert!(!g.is_overwritten(c1) && !g.is_overwritten(r1) && !g.is_overwritten(r2));
    // Shapes stay known.
    assert_eq!(g.shape(b1), &DIMS);
    assert_eq!(g.shape(sum), &DIMS);

    let err = g.try_value(b1).unwrap_err();
    assert!(matches!(err, AutogradError::Overwritten { .. }), "{err}");
    let want = format!(
        "value: the value of node #{} (batch_norm2d) was overwritten in place by node #{} (relu)",
        b1.index(),
        r1.index()
    );
    assert!(err.to_string().starts_with(&want), "{err}");
    let err = g.try_value(b2).unwrap_err().to_string();
    assert!(
        err.contains(&format!("node #{} (add)", sum.index())),
        "{err}"
    );
    let err = g.relu(sum).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!(
            "relu: the value of node #{} (add) was overwritten in place by node #{} (relu)",
            sum.index(),
            r2.index()
        )),
        "{err}"
    );
    let err = g.relu_inplace(b1).unwrap_err();
    assert!(matches!(
        err,
        AutogradError::Overwritten {
            op: "relu_inplace",
            ..
        }
    ));
    let err = g.add_inplace(r1, b2).unwrap_err();
    assert!(matches!(
        err,
        AutogradError::Overwritten {
            op: "add_inplace",
            ..
        }
    ));
    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| g.value(b1).len()));
    let message = panic.unwrap_err();
    let message = message.downcast_ref::<String>().unwrap();
    assert!(
        message.starts_with("value: the value of node #"),
        "{message}"
    );
    // Backward still runs: nothing it needs was overwritten.
    g.backward(loss).unwrap();
    assert!(net.w1.grad().data().iter().any(|&v| v != 0.0));
}

#[test]
fn values_a_backward_rule_reads_are_not_overwritten() -> Result<(), AutogradError> {
    let t = Tensor::from_fn(&[2, 3, 4, 4], |i| (i as f32 * 0.37).sin());
    let mut g = Graph::new();
    // A sigmoid's rule reads its output.
    let x = g.variable(t.clone());
    let s = g.sigmoid(x)?;
    let r = g.relu_inplace(s)?;
    assert!(!g.is_overwritten(s));
    // A convolution's rule reads its input.
    let w = g.variable(Tensor::full(&[3, 3, 1, 1], 0.5));
    let y = g.conv2d(r, w, None, Conv2dParams::default())?;
    let a = g.add_inplace(r, y)?;
    assert!(!g.is_overwritten(r));
    // `a + a` reads `a` while writing it.
    let aa = g.add_inplace(a, a)?;
    assert!(!g.is_overwritten(a));
    assert_eq!(g.value(aa).data()[5], 2.0 * g.value(a).data()[5]);
    let err = g.add_inplace(a, x).err();
    assert!(err.is_none(), "a sum read by no rule may be overwritten");
    assert!(g.is_overwritten(a));
    let err = g.add_inplace(aa, w).unwrap_err().to_string();
    assert!(
        err.starts_with("add_inplace: shapes [2, 3, 4, 4] and [3, 3, 1, 1]"),
        "{err}"
    );
    // An inference graph records no rule, so everything may be overwritten.
    let mut inf = Graph::inference();
    let x = inf.input(t.clone());
    let s = inf.sigmoid(x)?;
    let r = inf.relu_inplace(s)?;
    assert!(inf.is_overwritten(s));
    let mut rec = Graph::new();
    let x = rec.input(t);
    let s = rec.sigmoid(x)?;
    let r2 = rec.relu(s)?;
    assert_eq!(inf.value(r), rec.value(r2));
    Ok(())
}

#[test]
fn inplace_ops_pass_the_gradient_check() {
    let mut rng = Rng::seed_from(21);
    // Values clear of ReLU's kink by more than the finite-difference step.
    let mut away = |shape: &[usize]| {
        Tensor::from_fn(shape, |_| {
            let v = rng.uniform_range(0.1, 1.0);
            if rng.uniform() < 0.5 { -v } else { v }
        })
    };
    let inputs = [away(&[2, 3, 4]), away(&[2, 3, 4]), away(&[2, 3, 4])];
    let report = check_gradients(&GradCheck::default(), &inputs, |g, v| {
        let p = g.mul(v[0], v[1])?;
        let s = g.sub(p, v[2])?;
        let s = g.add_inplace(s, v[2])?; // back to the product, in place
        let s = g.add_inplace(s, v[0])?;
        let r = g.relu_inplace(s)?;
        g.tanh(r)
    })
    .unwrap();
    assert!(report.passed(), "{report:?}");
    assert!(report.checked > 0);
}

#[test]
fn rules_reusing_the_gradient_buffer_match_the_retained_path() -> Result<(), AutogradError> {
    let t = |k: f32| Tensor::from_fn(&[2, 3, 4, 4], |i| (i as f32 * k).sin());
    // Every combination of which operand of an addition wants a gradient, through ReLU and
    // batch norm, whose rules then write into the buffer they were handed.
    for (a_var, b_var) in [(true, true), (true, false), (false, true)] {
        let run = |retain: bool| -> Result<Vec<Tensor>, AutogradError> {
            let (w, b) = (
                Param::new(Tensor::full(&[3], 1.5)),
                Param::new(Tensor::zeros(&[3])),
            );
            let (rm, rv) = (
                Param::buffer(Tensor::zeros(&[3])),
                Param::buffer(Tensor::ones(&[3])),
            );
            let mut g = Graph::new();
            g.set_retain_grads(retain);
            let leaf =
                |g: &mut Graph, var: bool, x: Tensor| if var { g.variable(x) } else { g.input(x) };
            let a = leaf(&mut g, a_var, t(0.3));
            let c = leaf(&mut g, b_var, t(0.7));
            let s = g.add(a, c)?;
            let r = g.relu(s)?;
            let (wv, bv) = (g.param(&w), g.param(&b));
            let mode = BatchNormMode::Train { momentum: 0.1 };
            let y = g.batch_norm2d(r, wv, bv, &rm, &rv, mode, 1e-5)?;
            let y = g.tanh(y)?;
            let loss = g.sum(y)?;
            g.backward(loss)?;
            let mut out = vec![w.grad(), b.grad()];
            out.extend([a, c].iter().filter_map(|&v| g.grad(v).cloned()));
            Ok(out)
        };
        let (kept, reused) = (run(true)?, run(false)?);
        assert_eq!(kept.len(), 2 + a_var as usize + b_var as usize);
        assert_eq!(kept, reused, "a {a_var} b {b_var}");
    }
    Ok(())
}
