//! Zero-copy conversion between [`Tensor`] and `ndarray` arrays.

use crate::{Tensor, TensorError};
use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, IxDyn};

impl Tensor {
    /// A read-only `ndarray` view of the tensor (no copy).
    pub fn view(&self) -> ArrayViewD<'_, f32> {
        ArrayViewD::from_shape(IxDyn(self.shape()), self.data())
            .expect("a tensor's data length always equals the product of its shape")
    }

    /// A mutable `ndarray` view of the tensor (no copy).
    pub fn view_mut(&mut self) -> ArrayViewMutD<'_, f32> {
        let (shape, data) = self.parts_mut();
        let shape = IxDyn(shape);
        ArrayViewMutD::from_shape(shape, data)
            .expect("a tensor's data length always equals the product of its shape")
    }

    /// Takes an owned array; no copy when it is in standard (row-major, contiguous) layout with
    /// no offset, otherwise copies it into that layout.
    pub fn from_array(array: ArrayD<f32>) -> Tensor {
        let shape = array.shape().to_vec();
        let array = if array.is_standard_layout() {
            array
        } else {
            array.as_standard_layout().into_owned()
        };
        let (data, offset) = array.into_raw_vec_and_offset();
        let data = match offset {
            Some(0) | None => data,
            Some(off) => data[off..].to_vec(),
        };
        let len = shape.iter().product();
        let data = if data.len() == len {
            data
        } else {
            data[..len].to_vec()
        };
        Tensor::new(&shape, data).expect("shape and data length agree by construction")
    }

    /// Copies a view of any layout into a new tensor.
    ///
    /// # Errors
    /// Never fails for a well-formed view; the `Result` keeps the signature uniform with the
    /// other constructors.
    pub fn from_view(view: ArrayViewD<'_, f32>) -> Result<Tensor, TensorError> {
        let shape = view.shape().to_vec();
        Tensor::new(&shape, view.iter().copied().collect())
    }

    /// Gives up the tensor as an owned `ndarray` array (no copy).
    pub fn into_array(self) -> ArrayD<f32> {
        let (shape, data) = self.into_parts();
        ArrayD::from_shape_vec(IxDyn(&shape), data)
            .expect("a tensor's data length always equals the product of its shape")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_round_trip_without_copy() {
        let t = Tensor::from_fn(&[2, 3], |i| i as f32);
        let ptr = t.data().as_ptr();
        assert_eq!(t.view()[[1, 2]], 5.0);
        let a = t.into_array();
        assert_eq!(a.as_ptr(), ptr);
        let back = Tensor::from_array(a);
        assert_eq!(back.data().as_ptr(), ptr);
        assert_eq!(back.shape(), &[2, 3]);
    }

    #[test]
    fn transposed_array_is_copied_into_row_major() {
        let a = ndarray::Array2::from_shape_fn((2, 3), |(i, j)| (i * 3 + j) as f32)
            .reversed_axes()
            .into_dyn();
        let t = Tensor::from_array(a);
        assert_eq!(t.shape(), &[3, 2]);
        assert_eq!(t.data(), &[0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    }

    #[test]
    fn view_mut_writes_through() {
        let mut t = Tensor::zeros(&[2, 2]);
        t.view_mut()[[0, 1]] = 7.0;
        assert_eq!(t.data(), &[0.0, 7.0, 0.0, 0.0]);
    }
}
