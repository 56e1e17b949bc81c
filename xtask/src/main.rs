//! `cargo xtask`: the project's chores (benchmarks, data sets).
fn main() {
    eprintln!("usage: cargo xtask <bench|data> ...");
}
