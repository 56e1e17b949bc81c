//! [`Op`]: what each tape node records so that backward can differentiate it, and the
//! dispatch from a node to its backward rule (the rules live beside their forward ops in
//! `ops/`).

use crate::Param;
use crate::graph::Backward;
use crate::ops;
use crate::pool::BufferPool;
use ganglion_im2col_conv::Conv2dShape;
use ganglion_pooling::Pool2dShape;
use ganglion_tensor::Tensor;

/// How a node's value was made: its inputs (tape indices) and whatever its backward rule needs.
///
/// Saved buffers (`argmax`, `mask`, `mean`, ...) come from the graph's pool and go back to it on
/// reset.
#[derive(Debug)]
pub(crate) enum Op {
    /// A constant: an input, or any value computed in inference mode.
    Input,
    /// A leaf whose gradient is kept in the graph only.
    Variable,
    /// A copy of a parameter; backward adds its gradient into the parameter.
    Param(Param),
    Conv2d {
        x: usize,
        w: usize,
        b: Option<usize>,
        shape: Conv2dShape,
    },
    MaxPool2d {
        x: usize,
        shape: Pool2dShape,
        argmax: Vec<u32>,
    },
    AvgPool2d {
        x: usize,
        shape: Pool2dShape,
        count_include_pad: bool,
    },
    GlobalAvgPool2d {
        x: usize,
    },
    Linear {
        x: usize,
        w: usize,
        b: Option<usize>,
    },
    MatMul {
        a: usize,
        b: usize,
    },
    Add {
        a: usize,
        b: usize,
    },
    /// `a + b` with `b` of shape `[C]` broadcast over dim 1 of `a`.
    AddBias {
        a: usize,
        b: usize,
    },
    Sub {
        a: usize,
        b: usize,
    },
    Mul {
        a: usize,
        b: usize,
    },
    Scale {
        x: usize,
        s: f32,
    },
    Relu {
        x: usize,
    },
    LeakyRelu {
        x: usize,
        slope: f32,
    },
    Sigmoid {
        x: usize,
    },
    Tanh {
        x: usize,
    },
    /// Reshape and flatten: the same elements under another shape.
    Reshape {
        x: usize,
    },
    Concat {
        xs: Vec<u32>,
        axis: usize,
    },
    PadChannels {
        x: usize,
        before: usize,
    },
    Subsample {
        x: usize,
        stride: [usize; 2],
    },
    /// `y = x * mask`, the mask holding `0` or `1 / (1 - p)`.
    Dropout {
        x: usize,
        mask: Tensor,
    },
    /// `y = (x - mean) * inv_std * w + b` per channel; `train` says whether `mean`/`inv_std`
    /// are the batch's own statistics (and so depend on `x`).
    BatchNorm {
        x: usize,
        w: usize,
        b: usize,
        mean: Tensor,
        inv_std: Tensor,
        train: bool,
    },
    Softmax {
        x: usize,
    },
    LogSoftmax {
        x: usize,
    },
    /// Fused softmax + cross-entropy: keeps the probabilities and the targets.
    CrossEntropy {
        x: usize,
        probs: Tensor,
        targets: Vec<u32>,
        smoothing: f32,
    },
    Mse {
        a: usize,
        b: usize,
    },
    Sum {
        x: usize,
    },
    Mean {
        x: usize,
    },
}

impl Op {
    /// The op's name as its method spells it, for messages.
    pub(crate) fn name(&self) -> &'static str {
        use Op::*;
        match self {
            Input => "input",
            Variable => "variable",
            Param(_) => "param",
            Conv2d { .. } => "conv2d",
            MaxPool2d { .. } => "max_pool2d",
            AvgPool2d { .. } => "avg_pool2d",
            GlobalAvgPool2d { .. } => "global_avg_pool2d",
            Linear { .. } => "linear",
            MatMul { .. } => "matmul",
            Add { .. } | AddBias { .. } => "add",
            Sub { .. } => "sub",
            Mul { .. } => "mul",
            Scale { .. } => "scale",
            Relu { .. } => "relu",
            LeakyRelu { .. } => "leaky_relu",
            Sigmoid { .. } => "sigmoid",
            Tanh { .. } => "tanh",
            Reshape { .. } => "reshape",
            Concat { .. } => "concat",
            PadChannels { .. } => "pad_channels",
            Subsample { .. } => "subsample",
            Dropout { .. } => "dropout",
            BatchNorm { .. } => "batch_norm2d",
            Softmax { .. } => "softmax",
            LogSoftmax { .. } => "log_softmax",
            CrossEntropy { .. } => "cross_entropy",
            Mse { .. } => "mse",
            Sum { .. } => "sum",
            Mean { .. } => "mean",
        }
    }

    /// Whether the node is a leaf (no backward rule; its gradient is kept).
    pub(crate) fn is_leaf(&self) -> bool {
        matches!(self, Op::Input | Op::Variable | Op::Param(_))
    }

    /// Calls `f` with the tape index of every node whose value this op's backward rule reads
    /// (`this` is the op's own node, for rules written in terms of the output). Rules that
    /// need only an operand's shape do not list it: in-place ops may overwrite those values.
    pub(crate) fn for_each_saved(&self, this: usize, mut f: impl FnMut(usize)) {
        use Op::*;
        match self {
            Conv2d { x, w, .. } | Linear { x, w, .. } | BatchNorm { x, w, .. } => {
                f(*x);
                f(*w);
            }
            MatMul { a, b } | Mul { a, b } | Mse { a, b } => {
                f(*a);
                f(*b);
            }
            LeakyRelu { x, .. } => f(*x),
            Relu { .. } | Sigmoid { .. } | Tanh { .. } | Softmax { .. } | LogSoftmax { .. } => {
                f(this)
            }
            Input
            | Variable
            | Param(_)
            | MaxPool2d { .. }
            | AvgPool2d { .. }
            | GlobalAvgPool2d { .. }
            | Add { .. }
            | AddBias { .. }
            | Sub { .. }
            | Scale { .. }
            | Reshape { .. }
            | Concat { .. }
            | PadChannels { .. }
            | Subsample { .. }
            | Dropout { .. }
            | CrossEntropy { .. }
            | Sum { .. }
            | Mean { .. } => {}
        }
    }

    /// Calls `f` with the tape index of every input.
    pub(crate) fn for_each_input(&self, mut f: impl FnMut(usize)) {
        use Op::*;
        match self {
            Input | Variable | Param(_) => {}
            Conv2d { x, w, b, .. } | Linear { x, w, b } => {
                f(*x);
                f(*w);
                if let Some(b) = b {
                    f(*b);
                }
            }
            BatchNorm { x, w, b, .. } => {
                f(*x);
                f(*w);
                f(*b);
            }
            MatMul { a, b }
            | Add { a, b }
            | AddBias { a, b }
            | Sub { a, b }
            | Mul { a, b }
            | Mse { a, b } => {
                f(*a);
                f(*b);
            }
            Concat { xs, .. } => xs.iter().for_each(|&x| f(x as usize)),
            MaxPool2d { x, .. }
            | AvgPool2d { x, .. }
            | GlobalAvgPool2d { x }
            | Scale { x, .. }
            | Relu { x }
            | LeakyRelu { x, .. }
            | Sigmoid { x }
            | Tanh { x }
            | Reshape { x }
            | PadChannels { x, .. }
            | Subsample { x, .. }
            | Dropout { x, .. }
            | Softmax { x }
            | LogSoftmax { x }
            | CrossEntropy { x, .. }
            | Sum { x }
            | Mean { x } => f(*x),
        }
    }

    /// Gives the saved buffers back to the pool.
    pub(crate) fn recycle(self, pool: &mut BufferPool) {
        match self {
            Op::MaxPool2d { argmax, .. } => pool.give_u32(argmax),
            Op::Concat { xs, .. } => pool.give_u32(xs),
            Op::Dropout { mask, .. } => pool.give(mask),
            Op::BatchNorm { mean, inv_std, .. } => {
                pool.give(mean);
                pool.give(inv_std);
            }
            Op::CrossEntropy { probs, targets, .. } => {
                pool.give(probs);
                pool.give_u32(targets);
            }
            _ => {}
        }
    }

    /// Runs this op's backward rule with the gradient `g` of node `y` handed over, for the
    /// rules that compute an input's gradient element by element from `g` and can write it
    /// over `g`'s buffer (ReLU, addition, batch norm): no fresh buffer, one pass less over
    /// memory. Returns `g` untouched for every other op, whose rule then runs through
    /// [`Op::backward`]. The arithmetic is the same either way.
    pub(crate) fn backward_reusing(
        &self,
        ctx: &mut Backward<'_>,
        y: usize,
        g: Tensor,
    ) -> Option<Tensor> {
        use Op::*;
        match self {
            Relu { x } => ops::elementwise::relu_backward_reusing(ctx, *x, y, g),
            Add { a, b } => ops::elementwise::add_backward_reusing(ctx, *a, *b, g),
            BatchNorm {
                x,
                w,
                b,
                mean,
                inv_std,
                train,
            } => ops::norm::batch_norm2d_backward_reusing(
                ctx,
                [*x, *w, *b],
                mean,
                inv_std,
                *train,
                g,
            ),
            _ => return Some(g),
        }
        None
    }

    /// Runs this op's backward rule: `g` is the gradient of the loss with respect to node `y`
    /// (this node), and the rule adds the contributions to its inputs' gradients through `ctx`.
    pub(crate) fn backward(&self, ctx: &mut Backward<'_>, y: usize, g: &Tensor) {
        use Op::*;
        match self {
            Input | Variable | Param(_) => {}
            Conv2d { x, w, b, shape } => ops::conv::conv2d_backward(ctx, *x, *w, *b, shape, g),
            MaxPool2d { x, shape, argmax } => {
                ops::pool::max_pool2d_backward_rule(ctx, *x, shape, argmax, g)
            }
            AvgPool2d {
                x,
                shape,
                count_include_pad,
            } => ops::pool::avg_pool2d_backward_rule(ctx, *x, shape, *count_include_pad, g),
            GlobalAvgPool2d { x } => ops::pool::global_avg_pool2d_backward_rule(ctx, *x, g),
            Linear { x, w, b } => ops::linear::linear_backward(ctx, *x, *w, *b, g),
            MatMul { a, b } => ops::linear::matmul_backward(ctx, *a, *b, g),
            Add { a, b } => ops::elementwise::add_backward(ctx, *a, *b, g),
            AddBias { a, b } => ops::elementwise::add_bias_backward(ctx, *a, *b, g),
            Sub { a, b } => ops::elementwise::sub_backward(ctx, *a, *b, g),
            Mul { a, b } => ops::elementwise::mul_backward(ctx, *a, *b, g),
            Scale { x, s } => ops::elementwise::scale_backward(ctx, *x, *s, g),
            Relu { x } => ops::elementwise::relu_backward(ctx, *x, y, g),
            LeakyRelu { x, slope } => ops::elementwise::leaky_relu_backward(ctx, *x, *slope, g),
            Sigmoid { x } => ops::elementwise::sigmoid_backward(ctx, *x, y, g),
            Tanh { x } => ops::elementwise::tanh_backward(ctx, *x, y, g),
            Reshape { x } => ops::shape::reshape_backward(ctx, *x, g),
            Concat { xs, axis } => ops::shape::concat_backward(ctx, xs, *axis, g),
            PadChannels { x, before } => ops::shape::pad_channels_backward(ctx, *x, *before, g),
            Subsample { x, stride } => ops::shape::subsample_backward(ctx, *x, *stride, g),
            Dropout { x, mask } => ops::norm::dropout_backward(ctx, *x, mask, g),
            BatchNorm {
                x,
                w,
                b,
                mean,
                inv_std,
                train,
            } => ops::norm::batch_norm2d_backward(ctx, [*x, *w, *b], mean, inv_std, *train, g),
            Softmax { x } => ops::loss::softmax_backward(ctx, *x, y, g),
            LogSoftmax { x } => ops::loss::log_softmax_backward(ctx, *x, y, g),
            CrossEntropy {
                x,
                probs,
                targets,
                smoothing,
            } => ops::loss::cross_entropy_backward(ctx, *x, probs, targets, *smoothing, g),
            Mse { a, b } => ops::loss::mse_backward(ctx, *a, *b, g),
            Sum { x } => ops::loss::sum_backward(ctx, *x, 1.0, g),
            Mean { x } => {
                let n = ganglion_tensor::numel(ctx.shape(*x)).max(1) as f32;
                ops::loss::sum_backward(ctx, *x, 1.0 / n, g)
            }
        }
    }
}
