//! [`ColorJitter`]: torchvision's `ColorJitter` brightness, contrast and saturation, applied in a
//! random order with random factors to an image's bytes.

use crate::DataError;
use ganglion_tensor::Rng;

/// Random brightness, contrast and saturation changes, as torchvision's
/// `ColorJitter(brightness, contrast, saturation)`: each non-zero strength `s` draws a factor
/// uniform in `[max(0, 1 - s), 1 + s]`, and the three adjustments run in a random order.
///
/// * brightness scales every value by the factor;
/// * contrast blends each value with the image's mean grey level;
/// * saturation blends each pixel with its own grey level (RGB only: a grey image has no
///   saturation to change).
///
/// Grey levels use torchvision's weights `0.2989 R + 0.587 G + 0.114 B`. Each step works in
/// `f32`, then rounds to the nearest byte, clamped to `[0, 255]`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ColorJitter {
    /// Brightness strength (0: unchanged).
    pub brightness: f32,
    /// Contrast strength (0: unchanged).
    pub contrast: f32,
    /// Saturation strength (0: unchanged).
    pub saturation: f32,
}

/// The factors and order one sample's jitter drew.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JitterDraw {
    /// Adjustments in the order applied: 0 brightness, 1 contrast, 2 saturation.
    pub order: [u8; 3],
    /// Factor per adjustment (index as in `order`); 1 leaves it unchanged.
    pub factors: [f32; 3],
}

impl ColorJitter {
    /// The same strength for brightness, contrast and saturation.
    pub fn uniform(strength: f32) -> Self {
        Self {
            brightness: strength,
            contrast: strength,
            saturation: strength,
        }
    }

    /// Whether this changes nothing.
    pub fn is_identity(&self) -> bool {
        self.brightness == 0.0 && self.contrast == 0.0 && self.saturation == 0.0
    }

    /// Checks the strengths.
    ///
    /// # Errors
    /// [`DataError::Invalid`] when a strength is negative or not finite.
    pub fn validate(&self) -> Result<(), DataError> {
        for (name, s) in [
            ("brightness", self.brightness),
            ("contrast", self.contrast),
            ("saturation", self.saturation),
        ] {
            if !(s.is_finite() && s >= 0.0) {
                return Err(DataError::invalid(
                    "ColorJitter",
                    format!("{name} strength {s} is not a non-negative number"),
                ));
            }
        }
        Ok(())
    }

    /// Draws the order, then a factor for each adjustment with a non-zero strength.
    pub fn draw(&self, rng: &mut Rng) -> JitterDraw {
        let mut order = [0u8, 1, 2];
        rng.shuffle(&mut order);
        let mut factors = [1.0f32; 3];
        for (f, s) in factors
            .iter_mut()
            .zip([self.brightness, self.contrast, self.saturation])
        {
            if s > 0.0 {
                *f = rng.uniform_range((1.0 - s).max(0.0), 1.0 + s);
            }
        }
        JitterDraw { order, factors }
    }
}

/// The grey level of each pixel of an `[c, plane]` image (`c` 1 or 3), into `grey`.
fn grey_levels(image: &[u8], c: usize, plane: usize, grey: &mut Vec<f32>) {
    grey.clear();
    if c == 3 {
        let (r, rest) = image.split_at(plane);
        let (g, b) = rest.split_at(plane);
        grey.extend(r.iter().zip(g).zip(b).map(|((&r, &g), &b)| {
            0.2989 * f32::from(r) + 0.587 * f32::from(g) + 0.114 * f32::from(b)
        }));
    } else {
        grey.extend(image[..plane].iter().map(|&p| f32::from(p)));
    }
}

fn to_byte(v: f32) -> u8 {
    (v + 0.5).clamp(0.0, 255.0) as u8
}

/// Applies a drawn jitter in place to one image `[c, plane]` bytes; `grey` is scratch space.
///
/// # Panics
/// Panics if `image.len()` is not `c * plane`.
pub(crate) fn apply(
    draw: &JitterDraw,
    image: &mut [u8],
    c: usize,
    plane: usize,
    grey: &mut Vec<f32>,
) {
    assert_eq!(image.len(), c * plane, "jitter: image length");
    for &op in &draw.order {
        let f = draw.factors[usize::from(op)];
        if f == 1.0 {
            continue;
        }
        match op {
            0 => image
                .iter_mut()
                .for_each(|p| *p = to_byte(f * f32::from(*p))),
            1 => {
                grey_levels(image, c, plane, grey);
                let mean = grey.iter().map(|&g| f64::from(g)).sum::<f64>() / plane.max(1) as f64;
                let shift = (1.0 - f) * mean as f32;
                image
                    .iter_mut()
                    .for_each(|p| *p = to_byte(f * f32::from(*p) + shift));
            }
            _ if c == 3 => {
                grey_levels(image, c, plane, grey);
                for channel in image.chunks_exact_mut(plane) {
                    for (p, &g) in channel.iter_mut().zip(grey.iter()) {
                        *p = to_byte(f * f32::from(*p) + (1.0 - f) * g);
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn only(op: u8, factor: f32) -> JitterDraw {
        let mut factors = [1.0; 3];
        factors[usize::from(op)] = factor;
        JitterDraw {
            order: [0, 1, 2],
            factors,
        }
    }

    #[test]
    fn each_adjustment_does_what_it_says() {
        let mut grey = Vec::new();
        // Brightness 1.5 on a grey image, clamped at 255.
        let mut img = [10u8, 100, 200];
        apply(&only(0, 1.5), &mut img, 1, 3, &mut grey);
        assert_eq!(img, [15, 150, 255]);
        // Contrast 0 gives the mean everywhere; 2 doubles the distance from it.
        let mut img = [10u8, 20, 30];
        apply(&only(1, 0.0), &mut img, 1, 3, &mut grey);
        assert_eq!(img, [20, 20, 20]);
        let mut img = [10u8, 20, 30];
        apply(&only(1, 2.0), &mut img, 1, 3, &mut grey);
        assert_eq!(img, [0, 20, 40]);
        // Saturation 0 makes RGB grey; it leaves a grey image alone.
        let mut img = [255u8, 0, 0, 255, 0, 0];
        apply(&only(2, 0.0), &mut img, 3, 2, &mut grey);
        assert_eq!(img, [76, 150, 76, 150, 76, 150]);
        let mut img = [1u8, 2, 3];
        apply(&only(2, 0.0), &mut img, 1, 3, &mut grey);
        assert_eq!(img, [1, 2, 3]);
    }

    #[test]
    fn draws_respect_the_strengths() {
        let jitter = ColorJitter {
            brightness: 0.4,
            contrast: 0.0,
            saturation: 2.0,
        };
        jitter.validate().unwrap();
        let mut rng = Rng::seed_from(1);
        let mut orders = std::collections::HashSet::new();
        for _ in 0..200 {
            let d = jitter.draw(&mut rng);
            assert!((0.6..1.4).contains(&d.factors[0]));
            assert_eq!(d.factors[1], 1.0);
            assert!((0.0..3.0).contains(&d.factors[2]));
            orders.insert(d.order);
        }
        assert_eq!(orders.len(), 6);
        assert!(ColorJitter::uniform(-0.1).validate().is_err());
        assert!(ColorJitter::default().is_identity());
    }
}
