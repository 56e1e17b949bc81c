//! [`BatchNorm2d`]: batch normalisation over the channels of NCHW inputs, PyTorch's
//! `nn.BatchNorm2d`, with its running statistics and `num_batches_tracked` counter.

use crate::ModelError;
use crate::module::{Entry, Module, join};
use ganglion_autograd::{BatchNormMode, Graph, Param, Var};
use ganglion_tensor::Tensor;
use std::sync::atomic::{AtomicI64, Ordering};

/// Batch normalisation over dimension 1 of `[n, c, h, w]`.
///
/// State as in PyTorch: `weight` (ones) and `bias` (zeros) are trained; `running_mean`
/// (zeros), `running_var` (ones) and `num_batches_tracked` (an `i64`, 0) are buffers. In
/// training mode a forward pass normalises with the batch statistics, moves the running ones
/// by `momentum` (`running = (1 - m) running + m batch`, unbiased variance) and counts the
/// batch; in evaluation mode it normalises with the running statistics and changes nothing.
#[derive(Debug)]
pub struct BatchNorm2d {
    weight: Param,
    bias: Param,
    running_mean: Param,
    running_var: Param,
    num_batches_tracked: AtomicI64,
    num_features: usize,
    eps: f32,
    momentum: f32,
    training: bool,
}

impl BatchNorm2d {
    /// PyTorch's defaults: `eps = 1e-5`, `momentum = 0.1`.
    pub fn new(num_features: usize) -> Self {
        Self::with_options(num_features, 1e-5, 0.1)
    }

    /// With another `eps` and `momentum`.
    pub fn with_options(num_features: usize, eps: f32, momentum: f32) -> Self {
        let c = [num_features];
        Self {
            weight: Param::new(Tensor::ones(&c)),
            bias: Param::new(Tensor::zeros(&c)),
            running_mean: Param::buffer(Tensor::zeros(&c)),
            running_var: Param::buffer(Tensor::ones(&c)),
            num_batches_tracked: AtomicI64::new(0),
            num_features,
            eps,
            momentum,
            training: true,
        }
    }

    /// The scale `[c]`.
    pub fn weight(&self) -> &Param {
        &self.weight
    }

    /// The shift `[c]`.
    pub fn bias(&self) -> &Param {
        &self.bias
    }

    /// The running mean `[c]` (a buffer).
    pub fn running_mean(&self) -> &Param {
        &self.running_mean
    }

    /// The running variance `[c]` (a buffer).
    pub fn running_var(&self) -> &Param {
        &self.running_var
    }

    /// How many training-mode forward passes have updated the running statistics.
    pub fn num_batches_tracked(&self) -> i64 {
        self.num_batches_tracked.load(Ordering::Relaxed)
    }

    /// Channels.
    pub fn num_features(&self) -> usize {
        self.num_features
    }

    /// The epsilon added to the variance.
    pub fn eps(&self) -> f32 {
        self.eps
    }

    /// The running-statistics momentum.
    pub fn momentum(&self) -> f32 {
        self.momentum
    }
}

impl Module for BatchNorm2d {
    fn forward(&self, g: &mut Graph, x: Var) -> Result<Var, ModelError> {
        let w = g.param(&self.weight);
        let b = g.param(&self.bias);
        let mode = if self.training {
            BatchNormMode::Train {
                momentum: self.momentum,
            }
        } else {
            BatchNormMode::Eval
        };
        let y = g.batch_norm2d(
            x,
            w,
            b,
            &self.running_mean,
            &self.running_var,
            mode,
            self.eps,
        )?;
        if self.training {
            // Counted only once the statistics were actually updated, as in PyTorch.
            self.num_batches_tracked.fetch_add(1, Ordering::Relaxed);
        }
        Ok(y)
    }

    fn visit<'a>(&'a self, prefix: &str, v: &mut dyn FnMut(&str, Entry<'a>)) {
        v(&join(prefix, "weight"), Entry::Param(&self.weight));
        v(&join(prefix, "bias"), Entry::Param(&self.bias));
        v(
            &join(prefix, "running_mean"),
            Entry::Buffer(&self.running_mean),
        );
        v(
            &join(prefix, "running_var"),
            Entry::Buffer(&self.running_var),
        );
        v(
            &join(prefix, "num_batches_tracked"),
            Entry::Counter(&self.num_batches_tracked),
        );
    }

    fn set_training(&mut self, on: bool) {
        self.training = on;
    }

    fn is_training(&self) -> bool {
        self.training
    }

    fn kind(&self) -> &str {
        "BatchNorm2d"
    }

    fn describe(&self) -> String {
        format!(
            "BatchNorm2d({}, eps={:e}, momentum={})",
            self.num_features, self.eps, self.momentum
        )
    }
}
