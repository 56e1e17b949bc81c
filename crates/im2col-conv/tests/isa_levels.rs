//! `GANGLION_FORCE_ISA` picks the kernels' instruction-set level: every level this CPU has is
//! forced in a child process of this test binary, which checks the level it got and runs the
//! fast path against the `f64` reference; an unknown or unavailable level falls back to
//! detection with a warning.

mod common;

use common::{Operands, check_against_f64, fast, reference_f64};
use ganglion_im2col_conv::{Conv2dParams, Conv2dShape, ConvWorkspace, Isa, isa_name};
use std::process::Command;

/// Set in the child processes: the level name the child must report.
const EXPECT: &str = "GANGLION_TEST_EXPECT_ISA";

/// The level the environment asks for, as the library resolves it.
fn expected_level() -> &'static str {
    if let Ok(name) = std::env::var(EXPECT) {
        return Isa::ALL
            .into_iter()
            .find(|i| i.name() == name)
            .map_or("unknown", Isa::name);
    }
    match std::env::var("GANGLION_FORCE_ISA")
        .ok()
        .and_then(|v| Isa::parse(&v))
    {
        Some(isa) if isa.available() => isa.name(),
        _ => Isa::detect().name(),
    }
}

#[test]
fn the_environment_picks_the_level_and_it_computes_correctly() {
    assert_eq!(isa_name(), expected_level());
    let pad = Conv2dParams::default().with_padding(1);
    for s in [
        Conv2dShape::new([2, 5, 9, 11], [7, 5, 3, 3], pad).unwrap(),
        Conv2dShape::new(
            [1, 4, 6, 6],
            [6, 2, 3, 2],
            pad.with_groups(2).with_stride(2),
        )
        .unwrap(),
        Conv2dShape::new([3, 8, 5, 5], [9, 8, 1, 1], Conv2dParams::default()).unwrap(),
    ] {
        let ops = Operands::random(&s, true, 21);
        let got = fast(&s, &ops, &mut ConvWorkspace::new());
        check_against_f64(&s, &got, &reference_f64(&s, &ops), 1e-4)
            .unwrap_or_else(|e| panic!("{}: {e}", isa_name()));
    }
}

/// Runs the test above in a child process with `GANGLION_FORCE_ISA=forced`.
fn child(forced: &str, expect: &str) -> std::process::Output {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "the_environment_picks_the_level_and_it_computes_correctly",
            "--test-threads",
            "1",
            "--nocapture",
        ])
        .env("GANGLION_FORCE_ISA", forced)
        .env(EXPECT, expect)
        .output()
        .unwrap()
}

#[test]
fn every_available_level_can_be_forced_by_the_environment() {
    if std::env::var_os(EXPECT).is_some() {
        return; // Already a child: do not recurse.
    }
    for isa in Isa::available_levels() {
        let out = child(isa.name(), isa.name());
        assert!(
            out.status.success(),
            "GANGLION_FORCE_ISA={}: {}{}",
            isa.name(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = child("sse9", Isa::detect().name());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning: GANGLION_FORCE_ISA=sse9"),
        "no warning for an unknown level: {stderr}"
    );
    if let Some(missing) = Isa::ALL.into_iter().find(|i| !i.available()) {
        let out = child(missing.name(), Isa::detect().name());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
