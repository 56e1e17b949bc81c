//! The [`Module`] trait: a layer or a model with a forward pass, named parameters and buffers
//! (PyTorch's `state_dict` names) and a train/eval mode.

use crate::ModelError;
use crate::summary::{Geometry, Summary};
use crate::trace::{Recorder, TraceEvent};
use ganglion_autograd::{Graph, Param, Var};
use ganglion_tensor::Tensor;
use std::sync::atomic::{AtomicI64, Ordering};

/// One piece of a module's state, as [`Module::visit`] reports it.
#[derive(Debug, Clone, Copy)]
pub enum Entry<'a> {
    /// A trainable parameter (`conv1.weight`).
    Param(&'a Param),
    /// A tensor saved with the model but not trained (`bn1.running_mean`).
    Buffer(&'a Param),
    /// An integer counter saved with the model (`bn1.num_batches_tracked`, an `i64` scalar).
    Counter(&'a AtomicI64),
}

impl Entry<'_> {
    /// The shape the entry has in a state dict (`[]` for a counter, as PyTorch saves it).
    pub fn shape(&self) -> Vec<usize> {
        match self {
            Entry::Param(p) | Entry::Buffer(p) => p.shape(),
            Entry::Counter(_) => Vec::new(),
        }
    }
}

/// `prefix.name`, or `name` alone at the top level (PyTorch's dotted state-dict names).
pub fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// A layer or a model: a forward pass over a [`Graph`], named state and a train/eval mode.
///
/// Modules own their [`Param`]s (shared handles): a forward pass copies them into the graph,
/// backward accumulates into their gradients and optimizers update them in place, so a module
/// is used through `&self` everywhere but [`Module::set_training`]. The trait is object safe;
/// containers hold `Box<dyn Module>`.
///
/// Names follow PyTorch: a child named `layer1` holding a child `0` holding a `BatchNorm2d`
/// named `bn1` reports `layer1.0.bn1.weight`, `layer1.0.bn1.running_mean`, ...
pub trait Module: Send + Sync {
    /// Runs the module on `x`, recording on `g` when it records.
    ///
    /// # Errors
    /// [`ModelError::Autograd`] or [`ModelError::Layer`] (naming the layer) when an operation
    /// rejects the input's shape.
    fn forward(&self, g: &mut Graph, x: Var) -> Result<Var, ModelError>;

    /// Calls `v` with the full dotted name of every parameter, buffer and counter, in the
    /// order of PyTorch's `state_dict`, each name prefixed with `prefix` (empty at the top).
    fn visit<'a>(&'a self, prefix: &str, v: &mut dyn FnMut(&str, Entry<'a>));

    /// Switches training mode on (the default) or off (evaluation), recursively: in training
    /// mode dropout drops and batch normalisation uses and updates batch statistics.
    fn set_training(&mut self, on: bool);

    /// Whether the module is in training mode.
    fn is_training(&self) -> bool;

    /// The layer's type name, as PyTorch prints it (`Conv2d`, `BatchNorm2d`, `Sequential`).
    fn kind(&self) -> &str;

    /// The type name with the hyper-parameters, like PyTorch's `repr`
    /// (`Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2))`).
    fn describe(&self) -> String {
        self.kind().to_string()
    }

    /// The direct children with their names (empty for a leaf layer).
    fn children(&self) -> Vec<(&str, &dyn Module)> {
        Vec::new()
    }

    /// A leaf layer's footprint and cost, for [`Module::summary`]; the default (pointwise,
    /// no multiply-accumulates) fits elementwise layers. Containers are described by their
    /// children, in order.
    fn geometry(&self) -> Geometry {
        Geometry::POINTWISE
    }

    /// Runs the module as [`Module::forward`] does and reports each module it runs to
    /// `record`, named `prefix` joined with the child names: containers report their
    /// children, then themselves; the default reports the module alone.
    ///
    /// # Errors
    /// As [`Module::forward`].
    fn forward_traced(
        &self,
        g: &mut Graph,
        x: Var,
        prefix: &str,
        record: &mut Recorder<'_>,
    ) -> Result<Var, ModelError> {
        let y = self.forward(g, x)?;
        record(TraceEvent {
            name: prefix,
            kind: self.kind(),
            var: y,
            value: g.value(y),
        });
        Ok(y)
    }

    /// The model layer by layer for input items of shape `input` (`[C, H, W]`, no batch
    /// dimension): output shapes, parameters, multiply-accumulates and receptive fields, with
    /// totals. It runs one forward pass on zeros and restores every buffer and counter after
    /// it, so the model is left unchanged.
    ///
    /// # Errors
    /// [`ModelError::Config`] for an empty shape or one with a zero; the forward pass's error,
    /// naming the layer, when the model rejects the input.
    fn summary(&self, input: &[usize]) -> Result<Summary, ModelError> {
        crate::summary::summarize(self, input)
    }

    /// The shape `[C, H, W]` of one input item, for models that know it (zoo models).
    fn input_shape(&self) -> Option<&[usize]> {
        None
    }

    /// The number of classes of a classifier, for models that know it.
    fn num_classes(&self) -> Option<usize> {
        None
    }

    /// The zoo name of the architecture (`lenet5`), for zoo models.
    fn architecture(&self) -> Option<&str> {
        None
    }

    /// The trainable parameters, in state-dict order (what an optimizer updates).
    fn parameters(&self) -> Vec<Param> {
        self.named_parameters()
            .into_iter()
            .map(|(_, p)| p)
            .collect()
    }

    /// The trainable parameters with their dotted names.
    fn named_parameters(&self) -> Vec<(String, Param)> {
        let mut out = Vec::new();
        self.visit("", &mut |name, e| {
            if let Entry::Param(p) = e {
                out.push((name.to_string(), p.clone()));
            }
        });
        out
    }

    /// The buffers (running statistics) with their dotted names; counters are not included.
    fn named_buffers(&self) -> Vec<(String, Param)> {
        let mut out = Vec::new();
        self.visit("", &mut |name, e| {
            if let Entry::Buffer(p) = e {
                out.push((name.to_string(), p.clone()));
            }
        });
        out
    }

    /// Every state-dict entry (parameters, buffers, counters) with its dotted name, in order.
    fn state_entries(&self) -> Vec<(String, Entry<'_>)> {
        let mut out = Vec::new();
        self.visit("", &mut |name, e| out.push((name.to_string(), e)));
        out
    }

    /// Every state-dict name (parameters, buffers, counters) with its shape, in order.
    fn state_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let mut out = Vec::new();
        self.visit("", &mut |name, e| out.push((name.to_string(), e.shape())));
        out
    }

    /// Number of trainable elements (what PyTorch's `sum(p.numel() for p in parameters())`
    /// counts).
    fn num_parameters(&self) -> usize {
        let mut n = 0;
        self.visit("", &mut |_, e| {
            if let Entry::Param(p) = e {
                n += p.len();
            }
        });
        n
    }

    /// Sets every parameter's gradient to zero.
    fn zero_grad(&self) {
        self.visit("", &mut |_, e| {
            if let Entry::Param(p) = e {
                p.zero_grad();
            }
        });
    }

    /// Runs the module on one tensor in a fresh inference graph (nothing recorded for
    /// backward) and returns the output. The mode is the module's own: call
    /// `set_training(false)` first for evaluation.
    ///
    /// # Errors
    /// As [`Module::forward`].
    fn infer(&self, input: Tensor) -> Result<Tensor, ModelError> {
        let mut g = Graph::inference();
        let x = g.input(input);
        let y = self.forward(&mut g, x)?;
        Ok(g.value(y).clone())
    }
}

/// Reads a counter (`num_batches_tracked`).
pub(crate) fn counter_value(c: &AtomicI64) -> i64 {
    c.load(Ordering::Relaxed)
}

/// Sets a counter (`num_batches_tracked`).
pub(crate) fn set_counter(c: &AtomicI64, v: i64) {
    c.store(v, Ordering::Relaxed);
}
