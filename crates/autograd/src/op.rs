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
                let n = ctx.value(*x).len().max(1) as f32;
                ops::loss::sum_backward(ctx, *x, 1.0 / n, g)
            }
        }
    }
}
