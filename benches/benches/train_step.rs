//! Training-step benchmarks: one step of forward, cross-entropy, backward and SGD-momentum
//! update, exactly as `ganglion train` takes it (one graph reused with `reset()`), on a fixed
//! random batch of 64 for each zoo model the project is compared on, at 1 and 2 rayon threads.
//!
//! Throughput is in images (elements = images per step), so criterion's elements/s is the
//! images/s figure of the peer table. The figures quoted in BENCHMARKS.md come from
//! `cargo xtask bench --suite train`, which also runs each round in a fresh process.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ganglion::autograd::Graph;
use ganglion::models::{Module, by_name};
use ganglion::optim::{Optimizer, Sgd, SgdConfig};
use ganglion::tensor::{Rng, init};
use std::hint::black_box;
use std::time::Duration;

/// The models of the peer table.
const MODELS: [&str; 3] = ["lenet5", "mnistnet", "resnet20"];
/// Images per step.
const BATCH: usize = 64;
/// The thread counts the project reports.
const THREADS: [usize; 2] = [1, 2];

/// A model in training mode with its optimizer, graph and batch.
struct Step {
    model: Box<dyn Module>,
    graph: Graph,
    optimizer: Sgd,
    shape: Vec<usize>,
    images: Vec<f32>,
    labels: Vec<usize>,
}

impl Step {
    fn new(name: &str) -> Step {
        let mut rng = Rng::seed_from(0x7ea1);
        let mut model = by_name(name, &mut rng).expect("a zoo model");
        model.set_training(true);
        let mut shape = vec![BATCH];
        shape.extend_from_slice(model.input_shape().expect("zoo models know their input"));
        let classes = model.num_classes().expect("zoo models know their classes");
        let images = init::normal(&shape, 0.0, 1.0, &mut rng).data().to_vec();
        let labels = (0..BATCH).map(|_| rng.below(classes)).collect();
        let config = SgdConfig {
            lr: 0.01,
            momentum: 0.9,
            ..SgdConfig::default()
        };
        let optimizer = Sgd::new(model.parameters(), config).expect("valid SGD settings");
        Step {
            model,
            graph: Graph::new(),
            optimizer,
            shape,
            images,
            labels,
        }
    }

    fn run(&mut self) -> f32 {
        let g = &mut self.graph;
        g.reset();
        let x = g
            .input_from(&self.shape, &self.images)
            .expect("batch shape");
        let logits = self.model.forward(g, x).expect("forward");
        let loss = g.cross_entropy(logits, &self.labels, 0.0).expect("loss");
        let value = g.value(loss).data()[0];
        g.backward(loss).expect("backward");
        self.optimizer.step();
        self.optimizer.zero_grad();
        value
    }
}

fn train_step(c: &mut Criterion) {
    let mut group = c.benchmark_group("train_step");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(BATCH as u64));
    for name in MODELS {
        for threads in THREADS {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("thread pool");
            let mut step = Step::new(name);
            let id = BenchmarkId::new(format!("{name}/b{BATCH}"), format!("{threads}T"));
            group.bench_function(id, |b| pool.install(|| b.iter(|| black_box(step.run()))));
        }
    }
    group.finish();
}

criterion_group!(benches, train_step);
criterion_main!(benches);
