//! The project's bundled MNIST (`data/mnist`): counts, labels and pixel statistics of the
//! standard set, and an evaluation pass over its test split.

use ganglion_data::{BatchLoader, IdxDataset, Normalize, Split, bundled_mnist_dir, load_mnist};

#[test]
fn bundled_mnist_is_the_standard_set() {
    let sets = load_mnist(&bundled_mnist_dir()).unwrap();
    let (train, test) = (&sets.train, &sets.test);
    assert_eq!((train.len(), test.len()), (60_000, 10_000));
    assert_eq!(train.image_shape(), [1, 28, 28]);
    assert_eq!(test.image_shape(), [1, 28, 28]);
    assert_eq!(train.images().len(), 60_000 * 784);
    assert_eq!(&train.labels()[..10], &[5, 0, 4, 1, 9, 2, 1, 3, 1, 4]);
    assert_eq!(&test.labels()[..10], &[7, 2, 1, 0, 4, 1, 4, 9, 5, 9]);
    assert_eq!(
        test.class_counts(),
        [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    );
    assert_eq!(
        train.class_counts(),
        [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    );
    // The published constants are the training set's own statistics.
    let stats = Normalize::from_dataset(train).unwrap();
    assert!((stats.mean[0] - 0.1307).abs() < 1e-4, "{stats:?}");
    assert!((stats.std[0] - 0.3081).abs() < 1e-4, "{stats:?}");

    // Evaluation: index order, every image once, normalised with MNIST's constants.
    let loader = BatchLoader::evaluation(sets.test, &Normalize::mnist(), 1000).unwrap();
    let norm = Normalize::mnist();
    let mut seen = 0;
    for batch in loader.epoch(0) {
        assert_eq!(batch.images.shape(), &[1000, 1, 28, 28]);
        assert_eq!(batch.indices, (seen..seen + 1000).collect::<Vec<_>>());
        let first = loader.dataset().image(seen);
        let want: Vec<f32> = first.iter().map(|&p| norm.apply(p, 0)).collect();
        assert_eq!(&batch.images.data()[..784], &want[..]);
        seen += 1000;
    }
    assert_eq!(seen, 10_000);
}

#[test]
fn one_split_loads_alone() {
    let test = IdxDataset::mnist()
        .load_split(&bundled_mnist_dir(), Split::Test)
        .unwrap();
    assert_eq!(test.len(), 10_000);
    assert_eq!(test.label(0), 7);
}
