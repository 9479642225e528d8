//! The wasi:http `send_request` hook: every request the component makes passes here, and only
//! here can it reach the network. In order:
//! 1. destination: scheme and authority must be the configured base URL's;
//! 2. classification: method + path → operation from the catalog (unknown → refused);
//! 3. credentials: `Authorization` must be exactly the host's placeholder (never a key the
//!    guest made up), and absent on `/client/*`;
//! 4. policy: allow / ask (confirmation showing the exact request) / deny;
//! 5. audit `sending`, key substitution, send, audit `done`.
//! A refused request gets a response made here, marked with [`HOST_VERDICT_HEADER`], which the
//! component turns into a typed error; that header is stripped from real responses.

use crate::audit::{now_rfc3339, Record};
use crate::policy::Decision;
use crate::throttle::Admission;
use crate::transport::SendError;
use crate::Shared;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use klaviyo_catalog::response::HOST_VERDICT_HEADER;
use klaviyo_catalog::routes::match_route;
use klaviyo_catalog::{Access, Method};
use serde_json::{json, Value};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

/// The value the component receives instead of the private key.
pub const KEY_PLACEHOLDER: &str = "host-provided-private-key";

/// Largest request body the host accepts from the component.
const MAX_REQUEST_BODY: usize = 16 * 1024 * 1024;

static REQUEST_SEQ: AtomicU64 = AtomicU64::new(1);

/// What one call has seen (shared between the store and the caller).
#[derive(Debug, Default)]
pub struct CallLog {
    /// Requests captured in dry-run mode, key redacted.
    pub dry_runs: Vec<Value>,
    /// Verdicts of the requests of this call (operation id, decision).
    pub decisions: Vec<(String, Decision)>,
    /// Answers that came over the network: (operation id, status, headers).
    pub responses: Vec<(String, u16, http::HeaderMap)>,
}

pub struct Hooks {
    pub shared: Arc<Shared>,
    /// Who answers `ask` for this call.
    pub confirm: Arc<dyn crate::Confirm>,
    pub tool: String,
    pub log: Arc<Mutex<CallLog>>,
    /// When the call must be answered.
    pub deadline: Instant,
}

type IoFuture = Box<dyn Future<Output = Result<(), HttpError>> + Send>;
type SendResult = Result<(http::Response<WasiBody>, IoFuture), HttpError>;

impl WasiHttpHooks for Hooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _fut: IoFuture,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        let shared = self.shared.clone();
        let tool = self.tool.clone();
        let log = self.log.clone();
        let deadline = self.deadline;
        let confirm = self.confirm.clone();
        Box::new(async move { guard(shared, confirm, tool, log, request, deadline).await })
    }
}

fn done_io() -> IoFuture {
    Box::new(async { Ok(()) })
}

/// A complete body for a response handed to the component.
fn full_body(bytes: impl Into<Bytes>) -> WasiBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A response made by the host, with its verdict header.
fn verdict(status: u16, kind: &str, text: String) -> SendResult {
    let resp = http::Response::builder()
        .status(status)
        .header(HOST_VERDICT_HEADER, kind)
        .header("content-type", "text/plain; charset=utf-8")
        .body(full_body(text))
        .expect("static response parts are valid");
    Ok((resp, done_io()))
}

fn redacted_headers(h: &http::HeaderMap) -> Value {
    let mut m = serde_json::Map::new();
    for (k, v) in h {
        let text = if k == http::header::AUTHORIZATION {
            "Klaviyo-API-Key [redacted]".to_string()
        } else {
            String::from_utf8_lossy(v.as_bytes()).into_owned()
        };
        m.insert(k.as_str().to_string(), Value::String(text));
    }
    Value::Object(m)
}

fn body_for_display(body: &[u8], content_type: Option<&str>) -> Value {
    if body.is_empty() {
        return Value::Null;
    }
    if content_type.is_some_and(|c| c.starts_with("multipart/")) {
        return json!(format!("<multipart body, {} bytes>", body.len()));
    }
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

/// Checks one request and, when it may go, sends it. Public so tests can forge requests a
/// hostile component could make.
pub async fn guard(
    shared: Arc<Shared>,
    confirm: Arc<dyn crate::Confirm>,
    tool: String,
    log: Arc<Mutex<CallLog>>,
    request: http::Request<WasiBody>,
    deadline: Instant,
) -> SendResult {
    let (mut parts, body) = request.into_parts();
    let seq = REQUEST_SEQ.fetch_add(1, Ordering::Relaxed);
    let base = &shared.settings.base;
    let dest_ok = parts.uri.scheme() == base.scheme() && parts.uri.authority() == base.authority();
    let path = parts.uri.path().to_string();
    let method = Method::parse(parts.method.as_str());
    let method_text = parts.method.to_string();
    let record = |event: &'static str,
                  op: &'static str,
                  access: &'static str,
                  decision: &'static str,
                  detail: Option<String>| Record {
        time: now_rfc3339(),
        event,
        request: seq,
        tool: &tool,
        operation: op,
        access,
        decision,
        method: &method_text,
        path: &path,
        status: None,
        duration_ms: None,
        klaviyo_request_id: None,
        detail,
    };
    let deny = |op: &'static str, access: &'static str, text: String| -> SendResult {
        if let Err(e) =
            shared
                .audit
                .write(&record("denied", op, access, "deny", Some(text.clone())))
        {
            return verdict(
                500,
                "transport",
                format!("the audit log could not be written ({e}); nothing was sent"),
            );
        }
        verdict(403, "denied", text)
    };
    if !dest_ok {
        let dest = format!(
            "{}://{}",
            parts.uri.scheme_str().unwrap_or("?"),
            parts.uri.authority().map(|a| a.as_str()).unwrap_or("?")
        );
        return deny(
            "-",
            "-",
            format!(
                "egress to {dest} is not allowed: the only allowed destination is {}",
                shared.settings.base_url
            ),
        );
    }
    let Some(op) = method.and_then(|m| match_route(m, &path)) else {
        return deny(
            "-",
            "-",
            format!(
                "{} {path} is not a Klaviyo API operation this host knows",
                parts.method
            ),
        );
    };
    let access = op.access.as_str();
    let bytes = match collect_limited(body, MAX_REQUEST_BODY).await {
        Ok(b) => b,
        Err(e) => return deny(op.id, access, e),
    };
    // Credentials: only the host's placeholder, only where the operation needs a key.
    let expected_auth = format!("Klaviyo-API-Key {KEY_PLACEHOLDER}");
    let auth = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .map(|v| v.as_bytes().to_vec());
    match (op.client, auth) {
        (true, Some(_)) => return deny(op.id, access, "client endpoints must not carry an Authorization header".into()),
        (false, Some(a)) if a != expected_auth.as_bytes() => {
            return deny(op.id, access, "the Authorization header must be the host's key placeholder; the component cannot supply a key".into())
        }
        (false, None) => return deny(op.id, access, "the request has no Authorization header".into()),
        _ => {}
    }
    let v = shared.settings.policy.decide(op, &tool);
    log.lock()
        .unwrap()
        .decisions
        .push((op.id.to_string(), v.decision));
    let content_type = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    // The request as a person sees it (key redacted): built only for a dry run or a question.
    let shown = || {
        json!({
            "method": parts.method.as_str(),
            "url": parts.uri.to_string(),
            "headers": redacted_headers(&parts.headers),
            "body": body_for_display(&bytes, content_type.as_deref()),
        })
    };
    if shared.settings.dry_run {
        let _ = shared
            .audit
            .write(&record("dry-run", op.id, access, v.decision.as_str(), None));
        let out = json!({
            "dry_run": true,
            "operation": op.id,
            "access": access,
            "policy": {"decision": v.decision.as_str(), "reason": v.reason},
            "request": shown(),
        });
        log.lock().unwrap().dry_runs.push(out.clone());
        let resp = http::Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(full_body(out.to_string()))
            .expect("valid response");
        return Ok((resp, done_io()));
    }
    match v.decision {
        Decision::Deny => {
            return deny(op.id, access, format!(
                "`{}` ({access}) is denied by {}. To allow it, add to the policy file:\n[[rules]]\ntools = \"{}\"\ndecision = \"allow\"",
                op.id, v.reason, op.id
            ))
        }
        Decision::Ask => {
            let prompt = format!(
                "The agent wants to run `{}` ({access}):\n{} {}\n{}\n",
                op.id,
                parts.method,
                parts.uri,
                serde_json::to_string_pretty(&shown()["body"]).unwrap_or_default()
            );
            match confirm.confirm(prompt).await {
                Ok(true) => {}
                Ok(false) => return deny(op.id, access, format!("`{}` was declined by the user", op.id)),
                Err(why) => {
                    return deny(op.id, access, format!(
                        "`{}` needs confirmation ({}) but {why}. To allow it without asking, add to the policy file:\n[[rules]]\ntools = \"{}\"\ndecision = \"allow\"",
                        op.id, v.reason, op.id
                    ))
                }
            }
        }
        Decision::Allow => {}
    }
    let account = if op.client {
        format!(
            "public:{}",
            shared.settings.public_key.as_deref().unwrap_or("")
        )
    } else {
        let key = match shared.keys.get() {
            Ok(Some(k)) => k,
            Ok(None) => {
                return verdict(503, "not-configured", "no Klaviyo private API key: set KLAVIYO_API_KEY, or key_file / key_command in the config file".into())
            }
            Err(e) => return verdict(503, "not-configured", e),
        };
        let mut value = http::HeaderValue::from_str(&format!("Klaviyo-API-Key {}", key.expose()))
            .map_err(|_| {
            HttpError::InternalError(Some(
                "the configured API key has characters not allowed in a header".into(),
            ))
        })?;
        value.set_sensitive(true);
        parts.headers.insert(http::header::AUTHORIZATION, value);
        account_fingerprint(key.expose())
    };
    if let Err(e) = shared
        .audit
        .write(&record("sending", op.id, access, v.decision.as_str(), None))
    {
        return verdict(
            500,
            "transport",
            format!("the audit log could not be written ({e}); nothing was sent"),
        );
    }
    let s = &shared.settings;
    let started = Instant::now();
    let is_read = op.access == Access::Read;
    // One retry layer, here: the component never retries.
    let mut retries = Retries {
        attempt: 0,
        waited: Duration::ZERO,
        max: s.max_retries,
        max_wait: s.max_retry_wait,
        deadline,
    };
    let retry = |retries: &mut Retries, why: String, wait: Duration| -> Option<Duration> {
        let w = retries.allow(wait)?;
        let mut r = record("retry", op.id, access, v.decision.as_str(), Some(why));
        r.duration_ms = Some(w.as_millis() as u64);
        let _ = shared.audit.write(&r);
        Some(w)
    };
    let outcome = loop {
        if s.throttle {
            match shared.limiter.reserve(&account, op, Instant::now()) {
                Admission::At(t) if t >= deadline => {
                    let secs = t
                        .saturating_duration_since(Instant::now())
                        .as_secs_f64()
                        .ceil() as u64;
                    break Err(throttled(secs, format!("`{}` is paced to Klaviyo's limit ({}/s, {}/min): the next slot is beyond this call's time limit", op.id, op.rate_limit.burst_per_second, op.rate_limit.steady_per_minute)));
                }
                Admission::At(t) => tokio::time::sleep_until(t.into()).await,
                Admission::DailyCapReached { resets_in, cap } => {
                    break Err(throttled(resets_in.as_secs(), format!("`{}` reached its daily limit of {cap} requests; it resets at midnight UTC", op.id)));
                }
            }
        }
        let mut req = http::Request::new(bytes.clone());
        *req.method_mut() = parts.method.clone();
        *req.uri_mut() = parts.uri.clone();
        *req.headers_mut() = parts.headers.clone();
        match shared.transport.send(req, deadline, is_read).await {
            Ok(resp) => {
                let status = resp.status.as_u16();
                let header = |n: &str| resp.headers.get(n).and_then(|v| v.to_str().ok()).map(String::from);
                let wait = if status == 429 {
                    let body = String::from_utf8_lossy(&resp.body);
                    let secs = klaviyo_catalog::response::retry_after_seconds(&header, &body);
                    Some(secs.map_or_else(|| retries.backoff(), |s| Duration::from_secs(u64::from(s))))
                } else if is_read && matches!(status, 502..=504) {
                    Some(retries.backoff())
                } else {
                    None
                };
                if let Some(w) = wait.and_then(|w| retry(&mut retries, format!("HTTP {status}"), w)) {
                    tokio::time::sleep(w).await;
                    continue;
                }
                break Ok(resp);
            }
            Err(SendError::NotSent(e)) => match { let w = retries.backoff(); retry(&mut retries, e.clone(), w) } {
                Some(w) => tokio::time::sleep(w).await,
                None => break Err(verdict(502, "transport", format!("{} {path}: could not reach {} ({e}); nothing was sent", op.method.as_str(), s.base_url))),
            },
            Err(SendError::Dropped(e)) if is_read => match { let w = retries.backoff(); retry(&mut retries, e.clone(), w) } {
                Some(w) => tokio::time::sleep(w).await,
                None => break Err(verdict(502, "transport", format!("{} {path}: {e}", op.method.as_str()))),
            },
            Err(e @ (SendError::Dropped(_) | SendError::Timeout { .. })) if !is_read => {
                break Err(verdict(502, "outcome-unknown", format!(
                    "`{}` was sent but {e}: the write may or may not have happened, and it was not retried; {}",
                    op.id,
                    klaviyo_catalog::response::check_hint(op)
                )))
            }
            Err(e @ SendError::Timeout { .. }) => break Err(verdict(504, "timeout", format!("{} {path}: {e}", op.method.as_str()))),
            Err(e @ SendError::TooLarge { .. }) => {
                let what = if is_read { "" } else { " (the write itself was answered)" };
                break Err(verdict(502, "transport", format!("{} {path}: {e}{what}; raise max_response_bytes to accept it", op.method.as_str())));
            }
            Err(SendError::Dropped(_)) => unreachable!("reads are handled above"),
        }
    };
    let ms = started.elapsed().as_millis() as u64;
    match outcome {
        Ok(resp) => {
            let rid = resp
                .headers
                .get("x-klaviyo-req-id")
                .and_then(|v| v.to_str().ok())
                .map(String::from);
            let mut r = record("done", op.id, access, v.decision.as_str(), None);
            r.status = Some(resp.status.as_u16());
            r.duration_ms = Some(ms);
            r.klaviyo_request_id = rid;
            let _ = shared.audit.write(&r);
            let mut headers = resp.headers;
            headers.remove(HOST_VERDICT_HEADER);
            log.lock().unwrap().responses.push((
                op.id.to_string(),
                resp.status.as_u16(),
                headers.clone(),
            ));
            let mut out = http::Response::new(full_body(resp.body));
            *out.status_mut() = resp.status;
            *out.headers_mut() = headers;
            Ok((out, done_io()))
        }
        Err(made) => {
            let mut r = record(
                "done",
                op.id,
                access,
                v.decision.as_str(),
                Some("no answer from Klaviyo (see the call's error)".into()),
            );
            r.duration_ms = Some(ms);
            let _ = shared.audit.write(&r);
            made
        }
    }
}

/// A host `throttled` verdict, with when to retry.
fn throttled(retry_after_secs: u64, text: String) -> SendResult {
    let (mut resp, io) = verdict(429, "throttled", text)?;
    resp.headers_mut()
        .insert(http::header::RETRY_AFTER, retry_after_secs.into());
    Ok((resp, io))
}

/// A stable, non-reversible name for the account a key belongs to (rate limits are per account).
fn account_fingerprint(key: &str) -> String {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(key.as_bytes());
    d[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// The retry budget of one request: a count and a total wait, within the call's deadline.
struct Retries {
    attempt: u32,
    waited: Duration,
    max: u32,
    max_wait: Duration,
    deadline: Instant,
}

impl Retries {
    /// Spends `wait` on one more attempt, if the budget allows.
    fn allow(&mut self, wait: Duration) -> Option<Duration> {
        let fits = self.attempt < self.max
            && self.waited + wait <= self.max_wait
            && Instant::now() + wait < self.deadline;
        fits.then(|| {
            self.attempt += 1;
            self.waited += wait;
            wait
        })
    }

    fn backoff(&self) -> Duration {
        backoff(self.attempt)
    }
}

/// Exponential backoff with jitter: 250 ms, 500 ms, 1 s, … each × [0.5, 1.5).
fn backoff(attempt: u32) -> Duration {
    use std::sync::atomic::AtomicU64;
    static SEED: AtomicU64 = AtomicU64::new(0x9E37_79B9_7F4A_7C15);
    let mut x = SEED.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    let jitter = 0.5 + (x % 1000) as f64 / 1000.0;
    Duration::from_millis(250u64 << attempt.min(6)).mul_f64(jitter)
}

async fn collect_limited(mut body: WasiBody, limit: usize) -> Result<Bytes, String> {
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("reading the request body failed: {e}"))?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > limit {
                return Err(format!("the request body is larger than {limit} bytes"));
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(Bytes::from(out))
}
