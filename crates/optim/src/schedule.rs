//! Learning-rate schedules as pure functions of the step: [`Constant`], [`StepLr`], [`Cosine`],
//! [`LinearWarmup`] and [`OneCycle`], with PyTorch's closed forms.
//!
//! # Steps or epochs
//! A schedule does not know what a step is: `lr_at(n)` is the rate after `n` calls of PyTorch's
//! `scheduler.step()`, so it is the rate for epoch `n` if the caller counts epochs and for
//! iteration `n` if it counts iterations (both from 0). The usual choices are epochs for
//! [`StepLr`] and [`Cosine`], iterations for [`OneCycle`] and [`LinearWarmup`]; the parameters
//! (`step_size`, `t_max`, `total_steps`, `warmup_steps`) are in the same unit. Because the
//! rate depends on `n` alone, resuming a run needs only the step count.
//!
//! Arithmetic is in `f64` from the `f32` parameters, as PyTorch's schedulers compute in Python
//! floats; the result is rounded to `f32` once.

use crate::OptimError;
use crate::error::{at_least_one, non_negative, positive};
use std::f64::consts::PI;

/// A learning rate as a function of the step (or epoch) count; see the module docs for units.
pub trait Schedule {
    /// The learning rate after `step` scheduler steps (`step = 0` is the initial rate).
    fn lr_at(&self, step: u64) -> f32;
}

impl<S: Schedule + ?Sized> Schedule for &S {
    fn lr_at(&self, step: u64) -> f32 {
        (**self).lr_at(step)
    }
}

impl<S: Schedule + ?Sized> Schedule for Box<S> {
    fn lr_at(&self, step: u64) -> f32 {
        (**self).lr_at(step)
    }
}

/// The same rate at every step (the inner schedule of a plain warm-up).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Constant {
    lr: f32,
}

impl Constant {
    /// A constant rate `lr`.
    ///
    /// # Errors
    /// [`OptimError::InvalidHyperParameter`] if `lr` is negative or not finite.
    pub fn new(lr: f32) -> Result<Self, OptimError> {
        non_negative("constant", "lr", lr)?;
        Ok(Self { lr })
    }
}

impl Schedule for Constant {
    fn lr_at(&self, _step: u64) -> f32 {
        self.lr
    }
}

/// `torch.optim.lr_scheduler.StepLR`: `base_lr * gamma^floor(step / step_size)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepLr {
    base_lr: f32,
    step_size: u64,
    gamma: f32,
}

impl StepLr {
    /// Decays `base_lr` by `gamma` every `step_size` steps.
    ///
    /// # Errors
    /// [`OptimError::InvalidHyperParameter`] if `base_lr` or `gamma` is negative or not finite,
    /// or `step_size` is 0.
    pub fn new(base_lr: f32, step_size: u64, gamma: f32) -> Result<Self, OptimError> {
        non_negative("step_lr", "base_lr", base_lr)?;
        at_least_one("step_lr", "step_size", step_size)?;
        non_negative("step_lr", "gamma", gamma)?;
        Ok(Self {
            base_lr,
            step_size,
            gamma,
        })
    }
}

impl Schedule for StepLr {
    fn lr_at(&self, step: u64) -> f32 {
        let decays = (step / self.step_size).min(i32::MAX as u64) as i32;
        (f64::from(self.base_lr) * f64::from(self.gamma).powi(decays)) as f32
    }
}

/// `torch.optim.lr_scheduler.CosineAnnealingLR`'s closed form:
/// `eta_min + (base_lr - eta_min) * (1 + cos(pi * step / t_max)) / 2`.
///
/// From Loshchilov & Hutter, "SGDR: Stochastic Gradient Descent with Warm Restarts", ICLR 2017,
/// <https://arxiv.org/abs/1608.03983> (without the restarts). As in PyTorch, past `t_max` the
/// formula keeps going, so the rate climbs back towards `base_lr`; stop at `t_max`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cosine {
    base_lr: f32,
    t_max: u64,
    eta_min: f32,
}

impl Cosine {
    /// Anneals from `base_lr` at step 0 to `eta_min` at step `t_max`.
    ///
    /// # Errors
    /// [`OptimError::InvalidHyperParameter`] if `base_lr` or `eta_min` is negative or not
    /// finite, or `t_max` is 0.
    pub fn new(base_lr: f32, t_max: u64, eta_min: f32) -> Result<Self, OptimError> {
        non_negative("cosine", "base_lr", base_lr)?;
        at_least_one("cosine", "t_max", t_max)?;
        non_negative("cosine", "eta_min", eta_min)?;
        Ok(Self {
            base_lr,
            t_max,
            eta_min,
        })
    }
}

impl Schedule for Cosine {
    fn lr_at(&self, step: u64) -> f32 {
        let (base, min) = (f64::from(self.base_lr), f64::from(self.eta_min));
        let phase = PI * step as f64 / self.t_max as f64;
        (min + (base - min) * (1.0 + phase.cos()) / 2.0) as f32
    }
}

/// A linear warm-up followed by another schedule: PyTorch's
/// `SequentialLR([LinearLR(start_factor, end_factor=1, total_iters=warmup_steps), inner],
/// milestones=[warmup_steps])`.
///
/// For `step < warmup_steps` the rate is
/// `inner.lr_at(0) * (start_factor + (1 - start_factor) * step / warmup_steps)`; from
/// `warmup_steps` on it is `inner.lr_at(step - warmup_steps)`, so the inner schedule starts
/// after the warm-up rather than running beneath it. Warm-up as in Goyal et al., "Accurate,
/// Large Minibatch SGD", 2017, <https://arxiv.org/abs/1706.02677>.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinearWarmup<S> {
    inner: S,
    warmup_steps: u64,
    start_factor: f32,
}

impl<S: Schedule> LinearWarmup<S> {
    /// Ramps linearly from `start_factor * inner.lr_at(0)` to `inner.lr_at(0)` over
    /// `warmup_steps`, then follows `inner`.
    ///
    /// # Errors
    /// [`OptimError::InvalidHyperParameter`] if `warmup_steps` is 0 or `start_factor` is not in
    /// `(0, 1]` (as `LinearLR` requires).
    pub fn new(inner: S, warmup_steps: u64, start_factor: f32) -> Result<Self, OptimError> {
        at_least_one("linear_warmup", "warmup_steps", warmup_steps)?;
        if !(start_factor > 0.0 && start_factor <= 1.0) {
            return Err(OptimError::InvalidHyperParameter {
                op: "linear_warmup",
                name: "start_factor",
                requirement: "in (0, 1]",
                value: f64::from(start_factor),
            });
        }
        Ok(Self {
            inner,
            warmup_steps,
            start_factor,
        })
    }

    /// The schedule that follows the warm-up.
    pub fn inner(&self) -> &S {
        &self.inner
    }
}

impl<S: Schedule> Schedule for LinearWarmup<S> {
    fn lr_at(&self, step: u64) -> f32 {
        if step >= self.warmup_steps {
            return self.inner.lr_at(step - self.warmup_steps);
        }
        let start = f64::from(self.start_factor);
        let factor = start + (1.0 - start) * step as f64 / self.warmup_steps as f64;
        (f64::from(self.inner.lr_at(0)) * factor) as f32
    }
}

/// `torch.optim.lr_scheduler.OneCycleLR` with cosine annealing and `three_phase=False`:
/// from `max_lr / div_factor` up to `max_lr` at step `pct_start * total_steps - 1`, then down to
/// `max_lr / div_factor / final_div_factor` at step `total_steps - 1`, both halves cosine.
///
/// Smith & Topin, "Super-Convergence: Very Fast Training of Neural Networks Using Large Learning
/// Rates", 2017, <https://arxiv.org/abs/1708.07120>. Steps are iterations (batches).
///
/// Deviations from PyTorch: momentum is not cycled (PyTorch's `cycle_momentum=True` default
/// also moves SGD's momentum or Adam's `b1`; here the optimizer's stays as configured); steps
/// past `total_steps - 1` return the final rate instead of raising.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OneCycle {
    max_lr: f32,
    total_steps: u64,
    pct_start: f32,
    div_factor: f32,
    final_div_factor: f32,
}

impl OneCycle {
    /// PyTorch's defaults: `pct_start = 0.3`, `div_factor = 25`, `final_div_factor = 1e4`.
    ///
    /// # Errors
    /// As [`OneCycle::with_factors`].
    pub fn new(max_lr: f32, total_steps: u64) -> Result<Self, OptimError> {
        Self::with_factors(max_lr, total_steps, 0.3, 25.0, 1e4)
    }

    /// A one-cycle schedule with every factor given.
    ///
    /// # Errors
    /// [`OptimError::InvalidHyperParameter`] if `max_lr` is negative or not finite, a divisor
    /// is not finite and positive, `total_steps` is 0, `pct_start` is outside `[0, 1]` (as
    /// PyTorch checks), or `pct_start * total_steps == 1`, where the warm-up phase spans zero
    /// steps and PyTorch's formula divides zero by zero at step 0.
    pub fn with_factors(
        max_lr: f32,
        total_steps: u64,
        pct_start: f32,
        div_factor: f32,
        final_div_factor: f32,
    ) -> Result<Self, OptimError> {
        non_negative("one_cycle", "max_lr", max_lr)?;
        at_least_one("one_cycle", "total_steps", total_steps)?;
        positive("one_cycle", "div_factor", div_factor)?;
        positive("one_cycle", "final_div_factor", final_div_factor)?;
        let peak = f64::from(pct_start) * total_steps as f64 - 1.0;
        if !((0.0..=1.0).contains(&pct_start) && peak != 0.0) {
            return Err(OptimError::InvalidHyperParameter {
                op: "one_cycle",
                name: "pct_start",
                requirement: "in [0, 1] with pct_start * total_steps != 1",
                value: f64::from(pct_start),
            });
        }
        Ok(Self {
            max_lr,
            total_steps,
            pct_start,
            div_factor,
            final_div_factor,
        })
    }

    /// The step at which the rate peaks at `max_lr`: `pct_start * total_steps - 1`.
    pub fn peak_step(&self) -> f64 {
        f64::from(self.pct_start) * self.total_steps as f64 - 1.0
    }
}

impl Schedule for OneCycle {
    fn lr_at(&self, step: u64) -> f32 {
        let max = f64::from(self.max_lr);
        let initial = max / f64::from(self.div_factor);
        let min = initial / f64::from(self.final_div_factor);
        let peak = self.peak_step();
        let last = (self.total_steps - 1) as f64;
        let step = (step as f64).min(last);
        // As PyTorch: a step at or before the (possibly fractional) peak is in the warm-up
        // phase; a peak below zero (pct_start * total_steps < 1) leaves only the second phase,
        // which then starts at that negative step. With pct_start = 1 the second phase is
        // empty and never reached, because steps stop at `last = peak`.
        let (start_lr, end_lr, pct) = if step <= peak {
            (initial, max, step / peak)
        } else {
            (max, min, (step - peak) / (last - peak))
        };
        (end_lr + (start_lr - end_lr) / 2.0 * ((PI * pct).cos() + 1.0)) as f32
    }
}
