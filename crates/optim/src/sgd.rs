//! [`Sgd`]: stochastic gradient descent with momentum, dampening, Nesterov momentum and L2
//! weight decay, as `torch.optim.SGD`.

use crate::error::non_negative;
use crate::optimizer::{ParamSlots, ensure_buffers, invalid_lr};
use crate::{OptimError, Optimizer, OptimizerState};
use ganglion_autograd::Param;

const OP: &str = "sgd";

/// Hyper-parameters of [`Sgd`]; [`Default`] gives PyTorch's defaults (`lr = 1e-3`, everything
/// else off).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SgdConfig {
    /// Learning rate, `>= 0`.
    pub lr: f32,
    /// Momentum factor `mu`, `>= 0` (0 disables the momentum buffer).
    pub momentum: f32,
    /// Dampening `d` of the gradient added to the momentum buffer, `>= 0`.
    pub dampening: f32,
    /// L2 penalty `wd` added to the gradient, `>= 0`.
    pub weight_decay: f32,
    /// Nesterov momentum; needs `momentum > 0` and `dampening == 0`.
    pub nesterov: bool,
}

impl Default for SgdConfig {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            momentum: 0.0,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: false,
        }
    }
}

impl SgdConfig {
    /// Checks every field.
    ///
    /// # Errors
    /// [`OptimError::InvalidHyperParameter`] for a negative or non-finite `lr`, `momentum`,
    /// `dampening` or `weight_decay`; [`OptimError::NesterovRequiresMomentum`] for Nesterov
    /// without momentum or with dampening.
    pub fn validate(&self) -> Result<(), OptimError> {
        non_negative(OP, "lr", self.lr)?;
        non_negative(OP, "momentum", self.momentum)?;
        non_negative(OP, "dampening", self.dampening)?;
        non_negative(OP, "weight_decay", self.weight_decay)?;
        if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
            return Err(OptimError::NesterovRequiresMomentum {
                momentum: self.momentum,
                dampening: self.dampening,
            });
        }
        Ok(())
    }
}

/// Stochastic gradient descent, exactly `torch.optim.SGD`'s update. For each parameter `p`
/// with gradient `g`:
///
/// ```text
/// g   = g + wd * p                                  (if wd != 0)
/// buf = g                                           (first update of p, if mu != 0)
/// buf = mu * buf + (1 - d) * g                      (later updates, if mu != 0)
/// g   = nesterov ? g + mu * buf : buf               (if mu != 0)
/// p   = p - lr * g
/// ```
///
/// Momentum follows PyTorch's convention, not Sutskever et al.'s: the learning rate multiplies
/// the buffer rather than entering it, which matters only when the learning rate changes.
/// Nesterov momentum is from Sutskever, Martens, Dahl & Hinton, "On the importance of
/// initialization and momentum in deep learning", ICML 2013,
/// <https://proceedings.mlr.press/v28/sutskever13.html>.
///
/// Deviations from PyTorch: one parameter group; no `maximize`, `foreach` or `fused` options;
/// hyper-parameters are `f32` rather than Python floats; parameters with
/// `requires_grad == false` are skipped where PyTorch skips those whose `grad` is `None`.
/// Elementwise arithmetic is plain `f32` without fused multiply-add, so results can differ from
/// PyTorch's vectorised kernels in the last bit.
///
/// # Examples
/// ```
/// use ganglion_autograd::Param;
/// use ganglion_optim::{Optimizer, Sgd, SgdConfig};
/// use ganglion_tensor::Tensor;
///
/// let w = Param::new(Tensor::new(&[1], vec![1.0])?);
/// let config = SgdConfig { lr: 0.5, momentum: 0.5, ..SgdConfig::default() };
/// let mut opt = Sgd::new(vec![w.clone()], config)?;
/// for _ in 0..2 {
///     w.write().grad.data_mut()[0] = 1.0;
///     opt.step();
/// }
/// // buf = 1, p = 1 - 0.5 * 1; then buf = 0.5 * 1 + 1 = 1.5, p = 0.5 - 0.5 * 1.5
/// assert_eq!(w.value().data(), &[-0.25]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Sgd {
    config: SgdConfig,
    slots: ParamSlots,
}

impl Sgd {
    /// An optimizer over `params` (like `torch.optim.SGD(model.parameters(), ...)`).
    ///
    /// # Errors
    /// Those of [`SgdConfig::validate`], and [`OptimError::DuplicateParam`] when a handle
    /// appears twice.
    pub fn new(params: Vec<Param>, config: SgdConfig) -> Result<Self, OptimError> {
        config.validate()?;
        let kinds: &'static [&'static str] = if config.momentum != 0.0 {
            &["momentum_buffer"]
        } else {
            &[]
        };
        Ok(Self {
            config,
            slots: ParamSlots::new(OP, params, kinds)?,
        })
    }

    /// The hyper-parameters (with the current learning rate).
    pub fn config(&self) -> &SgdConfig {
        &self.config
    }
}

impl Optimizer for Sgd {
    fn step(&mut self) {
        let SgdConfig {
            lr,
            momentum,
            dampening,
            weight_decay,
            nesterov,
        } = self.config;
        // PyTorch forms `1 - dampening` as a Python float before the kernel sees it.
        let keep = (1.0 - f64::from(dampening)) as f32;
        self.slots.update_each(OP, |p, g, count, bufs| {
            if momentum == 0.0 {
                for (p, &g) in p.iter_mut().zip(g) {
                    let g = if weight_decay != 0.0 {
                        g + weight_decay * *p
                    } else {
                        g
                    };
                    *p -= lr * g;
                }
            } else {
                let first = *count == 0;
                ensure_buffers(bufs, first, p.len());
                for ((p, &g), b) in p.iter_mut().zip(g).zip(bufs[0].iter_mut()) {
                    let g = if weight_decay != 0.0 {
                        g + weight_decay * *p
                    } else {
                        g
                    };
                    *b = if first { g } else { *b * momentum + keep * g };
                    let d = if nesterov { g + momentum * *b } else { *b };
                    *p -= lr * d;
                }
            }
            *count += 1;
        });
    }

    fn lr(&self) -> f32 {
        self.config.lr
    }

    fn set_lr(&mut self, lr: f32) {
        if non_negative(OP, "lr", lr).is_err() {
            invalid_lr(OP, lr);
        }
        self.config.lr = lr;
    }

    fn params(&self) -> &[Param] {
        &self.slots.params
    }

    fn step_count(&self) -> u64 {
        self.slots.step
    }

    fn state(&self) -> OptimizerState {
        self.slots.export(OP, self.config.lr)
    }

    fn load_state(&mut self, state: OptimizerState) -> Result<(), OptimError> {
        self.config.lr = self.slots.import(OP, state)?;
        Ok(())
    }
}
