//! Configuration in one place, in ripgrep's shape: every setting is one field of [`Layer`],
//! which is at once a command-line flag (`--base-url`), an environment variable where it has
//! one (`KLAVIYO_BASE_URL`, read by clap with the flags: flags win), and a config-file key
//! (`base_url`; `[serve]` for the server). [`resolve`] merges the layers — flags/environment
//! over the file over the defaults — in one function and turns them into [`Resolved`].
//!
//! The private key is not a setting but a source: `--key-file` / `--key-command` flags, else
//! `KLAVIYO_API_KEY`, else the file's `key_file` / `key_command` (both in one layer is an
//! error). A plain `http://` base URL is accepted only for this machine (the key would travel
//! in clear text).
//!
//! Config file (TOML; every key optional; relative paths are relative to the file):
//! ```toml
//! base_url = "https://a.klaviyo.com"
//! revision = "2026-07-15"
//! company_id = "AbC123"           # public key, for /client/* endpoints
//! key_file = "/etc/klaviyo/key"   # mode 600; or:
//! key_command = "pass show klaviyo"
//! policy = "policy.toml"
//! audit_log = "audit.jsonl"
//! component = "klaviyo_connector.wasm"   # default: the one built into the binary
//! cache_dir = "…"                 # precompiled component (private directory)
//! state_dir = "…"                 # pacing state shared by processes (private directory)
//! connect_timeout_secs = 10
//! first_byte_timeout_secs = 60
//! between_bytes_timeout_secs = 30
//! call_timeout_secs = 120
//! max_response_bytes = 33554432
//! throttle = true                 # pace requests to Klaviyo's per-endpoint limits
//! max_retries = 3                 # after 429 (reads also after 502/503/504, dropped connections)
//! max_retry_wait_secs = 30
//! sandbox = true                  # the built-in sandbox account: sample data, no key, no network
//! sandbox_seed = 1                # each seed is its own account
//! sandbox_faults = "429=0.2"      # injected 429 / 5xx / timeout, for rehearsing resilience
//!
//! [connections.acme]            # named connections, for several Klaviyo accounts: each table
//! key_file = "/etc/klaviyo/acme"  # holds one account's settings over the top-level ones;
//! company_id = "AcMe12"           # `--connection acme` (KLAVIYO_CONNECTION) picks one, and
//! audit_log = "acme.jsonl"        # its key source wins over KLAVIYO_API_KEY
//!
//! [serve]
//! mode = "discovery"              # or "all"
//! toolsets = ["profiles", "lists"]
//! read_only = false
//! untrusted_content = "label"     # hide | label | show
//! http = "127.0.0.1:8080"         # MCP over Streamable HTTP instead of stdio
//! http_token_file = "/etc/klaviyo-harness/tokens"   # `name:token` lines
//! http_token_command = "…"
//! http_allowed_hosts = ["mcp.example.com"]
//! http_allowed_origins = ["https://app.example.com"]
//! http_max_concurrent_calls = 32
//! http_max_body_bytes = 4194304
//! http_rate_per_minute = 600
//! key_check_minutes = 15
//! grace_secs = 30
//! ```

use crate::policy::Policy;
use crate::secrets::KeySource;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const DEFAULT_BASE_URL: &str = "https://a.klaviyo.com";

/// Every setting as one source gives it (`None`: not given there).
#[derive(clap::Args, Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[command(next_help_heading = "Settings (also config-file keys, e.g. base_url)")]
pub struct Layer {
    /// Klaviyo API base URL; the only host requests may go to [default: https://a.klaviyo.com].
    #[arg(long, global = true, env = "KLAVIYO_BASE_URL")]
    pub base_url: Option<String>,
    /// API revision header [default: the spec's revision].
    #[arg(long, global = true, env = "KLAVIYO_REVISION")]
    pub revision: Option<String>,
    /// Public API key (company_id) for /client/* endpoints.
    #[arg(long, global = true, env = "KLAVIYO_COMPANY_ID")]
    pub company_id: Option<String>,
    /// Read the private key from this file (mode 600) instead of KLAVIYO_API_KEY.
    #[arg(long, global = true)]
    pub key_file: Option<PathBuf>,
    /// Read the private key from this command's output (like a credential helper).
    #[arg(long, global = true)]
    pub key_command: Option<String>,
    /// Policy file (TOML) [default: read-only].
    #[arg(long, global = true, env = "KLAVIYO_POLICY")]
    pub policy: Option<PathBuf>,
    /// Append one JSON line per request to this file.
    #[arg(long, global = true, env = "KLAVIYO_AUDIT_LOG")]
    pub audit_log: Option<PathBuf>,
    /// The component (.wasm) to run [default: the one built into this binary].
    #[arg(long, global = true, env = "KLAVIYO_COMPONENT")]
    pub component: Option<PathBuf>,
    /// Where the precompiled component is kept (a private directory).
    #[arg(long, global = true, env = "KLAVIYO_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Where pacing state shared by processes is kept (a private directory).
    #[arg(long, global = true, env = "KLAVIYO_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    #[arg(long, global = true, value_name = "SECS", hide_short_help = true)]
    pub connect_timeout_secs: Option<u64>,
    #[arg(long, global = true, value_name = "SECS", hide_short_help = true)]
    pub first_byte_timeout_secs: Option<u64>,
    #[arg(long, global = true, value_name = "SECS", hide_short_help = true)]
    pub between_bytes_timeout_secs: Option<u64>,
    /// Longest a call may take, seconds [default: 120].
    #[arg(long, global = true, value_name = "SECS")]
    pub call_timeout_secs: Option<u64>,
    #[arg(long, global = true, value_name = "BYTES", hide_short_help = true)]
    pub max_response_bytes: Option<usize>,
    /// Pace requests to Klaviyo's per-endpoint limits [default: true].
    #[arg(long, global = true, value_name = "BOOL", hide_short_help = true)]
    pub throttle: Option<bool>,
    #[arg(long, global = true, value_name = "N", hide_short_help = true)]
    pub max_retries: Option<u32>,
    #[arg(long, global = true, value_name = "SECS", hide_short_help = true)]
    pub max_retry_wait_secs: Option<u64>,
    /// Answer from the built-in sandbox account instead of Klaviyo: sample data, no key, no
    /// network; writes change it (kept in the state directory; `sandbox reset` starts again).
    #[arg(long, global = true, env = "KLAVIYO_SANDBOX", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL", value_parser = clap::builder::BoolishValueParser::new())]
    pub sandbox: Option<bool>,
    /// The sandbox account's seed: each seed is its own account [default: 1].
    #[arg(
        long,
        global = true,
        env = "KLAVIYO_SANDBOX_SEED",
        value_name = "N",
        hide_short_help = true
    )]
    pub sandbox_seed: Option<u64>,
    /// Faults the sandbox injects: `429`, `5xx`, `timeout`, each optionally `=RATE` (0–1,
    /// default 0.2), comma-separated, e.g. `429=0.5,timeout`.
    #[arg(
        long,
        global = true,
        env = "KLAVIYO_SANDBOX_FAULTS",
        value_name = "LIST",
        hide_short_help = true
    )]
    pub sandbox_faults: Option<String>,
    /// The `[serve]` table (flags: `serve --help`).
    #[arg(skip)]
    #[serde(default)]
    pub serve: ServeLayer,
    /// Named connections (`[connections.NAME]` tables of the config file): one Klaviyo account
    /// each, over the file's top-level settings; `--connection NAME` picks one.
    #[arg(skip)]
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub connections: std::collections::BTreeMap<String, Layer>,
}

/// How `serve` lists the actions.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ServeMode {
    /// Three meta-tools (search, describe, call) that reach every action: a few KB.
    Discovery,
    /// One tool per action.
    All,
}

/// What to do with text the public wrote, in MCP results.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum UntrustedContent {
    Hide,
    Label,
    Show,
}

/// The server's settings (`serve` flags; `[serve]` in the config file).
#[derive(clap::Args, Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServeLayer {
    /// `discovery` (default): three meta-tools that reach every action; `all`: one tool per action.
    #[arg(long, value_enum)]
    pub mode: Option<ServeMode>,
    /// Only these Klaviyo tags, comma-separated (e.g. `profiles,lists`).
    #[arg(long, value_delimiter = ',')]
    pub toolsets: Option<Vec<String>>,
    /// Only read actions.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub read_only: Option<bool>,
    /// Text written by the public in results: `label` it as data (default), `hide` it, or `show` it unmarked.
    #[arg(long, value_enum)]
    pub untrusted_content: Option<UntrustedContent>,
    /// Serve MCP over Streamable HTTP at this address (e.g. 127.0.0.1:8080) instead of stdio.
    #[arg(long, value_name = "ADDR")]
    pub http: Option<String>,
    /// Bearer tokens for --http, one `name:token` per line (mode 600).
    #[arg(long, value_name = "FILE")]
    pub http_token_file: Option<PathBuf>,
    /// A command printing the bearer tokens (`name:token` lines).
    #[arg(long, value_name = "CMD")]
    pub http_token_command: Option<String>,
    /// Bearer tokens from the environment only (`name:token`, comma-separated).
    #[arg(long, env = "KLAVIYO_MCP_TOKENS", hide = true, hide_env_values = true)]
    #[serde(skip)]
    pub http_tokens: Option<String>,
    /// More `Host` values to accept (the bound address and localhost always are).
    #[arg(long = "http-allowed-host", value_name = "HOST[:PORT]")]
    pub http_allowed_hosts: Option<Vec<String>>,
    /// `Origin` values to accept from browsers (none by default).
    #[arg(long = "http-allowed-origin", value_name = "ORIGIN")]
    pub http_allowed_origins: Option<Vec<String>>,
    #[arg(long, value_name = "N", hide_short_help = true)]
    pub http_max_concurrent_calls: Option<usize>,
    #[arg(long, value_name = "BYTES", hide_short_help = true)]
    pub http_max_body_bytes: Option<usize>,
    /// Requests per minute per client [default: 600].
    #[arg(long, value_name = "N", hide_short_help = true)]
    pub http_rate_per_minute: Option<u32>,
    /// How often /readyz re-checks the key against Klaviyo, minutes [default: 15].
    #[arg(long, value_name = "MIN", hide_short_help = true)]
    pub key_check_minutes: Option<u64>,
    /// How long calls in flight may take to finish after SIGTERM, seconds [default: 30].
    #[arg(long, value_name = "SECS", hide_short_help = true)]
    pub grace_secs: Option<u64>,
}

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
    /// Where the precompiled component is kept; `None`: no cache.
    pub cache_dir: Option<PathBuf>,
    /// Where pacing state shared by processes is kept; `None`: this process only.
    pub state_dir: Option<PathBuf>,
    /// The named connection these settings come from (audit records carry it).
    pub connection: Option<String>,
    /// Answer from the built-in sandbox account instead of the network.
    pub sandbox: Option<SandboxSettings>,
}

/// The sandbox account a run uses (`--sandbox`).
#[derive(Clone, Debug, PartialEq)]
pub struct SandboxSettings {
    pub seed: u64,
    pub faults: klaviyo_sandbox::Faults,
}

impl Settings {
    /// Defaults: production base URL, the spec's revision, key from `KLAVIYO_API_KEY`,
    /// read-only policy, no cache, pacing within this process.
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
            cache_dir: default_dir("KLAVIYO_CACHE_DIR", "XDG_CACHE_HOME", ".cache"),
            state_dir: None,
            connection: None,
            sandbox: None,
        })
    }
}

/// A per-user directory: `$var`, else `$xdg/klaviyo-harness`, else `~/<home_rel>/klaviyo-harness`.
pub fn default_dir(var: &str, xdg: &str, home_rel: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(var) {
        return Some(PathBuf::from(p));
    }
    std::env::var_os(xdg)
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(home_rel)))
        .map(|b| b.join("klaviyo-harness"))
}

/// Accepts `https://host[:port]`, or `http://` to this machine only (no path, query or user
/// info).
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

impl Layer {
    /// The config file at `path` (relative paths in it made relative to its directory).
    pub fn from_file(path: &Path) -> Result<Layer, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("config file {}: {e}", path.display()))?;
        let mut l: Layer =
            toml::from_str(&text).map_err(|e| format!("config file {}: {e}", path.display()))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        l.anchor(dir);
        for (name, c) in &mut l.connections {
            if !c.connections.is_empty() {
                return Err(format!(
                    "config file {}: [connections.{name}] holds connections of its own; connections do not nest",
                    path.display()
                ));
            }
            if name.is_empty()
                || !name
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch))
            {
                return Err(format!(
                    "config file {}: connection name `{name}`: use letters, digits, `-`, `_` or `.`",
                    path.display()
                ));
            }
            c.anchor(dir);
        }
        Ok(l)
    }

    /// Relative paths made relative to `dir` (the config file's directory).
    fn anchor(&mut self, dir: &Path) {
        for p in [
            &mut self.key_file,
            &mut self.policy,
            &mut self.audit_log,
            &mut self.component,
            &mut self.cache_dir,
            &mut self.state_dir,
            &mut self.serve.http_token_file,
        ]
        .into_iter()
        .flatten()
        {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        }
    }

    /// This layer over `lower`: every setting this one gives wins; tables merge key by key.
    pub fn over(&self, lower: &Layer) -> Layer {
        fn merge(high: Value, low: Value) -> Value {
            match (high, low) {
                (Value::Object(mut h), Value::Object(l)) => {
                    for (k, lv) in l {
                        let hv = h.remove(&k).unwrap_or(Value::Null);
                        h.insert(k, merge(hv, lv));
                    }
                    Value::Object(h)
                }
                (Value::Null, low) => low,
                (high, _) => high,
            }
        }
        let tokens = self
            .serve
            .http_tokens
            .clone()
            .or(lower.serve.http_tokens.clone());
        let merged = merge(
            serde_json::to_value(self).expect("settings serialize"),
            serde_json::to_value(lower).expect("settings serialize"),
        );
        let mut out: Layer = serde_json::from_value(merged).expect("a merge of layers is a layer");
        out.serve.http_tokens = tokens;
        out
    }

    /// The key source this layer names, if any.
    fn key_source(&self, origin: &str) -> Result<Option<KeySource>, String> {
        match (&self.key_file, &self.key_command) {
            (Some(_), Some(_)) => Err(format!(
                "{origin} sets both key_file and key_command: keep one"
            )),
            (Some(p), None) => Ok(Some(KeySource::File(p.clone()))),
            (None, Some(c)) => Ok(Some(KeySource::Command(c.clone()))),
            (None, None) => Ok(None),
        }
    }
}

impl ServeLayer {
    /// Discovery unless set.
    pub fn mode(&self) -> ServeMode {
        self.mode.unwrap_or(ServeMode::Discovery)
    }

    /// Off unless set.
    pub fn read_only(&self) -> bool {
        self.read_only.unwrap_or(false)
    }

    /// Label unless set.
    pub fn untrusted(&self) -> UntrustedContent {
        self.untrusted_content.unwrap_or(UntrustedContent::Label)
    }
}

/// The resolved configuration.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub settings: Settings,
    /// The component to run: `None` means the one built into the binary (or found beside it).
    pub component: Option<PathBuf>,
    /// The server's settings, merged (defaults: [`ServeLayer::mode`] and the others).
    pub serve: ServeLayer,
    /// The config file read, if any.
    pub config_file: Option<PathBuf>,
    /// The names of the file's connections.
    pub connections: Vec<String>,
}

/// Merges `flags` (flags and environment, as clap parsed them) over the config file (if any)
/// over the defaults. `env_key` says whether `KLAVIYO_API_KEY` is set.
pub fn resolve(
    flags: &Layer,
    file: Option<(&Path, Layer)>,
    env_key: bool,
    dry_run: bool,
    connection: Option<&str>,
) -> Result<Resolved, String> {
    let (config_file, mut top) = match file {
        Some((p, l)) => (Some(p.to_path_buf()), l),
        None => (None, Layer::default()),
    };
    let connections = std::mem::take(&mut top.connections);
    let conn = match connection {
        None => None,
        Some(name) => match connections.get(name) {
            Some(c) => Some((name, c.clone())),
            None => {
                let names: Vec<&str> = connections.keys().map(String::as_str).collect();
                return Err(match (&config_file, names.is_empty()) {
                    (None, _) => format!("connection `{name}`: there is no config file; connections are [connections.NAME] tables in it (--config, KLAVIYO_CONFIG)"),
                    (Some(p), true) => format!("connection `{name}`: {} has no [connections.NAME] tables", p.display()),
                    (Some(p), false) => format!("no connection `{name}` in {}: the connections are {}", p.display(), names.join(", ")),
                });
            }
        },
    };
    // The file as this run sees it: the connection's table over the top-level settings.
    let file_layer = match &conn {
        Some((_, c)) => c.over(&top),
        None => top.clone(),
    };
    let l = flags.over(&file_layer);
    let mut s = Settings::new(l.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL))?;
    if let Some(r) = &l.revision {
        s.revision = r.clone();
    }
    s.public_key = l.company_id.clone().filter(|k| !k.is_empty());
    let file_origin = config_file
        .as_ref()
        .map(|p| format!("config file {}", p.display()))
        .unwrap_or_default();
    // A connection's own key source names that account's key: it wins over KLAVIYO_API_KEY,
    // which could belong to any account.
    let conn_key = match &conn {
        Some((name, c)) => c.key_source(&format!("connection `{name}` of the {file_origin}"))?,
        None => None,
    };
    s.key_source = match (flags.key_source("the command line")?, conn_key) {
        (Some(k), _) | (None, Some(k)) => k,
        (None, None) if env_key => KeySource::Env("KLAVIYO_API_KEY".into()),
        (None, None) => top
            .key_source(&file_origin)?
            .unwrap_or(KeySource::Env("KLAVIYO_API_KEY".into())),
    };
    s.connection = conn.as_ref().map(|(name, _)| name.to_string());
    s.policy_path = l.policy.clone();
    if let Some(p) = &s.policy_path {
        s.policy = crate::policy::load(p)?;
    }
    s.audit_log = l.audit_log.clone();
    s.dry_run = dry_run;
    let secs = |v: Option<u64>, d: Duration| v.map(Duration::from_secs).unwrap_or(d);
    let t = Timeouts::default();
    s.timeouts = Timeouts {
        connect: secs(l.connect_timeout_secs, t.connect),
        first_byte: secs(l.first_byte_timeout_secs, t.first_byte),
        between_bytes: secs(l.between_bytes_timeout_secs, t.between_bytes),
        call: secs(l.call_timeout_secs, t.call),
    };
    if s.timeouts.call.is_zero() {
        return Err("call_timeout_secs must be at least 1".into());
    }
    if let Some(n) = l.max_response_bytes {
        s.max_response_bytes = n;
    }
    if let Some(b) = l.throttle {
        s.throttle = b;
    }
    if let Some(n) = l.max_retries {
        s.max_retries = n;
    }
    s.max_retry_wait = secs(l.max_retry_wait_secs, s.max_retry_wait);
    if let Some(d) = &l.cache_dir {
        s.cache_dir = Some(d.clone());
    }
    s.state_dir = l
        .state_dir
        .clone()
        .or_else(|| default_dir("KLAVIYO_STATE_DIR", "XDG_STATE_HOME", ".local/state"));
    if l.sandbox == Some(true) {
        let faults = match &l.sandbox_faults {
            Some(f) => klaviyo_sandbox::Faults::parse(f)?,
            None => klaviyo_sandbox::Faults::default(),
        };
        // `/client/*` actions work out of the box against the sample account.
        if s.public_key.is_none() {
            s.public_key = Some(klaviyo_sandbox::PUBLIC_KEY.to_string());
        }
        let seed = l.sandbox_seed.unwrap_or(klaviyo_sandbox::DEFAULT_SEED);
        // Audit records of the sandbox carry `connection: sandbox:SEED`: `report` and
        // `reconcile` never mix them with a real account's.
        s.connection = Some(klaviyo_sandbox::account_name(seed));
        s.sandbox = Some(SandboxSettings { seed, faults });
    } else if l.sandbox_faults.is_some() || l.sandbox_seed.is_some() {
        return Err("sandbox_faults and sandbox_seed apply to the sandbox account only: add --sandbox (KLAVIYO_SANDBOX=1, or sandbox = true in the config file)".into());
    }
    Ok(Resolved {
        settings: s,
        component: l.component,
        serve: l.serve,
        config_file,
        connections: connections.into_keys().collect(),
    })
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
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let file = Layer {
            base_url: Some("http://127.0.0.1:1".into()),
            revision: Some("2025-01-01".into()),
            serve: ServeLayer {
                mode: Some(ServeMode::All),
                http: Some("127.0.0.1:9".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let flags = Layer {
            base_url: Some("http://127.0.0.1:2".into()),
            serve: ServeLayer {
                http: Some("127.0.0.1:8".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let r = resolve(
            &flags,
            Some((Path::new("/x/config.toml"), file)),
            false,
            false,
            None,
        )
        .unwrap();
        assert_eq!(r.settings.base_url, "http://127.0.0.1:2");
        assert_eq!(r.settings.revision, "2025-01-01");
        assert_eq!(r.serve.mode(), ServeMode::All, "tables merge key by key");
        assert_eq!(r.serve.http.as_deref(), Some("127.0.0.1:8"));
        let r = resolve(&Layer::default(), None, false, false, None).unwrap();
        assert_eq!(r.settings.base_url, DEFAULT_BASE_URL);
        assert_eq!(r.settings.revision, klaviyo_catalog::generated::REVISION);
        assert_eq!(r.serve.mode(), ServeMode::Discovery);
    }

    #[test]
    fn the_key_source_is_flags_then_environment_then_file() {
        let file = Layer {
            key_file: Some("/etc/k".into()),
            ..Default::default()
        };
        let flags = Layer {
            key_command: Some("pass k".into()),
            ..Default::default()
        };
        let from = |flags: &Layer, env: bool| {
            resolve(
                flags,
                Some((Path::new("/c.toml"), file.clone())),
                env,
                false,
                None,
            )
            .unwrap()
            .settings
            .key_source
        };
        assert_eq!(from(&flags, true), KeySource::Command("pass k".into()));
        assert_eq!(
            from(&Layer::default(), true),
            KeySource::Env("KLAVIYO_API_KEY".into())
        );
        assert_eq!(
            from(&Layer::default(), false),
            KeySource::File("/etc/k".into())
        );
        let both = Layer {
            key_file: Some("/a".into()),
            key_command: Some("b".into()),
            ..Default::default()
        };
        assert!(resolve(&both, None, false, false, None)
            .unwrap_err()
            .contains("both key_file and key_command"));
    }

    #[test]
    fn a_named_connection_lies_over_the_top_level_and_its_key_wins_over_the_environment() {
        let dir = std::env::temp_dir().join(format!("kh-config-conn-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("config.toml");
        std::fs::write(
            &p,
            "base_url = \"http://127.0.0.1:1\"\nrevision = \"2026-07-15\"\nkey_file = \"top.key\"\n\n\
             [connections.acme]\nbase_url = \"http://127.0.0.1:2\"\nkey_command = \"pass acme\"\naudit_log = \"acme.jsonl\"\n\n\
             [connections.beta]\ncompany_id = \"Beta12\"\n",
        )
        .unwrap();
        let file = Layer::from_file(&p).unwrap();
        let with = |name: Option<&str>, env_key: bool, flags: &Layer| {
            resolve(
                flags,
                Some((p.as_path(), file.clone())),
                env_key,
                false,
                name,
            )
        };
        let acme = with(Some("acme"), true, &Layer::default()).unwrap();
        assert_eq!(acme.settings.base_url, "http://127.0.0.1:2");
        assert_eq!(
            acme.settings.revision, "2026-07-15",
            "top-level settings still apply"
        );
        assert_eq!(
            acme.settings.audit_log,
            Some(dir.join("acme.jsonl")),
            "anchored to the file"
        );
        assert_eq!(
            acme.settings.key_source,
            KeySource::Command("pass acme".into())
        );
        assert_eq!(acme.settings.connection.as_deref(), Some("acme"));
        assert_eq!(acme.connections, ["acme", "beta"]);
        // A flag still wins over the connection.
        let flags = Layer {
            base_url: Some("http://127.0.0.1:3".into()),
            ..Default::default()
        };
        assert_eq!(
            with(Some("acme"), true, &flags).unwrap().settings.base_url,
            "http://127.0.0.1:3"
        );
        // A connection without a key source of its own: as without connections.
        let beta = with(Some("beta"), true, &Layer::default()).unwrap();
        assert_eq!(
            beta.settings.key_source,
            KeySource::Env("KLAVIYO_API_KEY".into())
        );
        assert_eq!(beta.settings.public_key.as_deref(), Some("Beta12"));
        let beta = with(Some("beta"), false, &Layer::default()).unwrap();
        assert_eq!(
            beta.settings.key_source,
            KeySource::File(dir.join("top.key"))
        );
        // No connection named: the top level, as before connections existed.
        let none = with(None, false, &Layer::default()).unwrap();
        assert_eq!(
            (none.settings.base_url.as_str(), none.settings.connection),
            ("http://127.0.0.1:1", None)
        );
        let e = with(Some("acne"), false, &Layer::default()).err().unwrap();
        assert!(
            e.contains("no connection `acne`") && e.contains("acme, beta"),
            "{e}"
        );
        let e = resolve(&Layer::default(), None, false, false, Some("acme"))
            .err()
            .unwrap();
        assert!(e.contains("there is no config file"), "{e}");
        std::fs::write(&p, "[connections.a.connections.b]\nbase_url = \"x\"\n").unwrap();
        assert!(Layer::from_file(&p).unwrap_err().contains("do not nest"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_config_file_refuses_unknown_keys_and_anchors_relative_paths() {
        let dir = std::env::temp_dir().join(format!("kh-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("config.toml");
        std::fs::write(
            &p,
            "policy = \"policy.toml\"\n[serve]\nhttp_token_file = \"tokens\"\n",
        )
        .unwrap();
        let l = Layer::from_file(&p).unwrap();
        assert_eq!(l.policy.unwrap(), dir.join("policy.toml"));
        assert_eq!(l.serve.http_token_file.unwrap(), dir.join("tokens"));
        std::fs::write(&p, "base_ur = \"x\"\n").unwrap();
        let e = Layer::from_file(&p).unwrap_err();
        assert!(e.contains("base_ur") && e.contains("config file"), "{e}");
        std::fs::write(&p, "[serve]\nmod = \"all\"\n").unwrap();
        assert!(Layer::from_file(&p).unwrap_err().contains("mod"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_sandbox_is_a_setting_like_the_others_and_its_options_need_it() {
        let file: Layer =
            toml::from_str("sandbox = true\nsandbox_seed = 3\nsandbox_faults = \"429=0.5\"\n")
                .unwrap();
        let r = resolve(
            &Layer::default(),
            Some((Path::new("c.toml"), file)),
            false,
            false,
            None,
        )
        .unwrap();
        let sb = r.settings.sandbox.unwrap();
        assert_eq!(sb.seed, 3);
        assert_eq!(sb.faults.throttle, 0.5);
        // A flag turns it off over the file.
        let off = Layer {
            sandbox: Some(false),
            ..Layer::default()
        };
        let file: Layer = toml::from_str("sandbox = true\n").unwrap();
        let r = resolve(&off, Some((Path::new("c.toml"), file)), false, false, None).unwrap();
        assert!(r.settings.sandbox.is_none());
        // Defaults: seed 1, no faults; options without the sandbox are an error naming the fix.
        let on = Layer {
            sandbox: Some(true),
            ..Layer::default()
        };
        let sb = resolve(&on, None, false, false, None)
            .unwrap()
            .settings
            .sandbox
            .unwrap();
        assert_eq!((sb.seed, sb.faults.any()), (1, false));
        let stray = Layer {
            sandbox_faults: Some("429".into()),
            ..Layer::default()
        };
        let e = resolve(&stray, None, false, false, None).unwrap_err();
        assert!(e.contains("--sandbox"), "{e}");
        let bad = Layer {
            sandbox: Some(true),
            sandbox_faults: Some("418".into()),
            ..Layer::default()
        };
        let e = resolve(&bad, None, false, false, None).unwrap_err();
        assert!(e.contains("use 429, 5xx or timeout"), "{e}");
    }
}
