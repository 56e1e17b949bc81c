//! The tolerance a correct `f32` implementation meets on the reference cases.

/// The outcome of comparing one computed tensor with its reference.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Check {
    /// `max |got - want|` (infinite when a value is not finite or the lengths differ).
    pub max_abs_err: f32,
    /// The allowed error: `1e-4 * max(1, max |want|)`.
    pub tolerance: f32,
}

impl Check {
    /// Whether the error is within the tolerance.
    pub fn passed(&self) -> bool {
        self.max_abs_err <= self.tolerance
    }
}

/// Compares `got` with `want` under the oracle tolerance
/// `max |got - want| <= 1e-4 * max(1, max |want|)`.
pub fn check(got: &[f32], want: &[f32]) -> Check {
    let scale = want.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    let tolerance = 1e-4 * scale;
    if got.len() != want.len() {
        return Check {
            max_abs_err: f32::INFINITY,
            tolerance,
        };
    }
    let max_abs_err = got.iter().zip(want).fold(0.0f32, |m, (g, w)| {
        let e = (g - w).abs();
        if e.is_nan() { f32::INFINITY } else { m.max(e) }
    });
    Check {
        max_abs_err,
        tolerance,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerance_scales_with_magnitude() {
        assert!(check(&[1.0, 2.0], &[1.0, 2.00005]).passed());
        assert!(!check(&[1.0, 2.0], &[1.0, 2.001]).passed());
        assert!(check(&[1000.05], &[1000.0]).passed());
        assert!(!check(&[f32::NAN], &[0.0]).passed());
        assert!(!check(&[0.0], &[0.0, 0.0]).passed());
    }
}
