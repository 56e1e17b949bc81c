//! The `ganglion` command.
fn main() {
    println!("ganglion {}", env!("CARGO_PKG_VERSION"));
}
