//! The batch loader: seeded, deterministic epochs whatever the prefetch depth, full coverage,
//! `drop_last`, early drop, buffer recycling and configuration errors.

use ganglion_data::{Augment, Batch, BatchLoader, Dataset, LoaderConfig, Normalize};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `n` images of 1x3x3 whose bytes identify the image; label `i % 4`.
fn tiny(n: usize) -> Arc<Dataset> {
    let pixels = (0..n * 9).map(|k| ((k / 9) * 7 + k % 9) as u8).collect();
    let labels = (0..n).map(|i| (i % 4) as u16).collect();
    Arc::new(Dataset::new(pixels, labels, [1, 3, 3], 4).unwrap())
}

fn loader(data: &Arc<Dataset>, config: LoaderConfig) -> BatchLoader {
    BatchLoader::new(Arc::clone(data), &Normalize::mnist(), config).unwrap()
}

fn order(batches: &[Batch]) -> Vec<usize> {
    batches.iter().flat_map(|b| b.indices.clone()).collect()
}

#[test]
fn batches_hold_the_normalised_images_and_labels_of_their_indices() {
    let data = tiny(10);
    let norm = Normalize::mnist();
    for batch in loader(&data, LoaderConfig::train(4, 1)).epoch(0) {
        assert_eq!(batch.images.shape()[1..], [1, 3, 3]);
        for (k, &i) in batch.indices.iter().enumerate() {
            assert_eq!(batch.labels[k], i % 4);
            let want: Vec<f32> = data.image(i).iter().map(|&p| norm.apply(p, 0)).collect();
            assert_eq!(&batch.images.data()[k * 9..(k + 1) * 9], &want[..]);
        }
    }
}

#[test]
fn same_seed_same_batches_other_epoch_or_seed_other_order() {
    let data = tiny(50);
    let a = loader(&data, LoaderConfig::train(8, 3));
    let b = loader(&data, LoaderConfig::train(8, 3));
    let e0: Vec<Batch> = a.epoch(0).collect();
    assert_eq!(e0, b.epoch(0).collect::<Vec<_>>());
    let e1: Vec<Batch> = a.epoch(1).collect();
    assert_ne!(order(&e0), order(&e1));
    let other_seed: Vec<Batch> = loader(&data, LoaderConfig::train(8, 4)).epoch(0).collect();
    assert_ne!(order(&e0), order(&other_seed));
    assert_eq!(order(&e0), a.permutation(0));
    assert_ne!(a.permutation(0), (0..50).collect::<Vec<_>>());
}

#[test]
fn every_sample_once_per_epoch() {
    let data = tiny(37);
    let l = loader(&data, LoaderConfig::train(5, 9));
    for epoch in 0..3 {
        let mut seen = order(&l.epoch(epoch).collect::<Vec<_>>());
        seen.sort_unstable();
        assert_eq!(seen, (0..37).collect::<Vec<_>>());
    }
}

#[test]
fn drop_last_skips_the_short_batch() {
    let data = tiny(10);
    let keep = loader(&data, LoaderConfig::train(4, 0));
    let sizes: Vec<usize> = keep.epoch(0).map(|b| b.len()).collect();
    assert_eq!((sizes, keep.num_batches()), (vec![4, 4, 2], 3));
    let drop = loader(&data, LoaderConfig::train(4, 0).with_drop_last(true));
    let batches: Vec<Batch> = drop.epoch(0).collect();
    assert_eq!((batches.len(), drop.num_batches()), (2, 2));
    assert!(batches.iter().all(|b| b.images.shape() == [4, 1, 3, 3]));
    // The kept samples are the first eight of the same permutation.
    assert_eq!(order(&batches), keep.permutation(0)[..8]);
    let exact = loader(&tiny(8), LoaderConfig::train(4, 0).with_drop_last(true));
    assert_eq!(exact.epoch(0).len(), 2);
    let empty = loader(&tiny(3), LoaderConfig::train(4, 0).with_drop_last(true));
    assert_eq!(empty.epoch(0).count(), 0);
}

#[test]
fn prefetch_depth_and_recycling_do_not_change_the_batches() {
    let data = tiny(64);
    let aug = Augment::crop_flip(3, 1);
    let base = LoaderConfig::train(6, 11).with_augment(aug);
    let inline: Vec<Batch> = loader(&data, base.clone().with_prefetch(0))
        .epoch(2)
        .collect();
    for depth in [1, 2, 4] {
        let l = loader(&data, base.clone().with_prefetch(depth));
        // Twice, to catch anything that depends on the worker's timing.
        for _ in 0..2 {
            assert_eq!(l.epoch(2).collect::<Vec<_>>(), inline);
        }
        let mut it = l.epoch(2);
        let mut recycled = Vec::new();
        while let Some(batch) = it.next() {
            recycled.push(batch.clone());
            it.recycle(batch);
        }
        assert_eq!(recycled, inline);
    }
}

#[test]
fn recycled_buffers_are_reused_inline() {
    let data = tiny(12);
    let l = loader(&data, LoaderConfig::train(4, 0).with_prefetch(0));
    let mut it = l.epoch(0);
    let first = it.next().unwrap();
    let ptr = first.images.data().as_ptr();
    it.recycle(first);
    let second = it.next().unwrap();
    assert_eq!(second.images.data().as_ptr(), ptr);
}

#[test]
fn dropping_mid_epoch_stops_the_worker() {
    // Many batches, a shallow queue: the worker is blocked on a full channel when dropped.
    let data = tiny(2000);
    let l = loader(&data, LoaderConfig::train(2, 5).with_prefetch(2));
    let start = Instant::now();
    for _ in 0..20 {
        let mut it = l.epoch(0);
        assert!(it.next().is_some());
        std::thread::sleep(Duration::from_millis(1));
        drop(it);
        drop(l.epoch(1));
    }
    assert!(start.elapsed() < Duration::from_secs(10));
    // The loader still works afterwards.
    assert_eq!(l.epoch(0).count(), 1000);
}

#[test]
fn evaluation_visits_in_order_without_augmentation() {
    let data = tiny(7);
    let l = BatchLoader::evaluation(Arc::clone(&data), &Normalize::mnist(), 3).unwrap();
    let batches: Vec<Batch> = l.epoch(5).collect();
    assert_eq!(order(&batches), (0..7).collect::<Vec<_>>());
    assert_eq!(batches[2].images.shape(), &[1, 1, 3, 3]);
    assert!(l.config().augment.is_identity() && !l.config().shuffle);
}

#[test]
fn bad_configurations_are_rejected() {
    let data = tiny(4);
    let e = BatchLoader::new(
        Arc::clone(&data),
        &Normalize::mnist(),
        LoaderConfig::train(0, 0),
    );
    assert_eq!(
        e.unwrap_err().to_string(),
        "data: BatchLoader::new: batch size 0"
    );
    let e = BatchLoader::new(
        Arc::clone(&data),
        &Normalize::cifar10(),
        LoaderConfig::eval(2),
    );
    assert_eq!(
        e.unwrap_err().to_string(),
        "data: BatchLoader::new: images have 1 channels but the normalisation has 3"
    );
    let big = LoaderConfig::train(2, 0).with_augment(Augment::crop_flip(9, 1));
    let e = BatchLoader::new(Arc::clone(&data), &Normalize::mnist(), big);
    assert!(
        e.unwrap_err()
            .to_string()
            .contains("crop 9x9 does not fit images 3x3")
    );
    let bad = Normalize {
        mean: vec![0.0],
        std: vec![0.0],
    };
    assert!(BatchLoader::new(data, &bad, LoaderConfig::eval(2)).is_err());
}

#[test]
fn epoch_from_yields_the_tail_of_the_epoch() {
    let data = tiny(45);
    let aug = Augment::crop_flip(3, 1);
    for depth in [0, 2] {
        let l = loader(
            &data,
            LoaderConfig::train(6, 13)
                .with_augment(aug)
                .with_prefetch(depth),
        );
        let full: Vec<Batch> = l.epoch(4).collect();
        assert_eq!(full.len(), 8);
        for first in [0, 1, 5, 7] {
            let tail = l.epoch_from(4, first);
            assert_eq!(tail.len(), 8 - first);
            assert_eq!(
                tail.collect::<Vec<_>>(),
                full[first..],
                "from batch {first}"
            );
        }
        assert_eq!(l.epoch_from(4, 8).count(), 0);
        assert_eq!(l.epoch_from(4, 100).count(), 0);
    }
}
