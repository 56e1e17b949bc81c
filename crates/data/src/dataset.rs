//! [`Dataset`]: labelled images held in memory as bytes, and [`TrainTest`], a data set's two
//! splits.

use crate::DataError;

/// Labelled images in memory: pixels as `u8` in `[count, channels, height, width]` order and
/// one label per image below [`Dataset::num_classes`].
///
/// Pixels stay bytes until a batch is built (MNIST's training split is 47 MB as bytes, four
/// times that as `f32`); [`crate::BatchLoader`] converts and normalises one batch at a time.
#[derive(Clone, PartialEq, Eq)]
pub struct Dataset {
    images: Vec<u8>,
    labels: Vec<u16>,
    shape: [usize; 3],
    num_classes: usize,
    class_names: Option<Vec<String>>,
}

/// The training and test splits of one data set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrainTest {
    /// The training split.
    pub train: Dataset,
    /// The test split.
    pub test: Dataset,
}

impl std::fmt::Debug for Dataset {
    // A summary: the derived form would print every pixel (47 million for MNIST).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dataset")
            .field("len", &self.len())
            .field("image_shape", &self.shape)
            .field("num_classes", &self.num_classes)
            .field("class_names", &self.class_names)
            .finish()
    }
}

impl Dataset {
    /// A data set of `labels.len()` images of shape `[channels, height, width]`, pixels in
    /// `[count, channels, height, width]` order.
    ///
    /// # Errors
    /// [`DataError::Invalid`] when a side of `image_shape` is zero, `num_classes` is zero,
    /// `images.len()` is not `labels.len() * channels * height * width`, or a label is not
    /// below `num_classes`.
    pub fn new(
        images: Vec<u8>,
        labels: Vec<u16>,
        image_shape: [usize; 3],
        num_classes: usize,
    ) -> Result<Self, DataError> {
        let op = "Dataset::new";
        if image_shape.contains(&0) {
            return Err(DataError::invalid(
                op,
                format!("image shape {image_shape:?} has a zero side"),
            ));
        }
        if num_classes == 0 {
            return Err(DataError::invalid(
                op,
                "a data set needs at least one class",
            ));
        }
        let item: usize = image_shape.iter().product();
        if labels.len().checked_mul(item) != Some(images.len()) {
            return Err(DataError::invalid(
                op,
                format!(
                    "{} labels of images {image_shape:?} need {} pixels but {} were given",
                    labels.len(),
                    labels.len().saturating_mul(item),
                    images.len()
                ),
            ));
        }
        if let Some((i, &l)) = labels
            .iter()
            .enumerate()
            .find(|&(_, &l)| usize::from(l) >= num_classes)
        {
            return Err(DataError::invalid(
                op,
                format!("label {l} of sample {i} is not below the {num_classes} classes"),
            ));
        }
        Ok(Self {
            images,
            labels,
            shape: image_shape,
            num_classes,
            class_names: None,
        })
    }

    /// The same data set with a name for each class.
    ///
    /// # Errors
    /// [`DataError::Invalid`] when there is not exactly one name per class.
    pub fn with_class_names(mut self, names: Vec<String>) -> Result<Self, DataError> {
        if names.len() != self.num_classes {
            return Err(DataError::invalid(
                "Dataset::with_class_names",
                format!(
                    "{} names given for {} classes",
                    names.len(),
                    self.num_classes
                ),
            ));
        }
        self.class_names = Some(names);
        Ok(self)
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The shape of one image, `[channels, height, width]`.
    pub fn image_shape(&self) -> [usize; 3] {
        self.shape
    }

    /// Channels per image.
    pub fn channels(&self) -> usize {
        self.shape[0]
    }

    /// Bytes per image, `channels * height * width`.
    pub fn image_len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Number of classes; every label is below it.
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// The class names, when known (index = label).
    pub fn class_names(&self) -> Option<&[String]> {
        self.class_names.as_deref()
    }

    /// All pixels, `[count, channels, height, width]`.
    pub fn images(&self) -> &[u8] {
        &self.images
    }

    /// All labels.
    pub fn labels(&self) -> &[u16] {
        &self.labels
    }

    /// The pixels of image `index`, `[channels, height, width]`.
    ///
    /// # Panics
    /// Panics if `index >= self.len()`.
    pub fn image(&self, index: usize) -> &[u8] {
        let item = self.image_len();
        &self.images[index * item..(index + 1) * item]
    }

    /// The label of image `index`.
    ///
    /// # Panics
    /// Panics if `index >= self.len()`.
    pub fn label(&self, index: usize) -> usize {
        usize::from(self.labels[index])
    }

    /// How many images each class has (index = label).
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.num_classes];
        for &l in &self.labels {
            counts[usize::from(l)] += 1;
        }
        counts
    }

    /// Keeps only the first `n` images (all of them when `n >= len`), for quick runs.
    pub fn truncate(&mut self, n: usize) {
        if n < self.len() {
            self.labels.truncate(n);
            self.images.truncate(n * self.image_len());
        }
    }

    /// Splits into the first `n` images and the rest (for a validation split), keeping the
    /// class count and names in both.
    ///
    /// # Errors
    /// [`DataError::Invalid`] when `n > len`.
    pub fn split_at(mut self, n: usize) -> Result<(Self, Self), DataError> {
        if n > self.len() {
            return Err(DataError::invalid(
                "Dataset::split_at",
                format!("cannot split {} images at {n}", self.len()),
            ));
        }
        let rest = Self {
            images: self.images.split_off(n * self.image_len()),
            labels: self.labels.split_off(n),
            shape: self.shape,
            num_classes: self.num_classes,
            class_names: self.class_names.clone(),
        };
        Ok((self, rest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Dataset {
        Dataset::new((0..24).collect(), vec![0, 1, 2, 1], [2, 1, 3], 3).unwrap()
    }

    #[test]
    fn accessors_index_images_and_labels() {
        let d = tiny();
        assert_eq!(d.len(), 4);
        assert_eq!(d.image_len(), 6);
        assert_eq!(d.image(2), &[12, 13, 14, 15, 16, 17]);
        assert_eq!(d.label(3), 1);
        assert_eq!(d.class_counts(), vec![1, 2, 1]);
    }

    #[test]
    fn new_rejects_bad_lengths_labels_and_shapes() {
        let e = Dataset::new(vec![0; 5], vec![0], [1, 2, 2], 2).unwrap_err();
        assert_eq!(
            e.to_string(),
            "data: Dataset::new: 1 labels of images [1, 2, 2] need 4 pixels but 5 were given"
        );
        let e = Dataset::new(vec![0; 8], vec![0, 2], [1, 2, 2], 2).unwrap_err();
        assert!(e.to_string().contains("label 2 of sample 1"), "{e}");
        assert!(Dataset::new(vec![], vec![], [1, 0, 2], 2).is_err());
        assert!(Dataset::new(vec![], vec![], [1, 2, 2], 0).is_err());
    }

    #[test]
    fn split_and_truncate_keep_pairs() {
        let (a, b) = tiny().split_at(1).unwrap();
        assert_eq!((a.len(), b.len()), (1, 3));
        assert_eq!(b.image(0), tiny().image(1));
        assert_eq!(b.labels(), &[1, 2, 1]);
        assert!(tiny().split_at(5).is_err());
        let mut t = tiny();
        t.truncate(2);
        assert_eq!((t.len(), t.images().len()), (2, 12));
        let names = vec!["a".into(), "b".into()];
        assert!(tiny().with_class_names(names).is_err());
    }
}
