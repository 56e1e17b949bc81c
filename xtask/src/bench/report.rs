//! Measured conv cells and their rendering: the console table and JSON lines (one object per
//! cell), each set against PyTorch's figure for the same cell where peers.md has one.

use super::peers;
use serde::Serialize;
use std::fmt::Write as _;

/// The three convolution passes a layer is measured on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Pass {
    /// `conv2d_forward`.
    Forward,
    /// `conv2d_backward_data`.
    BackwardData,
    /// `conv2d_backward_weight`.
    BackwardWeight,
}

impl Pass {
    /// Every pass, in the order they are run and reported.
    pub const ALL: [Pass; 3] = [Pass::Forward, Pass::BackwardData, Pass::BackwardWeight];

    /// The name used in the table and the JSON `pass` key.
    pub fn name(self) -> &'static str {
        match self {
            Pass::Forward => "forward",
            Pass::BackwardData => "backward_data",
            Pass::BackwardWeight => "backward_weight",
        }
    }
}

/// This machine's measured limits at one thread count, in GFLOP/s.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Worker threads.
    pub threads: usize,
    /// f32 FMA peak.
    pub fma_gflops: f64,
    /// `matrixmultiply::sgemm` at 2048^3.
    pub sgemm_gflops: f64,
}

/// One measured cell: a layer's pass at a thread count.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// Layer name from the suite.
    pub layer: String,
    /// Which pass.
    pub pass: Pass,
    /// Worker threads.
    pub threads: usize,
    /// Median milliseconds per call.
    pub ms_median: f64,
    /// Nominal FLOPs of the pass over the median time, in GFLOP/s.
    pub gflops: f64,
    /// `gflops` over the FMA peak at this thread count.
    pub peak_fraction: f64,
    /// `gflops` over the sgemm roofline at this thread count.
    pub sgemm_fraction: f64,
    /// PyTorch's GFLOP/s for the same cell (peers.md), where it was measured.
    #[serde(skip)]
    pub pytorch_gflops: Option<f64>,
    /// Ganglion's speed over PyTorch's (`gflops / pytorch_gflops`).
    #[serde(skip)]
    pub ratio: Option<f64>,
}

impl Row {
    /// A cell from its median time and the pass's FLOP count, set against the machine limits.
    pub fn new(layer: &str, pass: Pass, limits: &Limits, seconds: f64, flops: f64) -> Row {
        let gflops = flops / seconds / 1e9;
        Row {
            layer: layer.to_string(),
            pass,
            threads: limits.threads,
            ms_median: seconds * 1e3,
            gflops,
            peak_fraction: gflops / limits.fma_gflops,
            sgemm_fraction: gflops / limits.sgemm_gflops,
            pytorch_gflops: None,
            ratio: None,
        }
    }

    /// The same cell set against PyTorch's median time for it (`None`: not measured), the
    /// pass doing `flops` nominal FLOPs.
    pub fn with_peer(mut self, peer_ms: Option<f64>, flops: f64) -> Row {
        self.pytorch_gflops = peer_ms.map(|ms| flops / (ms * 1e-3) / 1e9);
        self.ratio = peer_ms.map(|ms| peers::speed_ratio(self.ms_median, ms));
        self
    }
}

/// The machine every figure of a run was measured on.
#[derive(Debug, Clone, PartialEq)]
pub struct Machine {
    /// CPU model.
    pub cpu: String,
    /// ISA path name (`avx512`, `avx2-fma`, `scalar`).
    pub isa: &'static str,
}

/// The column titles of the console table, with a rule below.
pub fn table_header() -> String {
    let title = format!(
        "{:<12} {:<15} {:>7} {:>10} {:>9} {:>7} {:>8} {:>9} {:>6}",
        "layer", "pass", "threads", "median ms", "GFLOP/s", "% peak", "% sgemm", "torch", "ratio"
    );
    let rule = "-".repeat(title.len());
    format!("{title}\n{rule}")
}

/// One console table line.
pub fn table_row(row: &Row) -> String {
    format!(
        "{:<12} {:<15} {:>7} {:>10.3} {:>9.1} {:>7.1} {:>8.1} {:>9} {:>6}",
        row.layer,
        row.pass.name(),
        row.threads,
        row.ms_median,
        row.gflops,
        row.peak_fraction * 100.0,
        row.sgemm_fraction * 100.0,
        optional(row.pytorch_gflops, 1),
        optional(row.ratio, 2)
    )
}

/// A figure with `decimals` decimals, or `-` where there is none.
pub fn optional(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "-".to_string(), |v| format!("{v:.decimals$}"))
}

/// The machine limits as console lines.
pub fn limits_table(limits: &[Limits]) -> String {
    let mut out = String::new();
    for l in limits {
        let _ = writeln!(
            out,
            "limits at {} thread(s): FMA peak {:.1} GFLOP/s, sgemm 2048^3 {:.1} GFLOP/s",
            l.threads, l.fma_gflops, l.sgemm_gflops
        );
    }
    out
}

/// One JSON line for a cell: `layer`, `pass`, `threads`, `ms_median`, `gflops` first, then
/// `peak_fraction`, `sgemm_fraction`, `isa`, `cpu`, `pytorch_gflops` and `ratio` (the last two
/// `null` where peers.md has no figure).
pub fn json_line(row: &Row, machine: &Machine) -> String {
    #[derive(Serialize)]
    struct Record<'a> {
        #[serde(flatten)]
        row: &'a Row,
        isa: &'a str,
        cpu: &'a str,
        pytorch_gflops: Option<f64>,
        ratio: Option<f64>,
    }
    let record = Record {
        row,
        isa: machine.isa,
        cpu: &machine.cpu,
        pytorch_gflops: row.pytorch_gflops,
        ratio: row.ratio,
    };
    serde_json::to_string(&record).expect("a row of numbers and strings serialises")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits_2t() -> Limits {
        Limits {
            threads: 2,
            fma_gflops: 240.0,
            sgemm_gflops: 180.0,
        }
    }

    fn row() -> Row {
        let limits = limits_2t();
        Row::new("cifar.64", Pass::BackwardData, &limits, 0.024, 4.832e9)
            .with_peer(Some(48.0), 4.832e9)
    }

    #[test]
    fn a_row_derives_rate_and_fractions() {
        let r = row();
        assert!((r.ms_median - 24.0).abs() < 1e-9);
        assert!((r.gflops - 201.333_333).abs() < 1e-3);
        assert!((r.peak_fraction - 201.333_333 / 240.0).abs() < 1e-6);
        assert!((r.sgemm_fraction - 201.333_333 / 180.0).abs() < 1e-6);
        assert!((r.pytorch_gflops.unwrap() - 100.666_667).abs() < 1e-3);
        assert_eq!(r.ratio, Some(2.0));
        let alone = Row::new("x", Pass::Forward, &limits_2t(), 0.001, 1e9).with_peer(None, 1e9);
        assert_eq!((alone.pytorch_gflops, alone.ratio), (None, None));
        let line = table_row(&alone);
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields[7..], ["-", "-"], "{line}");
    }

    #[test]
    fn table_lines_line_up_with_the_header() {
        let header = table_header();
        let line = table_row(&row());
        assert_eq!(header.lines().next().unwrap().len(), line.len());
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(
            fields,
            [
                "cifar.64",
                "backward_data",
                "2",
                "24.000",
                "201.3",
                "83.9",
                "111.9",
                "100.7",
                "2.00"
            ]
        );
    }

    #[test]
    fn json_keys_come_in_the_contract_order() {
        let machine = Machine {
            cpu: "Test CPU".to_string(),
            isa: "avx2-fma",
        };
        let line = json_line(&row(), &machine);
        let keys = [
            "layer",
            "pass",
            "threads",
            "ms_median",
            "gflops",
            "peak_fraction",
            "sgemm_fraction",
            "isa",
            "cpu",
            "pytorch_gflops",
            "ratio",
        ];
        let positions: Vec<usize> = keys
            .iter()
            .map(|k| line.find(&format!("\"{k}\":")).unwrap())
            .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{line}");
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["pass"], "backward_data");
        assert_eq!(value["threads"], 2);
        assert_eq!(value["cpu"], "Test CPU");
        assert!(!line.contains('\n'));
    }
}
