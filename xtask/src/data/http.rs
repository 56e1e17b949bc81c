//! HTTP downloads into a `.part` file: resumed with a `Range` request when the part exists and
//! the server honours it, started afresh when it does not; a progress bar for large files.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

/// Files at least this large get a progress bar (when stderr is a terminal).
const PROGRESS_MIN_BYTES: u64 = 1 << 20;

/// Why a transfer did not deliver the whole file.
#[derive(Debug)]
pub struct TransferError {
    /// The URL asked for.
    pub url: String,
    /// What happened.
    pub message: String,
    /// Whether asking again may help (an interrupted transfer, a server error), as opposed to
    /// a 404 or a local write error.
    pub retryable: bool,
}

impl std::fmt::Display for TransferError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.url, self.message)
    }
}

/// What a completed transfer did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Bytes the part held before (0 for a fresh download).
    pub resumed_from: u64,
    /// Bytes the part holds now.
    pub total: u64,
}

/// A blocking HTTP client for data-set downloads.
pub struct Client {
    agent: ureq::Agent,
    progress: bool,
    /// Pause before a retry, so a briefly unreachable server gets a moment.
    pub retry_pause: Duration,
}

impl Client {
    /// A client with generous timeouts for slow links; `progress` draws bars on stderr.
    pub fn new(progress: bool) -> Self {
        let config = ureq::Agent::config_builder()
            // Statuses are handled here: 206 and 416 mean something to a resume.
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_per_read(Some(Duration::from_secs(60)))
            .user_agent(concat!("ganglion-xtask/", env!("CARGO_PKG_VERSION")))
            .build();
        Self {
            agent: ureq::Agent::new_with_config(config),
            progress,
            retry_pause: Duration::from_secs(2),
        }
    }

    /// Downloads `url` into `part`, continuing from the bytes `part` already holds when the
    /// server supports ranges.
    ///
    /// # Errors
    /// A [`TransferError`]: retryable when the connection failed or closed early (the bytes
    /// received stay in `part` for a resume), or the server answered 5xx; final for any other
    /// status and for local write errors.
    pub fn download(&self, url: &str, part: &Path) -> Result<Outcome, TransferError> {
        let fail = |message: String, retryable: bool| TransferError {
            url: url.to_string(),
            message,
            retryable,
        };
        let have = std::fs::metadata(part).map(|m| m.len()).unwrap_or(0);
        let mut request = self.agent.get(url);
        if have > 0 {
            request = request.header("Range", format!("bytes={have}-"));
        }
        let response = request
            .call()
            .map_err(|e| fail(format!("request failed: {e}"), true))?;
        let status = response.status();
        let offset = match status.as_u16() {
            200 => 0,
            206 => {
                let start = response
                    .headers()
                    .get("content-range")
                    .and_then(|v| v.to_str().ok())
                    .and_then(range_start);
                if start != Some(have) {
                    // A resume that does not start where the part ends cannot be appended.
                    let _ = std::fs::remove_file(part);
                    return Err(fail(
                        format!(
                            "the server resumed at {start:?} instead of byte {have}; starting over"
                        ),
                        true,
                    ));
                }
                have
            }
            // Nothing left past what the part holds: it is complete (the checksum will tell).
            416 if have > 0 => {
                return Ok(Outcome {
                    resumed_from: have,
                    total: have,
                });
            }
            code => {
                let reason = status.canonical_reason().unwrap_or("");
                return Err(fail(format!("HTTP {code} {reason}"), code >= 500));
            }
        };
        let length = response.body().content_length();
        let mut file = if offset > 0 {
            OpenOptions::new().append(true).open(part)
        } else {
            File::create(part)
        }
        .map_err(|e| fail(format!("cannot write {}: {e}", part.display()), false))?;
        let name = part
            .file_name()
            .map(|n| n.to_string_lossy().trim_end_matches(".part").to_string())
            .unwrap_or_default();
        let bar = self.bar(length.map(|n| n + offset), offset, &name);
        let mut reader = response.into_body().into_reader();
        let mut buf = vec![0u8; 1 << 16];
        let mut received = 0u64;
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    file.write_all(&buf[..n]).map_err(|e| {
                        fail(format!("cannot write {}: {e}", part.display()), false)
                    })?;
                    received += n as u64;
                    bar.inc(n as u64);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    bar.abandon();
                    let of = length.map_or(String::new(), |n| format!(" of {}", offset + n));
                    return Err(fail(
                        format!(
                            "the transfer stopped after {}{of} bytes: {e}",
                            offset + received
                        ),
                        true,
                    ));
                }
            }
        }
        bar.finish_and_clear();
        file.sync_all()
            .map_err(|e| fail(format!("cannot write {}: {e}", part.display()), false))?;
        if let Some(n) = length
            && received != n
        {
            return Err(fail(
                format!(
                    "the transfer stopped after {} of {} bytes: the server closed the connection",
                    offset + received,
                    offset + n
                ),
                true,
            ));
        }
        Ok(Outcome {
            resumed_from: offset,
            total: offset + received,
        })
    }

    fn bar(&self, total: Option<u64>, done: u64, name: &str) -> ProgressBar {
        if !self.progress || total.is_some_and(|t| t < PROGRESS_MIN_BYTES) {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
        let template =
            "  {prefix} [{bar:30.cyan/blue}] {bytes}/{total_bytes} {bytes_per_sec} ({eta})";
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(name.to_string());
        bar.set_position(done);
        bar
    }
}

/// The first byte of a `Content-Range: bytes START-END/TOTAL` value.
fn range_start(value: &str) -> Option<u64> {
    let rest = value.trim().strip_prefix("bytes")?.trim_start();
    rest.split('-').next()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::range_start;

    #[test]
    fn content_range_start_is_parsed() {
        assert_eq!(range_start("bytes 100-199/200"), Some(100));
        assert_eq!(range_start("bytes 0-0/*"), Some(0));
        assert_eq!(range_start("items 1-2/3"), None);
    }
}
