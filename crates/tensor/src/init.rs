//! Weight initialisations as PyTorch's `torch.nn.init` defines them.
//!
//! Fans follow `torch.nn.init._calculate_fan_in_and_fan_out`: for a weight of shape
//! `[out, in, k...]`, `fan_in = in * prod(k)` and `fan_out = out * prod(k)`.

use crate::{Rng, Tensor};

/// `(fan_in, fan_out)` of a weight shape, as PyTorch computes them.
///
/// # Panics
/// Panics for shapes of rank below 2 (PyTorch refuses them too).
pub fn fans(shape: &[usize]) -> (usize, usize) {
    assert!(
        shape.len() >= 2,
        "init: fan in and fan out need a shape of rank >= 2, got {shape:?}"
    );
    let receptive: usize = shape[2..].iter().product();
    (shape[1] * receptive, shape[0] * receptive)
}

/// Samples from `U(low, high)`.
pub fn uniform(shape: &[usize], low: f32, high: f32, rng: &mut Rng) -> Tensor {
    Tensor::from_fn(shape, |_| rng.uniform_range(low, high))
}

/// Samples from `N(mean, std^2)`.
pub fn normal(shape: &[usize], mean: f32, std: f32, rng: &mut Rng) -> Tensor {
    Tensor::from_fn(shape, |_| mean + std * rng.normal())
}

/// The gain `sqrt(2 / (1 + a^2))` of a leaky ReLU with negative slope `a` (`a = 0`: ReLU).
pub fn leaky_relu_gain(negative_slope: f32) -> f32 {
    (2.0 / (1.0 + negative_slope * negative_slope)).sqrt()
}

/// `kaiming_uniform_(w, a, mode='fan_in', nonlinearity='leaky_relu')`:
/// `U(-b, b)` with `b = gain * sqrt(3 / fan_in)`, `gain = sqrt(2 / (1 + a^2))`.
///
/// PyTorch's `Conv2d` and `Linear` initialise their weights with `a = sqrt(5)`.
pub fn kaiming_uniform(shape: &[usize], a: f32, rng: &mut Rng) -> Tensor {
    let (fan_in, _) = fans(shape);
    let bound = leaky_relu_gain(a) * (3.0 / fan_in.max(1) as f32).sqrt();
    uniform(shape, -bound, bound, rng)
}

/// `kaiming_normal_(w, a, mode='fan_in')`: `N(0, std^2)` with `std = gain / sqrt(fan_in)`.
pub fn kaiming_normal(shape: &[usize], a: f32, rng: &mut Rng) -> Tensor {
    let (fan_in, _) = fans(shape);
    normal(
        shape,
        0.0,
        leaky_relu_gain(a) / (fan_in.max(1) as f32).sqrt(),
        rng,
    )
}

/// `xavier_uniform_(w, gain)`: `U(-b, b)` with `b = gain * sqrt(6 / (fan_in + fan_out))`.
pub fn xavier_uniform(shape: &[usize], gain: f32, rng: &mut Rng) -> Tensor {
    let (fan_in, fan_out) = fans(shape);
    let bound = gain * (6.0 / (fan_in + fan_out).max(1) as f32).sqrt();
    uniform(shape, -bound, bound, rng)
}

/// `xavier_normal_(w, gain)`: `N(0, std^2)` with `std = gain * sqrt(2 / (fan_in + fan_out))`.
pub fn xavier_normal(shape: &[usize], gain: f32, rng: &mut Rng) -> Tensor {
    let (fan_in, fan_out) = fans(shape);
    normal(
        shape,
        0.0,
        gain * (2.0 / (fan_in + fan_out).max(1) as f32).sqrt(),
        rng,
    )
}

/// The default bias of PyTorch's `Conv2d` and `Linear`: `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`
/// where `fan_in` is that of the layer's weight.
pub fn default_bias(len: usize, fan_in: usize, rng: &mut Rng) -> Tensor {
    let bound = 1.0 / (fan_in.max(1) as f32).sqrt();
    uniform(&[len], -bound, bound, rng)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn std_of(t: &Tensor) -> f32 {
        let n = t.len() as f32;
        let mean = t.data().iter().sum::<f32>() / n;
        (t.data().iter().map(|x| (x - mean).powi(2)).sum::<f32>() / n).sqrt()
    }

    #[test]
    fn fans_match_pytorch() {
        assert_eq!(fans(&[6, 1, 5, 5]), (25, 150));
        assert_eq!(fans(&[120, 400]), (400, 120));
    }

    #[test]
    fn kaiming_uniform_bound_is_pytorch_default() {
        let mut rng = Rng::seed_from(0);
        // Conv2d(1, 6, 5): bound = sqrt(2/6) * sqrt(3/25) = 1/sqrt(25) = 0.2
        let w = kaiming_uniform(&[6, 1, 5, 5], 5f32.sqrt(), &mut rng);
        let max = w.data().iter().fold(0f32, |m, v| m.max(v.abs()));
        assert!(max <= 0.2 && max > 0.18, "max {max}");
    }

    #[test]
    fn normal_inits_have_the_right_spread() {
        let mut rng = Rng::seed_from(1);
        let w = kaiming_normal(&[64, 32, 3, 3], 0.0, &mut rng);
        let want = (2.0f32 / 288.0).sqrt();
        assert!((std_of(&w) / want - 1.0).abs() < 0.03);
        let w = xavier_normal(&[200, 300], 1.0, &mut rng);
        let want = (2.0f32 / 500.0).sqrt();
        assert!((std_of(&w) / want - 1.0).abs() < 0.03);
        let w = xavier_uniform(&[200, 300], 1.0, &mut rng);
        let bound = (6.0f32 / 500.0).sqrt();
        assert!(w.data().iter().all(|v| v.abs() <= bound));
        assert!((std_of(&w) / (bound / 3f32.sqrt()) - 1.0).abs() < 0.03);
    }
}
