//! [`Linear`]: a fully-connected layer `y = x W^T + b`, PyTorch's `nn.Linear`.

use crate::ModelError;
use crate::module::{Entry, Module, join};
use crate::summary::{Footprint, Geometry};
use ganglion_autograd::{Graph, Param, Var};
use ganglion_tensor::{Rng, init};

/// A fully-connected layer: weight `[out, in]`, optional bias `[out]`, input `[n, in]`.
///
/// Initialised as PyTorch does: weight `kaiming_uniform(a = sqrt(5))`
/// (`U(-1/sqrt(in), 1/sqrt(in))`), bias `U(-1/sqrt(in), 1/sqrt(in))`.
#[derive(Debug)]
pub struct Linear {
    weight: Param,
    bias: Option<Param>,
    in_features: usize,
    out_features: usize,
    training: bool,
}

impl Linear {
    /// A layer from `in_features` to `out_features`.
    pub fn new(in_features: usize, out_features: usize, bias: bool, rng: &mut Rng) -> Self {
        let shape = [out_features, in_features];
        let weight = init::kaiming_uniform(&shape, 5f32.sqrt(), rng);
        let bias = bias.then(|| Param::new(init::default_bias(out_features, in_features, rng)));
        Self {
            weight: Param::new(weight),
            bias,
            in_features,
            out_features,
            training: true,
        }
    }

    /// The weight `[out, in]`.
    pub fn weight(&self) -> &Param {
        &self.weight
    }

    /// The bias `[out]`, if the layer has one.
    pub fn bias(&self) -> Option<&Param> {
        self.bias.as_ref()
    }

    /// Input features.
    pub fn in_features(&self) -> usize {
        self.in_features
    }

    /// Output features.
    pub fn out_features(&self) -> usize {
        self.out_features
    }
}

impl Module for Linear {
    fn forward(&self, g: &mut Graph, x: Var) -> Result<Var, ModelError> {
        let w = g.param(&self.weight);
        let b = self.bias.as_ref().map(|b| g.param(b));
        Ok(g.linear(x, w, b)?)
    }

    fn visit<'a>(&'a self, prefix: &str, v: &mut dyn FnMut(&str, Entry<'a>)) {
        v(&join(prefix, "weight"), Entry::Param(&self.weight));
        if let Some(b) = &self.bias {
            v(&join(prefix, "bias"), Entry::Param(b));
        }
    }

    fn set_training(&mut self, on: bool) {
        self.training = on;
    }

    fn is_training(&self) -> bool {
        self.training
    }

    fn kind(&self) -> &str {
        "Linear"
    }

    fn geometry(&self) -> Geometry {
        Geometry {
            footprint: Footprint::Global,
            macs_per_output: self.in_features as u64,
        }
    }

    fn describe(&self) -> String {
        format!(
            "Linear(in_features={}, out_features={}, bias={})",
            self.in_features,
            self.out_features,
            if self.bias.is_some() { "True" } else { "False" }
        )
    }
}
