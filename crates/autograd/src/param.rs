//! [`Param`]: a named, shared, trainable tensor with its gradient.
//!
//! A parameter is shared between the module that owns it, the graphs that read it during a
//! forward pass and the optimizer that updates it, the way `torch.nn.Parameter` is. It is an
//! `Arc<RwLock<..>>`, so models are `Send + Sync` and can serve inference from several threads.

use ganglion_tensor::Tensor;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// The value and gradient of a parameter.
#[derive(Debug, Clone)]
pub struct ParamData {
    /// The current value.
    pub value: Tensor,
    /// The accumulated gradient, same shape as `value` (zeros after [`Param::zero_grad`]).
    pub grad: Tensor,
    /// Whether backward passes accumulate a gradient into it (`false` for buffers such as
    /// BatchNorm's running statistics).
    pub requires_grad: bool,
}

/// A shared handle to a trainable tensor; cloning the handle does not copy the tensor.
#[derive(Debug, Clone)]
pub struct Param {
    inner: Arc<RwLock<ParamData>>,
}

impl Param {
    /// A trainable parameter with a zero gradient.
    pub fn new(value: Tensor) -> Self {
        Self::with_requires_grad(value, true)
    }

    /// A buffer: state saved with the model but never trained (running statistics).
    pub fn buffer(value: Tensor) -> Self {
        Self::with_requires_grad(value, false)
    }

    fn with_requires_grad(value: Tensor, requires_grad: bool) -> Self {
        let grad = Tensor::zeros(value.shape());
        Self {
            inner: Arc::new(RwLock::new(ParamData {
                value,
                grad,
                requires_grad,
            })),
        }
    }

    /// Read access to the value and gradient.
    pub fn read(&self) -> RwLockReadGuard<'_, ParamData> {
        // A poisoned lock means a panic happened while a writer held it; the tensor itself is
        // still a valid tensor, so keep going with it.
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Write access to the value and gradient.
    pub fn write(&self) -> RwLockWriteGuard<'_, ParamData> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// A copy of the current value.
    pub fn value(&self) -> Tensor {
        self.read().value.clone()
    }

    /// A copy of the current gradient.
    pub fn grad(&self) -> Tensor {
        self.read().grad.clone()
    }

    /// The shape of the value.
    pub fn shape(&self) -> Vec<usize> {
        self.read().value.shape().to_vec()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.read().value.len()
    }

    /// Whether the parameter holds no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether backward passes accumulate into this parameter's gradient.
    pub fn requires_grad(&self) -> bool {
        self.read().requires_grad
    }

    /// Replaces the value (same shape required).
    ///
    /// # Errors
    /// [`ganglion_tensor::TensorError::ShapeMismatch`] when the shapes differ.
    pub fn set_value(&self, value: Tensor) -> Result<(), ganglion_tensor::TensorError> {
        let mut data = self.write();
        if data.value.shape() != value.shape() {
            return Err(ganglion_tensor::TensorError::ShapeMismatch {
                op: "Param::set_value",
                left: data.value.shape().to_vec(),
                right: value.shape().to_vec(),
            });
        }
        data.value = value;
        Ok(())
    }

    /// Sets the gradient to zero.
    pub fn zero_grad(&self) {
        self.write().grad.fill(0.0);
    }

    /// Whether two handles point to the same parameter.
    pub fn ptr_eq(&self, other: &Param) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_storage() {
        let p = Param::new(Tensor::ones(&[2]));
        let q = p.clone();
        q.write().grad.data_mut()[0] = 3.0;
        assert_eq!(p.grad().data(), &[3.0, 0.0]);
        p.zero_grad();
        assert_eq!(q.grad().data(), &[0.0, 0.0]);
        assert!(p.ptr_eq(&q));
    }

    #[test]
    fn set_value_checks_shape() {
        let p = Param::new(Tensor::ones(&[2]));
        assert!(p.set_value(Tensor::ones(&[3])).is_err());
        p.set_value(Tensor::zeros(&[2])).unwrap();
        assert_eq!(p.value().data(), &[0.0, 0.0]);
        assert!(!Param::buffer(Tensor::ones(&[1])).requires_grad());
    }
}
