//! Where the private API key comes from, read afresh on every use (so a rotated key applies
//! without a restart), and a wrapper that keeps it out of `Debug`/`Display` output.

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

    /// The current key, `Ok(None)` when none is configured. Errors never contain the key.
    pub fn get(&self) -> Result<Option<Secret>, String> {
        match &self.source {
            KeySource::None => Ok(None),
            KeySource::Env(var) => Ok(std::env::var(var)
                .ok()
                .map(|k| k.trim().to_string())
                .filter(|k| !k.is_empty())
                .map(Secret)),
            KeySource::File(path) => read_key_file(path).map(Some),
            KeySource::Command(cmd) => {
                let mut cached = self.cached.lock().unwrap();
                if let Some((at, key)) = cached.as_ref() {
                    if at.elapsed() < COMMAND_TTL {
                        return Ok(Some(key.clone()));
                    }
                }
                let key = run_key_command(cmd)?;
                *cached = Some((Instant::now(), key.clone()));
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

fn run_key_command(cmd: &str) -> Result<Secret, String> {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("key command could not run: {e}"))?;
    if !out.status.success() {
        return Err(format!("key command failed ({})", out.status));
    }
    let text = String::from_utf8(out.stdout)
        .map_err(|_| "key command printed non-UTF-8 output".to_string())?;
    let key = text.trim();
    if key.is_empty() {
        return Err("key command printed nothing".into());
    }
    Ok(Secret(key.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let path = dir.join("key");
        std::fs::write(&path, "pk_one\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let store = KeyStore::new(KeySource::File(path.clone()));
        let err = store.get().unwrap_err();
        assert!(
            err.contains("chmod 600") && !err.contains("pk_one"),
            "{err}"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(store.get().unwrap().unwrap().expose(), "pk_one");
        std::fs::write(&path, "pk_two").unwrap();
        assert_eq!(
            store.get().unwrap().unwrap().expose(),
            "pk_two",
            "a rotated key applies at once"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn key_command() {
        let store = KeyStore::new(KeySource::Command("echo pk_cmd".into()));
        assert_eq!(store.get().unwrap().unwrap().expose(), "pk_cmd");
        let bad = KeyStore::new(KeySource::Command("exit 3".into()));
        assert!(bad.get().unwrap_err().contains("failed"));
    }
}
