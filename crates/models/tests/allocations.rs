//! Heap allocations of a steady-state training step, counted by a global allocator private to
//! this test binary: once the graph's pool, the kernels' workspace and the optimizer's momentum
//! buffers are warm, a step of forward, cross-entropy, backward and SGD-momentum update should
//! make no allocation at all, and this test holds every network to exactly zero in every
//! counted step. The linear layers' GEMM and the conv kernels pack into buffers kept in the
//! graph's workspaces (and per-thread buffers sized once, not per tile), so nothing grows
//! after the warm-up.
//!
//! Allocations of 16-byte alignment or more are counted apart from the others: SIMD packing
//! buffers (such as `matrixmultiply`'s, which allocates per call) would show up there, while
//! nothing else in a step asks for more than 8.
//!
//! Besides the model zoo, a network of every other layer kind is held to the same zero.
//!
//! The whole file is one `#[test]`: the counters are process-wide (rayon's workers allocate
//! through them too, which is the point), so a second test running beside it would add its own
//! allocations to the count.

use ganglion_autograd::Graph;
use ganglion_models::layers::{
    AvgPool2d, BatchNorm2d, Dropout, Flatten, LeakyReLU, Linear, MaxPool2d, ReLU, Sequential,
    Sigmoid, Tanh,
};
use ganglion_models::{Module, by_name};
use ganglion_optim::{Optimizer, Sgd, SgdConfig};
use ganglion_pooling::Pool2dParams;
use ganglion_tensor::{Rng, init};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Requests with at least this alignment are the GEMM library's packing buffers.
const PACKING_ALIGN: usize = 16;

/// [`System`] with a count of every call that obtains memory (`alloc`, `alloc_zeroed`,
/// `realloc`), split by alignment.
struct Counting;

/// Calls with an alignment below [`PACKING_ALIGN`]: Ganglion's own allocations.
static OWN: AtomicUsize = AtomicUsize::new(0);
/// Calls with an alignment of [`PACKING_ALIGN`] or more: GEMM packing buffers.
static PACKING: AtomicUsize = AtomicUsize::new(0);

fn count(layout: Layout) {
    let counter = if layout.align() >= PACKING_ALIGN {
        &PACKING
    } else {
        &OWN
    };
    counter.fetch_add(1, Ordering::Relaxed);
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so the
// `GlobalAlloc` contract holds exactly as it does for `System`; counting touches only atomics
// and never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout);
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout);
        // SAFETY: forwarded unchanged; the caller upholds `alloc_zeroed`'s contract.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(layout);
        // SAFETY: forwarded unchanged; the caller upholds `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged; the caller upholds `dealloc`'s contract.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Untimed steps that fill the graph's pool, the kernels' workspaces and the momentum buffers.
const WARMUP_STEPS: usize = 5;
/// Steps whose allocations are counted.
const COUNTED_STEPS: usize = 5;
/// Worker threads: how the conv kernels split their work depends on it, so it is fixed.
const THREADS: usize = 2;

/// A training run as `ganglion train` drives it: one graph reused with `reset()`, a fixed
/// random batch, SGD with momentum.
struct Run {
    model: Box<dyn Module>,
    graph: Graph,
    optimizer: Sgd,
    shape: Vec<usize>,
    images: Vec<f32>,
    labels: Vec<usize>,
    step: u64,
}

impl Run {
    /// `model` in training mode on `batch` random items of shape `item`, labels below
    /// `classes`.
    fn new(mut model: Box<dyn Module>, item: &[usize], classes: usize, batch: usize) -> Run {
        let mut rng = Rng::seed_from(11);
        model.set_training(true);
        let mut shape = vec![batch];
        shape.extend_from_slice(item);
        let images = init::normal(&shape, 0.0, 1.0, &mut rng).data().to_vec();
        let labels = (0..batch).map(|i| (i * 7 + 3) % classes).collect();
        let config = SgdConfig {
            lr: 0.01,
            momentum: 0.9,
            ..SgdConfig::default()
        };
        let optimizer = Sgd::new(model.parameters(), config).unwrap();
        Run {
            model,
            graph: Graph::new(),
            optimizer,
            shape,
            images,
            labels,
            step: 0,
        }
    }

    fn zoo(name: &str, batch: usize) -> Run {
        let model = by_name(name, &mut Rng::seed_from(5)).unwrap();
        let item = model.input_shape().unwrap().to_vec();
        let classes = model.num_classes().unwrap();
        Run::new(model, &item, classes, batch)
    }

    /// One training step; returns the loss so the work cannot be skipped.
    fn step(&mut self) -> f32 {
        let g = &mut self.graph;
        g.reset();
        g.set_seed(self.step.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let x = g.input_from(&self.shape, &self.images).unwrap();
        let logits = self.model.forward(g, x).unwrap();
        let loss = g.cross_entropy(logits, &self.labels, 0.0).unwrap();
        let value = g.value(loss).data()[0];
        g.backward(loss).unwrap();
        self.optimizer.step();
        self.optimizer.zero_grad();
        self.step += 1;
        value
    }

    /// Number of layers whose weight has `rank` dimensions (4: conv, 2: linear).
    fn layers_of_rank(&self, rank: usize) -> usize {
        self.model
            .named_parameters()
            .iter()
            .filter(|(name, p)| name.ends_with("weight") && p.shape().len() == rank)
            .count()
    }

    /// Own and packing allocations of each counted step after the warm-up, in a pool of
    /// [`THREADS`] threads.
    fn allocations(&mut self, what: &str) -> Vec<(usize, usize)> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(THREADS)
            .build()
            .unwrap();
        // Workers start asynchronously and allocate their queues as they do: wait for all.
        pool.broadcast(|_| ());
        pool.install(|| {
            for _ in 0..WARMUP_STEPS {
                assert!(self.step().is_finite(), "{what}: warm-up loss");
            }
            let misses = self.graph.pool_misses();
            let mut counts = Vec::with_capacity(COUNTED_STEPS);
            for _ in 0..COUNTED_STEPS {
                let before = (OWN.load(Ordering::SeqCst), PACKING.load(Ordering::SeqCst));
                let loss = self.step();
                let after = (OWN.load(Ordering::SeqCst), PACKING.load(Ordering::SeqCst));
                assert!(loss.is_finite(), "{what}: loss {loss}");
                counts.push((after.0 - before.0, after.1 - before.1));
            }
            assert_eq!(
                self.graph.pool_misses(),
                misses,
                "{what}: the graph's pool missed after the warm-up"
            );
            counts
        })
    }
}

/// Every layer kind but convolution: batch norm, the activations, both poolings, flatten,
/// dropout and linear.
fn conv_free() -> Box<dyn Module> {
    let mut rng = Rng::seed_from(3);
    let two = || Pool2dParams::new([2, 2]);
    let body = Sequential::new()
        .push(BatchNorm2d::new(3))
        .push(ReLU::new())
        .push(MaxPool2d::new(two()))
        .push(AvgPool2d::new(two(), true))
        .push(Sigmoid::new())
        .push(Flatten::new())
        .push(Dropout::new(0.25).unwrap())
        .push(Linear::new(3 * 2 * 2, 16, true, &mut rng))
        .push(Tanh::new())
        .push(LeakyReLU::new(0.1))
        .push(Linear::new(16, 10, true, &mut rng));
    Box::new(body)
}

/// The test body; the counters are process-wide, so it is the binary's only test.
#[test]
fn a_warm_training_step_allocates_nothing() {
    let mut failures = Vec::new();

    let mut free = Run::new(conv_free(), &[3, 8, 8], 10, 4);
    let counts = free.allocations("conv-free network");
    println!("conv-free network: (own, packing) allocations per step {counts:?}");
    if counts.iter().any(|&c| c != (0, 0)) {
        failures.push(format!(
            "conv-free network: expected no allocation per step, got {counts:?}"
        ));
    }

    for (name, batch) in [("lenet5", 8), ("mnistnet", 4), ("resnet20", 4)] {
        let mut run = Run::zoo(name, batch);
        let (convs, linears) = (run.layers_of_rank(4), run.layers_of_rank(2));
        let counts = run.allocations(name);
        println!(
            "{name} batch {batch} ({convs} conv, {linears} linear layers): \
             (own, packing) allocations per step {counts:?}"
        );
        if counts.iter().any(|&c| c != (0, 0)) {
            failures.push(format!(
                "{name}: expected no allocation per step, got {counts:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
