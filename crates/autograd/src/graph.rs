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

/// One entry of the tape: a value, how it was made, and whether any gradient flows to it.
#[derive(Debug)]
pub(crate) struct Node {
    pub(crate) value: Tensor,
    pub(crate) op: Op,
    /// Whether some leaf that wants a gradient (a trainable param or a variable) lies upstream.
    pub(crate) requires_grad: bool,
}

/// Whether a graph records backward information.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Record,
    Inference,
}

/// The tape: nodes in creation order, their gradients after [`Graph::backward`], a pool of
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
            self.pool.give(node.value);
            node.op.recycle(&mut self.pool);
        }
        for g in self.grads.drain(..).flatten() {
            self.pool.give(g);
        }
        self.epoch = next_epoch();
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
    /// Panics if `v` does not belong to this graph or was recorded before the last reset.
    pub fn value(&self, v: Var) -> &Tensor {
        match self.index("value", v) {
            Ok(i) => &self.nodes[i].value,
            Err(e) => panic!("{e}"),
        }
    }

    /// The shape of a node's value.
    ///
    /// # Panics
    /// As [`Graph::value`].
    pub fn shape(&self, v: Var) -> &[usize] {
        self.value(v).shape()
    }

    /// The gradient of the last [`Graph::backward`]'s loss with respect to a node: `None` if
    /// backward has not run since the node was recorded, or did not reach it (a constant, or a
    /// node the loss does not depend on).
    ///
    /// # Panics
    /// As [`Graph::value`].
    pub fn grad(&self, v: Var) -> Option<&Tensor> {
        match self.index("grad", v) {
            Ok(i) => self.grads.get(i).and_then(Option::as_ref),
            Err(e) => panic!("{e}"),
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
        self.push_node(Node {
            value,
            op: if recording { op } else { Op::Input },
            requires_grad: recording && requires_grad,
        })
    }

    /// Appends an op's output. In inference mode the op's saved state goes straight back to
    /// the pool and only the value is kept.
    pub(crate) fn push(&mut self, value: Tensor, op: Op) -> Var {
        if !self.is_recording() {
            op.recycle(&mut self.pool);
            return self.push_node(Node {
                value,
                op: Op::Input,
                requires_grad: false,
            });
        }
        let mut requires_grad = false;
        op.for_each_input(|i| requires_grad |= self.nodes[i].requires_grad);
        self.push_node(Node {
            value,
            op,
            requires_grad,
        })
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
        let loss = self.index("backward", loss)?;
        let loss_shape = self.nodes[loss].value.shape();
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
            if !self.nodes[i].requires_grad {
                continue;
            }
            // Take this node's gradient out while its rule writes into the inputs' slots
            // (all at smaller indices), then put it back for `grad()`.
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
            self.nodes[i].op.backward(&mut ctx, i, &g);
            self.grads[i] = Some(g);
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
    /// The forward value of node `i` (borrowed from the tape, not from `self`).
    pub(crate) fn value(&self, i: usize) -> &'a Tensor {
        &self.nodes[i].value
    }

    /// Whether node `i` wants a gradient.
    pub(crate) fn needs(&self, i: usize) -> bool {
        self.nodes[i].requires_grad
    }

    /// A buffer shaped like node `i` for its gradient contribution, or `None` when node `i`
    /// needs no gradient (the rule then skips the work).
    pub(crate) fn out(&mut self, i: usize) -> Option<Tensor> {
        self.needs(i)
            .then(|| self.pool.take(self.nodes[i].value.shape()))
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
