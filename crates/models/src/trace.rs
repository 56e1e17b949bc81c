//! [`TraceEvent`]: what [`crate::Module::forward_traced`] reports for each module it runs, so
//! a caller can read every layer's output (feature maps, output shapes) of one forward pass.

use ganglion_autograd::Var;
use ganglion_tensor::Tensor;

/// One module's output during a traced forward pass.
///
/// Containers report their children first, then themselves, so events come in the order the
/// outputs are produced. A container whose output is its last child's output reports the same
/// [`TraceEvent::var`] again; compare vars to skip the repeat.
#[derive(Debug, Clone, Copy)]
pub struct TraceEvent<'a> {
    /// Dotted name of the module in the model (`conv1`, `layer1.0.conv2`; empty for the
    /// module the trace was started on).
    pub name: &'a str,
    /// The module's type name ([`crate::Module::kind`]).
    pub kind: &'a str,
    /// The output's node in the graph.
    pub var: Var,
    /// The output's value (with the batch dimension).
    pub value: &'a Tensor,
}

/// The callback [`crate::Module::forward_traced`] calls once per module run.
pub type Recorder<'r> = dyn FnMut(TraceEvent<'_>) + 'r;
