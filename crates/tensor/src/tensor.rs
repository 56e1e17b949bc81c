//! The [`Tensor`] type: constructors, accessors and reshaping.

use crate::TensorError;

/// Number of elements of a shape (1 for the empty shape of a scalar).
///
/// # Panics
/// Panics if the product overflows `usize`; use [`Tensor::new`] for shapes from untrusted input.
pub fn numel(shape: &[usize]) -> usize {
    checked_numel(shape).expect("tensor: element count overflows usize")
}

pub(crate) fn checked_numel(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

/// An owned, contiguous, row-major `f32` tensor.
#[derive(Clone, PartialEq)]
pub struct Tensor {
    shape: Vec<usize>,
    data: Vec<f32>,
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const SHOWN: usize = 8;
        write!(f, "Tensor{:?} [", self.shape)?;
        for (i, v) in self.data.iter().take(SHOWN).enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{v}")?;
        }
        if self.data.len() > SHOWN {
            write!(f, ", ... ({} more)", self.data.len() - SHOWN)?;
        }
        write!(f, "]")
    }
}

impl Tensor {
    /// A tensor of `shape` holding `data` in row-major order.
    ///
    /// # Errors
    /// [`TensorError::LengthMismatch`] if `data.len()` is not the product of `shape`,
    /// [`TensorError::Overflow`] if that product overflows.
    pub fn new(shape: &[usize], data: Vec<f32>) -> Result<Self, TensorError> {
        let expected = checked_numel(shape).ok_or_else(|| TensorError::Overflow {
            shape: shape.to_vec(),
        })?;
        if expected != data.len() {
            return Err(TensorError::LengthMismatch {
                shape: shape.to_vec(),
                expected,
                actual: data.len(),
            });
        }
        Ok(Self {
            shape: shape.to_vec(),
            data,
        })
    }

    /// A tensor of `shape` filled with `value`.
    pub fn full(shape: &[usize], value: f32) -> Self {
        Self {
            shape: shape.to_vec(),
            data: vec![value; numel(shape)],
        }
    }

    /// A tensor of zeros.
    pub fn zeros(shape: &[usize]) -> Self {
        Self::full(shape, 0.0)
    }

    /// A tensor of ones.
    pub fn ones(shape: &[usize]) -> Self {
        Self::full(shape, 1.0)
    }

    /// A scalar (rank-0) tensor.
    pub fn scalar(value: f32) -> Self {
        Self {
            shape: Vec::new(),
            data: vec![value],
        }
    }

    /// A tensor whose element at flat index `i` is `f(i)`.
    pub fn from_fn(shape: &[usize], f: impl FnMut(usize) -> f32) -> Self {
        Self {
            shape: shape.to_vec(),
            data: (0..numel(shape)).map(f).collect(),
        }
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The rank (number of dimensions).
    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the tensor holds no elements.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The elements in row-major order.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// The elements in row-major order, mutably.
    pub fn data_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }

    /// The shape and the elements, mutably, at once.
    pub fn parts_mut(&mut self) -> (&[usize], &mut [f32]) {
        (&self.shape, &mut self.data)
    }

    /// Gives up the tensor and returns its elements.
    pub fn into_vec(self) -> Vec<f32> {
        self.data
    }

    /// Gives up the tensor and returns its shape and elements.
    pub fn into_parts(self) -> (Vec<usize>, Vec<f32>) {
        (self.shape, self.data)
    }

    /// The element at a multi-dimensional index, or `None` when the index is out of range.
    pub fn get(&self, index: &[usize]) -> Option<f32> {
        if index.len() != self.shape.len() {
            return None;
        }
        let mut flat = 0;
        for (&i, &d) in index.iter().zip(&self.shape) {
            if i >= d {
                return None;
            }
            flat = flat * d + i;
        }
        Some(self.data[flat])
    }

    /// The dimensions `[N, C, H, W]` of a rank-4 tensor.
    ///
    /// # Errors
    /// [`TensorError::Rank`] when the tensor is not rank 4.
    pub fn dims4(&self) -> Result<[usize; 4], TensorError> {
        match self.shape[..] {
            [n, c, h, w] => Ok([n, c, h, w]),
            _ => Err(TensorError::Rank {
                op: "dims4",
                expected: 4,
                shape: self.shape.clone(),
            }),
        }
    }

    /// The dimensions `[rows, cols]` of a rank-2 tensor.
    ///
    /// # Errors
    /// [`TensorError::Rank`] when the tensor is not rank 2.
    pub fn dims2(&self) -> Result<[usize; 2], TensorError> {
        match self.shape[..] {
            [r, c] => Ok([r, c]),
            _ => Err(TensorError::Rank {
                op: "dims2",
                expected: 2,
                shape: self.shape.clone(),
            }),
        }
    }

    /// The same elements under another shape with the same element count.
    ///
    /// # Errors
    /// [`TensorError::ReshapeMismatch`] when the element counts differ.
    pub fn reshape(self, shape: &[usize]) -> Result<Self, TensorError> {
        match checked_numel(shape) {
            Some(n) if n == self.data.len() => Ok(Self {
                shape: shape.to_vec(),
                data: self.data,
            }),
            to_len => Err(TensorError::ReshapeMismatch {
                from_len: self.data.len(),
                from: self.shape,
                to: shape.to_vec(),
                to_len: to_len.unwrap_or(usize::MAX),
            }),
        }
    }

    /// Changes the shape in place, keeping the elements.
    ///
    /// # Errors
    /// [`TensorError::ReshapeMismatch`] when the element counts differ (the tensor is unchanged).
    pub fn set_shape(&mut self, shape: &[usize]) -> Result<(), TensorError> {
        match checked_numel(shape) {
            Some(n) if n == self.data.len() => {
                self.shape.clear();
                self.shape.extend_from_slice(shape);
                Ok(())
            }
            to_len => Err(TensorError::ReshapeMismatch {
                from: self.shape.clone(),
                from_len: self.data.len(),
                to: shape.to_vec(),
                to_len: to_len.unwrap_or(usize::MAX),
            }),
        }
    }

    /// Flattens every dimension after the first: `[N, ...] -> [N, rest]`.
    ///
    /// # Errors
    /// [`TensorError::Rank`] for a scalar.
    pub fn flatten_batch(self) -> Result<Self, TensorError> {
        let Some(&n) = self.shape.first() else {
            return Err(TensorError::Rank {
                op: "flatten_batch",
                expected: 1,
                shape: self.shape,
            });
        };
        let rest = self.shape[1..].iter().product();
        Ok(Self {
            shape: vec![n, rest],
            data: self.data,
        })
    }

    /// Items `start..end` along the first dimension, copied into a new tensor.
    ///
    /// # Panics
    /// Panics if the tensor is a scalar or the range is out of bounds.
    pub fn slice_batch(&self, start: usize, end: usize) -> Self {
        assert!(
            !self.shape.is_empty() && start <= end && end <= self.shape[0],
            "tensor: batch range {start}..{end} out of bounds for shape {:?}",
            self.shape
        );
        let item: usize = self.shape[1..].iter().product();
        let mut shape = self.shape.clone();
        shape[0] = end - start;
        Self {
            shape,
            data: self.data[start * item..end * item].to_vec(),
        }
    }

    /// Largest absolute difference between two tensors of the same shape.
    ///
    /// # Errors
    /// [`TensorError::ShapeMismatch`] when the shapes differ.
    pub fn max_abs_diff(&self, other: &Tensor) -> Result<f32, TensorError> {
        if self.shape != other.shape {
            return Err(TensorError::ShapeMismatch {
                op: "max_abs_diff",
                left: self.shape.clone(),
                right: other.shape.clone(),
            });
        }
        Ok(self
            .data
            .iter()
            .zip(&other.data)
            .fold(0.0f32, |m, (a, b)| m.max((a - b).abs())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_rejects_wrong_length() {
        let err = Tensor::new(&[2, 3], vec![0.0; 5]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "tensor: shape [2, 3] holds 6 elements but the data has 5"
        );
    }

    #[test]
    fn new_rejects_overflowing_shape() {
        let err = Tensor::new(&[usize::MAX, 2], vec![]).unwrap_err();
        assert!(matches!(err, TensorError::Overflow { .. }));
    }

    #[test]
    fn reshape_keeps_data_and_checks_count() {
        let t = Tensor::from_fn(&[2, 3], |i| i as f32);
        let r = t.clone().reshape(&[3, 2]).unwrap();
        assert_eq!(r.shape(), &[3, 2]);
        assert_eq!(r.data(), t.data());
        assert!(t.reshape(&[4, 2]).is_err());
    }

    #[test]
    fn get_indexes_row_major() {
        let t = Tensor::from_fn(&[2, 3, 4], |i| i as f32);
        assert_eq!(t.get(&[1, 2, 3]), Some(23.0));
        assert_eq!(t.get(&[1, 3, 0]), None);
        assert_eq!(t.get(&[1, 2]), None);
    }

    #[test]
    fn slice_and_flatten_batch() {
        let t = Tensor::from_fn(&[4, 2, 2, 1], |i| i as f32);
        let s = t.slice_batch(1, 3);
        assert_eq!(s.shape(), &[2, 2, 2, 1]);
        assert_eq!(s.data()[0], 4.0);
        let f = s.flatten_batch().unwrap();
        assert_eq!(f.shape(), &[2, 4]);
    }

    #[test]
    fn dims_check_rank() {
        assert!(Tensor::zeros(&[1, 2, 3]).dims4().is_err());
        assert_eq!(Tensor::zeros(&[1, 2, 3, 4]).dims4().unwrap(), [1, 2, 3, 4]);
    }
}
