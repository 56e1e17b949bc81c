//! `cargo xtask`: the project's chores, one module per task (`bench`, `data`).
#![deny(missing_docs)]

mod bench;
mod data;

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <task> [options]

tasks:
  bench    time the convolution layer suite against this machine's FMA peak and sgemm
           (cargo xtask bench --help for its options)
  data     fetch MNIST, Fashion-MNIST or CIFAR-10 and verify data sets on disk
           (cargo xtask data --help for its options)";

/// The workspace root: xtask sits one level below it.
fn project_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map(PathBuf::from)
        .unwrap_or(manifest_dir)
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let task = args.next();
    let rest: Vec<String> = args.collect();
    let help = |a: &String| a == "--help" || a == "-h";
    let result = match task.as_deref() {
        Some("bench") if rest.iter().any(help) => {
            println!("{}", bench::USAGE);
            Ok(())
        }
        Some("bench") => bench::BenchArgs::parse(rest).and_then(|a| bench::run(&a)),
        Some("data") if rest.iter().any(help) => {
            println!("{}", data::USAGE);
            Ok(())
        }
        Some("data") => data::Task::parse(rest).and_then(|t| data::run(&t)),
        Some("--help" | "-h") => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => {
            eprintln!("xtask: unknown task `{other}`\n\n{USAGE}");
            return ExitCode::from(2);
        }
        None => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
