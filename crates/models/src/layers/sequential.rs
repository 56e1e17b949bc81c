//! [`Sequential`]: children run one after another, named `0`, `1`, ... like `nn.Sequential`
//! or by given names like an `OrderedDict`.

use crate::ModelError;
use crate::module::{Entry, Module, join};
use crate::trace::{Recorder, TraceEvent};
use ganglion_autograd::{Graph, Var};

/// A chain of modules, each fed the previous one's output.
///
/// Children added with [`Sequential::push`] are named by their position (`0`, `1`, ...), as
/// in `nn.Sequential(a, b)`; [`Sequential::push_named`] gives a name, as
/// `nn.Sequential(OrderedDict(...))` does. Names prefix the children's state-dict names.
pub struct Sequential {
    layers: Vec<(String, Box<dyn Module>)>,
    training: bool,
}

impl std::fmt::Debug for Sequential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut list = f.debug_map();
        for (name, layer) in &self.layers {
            list.entry(name, &layer.describe());
        }
        list.finish()
    }
}

impl Default for Sequential {
    fn default() -> Self {
        Self::new()
    }
}

impl Sequential {
    /// An empty chain (the identity), in training mode.
    pub fn new() -> Self {
        Self {
            layers: Vec::new(),
            training: true,
        }
    }

    /// Appends `layer` under its position as name.
    ///
    /// # Panics
    /// Panics if a child was already given that name (see [`Sequential::push_named`]).
    pub fn push(self, layer: impl Module + 'static) -> Self {
        let name = self.layers.len().to_string();
        self.push_named(&name, layer)
    }

    /// Appends `layer` under `name`.
    ///
    /// # Panics
    /// Panics if `name` is empty, contains a `.` or is already taken: state-dict names must be
    /// unique and dots separate levels, as PyTorch requires of submodule names.
    pub fn push_named(mut self, name: &str, layer: impl Module + 'static) -> Self {
        self.add(name, Box::new(layer));
        self
    }

    /// Appends a boxed `layer` under `name` in place.
    ///
    /// # Panics
    /// As [`Sequential::push_named`].
    pub fn add(&mut self, name: &str, mut layer: Box<dyn Module>) {
        assert!(
            !name.is_empty() && !name.contains('.'),
            "Sequential: child name {name:?} must be non-empty and contain no '.'"
        );
        assert!(
            self.layers.iter().all(|(n, _)| n != name),
            "Sequential: a child is already named {name:?}"
        );
        layer.set_training(self.training);
        self.layers.push((name.to_string(), layer));
    }

    /// Number of children.
    pub fn len(&self) -> usize {
        self.layers.len()
    }

    /// Whether there are no children.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// The child named `name`.
    pub fn get(&self, name: &str) -> Option<&dyn Module> {
        self.layers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, l)| l.as_ref())
    }
}

impl Module for Sequential {
    fn forward(&self, g: &mut Graph, x: Var) -> Result<Var, ModelError> {
        let mut x = x;
        for (name, layer) in &self.layers {
            x = layer
                .forward(g, x)
                .map_err(|e| e.in_child(name, layer.kind()))?;
        }
        Ok(x)
    }

    fn forward_traced(
        &self,
        g: &mut Graph,
        x: Var,
        prefix: &str,
        record: &mut Recorder<'_>,
    ) -> Result<Var, ModelError> {
        let mut x = x;
        for (name, layer) in &self.layers {
            x = layer
                .forward_traced(g, x, &join(prefix, name), record)
                .map_err(|e| e.in_child(name, layer.kind()))?;
        }
        record(TraceEvent {
            name: prefix,
            kind: self.kind(),
            var: x,
            value: g.value(x),
        });
        Ok(x)
    }

    fn visit<'a>(&'a self, prefix: &str, v: &mut dyn FnMut(&str, Entry<'a>)) {
        for (name, layer) in &self.layers {
            layer.visit(&join(prefix, name), v);
        }
    }

    fn set_training(&mut self, on: bool) {
        self.training = on;
        for (_, layer) in &mut self.layers {
            layer.set_training(on);
        }
    }

    fn is_training(&self) -> bool {
        self.training
    }

    fn kind(&self) -> &str {
        "Sequential"
    }

    fn children(&self) -> Vec<(&str, &dyn Module)> {
        self.layers
            .iter()
            .map(|(n, l)| (n.as_str(), l.as_ref()))
            .collect()
    }
}
