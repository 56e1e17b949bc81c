//! The `--threads` option: sizes the global rayon pool every kernel runs on, and runs a
//! command's work on that pool.

use anyhow::{Result, bail};

/// Builds the global thread pool with `threads` workers (all cores when `None`).
fn configure(threads: Option<usize>) -> Result<()> {
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

/// Builds the global pool (see [`configure`]) and runs `job` on one of its workers. The
/// kernels' parallel sections then split inside the pool. Called from outside it, each section
/// is handed to the pool while the caller sleeps until it is done: two thread switches per
/// section, dozens per training step. That ran `ganglion train` at half the speed of the same
/// steps inside the pool (lenet5, one thread: 14,900 against 28,400 images/s).
///
/// # Errors
/// As [`configure`].
pub fn run_on_pool<R: Send>(threads: Option<usize>, job: impl FnOnce() -> R + Send) -> Result<R> {
    configure(threads)?;
    Ok(rayon::scope(|_| job()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_runs_on_a_worker_of_the_pool() {
        let on_worker = run_on_pool(Some(2), || rayon::current_thread_index().is_some())
            .expect("a pool of two threads");
        assert!(on_worker, "the job ran outside the pool");
    }
}
