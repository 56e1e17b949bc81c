//! Is the data loader ever the bottleneck? Images per second of the `BatchLoader` alone on the
//! bundled MNIST (batch 64; no augmentation, `train --augment`'s padded crop, and a heavier
//! random-resized crop with jitter; 1 and 2 workers), next to the `lenet5` training step
//! (forward, backward, AdamW) on batches made in advance, and the two together as
//! `ganglion train` runs them.
//!
//! `cargo run --release -p ganglion-cli --example loader_vs_step [-- STEPS]`
use ganglion::autograd::Graph;
use ganglion::data::{
    Augment, BatchLoader, ColorJitter, LoaderConfig, Normalize, RandomResizedCrop,
    bundled_mnist_dir, load_mnist,
};
use ganglion::models::{self, Module};
use ganglion::optim::{AdamConfig, AdamW, Optimizer};
use ganglion::tensor::Rng;
use std::time::Instant;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Images per second of one full epoch of `loader`, recycling batches as `train` does.
fn loader_rate(loader: &BatchLoader) -> f64 {
    let start = Instant::now();
    let mut images = 0;
    let mut batches = loader.epoch(0);
    while let Some(b) = batches.next() {
        images += b.len();
        batches.recycle(b);
    }
    images as f64 / start.elapsed().as_secs_f64()
}

/// Runs `steps` training steps of lenet5 on `next_batch`'s batches; images per second.
fn train_rate(steps: usize, mut next_batch: impl FnMut() -> ganglion::data::Batch) -> Result<f64> {
    let model = models::lenet5(&mut Rng::seed_from(0));
    let config = AdamConfig {
        lr: 1e-3,
        ..AdamConfig::adamw()
    };
    let mut optimizer = AdamW::new(model.parameters(), config)?;
    let mut g = Graph::new();
    let mut step = |batch: &ganglion::data::Batch| -> Result<()> {
        g.reset();
        let x = g.input_from(batch.images.shape(), batch.images.data())?;
        let logits = model.forward(&mut g, x)?;
        let loss = g.cross_entropy(logits, &batch.labels, 0.0)?;
        g.backward(loss)?;
        optimizer.step();
        optimizer.zero_grad();
        Ok(())
    };
    // Warm-up: buffers and workspaces reach their steady size.
    for _ in 0..5 {
        step(&next_batch())?;
    }
    let start = Instant::now();
    let mut images = 0;
    for _ in 0..steps {
        let batch = next_batch();
        images += batch.len();
        step(&batch)?;
    }
    Ok(images as f64 / start.elapsed().as_secs_f64())
}

fn main() -> Result<()> {
    // On a worker of the thread pool, as `ganglion train` runs: the kernels' parallel work
    // splits inside the pool instead of being handed to it section by section.
    rayon::scope(|_| run())
}

fn run() -> Result<()> {
    let steps: usize = std::env::args().nth(1).map_or(Ok(200), |s| s.parse())?;
    let mnist = load_mnist(&bundled_mnist_dir())?;
    let norm = Normalize::mnist();
    let heavy = Augment::none()
        .with_resized_crop(RandomResizedCrop::new(28))
        .with_jitter(ColorJitter::uniform(0.2));
    let configs = [
        ("none", Augment::none()),
        ("crop", Augment::none().with_crop(28, 28, 2)),
        ("resized+jitter", heavy),
    ];
    println!(
        "rayon threads: {}; batch 64; MNIST training split (60000 images)",
        rayon::current_num_threads()
    );
    for (name, augment) in configs {
        for workers in [1, 2] {
            let config = LoaderConfig::train(64, 0)
                .with_augment(augment)
                .with_workers(workers);
            let loader = BatchLoader::new(mnist.train.clone(), &norm, config)?;
            println!(
                "loader alone    augment {name:<15} {workers} worker(s): {:>9.0} images/s",
                loader_rate(&loader)
            );
        }
    }
    // The step alone: batches made in advance and reused.
    let inline = LoaderConfig::train(64, 0).with_prefetch(0);
    let ready: Vec<_> = BatchLoader::new(mnist.train.clone(), &norm, inline)?
        .epoch(0)
        .take(16)
        .collect();
    let mut k = 0;
    let alone = train_rate(steps, || {
        k += 1;
        ready[k % ready.len()].clone()
    })?;
    println!("lenet5 step alone (forward, backward, AdamW):      {alone:>9.0} images/s");
    let config = LoaderConfig::train(64, 0).with_augment(Augment::none().with_crop(28, 28, 2));
    let loader = BatchLoader::new(mnist.train.clone(), &norm, config)?;
    let mut batches = loader.epoch(0);
    let fed = train_rate(steps, || batches.next().expect("an epoch has 938 batches"))?;
    println!("lenet5 step fed by the loader (crop, 1 worker):     {fed:>9.0} images/s");
    Ok(())
}
