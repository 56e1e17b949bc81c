//! [`Normalize`]: bytes to normalised `f32`, per channel, as torchvision's `ToTensor` followed by
//! `Normalize(mean, std)`.

use crate::{DataError, Dataset};
use ganglion_tensor::Tensor;

/// MNIST's per-channel pixel mean (of the `[0, 1]`-scaled training images).
pub const MNIST_MEAN: [f32; 1] = [0.1307];
/// MNIST's per-channel pixel standard deviation.
pub const MNIST_STD: [f32; 1] = [0.3081];
/// CIFAR-10's per-channel pixel means (red, green, blue).
pub const CIFAR10_MEAN: [f32; 3] = [0.4914, 0.4822, 0.4465];
/// CIFAR-10's per-channel pixel standard deviations (red, green, blue).
pub const CIFAR10_STD: [f32; 3] = [0.2470, 0.2435, 0.2616];

/// Per-channel normalisation: a byte `p` of channel `c` becomes
/// `(p / 255 - mean[c]) / std[c]`, computed in `f32` in that order, as torchvision's
/// `ToTensor()` then `Normalize(mean, std)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalize {
    /// Mean per channel, in `[0, 1]` pixel units.
    pub mean: Vec<f32>,
    /// Standard deviation per channel, in `[0, 1]` pixel units; positive.
    pub std: Vec<f32>,
}

/// One 256-entry table per channel: the normalised value of every byte.
pub(crate) type ChannelTables = Vec<[f32; 256]>;

impl Normalize {
    /// A normalisation with the given per-channel mean and standard deviation.
    ///
    /// # Errors
    /// [`DataError::Invalid`] when the lengths differ or are zero, a value is not finite, or a
    /// standard deviation is not positive.
    pub fn new(mean: Vec<f32>, std: Vec<f32>) -> Result<Self, DataError> {
        let n = Self { mean, std };
        n.validate()?;
        Ok(n)
    }

    /// MNIST's constants, [`MNIST_MEAN`] and [`MNIST_STD`].
    pub fn mnist() -> Self {
        Self {
            mean: MNIST_MEAN.to_vec(),
            std: MNIST_STD.to_vec(),
        }
    }

    /// CIFAR-10's constants, [`CIFAR10_MEAN`] and [`CIFAR10_STD`].
    pub fn cifar10() -> Self {
        Self {
            mean: CIFAR10_MEAN.to_vec(),
            std: CIFAR10_STD.to_vec(),
        }
    }

    /// Scaling to `[0, 1]` only (mean 0, standard deviation 1), for `channels` channels.
    pub fn unit(channels: usize) -> Self {
        Self {
            mean: vec![0.0; channels],
            std: vec![1.0; channels],
        }
    }

    /// The per-channel mean and (population) standard deviation of a data set's pixels,
    /// accumulated in `f64`, for sets without published constants.
    ///
    /// # Errors
    /// [`DataError::Invalid`] when the data set is empty or a channel is constant.
    pub fn from_dataset(dataset: &Dataset) -> Result<Self, DataError> {
        let [c, h, w] = dataset.image_shape();
        let plane = h * w;
        // Byte histograms per channel: exact, and one pass of integer adds.
        let mut hist = vec![[0u64; 256]; c];
        for image in dataset.images().chunks_exact(c * plane) {
            for (ch, pixels) in image.chunks_exact(plane).enumerate() {
                for &p in pixels {
                    hist[ch][usize::from(p)] += 1;
                }
            }
        }
        let count = (dataset.len() * plane) as f64;
        if count == 0.0 {
            return Err(DataError::invalid(
                "Normalize::from_dataset",
                "the data set is empty",
            ));
        }
        let (mut mean, mut std) = (Vec::with_capacity(c), Vec::with_capacity(c));
        for h in &hist {
            let m = h
                .iter()
                .enumerate()
                .map(|(p, &k)| k as f64 * (p as f64 / 255.0))
                .sum::<f64>()
                / count;
            let var = h
                .iter()
                .enumerate()
                .map(|(p, &k)| k as f64 * (p as f64 / 255.0 - m).powi(2))
                .sum::<f64>()
                / count;
            mean.push(m as f32);
            std.push(var.sqrt() as f32);
        }
        if let Some(ch) = std.iter().position(|&s| s <= 0.0) {
            return Err(DataError::invalid(
                "Normalize::from_dataset",
                format!("channel {ch} is constant (standard deviation 0)"),
            ));
        }
        Self::new(mean, std)
    }

    /// Number of channels.
    pub fn channels(&self) -> usize {
        self.mean.len()
    }

    /// Checks the invariants that [`Normalize::new`] enforces (the fields are public).
    ///
    /// # Errors
    /// As [`Normalize::new`].
    pub fn validate(&self) -> Result<(), DataError> {
        let op = "Normalize";
        if self.mean.len() != self.std.len() || self.mean.is_empty() {
            return Err(DataError::invalid(
                op,
                format!(
                    "{} means and {} standard deviations (need one of each per channel)",
                    self.mean.len(),
                    self.std.len()
                ),
            ));
        }
        if let Some(m) = self.mean.iter().find(|m| !m.is_finite()) {
            return Err(DataError::invalid(op, format!("mean {m} is not finite")));
        }
        if let Some(s) = self.std.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
            return Err(DataError::invalid(
                op,
                format!("standard deviation {s} is not a positive number"),
            ));
        }
        Ok(())
    }

    /// The normalised value of byte `pixel` in channel `channel`.
    ///
    /// # Panics
    /// Panics if `channel >= self.channels()`.
    pub fn apply(&self, pixel: u8, channel: usize) -> f32 {
        (f32::from(pixel) / 255.0 - self.mean[channel]) / self.std[channel]
    }

    /// A table per channel of [`Normalize::apply`] for every byte, so a batch costs one lookup
    /// per pixel and gives exactly the values `apply` gives.
    pub(crate) fn tables(&self) -> ChannelTables {
        (0..self.channels())
            .map(|c| std::array::from_fn(|p| self.apply(p as u8, c)))
            .collect()
    }

    /// Images as bytes `[n, c, h, w]` (`shape`) to a normalised tensor of the same shape.
    ///
    /// # Errors
    /// [`DataError::Invalid`] when `shape` is not rank 4, its channel count is not
    /// [`Normalize::channels`], `pixels.len()` is not its product, or the normalisation is
    /// invalid.
    pub fn to_tensor(&self, pixels: &[u8], shape: &[usize]) -> Result<Tensor, DataError> {
        let op = "Normalize::to_tensor";
        self.validate()?;
        let &[_, c, h, w] = shape else {
            return Err(DataError::invalid(
                op,
                format!("shape {shape:?} is not [n, c, h, w]"),
            ));
        };
        if c != self.channels() {
            return Err(DataError::invalid(
                op,
                format!(
                    "images have {c} channels but the normalisation has {}",
                    self.channels()
                ),
            ));
        }
        let tables = self.tables();
        let plane = (h * w).max(1);
        let data = pixels
            .chunks(plane)
            .enumerate()
            .flat_map(|(i, chunk)| {
                let table = &tables[i % c];
                chunk.iter().map(move |&p| table[usize::from(p)])
            })
            .collect();
        Tensor::new(shape, data).map_err(|e| DataError::invalid(op, e.to_string()))
    }

    /// Writes the normalised values of one image `[c, h*w]` into `out`.
    ///
    /// # Panics
    /// Panics if `src` and `out` differ in length or the tables have fewer than
    /// `src.len() / plane` channels.
    pub(crate) fn fill(tables: &ChannelTables, src: &[u8], plane: usize, out: &mut [f32]) {
        assert_eq!(src.len(), out.len(), "normalize: slice lengths differ");
        for ((table, s), o) in tables
            .iter()
            .zip(src.chunks_exact(plane))
            .zip(out.chunks_exact_mut(plane))
        {
            for (o, &p) in o.iter_mut().zip(s) {
                *o = table[usize::from(p)];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_match_totensor_then_normalize() {
        let n = Normalize::mnist();
        assert_eq!(n.apply(0, 0), (0.0 - 0.1307) / 0.3081);
        assert!((n.apply(255, 0) - 2.821_49).abs() < 1e-4);
        let c = Normalize::cifar10();
        assert!((c.apply(128, 2) - (128.0 / 255.0 - 0.4465) / 0.2616).abs() < 1e-7);
        let t = c
            .to_tensor(&[0, 255, 10, 20, 30, 40], &[1, 3, 1, 2])
            .unwrap();
        let want = [
            c.apply(0, 0),
            c.apply(255, 0),
            c.apply(10, 1),
            c.apply(20, 1),
            c.apply(30, 2),
            c.apply(40, 2),
        ];
        assert_eq!(t.data(), &want);
        assert_eq!(Normalize::unit(1).apply(51, 0), 0.2);
    }

    #[test]
    fn invalid_constants_and_shapes_are_rejected() {
        assert!(Normalize::new(vec![0.5], vec![0.0]).is_err());
        assert!(Normalize::new(vec![0.5, 0.5], vec![0.2]).is_err());
        assert!(Normalize::new(vec![f32::NAN], vec![0.2]).is_err());
        let e = Normalize::mnist()
            .to_tensor(&[0; 12], &[1, 3, 2, 2])
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "data: Normalize::to_tensor: images have 3 channels but the normalisation has 1"
        );
        assert!(
            Normalize::mnist()
                .to_tensor(&[0; 3], &[1, 1, 2, 2])
                .is_err()
        );
    }

    #[test]
    fn statistics_of_a_dataset() {
        // Channel 0 holds 0 and 255 (mean 0.5, std 0.5); channel 1 holds 51 twice: constant.
        let d = Dataset::new(vec![0, 51, 255, 51], vec![0, 0], [2, 1, 1], 1).unwrap();
        assert!(Normalize::from_dataset(&d).is_err());
        let d = Dataset::new(vec![0, 51, 255, 102], vec![0, 0], [2, 1, 1], 1).unwrap();
        let n = Normalize::from_dataset(&d).unwrap();
        assert!((n.mean[0] - 0.5).abs() < 1e-6 && (n.std[0] - 0.5).abs() < 1e-6);
        assert!((n.mean[1] - 0.3).abs() < 1e-6 && (n.std[1] - 0.1).abs() < 1e-6);
    }
}
