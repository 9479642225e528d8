//! The audit log: JSON lines, appended and flushed. A request gets a `sending` line before it
//! leaves the host and a `done` line after; a refused one gets one `denied` line. No secrets:
//! records hold names, classes, decisions, statuses and ids only.

use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Serialize)]
pub struct Record<'a> {
    /// RFC 3339 UTC time.
    pub time: String,
    /// `sending`, `retry`, `done`, `denied`, `not-configured`, `dry-run`.
    pub event: &'a str,
    /// Per-request id joining `sending` and `done`.
    pub request: u64,
    /// The tool the agent called (as it named it: for the record only; decisions come from
    /// `operation`).
    pub tool: &'a str,
    /// Who called (the MCP HTTP client's token name), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<&'a str>,
    /// The operation the host classified the request as.
    pub operation: &'a str,
    pub access: &'a str,
    pub decision: &'a str,
    pub method: &'a str,
    /// Path without query (ids may appear; no secrets do).
    pub path: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub klaviyo_request_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The log file, opened once in append mode (reopened if a write fails, e.g. after rotation
/// removed it).
#[derive(Debug)]
pub struct AuditLog {
    path: Option<PathBuf>,
    file: Mutex<Option<std::fs::File>>,
}

impl AuditLog {
    pub fn new(path: Option<&Path>) -> AuditLog {
        AuditLog {
            path: path.map(Path::to_path_buf),
            file: Mutex::new(None),
        }
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Appends one record and flushes it to the OS before returning.
    pub fn write(&self, r: &Record) -> Result<(), String> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let mut line = serde_json::to_string(r).map_err(|e| e.to_string())?;
        line.push('\n');
        let mut file = self.file.lock().unwrap();
        // Created readable by its owner only: it names the account's resources.
        let open = || {
            let mut o = std::fs::OpenOptions::new();
            o.create(true).append(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
            o.open(path)
        };
        if file.is_none() || !path.exists() {
            *file = Some(open().map_err(|e| format!("audit log {}: {e}", path.display()))?);
        }
        let f = file.as_mut().expect("opened above");
        // Unbuffered: one write(2) per record, in the OS before the request goes out.
        f.write_all(line.as_bytes())
            .and_then(|_| f.flush())
            .map_err(|e| {
                *file = None;
                format!("audit log {}: {e}", path.display())
            })
    }
}

pub fn now_rfc3339() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = if month <= 2 { y + 1 } else { y };
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn time_format() {
        let t = super::now_rfc3339();
        assert_eq!(t.len(), 24, "{t}");
        assert!(t.starts_with("20") && t.ends_with('Z'));
    }
}
