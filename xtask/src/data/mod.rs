//! `cargo xtask data`: fetches the public data sets into the layout the `ganglion-data` readers
//! expect and verifies what is on disk against the SHA-256 sums recorded in `sources.rs`.

mod archive;
mod fetch;
mod http;
mod sources;
mod verify;

#[cfg(test)]
mod test_server;
#[cfg(test)]
mod tests;

use anyhow::{Context, Result, bail};
use sources::{NAMES, Source};
use std::path::{Path, PathBuf};

/// The usage text of `cargo xtask data`.
pub const USAGE: &str = "\
usage: cargo xtask data fetch <mnist|fashion-mnist|cifar10> [--dir DIR] [--mirror URL]
       cargo xtask data verify [mnist|fashion-mnist|cifar10] [--dir DIR]

fetch   downloads the data set's files that are missing or fail their check into DIR
        (default: data/<name> at the repository root), through NAME.part files that are
        checked against the recorded SHA-256 before they get their final name; interrupted
        downloads are resumed. CIFAR-10's archive is kept and its batch files unpacked beside
        it. A second run verifies and downloads nothing.
verify  re-checks the files on disk: every data set under data/, the one named, or the one
        found in --dir.

  --dir DIR      the data set's directory
  --mirror URL   download from URL (a directory holding the same file names) instead of the
                 canonical locations and their mirrors";

/// A parsed `cargo xtask data` command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Task {
    /// Download and verify one data set into a directory.
    Fetch {
        /// The data set, with its mirror list.
        source: Source,
        /// Where its files go.
        dir: PathBuf,
    },
    /// Verify data sets on disk.
    Verify {
        /// Each data set with its directory; `required` ones must exist.
        targets: Vec<(Source, PathBuf)>,
        /// Whether a missing directory is an error (it was named) or skipped.
        required: bool,
    },
}

fn default_dir(name: &str) -> PathBuf {
    crate::project_root().join("data").join(name)
}

fn source(name: &str) -> Result<Source> {
    Source::by_name(name).with_context(|| {
        format!(
            "data: unknown data set `{name}`; known: {}\n\n{USAGE}",
            NAMES.join(", ")
        )
    })
}

/// The data set whose files are in `dir`: the first whose first file is there.
fn detect(dir: &Path) -> Result<Source> {
    NAMES
        .iter()
        .filter_map(|n| Source::by_name(n))
        .find(|s| verify::locate(dir, &s.files[0]).is_some())
        .with_context(|| {
            format!(
                "data verify: {} holds no file of a known data set ({}); name the data set",
                dir.display(),
                NAMES.join(", ")
            )
        })
}

impl Task {
    /// Parses the arguments after `data`.
    ///
    /// # Errors
    /// On an unknown subcommand, data set or flag, or a flag without its value.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Task> {
        let mut args = args.into_iter();
        let command = args.next().unwrap_or_default();
        let (mut name, mut dir, mut mirror) = (None, None, None);
        while let Some(arg) = args.next() {
            let mut value = || {
                args.next()
                    .with_context(|| format!("data: `{arg}` needs a value\n\n{USAGE}"))
            };
            match arg.as_str() {
                "--dir" => dir = Some(PathBuf::from(value()?)),
                "--mirror" if command == "fetch" => mirror = Some(value()?),
                flag if flag.starts_with('-') => {
                    bail!("data {command}: unknown argument `{flag}`\n\n{USAGE}")
                }
                _ if name.is_none() => name = Some(arg),
                _ => bail!("data {command}: unexpected argument `{arg}`\n\n{USAGE}"),
            }
        }
        match command.as_str() {
            "fetch" => {
                let name = name.with_context(|| {
                    format!(
                        "data fetch: name a data set ({})\n\n{USAGE}",
                        NAMES.join(", ")
                    )
                })?;
                let mut source = source(&name)?;
                if let Some(url) = mirror {
                    source = source.with_mirror(&url);
                }
                let dir = dir.unwrap_or_else(|| default_dir(&name));
                Ok(Task::Fetch { source, dir })
            }
            "verify" => {
                let targets = match (name, dir) {
                    (Some(n), Some(d)) => vec![(source(&n)?, d)],
                    (Some(n), None) => vec![(source(&n)?, default_dir(&n))],
                    (None, Some(d)) => vec![(detect(&d)?, d)],
                    (None, None) => {
                        let all = NAMES.iter().map(|n| (source(n), default_dir(n)));
                        let targets = all
                            .map(|(s, d)| s.map(|s| (s, d)))
                            .collect::<Result<Vec<_>>>()?;
                        return Ok(Task::Verify {
                            targets,
                            required: false,
                        });
                    }
                };
                Ok(Task::Verify {
                    targets,
                    required: true,
                })
            }
            "" => bail!("{USAGE}"),
            other => bail!("data: unknown subcommand `{other}`\n\n{USAGE}"),
        }
    }
}

/// Runs a parsed `cargo xtask data` command, writing to stdout.
///
/// # Errors
/// As [`fetch::fetch`]; for `verify`, when a file is missing or does not match.
pub fn run(task: &Task) -> Result<()> {
    let mut stdout = std::io::stdout();
    match task {
        Task::Fetch { source, dir } => {
            let client = http::Client::new(true);
            fetch::fetch(source, dir, &client, &mut stdout)?;
            Ok(())
        }
        Task::Verify { targets, required } => {
            let mut problems = 0;
            let mut checked = 0;
            for (source, dir) in targets {
                if !dir.is_dir() {
                    if *required {
                        bail!("data verify: {}: no such directory", dir.display());
                    }
                    println!("{} ({}): not fetched", source.name, dir.display());
                    continue;
                }
                checked += 1;
                problems += verify::verify(source, dir, &mut stdout)?;
            }
            if problems > 0 {
                bail!(
                    "data verify: {problems} file(s) missing or not matching; \
                     `cargo xtask data fetch <name>` replaces them"
                );
            }
            if checked == 0 {
                println!("no data set found under {}", default_dir("").display());
            }
            Ok(())
        }
    }
}
