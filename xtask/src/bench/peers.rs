//! The peers' figures Ganglion is compared with, copied verbatim from
//! `../shared/bench/peers.md` (measured 2026-11-27, PyTorch 2.15, on a 2-core AMD EPYC Zen 4)
//! and parsed here: PyTorch's conv suite times, its training-step throughput and peak RSS,
//! and that machine's FMA peak.

use super::report::Pass;
use anyhow::{Context, Result, bail};

/// Where the figures come from, printed with every table that quotes them.
pub const SOURCE: &str = "../shared/bench/peers.md, measured 2026-11-27, PyTorch 2.15";

/// The thread count the targets are stated at (the only one PyTorch's training figures
/// were measured at).
pub const COMPARE_THREADS: usize = 2;

/// `### FMA peak` of peers.md.
const FMA_TABLE: &str = "\
| ISA | 1 thread | 2 threads | spread 1T | spread 2T |
|---|---|---|---|---|
| avx2-256 | 117.0 | 242.4 | 1.002 | 1.015 |
| avx512-512 | 117.2 | 239.7 | 1.012 | 1.010 |
";

/// `### PyTorch conv (NCHW f32, oneDNN)` of peers.md: median ms / GFLOP/s per pass.
const CONV_TABLE: &str = "\
| layer | GFLOP/pass | fwd 1T | bwd-data 1T | bwd-weight 1T | fwd 2T | bwd-data 2T | bwd-weight 2T | max spread |
|---|---|---|---|---|---|---|---|---|
| lenet.c1 | 0.015 | 0.615 / 24 | 6.156 / 2 | 0.481 / 31 | 0.338 / 44 | 2.903 / 5 | 0.282 / 53 | 1.12 |
| lenet.c2 | 0.031 | 0.334 / 92 | 0.835 / 37 | 0.569 / 54 | 0.191 / 161 | 0.453 / 68 | 0.354 / 87 | 1.07 |
| mnist.c1 | 0.025 | 0.515 / 48 | 4.989 / 5 | 0.530 / 47 | 0.289 / 86 | 2.234 / 11 | 0.271 / 92 | 1.21 |
| mnist.c2 | 1.359 | 14.231 / 95 | 14.737 / 92 | 15.140 / 90 | 7.591 / 179 | 7.546 / 180 | 8.101 / 168 | 1.11 |
| cifar.stem | 0.226 | 4.104 / 55 | 13.816 / 16 | 4.501 / 50 | 2.194 / 103 | 7.450 / 30 | 2.298 / 99 | 1.23 |
| cifar.64 | 4.832 | 45.170 / 107 | 45.898 / 105 | 54.673 / 88 | 23.335 / 207 | 23.479 / 206 | 28.124 / 172 | 1.05 |
| cifar.down | 2.416 | 25.039 / 96 | 32.501 / 74 | 26.634 / 91 | 13.070 / 185 | 16.669 / 145 | 14.171 / 170 | 1.03 |
| cifar.128 | 4.832 | 41.608 / 116 | 41.870 / 115 | 46.614 / 104 | 21.183 / 228 | 21.243 / 227 | 23.826 / 203 | 1.05 |
| cifar.256 | 4.832 | 37.483 / 129 | 37.480 / 129 | 45.277 / 107 | 19.091 / 253 | 18.856 / 256 | 22.007 / 220 | 1.06 |
| cifar.1x1 | 1.074 | 14.677 / 73 | 14.541 / 74 | 13.794 / 78 | 7.266 / 148 | 7.478 / 144 | 7.231 / 148 | 1.27 |
| infer.64 | 0.075 | 0.738 / 102 | 0.752 / 100 | 0.883 / 85 | 0.420 / 180 | 0.421 / 179 | 0.490 / 154 | 1.18 |
";

/// `### PyTorch training step throughput, threads=2` of peers.md.
const TRAIN_TABLE: &str = "\
| model | batch | img/s | median step ms | spread | img/s at best step | peak RSS MiB |
|---|---|---|---|---|---|---|
| (import torch only) | - | - | - | - | - | 648 |
| lenet5 | 64 | 14199 | 4.51 | 1.305 | 16792 | 831 |
| lenet5 | 128 | 15713 | 8.15 | 1.069 | 17794 | 842 |
| mnistnet | 64 | 1284 | 49.83 | 1.215 | 1539 | 905 |
| mnistnet | 128 | 1450 | 88.29 | 1.054 | 1527 | 966 |
| resnet20 | 64 | 451 | 141.94 | 1.166 | 532 | 1004 |
| resnet20 | 128 | 412 | 310.86 | 1.215 | 521 | 1158 |
";

/// PyTorch's median milliseconds for one layer of the conv suite.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvPeer {
    /// Suite layer name.
    pub layer: String,
    /// Median ms, `[threads - 1][pass]` with passes in [`Pass::ALL`] order.
    pub ms: [[f64; 3]; 2],
}

/// PyTorch's training step for one model and batch, at [`COMPARE_THREADS`] threads.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainPeer {
    /// Zoo model name.
    pub model: String,
    /// Batch size.
    pub batch: usize,
    /// Images per second from the median step time.
    pub images_per_sec: f64,
    /// Median step milliseconds.
    pub ms_median: f64,
    /// Images per second at the fastest step.
    pub images_per_sec_best: f64,
    /// Peak resident set of the training process, MiB.
    pub peak_rss_mib: f64,
}

/// Every figure of peers.md that the bench compares with.
#[derive(Debug, Clone, PartialEq)]
pub struct Peers {
    /// That machine's FMA peak (AVX-512 path), GFLOP/s at 1 and 2 threads.
    pub fma_gflops: [f64; 2],
    /// PyTorch's conv suite.
    pub conv: Vec<ConvPeer>,
    /// PyTorch's training steps.
    pub train: Vec<TrainPeer>,
    /// Peak RSS of a process that only imports torch, MiB.
    pub import_rss_mib: f64,
}

impl Peers {
    /// The figures embedded above.
    ///
    /// # Panics
    /// Never for the embedded text (a test parses it); the tables are constants.
    pub fn embedded() -> Peers {
        Peers::parse(FMA_TABLE, CONV_TABLE, TRAIN_TABLE).expect("the embedded peer tables parse")
    }

    fn parse(fma: &str, conv: &str, train: &str) -> Result<Peers> {
        let fma_row = rows(fma)?
            .into_iter()
            .find(|r| r[0].starts_with("avx512"))
            .context("peers: no avx512 row in the FMA table")?;
        let fma_gflops = [number(&fma_row[1])?, number(&fma_row[2])?];

        let mut conv_peers = Vec::new();
        for r in rows(conv)? {
            if r.len() < 8 {
                bail!(
                    "peers: conv row `{}` has {} cells, expected 9",
                    r[0],
                    r.len()
                );
            }
            let mut ms = [[0.0; 3]; 2];
            for (t, per_thread) in ms.iter_mut().enumerate() {
                for (p, cell) in per_thread.iter_mut().enumerate() {
                    *cell = ms_of(&r[2 + 3 * t + p])
                        .with_context(|| format!("peers: conv row `{}`", r[0]))?;
                }
            }
            conv_peers.push(ConvPeer {
                layer: r[0].clone(),
                ms,
            });
        }

        let mut import_rss_mib = None;
        let mut train_peers = Vec::new();
        for r in rows(train)? {
            if r.len() < 7 {
                bail!(
                    "peers: training row `{}` has {} cells, expected 7",
                    r[0],
                    r.len()
                );
            }
            if r[0].starts_with('(') {
                import_rss_mib = Some(number(&r[6])?);
                continue;
            }
            train_peers.push(TrainPeer {
                model: r[0].clone(),
                batch: number(&r[1])? as usize,
                images_per_sec: number(&r[2])?,
                ms_median: number(&r[3])?,
                images_per_sec_best: number(&r[5])?,
                peak_rss_mib: number(&r[6])?,
            });
        }
        Ok(Peers {
            fma_gflops,
            conv: conv_peers,
            train: train_peers,
            import_rss_mib: import_rss_mib.context("peers: no `(import torch only)` row")?,
        })
    }

    /// PyTorch's median ms for a layer's pass at 1 or 2 threads.
    pub fn conv_ms(&self, layer: &str, pass: Pass, threads: usize) -> Option<f64> {
        let peer = self.conv.iter().find(|p| p.layer == layer)?;
        let t = threads.checked_sub(1).filter(|&t| t < 2)?;
        let p = Pass::ALL.iter().position(|&q| q == pass)?;
        Some(peer.ms[t][p])
    }

    /// PyTorch's training step for a model and batch; only [`COMPARE_THREADS`] was measured,
    /// so other thread counts have none.
    pub fn train(&self, model: &str, batch: usize, threads: usize) -> Option<&TrainPeer> {
        (threads == COMPARE_THREADS)
            .then(|| {
                self.train
                    .iter()
                    .find(|p| p.model == model && p.batch == batch)
            })
            .flatten()
    }

    /// PyTorch's peak RSS training `model` at `batch`, MiB.
    pub fn peak_rss_mib(&self, model: &str, batch: usize) -> Option<f64> {
        self.train(model, batch, COMPARE_THREADS)
            .map(|p| p.peak_rss_mib)
    }
}

/// The data rows of a Markdown table as trimmed cells (header and rule dropped).
fn rows(table: &str) -> Result<Vec<Vec<String>>> {
    let lines: Vec<&str> = table
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with('|'))
        .collect();
    if lines.len() < 3 || !lines[1].contains("---") {
        bail!("peers: a table needs a header, a rule and rows");
    }
    Ok(lines[2..]
        .iter()
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_string())
                .collect()
        })
        .collect())
}

fn number(cell: &str) -> Result<f64> {
    cell.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .with_context(|| format!("peers: `{cell}` is not a number"))
}

/// The ms of a `ms / GFLOP/s` cell.
fn ms_of(cell: &str) -> Result<f64> {
    let (ms, _) = cell
        .split_once('/')
        .with_context(|| format!("peers: `{cell}` is not `ms / GFLOP/s`"))?;
    number(ms.trim())
}

/// The geometric mean of positive values; `None` for an empty list or a value that is not
/// positive and finite.
pub fn geomean(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let (mut log_sum, mut n) = (0.0, 0usize);
    for v in values {
        if !(v > 0.0 && v.is_finite()) {
            return None;
        }
        log_sum += v.ln();
        n += 1;
    }
    (n > 0).then(|| (log_sum / n as f64).exp())
}

/// Ganglion's speed over the peer's for the same work: the peer's time over Ganglion's.
pub fn speed_ratio(ganglion_ms: f64, peer_ms: f64) -> f64 {
    peer_ms / ganglion_ms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_tables_parse_to_the_published_figures() {
        let p = Peers::embedded();
        assert_eq!(p.fma_gflops, [117.2, 239.7]);
        assert_eq!(p.conv.len(), 11);
        assert_eq!(p.conv_ms("cifar.64", Pass::Forward, 2), Some(23.335));
        assert_eq!(p.conv_ms("lenet.c1", Pass::BackwardData, 1), Some(6.156));
        assert_eq!(p.conv_ms("infer.64", Pass::BackwardWeight, 2), Some(0.490));
        assert_eq!(p.conv_ms("cifar.64", Pass::Forward, 3), None);
        assert_eq!(p.conv_ms("nope", Pass::Forward, 1), None);
        assert_eq!(p.train.len(), 6);
        assert_eq!(p.import_rss_mib, 648.0);
        let r = p.train("resnet20", 128, 2).unwrap();
        assert_eq!(
            (r.images_per_sec, r.ms_median, r.images_per_sec_best),
            (412.0, 310.86, 521.0)
        );
        assert_eq!(p.peak_rss_mib("resnet20", 128), Some(1158.0));
        assert!(p.train("resnet20", 128, 1).is_none());
        assert!(p.train("resnet20", 32, 2).is_none());
    }

    #[test]
    fn the_conv_cells_agree_with_their_own_gflops() {
        // Each cell is `ms / GFLOP/s` and the row starts with GFLOP/pass: check the ms against
        // them, so a digit lost in copying shows up.
        for r in rows(CONV_TABLE).unwrap() {
            let gflop: f64 = r[1].parse().unwrap();
            for cell in &r[2..8] {
                let ms = ms_of(cell).unwrap();
                let rate: f64 = cell.split_once('/').unwrap().1.trim().parse().unwrap();
                let implied = gflop / (ms / 1e3);
                // GFLOP/pass has three decimals, so small layers carry up to ~4% rounding.
                assert!(
                    (implied / rate - 1.0).abs() < 0.1 || (implied - rate).abs() <= 1.0,
                    "{}: {cell} implies {implied:.1}",
                    r[0]
                );
            }
        }
    }

    #[test]
    fn malformed_tables_are_errors() {
        assert!(rows("| a |\n| b |\n").is_err());
        assert!(ms_of("12.5").is_err());
        assert!(number("n/a").is_err());
        let bad_conv = "| l | g | x |\n|---|---|---|\n| a | 1 | 2 |\n";
        assert!(Peers::parse(FMA_TABLE, bad_conv, TRAIN_TABLE).is_err());
        let no_import = "| m | b | i | s | p | b | r |\n|---|---|---|---|---|---|---|\n\
                         | lenet5 | 64 | 1 | 1 | 1 | 1 | 1 |\n";
        assert!(Peers::parse(FMA_TABLE, CONV_TABLE, no_import).is_err());
    }

    #[test]
    fn geomean_and_ratios() {
        assert!((geomean([2.0, 8.0]).unwrap() - 4.0).abs() < 1e-12);
        assert!((geomean([1.0, 10.0, 100.0]).unwrap() - 10.0).abs() < 1e-9);
        assert_eq!(geomean([]), None);
        assert_eq!(geomean([1.0, 0.0]), None);
        assert_eq!(geomean([1.0, f64::NAN]), None);
        assert_eq!(speed_ratio(10.0, 20.0), 2.0);
        assert_eq!(speed_ratio(20.0, 10.0), 0.5);
    }
}
