//! The model zoo: [`Network`] (a named architecture with its input shape and class count) and
//! the four built-in architectures, reachable by name through [`by_name`].

mod allconv;
mod lenet;
mod mnistnet;
mod resnet;

pub use allconv::{allconv, allconv_with};
pub use lenet::lenet5;
pub use mnistnet::mnistnet;
pub use resnet::resnet20;

use crate::ModelError;
use crate::layers::Sequential;
use crate::module::{Entry, Module};
use crate::trace::Recorder;
use ganglion_autograd::{Graph, Var};
use ganglion_tensor::Rng;

/// The names [`by_name`] knows, in the order the documentation lists them.
pub const ZOO: &[&str] = &["lenet5", "mnistnet", "allconv", "resnet20"];

/// A complete classifier: a [`Sequential`] body plus what a caller needs to feed it (the
/// shape of one input item) and read it (the number of classes).
///
/// Its state-dict names are the body's, with no extra prefix, so they match PyTorch models
/// whose layers are attributes of the top-level module (`conv1.weight`, `fc.bias`).
#[derive(Debug)]
pub struct Network {
    architecture: String,
    body: Sequential,
    input_shape: Vec<usize>,
    num_classes: usize,
}

impl Network {
    /// A network named `architecture` whose items have shape `input_shape` (`[C, H, W]`)
    /// and whose output has `num_classes` logits.
    pub fn new(
        architecture: &str,
        body: Sequential,
        input_shape: &[usize],
        num_classes: usize,
    ) -> Self {
        Self {
            architecture: architecture.to_string(),
            body,
            input_shape: input_shape.to_vec(),
            num_classes,
        }
    }

    /// The same network declared for another input shape (a fully-convolutional model fed
    /// larger images).
    pub fn with_input_shape(mut self, input_shape: &[usize]) -> Self {
        self.input_shape = input_shape.to_vec();
        self
    }

    /// The layers.
    pub fn body(&self) -> &Sequential {
        &self.body
    }
}

impl Module for Network {
    fn forward(&self, g: &mut Graph, x: Var) -> Result<Var, ModelError> {
        self.body.forward(g, x)
    }

    fn forward_traced(
        &self,
        g: &mut Graph,
        x: Var,
        prefix: &str,
        record: &mut Recorder<'_>,
    ) -> Result<Var, ModelError> {
        self.body.forward_traced(g, x, prefix, record)
    }

    fn visit<'a>(&'a self, prefix: &str, v: &mut dyn FnMut(&str, Entry<'a>)) {
        self.body.visit(prefix, v);
    }

    fn set_training(&mut self, on: bool) {
        self.body.set_training(on);
    }

    fn is_training(&self) -> bool {
        self.body.is_training()
    }

    fn kind(&self) -> &str {
        &self.architecture
    }

    fn children(&self) -> Vec<(&str, &dyn Module)> {
        self.body.children()
    }

    fn input_shape(&self) -> Option<&[usize]> {
        Some(&self.input_shape)
    }

    fn num_classes(&self) -> Option<usize> {
        Some(self.num_classes)
    }

    fn architecture(&self) -> Option<&str> {
        Some(&self.architecture)
    }
}

/// Builds the zoo model called `name` (one of [`ZOO`]) with fresh weights drawn from `rng`.
///
/// # Errors
/// [`ModelError::UnknownModel`] for a name not in [`ZOO`].
pub fn by_name(name: &str, rng: &mut Rng) -> Result<Box<dyn Module>, ModelError> {
    Ok(Box::new(network_by_name(name, rng)?))
}

/// As [`by_name`], returning the concrete [`Network`].
///
/// # Errors
/// [`ModelError::UnknownModel`] for a name not in [`ZOO`].
pub fn network_by_name(name: &str, rng: &mut Rng) -> Result<Network, ModelError> {
    match name {
        "lenet5" => Ok(lenet5(rng)),
        "mnistnet" => Ok(mnistnet(rng)),
        "allconv" => Ok(allconv(rng)),
        "resnet20" => Ok(resnet20(rng)),
        _ => Err(ModelError::UnknownModel {
            name: name.to_string(),
        }),
    }
}

/// The fixed architectures below use only valid layer configurations, so a construction error
/// there is a bug in this crate, not a condition a caller can meet.
pub(crate) fn fixed<T>(r: Result<T, ModelError>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => unreachable!("zoo: a fixed architecture failed to build: {e}"),
    }
}
