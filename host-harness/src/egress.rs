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
use std::time::Instant;
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
    pub tool: String,
    pub log: Arc<Mutex<CallLog>>,
}

type IoFuture = Box<dyn Future<Output = Result<(), HttpError>> + Send>;
type SendResult = Result<(http::Response<WasiBody>, IoFuture), HttpError>;

impl WasiHttpHooks for Hooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: IoFuture,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        let shared = self.shared.clone();
        let tool = self.tool.clone();
        let log = self.log.clone();
        Box::new(async move { guard(shared, tool, log, request, options).await })
    }
}

fn done_io() -> IoFuture {
    Box::new(async { Ok(()) })
}

/// A response made by the host, with its verdict header.
fn verdict(status: u16, kind: &str, text: String) -> SendResult {
    let resp = http::Response::builder()
        .status(status)
        .header(HOST_VERDICT_HEADER, kind)
        .header("content-type", "text/plain; charset=utf-8")
        .body(
            Full::new(Bytes::from(text))
                .map_err(|never| match never {})
                .boxed_unsync(),
        )
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
    tool: String,
    log: Arc<Mutex<CallLog>>,
    request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
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
    let shown = json!({
        "method": parts.method.as_str(),
        "url": parts.uri.to_string(),
        "headers": redacted_headers(&parts.headers),
        "body": body_for_display(&bytes, content_type.as_deref()),
    });
    if shared.settings.dry_run {
        let _ = shared
            .audit
            .write(&record("dry-run", op.id, access, v.decision.as_str(), None));
        let out = json!({
            "dry_run": true,
            "operation": op.id,
            "access": access,
            "policy": {"decision": v.decision.as_str(), "reason": v.reason},
            "request": shown,
        });
        log.lock().unwrap().dry_runs.push(out.clone());
        let resp = http::Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(
                Full::new(Bytes::from(out.to_string()))
                    .map_err(|never| match never {})
                    .boxed_unsync(),
            )
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
                serde_json::to_string_pretty(&shown["body"]).unwrap_or_default()
            );
            match shared.confirm.confirm(&prompt) {
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
    if !op.client {
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
    }
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
    let started = Instant::now();
    let t = &shared.settings.timeouts;
    let opts = RequestOptions {
        connect_timeout: Some(min_opt(options.and_then(|o| o.connect_timeout), t.connect)),
        first_byte_timeout: Some(min_opt(
            options.and_then(|o| o.first_byte_timeout),
            t.first_byte,
        )),
        between_bytes_timeout: Some(min_opt(
            options.and_then(|o| o.between_bytes_timeout),
            t.between_bytes,
        )),
    };
    let req = http::Request::from_parts(
        parts,
        Full::new(bytes)
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    let result = wasmtime_wasi_http::default_send_request(req, Some(opts)).await;
    let ms = started.elapsed().as_millis() as u64;
    match result {
        Ok((mut resp, io)) => {
            resp.headers_mut().remove(HOST_VERDICT_HEADER);
            let rid = resp
                .headers()
                .get("x-klaviyo-req-id")
                .and_then(|v| v.to_str().ok())
                .map(String::from);
            let mut r = record("done", op.id, access, v.decision.as_str(), None);
            r.status = Some(resp.status().as_u16());
            r.duration_ms = Some(ms);
            r.klaviyo_request_id = rid;
            let _ = shared.audit.write(&r);
            log.lock().unwrap().responses.push((
                op.id.to_string(),
                resp.status().as_u16(),
                resp.headers().clone(),
            ));
            Ok((resp.map(|b| b.boxed_unsync()), Box::new(io) as IoFuture))
        }
        Err(e) => {
            let mut r = record(
                "done",
                op.id,
                access,
                v.decision.as_str(),
                Some(format!("failed: {e}")),
            );
            r.duration_ms = Some(ms);
            let _ = shared.audit.write(&r);
            let before_sending = matches!(
                e,
                HttpError::Connect(_)
                    | HttpError::ConnectionRefused
                    | HttpError::ConnectionTimeout
                    | HttpError::Tls(_)
                    | HttpError::InvalidDnsNameError(_)
                    | HttpError::DnsTimeout
                    | HttpError::DestinationNotFound
            );
            if op.access != Access::Read && !before_sending {
                verdict(502, "outcome-unknown", format!(
                    "`{}` was sent but no answer arrived ({e}): the write may or may not have happened. Check the current state with a read before retrying.",
                    op.id
                ))
            } else if matches!(
                e,
                HttpError::ConnectionTimeout | HttpError::ConnectionReadTimeout
            ) {
                verdict(
                    504,
                    "timeout",
                    format!("{} {path}: {e}", op.method.as_str()),
                )
            } else {
                verdict(
                    502,
                    "transport",
                    format!("{} {path}: {e}; nothing was changed", op.method.as_str()),
                )
            }
        }
    }
}

fn min_opt(a: Option<std::time::Duration>, b: std::time::Duration) -> std::time::Duration {
    a.map_or(b, |a| a.min(b))
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
