//! Heap allocations of a steady-state training step, counted by a global allocator private to
//! this test binary: once the graph's pool, the kernels' workspace and the optimizer's momentum
//! buffers are warm, a step of forward, cross-entropy, backward and SGD-momentum update makes
//! no allocation of its own.
//!
//! One exception is counted apart and bounded: `matrixmultiply::sgemm` allocates its packing
//! buffer on every call, with an alignment of 16 bytes or more (its SIMD kernels need it), while
//! nothing else in a step asks for more than 8. Its callers are the convolution kernels
//! (`ganglion-im2col-conv`, one call per GEMM tile) and the linear layers (`ganglion-autograd`,
//! three calls per layer per step). The bounds below are today's counts; the conv kernels that
//! pack into `ConvWorkspace` lower them, and then the bounds should be lowered too.
//!
//! The whole file is one `#[test]`: the counters are process-wide (rayon's workers allocate
//! through them too, which is the point), so a second test running beside it would add its own
//! allocations to the count.

use ganglion_autograd::Graph;
use ganglion_models::{Module, by_name};
use ganglion_optim::{Optimizer, Sgd, SgdConfig};
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
const WARMUP_STEPS: usize = 3;
/// Steps whose allocations are counted.
const COUNTED_STEPS: usize = 5;
/// Worker threads: how the conv kernels split their GEMMs (and so how many packing buffers
/// they allocate) depends on it, so it is fixed.
const THREADS: usize = 2;

/// A training run of one zoo model as `ganglion train` drives it: one graph reused with
/// `reset()`, a fixed random batch, SGD with momentum.
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
    fn new(name: &str, batch: usize) -> Run {
        let mut rng = Rng::seed_from(11);
        let mut model = by_name(name, &mut rng).unwrap();
        model.set_training(true);
        let mut shape = vec![batch];
        shape.extend_from_slice(model.input_shape().unwrap());
        let images = init::normal(&shape, 0.0, 1.0, &mut rng).data().to_vec();
        let classes = model.num_classes().unwrap();
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
}

/// Own and packing allocations of each counted step after the warm-up.
fn allocations(name: &str, batch: usize) -> Vec<(usize, usize)> {
    let mut run = Run::new(name, batch);
    for _ in 0..WARMUP_STEPS {
        assert!(run.step().is_finite(), "{name}: warm-up loss");
    }
    let misses = run.graph.pool_misses();
    let mut counts = Vec::with_capacity(COUNTED_STEPS);
    for _ in 0..COUNTED_STEPS {
        let (own, packing) = (OWN.load(Ordering::SeqCst), PACKING.load(Ordering::SeqCst));
        let loss = run.step();
        let after = (OWN.load(Ordering::SeqCst), PACKING.load(Ordering::SeqCst));
        assert!(loss.is_finite(), "{name}: loss {loss}");
        counts.push((after.0 - own, after.1 - packing));
    }
    assert_eq!(
        run.graph.pool_misses(),
        misses,
        "{name}: the graph's pool missed after the warm-up"
    );
    counts
}

#[test]
fn a_warm_training_step_makes_no_allocation_of_its_own() {
    // (model, batch, GEMM packing buffers per step at most): one per sgemm call, so for each
    // conv layer one per GEMM tile of each pass, and three per linear layer.
    let cases = [("lenet5", 8, 49), ("mnistnet", 4, 26), ("resnet20", 4, 227)];
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(THREADS)
        .build()
        .unwrap();
    let mut failures = Vec::new();
    for (name, batch, packing_bound) in cases {
        let counts = pool.install(|| allocations(name, batch));
        println!("{name} batch {batch}: (own, packing) allocations per step {counts:?}");
        if counts.iter().any(|&(own, _)| own != 0) {
            failures.push(format!("{name}: own allocations per step {counts:?}"));
        }
        if counts.iter().any(|&(_, packing)| packing > packing_bound) {
            failures.push(format!(
                "{name}: more than {packing_bound} packing buffers per step {counts:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
