//! [`Adam`] (L2 weight decay, optional AMSGrad) and [`AdamW`] (decoupled weight decay), which
//! share one update body, as `torch.optim.Adam` and `torch.optim.AdamW`.

use crate::error::non_negative;
use crate::optimizer::{ParamSlots, ensure_buffers, invalid_lr};
use crate::{OptimError, Optimizer, OptimizerState};
use ganglion_autograd::Param;

/// Hyper-parameters of [`Adam`] and [`AdamW`]. [`Default`] gives `torch.optim.Adam`'s defaults;
/// [`AdamConfig::adamw`] gives `torch.optim.AdamW`'s (the same but `weight_decay = 0.01`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamConfig {
    /// Learning rate, `>= 0`.
    pub lr: f32,
    /// Decay rates `(b1, b2)` of the first and second moment estimates, each in `[0, 1)`.
    pub betas: (f32, f32),
    /// Added to the denominator for numerical stability, `>= 0`.
    pub eps: f32,
    /// Weight decay `wd >= 0`: an L2 term added to the gradient in [`Adam`], a decoupled
    /// shrinkage `p *= 1 - lr * wd` in [`AdamW`].
    pub weight_decay: f32,
    /// Use the maximum of all second-moment estimates so far (AMSGrad).
    pub amsgrad: bool,
}

impl Default for AdamConfig {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            amsgrad: false,
        }
    }
}

impl AdamConfig {
    /// `torch.optim.AdamW`'s defaults: Adam's with `weight_decay = 0.01`.
    pub fn adamw() -> Self {
        Self {
            weight_decay: 0.01,
            ..Self::default()
        }
    }

    /// Checks every field; `op` names the optimizer in messages.
    fn check(&self, op: &'static str) -> Result<(), OptimError> {
        non_negative(op, "lr", self.lr)?;
        beta(op, "betas.0", self.betas.0)?;
        beta(op, "betas.1", self.betas.1)?;
        non_negative(op, "eps", self.eps)?;
        non_negative(op, "weight_decay", self.weight_decay)
    }

    /// Checks every field.
    ///
    /// # Errors
    /// [`OptimError::InvalidHyperParameter`] for a negative or non-finite `lr`, `eps` or
    /// `weight_decay`, or a beta outside `[0, 1)`.
    pub fn validate(&self) -> Result<(), OptimError> {
        self.check("adam")
    }
}

fn beta(op: &'static str, name: &'static str, value: f32) -> Result<(), OptimError> {
    if (0.0..1.0).contains(&value) {
        Ok(())
    } else {
        Err(OptimError::InvalidHyperParameter {
            op,
            name,
            requirement: "in [0, 1)",
            value: f64::from(value),
        })
    }
}

/// The body shared by Adam and AdamW; `decoupled` picks where weight decay goes.
#[derive(Debug)]
struct AdamCore {
    op: &'static str,
    decoupled: bool,
    config: AdamConfig,
    slots: ParamSlots,
}

impl AdamCore {
    fn new(
        op: &'static str,
        decoupled: bool,
        params: Vec<Param>,
        config: AdamConfig,
    ) -> Result<Self, OptimError> {
        config.check(op)?;
        let kinds: &'static [&'static str] = if config.amsgrad {
            &["exp_avg", "exp_avg_sq", "max_exp_avg_sq"]
        } else {
            &["exp_avg", "exp_avg_sq"]
        };
        Ok(Self {
            op,
            decoupled,
            config,
            slots: ParamSlots::new(op, params, kinds)?,
        })
    }

    fn step(&mut self) {
        let AdamConfig {
            lr,
            betas: (beta1, beta2),
            eps,
            weight_decay,
            amsgrad,
        } = self.config;
        let (b1, b2) = (f64::from(beta1), f64::from(beta2));
        let decay = (1.0 - f64::from(lr) * f64::from(weight_decay)) as f32;
        let decoupled = self.decoupled && weight_decay != 0.0;
        // Scalars PyTorch computes as Python floats (f64) before the f32 kernels see them.
        let mut s = Scalars {
            beta2,
            lerp_weight: (1.0 - b1) as f32,
            sq_weight: (1.0 - b2) as f32,
            l2: if self.decoupled { 0.0 } else { weight_decay },
            eps,
            step_size: 0.0,
            bc2_sqrt: 0.0,
        };

        self.slots.update_each(self.op, |p, g, count, bufs| {
            ensure_buffers(bufs, *count == 0, p.len());
            *count += 1;
            // Bias corrections use the parameter's own update count, as PyTorch's per-parameter
            // `state["step"]`, so a parameter unfrozen late starts its correction afresh.
            let t = *count as f64;
            s.step_size = (f64::from(lr) / (1.0 - b1.powf(t))) as f32;
            s.bc2_sqrt = (1.0 - b2.powf(t)).sqrt() as f32;
            if decoupled {
                for p in p.iter_mut() {
                    *p *= decay;
                }
            }
            let (m, rest) = bufs.split_at_mut(1);
            let (v, vmax) = rest.split_at_mut(1);
            let moments = p
                .iter_mut()
                .zip(g)
                .zip(m[0].iter_mut().zip(v[0].iter_mut()));
            if amsgrad {
                for (((p, &g), (m, v)), max) in moments.zip(vmax[0].iter_mut()) {
                    s.moments(*p, g, m, v);
                    *max = nan_max(*max, *v);
                    s.apply(p, *m, *max);
                }
            } else {
                for ((p, &g), (m, v)) in moments {
                    s.moments(*p, g, m, v);
                    s.apply(p, *m, *v);
                }
            }
        });
    }

    fn set_lr(&mut self, lr: f32) {
        if non_negative(self.op, "lr", lr).is_err() {
            invalid_lr(self.op, lr);
        }
        self.config.lr = lr;
    }

    fn load_state(&mut self, state: OptimizerState) -> Result<(), OptimError> {
        self.config.lr = self.slots.import(self.op, state)?;
        Ok(())
    }
}

/// The `f32` scalars of one parameter's update.
#[derive(Debug, Clone, Copy)]
struct Scalars {
    beta2: f32,
    lerp_weight: f32,
    sq_weight: f32,
    l2: f32,
    eps: f32,
    step_size: f32,
    bc2_sqrt: f32,
}

impl Scalars {
    /// `m = lerp(m, g, 1 - b1)`, `v = b2 v + (1 - b2) g^2`, with the L2 term in `g` for Adam.
    #[inline(always)]
    fn moments(&self, p: f32, g: f32, m: &mut f32, v: &mut f32) {
        let g = if self.l2 != 0.0 { g + self.l2 * p } else { g };
        *m = lerp(*m, g, self.lerp_weight);
        *v = *v * self.beta2 + self.sq_weight * g * g;
    }

    /// `p -= (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps)`, grouped as PyTorch's
    /// `addcdiv_`.
    #[inline(always)]
    fn apply(&self, p: &mut f32, m: f32, second: f32) {
        let denom = second.sqrt() / self.bc2_sqrt + self.eps;
        *p += (-self.step_size * m) / denom;
    }
}

/// `torch.lerp`'s formula, which switches form at weight 0.5 to stay exact at both ends.
#[inline(always)]
fn lerp(start: f32, end: f32, weight: f32) -> f32 {
    if weight.abs() < 0.5 {
        start + weight * (end - start)
    } else {
        end - (end - start) * (1.0 - weight)
    }
}

/// `torch.maximum`: NaN if either side is NaN (`f32::max` would drop it).
#[inline(always)]
fn nan_max(a: f32, b: f32) -> f32 {
    if a.is_nan() || b.is_nan() {
        f32::NAN
    } else {
        a.max(b)
    }
}

/// Adam, exactly `torch.optim.Adam`'s update with L2 weight decay. For each parameter `p` with
/// gradient `g`, at its `t`-th update (moments start at zero):
///
/// ```text
/// g = g + wd * p                                     (if wd != 0)
/// m = b1 * m + (1 - b1) * g
/// v = b2 * v + (1 - b2) * g^2
/// v_max = max(v_max, v); use v_max for v below       (AMSGrad only)
/// p = p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
/// ```
///
/// i.e. `p -= lr * m_hat / (sqrt(v_hat) + eps)` with `m_hat = m / (1 - b1^t)` and
/// `v_hat = v / (1 - b2^t)`, grouped as PyTorch groups it.
///
/// Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015,
/// <https://arxiv.org/abs/1412.6980>; AMSGrad from Reddi, Kale & Kumar, "On the Convergence of
/// Adam and Beyond", ICLR 2018, <https://openreview.net/forum?id=ryQu7f-RZ>.
///
/// Deviations from PyTorch: one parameter group; no `maximize`, `foreach`, `fused`,
/// `capturable` or `differentiable` options; hyper-parameters are `f32` (so `0.9` means
/// `0.9f32`), while the bias corrections are computed in `f64` as PyTorch's Python floats are;
/// parameters with `requires_grad == false` are skipped where PyTorch skips those whose `grad` is
/// `None`. Elementwise arithmetic is plain `f32` without fused multiply-add, so results can
/// differ from PyTorch's vectorised kernels in the last bit.
///
/// # Examples
/// ```
/// use ganglion_autograd::Param;
/// use ganglion_optim::{Adam, AdamConfig, Optimizer};
/// use ganglion_tensor::Tensor;
///
/// let w = Param::new(Tensor::new(&[1], vec![1.0])?);
/// let mut opt = Adam::new(vec![w.clone()], AdamConfig { lr: 0.1, ..AdamConfig::default() })?;
/// w.write().grad.data_mut()[0] = 4.0;
/// opt.step();
/// // The first bias-corrected step moves by about lr, whatever the gradient's scale.
/// assert!((w.value().data()[0] - 0.9).abs() < 1e-6);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Adam(AdamCore);

/// AdamW, exactly `torch.optim.AdamW`'s update: [`Adam`]'s with the L2 term replaced by a
/// decoupled shrinkage applied first,
///
/// ```text
/// p = p * (1 - lr * wd)                              (if wd != 0)
/// ```
///
/// followed by Adam's update with `wd = 0`. Build it with [`AdamConfig::adamw`] for PyTorch's
/// defaults (`weight_decay = 0.01`).
///
/// Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019,
/// <https://arxiv.org/abs/1711.05101>. PyTorch scales the decay by the learning rate
/// (`lr * wd`), unlike the paper's separate schedule multiplier; this follows PyTorch. Other
/// deviations from PyTorch are [`Adam`]'s.
///
/// # Examples
/// ```
/// use ganglion_autograd::Param;
/// use ganglion_optim::{AdamConfig, AdamW, Optimizer};
/// use ganglion_tensor::Tensor;
///
/// let w = Param::new(Tensor::new(&[1], vec![2.0])?);
/// let config = AdamConfig { lr: 0.5, weight_decay: 0.5, ..AdamConfig::adamw() };
/// let mut opt = AdamW::new(vec![w.clone()], config)?;
/// opt.step();
/// // A zero gradient leaves only the decay: 2 * (1 - 0.5 * 0.5).
/// assert_eq!(w.value().data(), &[1.5]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct AdamW(AdamCore);

impl Adam {
    /// An optimizer over `params` (like `torch.optim.Adam(model.parameters(), ...)`).
    ///
    /// # Errors
    /// Those of [`AdamConfig::validate`], and [`OptimError::DuplicateParam`] when a handle
    /// appears twice.
    pub fn new(params: Vec<Param>, config: AdamConfig) -> Result<Self, OptimError> {
        AdamCore::new("adam", false, params, config).map(Self)
    }
}

impl AdamW {
    /// An optimizer over `params` (like `torch.optim.AdamW(model.parameters(), ...)`).
    ///
    /// # Errors
    /// Those of [`AdamConfig::validate`] (naming `adamw`), and [`OptimError::DuplicateParam`]
    /// when a handle appears twice.
    pub fn new(params: Vec<Param>, config: AdamConfig) -> Result<Self, OptimError> {
        AdamCore::new("adamw", true, params, config).map(Self)
    }
}

/// Implements the shared accessors and [`Optimizer`] for a wrapper around [`AdamCore`].
macro_rules! delegate_to_core {
    ($name:ident) => {
        impl $name {
            /// The hyper-parameters (with the current learning rate).
            pub fn config(&self) -> &AdamConfig {
                &self.0.config
            }
        }

        impl Optimizer for $name {
            fn step(&mut self) {
                self.0.step();
            }

            fn lr(&self) -> f32 {
                self.0.config.lr
            }

            fn set_lr(&mut self, lr: f32) {
                self.0.set_lr(lr);
            }

            fn params(&self) -> &[Param] {
                &self.0.slots.params
            }

            fn step_count(&self) -> u64 {
                self.0.slots.step
            }

            fn state(&self) -> OptimizerState {
                self.0.slots.export(self.0.op, self.0.config.lr)
            }

            fn load_state(&mut self, state: OptimizerState) -> Result<(), OptimError> {
                self.0.load_state(state)
            }
        }
    };
}

delegate_to_core!(Adam);
delegate_to_core!(AdamW);
