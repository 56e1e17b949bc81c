//! The `--threads` option: sizes the global rayon pool every kernel runs on.

use anyhow::{Result, bail};

/// Builds the global thread pool with `threads` workers (all cores when `None`).
pub fn configure(threads: Option<usize>) -> Result<()> {
    let mut builder = rayon::ThreadPoolBuilder::new();
    match threads {
        Some(0) => bail!("--threads must be at least 1"),
        Some(n) => builder = builder.num_threads(n),
        None => {}
    }
    // A second call in one process (tests) finds the pool built; that is fine.
    let _ = builder.build_global();
    Ok(())
}
