//! The data pipeline with several workers and the byte-level augmentations: the same batches
//! for any worker count and prefetch depth, each sample equal to `Augment::apply` then
//! normalisation, random-resized crops and jitter that change images, and the configurations
//! that are refused.

use ganglion_data::{
    Augment, Batch, BatchLoader, ColorJitter, Dataset, LoaderConfig, Normalize, RandomResizedCrop,
};
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// `n` RGB images of 9x7 with varied bytes; labels `i % 3`.
fn rgb(n: usize) -> Dataset {
    let len = 3 * 9 * 7;
    let pixels = (0..n * len)
        .map(|k| ((k * 37 + k / len * 11) % 251) as u8)
        .collect();
    let labels = (0..n).map(|i| (i % 3) as u16).collect();
    Dataset::new(pixels, labels, [3, 9, 7], 3).unwrap()
}

fn full() -> Augment {
    Augment::none()
        .with_resized_crop(RandomResizedCrop::new(5))
        .with_hflip()
        .with_jitter(ColorJitter {
            brightness: 0.4,
            contrast: 0.4,
            saturation: 0.4,
        })
}

fn batches(data: &Dataset, config: LoaderConfig, epoch: u64) -> Vec<Batch> {
    BatchLoader::new(data.clone(), &Normalize::cifar10(), config)
        .unwrap()
        .epoch(epoch)
        .collect()
}

#[test]
fn any_worker_count_and_depth_gives_the_same_batches() {
    let data = rgb(45);
    let base = LoaderConfig::train(4, 21).with_augment(full());
    let inline = batches(&data, base.clone().with_prefetch(0), 3);
    assert_eq!(inline.len(), 12);
    for workers in [1, 2, 3, 5, 16] {
        for prefetch in [1, 2, 7] {
            let config = base.clone().with_workers(workers).with_prefetch(prefetch);
            assert_eq!(
                batches(&data, config.clone(), 3),
                inline,
                "{workers} workers, prefetch {prefetch}"
            );
            // Recycled buffers, dealt to the workers in turn, change nothing either.
            let loader = BatchLoader::new(data.clone(), &Normalize::cifar10(), config).unwrap();
            let mut it = loader.epoch(3);
            let mut seen = Vec::new();
            while let Some(b) = it.next() {
                seen.push(b.clone());
                it.recycle(b);
            }
            assert_eq!(seen, inline);
        }
    }
    // Resuming mid-epoch with several workers gives the tail.
    let loader = BatchLoader::new(
        data.clone(),
        &Normalize::cifar10(),
        base.clone().with_workers(3),
    )
    .unwrap();
    assert_eq!(loader.epoch_from(3, 5).collect::<Vec<_>>(), inline[5..]);
    // Another epoch differs.
    assert_ne!(batches(&data, base.with_workers(3), 4), inline);
}

#[test]
fn loader_samples_are_augment_apply_then_normalisation() {
    let data = rgb(10);
    let aug = full();
    let norm = Normalize::cifar10();
    let config = LoaderConfig::train(3, 5).with_augment(aug).with_workers(2);
    let out_len = 3 * 5 * 5;
    let mut variants = HashSet::new();
    for batch in batches(&data, config, 1) {
        assert_eq!(batch.images.shape()[1..], [3, 5, 5]);
        for (k, &i) in batch.indices.iter().enumerate() {
            let bytes = aug
                .apply(data.image(i), [3, 9, 7], &mut Augment::sample_rng(5, 1, i))
                .unwrap();
            let want: Vec<f32> = bytes
                .iter()
                .enumerate()
                .map(|(j, &p)| norm.apply(p, j / 25))
                .collect();
            assert_eq!(
                &batch.images.data()[k * out_len..(k + 1) * out_len],
                &want[..]
            );
            variants.insert(bytes);
        }
    }
    assert_eq!(variants.len(), 10);
}

#[test]
fn resized_crops_and_jitter_vary_per_sample_and_keep_constant_images_plausible() {
    let aug = full();
    let image: Vec<u8> = (0..3 * 9 * 7).map(|k| (k * 3 % 256) as u8).collect();
    let outs: HashSet<Vec<u8>> = (0..40)
        .map(|i| {
            aug.apply(&image, [3, 9, 7], &mut Augment::sample_rng(1, 0, i))
                .unwrap()
        })
        .collect();
    assert!(outs.len() > 30, "{} distinct of 40", outs.len());
    // A grey constant image stays grey and constant under crops, flips and jitter.
    let flat = vec![100u8; 3 * 9 * 7];
    for i in 0..40 {
        let out = aug
            .apply(&flat, [3, 9, 7], &mut Augment::sample_rng(2, 0, i))
            .unwrap();
        assert!(out.iter().all(|&p| p == out[0]), "{out:?}");
        assert!((50..=160).contains(&out[0]), "{}", out[0]);
    }
    // Brightness on a one-channel image works; saturation leaves it alone.
    let grey = Augment::none().with_jitter(ColorJitter::uniform(0.5));
    let out = grey
        .apply(
            &[10, 20, 30, 40],
            [1, 2, 2],
            &mut Augment::sample_rng(0, 0, 0),
        )
        .unwrap();
    assert_eq!(out.len(), 4);
}

#[test]
fn bad_pipelines_are_refused() {
    let data = rgb(4);
    let norm = Normalize::cifar10();
    let e = BatchLoader::new(
        data.clone(),
        &norm,
        LoaderConfig::train(2, 0).with_workers(0),
    );
    assert!(e.unwrap_err().to_string().contains("0 workers"));
    let both = Augment::crop_flip(7, 1).with_resized_crop(RandomResizedCrop::new(5));
    let e = BatchLoader::new(
        data.clone(),
        &norm,
        LoaderConfig::train(2, 0).with_augment(both),
    );
    assert!(e.unwrap_err().to_string().contains("do not combine"));
    let jitter = Augment::none().with_jitter(ColorJitter::uniform(f32::NAN));
    let e = BatchLoader::new(data, &norm, LoaderConfig::train(2, 0).with_augment(jitter));
    assert!(e.unwrap_err().to_string().contains("brightness"));
}

#[test]
fn dropping_mid_epoch_stops_every_worker() {
    let data = rgb(3000);
    let config = LoaderConfig::train(2, 1)
        .with_augment(full())
        .with_workers(4)
        .with_prefetch(4);
    let loader = BatchLoader::new(data, &Normalize::cifar10(), config).unwrap();
    let start = Instant::now();
    for _ in 0..10 {
        let mut it = loader.epoch(0);
        assert!(it.next().is_some());
        std::thread::sleep(Duration::from_millis(1));
        drop(it);
    }
    assert!(start.elapsed() < Duration::from_secs(10));
    assert_eq!(loader.epoch(1).count(), 1500);
}
