//! `serve --http ADDR`: MCP over Streamable HTTP (rmcp's transport: 2026-07-28 stateless
//! requests and 2025-11-25 sessions), with the host's own gate in front. A request passes, in
//! order:
//! 1. route: `GET /healthz`, `GET /readyz` (JSON, no auth), `/mcp`; anything else 404;
//! 2. browser safety: `Host` must be an allowed host (DNS rebinding) and `Origin`, when sent,
//!    an allowed origin: else 403;
//! 3. auth: `Authorization: Bearer <token>`, compared in constant time against every
//!    configured token (each has a name, which goes into the audit log): else 401, saying
//!    nothing of why;
//! 4. limits: request body size (413), per-client rate (429 with `Retry-After`), calls at once
//!    (waits, then 503), and a time limit for slow clients (408);
//! 5. rmcp, then [`super::Server`]: the same component, policy, pacing and audit as the CLI.
//!
//! A call whose client disconnects completes (and is audited): calls run in tracked tasks.
//! SIGTERM / SIGINT stop accepting, let calls in flight finish within a grace period, then
//! exit. Without a token the server binds only loopback addresses.
//!
//! The seam for OAuth 2.1 (resource-server mode) is [`Gate::client_for`]: today a bearer
//! token list; a token validator would return the same client name.

use super::Server;
use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use rmcp::transport::streamable_http_server::{
    session::local::LocalSessionManager, StreamableHttpServerConfig, StreamableHttpService,
};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The authenticated client, put into the request's extensions for the tool call (audit).
#[derive(Clone, Debug)]
pub struct ClientName(pub Arc<str>);

pub use klaviyo_agent::auth::{parse_tokens, Token};

/// Everything `serve --http` needs besides the MCP server.
#[derive(Clone, Debug)]
pub struct HttpOptions {
    pub addr: String,
    pub tokens: Vec<Token>,
    /// Extra `Host` values accepted (the bound address, localhost and 127.0.0.1 always are).
    pub allowed_hosts: Vec<String>,
    /// `Origin` values accepted (browsers); requests without `Origin` are not browsers'.
    pub allowed_origins: Vec<String>,
    pub max_body_bytes: usize,
    pub max_concurrent_calls: usize,
    /// Requests per minute per client (burst: a tenth of it, at least 10).
    pub rate_per_minute: u32,
    /// How long a client may take to send a request.
    pub request_timeout: Duration,
    /// How often the key is checked against Klaviyo for `/readyz`.
    pub key_check_every: Duration,
    /// How long calls in flight may take to finish after SIGTERM.
    pub grace: Duration,
}

impl HttpOptions {
    pub fn new(addr: &str) -> HttpOptions {
        HttpOptions {
            addr: addr.to_string(),
            tokens: vec![],
            allowed_hosts: vec![],
            allowed_origins: vec![],
            max_body_bytes: 4 << 20,
            max_concurrent_calls: 32,
            rate_per_minute: 600,
            request_timeout: Duration::from_secs(30),
            key_check_every: Duration::from_secs(15 * 60),
            grace: Duration::from_secs(30),
        }
    }
}

type Body = BoxBody<Bytes, Infallible>;

fn reply(status: StatusCode, v: Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-store")
        .body(Full::new(Bytes::from(v.to_string())).boxed())
        .expect("static response parts are valid")
}

/// The gate in front of rmcp, and the health state.
struct Gate {
    tokens: Vec<Token>,
    hosts: Vec<String>,
    origins: Vec<String>,
    max_body: usize,
    rate: RateLimiter,
    slots: tokio::sync::Semaphore,
    request_timeout: Duration,
    health: Health,
}

impl Gate {
    /// The client a request authenticates as (`klaviyo_agent::auth`: every token compared in
    /// constant time, no early exit). The seam for OAuth 2.1: a token validator returning a name.
    fn client_for(&self, headers: &http::HeaderMap) -> Option<Arc<str>> {
        let v = headers.get(header::AUTHORIZATION)?.as_bytes();
        klaviyo_agent::auth::client_for(&self.tokens, v).map(Arc::from)
    }

    fn host_ok(&self, headers: &http::HeaderMap) -> bool {
        headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .is_some_and(|h| self.hosts.iter().any(|a| a.eq_ignore_ascii_case(h)))
    }

    fn origin_ok(&self, headers: &http::HeaderMap) -> bool {
        match headers.get(header::ORIGIN) {
            None => true,
            Some(o) => o
                .to_str()
                .is_ok_and(|o| self.origins.iter().any(|a| a.eq_ignore_ascii_case(o))),
        }
    }
}

/// Per-client token buckets.
struct RateLimiter {
    per_minute: f64,
    burst: f64,
    buckets: Mutex<HashMap<Arc<str>, (f64, Instant)>>,
}

impl RateLimiter {
    /// `None` when allowed; else seconds to wait.
    fn take(&self, client: &Arc<str>) -> Option<u64> {
        let now = Instant::now();
        let mut b = self.buckets.lock().unwrap();
        let (tokens, at) = b.entry(client.clone()).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.per_minute / 60.0)
            .min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            None
        } else {
            Some(((1.0 - *tokens) * 60.0 / self.per_minute).ceil().max(1.0) as u64)
        }
    }
}

/// What `/readyz` reports.
pub struct Health {
    key_configured: bool,
    revision: String,
    revision_status: &'static str,
    /// Answering from the sandbox account (no key needed).
    sandbox: bool,
    last_check: Mutex<Option<Value>>,
    check_ok: AtomicBool,
    stopping: AtomicBool,
}

impl Health {
    fn ready(&self) -> (bool, Value) {
        let check = self.last_check.lock().unwrap().clone();
        // The sandbox account needs no key: ready when it answers the periodic check.
        let ok = (self.key_configured || self.sandbox)
            && self.check_ok.load(Ordering::Relaxed)
            && self.revision_status != "retired"
            && !self.stopping.load(Ordering::Relaxed);
        (
            ok,
            json!({
                "ready": ok,
                "component": "loaded",
                "key": if self.sandbox { "not needed (sandbox account)" } else if self.key_configured { "configured" } else { "missing" },
                "key_check": check,
                "revision": {"value": self.revision, "status": self.revision_status},
                "stopping": self.stopping.load(Ordering::Relaxed),
            }),
        )
    }
}

/// `supported`, `deprecated` (over a year old) or `retired` (over two), for a `YYYY-MM-DD`
/// revision, as of `today` (`YYYY-MM-DD`); `unknown` when it does not parse.
pub fn revision_status(revision: &str, today: &str) -> &'static str {
    let parse = |s: &str| -> Option<(i32, u32, u32)> {
        let mut it = s.get(..10)?.split('-');
        Some((
            it.next()?.parse().ok()?,
            it.next()?.parse().ok()?,
            it.next()?.parse().ok()?,
        ))
    };
    match (parse(revision), parse(today)) {
        (Some((y, m, d)), Some(t)) => {
            if t >= (y + 2, m, d) {
                "retired"
            } else if t >= (y + 1, m, d) {
                "deprecated"
            } else {
                "supported"
            }
        }
        _ => "unknown",
    }
}

async fn route(
    req: Request<Incoming>,
    mcp: StreamableHttpService<Server, LocalSessionManager>,
    gate: Arc<Gate>,
) -> Result<Response<Body>, Infallible> {
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/healthz") => return Ok(reply(StatusCode::OK, json!({"status": "ok"}))),
        (&Method::GET, "/readyz") => {
            let (ok, v) = gate.health.ready();
            return Ok(reply(
                if ok {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                },
                v,
            ));
        }
        (_, "/mcp") => {}
        _ => {
            return Ok(reply(
                StatusCode::NOT_FOUND,
                json!({"error": "not found: MCP is served at /mcp"}),
            ))
        }
    }
    if !gate.host_ok(req.headers()) || !gate.origin_ok(req.headers()) {
        return Ok(reply(StatusCode::FORBIDDEN, json!({"error": "forbidden"})));
    }
    let Some(client) = gate.client_for(req.headers()) else {
        let mut r = reply(StatusCode::UNAUTHORIZED, json!({"error": "unauthorized"}));
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            http::HeaderValue::from_static("Bearer"),
        );
        return Ok(r);
    };
    if req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        .is_some_and(|n| n > gate.max_body as u64)
    {
        return Ok(reply(
            StatusCode::PAYLOAD_TOO_LARGE,
            json!({"error": format!("the request body is over {} bytes", gate.max_body)}),
        ));
    }
    if let Some(wait) = gate.rate.take(&client) {
        let mut r = reply(
            StatusCode::TOO_MANY_REQUESTS,
            json!({"error": "too many requests from this client", "retry_after_seconds": wait}),
        );
        r.headers_mut().insert(header::RETRY_AFTER, wait.into());
        return Ok(r);
    }
    let Ok(Ok(_slot)) = tokio::time::timeout(gate.request_timeout, gate.slots.acquire()).await
    else {
        let mut r = reply(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"error": "the server is busy; retry shortly"}),
        );
        r.headers_mut().insert(header::RETRY_AFTER, 1.into());
        return Ok(r);
    };
    let (mut parts, body) = req.into_parts();
    parts.extensions.insert(ClientName(client));
    // A slow client times out here; a tool call it started runs on in its own task.
    let answer = tokio::time::timeout(
        gate.request_timeout + Duration::from_secs(150),
        mcp.handle(Request::from_parts(parts, body)),
    )
    .await;
    Ok(match answer {
        Ok(r) => r,
        Err(_) => reply(
            StatusCode::REQUEST_TIMEOUT,
            json!({"error": "the request took too long"}),
        ),
    })
}

fn loopback(addr: &SocketAddr) -> bool {
    addr.ip().is_loopback()
}

async fn check_key(server: &Server, health: &Health) {
    let Some(action) = server.harness().settings().policy.key_check_action() else {
        *health.last_check.lock().unwrap() = Some(
            json!({"ok": false, "at": crate::audit::now_rfc3339(), "detail": "the policy allows none of the reads the key is checked with (get_accounts, get_lists, get_metrics, get_segments, get_tags)"}),
        );
        health.check_ok.store(false, Ordering::Relaxed);
        return;
    };
    let caller = crate::Caller {
        confirm: None,
        client: Some(Arc::from("health-check")),
    };
    let out = server.harness().call_as(action, "{}", &caller).await;
    use klaviyo_catalog::response::Failure;
    let (ok, detail) = match &out.result {
        Ok(_) => (true, format!("the key was accepted ({action} answered)")),
        Err(Failure::Http { status: 403, .. }) => (
            true,
            format!("the key was accepted; it lacks the scope {action} needs"),
        ),
        Err(f) => (false, f.to_string()),
    };
    let was = health.check_ok.swap(ok, Ordering::Relaxed);
    let first = health.last_check.lock().unwrap().is_none();
    if was != ok || first {
        eprintln!(
            "{} readiness: key check {}: {detail}",
            crate::audit::now_rfc3339(),
            if ok { "passed" } else { "failed" }
        );
    }
    *health.last_check.lock().unwrap() = Some(
        json!({"ok": ok, "at": crate::audit::now_rfc3339(), "action": action, "detail": detail}),
    );
}

/// Serves MCP over Streamable HTTP at `opts.addr` until SIGTERM/SIGINT. `bound` is told the
/// address actually bound (port 0 picks one).
pub async fn serve_http(
    server: Server,
    opts: HttpOptions,
    bound: impl FnOnce(SocketAddr),
) -> anyhow::Result<()> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(&opts.addr)
        .await
        .map_err(|e| anyhow::anyhow!("--http {}: {e}", opts.addr))?
        .collect();
    if opts.tokens.is_empty() {
        if let Some(a) = addrs.iter().find(|a| !loopback(a)) {
            anyhow::bail!(
                "refusing to listen on {a} without a token: anyone who can reach it could act on the Klaviyo account. Configure tokens (--http-token-file, KLAVIYO_MCP_TOKENS or --http-token-command), or bind a loopback address such as 127.0.0.1:8080"
            );
        }
    }
    let listener = tokio::net::TcpListener::bind(&addrs[..])
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", opts.addr))?;
    let local = listener.local_addr()?;
    let port = local.port();
    let mut hosts = vec![
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
        local.to_string(),
    ];
    hosts.extend(opts.allowed_hosts.iter().cloned());
    let s = server.harness().settings();
    let today = crate::audit::now_rfc3339();
    let health = Health {
        key_configured: server.harness().shared().keys.configured(),
        revision: s.revision.clone(),
        revision_status: revision_status(&s.revision, &today),
        sandbox: server.harness().shared().sandbox.is_some(),
        last_check: Mutex::new(None),
        check_ok: AtomicBool::new(false),
        stopping: AtomicBool::new(false),
    };
    let gate = Arc::new(Gate {
        tokens: opts.tokens.clone(),
        hosts: hosts.clone(),
        origins: opts.allowed_origins.clone(),
        max_body: opts.max_body_bytes,
        rate: RateLimiter {
            per_minute: f64::from(opts.rate_per_minute.max(1)),
            burst: f64::from((opts.rate_per_minute / 10).max(10)),
            buckets: Mutex::new(HashMap::new()),
        },
        slots: tokio::sync::Semaphore::new(opts.max_concurrent_calls.max(1)),
        request_timeout: opts.request_timeout,
        health,
    });
    let mcp_ct = CancellationToken::new();
    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(hosts)
        .with_allowed_origins(opts.allowed_origins.clone())
        .with_json_response(true)
        .with_max_request_body_bytes(opts.max_body_bytes)
        .with_cancellation_token(mcp_ct.clone());
    let factory = server.clone();
    let mcp = StreamableHttpService::new(
        move || Ok(factory.clone()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    // The periodic key check (the first one at start).
    let checker = {
        let (server, gate) = (server.clone(), gate.clone());
        let every = opts.key_check_every;
        tokio::spawn(async move {
            loop {
                check_key(&server, &gate.health).await;
                tokio::time::sleep(every).await;
            }
        })
    };
    bound(local);
    eprintln!(
        "serving MCP at http://{local}/mcp ({} token(s); health at /healthz, /readyz)",
        opts.tokens.len()
    );
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let (mcp, gate) = (mcp.clone(), gate.clone());
                let svc = hyper::service::service_fn(move |req| route(req, mcp.clone(), gate.clone()));
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(10))
                    .serve_connection(TokioIo::new(stream), svc);
                let conn = graceful.watch(conn);
                tokio::spawn(async move { let _ = conn.await; });
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    // Stop: no new connections; calls in flight finish (and are audited) within the grace
    // period; then the open streams end.
    drop(listener);
    gate.health.stopping.store(true, Ordering::Relaxed);
    checker.abort();
    let calls = server.calls().clone();
    calls.close();
    let in_flight = calls.len();
    if in_flight > 0 {
        eprintln!(
            "stopping: waiting up to {} s for {in_flight} call(s) in flight",
            opts.grace.as_secs()
        );
    }
    if tokio::time::timeout(opts.grace, calls.wait())
        .await
        .is_err()
    {
        eprintln!(
            "stopping: {} call(s) still running after the grace period",
            calls.len()
        );
    }
    // Answers of finished calls are still being written: let connections finish them (a
    // session's open event stream would hold this, hence the short bound), then end the
    // streams.
    let mut closing = tokio::spawn(graceful.shutdown());
    if tokio::time::timeout(Duration::from_secs(2), &mut closing)
        .await
        .is_err()
    {
        mcp_ct.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(5), closing).await;
    }
    mcp_ct.cancel();
    eprintln!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisions_age() {
        assert_eq!(
            revision_status("2026-07-15", "2026-11-26T00:00:00Z"),
            "supported"
        );
        assert_eq!(revision_status("2025-07-15", "2026-11-26"), "deprecated");
        assert_eq!(revision_status("2024-07-15", "2026-11-26"), "retired");
        assert_eq!(revision_status("2024-11-26", "2026-11-26"), "retired");
        assert_eq!(revision_status("2024-11-27", "2026-11-26"), "deprecated");
        assert_eq!(revision_status("nope", "2026-11-26"), "unknown");
    }
}
