//! Checking data-set files on disk against the recorded SHA-256 sums: the check every download
//! passes before it gets its final name, and `cargo xtask data verify`.

use super::archive;
use super::sources::{FileSpec, Source};
use anyhow::{Context, Result};
use flate2::read::MultiGzDecoder;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

/// What a check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The file matches; how it was checked.
    Ok(String),
    /// The file is there but does not match; why.
    Bad(String),
    /// No such file.
    Missing,
}

/// The SHA-256 of everything `reader` yields, lowercase hex.
///
/// # Errors
/// When reading fails.
pub fn sha256_hex(mut reader: impl Read) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// The SHA-256 of a file, lowercase hex.
///
/// # Errors
/// When the file cannot be read.
pub fn sha256_file(path: &Path) -> Result<String> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    sha256_hex(BufReader::new(file)).with_context(|| format!("cannot read {}", path.display()))
}

/// Checks the file at `path` as `spec`'s file (`raw`: its uncompressed form).
///
/// The published file's sum is tried first (cheapest); failing that, the sum of the
/// gunzipped contents, so that a re-compressed copy of the same data passes.
///
/// # Errors
/// When the file cannot be read (a mismatch is a [`Verdict::Bad`], not an error).
pub fn check_path(path: &Path, spec: &FileSpec, raw: bool) -> Result<Verdict> {
    let got = sha256_file(path)?;
    if raw {
        return Ok(match &spec.content_sha256 {
            Some(want) if *want == got => Verdict::Ok("sha256 of the uncompressed file".into()),
            Some(want) => Verdict::Bad(format!("sha256 {got}, expected {want}")),
            None => Verdict::Bad("no checksum is recorded for the uncompressed form".into()),
        });
    }
    if spec.sha256.as_ref() == Some(&got) {
        return Ok(Verdict::Ok("sha256 of the published file".into()));
    }
    let published = match &spec.sha256 {
        Some(want) => format!("sha256 {got}, expected {want}"),
        None => format!("sha256 {got}, no published sum recorded"),
    };
    let Some(want) = &spec.content_sha256 else {
        return Ok(if spec.sha256.is_some() {
            Verdict::Bad(published)
        } else {
            Verdict::Bad("no checksum is recorded for it".into())
        });
    };
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    Ok(
        match sha256_hex(MultiGzDecoder::new(BufReader::new(file))) {
            Ok(content) if content == *want => {
                Verdict::Ok("sha256 of the gunzipped contents: a re-compressed copy".into())
            }
            Ok(content) => Verdict::Bad(format!(
                "{published}; gunzipped contents sha256 {content}, expected {want}"
            )),
            Err(e) => Verdict::Bad(format!("{published}, and it does not gunzip: {e}")),
        },
    )
}

/// Where `spec`'s file is in `dir`: its own name, else its uncompressed name (`true`) when
/// the contents' sum is known.
pub fn locate(dir: &Path, spec: &FileSpec) -> Option<(PathBuf, bool)> {
    let path = dir.join(&spec.name);
    if path.is_file() {
        return Some((path, false));
    }
    let raw = dir.join(spec.raw_name()?);
    raw.is_file().then_some((raw, true))
}

/// Checks `spec`'s file in `dir`.
///
/// # Errors
/// When the file exists but cannot be read.
pub fn check_file(dir: &Path, spec: &FileSpec) -> Result<Verdict> {
    match locate(dir, spec) {
        Some((path, raw)) => check_path(&path, spec, raw),
        None => Ok(Verdict::Missing),
    }
}

/// Checks every file of `source` in `dir`, and every unpacked member against its archive,
/// writing one line per file to `out`; returns how many are missing or do not match.
///
/// # Errors
/// When a file exists but cannot be read, or `out` cannot be written.
pub fn verify(source: &Source, dir: &Path, out: &mut dyn Write) -> Result<usize> {
    writeln!(out, "{} ({}):", source.name, dir.display())?;
    let (mut checked, mut problems) = (0, 0);
    for spec in &source.files {
        let verdict = check_file(dir, spec)?;
        let shown = match locate(dir, spec) {
            Some((path, true)) => path
                .file_name()
                .map_or(spec.name.clone(), |n| n.to_string_lossy().into_owned()),
            _ => spec.name.clone(),
        };
        checked += 1;
        problems += usize::from(report(out, &shown, &verdict)?);
        if spec.members.is_empty() {
            continue;
        }
        let archive_ok = matches!(verdict, Verdict::Ok(_));
        for (name, member) in archive::check_members(dir, spec, archive_ok)? {
            checked += 1;
            problems += usize::from(report(out, &name, &member)?);
        }
    }
    writeln!(
        out,
        "{}: {} of {checked} files verified",
        source.name,
        checked - problems
    )?;
    Ok(problems)
}

/// Writes one verdict line; returns whether it is a problem.
fn report(out: &mut dyn Write, name: &str, verdict: &Verdict) -> Result<bool> {
    match verdict {
        Verdict::Ok(how) => writeln!(out, "  ok        {name}  ({how})")?,
        Verdict::Bad(why) => writeln!(out, "  MISMATCH  {name}: {why}")?,
        Verdict::Missing => writeln!(out, "  missing   {name}")?,
    }
    Ok(!matches!(verdict, Verdict::Ok(_)))
}
