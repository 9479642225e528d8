//! The audit log: JSON lines, appended and flushed. A request gets a `sending` line before it
//! leaves the host and a `done` line after; a refused one gets one `denied` line. No secrets:
//! records hold names, classes, decisions, statuses and ids only.
//!
//! Tamper-evident: every line ends in a `hash` chained to the line before (see [`chain`]); a
//! file begins with a `start` record naming the last hash of the file before it (kept in the
//! `.chain` file beside the log, so rotation keeps the chain). `report --verify` ([`verify`])
//! finds an edited, inserted or removed line, a gap between rotated files, and records cut off
//! the end. It does not stop someone who can write the log from rewriting all of it with new
//! hashes (there is no secret in the chain): for that, ship the lines off the machine as they
//! are written (journald/syslog forwarding) or keep copies of the `.chain` head elsewhere.

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
    /// The named connection (`--connection`), when one is used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection: Option<&'a str>,
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
    /// How it ended when no answer came back (`throttled`, `timeout`, `transport`,
    /// `outcome-unknown`), or how a confirmation ended (`approved`, `declined`, `unconfirmed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<&'a str>,
    /// Time the request waited for Klaviyo's pace before it was sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paced_ms: Option<u64>,
    /// For an `outcome-unknown` write: the read that shows whether it happened.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
}

/// The log file, opened once (reopened when a write fails or the file at `path` is no longer
/// the one open, e.g. after rotation moved it).
#[derive(Debug)]
pub struct AuditLog {
    path: Option<PathBuf>,
    open: Mutex<Option<Open>>,
}

/// The open log, its `.chain` file, and the head this process wrote last: (the log's length
/// after that write, its hash). While the length is unchanged no other process has written, so
/// the head is known without reading the file (measured in the bench: reading the tail and
/// rewriting the `.chain` file on every record cost ~275 µs a record).
#[derive(Debug)]
struct Open {
    log: std::fs::File,
    chain: std::fs::File,
    head: Option<(u64, String)>,
}

/// The file beside the log holding the hash of the last record written (`audit.log.chain`):
/// it carries the chain across rotation (a new file's `start` record names it as `prev`) and
/// lets `verify` see records cut off the end.
pub fn chain_file(log: &Path) -> PathBuf {
    let mut name = log.as_os_str().to_os_string();
    name.push(".chain");
    PathBuf::from(name)
}

/// How long a write waits for another process holding the log's lock before it gives up (and
/// the request is not sent).
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

impl AuditLog {
    pub fn new(path: Option<&Path>) -> AuditLog {
        AuditLog {
            path: path.map(Path::to_path_buf),
            open: Mutex::new(None),
        }
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Appends one record, chained to the one before it (see [`chain`]), and flushes it to the
    /// OS before returning. Processes sharing the log take turns under an exclusive `flock`.
    pub fn write(&self, r: &Record) -> Result<(), String> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let body = serde_json::to_string(r).map_err(|e| e.to_string())?;
        let mut open = self.open.lock().unwrap();
        let err = |e: std::io::Error| format!("audit log {}: {e}", path.display());
        if open.as_ref().is_none_or(|o| !same_file(&o.log, path)) {
            *open = Some(Open {
                log: open_log(path).map_err(err)?,
                chain: open_chain(&chain_file(path)).map_err(err)?,
                head: None,
            });
        }
        let o = open.as_mut().expect("opened above");
        let written = lock(&o.log)
            .and_then(|()| append_chained(o, &body))
            .map_err(err);
        // SAFETY: flock on a descriptor we own; no memory is involved.
        #[cfg(unix)]
        unsafe {
            libc::flock(std::os::fd::AsRawFd::as_raw_fd(&o.log), libc::LOCK_UN);
        }
        if written.is_err() {
            *open = None;
        }
        written
    }
}

/// Created readable by its owner only: it names the account's resources.
fn open_log(path: &Path) -> std::io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.create(true).read(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o.open(path)
}

/// Whether `f` is still the file at `path` (not moved away by rotation, nor deleted).
fn same_file(f: &std::fs::File, path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (f.metadata(), std::fs::metadata(path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = f;
        path.exists()
    }
}

#[cfg(unix)]
fn lock(f: &std::fs::File) -> std::io::Result<()> {
    let started = std::time::Instant::now();
    loop {
        // SAFETY: flock on a descriptor we own; no memory is involved.
        if unsafe {
            libc::flock(
                std::os::fd::AsRawFd::as_raw_fd(f),
                libc::LOCK_EX | libc::LOCK_NB,
            )
        } == 0
        {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EWOULDBLOCK) if started.elapsed() < LOCK_WAIT => {
                std::thread::sleep(std::time::Duration::from_millis(2))
            }
            Some(libc::EWOULDBLOCK) => {
                return Err(std::io::Error::other(format!(
                    "another process has held its lock for {} s",
                    LOCK_WAIT.as_secs()
                )))
            }
            _ => return Err(e),
        }
    }
}

#[cfg(not(unix))]
fn lock(_: &std::fs::File) -> std::io::Result<()> {
    Ok(())
}

/// The `.chain` file, opened once: a fixed 65 bytes (the hash and a newline) rewritten in place.
fn open_chain(path: &Path) -> std::io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.create(true).read(true).write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o.open(path)
}

/// Appends `body` with its hash; first a `start` record when the file is new (or its last line
/// carries no hash: a log from before the chain).
fn append_chained(o: &mut Open, body: &str) -> std::io::Result<()> {
    use std::io::{Read, Seek};
    let len = o.log.metadata()?.len();
    let mut prev = match &o.head {
        Some((at, h)) if *at == len => Some(h.clone()),
        _ => last_hash(&o.log, len)?,
    };
    let mut out = String::new();
    if prev.is_none() {
        let mut carried = String::new();
        o.chain.seek(std::io::SeekFrom::Start(0))?;
        let _ = (&o.chain).take(64).read_to_string(&mut carried);
        let carried = Some(carried).filter(|c| is_hash(c));
        let start = serde_json::json!({
            "time": now_rfc3339(),
            "event": "start",
            "chain": 1,
            "prev": carried,
        })
        .to_string();
        let h = chain(carried.as_deref().unwrap_or(""), &start);
        out.push_str(&with_hash(&start, &h));
        prev = Some(h);
    }
    let h = chain(prev.as_deref().unwrap_or(""), body);
    out.push_str(&with_hash(body, &h));
    // Unbuffered: one write(2), in the OS before the request goes out.
    o.log.write_all(out.as_bytes())?;
    o.log.flush()?;
    o.head = Some((len + out.len() as u64, h.clone()));
    // Best effort: the log line is what counts; a stale head only weakens the tail check.
    let line = format!("{h}\n");
    let _ = o
        .chain
        .seek(std::io::SeekFrom::Start(0))
        .and_then(|_| o.chain.write_all(line.as_bytes()));
    Ok(())
}

/// The hash of the file's last line, if it has one: the last 4 KB are read (a record is far
/// shorter), more only when no whole line is in them.
fn last_hash(f: &std::fs::File, len: u64) -> std::io::Result<Option<String>> {
    if len == 0 {
        return Ok(None);
    }
    let mut take = len.min(4096);
    loop {
        let mut buf = vec![0; take as usize];
        #[cfg(unix)]
        std::os::unix::fs::FileExt::read_exact_at(f, &mut buf, len - take)?;
        #[cfg(not(unix))]
        {
            use std::io::{Read, Seek};
            let mut g = f.try_clone()?;
            g.seek(std::io::SeekFrom::Start(len - take))?;
            g.read_exact(&mut buf)?;
        }
        let text = String::from_utf8_lossy(&buf);
        let trimmed = text.trim_end_matches('\n');
        match trimmed.rfind('\n') {
            Some(i) => return Ok(split_hash(&trimmed[i + 1..]).map(|(_, h)| h.to_string())),
            None if take == len || take >= 1 << 20 => {
                return Ok(split_hash(trimmed).map(|(_, h)| h.to_string()))
            }
            None => take = (take * 4).min(len),
        }
    }
}

/// The chain: `hash = sha256(prev + "\n" + body)` in hex, where `body` is the record's JSON
/// without its `hash` field and `prev` the hash of the record before it (for a `start` record,
/// its `prev` field: the last hash of the file before, or empty).
pub fn chain(prev: &str, body: &str) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(prev.as_bytes());
    h.update(b"\n");
    h.update(body.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn is_hash(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `{…}` → `{…,"hash":"<hex>"}` and a newline.
fn with_hash(body: &str, hash: &str) -> String {
    let inner = body.strip_suffix('}').unwrap_or(body);
    format!("{inner},\"hash\":\"{hash}\"}}\n")
}

/// A line → (its body without the hash, the hash), when it ends in a `hash` field.
pub fn split_hash(line: &str) -> Option<(String, &str)> {
    let rest = line.strip_suffix("\"}")?;
    let (head, hash) = rest.rsplit_once(",\"hash\":\"")?;
    is_hash(hash).then(|| (format!("{head}}}"), hash))
}

/// What `verify` found.
#[derive(Debug, PartialEq, Eq)]
pub struct Verified {
    pub files: usize,
    pub records: usize,
    /// Where the chain breaks first: `file:line: why`.
    pub broken: Option<String>,
    /// Notes that are not breaks (a file that starts a new chain, lines from before the chain).
    pub notes: Vec<String>,
}

/// Checks the chain over `files`, oldest first (rotated files, then the current one): every
/// line hashes to its `hash` from the one before; each file after the first starts with a
/// `start` record whose `prev` is the previous file's last hash; the last hash matches the
/// `.chain` file beside the last log, when there is one (else records were cut off the end).
pub fn verify(files: &[PathBuf]) -> std::io::Result<Verified> {
    let mut v = Verified {
        files: files.len(),
        records: 0,
        broken: None,
        notes: Vec::new(),
    };
    let mut prev: Option<String> = None;
    for (fi, file) in files.iter().enumerate() {
        let text = std::fs::read_to_string(file)?;
        let name = file.display();
        for (i, line) in text.lines().enumerate() {
            let at = format!("{name}:{}", i + 1);
            let Some((body, hash)) = split_hash(line) else {
                if prev.is_none() && v.records == 0 {
                    v.notes.push(format!(
                        "{at}: written before the chain (no hash); not checked"
                    ));
                    continue;
                }
                v.broken = Some(format!(
                    "{at}: the line has no hash (edited, or not written by the harness)"
                ));
                return Ok(v);
            };
            let rec: serde_json::Value = match serde_json::from_str(&body) {
                Ok(r) => r,
                Err(e) => {
                    v.broken = Some(format!("{at}: not a JSON record ({e})"));
                    return Ok(v);
                }
            };
            let start = rec["event"] == "start";
            let expected_prev = if start {
                let named = rec["prev"].as_str().map(String::from);
                match (&prev, &named) {
                    (Some(p), Some(n)) if p != n => {
                        v.broken = Some(format!(
                            "{at}: this file's start names a previous record that is not the last one of the file before (records missing between the files)"
                        ));
                        return Ok(v);
                    }
                    (Some(_), None) if i == 0 => v.notes.push(format!(
                        "{at}: a new chain starts here (the log was started afresh)"
                    )),
                    (None, Some(_)) if fi == 0 && i == 0 => v.notes.push(format!(
                        "{at}: continues a chain from an earlier file not given"
                    )),
                    _ => {}
                }
                named.unwrap_or_default()
            } else {
                match &prev {
                    Some(p) => p.clone(),
                    None => {
                        v.broken = Some(format!("{at}: the chain must begin with a start record"));
                        return Ok(v);
                    }
                }
            };
            if chain(&expected_prev, &body) != hash {
                v.broken = Some(format!(
                    "{at}: the hash does not match (this line was changed, or a line before it was removed or inserted)"
                ));
                return Ok(v);
            }
            prev = Some(hash.to_string());
            v.records += 1;
        }
    }
    if let (Some(last), Some(file)) = (&prev, files.last()) {
        if let Ok(head) = std::fs::read_to_string(chain_file(file)) {
            if head.trim() != last {
                v.broken = Some(format!(
                    "{}: the last record is not the last one written ({} names another): records were cut off the end, or the log is being written",
                    file.display(),
                    chain_file(file).display()
                ));
            }
        }
    }
    Ok(v)
}

pub fn now_rfc3339() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = klaviyo_catalog::dates::civil_from_days(days);
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
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("kh-audit-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn record(n: u64) -> Record<'static> {
        Record {
            time: now_rfc3339(),
            event: "done",
            request: n,
            tool: "get_lists",
            connection: None,
            client: None,
            operation: "get_lists",
            access: "read",
            decision: "allow",
            method: "GET",
            path: "/api/lists",
            status: Some(200),
            duration_ms: Some(3),
            klaviyo_request_id: None,
            detail: None,
            outcome: None,
            paced_ms: None,
            check: None,
        }
    }

    fn write(log: &AuditLog, range: std::ops::Range<u64>) {
        for n in range {
            log.write(&record(n)).unwrap();
        }
    }

    fn lines(p: &Path) -> Vec<String> {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .map(String::from)
            .collect()
    }

    fn set_lines(p: &Path, l: &[String]) {
        std::fs::write(p, l.join("\n") + "\n").unwrap();
    }

    #[test]
    fn an_untouched_log_verifies_and_starts_with_a_start_record() {
        let d = dir("ok");
        let p = d.join("audit.log");
        write(&AuditLog::new(Some(&p)), 0..5);
        let l = lines(&p);
        assert_eq!(l.len(), 6);
        assert!(l[0].contains("\"event\":\"start\""), "{}", l[0]);
        let v = verify(&[p.clone()]).unwrap();
        assert_eq!((v.records, v.broken), (6, None));
        assert_eq!(
            std::fs::read_to_string(chain_file(&p)).unwrap().trim(),
            split_hash(&l[5]).unwrap().1
        );
    }

    #[test]
    fn an_edited_removed_or_inserted_line_breaks_the_chain_there() {
        let d = dir("edit");
        let p = d.join("audit.log");
        write(&AuditLog::new(Some(&p)), 0..5);
        let orig = lines(&p);
        let at = |n: usize| format!("{}:{n}: the hash does not match", p.display());

        let mut edited = orig.clone();
        edited[3] = edited[3].replace("\"status\":200", "\"status\":404");
        set_lines(&p, &edited);
        assert!(verify(&[p.clone()])
            .unwrap()
            .broken
            .unwrap()
            .starts_with(&at(4)));

        let mut removed = orig.clone();
        removed.remove(2);
        set_lines(&p, &removed);
        assert!(verify(&[p.clone()])
            .unwrap()
            .broken
            .unwrap()
            .starts_with(&at(3)));

        let mut inserted = orig.clone();
        // A line copied from elsewhere in the log, put between lines 2 and 3.
        inserted.insert(2, orig[4].clone());
        set_lines(&p, &inserted);
        assert!(verify(&[p.clone()])
            .unwrap()
            .broken
            .unwrap()
            .starts_with(&at(3)));

        let mut unhashed = orig.clone();
        unhashed[4] = split_hash(&orig[4]).unwrap().0;
        set_lines(&p, &unhashed);
        assert!(verify(&[p.clone()])
            .unwrap()
            .broken
            .unwrap()
            .contains(":5: the line has no hash"));
    }

    #[test]
    fn records_cut_off_the_end_are_found_from_the_chain_file() {
        let d = dir("cut");
        let p = d.join("audit.log");
        write(&AuditLog::new(Some(&p)), 0..5);
        let mut l = lines(&p);
        l.truncate(4);
        set_lines(&p, &l);
        let v = verify(&[p.clone()]).unwrap();
        assert!(v.broken.unwrap().contains("records were cut off the end"));
    }

    #[test]
    fn rotation_keeps_the_chain_across_files() {
        let d = dir("rotate");
        let p = d.join("audit.log");
        let log = AuditLog::new(Some(&p));
        write(&log, 0..3);
        // logrotate's default: the file is moved away; the harness notices and starts anew.
        let old = d.join("audit.log.1");
        std::fs::rename(&p, &old).unwrap();
        write(&log, 3..6);
        let first_new = lines(&p)[0].clone();
        assert!(first_new.contains("\"event\":\"start\""));
        let last_old = lines(&old).last().cloned().unwrap();
        assert!(first_new.contains(split_hash(&last_old).unwrap().1));
        let v = verify(&[old.clone(), p.clone()]).unwrap();
        assert_eq!((v.files, v.records, v.broken), (2, 8, None));
        // The current file alone: fine, and it says it continues an earlier file.
        let v = verify(&[p.clone()]).unwrap();
        assert_eq!(v.broken, None);
        assert!(v.notes[0].contains("continues a chain from an earlier file"));
        // A rotated file missing between two others is a gap.
        std::fs::rename(&p, d.join("audit.log.0")).unwrap();
        write(&log, 6..8);
        let v = verify(&[old, p]).unwrap();
        assert!(v
            .broken
            .unwrap()
            .contains("records missing between the files"));
    }

    #[test]
    fn writers_in_several_processes_keep_one_chain() {
        let d = dir("concurrent");
        let p = d.join("audit.log");
        // Each AuditLog opens its own file description, as a separate process does: the
        // flock, not the in-process mutex, keeps the chain whole.
        std::thread::scope(|s| {
            for t in 0..4u64 {
                let p = p.clone();
                s.spawn(move || write(&AuditLog::new(Some(&p)), t * 100..t * 100 + 50));
            }
        });
        let v = verify(&[p.clone()]).unwrap();
        assert_eq!((v.records, v.broken), (201, None));
    }

    #[test]
    fn lines_from_before_the_chain_are_noted_not_failed() {
        let d = dir("legacy");
        let p = d.join("audit.log");
        std::fs::write(&p, serde_json::to_string(&record(0)).unwrap() + "\n").unwrap();
        write(&AuditLog::new(Some(&p)), 1..3);
        let v = verify(&[p.clone()]).unwrap();
        assert_eq!((v.records, v.broken.as_deref()), (3, None));
        assert!(v.notes[0].contains(":1: written before the chain"));
    }

    #[test]
    fn time_format() {
        let t = super::now_rfc3339();
        assert_eq!(t.len(), 24, "{t}");
        assert!(t.starts_with("20") && t.ends_with('Z'));
    }
}
