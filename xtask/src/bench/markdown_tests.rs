//! Tests of BENCHMARKS.md rendering: the summary figures, the sections present, the dates and
//! the atomic write.

use super::*;
use crate::bench::memory::Measured;
use crate::bench::report::Limits;
use crate::bench::train::{RoundCell, aggregate};

fn machine() -> Machine {
    Machine {
        cpu: "Test CPU 9000".to_string(),
        isa: "avx512",
    }
}

fn limits(threads: usize) -> Limits {
    Limits {
        threads,
        fma_gflops: 120.0 * threads as f64,
        sgemm_gflops: 90.0 * threads as f64,
    }
}

/// A cell of `layer` whose Ganglion time is `ratio` times faster than PyTorch's.
fn cell(layer: &str, pass: Pass, threads: usize, ratio: f64, peers: &Peers) -> Row {
    let flops = 4.832e9;
    let peer_ms = peers.conv_ms(layer, pass, threads).unwrap();
    let seconds = peer_ms * 1e-3 / ratio;
    Row::new(layer, pass, &limits(threads), seconds, flops).with_peer(Some(peer_ms), flops)
}

fn train_row(model: &str, batch: usize, threads: usize, step: f64, peers: &Peers) -> TrainRow {
    let round = RoundCell {
        model: model.to_string(),
        batch,
        threads,
        step_seconds: vec![step],
        own_allocations_per_step: 0.0,
        packing_allocations_per_step: 3.0,
    };
    aggregate(&[round], peers)
}

#[test]
fn the_summary_takes_two_thread_cells_only() {
    let p = Peers::embedded();
    let rows = [
        cell("cifar.64", Pass::Forward, 2, 2.0, &p),
        cell("cifar.64", Pass::BackwardData, 2, 0.5, &p),
        cell("lenet.c1", Pass::BackwardData, 2, 4.0, &p),
        cell("lenet.c1", Pass::Forward, 1, 0.1, &p),
    ];
    let train = [
        train_row("lenet5", 64, 2, 64.0 / 28_398.0, &p),
        train_row("resnet20", 128, 2, 128.0 / 206.0, &p),
        train_row("resnet20", 128, 1, 10.0, &p),
    ];
    let s = summarize(&rows, &train);
    // (2 * 0.5 * 4) ^ (1/3)
    assert!((s.conv_geomean.unwrap() - 4f64.cbrt()).abs() < 1e-9);
    let (worst, worst_cell) = s.conv_worst.unwrap();
    assert!((worst - 0.5).abs() < 1e-9);
    assert_eq!(worst_cell, "cifar.64 backward_data");
    let (few, few_cell) = s.few_channel_min.unwrap();
    assert!((few - 4.0).abs() < 1e-9 && few_cell.starts_with("lenet.c1"));
    let (peak, peak_cell) = s.large_peak_min.unwrap();
    assert_eq!(peak_cell, "cifar.64 backward_data");
    assert!((peak - rows[1].gflops / 240.0).abs() < 1e-9);
    let (train_min, train_cell) = s.train_min.unwrap();
    assert!((train_min - 0.5).abs() < 1e-9, "{train_min}");
    assert_eq!(train_cell, "resnet20 batch 128");
    assert_eq!(s.allocations_max, Some((3.0, 0.0)));
    assert_eq!(summarize(&[], &[]), Summary::default());
}

#[test]
fn a_full_report_has_every_section_and_the_peers_figures() {
    let p = Peers::embedded();
    let conv = ConvResults {
        limits: vec![limits(1), limits(2)],
        rows: vec![
            cell("cifar.64", Pass::Forward, 1, 1.0, &p),
            cell("cifar.64", Pass::Forward, 2, 1.25, &p),
        ],
        rounds: 3,
    };
    let train = [train_row("resnet20", 128, 2, 0.25, &p)];
    let memory = MemoryRow::new(
        &Measured {
            model: "resnet20".to_string(),
            batch: 128,
            threads: 2,
            steps: 5,
            start_peak_kib: 4096,
            peak_kib: 200 * 1024,
        },
        &p,
    );
    let m = machine();
    let report = Report {
        machine: &m,
        cores: 2,
        date: "2026-11-28".to_string(),
        threads: &[1, 2],
        conv: Some(&conv),
        train: &train,
        memory: Some(&memory),
        peers: &p,
    };
    let md = render(&report);
    assert!(md.starts_with("# Benchmarks\n"));
    assert!(md.contains("do not edit by hand"));
    assert!(md.contains(peers::SOURCE));
    for needle in [
        "| CPU | Test CPU 9000 |",
        "| ISA path | avx512 |",
        "| threads | 1, 2 |",
        "| date (UTC) | 2026-11-28 |",
        "| 2 | 240.0 | 180.0 | 239.7 |",
        "geometric mean of Ganglion / PyTorch | 1.25x |",
        "Median over 3 interleaved round(s) of each round's median call.",
        "whatever the route: one that does fewer, as the forward pass by FFT, can pass the FMA peak.",
        // PyTorch's cifar.64 forward at 2 threads: 4.832 GFLOP in 23.335 ms.
        "| cifar.64 | forward | 2 | 18.668 | 258.8 | 107.8 | 207.1 | 1.25 |",
        "| cifar.64 | 107.8% | - | - |",
        "| resnet20 | 128 | 2 | 250.00 | 512 | 512 | 412 | 1.24 | 521 | 0.98 |",
        "| peak RSS MiB | 200.0 | 1158 |",
        "| 4.0 | 648 |",
        "| Ganglion over PyTorch | 17.3% |",
        "of PyTorch's | 17.3% | <= 25% |",
        "| 3 (0) | 0 |",
    ] {
        assert!(md.contains(needle), "missing `{needle}` in\n{md}");
    }
}

#[test]
fn sections_of_suites_that_did_not_run_are_left_out() {
    let p = Peers::embedded();
    let m = machine();
    let train = [train_row("lenet5", 64, 1, 0.01, &p)];
    let report = Report {
        machine: &m,
        cores: 16,
        date: "2026-11-28".to_string(),
        threads: &[1],
        conv: None,
        train: &train,
        memory: None,
        peers: &p,
    };
    let md = render(&report);
    assert!(md.contains("## Training step"));
    assert!(md.contains("| lenet5 | 64 | 1 | 10.00 | 6400 | 6400 | - | - | - | - |"));
    for absent in [
        "## Convolution suite",
        "## Limits",
        "## Memory",
        "geometric mean",
    ] {
        assert!(!md.contains(absent), "`{absent}` in\n{md}");
    }
}

#[test]
fn dates_follow_the_gregorian_calendar() {
    assert_eq!(civil_from_days(0), (1970, 1, 1));
    assert_eq!(civil_from_days(-1), (1969, 12, 31));
    assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    assert_eq!(civil_from_days(20_000), (2024, 10, 4));
    assert_eq!(civil_from_days(20_784), (2026, 11, 27));
    let today = utc_date();
    assert_eq!(today.len(), 10);
    assert!(today.as_str() > "2024-01-01", "{today}");
}

#[test]
fn the_file_is_replaced_whole_and_no_temporary_is_left() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("BENCHMARKS.md");
    std::fs::write(&path, "old").unwrap();
    write_atomic(&path, "# new\n").unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "# new\n");
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    let missing_dir = dir.path().join("no/such/dir/B.md");
    assert!(write_atomic(&missing_dir, "x").is_err());
}

#[test]
fn allocations_per_step_show_a_fraction_instead_of_rounding_it_away() {
    assert_eq!(per_step(0.0), "0");
    assert_eq!(per_step(3.0), "3");
    assert_eq!(per_step(0.2), "0.20");
    assert_eq!(per_step(0.018), "0.02");
}
