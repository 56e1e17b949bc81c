//! The [`Optimizer`] trait, the checkpoint type [`OptimizerState`] and the per-parameter
//! bookkeeping every optimizer shares.

use crate::OptimError;
use crate::error::non_negative;
use ganglion_autograd::{Param, ParamData};
use std::collections::BTreeMap;

/// An optimizer over a fixed list of [`Param`] handles, like `torch.optim.Optimizer` with one
/// parameter group.
///
/// The trait is object safe, so a training loop can hold a `Box<dyn Optimizer + Send>`.
pub trait Optimizer {
    /// Applies one update to every parameter with `requires_grad`, reading its `grad`.
    ///
    /// # Panics
    /// Panics if a parameter's gradient has a different length from its value (the
    /// [`Param`] invariant was broken through its public fields).
    fn step(&mut self);

    /// Sets every parameter's gradient to zero (PyTorch's `zero_grad(set_to_none=False)`;
    /// gradients here are always present).
    fn zero_grad(&self) {
        for param in self.params() {
            param.zero_grad();
        }
    }

    /// The current learning rate.
    fn lr(&self) -> f32;

    /// Replaces the learning rate; a [`Schedule`](crate::Schedule) calls this once per step or
    /// epoch with `schedule.lr_at(n)`.
    ///
    /// # Panics
    /// Panics if `lr` is negative or not finite: schedules built by this crate never produce
    /// such values, so one here is a bug in the caller.
    fn set_lr(&mut self, lr: f32);

    /// The parameters, in the order given at construction (the order of state indices).
    fn params(&self) -> &[Param];

    /// How many times [`step`](Optimizer::step) has run, counting steps before a
    /// [`load_state`](Optimizer::load_state).
    fn step_count(&self) -> u64;

    /// A copy of everything that influences future updates, for checkpoints.
    fn state(&self) -> OptimizerState;

    /// Restores a state exported by [`state`](Optimizer::state) of an optimizer of the same kind
    /// and configuration over parameters of the same shapes; training then continues exactly as
    /// if it had not been interrupted. Nothing changes when it fails.
    ///
    /// # Errors
    /// [`OptimError::StateKind`] for another optimizer's state,
    /// [`OptimError::StateParamCount`] for a different number of parameters,
    /// [`OptimError::StateShape`] for a buffer whose length differs from its parameter's,
    /// [`OptimError::MissingStateBuffer`] / [`OptimError::UnexpectedStateBuffer`] when the
    /// buffers do not match this configuration (e.g. AMSGrad on one side only), and
    /// [`OptimError::InvalidHyperParameter`] for a negative or non-finite `lr`.
    fn load_state(&mut self, state: OptimizerState) -> Result<(), OptimError>;
}

/// An optimizer's resumable state: named `f32` buffers plus step counts.
///
/// Buffer names are `<buffer>.<parameter index>`, e.g. `momentum_buffer.0`, `exp_avg.3`,
/// `exp_avg_sq.3`, `max_exp_avg_sq.3`, as in PyTorch's `state_dict()`. A parameter that has never
/// been updated has no buffers, again as in PyTorch.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OptimizerState {
    /// The optimizer that wrote it: `sgd`, `adam` or `adamw`.
    pub kind: String,
    /// Number of [`Optimizer::step`] calls.
    pub step: u64,
    /// The learning rate when the state was taken.
    pub lr: f32,
    /// Per parameter, how many updates it has received (Adam's bias correction uses it; frozen
    /// parameters fall behind the global count).
    pub param_steps: Vec<u64>,
    /// The buffers, by name.
    pub buffers: BTreeMap<String, Vec<f32>>,
}

/// The parameters of an optimizer with their update counts and named buffers.
///
/// `buffers[i][k]` is buffer `kinds[k]` of parameter `i`; it stays empty until the parameter's
/// first update, then is allocated once and reused for the rest of training.
#[derive(Debug)]
pub(crate) struct ParamSlots {
    pub(crate) params: Vec<Param>,
    pub(crate) steps: Vec<u64>,
    pub(crate) buffers: Vec<Vec<Vec<f32>>>,
    pub(crate) step: u64,
    kinds: &'static [&'static str],
}

impl ParamSlots {
    /// Slots for `params`, each with the buffers named in `kinds`.
    pub(crate) fn new(
        op: &'static str,
        params: Vec<Param>,
        kinds: &'static [&'static str],
    ) -> Result<Self, OptimError> {
        // Quadratic, but models hold hundreds of tensors, not millions, and it runs once.
        for (index, param) in params.iter().enumerate() {
            if let Some(first) = params[..index].iter().position(|p| p.ptr_eq(param)) {
                return Err(OptimError::DuplicateParam { op, index, first });
            }
        }
        let n = params.len();
        Ok(Self {
            params,
            steps: vec![0; n],
            buffers: vec![vec![Vec::new(); kinds.len()]; n],
            step: 0,
            kinds,
        })
    }

    /// Counts one optimizer step, then runs `update(value, grad, count, buffers)` on every
    /// parameter with `requires_grad`, holding its write lock; `count` is the parameter's own
    /// update count, which `update` advances, and `buffers` are its named buffers in `kinds`
    /// order. Frozen parameters are skipped and keep their count.
    ///
    /// # Panics
    /// Panics if a parameter's gradient has a different length from its value.
    pub(crate) fn update_each(
        &mut self,
        op: &str,
        mut update: impl FnMut(&mut [f32], &[f32], &mut u64, &mut [Vec<f32>]),
    ) {
        self.step += 1;
        let slots = self
            .params
            .iter()
            .zip(self.steps.iter_mut())
            .zip(self.buffers.iter_mut());
        for (index, ((param, count), bufs)) in slots.enumerate() {
            let mut guard = param.write();
            let ParamData {
                value,
                grad,
                requires_grad,
            } = &mut *guard;
            if !*requires_grad {
                continue;
            }
            let (p, g) = (value.data_mut(), grad.data());
            if p.len() != g.len() {
                grad_length_mismatch(op, index, p.len(), g.len());
            }
            update(p, g, count, bufs);
        }
    }

    /// The state under `kind` with learning rate `lr`.
    pub(crate) fn export(&self, kind: &str, lr: f32) -> OptimizerState {
        let mut buffers = BTreeMap::new();
        for (index, bufs) in self.buffers.iter().enumerate() {
            if self.steps[index] == 0 {
                continue;
            }
            for (name, buf) in self.kinds.iter().zip(bufs) {
                buffers.insert(format!("{name}.{index}"), buf.clone());
            }
        }
        OptimizerState {
            kind: kind.to_string(),
            step: self.step,
            lr,
            param_steps: self.steps.clone(),
            buffers,
        }
    }

    /// Validates `state` against these parameters and `kind`, then copies it in; returns the
    /// state's learning rate. Nothing is modified on error.
    pub(crate) fn import(
        &mut self,
        op: &'static str,
        mut state: OptimizerState,
    ) -> Result<f32, OptimError> {
        if state.kind != op {
            return Err(OptimError::StateKind {
                op,
                found: state.kind,
            });
        }
        non_negative(op, "lr", state.lr)?;
        if state.param_steps.len() != self.params.len() {
            return Err(OptimError::StateParamCount {
                op,
                expected: self.params.len(),
                found: state.param_steps.len(),
            });
        }
        let mut expected_names = 0;
        for (index, param) in self.params.iter().enumerate() {
            if state.param_steps[index] == 0 {
                continue;
            }
            let shape = param.shape();
            let expected = param.len();
            for kind in self.kinds {
                let name = format!("{kind}.{index}");
                let Some(buf) = state.buffers.get(&name) else {
                    return Err(OptimError::MissingStateBuffer { op, name });
                };
                if buf.len() != expected {
                    return Err(OptimError::StateShape {
                        op,
                        found: buf.len(),
                        name,
                        index,
                        shape,
                        expected,
                    });
                }
                expected_names += 1;
            }
        }
        if state.buffers.len() != expected_names {
            // Some name is not one of those checked above; report the first such.
            let extra = state
                .buffers
                .keys()
                .find(|name| !self.is_expected(name, &state.param_steps))
                .cloned()
                .unwrap_or_default();
            return Err(OptimError::UnexpectedStateBuffer { op, name: extra });
        }
        for (index, bufs) in self.buffers.iter_mut().enumerate() {
            for (kind, buf) in self.kinds.iter().zip(bufs.iter_mut()) {
                buf.clear();
                if let Some(saved) = state.buffers.remove(&format!("{kind}.{index}")) {
                    // Copy into the existing allocation rather than adopting `saved`, so a
                    // buffer keeps its capacity across repeated loads.
                    buf.extend_from_slice(&saved);
                }
            }
        }
        self.steps = state.param_steps;
        self.step = state.step;
        Ok(state.lr)
    }

    fn is_expected(&self, name: &str, param_steps: &[u64]) -> bool {
        let Some((kind, index)) = name.rsplit_once('.') else {
            return false;
        };
        let Ok(index) = index.parse::<usize>() else {
            return false;
        };
        self.kinds.contains(&kind)
            && param_steps.get(index).is_some_and(|&s| s > 0)
            && format!("{kind}.{index}") == name
    }
}

/// Allocates a parameter's buffers (zeros of `len`) on its first update; later updates reuse them.
pub(crate) fn ensure_buffers(bufs: &mut [Vec<f32>], first_update: bool, len: usize) {
    if first_update {
        for buf in bufs {
            buf.clear();
            buf.resize(len, 0.0);
        }
    }
}

/// Panics for a gradient whose length differs from its value's.
#[cold]
#[inline(never)]
fn grad_length_mismatch(op: &str, index: usize, value: usize, grad: usize) -> ! {
    panic!("{op}: parameter {index} has {value} elements but its gradient has {grad}")
}

/// Panics for a learning rate that is negative or not finite.
#[cold]
#[inline(never)]
pub(crate) fn invalid_lr(op: &str, lr: f32) -> ! {
    panic!("{op}: set_lr needs a finite lr >= 0, got {lr}")
}
