//! The servers' audit trail: one JSON line per session, appended to a file
//! (`serve --audit-log FILE`, `dealer --audit-log FILE`), so a hospital can
//! say who asked for which diagnosis and when without storing records.
//!
//! A line holds only what the server knows without looking at data: the
//! time, the session's tag (never its id), the subjects of the peers'
//! certificates, the model's architecture digest, the output policy, the
//! number of records, the bytes on the server's links, the outcome and the
//! error's class (its code, never its message, which may quote a peer). No
//! record, share, weight, seed or result ever reaches it.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::ServiceError;

/// An append-only audit file shared by a server's session threads.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    file: Mutex<File>,
}

/// One session as the audit trail records it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Entry {
    /// When the session ended (RFC 3339, UTC).
    pub time: String,
    /// The server that wrote the line: `provider` or `dealer`.
    pub server: String,
    /// The session's tag ([`crate::session_tag`]); `None` if it ended before it had one.
    pub session: Option<String>,
    /// The subjects of the peers' certificates (`none` without one), in the
    /// order: client, then dealer (provider); provider, then client (dealer).
    pub peers: Vec<String>,
    /// The architecture digest (hex), once known.
    pub model: Option<String>,
    /// The output policy (`label`, `probabilities`, `logits`), once known.
    pub policy: Option<String>,
    /// Records diagnosed.
    pub records: u64,
    /// Bytes both ways on the server's links of this session.
    pub bytes: u64,
    /// `ok` or `failed`.
    pub outcome: String,
    /// The error's class ([`ServiceError::code`]) when the session failed.
    pub error: Option<String>,
}

impl Entry {
    /// An entry of `server` (`provider` or `dealer`), to fill in as the session goes.
    pub(crate) fn new(server: &str) -> Self {
        Self {
            server: server.into(),
            ..Self::default()
        }
    }

    /// Sets the outcome from the session's result.
    pub(crate) fn finish<T>(&mut self, r: &Result<T, ServiceError>) {
        self.time = now_rfc3339();
        match r {
            Ok(_) => self.outcome = "ok".into(),
            Err(e) => {
                self.outcome = "failed".into();
                self.error = Some(e.code().into());
            }
        }
    }
}

impl AuditLog {
    /// Opens (or creates) `path` for appending; the error names the file.
    pub fn open(path: &Path) -> Result<Self, ServiceError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| ServiceError::Config(format!("audit log {}: {e}", path.display())))?;
        Ok(Self {
            path: path.to_path_buf(),
            file: Mutex::new(file),
        })
    }

    /// Appends `entry` as one line. A failure to write is logged (the
    /// session's own outcome does not change).
    pub(crate) fn write(&self, entry: &Entry) {
        let line = match serde_json::to_string(entry) {
            Ok(l) => l + "\n",
            Err(e) => {
                tracing::error!(error = %e, "cannot encode an audit entry");
                return;
            }
        };
        let written = match self.file.lock() {
            Ok(mut f) => f.write_all(line.as_bytes()).and_then(|()| f.flush()),
            Err(_) => Err(std::io::Error::other("audit log lock poisoned")),
        };
        if let Err(e) = written {
            tracing::error!(file = %self.path.display(), error = %e, "cannot append to the audit log");
        }
    }
}

/// Writes `entry` to `log`, if there is one.
pub(crate) fn record(log: Option<&AuditLog>, entry: &Entry) {
    if let Some(log) = log {
        log.write(entry);
    }
}

/// The current time in RFC 3339 (UTC, whole seconds).
fn now_rfc3339() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    rfc3339(secs)
}

/// `secs` since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ` (days to a civil
/// date by Howard Hinnant's algorithm).
fn rfc3339(secs: u64) -> String {
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_796_387_045), "2026-12-04T12:24:05Z");
        assert_eq!(rfc3339(4_107_542_399), "2100-02-28T23:59:59Z");
    }
}
