//! Augmentation: crops are zero-padded translations covering every offset, flips mirror rows,
//! and a sample's augmentation depends only on (seed, epoch, index).

use ganglion_data::{Augment, BatchLoader, Dataset, LoaderConfig, Normalize};
use std::collections::HashSet;

/// A 4x4 single-channel image with distinct non-zero bytes 1..=16.
fn numbered() -> Vec<u8> {
    (1..=16).collect()
}

#[test]
fn padded_crop_keeps_shape_and_is_a_translation() {
    let aug = Augment::none().with_crop(4, 4, 1);
    let src = numbered();
    let mut offsets = HashSet::new();
    for index in 0..300 {
        let mut rng = Augment::sample_rng(17, 0, index);
        let out = aug.apply(&src, [1, 4, 4], &mut rng).unwrap();
        assert_eq!(out.len(), 16);
        // Every non-zero output byte v at (y, x) came from source (sy, sx) = ((v-1)/4, (v-1)%4);
        // one shift (dy, dx) must explain them all, and padding fills the rest with 0.
        let mut shift = None;
        for (k, &v) in out.iter().enumerate() {
            let (y, x) = ((k / 4) as i32, (k % 4) as i32);
            if v == 0 {
                continue;
            }
            let (sy, sx) = (((v - 1) / 4) as i32, ((v - 1) % 4) as i32);
            let s = (sy - y, sx - x);
            assert_eq!(*shift.get_or_insert(s), s, "not a translation: {out:?}");
        }
        let (dy, dx) = shift.unwrap();
        let zeros = out.iter().filter(|&&v| v == 0).count();
        assert_eq!(
            zeros,
            16 - (4 - dy.abs()) as usize * (4 - dx.abs()) as usize
        );
        offsets.insert((dy, dx));
    }
    assert_eq!(
        offsets.len(),
        9,
        "every shift in -1..=1 should occur: {offsets:?}"
    );
    // A smaller crop changes the shape.
    let small = Augment::none().with_crop(2, 3, 0);
    assert_eq!(small.output_shape([1, 4, 4]).unwrap(), [1, 2, 3]);
    let out = small
        .apply(&src, [1, 4, 4], &mut Augment::sample_rng(0, 0, 0))
        .unwrap();
    assert_eq!(out.len(), 6);
}

#[test]
fn flip_mirrors_rows_about_half_the_time() {
    let aug = Augment::none().with_hflip();
    let src = numbered();
    let mirrored: Vec<u8> = src
        .chunks(4)
        .flat_map(|r| r.iter().rev().copied())
        .collect();
    let mut flips = 0;
    for index in 0..200 {
        let out = aug
            .apply(&src, [1, 4, 4], &mut Augment::sample_rng(3, 1, index))
            .unwrap();
        if out == mirrored {
            flips += 1;
        } else {
            assert_eq!(out, src);
        }
    }
    assert!((70..=130).contains(&flips), "{flips} flips of 200");
}

#[test]
fn same_seed_epoch_and_index_same_result() {
    let aug = Augment::crop_flip(4, 2);
    let src = numbered();
    let run = |seed, epoch, index| {
        aug.apply(
            &src,
            [1, 4, 4],
            &mut Augment::sample_rng(seed, epoch, index),
        )
        .unwrap()
    };
    assert_eq!(run(5, 2, 7), run(5, 2, 7));
    let variants: HashSet<Vec<u8>> = (0..20).map(|i| run(5, 2, i)).collect();
    assert!(variants.len() > 5);
    let across_epochs: HashSet<Vec<u8>> = (0..20).map(|e| run(5, e, 7)).collect();
    assert!(across_epochs.len() > 5);
}

#[test]
fn loader_augments_each_sample_independently_of_batching() {
    // 3-channel 4x4 images so that padding shows per-channel normalisation of zero.
    let n = 23;
    let pixels: Vec<u8> = (0..n * 48).map(|k| (k % 200 + 30) as u8).collect();
    let data = Dataset::new(pixels, vec![0; n], [3, 4, 4], 1).unwrap();
    let aug = Augment::crop_flip(4, 2);
    let norm = Normalize::cifar10();
    let per_sample = |batch_size, prefetch| {
        let config = LoaderConfig::train(batch_size, 99)
            .with_augment(aug)
            .with_prefetch(prefetch);
        let l = BatchLoader::new(data.clone(), &norm, config).unwrap();
        let mut by_index = vec![Vec::new(); n];
        for b in l.epoch(4) {
            for (k, &i) in b.indices.iter().enumerate() {
                by_index[i] = b.images.data()[k * 48..(k + 1) * 48].to_vec();
            }
        }
        by_index
    };
    let a = per_sample(3, 2);
    assert_eq!(a, per_sample(7, 0));
    // The loader's values are Augment::apply on the bytes, then normalisation.
    for (i, got) in a.iter().enumerate() {
        let bytes = aug
            .apply(data.image(i), [3, 4, 4], &mut Augment::sample_rng(99, 4, i))
            .unwrap();
        let want: Vec<f32> = bytes
            .iter()
            .enumerate()
            .map(|(k, &p)| norm.apply(p, k / 16))
            .collect();
        assert_eq!(got, &want);
    }
}
