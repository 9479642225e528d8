//! Settings, resolved in this precedence: flags > environment > config file > defaults.
//!
//! Environment: `KLAVIYO_API_KEY`, `KLAVIYO_COMPANY_ID`, `KLAVIYO_BASE_URL`, `KLAVIYO_REVISION`,
//! `KLAVIYO_POLICY` (policy file path), `KLAVIYO_AUDIT_LOG`, `KLAVIYO_CONFIG` (config file),
//! `KLAVIYO_COMPONENT` (the .wasm), `KLAVIYO_CACHE_DIR`.
//!
//! Config file (TOML), every key optional:
//! ```toml
//! base_url = "https://a.klaviyo.com"
//! revision = "2026-07-15"
//! company_id = "AbC123"           # public key, for /client/* endpoints
//! key_file = "/etc/klaviyo/key"   # mode 600; or:
//! key_command = "pass show klaviyo"
//! policy = "policy.toml"
//! audit_log = "audit.jsonl"
//! component = "klaviyo_connector.wasm"
//! connect_timeout_secs = 10
//! first_byte_timeout_secs = 60
//! between_bytes_timeout_secs = 30
//! call_timeout_secs = 120
//! max_response_bytes = 33554432
//! throttle = true                 # pace requests to Klaviyo's per-endpoint limits
//! max_retries = 3                 # after 429 (reads also after 502/503/504, dropped connections)
//! max_retry_wait_secs = 30
//! ```

use crate::policy::Policy;
use crate::secrets::KeySource;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const DEFAULT_BASE_URL: &str = "https://a.klaviyo.com";

#[derive(Clone, Debug)]
pub struct Timeouts {
    pub connect: Duration,
    pub first_byte: Duration,
    pub between_bytes: Duration,
    /// Whole call, component time included.
    pub call: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            first_byte: Duration::from_secs(60),
            between_bytes: Duration::from_secs(30),
            call: Duration::from_secs(120),
        }
    }
}

/// Everything a [`crate::Harness`] needs besides the component.
#[derive(Clone, Debug)]
pub struct Settings {
    pub base_url: String,
    pub base: http::Uri,
    pub revision: String,
    pub key_source: KeySource,
    pub public_key: Option<String>,
    pub policy: Policy,
    pub policy_path: Option<PathBuf>,
    pub audit_log: Option<PathBuf>,
    pub dry_run: bool,
    pub timeouts: Timeouts,
    /// Linear memory limit per call, bytes.
    pub memory_limit: usize,
    /// Largest response body accepted, bytes.
    pub max_response_bytes: usize,
    /// Pace requests to Klaviyo's per-endpoint limits before sending (default on).
    pub throttle: bool,
    /// Retries after a 429 (and, for reads, 502/503/504 or a dropped connection).
    pub max_retries: u32,
    /// Most time spent waiting between retries of one request.
    pub max_retry_wait: Duration,
}

impl Settings {
    /// Defaults: production base URL, the spec's revision, key from `KLAVIYO_API_KEY`,
    /// read-only policy.
    pub fn new(base_url: &str) -> Result<Settings, String> {
        let (base_url, base) = parse_base_url(base_url)?;
        Ok(Settings {
            base_url,
            base,
            revision: klaviyo_catalog::generated::REVISION.to_string(),
            key_source: KeySource::Env("KLAVIYO_API_KEY".into()),
            public_key: None,
            policy: Policy::read_only(),
            policy_path: None,
            audit_log: None,
            dry_run: false,
            timeouts: Timeouts::default(),
            memory_limit: 256 << 20,
            max_response_bytes: 32 << 20,
            throttle: true,
            max_retries: 3,
            max_retry_wait: Duration::from_secs(30),
        })
    }
}

/// Accepts `https://host[:port]` or `http://host[:port]` (no path, query or user info).
pub fn parse_base_url(s: &str) -> Result<(String, http::Uri), String> {
    let trimmed = s.trim().trim_end_matches('/');
    let uri: http::Uri = trimmed
        .parse()
        .map_err(|e| format!("base URL `{s}` is not a URL: {e}"))?;
    match uri.scheme_str() {
        Some("https") | Some("http") => {}
        _ => {
            return Err(format!(
                "base URL `{s}` must start with https:// or http://"
            ))
        }
    }
    let Some(auth) = uri.authority() else {
        return Err(format!("base URL `{s}` has no host"));
    };
    if auth.as_str().contains('@') {
        return Err(format!("base URL `{s}` must not contain user info"));
    }
    if uri.path() != "/" && !uri.path().is_empty() || uri.query().is_some() {
        return Err(format!("base URL `{s}` must not have a path or query"));
    }
    if uri.scheme_str() == Some("http") && !is_loopback(auth.host()) {
        return Err(format!(
            "base URL `{s}` is plain http to a host that is not this machine: the key would travel in clear text; use https:// (plain http is allowed only for 127.0.0.1, ::1 and localhost)"
        ));
    }
    Ok((trimmed.to_string(), uri))
}

/// Loopback addresses: `localhost`, 127.0.0.0/8, `::1`.
fn is_loopback(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost")
        || h.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The config file's contents.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub base_url: Option<String>,
    pub revision: Option<String>,
    pub company_id: Option<String>,
    pub key_file: Option<PathBuf>,
    pub key_command: Option<String>,
    pub policy: Option<PathBuf>,
    pub audit_log: Option<PathBuf>,
    pub component: Option<PathBuf>,
    pub connect_timeout_secs: Option<u64>,
    pub first_byte_timeout_secs: Option<u64>,
    pub between_bytes_timeout_secs: Option<u64>,
    pub call_timeout_secs: Option<u64>,
    pub max_response_bytes: Option<usize>,
    pub throttle: Option<bool>,
    pub max_retries: Option<u32>,
    pub max_retry_wait_secs: Option<u64>,
}

impl FileConfig {
    pub fn load(path: &Path) -> Result<FileConfig, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("config file {}: {e}", path.display()))?;
        let mut c: FileConfig =
            toml::from_str(&text).map_err(|e| format!("config file {}: {e}", path.display()))?;
        // Relative paths in the file are relative to the file.
        let dir = path.parent().unwrap_or(Path::new("."));
        for p in [
            &mut c.key_file,
            &mut c.policy,
            &mut c.audit_log,
            &mut c.component,
        ]
        .into_iter()
        .flatten()
        {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        }
        Ok(c)
    }
}

/// Values given as flags or environment variables (the CLI fills these; `None` = not given).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub base_url: Option<String>,
    pub revision: Option<String>,
    pub company_id: Option<String>,
    pub policy: Option<PathBuf>,
    pub audit_log: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub key_command: Option<String>,
    pub dry_run: bool,
}

/// Resolves settings: `over` (flags, then env, already merged by the caller) > file > defaults.
pub fn resolve(over: &Overrides, file: &FileConfig) -> Result<Settings, String> {
    let base = over
        .base_url
        .as_deref()
        .or(file.base_url.as_deref())
        .unwrap_or(DEFAULT_BASE_URL);
    let mut s = Settings::new(base)?;
    if let Some(r) = over.revision.as_ref().or(file.revision.as_ref()) {
        s.revision = r.clone();
    }
    s.public_key = over
        .company_id
        .clone()
        .or(file.company_id.clone())
        .filter(|k| !k.is_empty());
    s.key_source = if let Some(p) = over.key_file.as_ref() {
        KeySource::File(p.clone())
    } else if let Some(c) = over.key_command.as_ref() {
        KeySource::Command(c.clone())
    } else if std::env::var_os("KLAVIYO_API_KEY").is_some() {
        KeySource::Env("KLAVIYO_API_KEY".into())
    } else if let Some(p) = file.key_file.as_ref() {
        KeySource::File(p.clone())
    } else if let Some(c) = file.key_command.as_ref() {
        KeySource::Command(c.clone())
    } else {
        KeySource::Env("KLAVIYO_API_KEY".into())
    };
    s.policy_path = over.policy.clone().or(file.policy.clone());
    if let Some(p) = &s.policy_path {
        s.policy = crate::policy::load(p)?;
    }
    s.audit_log = over.audit_log.clone().or(file.audit_log.clone());
    s.dry_run = over.dry_run;
    let secs = |v: Option<u64>, d: Duration| v.map(Duration::from_secs).unwrap_or(d);
    let t = Timeouts::default();
    s.timeouts = Timeouts {
        connect: secs(file.connect_timeout_secs, t.connect),
        first_byte: secs(file.first_byte_timeout_secs, t.first_byte),
        between_bytes: secs(file.between_bytes_timeout_secs, t.between_bytes),
        call: secs(file.call_timeout_secs, t.call),
    };
    if let Some(n) = file.max_response_bytes {
        s.max_response_bytes = n;
    }
    if let Some(b) = file.throttle {
        s.throttle = b;
    }
    if let Some(n) = file.max_retries {
        s.max_retries = n;
    }
    s.max_retry_wait = secs(file.max_retry_wait_secs, s.max_retry_wait);
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        assert_eq!(
            parse_base_url("https://a.klaviyo.com/").unwrap().0,
            "https://a.klaviyo.com"
        );
        assert_eq!(
            parse_base_url("http://127.0.0.1:4010").unwrap().0,
            "http://127.0.0.1:4010"
        );
        assert!(parse_base_url("ftp://x").is_err());
        assert!(parse_base_url("https://a.klaviyo.com/api").is_err());
        assert!(parse_base_url("https://u:p@a.klaviyo.com").is_err());
        assert!(parse_base_url("nonsense").is_err());
        // Plain http only to this machine: the key would travel in clear text.
        for ok in [
            "http://127.0.0.1:4010",
            "http://127.8.9.1",
            "http://localhost:1",
            "http://[::1]:80",
        ] {
            assert!(parse_base_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://a.klaviyo.com",
            "http://10.0.0.1:80",
            "http://localhost.evil.example",
            "http://[::2]",
        ] {
            let e = parse_base_url(bad).unwrap_err();
            assert!(e.contains("clear text"), "{bad}: {e}");
        }
    }

    #[test]
    fn precedence_flags_over_file() {
        let file = FileConfig {
            base_url: Some("http://127.0.0.1:1".into()),
            revision: Some("2025-01-01".into()),
            ..Default::default()
        };
        let over = Overrides {
            base_url: Some("http://127.0.0.1:2".into()),
            ..Default::default()
        };
        let s = resolve(&over, &file).unwrap();
        assert_eq!(s.base_url, "http://127.0.0.1:2");
        assert_eq!(s.revision, "2025-01-01");
        let s = resolve(&Overrides::default(), &FileConfig::default()).unwrap();
        assert_eq!(s.base_url, DEFAULT_BASE_URL);
        assert_eq!(s.revision, klaviyo_catalog::generated::REVISION);
    }
}
