//! [`Summary`]: a model layer by layer (output shape, parameters, multiply-accumulates,
//! receptive field and jump) with its totals, and [`Geometry`], what each layer tells it.
//!
//! Receptive fields follow the standard recurrence over the layers in execution order,
//! per axis: a window of size `k`, stride `s` and dilation `d` gives
//! `r_out = r_in + (k - 1) * d * j_in` and `j_out = j_in * s`, from `r = 1`, `j = 1` at the
//! input. `j` (the jump) is the distance in input pixels between neighbouring units. A residual
//! block's field is that of its main path (its children in order); the shortcut sees less.
//!
//! # Examples
//! ```
//! use ganglion_models::{Module, lenet5};
//!
//! let model = lenet5(&mut ganglion_tensor::Rng::seed_from(0));
//! let s = model.summary(&[1, 28, 28]).expect("lenet5 takes 1x28x28 images");
//! assert_eq!(s.total_params, 61_706);
//! // Two stacked 5x5 convolutions with a 2x2 pooling between them see 14x14 pixels.
//! assert_eq!(s.layer("conv2").map(|l| l.receptive_field), Some([14, 14]));
//! println!("{s}");
//! ```

use crate::ModelError;
use crate::module::{Entry, Module, join};
use ganglion_autograd::Graph;
use ganglion_tensor::Tensor;
use std::collections::HashMap;
use std::fmt;

/// Which input positions one output position of a layer depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Footprint {
    /// The same position only (activations, batch normalisation, dropout, flatten).
    Pointwise,
    /// A sliding window (convolution, pooling).
    Window {
        /// Window size `[kh, kw]`.
        kernel: [usize; 2],
        /// Step between windows `[sh, sw]`.
        stride: [usize; 2],
        /// Zeros added on each side `[ph, pw]`.
        padding: [usize; 2],
        /// Spacing between taps `[dh, dw]` (1 for a dense window).
        dilation: [usize; 2],
    },
    /// Every position of the input (global pooling, a fully connected layer).
    Global,
}

/// What a layer tells [`Module::summary`] about itself: its footprint and its cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Which input positions an output position depends on.
    pub footprint: Footprint,
    /// Multiply-accumulates per output element (`cin / groups * kh * kw` for a convolution,
    /// `in_features` for a linear layer, 0 for layers without multiplications by weights).
    pub macs_per_output: u64,
}

impl Geometry {
    /// A parameter-free elementwise layer: pointwise, no multiply-accumulates.
    pub const POINTWISE: Self = Self {
        footprint: Footprint::Pointwise,
        macs_per_output: 0,
    };
}

/// The batch size [`Summary`] reports activation memory for unless told otherwise.
pub const DEFAULT_BATCH_SIZE: usize = 64;

/// One row of a [`Summary`]: a layer, or a container (a residual block, a stage) whose rows
/// follow it one level deeper.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerSummary {
    /// Dotted name (`conv1`, `layer1.0`, `layer1.0.conv1`).
    pub name: String,
    /// Type name (`Conv2d`, `BasicBlock`).
    pub kind: String,
    /// Nesting level: 0 for the model's direct children.
    pub depth: usize,
    /// Whether the row is a leaf layer (no children).
    pub is_leaf: bool,
    /// Shape of one output item (no batch dimension); `None` if the forward pass never ran the
    /// module.
    pub output_shape: Option<Vec<usize>>,
    /// Parameters (trainable or frozen) of the layer and everything inside it.
    pub params: usize,
    /// Multiply-accumulates for one input item, of the layer and everything inside it.
    pub macs: u64,
    /// The layer's own footprint (for a container, [`Footprint::Pointwise`]: its children
    /// carry the geometry).
    pub footprint: Footprint,
    /// Receptive field `[h, w]` of one output unit, in input pixels.
    pub receptive_field: [usize; 2],
    /// Distance `[h, w]` in input pixels between neighbouring output units.
    pub jump: [usize; 2],
    /// Input coordinate `[y, x]` of the top-left corner of output unit `(0, 0)`'s field
    /// (negative when the field reaches into padding); unit `(u, v)` starts at
    /// `start + [u, v] * jump`.
    pub start: [i64; 2],
}

/// A model layer by layer, with totals; [`fmt::Display`] prints it as a table.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// The model's type name (`lenet5`, `Sequential`).
    pub model: String,
    /// Shape of one input item (`[C, H, W]`).
    pub input_shape: Vec<usize>,
    /// Shape of one output item.
    pub output_shape: Vec<usize>,
    /// One row per module, containers before their contents, in execution order.
    pub layers: Vec<LayerSummary>,
    /// Number of parameter elements (what `Module::num_parameters` counts).
    pub total_params: usize,
    /// Parameter elements that receive gradients.
    pub trainable_params: usize,
    /// Elements of buffers (running statistics), saved with the model but not trained.
    pub buffer_elements: usize,
    /// Multiply-accumulates of one forward pass over one input item.
    pub total_macs: u64,
    /// Output elements of all leaf layers for one input item: what a training step keeps for
    /// backward (a residual block's internal sum and activations are not counted).
    pub activation_elements: usize,
    /// The batch size [`Summary::batch_activation_bytes`] and the table use.
    pub batch_size: usize,
}

impl Summary {
    /// The same summary reporting activation memory for batches of `batch_size` (at least 1).
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// The row named `name`.
    pub fn layer(&self, name: &str) -> Option<&LayerSummary> {
        self.layers.iter().find(|l| l.name == name)
    }

    /// Bytes of the parameters as `f32`.
    pub fn param_bytes(&self) -> usize {
        4 * self.total_params
    }

    /// Bytes of one input item as `f32`.
    pub fn input_bytes(&self) -> usize {
        4 * self.input_shape.iter().product::<usize>()
    }

    /// Bytes of the activations of one input item as `f32`.
    pub fn activation_bytes(&self) -> usize {
        4 * self.activation_elements
    }

    /// Bytes of the activations of a batch of [`Summary::batch_size`] items as `f32`.
    pub fn batch_activation_bytes(&self) -> usize {
        self.activation_bytes() * self.batch_size
    }
}

/// Receptive-field state along the main path.
struct Field {
    r: [usize; 2],
    j: [usize; 2],
    start: [i64; 2],
    /// Spatial size of the current map, for global footprints.
    extent: [usize; 2],
}

impl Field {
    fn apply(&mut self, footprint: Footprint, output: Option<&[usize]>) {
        match footprint {
            Footprint::Pointwise => {}
            Footprint::Window {
                kernel,
                stride,
                padding,
                dilation,
            } => {
                for a in 0..2 {
                    self.start[a] -= (padding[a] * self.j[a]) as i64;
                    self.r[a] += (kernel[a].saturating_sub(1)) * dilation[a] * self.j[a];
                    self.j[a] *= stride[a];
                }
            }
            Footprint::Global => {
                for a in 0..2 {
                    self.r[a] += self.extent[a].saturating_sub(1) * self.j[a];
                }
                self.extent = [1, 1];
            }
        }
        // A map's spatial size is known from `[C, H, W]` outputs; a flattened output keeps
        // the last map's size, which the next fully connected layer covers.
        if let Some(&[_, h, w]) = output {
            self.extent = [h, w];
        }
    }
}

/// Shapes (without the batch dimension) of every traced module's output, by dotted name.
fn trace_shapes<M: Module + ?Sized>(
    model: &M,
    input: &[usize],
) -> Result<HashMap<String, Vec<usize>>, ModelError> {
    // Two items, so that training-mode batch normalisation has more than one value per
    // channel even on 1x1 maps.
    let mut shape = vec![2];
    shape.extend_from_slice(input);
    let mut g = Graph::inference();
    let x = g.input(Tensor::zeros(&shape));
    let mut shapes = HashMap::new();
    model.forward_traced(&mut g, x, "", &mut |e| {
        let s = e.value.shape();
        shapes.insert(e.name.to_string(), s.get(1..).unwrap_or(&[]).to_vec());
    })?;
    Ok(shapes)
}

/// Runs `f` and puts every buffer and counter of `model` back as it was, so a training-mode
/// forward pass leaves no trace in the running statistics.
fn preserving_state<M: Module + ?Sized, T>(model: &M, f: impl FnOnce() -> T) -> T {
    let mut buffers = Vec::new();
    let mut counters = Vec::new();
    model.visit("", &mut |_, e| match e {
        Entry::Buffer(p) => buffers.push((p.clone(), p.value())),
        Entry::Counter(c) => counters.push((c, crate::module::counter_value(c))),
        Entry::Param(_) => {}
    });
    let out = f();
    for (p, v) in buffers {
        p.write().value = v;
    }
    for (c, v) in counters {
        crate::module::set_counter(c, v);
    }
    out
}

/// (all parameter elements, trainable ones, buffer elements) of a module.
fn count_state<M: Module + ?Sized>(m: &M) -> (usize, usize, usize) {
    let (mut all, mut trainable, mut buffers) = (0, 0, 0);
    m.visit("", &mut |_, e| match e {
        Entry::Param(p) => {
            all += p.len();
            if p.requires_grad() {
                trainable += p.len();
            }
        }
        Entry::Buffer(p) => buffers += p.len(),
        Entry::Counter(_) => {}
    });
    (all, trainable, buffers)
}

struct Walk<'s> {
    shapes: &'s HashMap<String, Vec<usize>>,
    field: Field,
    rows: Vec<LayerSummary>,
    activation_elements: usize,
}

impl Walk<'_> {
    /// Adds the rows of `m` (named `name`, at `depth`) and returns its multiply-accumulates.
    fn module<M: Module + ?Sized>(&mut self, m: &M, name: &str, depth: usize) -> u64 {
        let children = m.children();
        let output_shape = self.shapes.get(name).cloned();
        let is_leaf = children.is_empty();
        let index = self.rows.len();
        self.rows.push(LayerSummary {
            name: name.to_string(),
            kind: m.kind().to_string(),
            depth,
            is_leaf,
            output_shape: output_shape.clone(),
            params: m.num_parameters(),
            macs: 0,
            footprint: Footprint::Pointwise,
            receptive_field: [1, 1],
            jump: [1, 1],
            start: [0, 0],
        });
        let macs = if is_leaf {
            let geometry = m.geometry();
            self.field
                .apply(geometry.footprint, output_shape.as_deref());
            self.rows[index].footprint = geometry.footprint;
            let elements: usize = output_shape.as_ref().map_or(0, |s| s.iter().product());
            self.activation_elements += elements;
            elements as u64 * geometry.macs_per_output
        } else {
            children
                .iter()
                .map(|(child, c)| self.module(*c, &join(name, child), depth + 1))
                .sum()
        };
        let row = &mut self.rows[index];
        row.macs = macs;
        row.receptive_field = self.field.r;
        row.jump = self.field.j;
        row.start = self.field.start;
        macs
    }
}

/// Builds the summary of `model` for input items of shape `input` (`[C, H, W]`, no batch):
/// one forward pass on zeros gives the shapes; the model's state is left as it was.
///
/// # Errors
/// [`ModelError::Config`] for an empty input shape or one with a zero; the forward pass's
/// error (naming the layer) when the model rejects the input.
pub(crate) fn summarize<M: Module + ?Sized>(
    model: &M,
    input: &[usize],
) -> Result<Summary, ModelError> {
    if input.is_empty() || input.contains(&0) {
        return Err(ModelError::Config {
            layer: "summary",
            reason: format!("input shape {input:?} must have positive sizes"),
        });
    }
    let shapes = preserving_state(model, || trace_shapes(model, input))?;
    let extent = match input {
        [_, h, w] => [*h, *w],
        _ => [1, 1],
    };
    let mut walk = Walk {
        shapes: &shapes,
        field: Field {
            r: [1, 1],
            j: [1, 1],
            start: [0, 0],
            extent,
        },
        rows: Vec::new(),
        activation_elements: 0,
    };
    let children = model.children();
    let total_macs = if children.is_empty() {
        walk.module(model, "", 0)
    } else {
        children
            .iter()
            .map(|(name, c)| walk.module(*c, name, 0))
            .sum()
    };
    if let Some(root) = walk.rows.first_mut().filter(|r| r.name.is_empty()) {
        root.name = root.kind.clone();
    }
    let (total_params, trainable_params, buffer_elements) = count_state(model);
    Ok(Summary {
        model: model.kind().to_string(),
        input_shape: input.to_vec(),
        output_shape: shapes.get("").cloned().unwrap_or_default(),
        layers: walk.rows,
        total_params,
        trainable_params,
        buffer_elements,
        total_macs,
        activation_elements: walk.activation_elements,
        batch_size: DEFAULT_BATCH_SIZE,
    })
}

/// `61706` -> `61,706`.
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// `[6, 28, 28]` -> `6x28x28`.
pub fn dims(shape: &[usize]) -> String {
    shape
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join("x")
}

/// `5` for a square field, `5x3` otherwise.
pub fn side(v: [usize; 2]) -> String {
    if v[0] == v[1] {
        v[0].to_string()
    } else {
        format!("{}x{}", v[0], v[1])
    }
}

/// Bytes in the largest binary unit that keeps the number at least 1 (`58.6 KiB`).
pub fn bytes(n: usize) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < units.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", units[unit])
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header = ["layer", "type", "output", "params", "MACs", "RF", "jump"];
        let cells: Vec<[String; 7]> = self
            .layers
            .iter()
            .map(|l| {
                [
                    format!("{}{}", "  ".repeat(l.depth), l.name),
                    l.kind.clone(),
                    l.output_shape.as_deref().map_or("-".to_string(), dims),
                    grouped(l.params as u64),
                    grouped(l.macs),
                    side(l.receptive_field),
                    side(l.jump),
                ]
            })
            .collect();
        let mut width = header.map(str::len);
        for row in &cells {
            for (w, c) in width.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |f: &mut fmt::Formatter<'_>, row: &[&str]| -> fmt::Result {
            for (i, (c, w)) in row.iter().zip(width).enumerate() {
                // Names and types read left to right; numbers line up on the right.
                let sep = if i == 0 { "" } else { "  " };
                if i < 3 {
                    write!(f, "{sep}{c:<w$}")?;
                } else {
                    write!(f, "{sep}{c:>w$}")?;
                }
            }
            writeln!(f)
        };
        let total_width = width.iter().sum::<usize>() + 2 * (width.len() - 1);
        writeln!(
            f,
            "{}: input {} -> output {}",
            self.model,
            dims(&self.input_shape),
            dims(&self.output_shape)
        )?;
        line(f, &header)?;
        writeln!(f, "{}", "-".repeat(total_width))?;
        for row in &cells {
            line(f, &row.each_ref().map(String::as_str))?;
        }
        writeln!(f, "{}", "-".repeat(total_width))?;
        writeln!(
            f,
            "parameters:   {} ({} trainable), {} as f32",
            grouped(self.total_params as u64),
            grouped(self.trainable_params as u64),
            bytes(self.param_bytes())
        )?;
        if self.buffer_elements > 0 {
            writeln!(
                f,
                "buffers:      {} (running statistics, not trained)",
                grouped(self.buffer_elements as u64)
            )?;
        }
        writeln!(f, "MACs:         {} per image", grouped(self.total_macs))?;
        writeln!(f, "input:        {} per image", bytes(self.input_bytes()))?;
        write!(
            f,
            "activations:  {} per image, {} per batch of {}",
            bytes(self.activation_bytes()),
            bytes(self.batch_activation_bytes()),
            self.batch_size
        )
    }
}
