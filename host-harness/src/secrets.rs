//! Where the private API key comes from, read afresh on every use (so a rotated key applies
//! without a restart), and a wrapper that keeps it out of `Debug`/`Display` output.
//!
//! - A key file must be private: refused when group or others can read it, or when it sits in
//!   a directory others can write to (they could swap it).
//! - A key command runs as a child process, off the async runtime, and is killed after
//!   [`COMMAND_TIMEOUT`]; the error names the command. Its answer is kept for 60 s.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A secret value. Its `Debug` never shows it; read it with [`Secret::expose`] only to put it
/// into the `Authorization` header.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// Where the private key is read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySource {
    /// No key: reads work only in dry-run mode.
    None,
    /// An environment variable of the host process (default `KLAVIYO_API_KEY`).
    Env(String),
    /// A file holding the key (trailing whitespace ignored); refused when group/others can read it.
    File(PathBuf),
    /// A shell command printing the key on stdout (like a git credential helper); its answer is
    /// kept for 60 s.
    Command(String),
}

/// Reads the key from its source, with the command's answer cached briefly.
#[derive(Debug)]
pub struct KeyStore {
    source: KeySource,
    cached: Mutex<Option<(Instant, Secret)>>,
}

const COMMAND_TTL: Duration = Duration::from_secs(60);
/// How long a key command may take.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

impl KeyStore {
    pub fn new(source: KeySource) -> KeyStore {
        KeyStore {
            source,
            cached: Mutex::new(None),
        }
    }

    pub fn source(&self) -> &KeySource {
        &self.source
    }

    /// Whether a key may be available without asking for it (no command is run): an
    /// environment variable that is set, or a file or command (which may still fail).
    pub fn configured(&self) -> bool {
        match &self.source {
            KeySource::None => false,
            KeySource::Env(var) => std::env::var(var).is_ok_and(|k| !k.trim().is_empty()),
            KeySource::File(_) | KeySource::Command(_) => true,
        }
    }

    /// The current key, `Ok(None)` when none is configured. Errors never contain the key.
    pub async fn get(&self) -> Result<Option<Secret>, String> {
        match &self.source {
            KeySource::None => Ok(None),
            KeySource::Env(var) => Ok(std::env::var(var)
                .ok()
                .map(|k| k.trim().to_string())
                .filter(|k| !k.is_empty())
                .map(Secret)),
            KeySource::File(path) => read_key_file(path).map(Some),
            KeySource::Command(cmd) => {
                if let Some((at, key)) = self.cached.lock().unwrap().as_ref() {
                    if at.elapsed() < COMMAND_TTL {
                        return Ok(Some(key.clone()));
                    }
                }
                let key = run_key_command(cmd, COMMAND_TIMEOUT).await?;
                *self.cached.lock().unwrap() = Some((Instant::now(), key.clone()));
                Ok(Some(key))
            }
        }
    }
}

fn read_key_file(path: &PathBuf) -> Result<Secret, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("key file {}: {e}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(format!(
                "key file {} is readable by group or others (mode {:o}); run `chmod 600 {}`",
                path.display(),
                mode & 0o777,
                path.display()
            ));
        }
        let dir = std::fs::canonicalize(path)
            .ok()
            .and_then(|p| p.parent().map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("."));
        if let Ok(d) = std::fs::metadata(&dir) {
            let dmode = d.permissions().mode();
            if dmode & 0o022 != 0 {
                return Err(format!(
                    "key file {} is in {}, which group or others can write to (mode {:o}): they could replace the key; move it to a private directory or run `chmod go-w {}`",
                    path.display(),
                    dir.display(),
                    dmode & 0o777,
                    dir.display()
                ));
            }
        }
    }
    let _ = meta;
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("key file {}: {e}", path.display()))?;
    let key = text.trim();
    if key.is_empty() {
        return Err(format!("key file {} is empty", path.display()));
    }
    Ok(Secret(key.to_string()))
}

/// Runs the key command as a child process (never blocking the runtime), killed after
/// `timeout`.
async fn run_key_command(cmd: &str, timeout: Duration) -> Result<Secret, String> {
    let child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("key command `{cmd}` could not run: {e}"))?;
    let out = match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Err(_) => {
            return Err(format!(
                "key command `{cmd}` timed out after {} s (it was stopped)",
                timeout.as_secs()
            ))
        }
        Ok(r) => r.map_err(|e| format!("key command `{cmd}` failed: {e}"))?,
    };
    if !out.status.success() {
        return Err(format!("key command `{cmd}` failed ({})", out.status));
    }
    let text = String::from_utf8(out.stdout)
        .map_err(|_| format!("key command `{cmd}` printed non-UTF-8 output"))?;
    let key = text.trim();
    if key.is_empty() {
        return Err(format!("key command `{cmd}` printed nothing"));
    }
    Ok(Secret(key.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn debug_never_shows_the_key() {
        let s = Secret("pk_live_SECRET".into());
        assert!(!format!("{s:?}").contains("SECRET"));
    }

    #[cfg(unix)]
    #[test]
    fn key_file_must_be_private_and_is_reread() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("kh-secrets-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        let path = dir.join("key");
        std::fs::write(&path, "pk_one\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let store = KeyStore::new(KeySource::File(path.clone()));
        let rt = rt();
        let err = rt.block_on(store.get()).unwrap_err();
        assert!(
            err.contains("chmod 600") && !err.contains("pk_one"),
            "{err}"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            rt.block_on(store.get()).unwrap().unwrap().expose(),
            "pk_one"
        );
        std::fs::write(&path, "pk_two").unwrap();
        assert_eq!(
            rt.block_on(store.get()).unwrap().unwrap().expose(),
            "pk_two",
            "a rotated key applies at once"
        );
        // A directory others can write to: they could swap the key.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = rt.block_on(store.get()).unwrap_err();
        assert!(
            err.contains("could replace the key") && !err.contains("pk_two"),
            "{err}"
        );
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn key_command() {
        let rt = rt();
        let store = KeyStore::new(KeySource::Command("echo pk_cmd".into()));
        assert_eq!(
            rt.block_on(store.get()).unwrap().unwrap().expose(),
            "pk_cmd"
        );
        let bad = KeyStore::new(KeySource::Command("exit 3".into()));
        let err = rt.block_on(bad.get()).unwrap_err();
        assert!(err.contains("failed") && err.contains("exit 3"), "{err}");
    }

    #[test]
    fn a_hung_key_command_is_stopped_and_named_while_the_runtime_goes_on() {
        let rt = rt();
        rt.block_on(async {
            // Another task on the same one-thread runtime keeps running meanwhile.
            let ticks = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
            let t = ticks.clone();
            let ticker = tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    t.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            });
            let err = run_key_command("sleep 30", Duration::from_millis(600))
                .await
                .unwrap_err();
            ticker.abort();
            assert!(err.contains("`sleep 30` timed out"), "{err}");
            assert!(
                ticks.load(std::sync::atomic::Ordering::Relaxed) >= 3,
                "the runtime was blocked"
            );
        });
    }
}
