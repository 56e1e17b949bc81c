//! Finite-difference gradient checks: the analytic gradients of a graph against central
//! differences of its forward pass, one helper for every op.
//!
//! The graph computes in `f32`, so the check reduces the output to a scalar in `f64`
//! (`L = sum(out * r)` with fixed random weights `r`, or `out` itself when it is a single
//! number) and takes differences of that `f64` value: only the forward's own `f32` rounding
//! remains as noise. A disagreement at a point where the function has a kink inside the step
//! (ReLU at 0, a max-pool window whose maximum changes) is recognised because the one-sided
//! differences disagree as much, or because a smaller step agrees; it is counted in
//! [`GradCheckReport::kinks`] instead of failing. A wrong gradient agrees at no step, and a
//! smooth function has no kinks, so its checks should report none.
//!
//! # Examples
//! ```
//! use ganglion_autograd::gradcheck::{GradCheck, check_gradients};
//! use ganglion_tensor::Tensor;
//! let x = Tensor::from_fn(&[2, 3], |i| i as f32 * 0.3 - 0.7);
//! let report = check_gradients(&GradCheck::default(), &[x], |g, v| {
//!     let y = g.tanh(v[0])?;
//!     g.mean(y)
//! })?;
//! assert!(report.passed(), "{report:?}");
//! assert_eq!(report.checked, 6);
//! # Ok::<(), ganglion_autograd::AutogradError>(())
//! ```

use crate::{AutogradError, Graph, Var};
use ganglion_tensor::{Rng, Tensor};

/// Settings of [`check_gradients`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GradCheck {
    /// Central-difference step added to each input element (in `f32`).
    pub step: f32,
    /// Allowed error relative to the larger of the two gradients.
    pub rel_tol: f64,
    /// Allowed absolute error on top of the relative part.
    pub abs_tol: f64,
    /// Seed of the projection weights `r`, and of the graph's generator before every
    /// evaluation (so dropout draws the same mask each time).
    pub seed: u64,
}

impl Default for GradCheck {
    /// Step `1e-3`, relative tolerance `2e-2`, absolute tolerance `1e-3`, seed 0.
    fn default() -> Self {
        Self {
            step: 1e-3,
            rel_tol: 2e-2,
            abs_tol: 1e-3,
            seed: 0,
        }
    }
}

/// One element whose analytic gradient disagrees with the finite difference.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mismatch {
    /// Which input (position in the slice given to [`check_gradients`]).
    pub input: usize,
    /// Flat index of the element in that input.
    pub index: usize,
    /// Gradient from backward.
    pub analytic: f64,
    /// Central finite difference.
    pub numeric: f64,
}

/// The outcome of [`check_gradients`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GradCheckReport {
    /// Elements compared.
    pub checked: usize,
    /// Elements whose disagreement was excused because the function has a kink within one
    /// step of them (not counted in `checked`).
    pub kinks: usize,
    /// Largest `|analytic - numeric| / (abs_tol + rel_tol * max(|analytic|, |numeric|))`
    /// over the compared elements (`<= 1` passes).
    pub worst_ratio: f64,
    /// The elements that failed.
    pub mismatches: Vec<Mismatch>,
}

impl GradCheckReport {
    /// Whether every compared element agreed.
    pub fn passed(&self) -> bool {
        self.mismatches.is_empty()
    }
}

/// Checks the gradients `build` produces with respect to each of `inputs`.
///
/// `build` records a computation on a graph from the input vars (given in the order of
/// `inputs`) and returns its output, of any shape. It is called once with the inputs as
/// [`Graph::variable`]s to run backward, once unmoved, then twice per input element with that
/// element moved by `±step` (and by smaller steps where they disagree), on the same graph
/// after a [`Graph::reset`].
///
/// # Errors
/// Whatever `build` or [`Graph::backward`] returns.
pub fn check_gradients<F>(
    config: &GradCheck,
    inputs: &[Tensor],
    mut build: F,
) -> Result<GradCheckReport, AutogradError>
where
    F: FnMut(&mut Graph, &[Var]) -> Result<Var, AutogradError>,
{
    let mut graph = Graph::new();
    graph.set_seed(config.seed);
    let vars: Vec<Var> = inputs.iter().map(|t| graph.variable(t.clone())).collect();
    let out = build(&mut graph, &vars)?;
    let weights = projection(graph.value(out), config.seed);
    let loss = if graph.value(out).len() == 1 {
        out
    } else {
        let r = graph.input(weights.clone());
        let prod = graph.mul(out, r)?;
        graph.sum(prod)?
    };
    graph.backward(loss)?;
    let analytic: Vec<Tensor> = vars
        .iter()
        .zip(inputs)
        .map(|(&v, t)| {
            graph
                .grad(v)
                .cloned()
                .unwrap_or_else(|| Tensor::zeros(t.shape()))
        })
        .collect();

    let mut eval = |xs: &[Tensor]| -> Result<f64, AutogradError> {
        graph.reset();
        graph.set_seed(config.seed);
        let vars: Vec<Var> = xs.iter().map(|t| graph.input(t.clone())).collect();
        let out = build(&mut graph, &vars)?;
        let value = graph.value(out).data();
        Ok(value
            .iter()
            .zip(weights.data())
            .map(|(&v, &r)| v as f64 * r as f64)
            .sum())
    };

    let mut report = GradCheckReport::default();
    let mut moved = inputs.to_vec();
    let base = eval(&moved)?;
    let tol = |v: f64| config.abs_tol + config.rel_tol * v;
    for (k, grad) in analytic.iter().enumerate() {
        for j in 0..moved[k].len() {
            let x = inputs[k].data()[j];
            let a = grad.data()[j] as f64;
            let mut differences = |step: f32| -> Result<Differences, AutogradError> {
                let (xp, xm) = (x + step, x - step);
                moved[k].data_mut()[j] = xp;
                let fp = eval(&moved)?;
                moved[k].data_mut()[j] = xm;
                let fm = eval(&moved)?;
                moved[k].data_mut()[j] = x;
                // Over the steps actually taken after f32 rounding.
                let (hp, hm) = ((xp - x) as f64, (x - xm) as f64);
                Ok(Differences {
                    central: (fp - fm) / (hp + hm),
                    forward: (fp - base) / hp,
                    backward: (base - fm) / hm,
                })
            };
            let ratio = |numeric: f64| (a - numeric).abs() / tol(a.abs().max(numeric.abs()));
            let d = differences(config.step)?;
            let r = ratio(d.central);
            if r > 1.0 {
                // A kink at distance < step from x shifts the central difference by half of
                // the one-sided differences' disagreement, while plain curvature moves both
                // alike and leaves the central difference accurate: a disagreement at least as
                // large as the error explains it. Otherwise the kink may lie farther out, or
                // there may be one on each side: a smaller step that agrees clears the point.
                let mut kink = (d.forward - d.backward).abs() >= (a - d.central).abs();
                for shrink in [4.0, 16.0] {
                    if !kink && ratio(differences(config.step / shrink)?.central) <= 1.0 {
                        kink = true;
                    }
                }
                if kink {
                    report.kinks += 1;
                    continue;
                }
            }
            report.checked += 1;
            report.worst_ratio = report.worst_ratio.max(r);
            if r > 1.0 || !r.is_finite() {
                report.mismatches.push(Mismatch {
                    input: k,
                    index: j,
                    analytic: a,
                    numeric: d.central,
                });
            }
        }
    }
    Ok(report)
}

/// Finite differences of the projected output around one point.
struct Differences {
    central: f64,
    forward: f64,
    backward: f64,
}

/// Fixed projection weights in `[-1, 1)` shaped like `out` (a single `1` for a scalar).
fn projection(out: &Tensor, seed: u64) -> Tensor {
    if out.len() == 1 {
        return Tensor::full(out.shape(), 1.0);
    }
    let mut rng = Rng::seed_from(seed ^ 0x5eed_9a7d);
    Tensor::from_fn(out.shape(), |_| rng.uniform_range(-1.0, 1.0))
}
