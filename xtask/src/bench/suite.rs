//! The benchmark suite file (`benches/conv_suite.toml`): the layers every speed figure is
//! reported on and the thread counts to run them at.

use anyhow::{Context, Result, bail};
use ganglion_im2col_conv::{Conv2dParams, Conv2dShape};
use serde::Deserialize;
use std::path::Path;

/// The whole suite as written in the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Suite {
    /// Worker-thread counts every layer is measured at.
    pub threads: Vec<usize>,
    /// The layers, in file order.
    #[serde(rename = "layer")]
    pub layers: Vec<Layer>,
}

/// One convolution layer: NCHW input, square kernel, equal stride and padding on both axes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    /// The name figures are reported under (`cifar.64`).
    pub name: String,
    /// Batch size.
    pub n: usize,
    /// Input channels.
    pub cin: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Output channels.
    pub cout: usize,
    /// Kernel size (both axes).
    pub k: usize,
    /// Stride (both axes).
    pub stride: usize,
    /// Zero padding (both axes).
    pub pad: usize,
    /// Channel groups; the suite's layers are dense, so absent means 1.
    #[serde(default = "one")]
    pub groups: usize,
}

fn one() -> usize {
    1
}

impl Suite {
    /// Parses suite text; `origin` names the source in error messages.
    ///
    /// # Errors
    /// When the text is not valid TOML of this shape, or a layer's geometry is invalid.
    pub fn parse(text: &str, origin: &str) -> Result<Suite> {
        let suite: Suite = toml::from_str(text).with_context(|| format!("parsing {origin}"))?;
        if suite.threads.is_empty() || suite.threads.contains(&0) {
            bail!("{origin}: `threads` must list positive thread counts");
        }
        for layer in &suite.layers {
            layer
                .shape()
                .with_context(|| format!("{origin}: layer `{}`", layer.name))?;
        }
        Ok(suite)
    }

    /// Reads and parses a suite file.
    ///
    /// # Errors
    /// When the file cannot be read or [`Suite::parse`] rejects it.
    pub fn load(path: &Path) -> Result<Suite> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        Suite::parse(&text, &path.display().to_string())
    }

    /// Keeps only the named layers (in suite order) when `names` is given.
    ///
    /// # Errors
    /// When a name matches no layer of the suite.
    pub fn select_layers(&mut self, names: Option<&[String]>) -> Result<()> {
        let Some(names) = names else { return Ok(()) };
        for name in names {
            if !self.layers.iter().any(|l| &l.name == name) {
                let known: Vec<&str> = self.layers.iter().map(|l| l.name.as_str()).collect();
                bail!(
                    "no layer `{name}` in the suite (known: {})",
                    known.join(", ")
                );
            }
        }
        self.layers.retain(|l| names.contains(&l.name));
        Ok(())
    }
}

impl Layer {
    /// The validated convolution geometry of this layer.
    ///
    /// # Errors
    /// When the kernel rejects the geometry (for example a kernel larger than the padded input).
    pub fn shape(&self) -> Result<Conv2dShape> {
        let params = Conv2dParams {
            stride: [self.stride; 2],
            padding: [self.pad; 2],
            dilation: [1, 1],
            groups: self.groups,
        };
        let input = [self.n, self.cin, self.h, self.w];
        let weight = [self.cout, self.cin / self.groups.max(1), self.k, self.k];
        Ok(Conv2dShape::new(input, weight, params)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn real_suite() -> Suite {
        Suite::load(&crate::project_root().join("benches/conv_suite.toml")).unwrap()
    }

    #[test]
    fn the_real_suite_has_eleven_layers_at_one_and_two_threads() {
        let suite = real_suite();
        assert_eq!(suite.threads, [1, 2]);
        assert_eq!(suite.layers.len(), 11);
        assert_eq!(suite.layers[0].name, "lenet.c1");
        assert_eq!(suite.layers[10].name, "infer.64");
    }

    #[test]
    fn flop_counts_follow_the_suite_formula() {
        let suite = real_suite();
        let flops = |name: &str| {
            let layer = suite.layers.iter().find(|l| l.name == name).unwrap();
            layer.shape().unwrap().flops()
        };
        // 2 * N * Cout * OH * OW * Cin * K * K
        assert_eq!(
            flops("cifar.64"),
            2.0 * 64.0 * 64.0 * 32.0 * 32.0 * 64.0 * 9.0
        );
        assert!((flops("cifar.64") / 1e9 - 4.832).abs() < 5e-4);
        assert!((flops("cifar.down") / 1e9 - 2.416).abs() < 5e-4);
        assert!((flops("lenet.c1") / 1e9 - 0.015).abs() < 5e-4);
    }

    #[test]
    fn selecting_layers_keeps_suite_order_and_rejects_unknown_names() {
        let mut suite = real_suite();
        let names = ["infer.64".to_string(), "lenet.c2".to_string()];
        suite.select_layers(Some(&names)).unwrap();
        let kept: Vec<&str> = suite.layers.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(kept, ["lenet.c2", "infer.64"]);
        let err = real_suite()
            .select_layers(Some(&["nope".to_string()]))
            .unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }

    #[test]
    fn bad_suites_are_rejected_with_the_origin() {
        let err = Suite::parse("threads = [1]\n[[layer]]\nname = \"x\"\n", "t.toml").unwrap_err();
        assert!(format!("{err:#}").contains("t.toml"), "{err:#}");
        let zero = "threads = [0]\nlayer = []\n";
        assert!(Suite::parse(zero, "z.toml").is_err());
    }
}
