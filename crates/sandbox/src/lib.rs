//! A Klaviyo account that lives on this machine: the harness's `--sandbox` answers from it
//! instead of the network, and `sandbox serve` puts it on a local port for other tools.
//!
//! - [`seed`]: the sample brand a new account starts with (deterministic from a seed);
//! - [`store`]: resources, relationships, and the state file shared by processes;
//! - [`engine`]: one request → one answer in the spec's shape ([`shapes`], generated), and the
//!   state change; what it does not simulate answers 501 `sandbox_not_simulated`;
//! - [`query`]: Klaviyo's `filter` language, comparisons, keyset cursors;
//! - [`Faults`]: injected 429s, 5xx and timeouts for rehearsing resilience.
//!
//! No network, no key, no clock but the one passed in: everything here is testable as data.

mod actions;
pub mod engine;
pub mod query;
pub mod seed;
pub mod shapes;
pub mod store;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use store::State;

pub use engine::Request;

/// Default seed of the sample account.
pub const DEFAULT_SEED: u64 = 1;

/// The name the sandbox account goes by where accounts are told apart (audit records'
/// `connection`, the pacing budget): `sandbox:SEED`.
pub fn account_name(seed: u64) -> String {
    format!("sandbox:{seed}")
}

/// Whether an account name (an audit record's `connection`) is a sandbox account's.
pub fn is_account_name(name: &str) -> bool {
    name.starts_with("sandbox:")
}

/// The sample account's public API key (`company_id` of `/client/*` requests).
pub const PUBLIC_KEY: &str = "SbX4mP";

/// Injected failures, each a share of requests (0.0–1.0), decided by a generator seeded from
/// the account's seed, so a rehearsal repeats.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Faults {
    pub throttle: f64,
    pub server_error: f64,
    pub timeout: f64,
}

impl Faults {
    /// `429,5xx,timeout`, each optionally `=RATE` (default 0.2): e.g. `429=0.5,timeout`.
    pub fn parse(s: &str) -> Result<Faults, String> {
        let mut f = Faults::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, rate) = match part.split_once('=') {
                Some((n, r)) => {
                    let r: f64 = r.trim().parse().map_err(|_| format!("sandbox fault `{part}`: the rate after `=` must be a number from 0 to 1, e.g. 429=0.5"))?;
                    if !(0.0..=1.0).contains(&r) {
                        return Err(format!(
                            "sandbox fault `{part}`: the rate must be from 0 to 1"
                        ));
                    }
                    (n.trim(), r)
                }
                None => (part, 0.2),
            };
            match name {
                "429" => f.throttle = rate,
                "5xx" | "500" | "503" => f.server_error = rate,
                "timeout" => f.timeout = rate,
                other => return Err(format!("sandbox fault `{other}`: use 429, 5xx or timeout (each optionally =RATE, e.g. 429=0.5)")),
            }
        }
        Ok(f)
    }

    pub fn any(&self) -> bool {
        self.throttle + self.server_error + self.timeout > 0.0
    }
}

/// The fault drawn for one request.
#[derive(Clone, Copy, PartialEq)]
enum Fault {
    Throttle,
    ServerError,
    Timeout,
}

/// What the sandbox answers.
#[derive(Debug)]
pub enum Outcome {
    Answer {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// An injected timeout: no answer. For a write, the change was made (as when Klaviyo
    /// applies a request whose answer is lost), so `reconcile` has something to find.
    Timeout,
}

/// The header on every sandbox answer.
pub const SANDBOX_HEADER: &str = "x-klaviyo-sandbox";

struct Inner {
    state: Option<State>,
    stamp: Option<(std::time::SystemTime, u64)>,
    rng: seed::Rng,
    window: (i64, std::collections::HashMap<&'static str, u32>),
}

/// One sandbox account.
pub struct Sandbox {
    seed: u64,
    file: Option<PathBuf>,
    faults: Faults,
    inner: Mutex<Inner>,
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Sandbox {
    /// The account of `seed`, kept under `state_dir` (`None`: in this process only).
    pub fn new(seed: u64, state_dir: Option<&Path>, faults: Faults) -> Sandbox {
        Sandbox {
            seed,
            file: state_dir.map(|d| store::state_file(d, seed)),
            faults,
            inner: Mutex::new(Inner {
                state: None,
                stamp: None,
                rng: seed::Rng::new(seed ^ 0xFA17),
                window: (0, Default::default()),
            }),
        }
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Where the account is kept, if on disk.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// Starts the account again from its seed (events in the 90 days before now).
    pub fn reset(&self) -> Result<(), String> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let fresh = seed::account(self.seed, now_secs());
        if let Some(f) = &self.file {
            let _lock = store::lock(f)?;
            store::save(f, &fresh)?;
            inner.stamp = store::stamp(f);
        }
        inner.state = Some(fresh);
        Ok(())
    }

    /// How many resources of each type the account holds.
    pub fn counts(&self) -> Result<Vec<(String, usize)>, String> {
        self.with_state(|s| {
            (
                s.data.iter().map(|(t, m)| (t.clone(), m.len())).collect(),
                false,
            )
        })
    }

    fn with_state<T>(&self, f: impl FnOnce(&mut State) -> (T, bool)) -> Result<T, String> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let Some(file) = &self.file else {
            let st = inner
                .state
                .get_or_insert_with(|| seed::account(self.seed, now_secs()));
            return Ok(f(st).0);
        };
        let _lock = store::lock(file)?;
        let stamp = store::stamp(file);
        if inner.state.is_none() || stamp != inner.stamp || stamp.is_none() {
            let loaded = match store::load(file)? {
                Some(s) => s,
                None => {
                    let s = seed::account(self.seed, now_secs());
                    store::save(file, &s)?;
                    s
                }
            };
            inner.state = Some(loaded);
            inner.stamp = store::stamp(file);
        }
        let st = inner.state.as_mut().expect("loaded above");
        let (out, changed) = f(st);
        if changed {
            store::save(file, st)?;
            inner.stamp = store::stamp(file);
        }
        Ok(out)
    }

    /// Answers one request. `base` is the URL links in answers start with.
    pub fn handle(&self, req: &Request, base: &str) -> Outcome {
        let now = now_secs();
        let op = klaviyo_catalog::Method::parse(req.method)
            .and_then(|m| klaviyo_catalog::routes::match_route(m, req.path));
        // Injected faults, decided before anything changes (a timeout applies the change).
        let (fault, rate_headers) = {
            let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            let roll = |rng: &mut seed::Rng| (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
            let r = roll(&mut inner.rng);
            let f = &self.faults;
            let fault = if r < f.throttle {
                Some(Fault::Throttle)
            } else if r < f.throttle + f.server_error {
                Some(Fault::ServerError)
            } else if r < f.throttle + f.server_error + f.timeout {
                Some(Fault::Timeout)
            } else {
                None
            };
            // RateLimit-* as Klaviyo sends them, from this process's count in the minute.
            let minute = now / 60;
            if inner.window.0 != minute {
                inner.window = (minute, Default::default());
            }
            let headers = op.map(|o| {
                let used = inner.window.1.entry(o.id).or_insert(0);
                *used += 1;
                let limit = o.rate_limit.steady_per_minute;
                vec![
                    ("ratelimit-limit".to_string(), limit.to_string()),
                    (
                        "ratelimit-remaining".to_string(),
                        limit.saturating_sub(*used).to_string(),
                    ),
                    ("ratelimit-reset".to_string(), (60 - now % 60).to_string()),
                ]
            });
            (fault, headers.unwrap_or_default())
        };
        static REQUESTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = REQUESTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut headers = vec![
            (
                "content-type".to_string(),
                "application/vnd.api+json".to_string(),
            ),
            (SANDBOX_HEADER.to_string(), format!("seed={}", self.seed)),
            // As Klaviyo's, for audit records and support questions; marked as the sandbox's.
            (
                "x-klaviyo-req-id".to_string(),
                format!("sandbox-{now}-{}-{n}", std::process::id()),
            ),
        ];
        headers.extend(rate_headers);
        let answer = |status: u16, body: Value, mut headers: Vec<(String, String)>| {
            if body.is_null() {
                headers.retain(|(k, _)| k != "content-type");
            }
            Outcome::Answer {
                status,
                headers,
                body: if body.is_null() {
                    Vec::new()
                } else {
                    body.to_string().into_bytes()
                },
            }
        };
        match fault {
            Some(Fault::Throttle) => {
                let mut h = headers.clone();
                h.push(("retry-after".into(), "1".into()));
                return answer(429, engine::error(429, "throttled", "Request was throttled.", "Request was throttled. Expected available in 1 second. (sandbox fault injection)".into(), None), h);
            }
            Some(Fault::ServerError) => {
                return answer(
                    503,
                    engine::error(
                        503,
                        "service_unavailable",
                        "Service unavailable.",
                        "The sandbox injected a server error (--sandbox-faults); nothing changed."
                            .into(),
                        None,
                    ),
                    headers,
                );
            }
            Some(Fault::Timeout) | None => {}
        }
        let result = self.with_state(|st| engine::handle(st, base, req, now));
        match result {
            Err(e) => answer(
                500,
                engine::error(500, "sandbox_state", "Sandbox state unavailable.", e, None),
                headers,
            ),
            Ok(_) if fault == Some(Fault::Timeout) => Outcome::Timeout,
            Ok(r) => answer(r.status, r.body, headers),
        }
    }
}

#[cfg(test)]
mod tests;
