//! The wasi:http `send_request` hook: every request the component makes passes here, and only
//! here can it reach the network. A request passes small stages, each its own decision:
//!
//! 1. [`admit`] (pure, table-tested): destination, canonical path, route (method + path →
//!    operation, the host's own classification), the called tool's own operations, headers,
//!    credentials, body;
//! 2. the policy's decision for that operation (`klaviyo_agent::policy`), then dry run / deny /
//!    ask (the exact request shown, [`show`]);
//! 3. the key: substituted into `Authorization` only, only now; no key → `not-configured`
//!    (with `--sandbox` no key is read at all, and the built-in sandbox account answers in
//!    place of the network at step 4: everything else is the same);
//! 4. audit `sending` (on disk before the request leaves), pacing, send, and the one retry
//!    rule ([`retry::next_step`], pure);
//! 5. audit `done`; the key scrubbed from whatever came back.
//!
//! A refused request gets a response made here, marked with [`HOST_VERDICT_HEADER`] (a
//! [`HostVerdict`]), which the component turns into a typed error; that header is stripped
//! from real responses, so a server cannot forge a verdict. Every refusal is audited.

pub mod admit;
pub mod retry;
pub mod show;

pub use admit::{admit, Reason, Refusal, KEY_PLACEHOLDER};

use crate::audit::{now_rfc3339, Record};
use crate::secrets::Secret;
use crate::throttle::Admission;
use crate::transport::SendError;
use crate::Shared;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use klaviyo_agent::policy::Decision;
use klaviyo_catalog::response::{HostVerdict, HOST_VERDICT_HEADER};
use klaviyo_catalog::tools::Tool;
use klaviyo_catalog::{Access, Operation};
use retry::{Attempt, Budget, Step};
use serde_json::{json, Value};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

/// Largest request body the host accepts from the component.
pub const MAX_REQUEST_BODY: usize = 16 * 1024 * 1024;
/// Most requests one call may make. A tool call makes one (the component never retries;
/// `--all-pages` makes one call per page): more means the component is not doing what it was
/// asked, and each one would hold host memory.
pub const MAX_REQUESTS_PER_CALL: usize = 8;

static LAST_REQUEST_MS: AtomicU64 = AtomicU64::new(0);

/// A request id, unique across the processes that write one audit log (one CLI process per
/// call is common, and `report` and `reconcile` join records on it): the wall-clock
/// millisecond, kept increasing within the process (`max(last + 1, now)`), times 1024, plus
/// the low 10 bits of the process id. Below 2^53, so JSON readers in any language keep it
/// exact. (A numbering from 1 in each process gave every CLI call the same ids.)
fn next_request_id() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let prev = LAST_REQUEST_MS
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| {
            Some(now.max(last + 1))
        })
        .unwrap_or(0);
    let ms = now.max(prev + 1);
    (ms << 10) | u64::from(std::process::id() & 0x3ff)
}

/// What one call has seen (shared between the store and the caller).
#[derive(Debug, Default)]
pub struct CallLog {
    /// Requests captured in dry-run mode, key redacted.
    pub dry_runs: Vec<Value>,
    /// Verdicts of the requests of this call (operation id, decision).
    pub decisions: Vec<(String, Decision)>,
    /// Answers that came over the network: (operation id, status, headers).
    pub responses: Vec<(String, u16, http::HeaderMap)>,
    /// Requests the component made in this call (admitted or not).
    pub requests: usize,
}

/// The per-call state of the hook.
pub struct Hooks {
    pub call: CallScope,
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
        let call = self.call.clone();
        Box::new(async move { guard(call, request).await })
    }
}

/// Everything [`guard`] needs about the call a request belongs to.
#[derive(Clone)]
pub struct CallScope {
    pub shared: Arc<Shared>,
    /// Who answers `ask` for this call.
    pub confirm: Arc<dyn crate::Confirm>,
    /// The name the agent called, as given (for the audit log only).
    pub called: String,
    /// The tool that name resolves to, in the host's catalog: the call may make only its
    /// operations' requests. `None` (an unknown name, or listing tools): no requests at all.
    pub tool: Option<Tool>,
    /// Who is calling (e.g. the HTTP client's token name), for the audit log.
    pub client: Option<Arc<str>>,
    pub log: Arc<Mutex<CallLog>>,
    /// When the call must be answered.
    pub deadline: Instant,
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
fn verdict(v: HostVerdict, text: String) -> SendResult {
    let status = match v {
        HostVerdict::Denied => 403,
        HostVerdict::NotConfigured => 503,
        HostVerdict::Throttled => 429,
        HostVerdict::Timeout => 504,
        HostVerdict::OutcomeUnknown | HostVerdict::Transport => 502,
    };
    let resp = http::Response::builder()
        .status(status)
        .header(HOST_VERDICT_HEADER, v.as_str())
        .header("content-type", "text/plain; charset=utf-8")
        .body(full_body(text))
        .expect("static response parts are valid");
    Ok((resp, done_io()))
}

/// The audit fields of one request.
struct Audit<'a> {
    call: &'a CallScope,
    seq: u64,
    op: Option<&'static Operation>,
    method: String,
    path: String,
}

impl Audit<'_> {
    fn record(
        &self,
        event: &'static str,
        decision: &'static str,
        detail: Option<String>,
    ) -> Record<'_> {
        Record {
            time: now_rfc3339(),
            event,
            request: self.seq,
            tool: &self.call.called,
            connection: self.call.shared.settings.connection.as_deref(),
            client: self.call.client.as_deref(),
            operation: self.op.map_or("-", |o| o.id),
            access: self.op.map_or("-", |o| o.access.as_str()),
            decision,
            method: &self.method,
            path: &self.path,
            status: None,
            duration_ms: None,
            klaviyo_request_id: None,
            detail,
            outcome: None,
            paced_ms: None,
            check: None,
        }
    }

    fn write(&self, r: &Record) -> Result<(), String> {
        self.call.shared.audit.write(r)
    }

    /// A refusal: audited (or, if the audit log cannot be written, said so), then answered.
    fn refuse(&self, v: HostVerdict, event: &'static str, text: String) -> SendResult {
        self.refuse_as(v, event, None, text)
    }

    /// A refusal with how it came about (`declined`, `unconfirmed`) for the record.
    fn refuse_as(
        &self,
        v: HostVerdict,
        event: &'static str,
        outcome: Option<&'static str>,
        text: String,
    ) -> SendResult {
        let mut r = self.record(event, "deny", Some(text.clone()));
        r.outcome = outcome;
        if let Err(e) = self.write(&r) {
            return verdict(
                HostVerdict::Transport,
                format!("the audit log could not be written ({e}); nothing was sent"),
            );
        }
        verdict(v, text)
    }
}

/// Checks one request and, when it may go, sends it. Public so tests can hand it requests a
/// hostile component could make.
pub async fn guard(call: CallScope, request: http::Request<WasiBody>) -> SendResult {
    let (mut parts, body) = request.into_parts();
    let mut audit = Audit {
        call: &call,
        seq: next_request_id(),
        op: None,
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
    };
    let n = {
        let mut log = call.log.lock().unwrap();
        log.requests += 1;
        log.requests
    };
    if n > MAX_REQUESTS_PER_CALL {
        return audit.refuse(
            HostVerdict::Denied,
            "denied",
            format!(
                "a call may make at most {MAX_REQUESTS_PER_CALL} requests; this is request {n}"
            ),
        );
    }
    let bytes = match collect_limited(body, MAX_REQUEST_BODY).await {
        Ok(b) => b,
        Err(e) => return audit.refuse(HostVerdict::Denied, "denied", e),
    };
    // 1. admission
    let s = &call.shared.settings;
    let op = match admit(s, call.tool, &parts, &bytes) {
        Ok(op) => op,
        Err(r) => {
            audit.op = r.operation;
            return audit.refuse(HostVerdict::Denied, "denied", r.reason.to_string());
        }
    };
    audit.op = Some(op);
    let access = op.access.as_str();
    // 2. policy
    let v = s.policy.decide(op);
    call.log
        .lock()
        .unwrap()
        .decisions
        .push((op.id.to_string(), v.decision));
    let shown = || show::request(&parts, &bytes);
    if s.dry_run {
        let _ = audit.write(&audit.record("dry-run", v.decision.as_str(), None));
        let out = json!({
            "dry_run": true,
            "operation": op.id,
            "access": access,
            "policy": {"decision": v.decision.as_str(), "reason": v.reason},
            "request": shown(),
        });
        call.log.lock().unwrap().dry_runs.push(out.clone());
        let resp = http::Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(full_body(out.to_string()))
            .expect("valid response");
        return Ok((resp, done_io()));
    }
    let allow_rule = |op: &Operation| {
        format!(
            "To allow it, add to the policy file:\n[[rules]]\ntools = \"{}\"\ndecision = \"allow\"",
            op.id
        )
    };
    match v.decision {
        Decision::Deny => {
            return audit.refuse(
                HostVerdict::Denied,
                "denied",
                format!(
                    "`{}` ({access}) is denied by {}. {}",
                    op.id,
                    v.reason,
                    allow_rule(op)
                ),
            )
        }
        Decision::Ask => {
            let prompt = format!(
                "The agent wants to run `{}` ({access}; {}), this exact request:\n\n{}",
                op.id,
                v.reason,
                show::request_text(&shown())
            );
            match call.confirm.confirm(prompt).await {
                Ok(true) => {}
                Ok(false) => {
                    return audit.refuse_as(
                        HostVerdict::Denied,
                        "denied",
                        Some("declined"),
                        format!("`{}` was declined by the user; nothing was sent", op.id),
                    )
                }
                Err(why) => {
                    return audit.refuse_as(
                        HostVerdict::Denied,
                        "denied",
                        Some("unconfirmed"),
                        format!(
                            "`{}` needs confirmation ({}) but {why}; nothing was sent. {}",
                            op.id,
                            v.reason,
                            allow_rule(op)
                        ),
                    )
                }
            }
        }
        Decision::Allow => {}
    }
    // 3. the key, only now
    let mut key: Option<Secret> = None;
    let account = if let Some(sb) = &call.shared.sandbox {
        // The sandbox needs no key and must never see one.
        klaviyo_sandbox::account_name(sb.seed())
    } else if op.client {
        format!("public:{}", s.public_key.as_deref().unwrap_or(""))
    } else {
        let k = match call.shared.keys.get().await {
            Ok(Some(k)) => k,
            Ok(None) => {
                return audit.refuse(
                    HostVerdict::NotConfigured,
                    "not-configured",
                    "no Klaviyo private API key: set KLAVIYO_API_KEY, or key_file / key_command in the config file; nothing was sent".into(),
                )
            }
            Err(e) => return audit.refuse(HostVerdict::NotConfigured, "not-configured", format!("{e}; nothing was sent")),
        };
        let Ok(mut value) = http::HeaderValue::from_str(&format!("Klaviyo-API-Key {}", k.expose()))
        else {
            return audit.refuse(
                HostVerdict::NotConfigured,
                "not-configured",
                "the configured API key has characters not allowed in a header; nothing was sent"
                    .into(),
            );
        };
        value.set_sensitive(true);
        parts.headers.insert(http::header::AUTHORIZATION, value);
        let fp = account_fingerprint(k.expose());
        key = Some(k);
        fp
    };
    // 4. audit `sending`, pace, send, retry
    let mut sending = audit.record("sending", v.decision.as_str(), None);
    if v.decision == Decision::Ask {
        sending.outcome = Some("approved");
    }
    if let Err(e) = audit.write(&sending) {
        return verdict(
            HostVerdict::Transport,
            format!("the audit log could not be written ({e}); nothing was sent"),
        );
    }
    let started = Instant::now();
    let what = format!("{} {}", op.method.as_str(), audit.path);
    let check = klaviyo_catalog::response::check_hint(op);
    let mut budget = Budget {
        attempt: 0,
        waited: Duration::ZERO,
        max: s.max_retries,
        max_wait: s.max_retry_wait,
        deadline: call.deadline,
        jitter: retry::jitter(),
    };
    let mut paced = Duration::ZERO;
    let outcome = loop {
        if s.throttle {
            match call
                .shared
                .limiter
                .reserve_before(&account, op, Instant::now(), call.deadline)
            {
                Admission::At(t) if t >= call.deadline => {
                    let secs = t
                        .saturating_duration_since(Instant::now())
                        .as_secs_f64()
                        .ceil() as u64;
                    break Err(throttled(secs, format!("`{}` is paced to Klaviyo's limit ({}/s, {}/min): the next slot is beyond this call's time limit; nothing was sent", op.id, op.rate_limit.burst_per_second, op.rate_limit.steady_per_minute)));
                }
                Admission::At(t) => {
                    let before = Instant::now();
                    tokio::time::sleep_until(t.into()).await;
                    paced += before.elapsed();
                }
                Admission::DailyCapReached { resets_in, cap } => {
                    break Err(throttled(resets_in.as_secs(), format!("`{}` reached its daily limit of {cap} requests; it resets at midnight UTC; nothing was sent", op.id)));
                }
            }
        }
        let mut req = http::Request::new(bytes.clone());
        *req.method_mut() = parts.method.clone();
        *req.uri_mut() = parts.uri.clone();
        *req.headers_mut() = parts.headers.clone();
        let sent = match &call.shared.sandbox {
            Some(sb) => sandbox_send(sb, &req, &s.base_url),
            None => {
                call.shared
                    .transport
                    .send(req, call.deadline, op.access == Access::Read)
                    .await
            }
        };
        let attempt = match &sent {
            Ok(resp) => Attempt::Answered {
                status: resp.status.as_u16(),
                retry_after: (resp.status == 429)
                    .then(|| {
                        let header = |n: &str| {
                            resp.headers
                                .get(n)
                                .and_then(|v| v.to_str().ok())
                                .map(String::from)
                        };
                        let body = String::from_utf8_lossy(&resp.body);
                        klaviyo_catalog::response::retry_after_seconds(&header, &body)
                            .map(|s| Duration::from_secs(u64::from(s)))
                    })
                    .flatten(),
            },
            Err(SendError::NotSent(e)) => Attempt::NotSent(e.clone()),
            Err(SendError::Dropped(e)) => Attempt::Dropped(e.clone()),
            Err(e @ SendError::Timeout { .. }) => Attempt::Timeout(e.to_string()),
            Err(e @ SendError::TooLarge { .. }) => Attempt::TooLarge(e.to_string()),
        };
        match retry::next_step(op.access, &attempt, &budget, Instant::now(), &what, &check) {
            Step::Deliver => {
                break sent.map_err(|e| verdict(HostVerdict::Transport, e.to_string()))
            }
            Step::Retry { after, why } => {
                budget.spend(after);
                let mut r = audit.record("retry", v.decision.as_str(), Some(why));
                r.duration_ms = Some(after.as_millis() as u64);
                if let Attempt::Answered { status, .. } = &attempt {
                    r.status = Some(*status);
                }
                let _ = audit.write(&r);
                tokio::time::sleep(after).await;
            }
            Step::Fail(kind, text) => break Err(verdict(kind, text)),
        }
    };
    // 5. audit `done`, scrub, answer
    let ms = started.elapsed().as_millis() as u64;
    match outcome {
        Ok(resp) => {
            let mut r = audit.record("done", v.decision.as_str(), None);
            r.status = Some(resp.status.as_u16());
            r.duration_ms = Some(ms);
            r.paced_ms = (!paced.is_zero()).then(|| paced.as_millis() as u64);
            r.klaviyo_request_id = resp
                .headers
                .get("x-klaviyo-req-id")
                .and_then(|v| v.to_str().ok())
                .map(String::from);
            let _ = audit.write(&r);
            let mut headers = resp.headers;
            headers.remove(HOST_VERDICT_HEADER);
            let (headers, body) = match &key {
                Some(k) => scrub(k.expose(), headers, resp.body),
                None => (headers, resp.body),
            };
            call.log.lock().unwrap().responses.push((
                op.id.to_string(),
                resp.status.as_u16(),
                headers.clone(),
            ));
            let mut out = http::Response::new(full_body(body));
            *out.status_mut() = resp.status;
            *out.headers_mut() = headers;
            Ok((out, done_io()))
        }
        Err(made) => {
            let mut r = audit.record(
                "done",
                v.decision.as_str(),
                Some("no answer from Klaviyo (see the call's error)".into()),
            );
            r.duration_ms = Some(ms);
            r.paced_ms = (!paced.is_zero()).then(|| paced.as_millis() as u64);
            let kind = made
                .as_ref()
                .ok()
                .and_then(|(resp, _)| resp.headers().get(HOST_VERDICT_HEADER))
                .and_then(|v| v.to_str().ok())
                .map(HostVerdict::parse);
            r.outcome = kind.map(HostVerdict::as_str);
            if kind == Some(HostVerdict::OutcomeUnknown) {
                r.check = Some(check.clone());
            }
            let _ = audit.write(&r);
            made
        }
    }
}

/// The sandbox account's answer to a request that passed every stage before sending: the
/// same admission, policy, confirmation, pacing, retry and audit as a request to Klaviyo.
fn sandbox_send(
    sb: &klaviyo_sandbox::Sandbox,
    req: &http::Request<Bytes>,
    base: &str,
) -> Result<crate::transport::Buffered, SendError> {
    let r = klaviyo_sandbox::Request {
        method: req.method().as_str(),
        path: req.uri().path(),
        query: req.uri().query().unwrap_or(""),
        body: req.body(),
    };
    match sb.handle(&r, base) {
        klaviyo_sandbox::Outcome::Answer {
            status,
            headers,
            body,
        } => {
            let mut h = http::HeaderMap::new();
            for (k, v) in headers {
                if let (Ok(k), Ok(v)) = (
                    http::HeaderName::from_bytes(k.as_bytes()),
                    http::HeaderValue::from_str(&v),
                ) {
                    h.insert(k, v);
                }
            }
            Ok(crate::transport::Buffered {
                status: http::StatusCode::from_u16(status)
                    .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR),
                headers: h,
                body: Bytes::from(body),
            })
        }
        klaviyo_sandbox::Outcome::Timeout => Err(SendError::Timeout {
            phase: "answer (a timeout the sandbox injected)",
            after: Duration::ZERO,
        }),
    }
}

/// The key, wherever it appears in an answer (a server echoing the request, a proxy's error
/// page), replaced before the answer reaches the component or the caller.
fn scrub(key: &str, mut headers: http::HeaderMap, body: Bytes) -> (http::HeaderMap, Bytes) {
    const MARK: &[u8] = b"[redacted]";
    let k = key.as_bytes();
    if k.is_empty() {
        return (headers, body);
    }
    let replace = |b: &[u8]| -> Option<Vec<u8>> {
        let first = b.windows(k.len()).position(|w| w == k)?;
        let mut out = Vec::with_capacity(b.len());
        out.extend_from_slice(&b[..first]);
        let mut i = first;
        while i < b.len() {
            if b[i..].starts_with(k) {
                out.extend_from_slice(MARK);
                i += k.len();
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        Some(out)
    };
    for v in headers.values_mut() {
        if let Some(clean) = replace(v.as_bytes()) {
            *v = http::HeaderValue::from_bytes(&clean)
                .unwrap_or_else(|_| http::HeaderValue::from_static("[redacted]"));
        }
    }
    let body = replace(&body).map(Bytes::from).unwrap_or(body);
    (headers, body)
}

/// A host `throttled` verdict, with when to retry.
fn throttled(retry_after_secs: u64, text: String) -> SendResult {
    let (mut resp, io) = verdict(HostVerdict::Throttled, text)?;
    resp.headers_mut()
        .insert(http::header::RETRY_AFTER, retry_after_secs.into());
    Ok((resp, io))
}

/// A stable, non-reversible name for the account a key belongs to (rate limits are per account).
pub fn account_fingerprint(key: &str) -> String {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(key.as_bytes());
    d[..8].iter().map(|b| format!("{b:02x}")).collect()
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

#[cfg(test)]
mod tests {
    #[test]
    fn the_key_is_scrubbed_from_answers() {
        let mut h = http::HeaderMap::new();
        h.insert("x-echo", "Klaviyo-API-Key pk_SECRET".parse().unwrap());
        h.insert("x-other", "fine".parse().unwrap());
        let (h, b) = super::scrub(
            "pk_SECRET",
            h,
            bytes::Bytes::from_static(b"{\"auth\":\"pk_SECRET pk_SECRET\"}"),
        );
        assert_eq!(h["x-echo"], "Klaviyo-API-Key [redacted]");
        assert_eq!(h["x-other"], "fine");
        assert_eq!(&b[..], b"{\"auth\":\"[redacted] [redacted]\"}");
    }
}
