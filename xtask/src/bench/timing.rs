//! How a measurement is repeated: warm-up calls, then timed calls until both a minimum count and
//! a minimum total time are reached, reporting the median.

use std::time::Instant;

/// The repetition policy of one measured cell.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    /// Untimed calls first: they fault in buffers and warm caches and the thread pool.
    pub warmup_calls: usize,
    /// At least this many timed calls.
    pub min_calls: usize,
    /// And keep calling until the timed calls add up to at least this many seconds.
    pub min_seconds: f64,
}

impl Plan {
    /// The default: steady medians (>= 5 calls and >= 0.3 s per cell).
    pub const FULL: Plan = Plan {
        warmup_calls: 2,
        min_calls: 5,
        min_seconds: 0.3,
    };

    /// `--quick`: one warm-up and two timed calls, for a smoke run of the whole suite.
    pub const QUICK: Plan = Plan {
        warmup_calls: 1,
        min_calls: 2,
        min_seconds: 0.0,
    };

    /// One round of a training-step cell: two untimed steps (the first fills the graph's
    /// buffer pool, the second shows it warm), then >= 5 steps and >= 1 s.
    pub const TRAIN: Plan = Plan {
        warmup_calls: 2,
        min_calls: 5,
        min_seconds: 1.0,
    };

    /// `--quick` training cells: the two warm-up steps, two timed ones.
    pub const TRAIN_QUICK: Plan = Plan {
        warmup_calls: 2,
        min_calls: 2,
        min_seconds: 0.0,
    };

    /// Machine limits, `--quick` or not: a few short calls, of which the fastest counts.
    pub const LIMITS: Plan = Plan {
        warmup_calls: 1,
        min_calls: 5,
        min_seconds: 0.3,
    };

    /// Calls `call` as the plan says and returns the median seconds of the timed calls.
    pub fn median_seconds(&self, call: impl FnMut()) -> f64 {
        median(&mut self.timed_calls(call))
    }

    /// Calls `call` as the plan says and returns the fastest timed call: the estimate for a
    /// machine limit, since interference from other work can only slow a call down.
    pub fn best_seconds(&self, call: impl FnMut()) -> f64 {
        self.timed_calls(call)
            .into_iter()
            .fold(f64::INFINITY, f64::min)
    }

    /// Seconds of each timed call, after the warm-up.
    fn timed_calls(&self, mut call: impl FnMut()) -> Vec<f64> {
        let infallible = self.try_timed_calls(|| {
            call();
            Ok::<(), std::convert::Infallible>(())
        });
        match infallible {
            Ok(times) => times,
            Err(never) => match never {},
        }
    }

    /// Calls `call` as the plan says, the first [`Plan::warmup_calls`] calls untimed, and
    /// returns the seconds of each timed call.
    ///
    /// # Errors
    /// The first error `call` returns.
    pub fn try_timed_calls<E>(
        &self,
        mut call: impl FnMut() -> Result<(), E>,
    ) -> Result<Vec<f64>, E> {
        for _ in 0..self.warmup_calls {
            call()?;
        }
        let mut times = Vec::with_capacity(self.min_calls.max(1));
        let mut total = 0.0;
        while times.len() < self.min_calls.max(1) || total < self.min_seconds {
            let start = Instant::now();
            call()?;
            let seconds = start.elapsed().as_secs_f64();
            total += seconds;
            times.push(seconds);
        }
        Ok(times)
    }
}

/// The median of a non-empty sample (the mean of the middle two for an even count).
///
/// # Panics
/// When `values` is empty.
pub fn median(values: &mut [f64]) -> f64 {
    assert!(!values.is_empty(), "median of an empty sample");
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        0.5 * (values[mid - 1] + values[mid])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_samples() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
    }

    #[test]
    fn a_plan_makes_its_warmup_and_minimum_calls() {
        let mut calls = 0;
        let plan = Plan {
            warmup_calls: 2,
            min_calls: 3,
            min_seconds: 0.0,
        };
        let m = plan.median_seconds(|| calls += 1);
        assert_eq!(calls, 5);
        assert!(m >= 0.0);
        let best = plan.best_seconds(|| calls += 1);
        assert_eq!(calls, 10);
        assert!(best >= 0.0 && best.is_finite());
    }
}
