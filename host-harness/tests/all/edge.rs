//! The HTTP (edge) build, `klaviyo_connector_http.wasm`: the component serves MCP over
//! wasi:http itself. It is hosted here the way `wasmtime serve -S cli` hosts it
//! (wasmtime-wasi-http's proxy support, all of WASI, its settings as environment values) and
//! driven with JSON-RPC POSTs. Its outgoing requests go through a send hook that records them
//! and forwards those for `https://a.klaviyo.com` (the default base URL) to a local server.
//! Build the components first: `cargo build --target wasm32-wasip2 --release`.

use crate::support::{Server, FAKE_KEY};
use klaviyo_agent::mcp::{Mode, Surface, Untrusted, CLI};
use klaviyo_agent::policy::{Decision, Policy};
use klaviyo_catalog::tools::Tool;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::{WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

const TOKEN: &str = "edge-test-token-0123456789abcdef";
const KLAVIYO: &str = "a.klaviyo.com";

fn http_build() -> PathBuf {
    let p = klaviyo_harness::runtime::default_component_path()
        .with_file_name("klaviyo_connector_http.wasm");
    assert!(
        p.exists(),
        "build the components first: cargo build --target wasm32-wasip2 --release ({} missing)",
        p.display()
    );
    p
}

/// One engine and one pre-linked HTTP build for every test (compiled once).
fn pre() -> &'static ProxyPre<State> {
    static PRE: OnceLock<ProxyPre<State>> = OnceLock::new();
    PRE.get_or_init(|| {
        let engine = Engine::default();
        let component = Component::from_file(&engine, http_build()).unwrap();
        // `wasmtime serve -S cli`: all of WASI (the component must not need more than the
        // proxy world plus the environment) and wasi:http.
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).unwrap();
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).unwrap();
        ProxyPre::new(linker.instantiate_pre(&component).unwrap()).unwrap()
    })
}

struct State {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    hooks: Forward,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for State {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// The outgoing side: records every request the component sends (`METHOD URI`) and forwards
/// those for Klaviyo's host to the local server; any other destination is refused.
struct Forward {
    upstream: String,
    sent: Arc<Mutex<Vec<String>>>,
}

type SendResult = wasmtime_wasi_http::Result<(
    http::Response<WasiBody>,
    Box<dyn std::future::Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
)>;

impl WasiHttpHooks for Forward {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn std::future::Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<dyn std::future::Future<Output = SendResult> + Send> {
        self.sent
            .lock()
            .unwrap()
            .push(format!("{} {}", request.method(), request.uri()));
        let to_klaviyo = request.uri().host() == Some(KLAVIYO);
        let target = format!(
            "http://{}{}",
            self.upstream,
            request
                .uri()
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/")
        );
        Box::new(async move {
            use http_body_util::BodyExt;
            if !to_klaviyo {
                return Err(wasmtime_wasi_http::Error::HttpRequestDenied);
            }
            // The local server reads bodies by Content-Length: send the body whole.
            let (mut parts, body) = request.into_parts();
            let body = body.collect().await?.to_bytes();
            parts.uri = target.parse().unwrap();
            parts
                .headers
                .insert(http::header::CONTENT_LENGTH, body.len().into());
            let body = http_body_util::Full::new(body)
                .map_err(wasmtime_wasi_http::Error::from)
                .boxed_unsync();
            let request = http::Request::from_parts(parts, body);
            let (res, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                res.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn std::future::Future<Output = _> + Send>,
            ))
        })
    }
}

/// The HTTP build with these environment values, in front of a local "Klaviyo".
struct Edge {
    env: Vec<(String, String)>,
    upstream: String,
    sent: Arc<Mutex<Vec<String>>>,
    rt: tokio::runtime::Runtime,
}

/// An HTTP answer of the component.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: http::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {:?} {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl Edge {
    /// `KLAVIYO_API_KEY` and a token are set; `env` adds or overrides (an empty value unsets).
    fn new(server: &Server, env: &[(&str, &str)]) -> Edge {
        let mut all: Vec<(String, String)> = vec![
            ("KLAVIYO_API_KEY".into(), FAKE_KEY.into()),
            ("KLAVIYO_MCP_TOKENS".into(), format!("tests:{TOKEN}")),
        ];
        for (k, v) in env {
            all.retain(|(n, _)| n != k);
            if !v.is_empty() {
                all.push((k.to_string(), v.to_string()));
            }
        }
        Edge {
            env: all,
            upstream: server.url.trim_start_matches("http://").to_string(),
            sent: Arc::default(),
            rt: crate::support::rt(),
        }
    }

    fn sent(&self) -> Vec<String> {
        self.sent.lock().unwrap().clone()
    }

    /// One HTTP request to a fresh instance, as a runtime serves it.
    fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
        let mut req = http::Request::builder()
            .method(method)
            .uri(format!("http://edge.test{path}"));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req
            .body(http_body_util::Full::new(bytes::Bytes::from(
                body.to_string(),
            )))
            .unwrap();
        let pre = pre();
        let state = State {
            wasi: WasiCtx::builder().envs(&self.env).build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            hooks: Forward {
                upstream: self.upstream.clone(),
                sent: self.sent.clone(),
            },
        };
        self.rt.block_on(async move {
            use http_body_util::BodyExt;
            let mut store = Store::new(pre.engine(), state);
            let (tx, rx) = tokio::sync::oneshot::channel();
            let req = store
                .data_mut()
                .http()
                .new_incoming_request(Scheme::Http, req)
                .unwrap();
            let out = store.data_mut().http().new_response_outparam(tx).unwrap();
            let task = tokio::spawn(async move {
                let proxy = pre.instantiate_async(&mut store).await?;
                proxy
                    .wasi_http_incoming_handler()
                    .call_handle(&mut store, req, out)
                    .await
            });
            let resp = match rx.await {
                Ok(r) => r.expect("the component answers with a response, not an error code"),
                Err(_) => panic!(
                    "the component never set a response: {:?}",
                    task.await.unwrap()
                ),
            };
            let (parts, body) = resp.into_parts();
            let body = body.collect().await.unwrap().to_bytes().to_vec();
            task.await.unwrap().unwrap();
            Answer {
                status: parts.status.as_u16(),
                headers: parts.headers,
                body: body.to_vec(),
            }
        })
    }

    /// A JSON-RPC POST to `/mcp` with the token and `headers`.
    fn post(&self, headers: &[(&str, &str)], body: &Value) -> Answer {
        let auth = format!("Bearer {TOKEN}");
        let mut all = vec![
            ("authorization", auth.as_str()),
            ("content-type", "application/json"),
            ("accept", "application/json, text/event-stream"),
        ];
        all.extend_from_slice(headers);
        self.request("POST", "/mcp", &all, &body.to_string())
    }

    /// A 2025-x (handshake era) request; the JSON-RPC response.
    fn rpc(&self, method: &str, params: Value) -> Value {
        let a = self.post(
            &[("mcp-protocol-version", "2025-11-25")],
            &json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params}),
        );
        assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
        assert_eq!(a.header("content-type"), Some("application/json"));
        let v = a.json();
        assert_eq!(v["id"], 7, "{v}");
        v
    }

    /// A tool call's result.
    fn call(&self, name: &str, arguments: Value) -> Value {
        let v = self.rpc("tools/call", json!({"name": name, "arguments": arguments}));
        assert!(v["error"].is_null(), "{v}");
        v["result"].clone()
    }

    /// A 2026-07-28 request: the envelope in `params._meta` and the matching headers.
    fn modern(&self, method: &str, mut params: Value, name: Option<&str>) -> Answer {
        params["_meta"] = json!({
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "edge-test", "version": "1"}
        });
        let mut headers = vec![
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", method),
        ];
        if let Some(n) = name {
            headers.push(("mcp-name", n));
        }
        self.post(
            &headers,
            &json!({"jsonrpc": "2.0", "id": "m-1", "method": method, "params": params}),
        )
    }
}

fn tool_names(list: &Value) -> Vec<String> {
    list["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

/// The tools the host's MCP server would list with these settings (the shared table).
fn host_tools(mode: Mode, policy: Policy) -> Vec<Value> {
    Surface::new(mode, None, false, Untrusted::Label, policy, CLI)
        .unwrap()
        .tools()
}

#[test]
fn tools_list_is_the_shared_surface_in_both_modes() {
    let server = Server::ok();
    let edge = Edge::new(&server, &[]);
    let list = edge.rpc("tools/list", json!({}))["result"].clone();
    assert_eq!(
        tool_names(&list),
        ["search_actions", "describe_action", "call_action"]
    );
    assert_eq!(
        list["tools"].as_array().unwrap(),
        &host_tools(Mode::Discovery, Policy::read_only())
    );
    // Read-only by default: the meta-tool that runs actions says so in its annotations.
    assert_eq!(list["tools"][2]["annotations"]["readOnlyHint"], true);

    let all = Edge::new(&server, &[("KLAVIYO_MCP_MODE", "all")]);
    let list = all.rpc("tools/list", json!({}))["result"].clone();
    assert_eq!(tool_names(&list).len(), 351);
    assert_eq!(
        list["tools"].as_array().unwrap(),
        &host_tools(Mode::All, Policy::read_only())
    );
    let ro = Edge::new(
        &server,
        &[
            ("KLAVIYO_MCP_MODE", "all"),
            ("KLAVIYO_MCP_READ_ONLY", "true"),
        ],
    );
    let n = tool_names(&ro.rpc("tools/list", json!({}))["result"]).len();
    let reads = Tool::all()
        .filter(|t| t.access() == klaviyo_catalog::Access::Read)
        .count();
    assert_eq!(n, reads);
    assert!(edge.sent().is_empty() && server.requests().is_empty());
}

#[test]
fn handshake_and_discovery_answer_without_a_session() {
    let server = Server::ok();
    let edge = Edge::new(&server, &[]);
    let a = edge.post(
        &[],
        &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}),
    );
    assert_eq!(a.status, 200);
    assert_eq!(a.header("mcp-session-id"), None, "stateless: no session");
    let init = a.json()["result"].clone();
    assert_eq!(init["protocolVersion"], "2025-06-18");
    assert_eq!(init["capabilities"], json!({"tools": {}}));
    assert_eq!(init["serverInfo"]["name"], "klaviyo-connector-http");
    assert!(init["instructions"].as_str().unwrap().contains("read-only"));
    // A version this server does not know: it answers with its newest.
    let init = edge.rpc(
        "initialize",
        json!({"protocolVersion": "1999-01-01", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}),
    );
    assert_eq!(init["result"]["protocolVersion"], "2025-11-25");
    // Notifications: accepted, no body.
    let a = edge.post(
        &[],
        &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    );
    assert_eq!((a.status, a.body.len()), (202, 0));
    assert_eq!(edge.rpc("ping", json!({}))["result"], json!({}));

    // 2026-07-28: discover, then stateless requests with the envelope.
    let a = edge.modern("server/discover", json!({}), None);
    assert_eq!(a.status, 200);
    let d = a.json()["result"].clone();
    assert_eq!(d["resultType"], "complete");
    assert!(d["supportedVersions"]
        .as_array()
        .unwrap()
        .contains(&json!("2026-07-28")));
    assert_eq!(d["capabilities"], json!({"tools": {}}));
    assert_eq!(d["cacheScope"], "private");
    assert!(d["ttlMs"].is_u64());
    assert_eq!(
        d["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "klaviyo-connector-http"
    );
    let a = edge.modern("tools/list", json!({}), None);
    let l = a.json()["result"].clone();
    assert_eq!(
        (&l["resultType"], &l["cacheScope"]),
        (&json!("complete"), &json!("private"))
    );
    assert_eq!(tool_names(&l).len(), 3);
    let a = edge.modern(
        "tools/call",
        json!({"name": "describe_action", "arguments": {"name": "get_lists"}}),
        Some("describe_action"),
    );
    let r = a.json()["result"].clone();
    assert_eq!(r["resultType"], "complete", "{r}");
    assert_eq!(r["structuredContent"]["name"], "get_lists");
    assert_eq!(r["structuredContent"]["policy"], "allow");

    // Headers that disagree with the envelope, and a version it does not speak.
    let a = edge.modern(
        "tools/call",
        json!({"name": "describe_action", "arguments": {"name": "get_lists"}}),
        Some("search_actions"),
    );
    assert_eq!(a.status, 400);
    assert_eq!(a.json()["error"]["code"], -32020);
    let mut body = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list", "params": {"_meta": {
        "io.modelcontextprotocol/protocolVersion": "2030-01-01", "io.modelcontextprotocol/clientCapabilities": {}}}});
    let a = edge.post(
        &[
            ("mcp-protocol-version", "2030-01-01"),
            ("mcp-method", "tools/list"),
        ],
        &body,
    );
    assert_eq!(a.status, 400);
    let e = a.json()["error"].clone();
    assert_eq!(e["code"], -32022);
    assert_eq!(e["data"]["supported"], json!(["2026-07-28"]));
    body["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] = json!("2026-07-28");
    let a = edge.post(&[("mcp-method", "tools/list")], &body);
    assert_eq!(
        (a.status, a.json()["error"]["code"].clone()),
        (400, json!(-32020)),
        "no MCP-Protocol-Version header"
    );
    assert!(server.requests().is_empty());
}

#[test]
fn a_read_sends_the_exact_request() {
    let server = Server::ok();
    let edge = Edge::new(&server, &[("KLAVIYO_MCP_MODE", "all")]);
    let r = edge.call(
        "get_profiles",
        json!({"fields_profile": ["email"], "filter": "equals(email,'a@b.co')", "page_size": 3}),
    );
    assert_eq!(r["isError"], false, "{r}");
    assert_eq!(r["structuredContent"]["ok"], true);
    assert_eq!(r["structuredContent"]["result"]["data"][0]["id"], "L1");
    let query = "fields%5Bprofile%5D=email&filter=equals(email,'a@b.co')&page%5Bsize%5D=3";
    // The component addressed Klaviyo itself (the default base URL) …
    assert_eq!(
        edge.sent(),
        [format!("GET https://a.klaviyo.com/api/profiles?{query}")]
    );
    // … and this exact request arrived.
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    let q = &reqs[0];
    assert_eq!(q.method, "GET");
    assert_eq!(q.target, format!("/api/profiles?{query}"));
    assert_eq!(
        q.header("authorization"),
        Some(format!("Klaviyo-API-Key {FAKE_KEY}").as_str())
    );
    assert_eq!(
        q.header("revision"),
        Some(klaviyo_catalog::generated::REVISION)
    );
    assert_eq!(q.header("accept"), Some("application/vnd.api+json"));
    assert!(q.body.is_empty());

    // Through the discovery meta-tool: the same request.
    let edge = Edge::new(&server, &[]);
    let r = edge.call(
        "call_action",
        json!({"name": "get_profiles", "arguments": {"fields_profile": ["email"], "filter": "equals(email,'a@b.co')", "page_size": 3}}),
    );
    assert_eq!(r["structuredContent"]["action"], "get_profiles", "{r}");
    assert_eq!(
        server.requests()[1].target,
        format!("/api/profiles?{query}")
    );

    // No key configured: refused before sending, saying what to set.
    let nokey = Edge::new(&server, &[("KLAVIYO_API_KEY", "")]);
    let r = nokey.call("call_action", json!({"name": "get_lists"}));
    assert_eq!(r["isError"], true);
    assert_eq!(
        r["structuredContent"]["error"]["kind"], "not-configured",
        "{r}"
    );
    assert!(nokey.sent().is_empty());
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn a_write_the_policy_denies_sends_nothing_and_names_the_rule_to_add() {
    let server = Server::ok();
    let edge = Edge::new(&server, &[]);
    let r = edge.call(
        "call_action",
        json!({"name": "create_list", "arguments": {"body": {"data": {"type": "list", "attributes": {"name": "VIP"}}}}}),
    );
    assert_eq!(r["isError"], true, "{r}");
    let err = &r["structuredContent"]["error"];
    assert_eq!(err["kind"], "denied");
    let msg = err["message"].as_str().unwrap();
    assert!(
        msg.contains("the default for write actions")
            && msg.contains("KLAVIYO_POLICY_TOML")
            && msg.contains("[[rules]]\ntools = \"create_list\"\ndecision = \"allow\""),
        "{msg}"
    );
    assert!(edge.sent().is_empty(), "{:?}", edge.sent());
    assert!(server.requests().is_empty());

    // `ask` cannot be confirmed here: refused, with why and the rule to add.
    let ask = Edge::new(
        &server,
        &[("KLAVIYO_POLICY_TOML", "[defaults]\nwrite = \"ask\"\n")],
    );
    let r = ask.call(
        "call_action",
        json!({"name": "create_list", "arguments": {"body": {"data": {"type": "list", "attributes": {"name": "VIP"}}}}}),
    );
    let msg = r["structuredContent"]["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("cannot ask") && msg.contains("tools = \"create_list\""),
        "{msg}"
    );
    let init = ask.rpc(
        "initialize",
        json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}),
    );
    assert!(init["result"]["instructions"]
        .as_str()
        .unwrap()
        .contains("refused here"));
    assert!(ask.sent().is_empty() && server.requests().is_empty());
}

#[test]
fn requests_without_the_right_token_are_refused() {
    let server = Server::ok();
    let edge = Edge::new(&server, &[]);
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).to_string();
    for auth in [
        None,
        Some("Bearer wrong-token-0123456789abcdef"),
        Some(&*format!("Basic {TOKEN}")),
        Some(&*format!("Bearer {TOKEN}x")),
    ] {
        let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", *a)).collect();
        let a = edge.request("POST", "/mcp", &headers, &list);
        assert_eq!(a.status, 401, "{auth:?}");
        assert_eq!(a.header("www-authenticate"), Some("Bearer"));
        assert!(a.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unauthorized"));
    }
    // A call with a wrong token sends nothing.
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "call_action", "arguments": {"name": "get_lists"}}});
    let a = edge.request(
        "POST",
        "/mcp",
        &[("authorization", "Bearer wrong-token-0123456789abcdef")],
        &call.to_string(),
    );
    assert_eq!(a.status, 401);
    assert!(edge.sent().is_empty() && server.requests().is_empty());

    // No token configured: every request refused, saying how to configure one.
    let open = Edge::new(&server, &[("KLAVIYO_MCP_TOKENS", "")]);
    for method in ["POST", "GET"] {
        let a = open.request(
            method,
            "/mcp",
            &[("authorization", "Bearer anything-at-all-1234")],
            &list,
        );
        assert_eq!(a.status, 503, "{method}");
        let m = a.json()["error"]["message"].as_str().unwrap().to_string();
        assert!(
            m.contains("KLAVIYO_MCP_TOKENS") && m.contains("Authorization: Bearer"),
            "{m}"
        );
    }
    let weak = Edge::new(&server, &[("KLAVIYO_MCP_TOKENS", "short")]);
    let a = weak.request("POST", "/mcp", &[("authorization", "Bearer short")], &list);
    assert_eq!(a.status, 503);
    assert!(a.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("shorter than 16"));

    // Browsers: an Origin must be on the allow-list (empty by default).
    let a = edge.post(
        &[("origin", "https://evil.example")],
        &json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}),
    );
    assert_eq!(a.status, 403);
    let allowed = Edge::new(
        &server,
        &[(
            "KLAVIYO_MCP_ALLOWED_ORIGINS",
            "https://app.example, https://other.example",
        )],
    );
    let a = allowed.post(
        &[("origin", "https://app.example")],
        &json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}),
    );
    assert_eq!(a.status, 200);
    assert!(server.requests().is_empty());
}

#[test]
fn protocol_errors() {
    let server = Server::ok();
    let edge = Edge::new(&server, &[]);
    let auth = format!("Bearer {TOKEN}");
    let a = edge.request("POST", "/mcp", &[("authorization", &auth)], "{not json");
    assert_eq!(a.status, 400);
    let e = a.json();
    assert_eq!(
        (e["id"].clone(), e["error"]["code"].clone()),
        (Value::Null, json!(-32700))
    );
    let a = edge.request("POST", "/mcp", &[("authorization", &auth)], "[]");
    assert_eq!(
        (a.status, a.json()["error"]["code"].clone()),
        (400, json!(-32600))
    );
    let v = edge.rpc("resources/list", json!({}));
    assert_eq!(v["error"]["code"], -32601, "{v}");
    let a = edge.modern("prompts/list", json!({}), None);
    assert_eq!(
        (a.status, a.json()["error"]["code"].clone()),
        (404, json!(-32601))
    );
    let v = edge.rpc("tools/call", json!({"name": "no_such_tool"}));
    assert_eq!(v["error"]["code"], -32602, "{v}");
    let v = edge.rpc("tools/call", json!({"arguments": {}}));
    assert_eq!(v["error"]["code"], -32602, "{v}");
    for method in ["GET", "DELETE", "PUT"] {
        let a = edge.request(method, "/mcp", &[("authorization", &auth)], "");
        assert_eq!(a.status, 405, "{method}");
        assert_eq!(a.header("allow"), Some("POST"));
    }
    let a = edge.request("POST", "/other", &[("authorization", &auth)], "{}");
    assert_eq!(a.status, 404);
    // A policy that does not load refuses every request with the error.
    let bad = Edge::new(
        &server,
        &[(
            "KLAVIYO_POLICY_TOML",
            "[[rules]]\ntools = \"creat_lst\"\ndecision = \"allow\"\n",
        )],
    );
    let a = bad.post(
        &[],
        &json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
    );
    assert_eq!(a.status, 503);
    let m = a.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(
        m.contains("KLAVIYO_POLICY_TOML") && m.contains("matches no action"),
        "{m}"
    );
    assert!(server.requests().is_empty());
}

/// The same (policy, action) → decision table through `klaviyo_agent::policy` and through the
/// HTTP build: allowed requests reach the server, denied and `ask` ones send nothing.
#[test]
fn the_edge_decides_as_the_shared_policy_does() {
    use Decision::{Allow, Ask, Deny};
    let rows: &[(&str, &str, Decision)] = &[
        ("", "get_lists", Allow),
        ("", "query_campaign_values", Allow),
        ("", "create_list", Deny),
        ("", "delete_list", Deny),
        ("[defaults]\nwrite = \"ask\"", "create_list", Ask),
        ("[defaults]\nwrite = \"ask\"", "get_lists", Allow),
        ("[defaults]\nread = \"deny\"", "get_lists", Deny),
        ("[[rules]]\ntools = \"create_list\"\ndecision = \"allow\"", "create_list", Allow),
        ("[[rules]]\ntools = \"create_list\"\ndecision = \"allow\"", "update_list", Deny),
        ("[[rules]]\ntools = \"*_list\"\ndecision = \"allow\"", "create_list", Allow),
        // A glob never lowers a destructive action.
        ("[[rules]]\ntools = \"*_list\"\ndecision = \"allow\"", "delete_list", Deny),
        ("[[rules]]\ntools = \"delete_list\"\ndecision = \"ask\"", "delete_list", Ask),
        (
            "[[rules]]\naccess = \"destructive\"\ndecision = \"allow\"\n[[rules]]\ntools = \"Delete List\"\ndecision = \"deny\"",
            "delete_list",
            Deny,
        ),
        (
            "[[rules]]\naccess = \"destructive\"\ndecision = \"allow\"\n[[rules]]\ntools = \"Delete List\"\ndecision = \"deny\"",
            "delete_tag",
            Allow,
        ),
        ("[[rules]]\ntools = \"get_*\"\ndecision = \"ask\"", "get_lists", Ask),
    ];
    for (toml, action, expected) in rows {
        let tool = Tool::resolve(action).unwrap();
        let op = tool.operations()[0];
        let direct = Policy::from_toml(toml).unwrap().decide(op).decision;
        assert_eq!(
            direct, *expected,
            "klaviyo_agent::policy: {toml:?} {action}"
        );

        let server = Server::start(|_| crate::support::Reply::json(200, r#"{"data":[]}"#));
        let edge = Edge::new(
            &server,
            &[("KLAVIYO_POLICY_TOML", toml), ("KLAVIYO_MCP_MODE", "all")],
        );
        let args = klaviyo_catalog::example::example_args(tool, false);
        let r = edge.call(action, args);
        let sent = server.requests();
        let message = r["structuredContent"]["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let observed = match (sent.len(), r["isError"].as_bool().unwrap()) {
            (1, false) => Allow,
            (0, true) if message.contains("cannot ask") => Ask,
            (0, true) if message.contains("is denied by") => Deny,
            _ => panic!("{toml:?} {action}: {} sent, result {r}", sent.len()),
        };
        assert_eq!(
            observed, direct,
            "the edge and the policy disagree: {toml:?} {action}: {message}"
        );
        if observed == Allow {
            assert_eq!(sent[0].method, op.method.as_str(), "{action}");
        } else {
            assert!(edge.sent().is_empty(), "{action}: {:?}", edge.sent());
        }
    }
}

/// The artifact: exports only wasi:http/incoming-handler, imports nothing beyond wasi io,
/// clocks, random, cli and http (no filesystem, no sockets, nothing of ours), carries its name
/// and metadata (no WIT docs: it exports no action), and fits the size budget.
#[test]
fn the_http_build_is_a_proxy_component_within_budget() {
    let path = http_build();
    let bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() <= 2_500_000, "{} bytes", bytes.len());
    let engine = Engine::default();
    let c = Component::new(&engine, &bytes).unwrap();
    let ty = c.component_type();
    let exports: Vec<String> = ty.exports(&engine).map(|(n, _)| n.to_string()).collect();
    assert_eq!(exports.len(), 1, "{exports:?}");
    assert!(exports[0].starts_with("wasi:http/incoming-handler@0.2."));
    let imports: Vec<String> = ty.imports(&engine).map(|(n, _)| n.to_string()).collect();
    for i in &imports {
        assert!(
            [
                "wasi:io/",
                "wasi:clocks/",
                "wasi:random/",
                "wasi:cli/",
                "wasi:http/"
            ]
            .iter()
            .any(|p| i.starts_with(p)),
            "{i}"
        );
    }
    assert!(imports
        .iter()
        .any(|i| i.starts_with("wasi:cli/environment@")));
    assert!(imports
        .iter()
        .any(|i| i.starts_with("wasi:http/outgoing-handler@")));
    // component-name: subsection 0 is the component's name.
    let name = b"klaviyo-connector-http";
    let names = custom(&bytes, "component-name").expect("a component-name section");
    assert_eq!(names[0], 0);
    assert_eq!(&names[3..3 + name.len()], name);
    assert_eq!(
        custom(&bytes, "version"),
        Some(env!("CARGO_PKG_VERSION").as_bytes())
    );
    assert_eq!(custom(&bytes, "licenses"), Some(&b"MIT"[..]));
    assert_eq!(custom(&bytes, "package-docs"), None);
}

/// A top-level custom section's contents.
fn custom<'a>(bytes: &'a [u8], wanted: &str) -> Option<&'a [u8]> {
    crate::e2e::custom_sections(bytes)
        .into_iter()
        .find(|(name, _)| name == wanted)
        .map(|(_, contents)| contents)
}

/// The Spin example names only Klaviyo as outbound host, and its policy loads.
#[test]
fn the_spin_example_is_consistent() {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/spin.toml"),
    )
    .unwrap();
    assert!(text.contains("\nallowed_outbound_hosts = [\"https://a.klaviyo.com\"]\n"));
    assert!(text
        .contains("\nsource = \"../target/wasm32-wasip2/release/klaviyo_connector_http.wasm\"\n"));
    let policy = text
        .split_once("KLAVIYO_POLICY_TOML = \"\"\"\n")
        .and_then(|(_, rest)| rest.split_once("\"\"\""))
        .map(|(p, _)| p)
        .expect("the example sets KLAVIYO_POLICY_TOML");
    let p = Policy::from_toml(policy).unwrap();
    let op = klaviyo_catalog::tools::operation("subscribe_profiles")
        .or_else(|| {
            Tool::resolve("subscribe_profiles")
                .ok()
                .map(|t| t.operations()[0])
        })
        .unwrap();
    assert_eq!(p.decide(op).decision, Decision::Allow);
    assert!(!p.destructive_possible());
}
