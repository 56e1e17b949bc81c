//! Define a small CNN and train it on the bundled MNIST, the way a PyTorch user would.
//!
//! `cargo run --release -p ganglion --example mnist_cnn`
use ganglion::prelude::*;

type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), Error> {
    // On a worker of the thread pool, the kernels' parallel work splits inside the pool
    // instead of being handed to it section by section.
    ganglion::rayon::scope(|_| train())
}

fn train() -> Result<(), Error> {
    let mnist = load_mnist(&bundled_mnist_dir())?;
    let mut rng = Rng::seed_from(0);
    let same = Conv2dParams {
        padding: [1, 1],
        ..Conv2dParams::default()
    };
    let mut model = Sequential::new()
        .push(Conv2d::new(1, 8, [3, 3], same, true, &mut rng)?) // 8 filters watch 3x3 fields
        .push(ReLU::new())
        .push(MaxPool2d::new(Pool2dParams::new([2, 2]))) // 28x28 -> 14x14
        .push(Conv2d::new(8, 16, [3, 3], same, true, &mut rng)?) // the field grows to 8x8
        .push(ReLU::new())
        .push(MaxPool2d::new(Pool2dParams::new([2, 2]))) // 14x14 -> 7x7
        .push(Flatten::new())
        .push(Linear::new(16 * 7 * 7, 10, true, &mut rng));
    let config = SgdConfig {
        lr: 0.05,
        momentum: 0.9,
        ..SgdConfig::default()
    };
    let mut optimizer = Sgd::new(model.parameters(), config)?;
    let train = BatchLoader::new(mnist.train, &Normalize::mnist(), LoaderConfig::train(64, 0))?;
    let test = BatchLoader::evaluation(mnist.test, &Normalize::mnist(), 1000)?;

    let mut g = Graph::new();
    for epoch in 0..2 {
        model.set_training(true);
        for batch in train.epoch(epoch) {
            g.reset();
            let x = g.input(batch.images);
            let logits = model.forward(&mut g, x)?;
            let loss = g.cross_entropy(logits, &batch.labels, 0.0)?;
            g.backward(loss)?;
            optimizer.step();
            optimizer.zero_grad();
        }
        model.set_training(false);
        let (mut correct, mut seen) = (0, 0);
        for batch in test.epoch(0) {
            let predictions = model.infer(batch.images)?.argmax_rows()?;
            correct += predictions
                .iter()
                .zip(&batch.labels)
                .filter(|(p, l)| p == l)
                .count();
            seen += batch.labels.len();
        }
        println!(
            "epoch {}: test accuracy {:.2}%",
            epoch + 1,
            100.0 * correct as f64 / seen as f64
        );
    }
    Ok(())
}
