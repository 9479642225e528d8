//! End-to-end: the real component (release build) in the real harness, against a local HTTP
//! server on 127.0.0.1. Build the component first: `cargo build --target wasm32-wasip2 --release`.

use crate::support::{rt, temp_dir, Recorded, Reply, Server, TempDir, FAKE_KEY, FAKE_PUBLIC_KEY};
use klaviyo_catalog::response::Failure;
use klaviyo_catalog::tools::Tool;
use klaviyo_catalog::Kind;
use klaviyo_harness::policy::Policy;
use klaviyo_harness::runtime::{check_imports, default_component_path};
use klaviyo_harness::secrets::KeySource;
use klaviyo_harness::{Harness, NoTty, Settings};
use serde_json::{json, Value};
use std::path::PathBuf;
use wasmtime::component::Val;

struct Env {
    harness: Harness,
    audit: PathBuf,
    _dir: TempDir,
}

fn env(server: &Server, policy: Policy) -> Env {
    let dir = temp_dir("kc-e2e");
    let key = dir.0.join("key");
    std::fs::write(&key, FAKE_KEY).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let audit = dir.0.join("audit.jsonl");
    let mut s = Settings::new(&server.url).unwrap();
    s.key_source = KeySource::File(key);
    s.public_key = Some(FAKE_PUBLIC_KEY.into());
    s.policy = policy;
    s.audit_log = Some(audit.clone());
    let harness = Harness::new(s, &component(), Box::new(NoTty)).unwrap();
    Env {
        harness,
        audit,
        _dir: dir,
    }
}

fn component() -> PathBuf {
    let p = default_component_path();
    assert!(
        p.exists(),
        "build the component first: cargo build --target wasm32-wasip2 --release ({} missing)",
        p.display()
    );
    p
}

fn assert_klaviyo_headers(r: &Recorded) {
    assert_eq!(
        r.header("authorization"),
        Some(format!("Klaviyo-API-Key {FAKE_KEY}").as_str())
    );
    assert_eq!(
        r.header("revision"),
        Some(klaviyo_catalog::generated::REVISION)
    );
    assert_eq!(r.header("accept"), Some("application/vnd.api+json"));
}

#[test]
fn read_through_tools_interface_sends_the_exact_request() {
    let server = Server::ok();
    let e = env(&server, Policy::read_only());
    let out = rt().block_on(e.harness.call(
        "get-profiles",
        &json!({"fields_profile": ["email"], "filter": "equals(email,'a@b.co')", "page_size": 3}).to_string(),
    ));
    let body = out.result.unwrap();
    assert!(
        body.contains("\"VIP\""),
        "the server's body comes back: {body}"
    );
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.method, "GET");
    assert_eq!(
        r.target,
        "/api/profiles?fields%5Bprofile%5D=email&filter=equals(email,'a@b.co')&page%5Bsize%5D=3"
    );
    assert_klaviyo_headers(r);
}

#[test]
fn sample_of_reads_through_tools_interface() {
    let server = Server::ok();
    let e = env(&server, Policy::read_only());
    let rt = rt();
    for name in [
        "get_lists",
        "get_campaigns",
        "get_metric",
        "get_catalog_items",
        "get_segment_relationships",
        "get_accounts",
    ] {
        let tool = Tool::resolve(name).unwrap();
        let args = klaviyo_catalog::example::example_args(tool, true);
        let out = rt.block_on(e.harness.call(name, &args.to_string()));
        assert!(out.result.is_ok(), "{name}: {:?}", out.result);
        let r = server.requests().pop().unwrap();
        let op = tool.operations()[0];
        assert_eq!(r.method, op.method.as_str(), "{name}");
        let segments = op.path.split('/').count();
        assert_eq!(
            r.path().split('/').count(),
            segments,
            "{name}: {}",
            r.path()
        );
        assert_klaviyo_headers(&r);
    }
}

/// The params record of a typed export, as dynamic component values, from JSON arguments.
fn typed_params(op_id: &str, args: &Value) -> Vec<Val> {
    let op = klaviyo_catalog::tools::operation(op_id).unwrap();
    let mut fields = Vec::new();
    for p in op.params {
        let name = p.arg.replace('_', "-");
        let v = &args[p.arg];
        let val = match (&p.kind, v) {
            (_, Value::Null) => None,
            (Kind::String, Value::String(s)) => Some(Val::String(s.clone())),
            (Kind::Integer { .. }, Value::Number(n)) => Some(Val::U32(n.as_u64().unwrap() as u32)),
            (Kind::List(_), Value::Array(a)) => Some(Val::List(
                a.iter()
                    .map(|x| Val::String(x.as_str().unwrap().into()))
                    .collect(),
            )),
            (Kind::Enum(_), Value::String(s)) => {
                let case = match s.strip_prefix('-') {
                    Some(r) => format!("{r}-desc"),
                    None => s.clone(),
                };
                Some(Val::Enum(case.replace(['_', '.'], "-")))
            }
            other => panic!("unsupported {other:?}"),
        };
        let required = p.required && matches!(p.kind, Kind::String | Kind::Enum(_));
        fields.push((
            name,
            if required {
                val.unwrap()
            } else {
                Val::Option(val.map(Box::new))
            },
        ));
    }
    if let Some(b) = &op.body {
        let text = args.get("body").map(|b| Val::String(b.to_string()));
        fields.push((
            "body".into(),
            if b.required {
                text.unwrap()
            } else {
                Val::Option(text.map(Box::new))
            },
        ));
    }
    vec![Val::Record(fields)]
}

#[test]
fn read_through_typed_exports() {
    let server = Server::ok();
    let e = env(&server, Policy::read_only());
    let rt = rt();
    let cases = [
        (
            "get-profiles",
            "get_profiles",
            json!({"sort": "-created", "page_size": 2, "fields_profile": ["email", "phone_number"]}),
            "/api/profiles?fields%5Bprofile%5D=email,phone_number&page%5Bsize%5D=2&sort=-created",
        ),
        (
            "get-list",
            "get_list",
            json!({"id": "$custom:::x y"}),
            "/api/lists/%24custom%3A%3A%3Ax%20y",
        ),
        (
            "get-campaigns",
            "get_campaigns",
            json!({"filter": "equals(messages.channel,'email')"}),
            "/api/campaigns?filter=equals(messages.channel,'email')",
        ),
    ];
    for (func, op, args, target) in cases {
        let out = rt.block_on(e.harness.call_typed(func, typed_params(op, &args)));
        assert!(out.result.is_ok(), "{func}: {:?}", out.result);
        let r = server.requests().pop().unwrap();
        assert_eq!(r.target, target, "{func}");
        assert_klaviyo_headers(&r);
    }
    // A typed call with bad input is refused before any request: an empty id, or one that
    // would leave its path segment.
    let before = server.requests().len();
    for id in ["", "a/b?c#d", ".."] {
        let out = rt.block_on(
            e.harness
                .call_typed("get-list", typed_params("get_list", &json!({"id": id}))),
        );
        assert!(
            matches!(out.result, Err(Failure::InvalidInput { ref field, .. }) if field == "id"),
            "{id:?}: {:?}",
            out.result
        );
    }
    assert_eq!(server.requests().len(), before);
}

#[test]
fn writes_are_denied_in_read_only_mode_before_any_byte_is_sent() {
    let server = Server::ok();
    let e = env(&server, Policy::read_only());
    let rt = rt();
    for (tool, args) in [
        ("create_list", json!({"body": {"name": "VIP"}})),
        ("delete_list", json!({"id": "L1"})),
        ("Add Profile to List", json!({"id": "L1", "body": ["P1"]})),
        (
            "create_tag_relationships",
            json!({"relationship": "lists", "id": "T1", "body": ["L1"]}),
        ),
    ] {
        let out = rt.block_on(e.harness.call(tool, &args.to_string()));
        match out.result {
            Err(Failure::Denied { message: m }) => assert!(
                m.contains("decision = \"allow\""),
                "says how to allow it: {m}"
            ),
            other => panic!("{tool}: expected denied, got {other:?}"),
        }
    }
    assert!(server.requests().is_empty(), "nothing reached the server");
    let audit = std::fs::read_to_string(&e.audit).unwrap();
    assert_eq!(
        audit
            .lines()
            .filter(|l| l.contains("\"event\":\"denied\""))
            .count(),
        4
    );
}

#[test]
fn allowed_writes_are_audited_before_and_after() {
    let server = Server::start(|_| Reply::json(201, r#"{"data":{"type":"list","id":"L9"}}"#));
    let policy =
        Policy::from_toml("[[rules]]\ntools = \"create_list\"\ndecision = \"allow\"").unwrap();
    let e = env(&server, policy);
    let out = rt().block_on(
        e.harness
            .call("create_list", &json!({"body": {"name": "VIP"}}).to_string()),
    );
    assert!(out.result.unwrap().contains("L9"));
    let r = &server.requests()[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.header("content-type"), Some("application/vnd.api+json"));
    let body: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        body,
        json!({"data": {"type": "list", "attributes": {"name": "VIP"}}})
    );
    let lines: Vec<Value> = std::fs::read_to_string(&e.audit)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // A new log begins with the start of its hash chain.
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["event"], "start");
    let lines = &lines[1..];
    assert_eq!(lines[0]["event"], "sending");
    assert_eq!(lines[1]["event"], "done");
    assert_eq!(lines[1]["status"], 201);
    assert_eq!(lines[0]["request"], lines[1]["request"]);
    let v = klaviyo_harness::audit::verify(std::slice::from_ref(&e.audit)).unwrap();
    assert_eq!((v.records, v.broken), (3, None));
    for l in lines {
        assert_eq!(l["tool"], "create_list");
        assert_eq!(l["access"], "write");
        assert_eq!(l["decision"], "allow");
    }
}

#[test]
fn deny_wins_over_allow() {
    let server = Server::ok();
    let policy = Policy::from_toml("[defaults]\nwrite = \"allow\"\n[[rules]]\ntools = \"*\"\ndecision = \"allow\"\n[[rules]]\ntools = \"create_*\"\ndecision = \"deny\"").unwrap();
    let e = env(&server, policy);
    let out = rt().block_on(
        e.harness
            .call("create_list", &json!({"body": {"name": "x"}}).to_string()),
    );
    assert!(
        matches!(out.result, Err(Failure::Denied { .. })),
        "{:?}",
        out.result
    );
    assert!(server.requests().is_empty());
}

#[test]
fn ask_without_a_way_to_ask_is_refused() {
    let server = Server::ok();
    let policy = Policy::from_toml("[defaults]\nwrite = \"ask\"").unwrap();
    let e = env(&server, policy);
    let out = rt().block_on(
        e.harness
            .call("create_list", &json!({"body": {"name": "x"}}).to_string()),
    );
    match out.result {
        Err(Failure::Denied { message: m }) => assert!(
            m.contains("needs confirmation") && m.contains("tools = \"create_list\""),
            "{m}"
        ),
        other => panic!("{other:?}"),
    }
    assert!(server.requests().is_empty());
}

/// Requests a component might forge are checked by the host itself.
#[test]
fn forged_requests_are_refused_by_the_egress_hook() {
    use http_body_util::{BodyExt, Full};
    let server = Server::ok();
    let other = Server::ok();
    let e = env(&server, Policy::read_only());
    let shared = e.harness.shared().clone();
    let placeholder = format!(
        "Klaviyo-API-Key {}",
        klaviyo_harness::egress::KEY_PLACEHOLDER
    );
    // (tool called, method, url, authorization, a word of the refusal)
    let cases = [
        (
            "create_list",
            "POST",
            format!("{}/api/lists", server.url),
            Some(placeholder.clone()),
            "denied by",
        ),
        (
            "update_list",
            "PATCH",
            format!("{}/api/lists/L1", server.url),
            Some(placeholder.clone()),
            "denied by",
        ),
        (
            "delete_list",
            "DELETE",
            format!("{}/api/lists/L1", server.url),
            Some(placeholder.clone()),
            "denied by",
        ),
        (
            "get_lists",
            "DELETE",
            format!("{}/api/lists/L1", server.url),
            Some(placeholder.clone()),
            "not an operation of the called tool",
        ),
        (
            "get_whatever",
            "GET",
            format!("{}/api/lists", server.url),
            Some(placeholder.clone()),
            "outside any tool call",
        ),
        (
            "get_lists",
            "GET",
            format!("{}/api/lists", other.url),
            Some(placeholder.clone()),
            "is not allowed",
        ),
        (
            "get_lists",
            "GET",
            "https://evil.example/api/lists".to_string(),
            Some(placeholder.clone()),
            "is not allowed",
        ),
        (
            "get_lists",
            "GET",
            format!("{}/api/not-an-endpoint", server.url),
            Some(placeholder.clone()),
            "not a Klaviyo API operation",
        ),
        (
            "get_list",
            "GET",
            format!("{}/api/lists/%2e%2e", server.url),
            Some(placeholder.clone()),
            "not canonical",
        ),
        (
            "get_lists",
            "GET",
            format!("{}/api/lists", server.url),
            Some("Klaviyo-API-Key pk_guessed".into()),
            "placeholder",
        ),
        (
            "get_client_geofences",
            "GET",
            format!("{}/client/geofences?company_id=x", server.url),
            Some(placeholder.clone()),
            "must not carry",
        ),
    ];
    let rt = rt();
    for (tool, method, url, auth, needle) in cases {
        let mut b = http::Request::builder()
            .method(method)
            .uri(&url)
            .header("revision", klaviyo_catalog::generated::REVISION)
            .header("accept", "application/vnd.api+json");
        if let Some(a) = &auth {
            b = b.header("authorization", a);
        }
        let body: &'static [u8] = if method == "GET" || method == "DELETE" {
            b""
        } else {
            b"{}"
        };
        if !body.is_empty() {
            b = b.header("content-type", "application/vnd.api+json");
        }
        let req = b
            .body(
                Full::new(bytes::Bytes::from_static(body))
                    .map_err(|n| match n {})
                    .boxed_unsync(),
            )
            .unwrap();
        let scope = klaviyo_harness::egress::CallScope {
            shared: shared.clone(),
            confirm: shared.confirm.clone(),
            called: tool.into(),
            tool: Tool::resolve(tool).ok(),
            client: None,
            log: Default::default(),
            deadline: std::time::Instant::now() + std::time::Duration::from_secs(10),
        };
        let (resp, _) = rt
            .block_on(klaviyo_harness::egress::guard(scope, req))
            .unwrap();
        assert_eq!(
            resp.headers()
                .get(klaviyo_catalog::response::HOST_VERDICT_HEADER)
                .unwrap(),
            "denied",
            "{method} {url}"
        );
        let text = rt.block_on(resp.into_body().collect()).unwrap().to_bytes();
        let text = String::from_utf8_lossy(&text);
        assert!(text.contains(needle), "{tool}: {method} {url}: {text}");
    }
    assert!(server.requests().is_empty() && other.requests().is_empty());
}

#[test]
fn the_key_never_leaks() {
    let server = Server::start(|r| {
        if r.path().ends_with("/boom") {
            Reply::json(
                400,
                r#"{"errors":[{"id":"e1","code":"invalid","title":"Invalid input.","detail":"bad","source":{"pointer":"/data"}}]}"#,
            )
        } else {
            Reply::json(200, r#"{"data":[]}"#)
        }
    });
    let e = env(&server, Policy::read_only());
    let rt = rt();
    let mut texts = Vec::new();
    for (tool, args) in [
        ("get_lists", json!({})),
        ("get_list", json!({"id": "boom"})),
        ("create_list", json!({"body": {"name": "x"}})),
        ("get_list", json!({"id": 7})),
        ("nope", json!({})),
        (
            "create_client_event",
            klaviyo_catalog::example::example_args(
                Tool::resolve("create_client_event").unwrap(),
                false,
            ),
        ),
    ] {
        let out = rt.block_on(e.harness.call(tool, &args.to_string()));
        texts.push(format!("{:?} {:?}", out.result, out.dry_runs));
        if let Err(f) = &out.result {
            texts.push(f.to_string());
        }
    }
    for t in &texts {
        assert!(!t.contains(FAKE_KEY), "key leaked into {t}");
    }
    assert!(!std::fs::read_to_string(&e.audit)
        .unwrap()
        .contains(FAKE_KEY));
    for r in server.requests() {
        let raw = String::from_utf8_lossy(&r.raw);
        let count = raw.matches(FAKE_KEY).count();
        if r.path().starts_with("/client/") {
            assert_eq!(count, 0, "client endpoints never get the private key");
            assert!(r.query().contains(&format!("company_id={FAKE_PUBLIC_KEY}")));
        } else {
            assert_eq!(count, 1, "only in the Authorization header");
            assert_eq!(
                r.header("authorization"),
                Some(format!("Klaviyo-API-Key {FAKE_KEY}").as_str())
            );
        }
    }
    assert!(server.requests().len() >= 2);
}

#[test]
fn klaviyo_errors_come_back_structured() {
    let server = Server::start(|_| {
        Reply::json(403, r#"{"errors":[{"id":"e1","code":"permission_denied","title":"Permission denied","detail":"missing scope","source":{"parameter":"fields"}}]}"#)
            .with_header("x-klaviyo-req-id", "req-42")
    });
    let e = env(&server, Policy::read_only());
    let out = rt().block_on(e.harness.call("get_lists", "{}"));
    match out.result {
        Err(Failure::Http {
            status,
            errors,
            request_id,
            hint,
            ..
        }) => {
            assert_eq!(status, 403);
            assert_eq!(errors[0].code, "permission_denied");
            assert_eq!(errors[0].source_parameter.as_deref(), Some("fields"));
            assert_eq!(request_id.as_deref(), Some("req-42"));
            assert!(
                hint.unwrap().contains("lists:read"),
                "a 403 names the scope the tool needs"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_spoofed_host_verdict_from_a_server_is_ignored() {
    let server = Server::start(|_| {
        Reply::json(200, r#"{"data":[]}"#)
            .with_header(klaviyo_catalog::response::HOST_VERDICT_HEADER, "denied")
    });
    let e = env(&server, Policy::read_only());
    let out = rt().block_on(e.harness.call("get_lists", "{}"));
    assert_eq!(out.result.unwrap(), r#"{"data":[]}"#);
}

#[test]
fn dry_run_shows_the_request_and_sends_nothing() {
    let server = Server::ok();
    let dir = temp_dir("kc-e2e");
    let mut s = Settings::new(&server.url).unwrap();
    s.key_source = KeySource::None;
    s.dry_run = true;
    let h = Harness::new(s, &component(), Box::new(NoTty)).unwrap();
    let out = crate::support::rt()
        .block_on(h.call("create_list", &json!({"body": {"name": "VIP"}}).to_string()));
    assert!(out.result.is_ok(), "{:?}", out.result);
    let r = &out.dry_runs[0];
    assert_eq!(r["request"]["method"], "POST");
    assert_eq!(r["request"]["url"], format!("{}/api/lists", server.url));
    assert_eq!(
        r["request"]["headers"]["authorization"],
        "Klaviyo-API-Key [redacted]"
    );
    assert_eq!(r["request"]["body"]["data"]["type"], "list");
    assert_eq!(r["policy"]["decision"], "deny");
    assert!(server.requests().is_empty());
    drop(dir);
}

#[test]
fn no_key_is_a_not_configured_error() {
    let server = Server::ok();
    let dir = temp_dir("kc-e2e-nokey");
    let audit = dir.0.join("audit.jsonl");
    let mut s = Settings::new(&server.url).unwrap();
    s.key_source = KeySource::None;
    s.audit_log = Some(audit.clone());
    let h = Harness::new(s, &component(), Box::new(NoTty)).unwrap();
    let out = rt().block_on(h.call("get_lists", "{}"));
    assert!(
        matches!(out.result, Err(Failure::NotConfigured { .. })),
        "{:?}",
        out.result
    );
    assert!(server.requests().is_empty());
    // Audited like any other refusal.
    let log = std::fs::read_to_string(&audit).unwrap();
    assert!(
        log.contains("\"event\":\"not-configured\"") && log.contains("\"operation\":\"get_lists\""),
        "{log}"
    );
}

#[test]
fn bad_input_is_refused_before_sending() {
    let server = Server::ok();
    let e = env(&server, Policy::allow_all());
    let rt = rt();
    let cases: Vec<(&str, &str, &str)> = vec![
        ("get_profilez", "{}", "unknown"),
        ("get_lists", "{not json", "arguments"),
        ("get_list", r#"{"id": 5}"#, "id"),
        ("get_list", "{}", "id"),
        ("get_profiles", r#"{"page_size": 1000}"#, "page_size"),
        (
            "create_list",
            r#"{"body": {"name": 1}}"#,
            "body.data.attributes.name",
        ),
    ];
    for (tool, args, field) in cases {
        let out = rt.block_on(e.harness.call(tool, args));
        match out.result {
            Err(Failure::InvalidInput { field: f, .. }) => assert_eq!(f, field, "{tool} {args}"),
            Err(Failure::UnknownTool { message: m }) => {
                assert!(field == "unknown" && m.contains(tool), "{m}")
            }
            other => panic!("{tool} {args}: {other:?}"),
        }
    }
    assert!(server.requests().is_empty());
}

#[test]
fn tools_are_listed_with_schemas_and_classes() {
    let server = Server::ok();
    let e = env(&server, Policy::read_only());
    let rt = rt();
    let tools = rt.block_on(e.harness.list_tools()).unwrap();
    assert_eq!(tools.len(), 351);
    let gp = tools.iter().find(|t| t.name == "get_profiles").unwrap();
    assert_eq!(gp.access, "read");
    assert_eq!(gp.scopes, vec!["profiles:read"]);
    assert!(gp.input_schema["properties"]["page_size"]["maximum"].is_number());
    let d = rt
        .block_on(e.harness.describe("Add Profile to List"))
        .unwrap()
        .unwrap();
    assert_eq!(d.name, "add_profiles_to_list");
    assert!(rt
        .block_on(e.harness.describe("no such tool"))
        .unwrap()
        .is_none());
}

#[test]
fn components_with_other_imports_are_refused() {
    let engine = wasmtime::Engine::default();
    for (import, wat) in [
        (
            "wasi:filesystem",
            r#"(component (import "wasi:filesystem/types@0.2.6" (instance)))"#,
        ),
        (
            "wasi:sockets",
            r#"(component (import "wasi:sockets/tcp@0.2.6" (instance)))"#,
        ),
        // Our own namespace is allowed for types-only interfaces, not for functions.
        (
            "klaviyo:connector/profiles",
            r#"(component (import "klaviyo:connector/profiles@0.1.0" (instance (export "send" (func)))))"#,
        ),
    ] {
        let c = wasmtime::component::Component::new(&engine, wat).unwrap();
        let err = check_imports(&engine, &c).unwrap_err().to_string();
        assert!(
            err.contains(import) && err.contains("no filesystem"),
            "{err}"
        );
    }
    for ok in [
        r#"(component (import "wasi:http/types@0.2.4" (instance)))"#,
        r#"(component (import "klaviyo:connector/profiles@0.1.0" (instance (type (enum "id")) (export "sort" (type (eq 0))))))"#,
    ] {
        let ok = wasmtime::component::Component::new(&engine, ok).unwrap();
        assert!(check_imports(&engine, &ok).is_ok());
    }
}

/// The built component exports exactly the WIT contract and imports only what is allowed.
#[test]
fn the_component_exports_every_action_and_imports_only_allowed_interfaces() {
    use wasmtime::component::types::ComponentItem;
    let mut config = wasmtime::Config::new();
    config.epoch_interruption(true);
    let engine = wasmtime::Engine::new(&config).unwrap();
    let c = klaviyo_harness::runtime::load_component(&engine, &component(), None).unwrap();
    check_imports(&engine, &c).unwrap();
    let ty = c.component_type();
    let imports: Vec<String> = ty.imports(&engine).map(|(n, _)| n.to_string()).collect();
    assert!(
        imports
            .iter()
            .any(|n| n.starts_with("klaviyo:connector/secrets@")),
        "{imports:?}"
    );
    assert!(
        imports
            .iter()
            .any(|n| n.starts_with("wasi:http/outgoing-handler@")),
        "{imports:?}"
    );
    // Every action is a function of the component's own world; `tools` is the one interface.
    let mut functions = Vec::new();
    let mut interfaces = Vec::new();
    for (name, item) in ty.exports(&engine) {
        match item.ty {
            ComponentItem::ComponentFunc(_) => functions.push(name.to_string()),
            ComponentItem::ComponentInstance(_) => interfaces.push(name.to_string()),
            _ => panic!("unexpected export {name}"),
        }
    }
    assert_eq!(interfaces.len(), 1, "{interfaces:?}");
    assert!(interfaces[0].starts_with("klaviyo:connector/tools@"));
    // 345 operations + 6 composite actions, each under its tool's WIT name.
    assert_eq!(functions.len(), 345 + 6);
    for t in klaviyo_catalog::generated::OPERATIONS {
        let wit_name = t.id.replace('_', "-");
        assert!(functions.contains(&wit_name), "{wit_name}");
    }
}

/// Both builds carry their name, the WIT docs of every action (wit-component's `package-docs`
/// section, for the world decoders call `root`, where Wassette looks a tool's description up)
/// and wasm-metadata's version and licence: what hosts show about a component.
#[test]
fn both_builds_carry_their_name_and_the_wit_docs() {
    use wasmtime::component::types::ComponentItem;
    let engine = wasmtime::Engine::default();
    for (file, name) in [
        ("klaviyo_connector.wasm", "klaviyo-connector"),
        ("klaviyo_connector_env.wasm", "klaviyo-connector-env"),
    ] {
        let path = component().with_file_name(file);
        let bytes = std::fs::read(&path).unwrap();
        let sections = custom_sections(&bytes);
        let section = |n: &str| {
            let found: Vec<&[u8]> = sections
                .iter()
                .filter(|(k, _)| k == n)
                .map(|(_, v)| *v)
                .collect();
            assert_eq!(found.len(), 1, "{file}: one `{n}` section");
            found[0]
        };
        // component-name: subsection 0 (the component's name) comes first.
        let names = section("component-name");
        assert_eq!(names[0], 0, "{file}");
        assert_eq!(&names[3..3 + name.len()], name.as_bytes(), "{file}");
        assert_eq!(section("version"), env!("CARGO_PKG_VERSION").as_bytes());
        assert_eq!(section("licenses"), b"MIT");
        // package-docs: version 1, then JSON with a description for every exported function.
        let docs = section("package-docs");
        assert_eq!(docs[0], 1, "{file}");
        let docs: Value = serde_json::from_slice(&docs[1..]).unwrap();
        let funcs = docs["worlds"]["root"]["func_exports"].as_object().unwrap();
        let c = wasmtime::component::Component::from_file(&engine, &path).unwrap();
        let exported: Vec<String> = c
            .component_type()
            .exports(&engine)
            .filter(|(_, i)| matches!(i.ty, ComponentItem::ComponentFunc(_)))
            .map(|(n, _)| n.to_string())
            .collect();
        assert_eq!(exported.len(), funcs.len(), "{file}");
        for f in &exported {
            let d = funcs[f]["docs"]
                .as_str()
                .unwrap_or_else(|| panic!("{file}: no docs for {f}"));
            let tool = Tool::resolve(f).unwrap();
            assert!(d.starts_with(tool.title()), "{file} {f}: {d}");
        }
        assert!(funcs["get-profiles"]["docs"]
            .as_str()
            .unwrap()
            .contains("`GET /api/profiles` · access: read · scopes: profiles:read"));
    }
}

/// The top-level custom sections of a component: (name, contents).
pub fn custom_sections(bytes: &[u8]) -> Vec<(String, &[u8])> {
    fn leb(b: &[u8], pos: &mut usize) -> usize {
        let (mut v, mut shift) = (0usize, 0);
        loop {
            let byte = b[*pos];
            *pos += 1;
            v |= ((byte & 0x7f) as usize) << shift;
            if byte & 0x80 == 0 {
                return v;
            }
            shift += 7;
        }
    }
    let mut out = Vec::new();
    let mut pos = 8;
    while pos < bytes.len() {
        let id = bytes[pos];
        pos += 1;
        let size = leb(bytes, &mut pos);
        let end = pos + size;
        if id == 0 {
            let mut p = pos;
            let n = leb(bytes, &mut p);
            let name = String::from_utf8(bytes[p..p + n].to_vec()).unwrap();
            out.push((name, &bytes[p + n..end]));
        }
        pos = end;
    }
    out
}

/// The compiled component is cached under a key of its bytes' hash and the engine's
/// configuration, and loading from the cache gives a working component.
#[test]
fn precompiled_component_is_cached_by_content_hash() {
    use sha2::Digest;
    let bytes = std::fs::read(component()).unwrap();
    let hash = format!("{:x}", sha2::Sha256::digest(&bytes));
    let server = Server::ok();
    let _first = env(&server, Policy::read_only());
    let cached: Vec<_> = std::fs::read_dir(Settings::new(&server.url).unwrap().cache_dir.unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name().to_string_lossy().starts_with(&hash)
                && e.file_name().to_string_lossy().ends_with(".cwasm")
        })
        .collect();
    assert_eq!(
        cached.len(),
        1,
        "one artifact for this component and engine"
    );
    let e = env(&server, Policy::read_only());
    assert!(rt()
        .block_on(e.harness.call("get_lists", "{}"))
        .result
        .is_ok());
}

/// A type, spelled out structurally (type indices differ between components).
fn describe_type(t: &wasmtime::component::Type) -> String {
    use wasmtime::component::Type as T;
    match t {
        T::List(l) => format!("list<{}>", describe_type(&l.ty())),
        T::Option(o) => format!("option<{}>", describe_type(&o.ty())),
        T::Result(r) => format!(
            "result<{}, {}>",
            r.ok().map(|t| describe_type(&t)).unwrap_or_default(),
            r.err().map(|t| describe_type(&t)).unwrap_or_default()
        ),
        T::Record(r) => format!(
            "record{{{}}}",
            r.fields()
                .map(|f| format!("{}: {}", f.name, describe_type(&f.ty)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        T::Variant(v) => format!(
            "variant{{{}}}",
            v.cases()
                .map(|c| format!(
                    "{}({})",
                    c.name,
                    c.ty.map(|t| describe_type(&t)).unwrap_or_default()
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        T::Enum(e) => format!("enum{{{}}}", e.names().collect::<Vec<_>>().join(", ")),
        other => format!("{other:?}"),
    }
}

/// Every exported interface and function with its full signature.
fn export_signatures(path: &std::path::Path) -> (Vec<String>, Vec<String>) {
    use wasmtime::component::types::ComponentItem;
    let engine = wasmtime::Engine::default();
    let c = wasmtime::component::Component::from_file(&engine, path).unwrap();
    let ty = c.component_type();
    let mut sigs = Vec::new();
    let mut signature = |name: String, f: wasmtime::component::types::ComponentFunc| {
        let params: Vec<String> = f
            .params()
            .map(|(n, t)| format!("{n}: {}", describe_type(&t)))
            .collect();
        let results: Vec<String> = f.results().map(|t| describe_type(&t)).collect();
        sigs.push(format!(
            "{name}({}) -> {}",
            params.join(", "),
            results.join(", ")
        ));
    };
    for (export, item) in ty.exports(&engine) {
        match item.ty {
            ComponentItem::ComponentFunc(f) => signature(export.to_string(), f),
            ComponentItem::ComponentInstance(inst) => {
                for (name, f) in inst.exports(&engine) {
                    if let ComponentItem::ComponentFunc(f) = f.ty {
                        signature(format!("{export}#{name}"), f);
                    }
                }
            }
            _ => panic!("{export}"),
        }
    }
    let imports = ty.imports(&engine).map(|(n, _)| n.to_string()).collect();
    (sigs, imports)
}

/// The env build (for hosts without the secrets interface) exports exactly what the main build
/// does, and imports the same minus `secrets`.
#[test]
fn the_env_build_exports_exactly_the_same_interfaces() {
    let main = component();
    let env = main.with_file_name("klaviyo_connector_env.wasm");
    assert!(
        env.exists(),
        "build the components first ({} missing)",
        env.display()
    );
    let (main_sigs, main_imports) = export_signatures(&main);
    let (env_sigs, env_imports) = export_signatures(&env);
    assert_eq!(main_sigs.len(), 354);
    assert_eq!(main_sigs, env_sigs);
    let without_secrets: Vec<&String> = main_imports
        .iter()
        .filter(|n| !n.starts_with("klaviyo:connector/secrets@"))
        .collect();
    assert_eq!(without_secrets, env_imports.iter().collect::<Vec<_>>());
    assert!(!env_imports.iter().any(|n| n.contains("secrets")));
}
