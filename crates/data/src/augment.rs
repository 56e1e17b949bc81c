//! [`Augment`]: seeded training augmentation (random crop with zero padding or random-resized
//! crop, horizontal flip, colour jitter), drawn per sample from `(seed, epoch, sample index)`.

use crate::DataError;
use crate::jitter::{self, ColorJitter, JitterDraw};
use crate::resized_crop::{CropBox, RandomResizedCrop, ResampleScratch, resample};
use ganglion_tensor::Rng;

/// Sub-stream of an epoch's generator that augmentation draws from, apart from the shuffle.
const AUGMENT_STREAM: u64 = 0xA06E_0000_0000_0001;

/// Random crop of `height x width` from the image padded with `padding` zero bytes on every
/// side, as torchvision's `RandomCrop(size, padding)` (fill 0, applied before normalisation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RandomCrop {
    /// Rows of the crop.
    pub height: usize,
    /// Columns of the crop.
    pub width: usize,
    /// Zero bytes added on each side before cropping.
    pub padding: usize,
}

/// Training augmentation: an optional [`RandomCrop`] or [`RandomResizedCrop`] (not both),
/// then an optional horizontal flip with probability 1/2, then an optional [`ColorJitter`].
/// The default does nothing.
///
/// Sample `i` of epoch `e` under seed `s` draws from [`Augment::sample_rng`]`(s, e, i)`, so the
/// result depends on neither the batch it lands in nor the thread that builds it.
///
/// # Examples
/// ```
/// use ganglion_data::Augment;
/// let aug = Augment::crop_flip(32, 4); // the usual CIFAR-10 recipe
/// assert_eq!(aug.output_shape([3, 32, 32]).unwrap(), [3, 32, 32]);
/// let image = vec![7u8; 3 * 32 * 32];
/// let mut rng = Augment::sample_rng(1, 0, 5);
/// assert_eq!(aug.apply(&image, [3, 32, 32], &mut rng).unwrap().len(), image.len());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Augment {
    /// Random crop with zero padding, if any.
    pub crop: Option<RandomCrop>,
    /// Whether to flip left-right with probability 1/2.
    pub hflip: bool,
    /// Random-resized crop, if any (instead of `crop`).
    pub resized_crop: Option<RandomResizedCrop>,
    /// Colour jitter, if any.
    pub jitter: Option<ColorJitter>,
}

/// Everything one sample's augmentation decided: what [`Augment::plan`] draws.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplePlan {
    /// The padded crop's offsets (zero without a [`RandomCrop`]) and the flip.
    pub placement: Placement,
    /// The random-resized crop's region of the image, if any.
    pub region: Option<CropBox>,
    /// The colour jitter's order and factors, if any.
    pub jitter: Option<JitterDraw>,
}

/// Reusable buffers for augmentations that work on bytes before normalisation.
#[derive(Debug, Default)]
pub(crate) struct AugmentScratch {
    pub(crate) bytes: Vec<u8>,
    resample: ResampleScratch,
    grey: Vec<f32>,
}

/// Where one sample's crop sits and whether it is flipped: what [`Augment::draw`] decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// First row of the crop in the padded image.
    pub top: usize,
    /// First column of the crop in the padded image.
    pub left: usize,
    /// Whether the crop is flipped left-right.
    pub flip: bool,
}

impl Augment {
    /// No augmentation.
    pub fn none() -> Self {
        Self::default()
    }

    /// A `size x size` crop with `padding` and a horizontal flip.
    pub fn crop_flip(size: usize, padding: usize) -> Self {
        Self::none().with_crop(size, size, padding).with_hflip()
    }

    /// The same augmentation with a random crop.
    pub fn with_crop(mut self, height: usize, width: usize, padding: usize) -> Self {
        self.crop = Some(RandomCrop {
            height,
            width,
            padding,
        });
        self
    }

    /// The same augmentation with a horizontal flip (probability 1/2).
    pub fn with_hflip(mut self) -> Self {
        self.hflip = true;
        self
    }

    /// The same augmentation with a random-resized crop (in place of a random crop).
    pub fn with_resized_crop(mut self, crop: RandomResizedCrop) -> Self {
        self.resized_crop = Some(crop);
        self
    }

    /// The same augmentation with colour jitter.
    pub fn with_jitter(mut self, jitter: ColorJitter) -> Self {
        self.jitter = Some(jitter);
        self
    }

    /// Whether this changes nothing.
    pub fn is_identity(&self) -> bool {
        self.crop.is_none() && !self.hflip && self.resized_crop.is_none() && !self.has_jitter()
    }

    fn has_jitter(&self) -> bool {
        self.jitter.is_some_and(|j| !j.is_identity())
    }

    /// Whether samples go through bytes (resampling, jitter) before normalisation, rather than
    /// straight to normalised values.
    pub(crate) fn works_on_bytes(&self) -> bool {
        self.resized_crop.is_some() || self.has_jitter()
    }

    /// The generator that sample `index` of `epoch` under `seed` draws its augmentation from:
    /// `Rng::seed_from(seed).fork(epoch).fork(AUGMENT_STREAM).fork(index)`, a stream apart from
    /// the epoch's shuffle.
    pub fn sample_rng(seed: u64, epoch: u64, index: usize) -> Rng {
        Self::epoch_rng(seed, epoch).fork(index as u64)
    }

    /// The per-epoch part of [`Augment::sample_rng`], computed once per epoch by the loader.
    pub(crate) fn epoch_rng(seed: u64, epoch: u64) -> Rng {
        Rng::seed_from(seed).fork(epoch).fork(AUGMENT_STREAM)
    }

    /// The shape of an augmented image of shape `[c, h, w]`.
    ///
    /// # Errors
    /// [`DataError::Invalid`] when the crop has a zero side or is larger than the padded image,
    /// both crops are set, or the random-resized crop or jitter parameters are invalid.
    pub fn output_shape(&self, [c, h, w]: [usize; 3]) -> Result<[usize; 3], DataError> {
        if let Some(j) = self.jitter {
            j.validate()?;
        }
        if let Some(r) = self.resized_crop {
            if self.crop.is_some() {
                return Err(DataError::invalid(
                    "Augment",
                    "a random crop and a random-resized crop do not combine; pick one",
                ));
            }
            r.validate()?;
            return Ok([c, r.height, r.width]);
        }
        let Some(crop) = self.crop else {
            return Ok([c, h, w]);
        };
        let (ph, pw) = (h + 2 * crop.padding, w + 2 * crop.padding);
        if crop.height == 0 || crop.width == 0 || crop.height > ph || crop.width > pw {
            return Err(DataError::invalid(
                "Augment",
                format!(
                    "crop {}x{} does not fit images {h}x{w} padded by {} ({ph}x{pw})",
                    crop.height, crop.width, crop.padding
                ),
            ));
        }
        Ok([c, crop.height, crop.width])
    }

    /// Draws one sample's placement for images `h x w`: the crop offsets (uniform over every
    /// position in the padded image), then the flip.
    ///
    /// # Panics
    /// Panics if the crop does not fit (see [`Augment::output_shape`]).
    pub fn draw(&self, rng: &mut Rng, h: usize, w: usize) -> Placement {
        let (top, left) = match self.crop {
            Some(c) => {
                let rows = (h + 2 * c.padding)
                    .checked_sub(c.height)
                    .expect("augment: crop taller than the padded image");
                let cols = (w + 2 * c.padding)
                    .checked_sub(c.width)
                    .expect("augment: crop wider than the padded image");
                (rng.below(rows + 1), rng.below(cols + 1))
            }
            None => (0, 0),
        };
        let flip = self.hflip && rng.bernoulli(0.5);
        Placement { top, left, flip }
    }

    /// Draws everything one sample's augmentation needs for images `h x w`, in this order: the
    /// random-resized crop's region, the padded crop's offsets and the flip (as
    /// [`Augment::draw`]), then the jitter. Without a random-resized crop or jitter the draws
    /// are exactly [`Augment::draw`]'s.
    ///
    /// # Panics
    /// Panics if the crop does not fit (see [`Augment::output_shape`]).
    pub fn plan(&self, rng: &mut Rng, h: usize, w: usize) -> SamplePlan {
        let region = self.resized_crop.map(|r| r.draw(rng, h, w));
        let placement = self.draw(rng, h, w);
        let jitter = match self.jitter {
            Some(j) if !j.is_identity() => Some(j.draw(rng)),
            _ => None,
        };
        SamplePlan {
            placement,
            region,
            jitter,
        }
    }

    /// Augments one image `[c, h, w]` with a plan drawn from `rng`, returning the bytes of
    /// shape [`Augment::output_shape`].
    ///
    /// # Errors
    /// [`DataError::Invalid`] when the crop does not fit or `image.len()` is not `c * h * w`.
    pub fn apply(
        &self,
        image: &[u8],
        shape: [usize; 3],
        rng: &mut Rng,
    ) -> Result<Vec<u8>, DataError> {
        let out_shape = self.output_shape(shape)?;
        if image.len() != shape.iter().product::<usize>() {
            return Err(DataError::invalid(
                "Augment::apply",
                format!("{} bytes is not an image of shape {shape:?}", image.len()),
            ));
        }
        let plan = self.plan(rng, shape[1], shape[2]);
        let mut out = vec![0u8; out_shape.iter().product()];
        self.render_bytes(
            &plan,
            image,
            shape,
            &mut out,
            &mut AugmentScratch::default(),
        );
        Ok(out)
    }

    /// Writes the augmented bytes of `src` (shape `[c, h, w]`) for `plan` into `out`.
    ///
    /// # Panics
    /// Panics if the plan does not fit the image or `out` is not the output shape's length.
    pub(crate) fn render_bytes(
        &self,
        plan: &SamplePlan,
        src: &[u8],
        shape: [usize; 3],
        out: &mut [u8],
        scratch: &mut AugmentScratch,
    ) {
        let c = shape[0];
        let plane = out.len() / c.max(1);
        match (plan.region, self.resized_crop) {
            (Some(region), Some(r)) => resample(
                src,
                shape,
                region,
                [r.height, r.width],
                plan.placement.flip,
                out,
                &mut scratch.resample,
            ),
            _ => self.render(plan.placement, src, shape, out, |_, p| p),
        }
        if let Some(draw) = &plan.jitter {
            jitter::apply(draw, out, c, plane, &mut scratch.grey);
        }
    }

    /// Writes the augmented image into `out`, each source byte (or 0 for padding) passed
    /// through `map(channel, byte)`: the loader maps straight to normalised `f32`.
    ///
    /// # Panics
    /// Panics if the crop does not fit, `src` is not `c * h * w` long, or `out` is not the
    /// output shape's length.
    pub(crate) fn render<T: Copy>(
        &self,
        at: Placement,
        src: &[u8],
        [c, h, w]: [usize; 3],
        out: &mut [T],
        map: impl Fn(usize, u8) -> T,
    ) {
        debug_assert!(
            self.resized_crop.is_none(),
            "augment: render is for padded crops"
        );
        let (oh, ow, pad) = match self.crop {
            Some(cr) => (cr.height, cr.width, cr.padding),
            None => (h, w, 0),
        };
        assert_eq!(src.len(), c * h * w, "augment: source length");
        assert_eq!(out.len(), c * oh * ow, "augment: output length");
        for (ch, (plane, out_plane)) in src
            .chunks_exact(h * w)
            .zip(out.chunks_exact_mut(oh * ow))
            .enumerate()
        {
            let zero = map(ch, 0);
            for (y, row) in out_plane.chunks_exact_mut(ow).enumerate() {
                // Source row in unpadded coordinates; out of range means padding.
                let sy = (at.top + y).checked_sub(pad).filter(|&r| r < h);
                let Some(sy) = sy else {
                    row.fill(zero);
                    continue;
                };
                let src_row = &plane[sy * w..(sy + 1) * w];
                for (x, o) in row.iter_mut().enumerate() {
                    let cx = if at.flip { ow - 1 - x } else { x };
                    *o = match (at.left + cx).checked_sub(pad).filter(|&s| s < w) {
                        Some(sx) => map(ch, src_row[sx]),
                        None => zero,
                    };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_placement_crops_pads_and_flips() {
        // One 2x3 channel: rows [1 2 3], [4 5 6].
        let src = [1u8, 2, 3, 4, 5, 6];
        let aug = Augment::none().with_crop(2, 3, 1);
        let mut out = [9u8; 6];
        let at = Placement {
            top: 0,
            left: 0,
            flip: false,
        };
        aug.render(at, &src, [1, 2, 3], &mut out, |_, p| p);
        assert_eq!(out, [0, 0, 0, 0, 1, 2]);
        let at = Placement {
            top: 2,
            left: 2,
            flip: false,
        };
        aug.render(at, &src, [1, 2, 3], &mut out, |_, p| p);
        assert_eq!(out, [5, 6, 0, 0, 0, 0]);
        let at = Placement {
            top: 1,
            left: 1,
            flip: true,
        };
        aug.render(at, &src, [1, 2, 3], &mut out, |_, p| p);
        assert_eq!(out, [3, 2, 1, 6, 5, 4]);
    }

    #[test]
    fn crop_that_does_not_fit_is_rejected() {
        let aug = Augment::none().with_crop(5, 5, 1);
        assert!(aug.output_shape([1, 2, 3]).is_err());
        assert!(
            aug.apply(&[0; 6], [1, 2, 3], &mut Rng::seed_from(0))
                .is_err()
        );
        assert!(
            Augment::none()
                .with_crop(0, 2, 0)
                .output_shape([1, 2, 2])
                .is_err()
        );
    }
}
