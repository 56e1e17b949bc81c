//! Standard output for the commands' reports: when the reader goes away (`ganglion summary |
//! head`), the process ends quietly with success, as Unix tools do on `SIGPIPE`, instead of
//! panicking inside `println!`. Files a command writes are atomic, so stopping here leaves
//! none half-written.

use std::io::{ErrorKind, Write};

/// Writes `args` to standard output; ends the process on a closed pipe (status 0) or another
/// write error (status 1, with a message).
pub fn write(args: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args) {
        if e.kind() == ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to standard output: {e}");
        std::process::exit(1);
    }
}

/// `println!` that stops quietly when standard output is closed (see [`write`]).
macro_rules! outln {
    () => {
        $crate::stdout::write(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::stdout::write(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` that stops quietly when standard output is closed (see [`write`]).
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::stdout::write(format_args!($($arg)*))
    };
}
