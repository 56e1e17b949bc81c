//! Unpacking named members of a verified `.tar.gz` archive into the data set's directory, and
//! checking unpacked members against the archive they came from.
//!
//! Only the members a [`FileSpec`] names are read, each must be a regular file, and each is
//! written under its own name in the directory: no path from the archive reaches the disk.

use super::sources::{FileSpec, Member};
use super::verify::{Verdict, sha256_file, sha256_hex};
use anyhow::{Context, Result, bail};
use flate2::read::MultiGzDecoder;
use std::fs::{self, File};
use std::io::{BufReader, Read, Write};
use std::path::Path;

/// Calls `visit(index, size, contents)` for each of `members` found in `archive`, in archive
/// order, and stops once all are seen.
///
/// # Errors
/// When the archive cannot be read, a member is not a regular file or is absent, or `visit`
/// fails.
fn walk(
    archive: &Path,
    members: &[Member],
    mut visit: impl FnMut(usize, u64, &mut dyn Read) -> Result<()>,
) -> Result<()> {
    let shown = archive.display();
    let file = File::open(archive).with_context(|| format!("cannot open {shown}"))?;
    let mut tar = tar::Archive::new(MultiGzDecoder::new(BufReader::new(file)));
    let mut seen = vec![false; members.len()];
    for entry in tar
        .entries()
        .with_context(|| format!("{shown}: not a tar archive"))?
    {
        let mut entry = entry.with_context(|| format!("{shown}: corrupt archive"))?;
        let path = entry
            .path()
            .with_context(|| format!("{shown}: bad member name"))?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_string();
        let Some(k) = members.iter().position(|m| m.archive_path == path) else {
            continue;
        };
        if !entry.header().entry_type().is_file() {
            bail!("{shown}: member {path} is not a regular file");
        }
        seen[k] = true;
        let size = entry.size();
        visit(k, size, &mut entry)?;
        if seen.iter().all(|&s| s) {
            return Ok(());
        }
    }
    let absent: Vec<&str> = members
        .iter()
        .zip(&seen)
        .filter(|(_, s)| !**s)
        .map(|(m, _)| m.archive_path.as_str())
        .collect();
    bail!("{shown}: the archive lacks {}", absent.join(", "))
}

/// Writes `contents` to `target` through `target.part`, so the final name only ever holds a
/// complete member.
fn extract(contents: &mut dyn Read, target: &Path) -> Result<()> {
    let mut name = target.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    let part = target.with_file_name(name);
    let mut file =
        File::create(&part).with_context(|| format!("cannot write {}", part.display()))?;
    std::io::copy(contents, &mut file)
        .and_then(|_| file.sync_all())
        .with_context(|| format!("cannot unpack into {}", part.display()))?;
    fs::rename(&part, target).with_context(|| format!("cannot rename {}", part.display()))
}

/// Unpacks the members of `spec`'s archive (already verified) into `dir`, leaving members that
/// are already there and identical; returns (unpacked, already present).
///
/// # Errors
/// As `walk`, and when a member cannot be written.
pub fn unpack(dir: &Path, spec: &FileSpec, out: &mut dyn Write) -> Result<(usize, usize)> {
    let archive = dir.join(&spec.name);
    let (mut unpacked, mut present) = (0, 0);
    let mut redo = Vec::new();
    walk(&archive, &spec.members, |k, size, contents| {
        let member = &spec.members[k];
        let target = dir.join(&member.name);
        if !target.is_file() {
            extract(contents, &target)?;
            unpacked += 1;
            writeln!(out, "  unpacked   {}", member.name)?;
        } else if fs::metadata(&target)?.len() == size
            && sha256_hex(contents)? == sha256_file(&target)?
        {
            present += 1;
        } else {
            redo.push(member.clone());
        }
        Ok(())
    })?;
    if !redo.is_empty() {
        // The differing copies were found while streaming past them: one more pass.
        walk(&archive, &redo, |k, _, contents| {
            extract(contents, &dir.join(&redo[k].name))?;
            unpacked += 1;
            writeln!(
                out,
                "  unpacked   {} (the copy on disk differed from the archive)",
                redo[k].name
            )?;
            Ok(())
        })?;
    }
    Ok((unpacked, present))
}

/// Checks each unpacked member of `spec` in `dir` against the archive's copy; without a
/// verified archive (`archive_ok` false) members can only be reported unchecked.
///
/// # Errors
/// When the archive or a member cannot be read.
pub fn check_members(
    dir: &Path,
    spec: &FileSpec,
    archive_ok: bool,
) -> Result<Vec<(String, Verdict)>> {
    let mut verdicts: Vec<Verdict> = spec
        .members
        .iter()
        .map(|m| {
            if !dir.join(&m.name).is_file() {
                Verdict::Missing
            } else if archive_ok {
                Verdict::Bad(format!("not found in {}", spec.name))
            } else {
                Verdict::Bad(format!(
                    "not checked: {} is missing or does not match",
                    spec.name
                ))
            }
        })
        .collect();
    if archive_ok {
        walk(&dir.join(&spec.name), &spec.members, |k, size, contents| {
            let target = dir.join(&spec.members[k].name);
            if !target.is_file() {
                return Ok(());
            }
            let len = fs::metadata(&target)?.len();
            verdicts[k] = if len != size {
                Verdict::Bad(format!("{len} bytes, the archive's copy has {size}"))
            } else {
                let (want, got) = (sha256_hex(contents)?, sha256_file(&target)?);
                if want == got {
                    Verdict::Ok(format!("identical to the copy in {}", spec.name))
                } else {
                    Verdict::Bad(format!("sha256 {got} differs from the archive's {want}"))
                }
            };
            Ok(())
        })?;
    }
    Ok(spec
        .members
        .iter()
        .map(|m| m.name.clone())
        .zip(verdicts)
        .collect())
}
