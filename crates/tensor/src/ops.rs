//! Elementwise operations: slice kernels (for crates that manage their own buffers) and the
//! matching methods on [`Tensor`].
//!
//! The slice functions panic on length mismatch (they sit on validated hot paths); the tensor
//! methods that combine two tensors check shapes and return [`TensorError`].

use crate::{Tensor, TensorError};

/// `y += alpha * x`.
///
/// # Panics
/// Panics if the lengths differ.
pub fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    assert_eq!(x.len(), y.len(), "axpy: length mismatch");
    for (y, &x) in y.iter_mut().zip(x) {
        *y += alpha * x;
    }
}

/// `y += x`.
///
/// # Panics
/// Panics if the lengths differ.
pub fn add_assign(y: &mut [f32], x: &[f32]) {
    assert_eq!(x.len(), y.len(), "add_assign: length mismatch");
    for (y, &x) in y.iter_mut().zip(x) {
        *y += x;
    }
}

/// `out[i] = max(x[i], 0)`.
///
/// # Panics
/// Panics if the lengths differ.
pub fn relu(x: &[f32], out: &mut [f32]) {
    assert_eq!(x.len(), out.len(), "relu: length mismatch");
    for (o, &v) in out.iter_mut().zip(x) {
        *o = v.max(0.0);
    }
}

/// `dx[i] = dy[i]` where `y[i] > 0`, else 0 (the ReLU backward given the forward output).
///
/// # Panics
/// Panics if the lengths differ.
pub fn relu_backward(y: &[f32], dy: &[f32], dx: &mut [f32]) {
    assert!(
        y.len() == dy.len() && dy.len() == dx.len(),
        "relu_backward: length mismatch"
    );
    for ((dx, &dy), &y) in dx.iter_mut().zip(dy).zip(y) {
        *dx = if y > 0.0 { dy } else { 0.0 };
    }
}

/// Sum in `f64` (fixed order, so the result does not depend on how work was split).
pub fn sum(x: &[f32]) -> f64 {
    x.iter().map(|&v| v as f64).sum()
}

/// Index of the largest element (the first one on ties), `None` for an empty slice.
pub fn argmax(x: &[f32]) -> Option<usize> {
    let mut best: Option<(usize, f32)> = None;
    for (i, &v) in x.iter().enumerate() {
        if best.is_none_or(|(_, b)| v > b) {
            best = Some((i, v));
        }
    }
    best.map(|(i, _)| i)
}

impl Tensor {
    fn zip_with(
        &self,
        other: &Tensor,
        op: &'static str,
        f: impl Fn(f32, f32) -> f32,
    ) -> Result<Tensor, TensorError> {
        if self.shape() != other.shape() {
            return Err(TensorError::ShapeMismatch {
                op,
                left: self.shape().to_vec(),
                right: other.shape().to_vec(),
            });
        }
        let data = self
            .data()
            .iter()
            .zip(other.data())
            .map(|(&a, &b)| f(a, b))
            .collect();
        Tensor::new(self.shape(), data)
    }

    /// Applies `f` to every element.
    pub fn map(&self, f: impl Fn(f32) -> f32) -> Tensor {
        Tensor::from_fn(self.shape(), |i| f(self.data()[i]))
    }

    /// Applies `f` to every element in place.
    pub fn map_inplace(&mut self, f: impl Fn(f32) -> f32) {
        for v in self.data_mut() {
            *v = f(*v);
        }
    }

    /// Elementwise sum.
    ///
    /// # Errors
    /// [`TensorError::ShapeMismatch`] when the shapes differ.
    pub fn add(&self, other: &Tensor) -> Result<Tensor, TensorError> {
        self.zip_with(other, "add", |a, b| a + b)
    }

    /// Elementwise difference.
    ///
    /// # Errors
    /// [`TensorError::ShapeMismatch`] when the shapes differ.
    pub fn sub(&self, other: &Tensor) -> Result<Tensor, TensorError> {
        self.zip_with(other, "sub", |a, b| a - b)
    }

    /// Elementwise product.
    ///
    /// # Errors
    /// [`TensorError::ShapeMismatch`] when the shapes differ.
    pub fn mul(&self, other: &Tensor) -> Result<Tensor, TensorError> {
        self.zip_with(other, "mul", |a, b| a * b)
    }

    /// `self += alpha * other`.
    ///
    /// # Errors
    /// [`TensorError::ShapeMismatch`] when the shapes differ (nothing is changed).
    pub fn axpy_assign(&mut self, alpha: f32, other: &Tensor) -> Result<(), TensorError> {
        if self.shape() != other.shape() {
            return Err(TensorError::ShapeMismatch {
                op: "axpy_assign",
                left: self.shape().to_vec(),
                right: other.shape().to_vec(),
            });
        }
        axpy(alpha, other.data(), self.data_mut());
        Ok(())
    }

    /// Every element times `s`.
    pub fn scale(&self, s: f32) -> Tensor {
        self.map(|v| v * s)
    }

    /// Every element plus `s`.
    pub fn add_scalar(&self, s: f32) -> Tensor {
        self.map(|v| v + s)
    }

    /// Sets every element to `value`.
    pub fn fill(&mut self, value: f32) {
        self.data_mut().fill(value);
    }

    /// `max(x, 0)`.
    pub fn relu(&self) -> Tensor {
        self.map(|v| v.max(0.0))
    }

    /// `1 / (1 + exp(-x))`.
    pub fn sigmoid(&self) -> Tensor {
        self.map(|v| 1.0 / (1.0 + (-v).exp()))
    }

    /// `tanh(x)`.
    pub fn tanh(&self) -> Tensor {
        self.map(f32::tanh)
    }

    /// Sum of all elements (accumulated in `f64`, fixed order).
    pub fn sum(&self) -> f32 {
        sum(self.data()) as f32
    }

    /// Mean of all elements (`NaN` for an empty tensor).
    pub fn mean(&self) -> f32 {
        (sum(self.data()) / self.len() as f64) as f32
    }

    /// Whether every element is finite.
    pub fn is_finite(&self) -> bool {
        self.data().iter().all(|v| v.is_finite())
    }

    /// For a `[rows, cols]` tensor, the index of the largest element of each row.
    ///
    /// # Errors
    /// [`TensorError::Rank`] when the tensor is not rank 2.
    pub fn argmax_rows(&self) -> Result<Vec<usize>, TensorError> {
        let [rows, cols] = self.dims2()?;
        Ok((0..rows)
            .map(|r| argmax(&self.data()[r * cols..(r + 1) * cols]).unwrap_or(0))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn binary_ops_check_shapes() {
        let a = Tensor::ones(&[2, 2]);
        let b = Tensor::ones(&[4]);
        assert!(matches!(
            a.add(&b),
            Err(TensorError::ShapeMismatch { op: "add", .. })
        ));
        assert_eq!(a.add(&a).unwrap().data(), &[2.0; 4]);
        assert_eq!(a.scale(3.0).sub(&a).unwrap().data(), &[2.0; 4]);
    }

    #[test]
    fn argmax_takes_first_of_ties() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0, 2.0]), Some(1));
        assert_eq!(argmax(&[]), None);
        let t = Tensor::new(&[2, 3], vec![0.0, 2.0, 1.0, 5.0, 4.0, 3.0]).unwrap();
        assert_eq!(t.argmax_rows().unwrap(), vec![1, 0]);
    }

    #[test]
    fn activations() {
        let t = Tensor::new(&[3], vec![-1.0, 0.0, 2.0]).unwrap();
        assert_eq!(t.relu().data(), &[0.0, 0.0, 2.0]);
        assert!((t.sigmoid().data()[1] - 0.5).abs() < 1e-7);
        assert!((t.tanh().data()[2] - 2f32.tanh()).abs() < 1e-7);
    }

    proptest! {
        #[test]
        fn relu_backward_masks_by_output(xs in proptest::collection::vec(-5f32..5.0, 1..64)) {
            let mut y = vec![0.0; xs.len()];
            relu(&xs, &mut y);
            let dy = vec![1.0; xs.len()];
            let mut dx = vec![0.0; xs.len()];
            relu_backward(&y, &dy, &mut dx);
            for (x, d) in xs.iter().zip(&dx) {
                prop_assert_eq!(*d, if *x > 0.0 { 1.0 } else { 0.0 });
            }
        }

        #[test]
        fn axpy_matches_definition(xs in proptest::collection::vec(-5f32..5.0, 1..64), a in -2f32..2.0) {
            let mut y = vec![1.0f32; xs.len()];
            axpy(a, &xs, &mut y);
            for (x, y) in xs.iter().zip(&y) {
                prop_assert_eq!(*y, 1.0 + a * x);
            }
        }
    }
}
