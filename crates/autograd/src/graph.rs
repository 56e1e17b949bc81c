//! [`Graph`] (the tape), [`Var`] (a handle to one of its nodes), leaves, reset and the
//! backward driver.

use crate::op::Op;
use crate::pool::BufferPool;
use crate::{AutogradError, Param};
use ganglion_im2col_conv::{ConvWorkspace, GemmWorkspace};
use ganglion_tensor::{Rng, Tensor, numel, ops::add_assign};
use std::sync::atomic::{AtomicU32, Ordering};

/// Source of graph epochs: every graph, and every reset of a graph, takes a fresh one, so a
/// [`Var`] from another graph or from before a reset is recognised instead of silently reading
/// an unrelated node.
static NEXT_EPOCH: AtomicU32 = AtomicU32::new(1);

fn next_epoch() -> u32 {
    NEXT_EPOCH.fetch_add(1, Ordering::Relaxed)
}

/// A handle to a node of a [`Graph`]: cheap to copy, valid until the graph's next reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Var {
    index: u32,
    epoch: u32,
}

impl Var {
    /// The node's position on the tape (creation order).
    pub fn index(self) -> usize {
        self.index as usize
    }
}

/// Where a node's value lives.
#[derive(Debug)]
enum Slot {
    /// The node owns its value.
    Live(Tensor),
    /// An in-place op moved the buffer to node `by` (same shape) and overwrote it.
    Overwritten { by: u32 },
}

/// One entry of the tape: a value, how it was made, and whether any gradient flows to it.
#[derive(Debug)]
pub(crate) struct Node {
    slot: Slot,
    pub(crate) op: Op,
    /// Whether some leaf that wants a gradient (a trainable param or a variable) lies upstream.
    pub(crate) requires_grad: bool,
    /// Whether a recorded backward rule reads this node's value: an in-place op must then
    /// leave it alone.
    saved: bool,
}

impl Node {
    fn new(value: Tensor, op: Op, requires_grad: bool) -> Self {
        Self {
            slot: Slot::Live(value),
            op,
            requires_grad,
            saved: false,
        }
    }

    /// The node's value.
    ///
    /// # Panics
    /// If an in-place op overwrote it. Ops check their operands with [`Graph::operand`] and
    /// in-place ops never take a value a backward rule reads, so this is an internal
    /// invariant, not a condition user code can meet.
    pub(crate) fn value(&self) -> &Tensor {
        match &self.slot {
            Slot::Live(t) => t,
            Slot::Overwritten { by } => {
                panic!("graph: read a value that node #{by} overwrote in place")
            }
        }
    }

    /// The node that overwrote this one's value in place, if any.
    fn overwritten_by(&self) -> Option<usize> {
        match self.slot {
            Slot::Live(_) => None,
            Slot::Overwritten { by } => Some(by as usize),
        }
    }
}

/// The shape of node `i`'s value, also after an in-place op took it over: in-place ops keep
/// the shape, so the node that now holds the buffer has it.
pub(crate) fn shape_of(nodes: &[Node], mut i: usize) -> &[usize] {
    loop {
        match &nodes[i].slot {
            Slot::Live(t) => return t.shape(),
            Slot::Overwritten { by } => i = *by as usize,
        }
    }
}

/// Whether a graph records backward information.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Record,
    Inference,
}

/// The tape: nodes in creation order, the gradients [`Graph::backward`] keeps, a pool of
/// recycled buffers and the kernels' scratch space.
///
/// Differentiable ops are methods (`conv2d`, `linear`, `relu`, ...) that append a node and
/// return its [`Var`]; see the crate documentation for the design.
#[derive(Debug)]
pub struct Graph {
    pub(crate) nodes: Vec<Node>,
    pub(crate) grads: Vec<Option<Tensor>>,
    pub(crate) pool: BufferPool,
    pub(crate) conv_ws: ConvWorkspace,
    /// Packing buffers of the linear and matmul products.
    pub(crate) gemm_ws: GemmWorkspace,
    pub(crate) rng: Rng,
    mode: Mode,
    epoch: u32,
    /// Whether backward keeps the gradients of intermediate nodes (see
    /// [`Graph::set_retain_grads`]).
    retain_grads: bool,
}

impl Default for Graph {
    fn default() -> Self {
        Self::new()
    }
}

impl Graph {
    fn with_mode(mode: Mode) -> Self {
        Self {
            nodes: Vec::new(),
            grads: Vec::new(),
            pool: BufferPool::default(),
            conv_ws: ConvWorkspace::default(),
            gemm_ws: GemmWorkspace::default(),
            rng: Rng::seed_from(0),
            mode,
            epoch: next_epoch(),
            retain_grads: false,
        }
    }

    /// A graph that records what backward needs; its random generator is seeded with 0.
    pub fn new() -> Self {
        Self::with_mode(Mode::Record)
    }

    /// A no-grad graph: ops compute values and record nothing for backward, so
    /// [`Graph::backward`] is an error. Ops behave otherwise as in a recording graph (dropout
    /// still drops, train-mode batch norm still updates running statistics), as under PyTorch's
    /// `torch.no_grad()`.
    pub fn inference() -> Self {
        Self::with_mode(Mode::Inference)
    }

    /// Whether this graph records backward information (`false` for [`Graph::inference`]).
    pub fn is_recording(&self) -> bool {
        self.mode == Mode::Record
    }

    /// Drops every node, keeping their buffers for reuse, together with the kernel
    /// workspaces and the random generator's state. Vars recorded before are invalid after.
    pub fn reset(&mut self) {
        for node in self.nodes.drain(..) {
            // An overwritten node's buffer belongs to the node that overwrote it.
            if let Slot::Live(t) = node.slot {
                self.pool.give(t);
            }
            node.op.recycle(&mut self.pool);
        }
        for g in self.grads.drain(..).flatten() {
            self.pool.give(g);
        }
        self.epoch = next_epoch();
    }

    /// Whether [`Graph::backward`] keeps the gradient of every node it reaches (`true`) or,
    /// as by default and as PyTorch does, only those of leaves ([`Graph::variable`],
    /// [`Graph::param`]), giving each intermediate node's gradient back to the pool as soon
    /// as its backward rule has used it. Keeping them all costs as much memory again as the
    /// values; turn it on to inspect intermediate gradients. Stays set across resets.
    pub fn set_retain_grads(&mut self, on: bool) {
        self.retain_grads = on;
    }

    /// Whether intermediate gradients are kept (see [`Graph::set_retain_grads`]).
    pub fn retains_grads(&self) -> bool {
        self.retain_grads
    }

    /// Seeds the graph's random generator (used by dropout).
    pub fn set_seed(&mut self, seed: u64) {
        self.rng = Rng::seed_from(seed);
    }

    /// The graph's random generator.
    pub fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }

    /// Number of nodes recorded since the last reset.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether no node has been recorded since the last reset.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// How many buffer requests since the graph was made found no recycled buffer of the
    /// right length and allocated one. In a loop that rebuilds the same graph after each
    /// [`Graph::reset`], it stops growing after the first step.
    pub fn pool_misses(&self) -> u64 {
        self.pool.misses()
    }

    /// Number of free buffers waiting in the pool.
    pub fn pooled_buffers(&self) -> usize {
        self.pool.free_buffers()
    }

    /// `f32` elements held by the free pooled buffers (after [`Graph::reset`], all the
    /// tensor storage the graph keeps for the next step).
    pub fn pooled_floats(&self) -> usize {
        self.pool.free_floats()
    }

    /// Frees the pooled buffers (after a change of batch size, for instance); nodes recorded
    /// since the last reset are untouched.
    pub fn clear_pool(&mut self) {
        self.pool.clear();
    }

    /// A constant leaf: no gradient is computed for it.
    pub fn input(&mut self, t: Tensor) -> Var {
        self.push_leaf(t, Op::Input, false)
    }

    /// A constant leaf holding a copy of `data` (in a pooled buffer).
    ///
    /// # Errors
    /// [`AutogradError::Tensor`] when `data.len()` is not the product of `shape`.
    pub fn input_from(&mut self, shape: &[usize], data: &[f32]) -> Result<Var, AutogradError> {
        use ganglion_tensor::TensorError;
        match shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)) {
            None => {
                return Err(TensorError::Overflow {
                    shape: shape.to_vec(),
                }
                .into());
            }
            Some(expected) if expected != data.len() => {
                return Err(TensorError::LengthMismatch {
                    shape: shape.to_vec(),
                    expected,
                    actual: data.len(),
                }
                .into());
            }
            Some(_) => {}
        }
        let mut t = self.pool.take(shape);
        t.data_mut().copy_from_slice(data);
        Ok(self.push_leaf(t, Op::Input, false))
    }

    /// A leaf whose gradient is computed and kept in the graph (read it with
    /// [`Graph::grad`]) without belonging to a [`Param`]: for gradient checks and for
    /// gradients with respect to inputs (saliency maps).
    pub fn variable(&mut self, t: Tensor) -> Var {
        self.push_leaf(t, Op::Variable, true)
    }

    /// A leaf holding a copy of the parameter's current value; [`Graph::backward`] adds the
    /// gradient into the parameter's `grad` if it `requires_grad`.
    pub fn param(&mut self, p: &Param) -> Var {
        let (t, requires_grad) = {
            let data = p.read();
            (self.pool.take_copy(&data.value), data.requires_grad)
        };
        let op = Op::Param(p.clone());
        self.push_leaf(t, op, requires_grad)
    }

    /// The value of a node.
    ///
    /// # Panics
    /// Panics if `v` does not belong to this graph, was recorded before the last reset, or
    /// was overwritten by an in-place op (the message names the node and the op);
    /// [`Graph::try_value`] returns these as errors.
    pub fn value(&self, v: Var) -> &Tensor {
        match self.try_value(v) {
            Ok(t) => t,
            Err(e) => panic!("{e}"),
        }
    }

    /// The value of a node, or why it cannot be read.
    ///
    /// # Errors
    /// [`AutogradError::UnknownVar`] for a var of another graph or from before the last
    /// reset; [`AutogradError::Overwritten`] naming the node and the in-place op that
    /// overwrote it.
    pub fn try_value(&self, v: Var) -> Result<&Tensor, AutogradError> {
        let i = self.operand("value", v)?;
        Ok(self.nodes[i].value())
    }

    /// Whether an in-place op ([`Graph::relu_inplace`], [`Graph::add_inplace`]) overwrote
    /// the node's value.
    ///
    /// # Panics
    /// As [`Graph::shape`].
    pub fn is_overwritten(&self, v: Var) -> bool {
        match self.index("is_overwritten", v) {
            Ok(i) => self.nodes[i].overwritten_by().is_some(),
            Err(e) => panic!("{e}"),
        }
    }

    /// The shape of a node's value (known also after an in-place op overwrote it).
    ///
    /// # Panics
    /// Panics if `v` does not belong to this graph or was recorded before the last reset.
    pub fn shape(&self, v: Var) -> &[usize] {
        match self.index("shape", v) {
            Ok(i) => shape_of(&self.nodes, i),
            Err(e) => panic!("{e}"),
        }
    }

    /// The gradient of the last [`Graph::backward`]'s loss with respect to a node: `None` if
    /// backward has not run since the node was recorded, or did not reach it (a constant, or a
    /// node the loss does not depend on).
    ///
    /// Gradients of leaves ([`Graph::variable`], [`Graph::param`]) are kept until the next
    /// backward or reset. Those of intermediate nodes (op results, the loss included) are
    /// released during backward, as in PyTorch, and read `None` here unless
    /// [`Graph::set_retain_grads`] asked to keep them.
    ///
    /// # Panics
    /// As [`Graph::shape`].
    pub fn grad(&self, v: Var) -> Option<&Tensor> {
        match self.index("grad", v) {
            Ok(i) => self.grads.get(i).and_then(Option::as_ref),
            Err(e) => panic!("{e}"),
        }
    }

    /// The tape index of `v` for an op that reads its value: checked to belong to this
    /// graph's current epoch and not to have been overwritten in place.
    pub(crate) fn operand(&self, op: &'static str, v: Var) -> Result<usize, AutogradError> {
        let i = self.index(op, v)?;
        match self.nodes[i].overwritten_by() {
            None => Ok(i),
            Some(by) => Err(AutogradError::Overwritten {
                op,
                index: i,
                made_by: self.nodes[i].op.name(),
                by,
                by_op: self.nodes[by].op.name(),
            }),
        }
    }

    /// The tape index of `v`, checked to belong to this graph's current epoch.
    pub(crate) fn index(&self, op: &'static str, v: Var) -> Result<usize, AutogradError> {
        let i = v.index();
        if v.epoch != self.epoch || i >= self.nodes.len() {
            return Err(AutogradError::UnknownVar {
                op,
                index: i,
                len: self.nodes.len(),
            });
        }
        Ok(i)
    }

    fn push_leaf(&mut self, value: Tensor, op: Op, requires_grad: bool) -> Var {
        let recording = self.is_recording();
        let op = if recording { op } else { Op::Input };
        self.push_node(Node::new(value, op, recording && requires_grad))
    }

    /// Appends an op's output. In inference mode the op's saved state goes straight back to
    /// the pool and only the value is kept. When the node will be differentiated, the nodes
    /// whose values its rule reads are marked as saved, so no in-place op overwrites them.
    pub(crate) fn push(&mut self, value: Tensor, op: Op) -> Var {
        if !self.is_recording() {
            op.recycle(&mut self.pool);
            return self.push_node(Node::new(value, Op::Input, false));
        }
        let mut requires_grad = false;
        op.for_each_input(|i| requires_grad |= self.nodes[i].requires_grad);
        let mut node = Node::new(value, op, requires_grad);
        if requires_grad {
            let this = self.nodes.len();
            node.op.for_each_saved(this, |i| {
                if i == this {
                    node.saved = true;
                } else {
                    self.nodes[i].saved = true;
                }
            });
        }
        self.push_node(node)
    }

    /// The buffer of node `i` for an in-place op whose result will be the next node, or
    /// `None` when a recorded backward rule still needs the value (the op then works out of
    /// place). Node `i` is marked as overwritten by the next node: the caller must push its
    /// result right away.
    pub(crate) fn take_for_inplace(&mut self, i: usize) -> Option<Tensor> {
        if self.nodes[i].saved {
            return None;
        }
        let by = u32::try_from(self.nodes.len()).expect("graph: more than u32::MAX nodes");
        match std::mem::replace(&mut self.nodes[i].slot, Slot::Overwritten { by }) {
            Slot::Live(t) => Some(t),
            // Operands are checked live before this is called.
            Slot::Overwritten { .. } => unreachable!("graph: node #{i} was already overwritten"),
        }
    }

    fn push_node(&mut self, node: Node) -> Var {
        let index = u32::try_from(self.nodes.len()).expect("graph: more than u32::MAX nodes");
        self.nodes.push(node);
        Var {
            index,
            epoch: self.epoch,
        }
    }

    /// Back-propagates from `loss`: seeds `d loss / d loss = 1`, runs every op's rule from
    /// `loss` back to the first node (creation order is a topological order), and finally adds
    /// each trainable parameter leaf's gradient into its [`Param`]. Gradients of the previous
    /// backward are discarded first; calling it twice adds twice into the parameters.
    ///
    /// # Errors
    /// [`AutogradError::InferenceMode`] for an inference graph, [`AutogradError::UnknownVar`]
    /// for a foreign var, [`AutogradError::NonScalarLoss`] when `loss` has more than one
    /// element.
    pub fn backward(&mut self, loss: Var) -> Result<(), AutogradError> {
        if !self.is_recording() {
            return Err(AutogradError::InferenceMode);
        }
        let loss = self.operand("backward", loss)?;
        let loss_shape = self.nodes[loss].value().shape();
        if numel(loss_shape) != 1 {
            return Err(AutogradError::NonScalarLoss {
                shape: loss_shape.to_vec(),
            });
        }
        for g in self.grads.drain(..).flatten() {
            self.pool.give(g);
        }
        self.grads.resize_with(self.nodes.len(), || None);
        let mut seed = self.pool.take(loss_shape);
        seed.fill(1.0);
        self.grads[loss] = Some(seed);

        for i in (0..=loss).rev() {
            // A leaf has no rule, and keeps its gradient for `grad()` and the parameter update.
            if !self.nodes[i].requires_grad || self.nodes[i].op.is_leaf() {
                continue;
            }
            // Take this node's gradient out while its rule writes into the inputs' slots
            // (all at smaller indices). Every contribution to it came from nodes after it, so
            // it is complete and, once the rule has read it, no longer needed.
            let Some(g) = self.grads[i].take() else {
                continue;
            };
            let mut ctx = Backward {
                nodes: &self.nodes,
                grads: &mut self.grads,
                pool: &mut self.pool,
                conv_ws: &mut self.conv_ws,
                gemm_ws: &mut self.gemm_ws,
            };
            let op = &self.nodes[i].op;
            if self.retain_grads {
                op.backward(&mut ctx, i, &g);
                self.grads[i] = Some(g);
            } else if let Some(g) = op.backward_reusing(&mut ctx, i, g) {
                op.backward(&mut ctx, i, &g);
                self.pool.give(g);
            }
        }

        for (node, g) in self.nodes.iter().zip(&self.grads) {
            if let (Op::Param(p), Some(g)) = (&node.op, g) {
                let mut data = p.write();
                if data.requires_grad && data.grad.shape() == g.shape() {
                    add_assign(data.grad.data_mut(), g.data());
                }
            }
        }
        Ok(())
    }
}

/// What a backward rule sees: the tape's values, the gradient slots of the inputs, the pool
/// and the convolution workspace.
///
/// A rule asks [`Backward::out`] for a buffer shaped like an input, OVERWRITES all of it with
/// that input's gradient contribution, and hands it to [`Backward::commit`], which stores it or
/// adds it to what other consumers of the input already contributed.
pub(crate) struct Backward<'a> {
    nodes: &'a [Node],
    grads: &'a mut [Option<Tensor>],
    pub(crate) pool: &'a mut BufferPool,
    pub(crate) conv_ws: &'a mut ConvWorkspace,
    pub(crate) gemm_ws: &'a mut GemmWorkspace,
}

impl<'a> Backward<'a> {
    /// The forward value of node `i` (borrowed from the tape, not from `self`): only for the
    /// nodes its rule lists in `Op::for_each_saved`, which no in-place op overwrites.
    pub(crate) fn value(&self, i: usize) -> &'a Tensor {
        self.nodes[i].value()
    }

    /// The shape of node `i`'s value (also of an overwritten one).
    pub(crate) fn shape(&self, i: usize) -> &'a [usize] {
        shape_of(self.nodes, i)
    }

    /// Whether node `i` wants a gradient.
    pub(crate) fn needs(&self, i: usize) -> bool {
        self.nodes[i].requires_grad
    }

    /// A buffer shaped like node `i` for its gradient contribution, or `None` when node `i`
    /// needs no gradient (the rule then skips the work).
    pub(crate) fn out(&mut self, i: usize) -> Option<Tensor> {
        self.needs(i)
            .then(|| self.pool.take(shape_of(self.nodes, i)))
    }

    /// Adds a contribution (from [`Backward::out`], fully written) to node `i`'s gradient.
    pub(crate) fn commit(&mut self, i: usize, contribution: Tensor) {
        match &mut self.grads[i] {
            Some(acc) => {
                add_assign(acc.data_mut(), contribution.data());
                self.pool.give(contribution);
            }
            slot @ None => *slot = Some(contribution),
        }
    }

    /// `out` then `commit` around a closure that writes the contribution.
    pub(crate) fn contribute(&mut self, i: usize, f: impl FnOnce(&mut [f32])) {
        if let Some(mut t) = self.out(i) {
            f(t.data_mut());
            self.commit(i, t);
        }
    }
}
