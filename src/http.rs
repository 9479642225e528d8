//! The edge build (feature `http`, package `klaviyo-connector-http`): the component exports
//! `wasi:http/incoming-handler` and answers MCP over Streamable HTTP itself, for runtimes that
//! run HTTP components (`wasmtime serve`, Spin, `jco serve`). Stateless: one JSON-RPC message
//! per POST, one JSON answer, no session, nothing kept between requests. Every setting comes
//! from `wasi:cli/environment`, read on each request.
//!
//! A request to `/mcp` passes, in order:
//! 1. tokens configured ([`TOKENS`]): else every request is refused (503), saying how;
//! 2. `Origin`, when sent, one of [`ALLOWED_ORIGINS`] (none by default): else 403;
//! 3. `Authorization: Bearer <token>`, compared in constant time with every token: else 401;
//! 4. POST only (405 with `Allow: POST`), a body of at most [`MAX_BODY`] bytes (413);
//! 5. the settings ([`POLICY`], [`MODE`], [`TOOLSETS`], [`READ_ONLY`], [`UNTRUSTED`]): one
//!    that does not parse refuses every request (503) with the error;
//! 6. JSON-RPC: `initialize` (2025-x handshake), `server/discover` (2026-07-28), `ping`,
//!    `tools/list`, `tools/call`; notifications get 202. A 2026-07-28 request (its
//!    `params._meta` names the protocol version) must agree with its `MCP-Protocol-Version`,
//!    `Mcp-Method` and `Mcp-Name` headers, and its results carry `resultType`.
//!
//! What the tools are, their schemas, annotations, results and errors is
//! `klaviyo_agent::mcp::Surface`, the table the host's MCP server uses. A call runs through the
//! component's one executor (`execute_admitted`): the request is built and validated exactly as
//! in the other builds, then the policy decides on the operation the built request is for
//! (method + path → `klaviyo_catalog::routes`, as the host classifies it) before anything is
//! sent. `ask` is refused with the rule to add: approving a request needs state kept between
//! the question and the answer (to make the approval single-use), which a stateless edge
//! instance does not have — a replayed approval could repeat a write.

use klaviyo_agent::auth;
use klaviyo_agent::mcp::{Dispatch, Mode, Spelling, Surface, Untrusted};
use klaviyo_agent::policy::{Decision, Policy, Verdict};
use klaviyo_catalog::request::Request as Built;
use klaviyo_catalog::response::Failure;
use klaviyo_catalog::routes::match_route;
use klaviyo_catalog::Operation;
use serde_json::{json, Map, Value};

/// Bearer tokens: `name:token` or a bare token, separated by commas or newlines.
pub const TOKENS: &str = "KLAVIYO_MCP_TOKENS";
/// `Origin` values accepted (browsers), comma-separated; none by default.
pub const ALLOWED_ORIGINS: &str = "KLAVIYO_MCP_ALLOWED_ORIGINS";
/// The policy, as TOML text (the policy file's format); read-only when unset.
pub const POLICY: &str = "KLAVIYO_POLICY_TOML";
/// `discovery` (default: three meta-tools) or `all` (one tool per action).
pub const MODE: &str = "KLAVIYO_MCP_MODE";
/// Only these Klaviyo tags, comma-separated (e.g. `profiles,lists`).
pub const TOOLSETS: &str = "KLAVIYO_MCP_TOOLSETS";
/// `true`: offer only read actions.
pub const READ_ONLY: &str = "KLAVIYO_MCP_READ_ONLY";
/// `label` (default), `hide` or `show`: text written by the public in results.
pub const UNTRUSTED: &str = "KLAVIYO_MCP_UNTRUSTED_CONTENT";

/// Largest request body accepted.
pub const MAX_BODY: usize = 4 << 20;
/// The stateless protocol revision (per-request envelope, `server/discover`).
const MODERN: &str = "2026-07-28";
/// Revisions of the `initialize` handshake this server answers, newest first.
const HANDSHAKE: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];
const VERSION_META: &str = "io.modelcontextprotocol/protocolVersion";
const SERVER_INFO_META: &str = "io.modelcontextprotocol/serverInfo";
/// JSON-RPC and MCP error codes.
const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;
const METHOD_NOT_FOUND: i64 = -32601;
const INVALID_PARAMS: i64 = -32602;
const HEADER_MISMATCH: i64 = -32020;
const UNSUPPORTED_VERSION: i64 = -32022;
/// Refusals before JSON-RPC (server-defined range): not configured, forbidden, unauthorized.
const REFUSED: i64 = -32000;
const UNAUTHORIZED: i64 = -32001;

/// How messages name the settings here.
const SPELLING: Spelling = Spelling {
    read_only: "KLAVIYO_MCP_READ_ONLY=true",
    toolsets: "KLAVIYO_MCP_TOOLSETS",
    policy: "the policy (KLAVIYO_POLICY_TOML)",
};

/// The `wasi:http/incoming-handler` export (through waki's bindings; native builds, for tests
/// and tooling, export nothing): the request to [`respond`], its answer back.
#[cfg_attr(target_arch = "wasm32", waki::handler)]
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
fn serve(req: waki::Request) -> Result<waki::Response, waki::ErrorCode> {
    let header = |name: &str| {
        req.header(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let method = match req.method() {
        waki::Method::Get => "GET".to_string(),
        waki::Method::Head => "HEAD".into(),
        waki::Method::Post => "POST".into(),
        waki::Method::Put => "PUT".into(),
        waki::Method::Delete => "DELETE".into(),
        waki::Method::Connect => "CONNECT".into(),
        waki::Method::Options => "OPTIONS".into(),
        waki::Method::Trace => "TRACE".into(),
        waki::Method::Patch => "PATCH".into(),
        waki::Method::Other(m) => m,
    };
    let mut body = || -> Option<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            match req.chunk(64 * 1024) {
                Ok(Some(c)) => out.extend_from_slice(&c),
                Ok(None) => return Some(out),
                Err(_) => return None,
            }
            if out.len() > MAX_BODY {
                return None;
            }
        }
    };
    let reply = respond(&method, req.path(), &header, &env, &mut body);
    waki::Response::builder()
        .status_code(reply.status)
        .headers(reply.headers)
        .body(reply.body)
        .build()
}

/// One setting from the environment, trimmed; `None` when unset or empty.
fn env(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    fn json(status: u16, v: &Value) -> Reply {
        Reply {
            status,
            headers: vec![
                ("content-type", "application/json".into()),
                ("cache-control", "no-store".into()),
            ],
            body: v.to_string().into_bytes(),
        }
    }

    fn error(status: u16, id: Value, code: i64, message: &str, data: Option<Value>) -> Reply {
        let mut error = json!({"code": code, "message": message});
        if let Some(d) = data {
            error["data"] = d;
        }
        Reply::json(status, &json!({"jsonrpc": "2.0", "id": id, "error": error}))
    }

    fn refused(status: u16, code: i64, message: &str) -> Reply {
        Reply::error(status, Value::Null, code, message, None)
    }

    fn with(mut self, name: &'static str, value: &str) -> Reply {
        self.headers.push((name, value.to_string()));
        self
    }
}

/// Answers one HTTP request. `header` reads a request header, `env` a setting, `body` the
/// request body (`None` when it is over [`MAX_BODY`] or cannot be read).
pub fn respond(
    method: &str,
    path: &str,
    header: &dyn Fn(&str) -> Option<String>,
    env: &dyn Fn(&str) -> Option<String>,
    body: &mut dyn FnMut() -> Option<Vec<u8>>,
) -> Reply {
    match path {
        "/mcp" | "/mcp/" => {}
        "/healthz" if method == "GET" => return Reply::json(200, &json!({"status": "ok"})),
        _ => {
            return Reply::refused(404, REFUSED, "not found: MCP is served at /mcp");
        }
    }
    let tokens = match env(TOKENS).map(|t| parse_tokens(&t)) {
        None => {
            return Reply::refused(
                503,
                REFUSED,
                "this MCP server has no bearer token configured, so it refuses every request: set KLAVIYO_MCP_TOKENS in the runtime's environment to `name:token` (or a bare token; several separated by commas), each token at least 16 characters, e.g. `agent:$(openssl rand -hex 32)`; clients send `Authorization: Bearer <token>`",
            )
        }
        Some(Err(why)) => return Reply::refused(503, REFUSED, &why),
        Some(Ok(t)) => t,
    };
    if let Some(origin) = header("origin") {
        let allowed = env(ALLOWED_ORIGINS).is_some_and(|list| {
            list.split(',')
                .map(str::trim)
                .any(|a| !a.is_empty() && a.eq_ignore_ascii_case(&origin))
        });
        if !allowed {
            return Reply::refused(
                403,
                REFUSED,
                "forbidden: this Origin is not allowed (KLAVIYO_MCP_ALLOWED_ORIGINS lists the browser origins accepted)",
            );
        }
    }
    if client_for(&tokens, header("authorization").as_deref()).is_none() {
        return Reply::refused(
            401,
            UNAUTHORIZED,
            "unauthorized: send `Authorization: Bearer <token>` with a token configured in KLAVIYO_MCP_TOKENS",
        )
        .with("www-authenticate", "Bearer");
    }
    if method != "POST" {
        return Reply::refused(
            405,
            REFUSED,
            "method not allowed: this stateless MCP server takes JSON-RPC messages by POST only (no event stream, no session to delete)",
        )
        .with("allow", "POST");
    }
    let Some(body) = body() else {
        return Reply::refused(
            413,
            REFUSED,
            &format!("the request body is over {MAX_BODY} bytes or could not be read"),
        );
    };
    let surface = match surface(env) {
        Ok(s) => s,
        Err(why) => return Reply::refused(503, REFUSED, &why),
    };
    rpc(&surface, header, &body)
}

/// The configured tokens (`klaviyo_agent::auth`, the host's rules); none is an error.
fn parse_tokens(text: &str) -> Result<Vec<auth::Token>, String> {
    match auth::parse_tokens(text, TOKENS) {
        Ok(t) if t.is_empty() => Err(format!("{TOKENS} names no token; every request is refused until it does (`name:token`, each token at least 16 characters)")),
        Ok(t) => Ok(t),
        Err(e) => Err(format!("{e}; every request is refused until it is fixed")),
    }
}

/// The name of the token a request presents.
fn client_for<'t>(tokens: &'t [auth::Token], authorization: Option<&str>) -> Option<&'t str> {
    auth::client_for(tokens, authorization?.trim().as_bytes())
}

/// The tool surface under the settings; an error names the setting and the fix.
fn surface(env: &dyn Fn(&str) -> Option<String>) -> Result<Surface, String> {
    let refused = "; every request is refused until it is fixed";
    let policy = match env(POLICY) {
        None => Policy::read_only(),
        Some(text) => Policy::from_toml(&text).map_err(|e| format!("{POLICY}: {e}{refused}"))?,
    };
    let mode = match env(MODE).as_deref() {
        None | Some("discovery") => Mode::Discovery,
        Some("all") => Mode::All,
        Some(other) => {
            return Err(format!(
                "{MODE}: `{other}` is not a mode: `discovery` (three meta-tools) or `all` (one tool per action){refused}"
            ))
        }
    };
    let toolsets = env(TOOLSETS).map(|t| {
        t.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect::<Vec<_>>()
    });
    let read_only = match env(READ_ONLY).as_deref() {
        None | Some("false") | Some("0") => false,
        Some("true") | Some("1") => true,
        Some(other) => {
            return Err(format!(
                "{READ_ONLY}: `{other}` is not `true` or `false`{refused}"
            ))
        }
    };
    let untrusted = match env(UNTRUSTED) {
        None => Untrusted::Label,
        Some(u) => Untrusted::parse(&u).ok_or_else(|| {
            format!("{UNTRUSTED}: `{u}` is not `label`, `hide` or `show`{refused}")
        })?,
    };
    Surface::new(mode, toolsets, read_only, untrusted, policy, SPELLING)
        .map_err(|e| format!("{TOOLSETS}: {e}{refused}"))
}

fn server_info() -> Value {
    json!({"name": "klaviyo-connector-http", "title": "Klaviyo", "version": env!("CARGO_PKG_VERSION")})
}

/// The server's instructions, with what the edge cannot do when the policy would ask.
fn instructions(surface: &Surface) -> String {
    let mut s = surface.instructions();
    if klaviyo_catalog::generated::OPERATIONS
        .iter()
        .any(|op| surface.policy.decide(op).decision == Decision::Ask)
    {
        s.push_str(" Actions the policy says to ask about are refused here: this server cannot ask the user.");
    }
    s
}

/// A JSON-RPC error: code and message (and data).
type RpcError = (i64, String, Option<Value>);

fn invalid(message: impl Into<String>) -> RpcError {
    (INVALID_PARAMS, message.into(), None)
}

/// One JSON-RPC message → the HTTP answer.
fn rpc(surface: &Surface, header: &dyn Fn(&str) -> Option<String>, body: &[u8]) -> Reply {
    let msg: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            return Reply::error(
                400,
                Value::Null,
                PARSE_ERROR,
                &format!("parse error: the body is not JSON ({e})"),
                None,
            )
        }
    };
    let bad = |why: &str| Reply::error(400, Value::Null, INVALID_REQUEST, why, None);
    let Value::Object(msg) = msg else {
        return bad("invalid request: the body must be one JSON-RPC message (an object; batches are not supported)");
    };
    if msg.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return bad("invalid request: `jsonrpc` must be \"2.0\"");
    }
    let id = msg.get("id").cloned();
    let Some(method) = msg.get("method").and_then(Value::as_str) else {
        if id.is_some() && (msg.contains_key("result") || msg.contains_key("error")) {
            // A client's answer to a request: this server sends none, so nothing waits for it.
            return Reply::json(202, &Value::Null).without_body();
        }
        return bad("invalid request: `method` must be a string");
    };
    let params = match msg.get("params") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(p)) => p.clone(),
        Some(_) => return bad("invalid request: `params` must be an object"),
    };
    let Some(id) = id else {
        // A notification (`notifications/initialized`, `notifications/cancelled`, …): there is
        // no state here for it to change.
        return Reply::json(202, &Value::Null).without_body();
    };
    if !(id.is_string() || id.is_number()) {
        return bad("invalid request: `id` must be a string or a number");
    }
    let fail = |status: u16, (code, message, data): RpcError| {
        Reply::error(status, id.clone(), code, &message, data)
    };
    // The era: a 2026-07-28 request names its version in `params._meta`.
    let requested = params
        .get("_meta")
        .and_then(|m| m.get(VERSION_META))
        .cloned();
    let modern = requested.is_some();
    if let Some(v) = requested {
        let Some(v) = v.as_str() else {
            return fail(
                400,
                invalid(format!("`params._meta.{VERSION_META}` must be a string")),
            );
        };
        if header("mcp-protocol-version").as_deref() != Some(v) {
            return fail(400, (HEADER_MISMATCH, "the MCP-Protocol-Version header does not match the request's protocol version (params._meta)".into(), None));
        }
        if header("mcp-method").is_some_and(|m| m != method) {
            return fail(
                400,
                (
                    HEADER_MISMATCH,
                    "the Mcp-Method header does not match the request's method".into(),
                    None,
                ),
            );
        }
        if method == "tools/call" {
            let name = params.get("name").and_then(Value::as_str);
            if let Some(h) = header("mcp-name") {
                // Names sent base64-encoded (non-ASCII) are not compared; ours are ASCII.
                if !h.starts_with("=?base64?") && Some(h.as_str()) != name {
                    return fail(
                        400,
                        (
                            HEADER_MISMATCH,
                            "the Mcp-Name header does not match the tool's name".into(),
                            None,
                        ),
                    );
                }
            }
        }
        if v != MODERN {
            return fail(
                400,
                (
                    UNSUPPORTED_VERSION,
                    "Unsupported protocol version".into(),
                    Some(json!({"supported": [MODERN], "requested": v})),
                ),
            );
        }
    } else if let Some(h) = header("mcp-protocol-version") {
        if h != MODERN && !HANDSHAKE.contains(&h.as_str()) {
            return bad(&format!(
                "unsupported MCP-Protocol-Version `{h}`: this server speaks {MODERN} and {}",
                HANDSHAKE.join(", ")
            ));
        }
    }
    let answer = match method {
        "initialize" => Ok(initialize(surface, &params)),
        "server/discover" => Ok(discover(surface)),
        "ping" => Ok(json!({})),
        "tools/list" => {
            let mut r = json!({"tools": surface.tools()});
            if modern {
                r["ttlMs"] = json!(0);
                r["cacheScope"] = json!("private");
            }
            Ok(r)
        }
        "tools/call" => call(surface, &params),
        other => Err((
            METHOD_NOT_FOUND,
            format!("method not found: `{other}`; this server answers initialize, server/discover, ping, tools/list and tools/call"),
            None,
        )),
    };
    match answer {
        Ok(mut result) => {
            if modern {
                result["resultType"] = json!("complete");
                if result.get("_meta").is_none() {
                    result["_meta"] = json!({ SERVER_INFO_META: server_info() });
                }
            }
            Reply::json(200, &json!({"jsonrpc": "2.0", "id": id, "result": result}))
        }
        Err(e) => {
            // 2026-07-28 maps errors to HTTP statuses; the handshake era answers 200.
            let status = match (modern, e.0) {
                (false, _) => 200,
                (true, METHOD_NOT_FOUND) => 404,
                (true, INVALID_PARAMS) => 400,
                (true, _) => 200,
            };
            fail(status, e)
        }
    }
}

impl Reply {
    fn without_body(mut self) -> Reply {
        self.body.clear();
        self.headers.retain(|(k, _)| *k != "content-type");
        self
    }
}

fn initialize(surface: &Surface, params: &Map<String, Value>) -> Value {
    let asked = params.get("protocolVersion").and_then(Value::as_str);
    let version = asked
        .filter(|v| HANDSHAKE.contains(v))
        .unwrap_or(HANDSHAKE[0]);
    json!({
        "protocolVersion": version,
        "capabilities": {"tools": {}},
        "serverInfo": server_info(),
        "instructions": instructions(surface),
    })
}

fn discover(surface: &Surface) -> Value {
    let mut versions = vec![MODERN];
    versions.extend_from_slice(HANDSHAKE);
    json!({
        "supportedVersions": versions,
        "capabilities": {"tools": {}},
        "instructions": instructions(surface),
        "ttlMs": 0,
        "cacheScope": "private",
    })
}

fn call(surface: &Surface, params: &Map<String, Value>) -> Result<Value, RpcError> {
    let name = params
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("tools/call needs `params.name`, the tool's name"))?;
    let arguments = match params.get("arguments") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(a)) => a.clone(),
        Some(_) => return Err(invalid("`params.arguments` must be an object")),
    };
    match surface.dispatch(name, arguments) {
        Dispatch::Answer(v) => Ok(v),
        Dispatch::UnknownTool(why) => Err(invalid(why)),
        Dispatch::Run {
            tool,
            arguments,
            raw,
        } => {
            let outcome = crate::execute_admitted(tool, &Value::Object(arguments), |req| {
                admit(&surface.policy, req)
            });
            Ok(surface.call_result(tool, &outcome, raw))
        }
    }
}

/// The policy's decision on a built request, before it is sent: for the operation its method
/// and path are (the host's classification), never the name the agent called.
fn admit(policy: &Policy, req: &Built) -> Result<(), Failure> {
    let path = req.path_and_query.split('?').next().unwrap_or_default();
    let Some(op) = match_route(req.method, path) else {
        return Err(Failure::Denied {
            message: format!(
                "the request built for `{}` ({} {path}) is no Klaviyo operation; nothing was sent",
                req.operation.id,
                req.method.as_str()
            ),
        });
    };
    let v = policy.decide(op);
    let message = match v.decision {
        Decision::Allow => return Ok(()),
        Decision::Deny => format!(
            "`{}` ({}) is denied by {}; nothing was sent. {}",
            op.id,
            op.access.as_str(),
            v.reason,
            fix(op, &v)
        ),
        Decision::Ask => format!(
            "`{}` ({}) needs the user's approval ({}), and this edge server cannot ask for it: it keeps no state between requests, so an approval could not be made single-use (a replayed one could repeat the request). Nothing was sent. {}",
            op.id,
            op.access.as_str(),
            v.reason,
            fix(op, &v)
        ),
    };
    Err(Failure::Denied { message })
}

/// What to change in the policy to let `op` run.
fn fix(op: &Operation, v: &Verdict) -> String {
    match v.rule {
        Some(n) => format!(
            "Rule #{n} of {POLICY} decides it (the strictest applicable rule wins): change its decision to \"allow\", or narrow its `tools` so it no longer covers `{}`.",
            op.id
        ),
        None => format!(
            "To allow it, add to {POLICY}:\n[[rules]]\ntools = \"{}\"\ndecision = \"allow\"",
            op.id
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token_env(k: &str) -> Option<String> {
        (k == TOKENS).then(|| "agent:0123456789abcdef0123".to_string())
    }

    #[test]
    fn tokens_parse_and_compare() {
        let t = parse_tokens("# c\nalice:0123456789abcdef0123, fedcba9876543210fedc").unwrap();
        assert_eq!(t[0].name, "alice");
        assert_eq!(t[1].name, "default-2");
        assert_eq!(
            client_for(&t, Some("Bearer 0123456789abcdef0123")),
            Some("alice")
        );
        assert_eq!(
            client_for(&t, Some("Bearer fedcba9876543210fedc")),
            Some("default-2")
        );
        assert_eq!(client_for(&t, Some("Bearer 0123456789abcdef0124")), None);
        assert_eq!(client_for(&t, Some("Basic 0123456789abcdef0123")), None);
        assert_eq!(client_for(&t, None), None);
        let short = parse_tokens("a:short").err().unwrap();
        assert!(short.contains("shorter than 16") && !short.contains("short\""));
        assert!(
            parse_tokens("a:0123456789abcdef0123\na:0123456789abcdef0124")
                .err()
                .unwrap()
                .contains("two tokens")
        );
        assert!(parse_tokens(" , \n").is_err());
    }

    #[test]
    fn refusals_come_before_the_body_is_read() {
        let mut read = false;
        let no_headers = |_: &str| None;
        let r = respond("POST", "/mcp", &no_headers, &|_| None, &mut || {
            read = true;
            Some(vec![])
        });
        assert_eq!(r.status, 503);
        let r = respond("POST", "/mcp", &no_headers, &token_env, &mut || {
            read = true;
            Some(vec![])
        });
        assert_eq!(r.status, 401);
        let origin = |k: &str| (k == "origin").then(|| "https://evil.example".to_string());
        let r = respond("POST", "/mcp", &origin, &token_env, &mut || {
            read = true;
            Some(vec![])
        });
        assert_eq!(r.status, 403);
        assert!(!read);
    }
}
