//! The MCP server (`serve`) as an agent runtime sees it: a real MCP client (rmcp) speaking to
//! the harness as a child process over stdio, against a local HTTP server.

#[path = "../../tests/support/mod.rs"]
mod support;

use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, ElicitRequestParams,
    ElicitResult, ElicitationAction, Implementation, JsonObject,
};
use rmcp::service::{RequestContext, RunningService};
use rmcp::transport::{ConfigureCommandExt, TokioChildProcess};
use rmcp::{ClientHandler, ErrorData as McpError, RoleClient, ServiceExt};
use serde_json::{json, Value};
use support::{Reply, Server, FAKE_KEY};

const BIN: &str = env!("CARGO_BIN_EXE_klaviyo-harness");

/// A client that supports elicitation and answers every question with `approve`.
#[derive(Clone)]
struct Approver {
    approve: bool,
}

impl ClientHandler for Approver {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::builder().enable_elicitation().build(),
            Implementation::new("test-client", "0.0.1"),
        )
    }
    async fn create_elicitation(
        &self,
        req: ElicitRequestParams,
        _ctx: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, McpError> {
        let shows_request = match &req {
            ElicitRequestParams::FormElicitationParams { message, .. } => {
                message.contains("POST ") && message.contains("/api/lists")
            }
            _ => false,
        };
        Ok(if self.approve && shows_request {
            ElicitResult::new(ElicitationAction::Accept).with_content(json!({"approve": true}))
        } else {
            ElicitResult::new(ElicitationAction::Decline)
        })
    }
}

async fn start<H: ClientHandler>(
    handler: H,
    url: &str,
    policy: Option<&str>,
    args: &[&str],
) -> RunningService<RoleClient, H> {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.env_remove("KLAVIYO_POLICY")
        .env_remove("KLAVIYO_CONFIG")
        .env_remove("KLAVIYO_AUDIT_LOG");
    cmd.env("HOME", std::env::temp_dir().join("kc-mcp-home"));
    cmd.env("KLAVIYO_BASE_URL", url)
        .env("KLAVIYO_API_KEY", FAKE_KEY);
    let policy_path = policy.map(|p| {
        let path = std::env::temp_dir().join(format!(
            "kc-mcp-policy-{}-{}.toml",
            std::process::id(),
            rand_suffix()
        ));
        std::fs::write(&path, p).unwrap();
        path
    });
    let cmd = cmd.configure(|c| {
        c.arg("serve").args(args);
        if let Some(p) = &policy_path {
            c.arg("--policy").arg(p);
        }
    });
    handler
        .serve(TokioChildProcess::new(cmd).unwrap())
        .await
        .unwrap()
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

fn args(v: Value) -> JsonObject {
    match v {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

fn text(r: &CallToolResult) -> String {
    r.content
        .iter()
        .filter_map(|c| c.as_text())
        .map(|t| t.text.clone())
        .collect::<Vec<_>>()
        .join("\n")
}

async fn call<H: ClientHandler>(
    c: &RunningService<RoleClient, H>,
    name: &str,
    a: Value,
) -> CallToolResult {
    c.call_tool(CallToolRequestParams::new(name.to_string()).with_arguments(args(a)))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn tool_lists_in_each_mode() {
    let server = Server::ok();
    let c = start((), &server.url, None, &[]).await;
    let info = c.peer_info().unwrap();
    assert_eq!(info.server_info.as_ref().unwrap().name, "klaviyo-harness");
    let tools = c.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert_eq!(names, ["search_actions", "describe_action", "call_action"]);
    let size = serde_json::to_string(&tools).unwrap().len();
    assert!(size < 4096, "discovery mode stays small: {size} bytes");
    c.cancel().await.unwrap();

    let c = start((), &server.url, None, &["--mode", "all"]).await;
    let tools = c.list_all_tools().await.unwrap();
    assert_eq!(tools.len(), 351);
    let gl = tools.iter().find(|t| t.name == "get_lists").unwrap();
    let ann = gl.annotations.as_ref().unwrap();
    assert_eq!(
        (ann.read_only_hint, ann.destructive_hint),
        (Some(true), Some(false))
    );
    assert_eq!(gl.title.as_deref(), Some("Get Lists"));
    let dl = tools.iter().find(|t| t.name == "delete_list").unwrap();
    assert_eq!(
        dl.annotations.as_ref().unwrap().destructive_hint,
        Some(true)
    );
    assert!(gl
        .input_schema
        .get("properties")
        .unwrap()
        .get("raw_response")
        .is_some());
    c.cancel().await.unwrap();

    let c = start(
        (),
        &server.url,
        None,
        &[
            "--mode",
            "all",
            "--toolsets",
            "profiles,lists",
            "--read-only",
        ],
    )
    .await;
    let tools = c.list_all_tools().await.unwrap();
    assert!(!tools.is_empty());
    for t in &tools {
        assert_eq!(
            t.annotations.as_ref().unwrap().read_only_hint,
            Some(true),
            "{}",
            t.name
        );
    }
    assert!(
        tools.iter().any(|t| t.name == "get_profiles")
            && tools.iter().any(|t| t.name == "get_lists")
    );
    assert!(!tools
        .iter()
        .any(|t| t.name == "get_campaigns" || t.name == "create_list"));
    c.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn reads_writes_policy_and_errors() {
    let server = Server::start(|r| {
        if r.method == "POST" {
            Reply::json(
                201,
                r#"{"data":{"type":"list","id":"L9","attributes":{"name":"VIP"}}}"#,
            )
        } else {
            Reply::json(
                200,
                r#"{"data":[{"type":"list","id":"L1","attributes":{"name":"VIP"},"links":{"self":"x"}}],"links":{"next":"http://x/api/lists?page%5Bcursor%5D=abc"}}"#,
            )
        }
    });
    let c = start((), &server.url, None, &["--mode", "all"]).await;
    // A read: compact by default, raw on request.
    let r = call(&c, "get_lists", json!({})).await;
    assert_eq!(r.is_error, Some(false));
    let v: Value = serde_json::from_str(&text(&r)).unwrap();
    assert_eq!(
        v,
        json!({"data": [{"id": "L1", "type": "list", "attributes": {"name": "VIP"}}], "next_cursor": "abc"})
    );
    let r = call(&c, "get_lists", json!({"raw_response": true})).await;
    assert!(text(&r).contains("\"links\""));
    assert_eq!(server.requests().len(), 2);
    // A write in the default read-only policy: denied before anything is sent.
    let r = call(&c, "create_list", json!({"body": {"name": "VIP"}})).await;
    assert_eq!(r.is_error, Some(true));
    assert!(
        text(&r).contains("Not allowed by the user's policy")
            && text(&r).contains("decision = \"allow\""),
        "{}",
        text(&r)
    );
    // Bad arguments: a tool error naming the field.
    let r = call(&c, "get_profiles", json!({"page_size": 1000})).await;
    assert_eq!(r.is_error, Some(true));
    assert!(
        text(&r).contains("Invalid argument `page_size`"),
        "{}",
        text(&r)
    );
    // An unknown tool: a protocol error.
    let e = c
        .call_tool(CallToolRequestParams::new("no_such_tool"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("unknown tool"), "{e}");
    assert_eq!(server.requests().len(), 2, "nothing else was sent");
    assert!(!text(&call(&c, "get_lists", json!({"raw_response": true})).await).contains(FAKE_KEY));
    c.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn ask_uses_elicitation_or_says_how_to_allow() {
    let server = Server::start(|_| Reply::json(201, r#"{"data":{"type":"list","id":"L9"}}"#));
    let policy = "[defaults]\nwrite = \"ask\"\n";
    // With elicitation: the user approves, the write is sent.
    let c = start(
        Approver { approve: true },
        &server.url,
        Some(policy),
        &["--mode", "all"],
    )
    .await;
    let r = call(&c, "create_list", json!({"body": {"name": "VIP"}})).await;
    assert_eq!(r.is_error, Some(false), "{}", text(&r));
    assert_eq!(server.requests().len(), 1);
    c.cancel().await.unwrap();
    // The user declines: nothing is sent.
    let c = start(
        Approver { approve: false },
        &server.url,
        Some(policy),
        &["--mode", "all"],
    )
    .await;
    let r = call(&c, "create_list", json!({"body": {"name": "VIP"}})).await;
    assert_eq!(r.is_error, Some(true));
    assert!(text(&r).contains("declined"), "{}", text(&r));
    assert_eq!(server.requests().len(), 1);
    c.cancel().await.unwrap();
    // A client without elicitation: refused, saying how to allow it.
    let c = start((), &server.url, Some(policy), &["--mode", "all"]).await;
    let r = call(&c, "create_list", json!({"body": {"name": "VIP"}})).await;
    assert_eq!(r.is_error, Some(true));
    assert!(
        text(&r).contains("needs confirmation")
            && text(&r).contains("elicitation")
            && text(&r).contains("tools = \"create_list\""),
        "{}",
        text(&r)
    );
    assert_eq!(server.requests().len(), 1);
    c.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn discovery_reaches_every_action() {
    let server = Server::ok();
    let c = start((), &server.url, None, &[]).await;
    // search → describe → call.
    let r = call(
        &c,
        "search_actions",
        json!({"query": "add profile to list"}),
    )
    .await;
    let hits: Vec<Value> = serde_json::from_str(&text(&r)).unwrap();
    assert_eq!(hits[0]["name"], "add_profiles_to_list", "{hits:?}");
    let r = call(&c, "describe_action", json!({"name": "get_lists"})).await;
    let d: Value = serde_json::from_str(&text(&r)).unwrap();
    assert_eq!(d["access"], "read");
    assert!(d["arguments"]["properties"]["fields_list"].is_object());
    let r = call(
        &c,
        "call_action",
        json!({"name": "get_lists", "arguments": {"fields_list": ["name"]}}),
    )
    .await;
    assert_eq!(r.is_error, Some(false), "{}", text(&r));
    assert_eq!(
        server.requests()[0].target,
        "/api/lists?fields%5Blist%5D=name"
    );
    let r = call(
        &c,
        "call_action",
        json!({"name": "get_list", "arguments": {}}),
    )
    .await;
    assert!(text(&r).contains("Invalid argument `id`"), "{}", text(&r));
    // Every action is findable by its own title.
    let all = klaviyo_catalog::tools::Tool::all()
        .map(|t| (t.name(), t.title()))
        .collect::<Vec<_>>();
    for (name, title) in all {
        let r = call(&c, "search_actions", json!({"query": title, "limit": 10})).await;
        let hits: Vec<Value> = serde_json::from_str(&text(&r)).unwrap();
        assert!(
            hits.iter().any(|h| h["name"] == name),
            "`{title}` does not find {name}: {hits:?}"
        );
    }
    c.cancel().await.unwrap();
}
