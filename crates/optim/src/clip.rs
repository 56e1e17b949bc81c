//! [`clip_grad_norm`]: rescales gradients so their joint L2 norm stays under a bound, as
//! `torch.nn.utils.clip_grad_norm_`.

use ganglion_autograd::Param;

/// Computes the L2 norm of all gradients together and, when it exceeds `max_norm`, scales every
/// gradient by `max_norm / (norm + 1e-6)`; returns the norm before clipping.
///
/// Follows `torch.nn.utils.clip_grad_norm_` (`norm_type = 2`): the scale is applied exactly
/// when `max_norm / (norm + 1e-6) < 1`. Parameters with `requires_grad == false` are left out of
/// the norm and never scaled. Pass each parameter once (e.g. `optimizer.params()`): a repeated
/// handle is counted and scaled twice, as in PyTorch.
///
/// The sum of squares is accumulated in `f64` in a fixed order (parameters in order, four
/// interleaved lanes within each), so the result never depends on threads. If the norm is NaN
/// or infinite the gradients are left untouched (PyTorch would turn them into NaN) and the
/// non-finite norm is returned so the caller can skip the step.
///
/// # Panics
/// Panics if `max_norm` is negative or NaN.
///
/// # Examples
/// ```
/// use ganglion_autograd::Param;
/// use ganglion_optim::clip_grad_norm;
/// use ganglion_tensor::Tensor;
///
/// let w = Param::new(Tensor::zeros(&[2]));
/// w.write().grad.data_mut().copy_from_slice(&[3.0, 4.0]);
/// let norm = clip_grad_norm(std::slice::from_ref(&w), 1.0);
/// assert_eq!(norm, 5.0);
/// let g = w.grad();
/// assert!((g.data()[0] - 0.6).abs() < 1e-6 && (g.data()[1] - 0.8).abs() < 1e-6);
/// ```
pub fn clip_grad_norm(params: &[Param], max_norm: f32) -> f32 {
    assert!(
        max_norm >= 0.0,
        "clip_grad_norm: max_norm must be >= 0, got {max_norm}"
    );
    let mut total = 0.0f64;
    for param in params {
        let data = param.read();
        if data.requires_grad {
            total += sum_of_squares(data.grad.data());
        }
    }
    let norm = total.sqrt();
    let coef = f64::from(max_norm) / (norm + 1e-6);
    if norm.is_finite() && coef < 1.0 {
        let coef = coef as f32;
        for param in params {
            let mut data = param.write();
            if data.requires_grad {
                for g in data.grad.data_mut() {
                    *g *= coef;
                }
            }
        }
    }
    norm as f32
}

/// `sum(x^2)` in `f64`, with four lanes so the loop vectorises while the order stays fixed.
fn sum_of_squares(values: &[f32]) -> f64 {
    let mut lanes = [0.0f64; 4];
    let chunks = values.chunks_exact(4);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            let v = f64::from(v);
            *lane += v * v;
        }
    }
    for (lane, &v) in lanes.iter_mut().zip(tail) {
        let v = f64::from(v);
        *lane += v * v;
    }
    (lanes[0] + lanes[1]) + (lanes[2] + lanes[3])
}

#[cfg(test)]
mod tests {
    use super::*;
    use ganglion_tensor::Tensor;

    fn param_with_grad(grad: &[f32]) -> Param {
        let p = Param::new(Tensor::zeros(&[grad.len()]));
        p.write().grad.data_mut().copy_from_slice(grad);
        p
    }

    #[test]
    fn scales_to_max_norm_across_params() {
        // Norm over both tensors: sqrt(1 + 4 + 4 + 16 + 100) = sqrt(125).
        let a = param_with_grad(&[1.0, 2.0, 2.0]);
        let b = param_with_grad(&[4.0, 10.0]);
        let norm = clip_grad_norm(&[a.clone(), b.clone()], 5.0);
        assert!((f64::from(norm) - 125f64.sqrt()).abs() < 1e-5);
        let clipped: f64 = [a.grad(), b.grad()]
            .iter()
            .flat_map(|t| t.data().to_vec())
            .map(|g| f64::from(g) * f64::from(g))
            .sum::<f64>()
            .sqrt();
        // max_norm / (norm + 1e-6) * norm = 5 * (1 - 1e-6 / norm) to first order.
        assert!((clipped - 5.0).abs() < 1e-5, "clipped norm {clipped}");
        let coef = 5.0 / (125f64.sqrt() + 1e-6);
        assert!((f64::from(b.grad().data()[1]) - 10.0 * coef).abs() < 1e-5);
    }

    #[test]
    fn leaves_small_gradients_and_buffers_alone() {
        let a = param_with_grad(&[0.3, 0.4]);
        assert!((clip_grad_norm(std::slice::from_ref(&a), 1.0) - 0.5).abs() < 1e-7);
        assert_eq!(a.grad().data(), &[0.3, 0.4]);

        let buffer = Param::buffer(Tensor::zeros(&[1]));
        buffer.write().grad.data_mut()[0] = 100.0;
        let b = param_with_grad(&[6.0, 8.0]);
        let norm = clip_grad_norm(&[buffer.clone(), b.clone()], 1.0);
        assert_eq!(norm, 10.0);
        assert_eq!(buffer.grad().data(), &[100.0]);
        assert!((b.grad().data()[0] - 0.6).abs() < 1e-6);
    }

    #[test]
    fn tail_and_lanes_sum_every_element() {
        let values: Vec<f32> = (1..=11).map(|v| v as f32).collect();
        // 1^2 + ... + 11^2 = 11 * 12 * 23 / 6 = 506.
        assert_eq!(sum_of_squares(&values), 506.0);
        assert_eq!(sum_of_squares(&[]), 0.0);
    }

    #[test]
    fn non_finite_norm_is_returned_without_touching_grads() {
        let a = param_with_grad(&[f32::INFINITY, 1.0]);
        assert!(clip_grad_norm(std::slice::from_ref(&a), 1.0).is_infinite());
        assert_eq!(a.grad().data()[1], 1.0);
    }
}
