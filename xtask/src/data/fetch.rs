//! `cargo xtask data fetch`: downloads each file of a data set that is not already on disk and
//! verified, through `NAME.part` (resumed when possible), checks it, and only then renames it to
//! its final name; then unpacks archive members.

use super::archive;
use super::http::Client;
use super::sources::{FileSpec, Source};
use super::verify::{self, Verdict};
use anyhow::{Context, Result, bail};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Tries per mirror for one file: an interrupted transfer is resumed this many times in all.
pub const ATTEMPTS: usize = 3;

/// What a fetch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fetched {
    /// Files downloaded.
    pub downloaded: usize,
    /// Files that were already there and verified.
    pub present: usize,
    /// Archive members written.
    pub unpacked: usize,
}

/// Makes sure every file of `source` is in `dir` and verified, downloading what is missing or
/// does not match; progress lines go to `out`.
///
/// # Errors
/// When `dir` cannot be created, a file cannot be had from any mirror (the message lists each
/// URL tried and what went wrong), or an archive cannot be unpacked.
pub fn fetch(source: &Source, dir: &Path, client: &Client, out: &mut dyn Write) -> Result<Fetched> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    writeln!(out, "{} -> {}", source.name, dir.display())?;
    let mut done = Fetched::default();
    for spec in &source.files {
        match verify::check_file(dir, spec)? {
            Verdict::Ok(how) => {
                writeln!(out, "  present    {}  ({how})", spec.name)?;
                done.present += 1;
            }
            verdict => {
                if let Verdict::Bad(why) = verdict {
                    writeln!(out, "  replacing  {}: {why}", spec.name)?;
                }
                download(source, spec, dir, client, out)?;
                done.downloaded += 1;
            }
        }
        if !spec.members.is_empty() {
            let (unpacked, _) = archive::unpack(dir, spec, out)?;
            done.unpacked += unpacked;
        }
    }
    writeln!(
        out,
        "{}: {} files verified in {} ({} downloaded, {} already present{})",
        source.name,
        source.files.len(),
        dir.display(),
        done.downloaded,
        done.present,
        if done.unpacked > 0 {
            format!(", {} unpacked", done.unpacked)
        } else {
            String::new()
        }
    )?;
    Ok(done)
}

/// The `.part` file a download of `spec` goes through.
pub fn part_path(dir: &Path, spec: &FileSpec) -> PathBuf {
    dir.join(format!("{}.part", spec.name))
}

/// Downloads `spec` from the first mirror that delivers a file matching its sums.
fn download(
    source: &Source,
    spec: &FileSpec,
    dir: &Path,
    client: &Client,
    out: &mut dyn Write,
) -> Result<()> {
    let part = part_path(dir, spec);
    let target = dir.join(&spec.name);
    let mut failures = Vec::new();
    for url in source.urls(&spec.name) {
        let mut attempt = 0;
        // A resumed part that fails the check may hold another file's bytes: one fresh start.
        let mut restarted = false;
        while attempt < ATTEMPTS {
            attempt += 1;
            let outcome = match client.download(&url, &part) {
                Ok(outcome) => outcome,
                Err(e) if e.retryable && attempt < ATTEMPTS => {
                    writeln!(out, "  retrying   {}: {e}", spec.name)?;
                    std::thread::sleep(client.retry_pause);
                    continue;
                }
                Err(e) => {
                    failures.push(e.to_string());
                    break;
                }
            };
            match verify::check_path(&part, spec, false)? {
                Verdict::Ok(how) => {
                    fs::rename(&part, &target)
                        .with_context(|| format!("cannot rename {}", part.display()))?;
                    let resumed = if outcome.resumed_from > 0 {
                        format!(", resumed at byte {}", outcome.resumed_from)
                    } else {
                        String::new()
                    };
                    writeln!(
                        out,
                        "  downloaded {}  ({} bytes from {url}{resumed}; {how})",
                        spec.name, outcome.total
                    )?;
                    return Ok(());
                }
                verdict => {
                    // A file that fails its check is never kept, not even as a part.
                    let _ = fs::remove_file(&part);
                    let why = match verdict {
                        Verdict::Bad(why) => why,
                        _ => "the download vanished".into(),
                    };
                    if outcome.resumed_from > 0 && !restarted {
                        restarted = true;
                        attempt -= 1;
                        writeln!(
                            out,
                            "  restarting {}: the resumed download failed its check ({why})",
                            spec.name
                        )?;
                        continue;
                    }
                    failures.push(format!("{url}: checksum mismatch: {why}"));
                    break;
                }
            }
        }
    }
    let kept = if part.is_file() {
        format!(
            "; the partial download {} is kept and resumed next time",
            part.display()
        )
    } else {
        String::new()
    };
    bail!(
        "{}: could not get {} from any mirror{kept}:\n  {}",
        source.name,
        spec.name,
        failures.join("\n  ")
    )
}
