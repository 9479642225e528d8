//! `serve`: the actions over the Model Context Protocol (rmcp), on stdio or Streamable HTTP
//! ([`http`]). What the tools are, what they answer and how results look is
//! `klaviyo_agent::mcp::Surface` (one table, shared with the edge build) over the host's own
//! catalog — never what the component reports. Every call goes through the same runtime,
//! egress guard, policy, pacing and audit as the CLI.
//!
//! Confirmation of `ask` actions follows the client's protocol:
//! - 2026-07-28 (no session): the input-required round trip ([`approval`]): the first call
//!   sends nothing and returns a question showing the exact request; the retry with the
//!   user's answer sends it once (or, declined, nothing);
//! - 2025-x sessions: an elicitation request during the call;
//! - a client that declared no elicitation capability: refused, with the rule to add.

pub mod approval;
pub mod http;

use crate::confirm::Answer;
use crate::{Caller, Confirm, Harness};
use approval::Approvals;
use klaviyo_agent::mcp::{Dispatch, Surface};
use klaviyo_catalog::tools::Tool;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ClientCapabilities, ElicitResult,
    ElicitationAction, Implementation, InputRequest, InputRequests, InputRequiredResult,
    JsonObject, ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig,
    Tool as McpTool,
};
use rmcp::service::{ElicitationError, RequestContext};
use rmcp::{ErrorData as McpError, Peer, RoleServer, ServerHandler, ServiceExt};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

pub use klaviyo_agent::mcp::{Mode, Untrusted};

/// The key of the one input request an approval asks.
const APPROVAL: &str = "approval";

#[derive(Clone)]
pub struct Server {
    harness: Arc<Harness>,
    surface: Arc<Surface>,
    tools: Arc<Vec<McpTool>>,
    approvals: Arc<Approvals>,
    /// Runs calls to completion even when the client goes away (a write is never cut off).
    calls: tokio_util::task::TaskTracker,
}

impl Server {
    pub fn new(harness: Arc<Harness>, surface: Surface) -> anyhow::Result<Server> {
        let mut listed = surface.tools();
        if harness.settings().audit_log.is_some() {
            listed.push(reconcile_tool());
        }
        let tools: Vec<McpTool> = listed
            .into_iter()
            .map(serde_json::from_value)
            .collect::<Result<_, _>>()
            .map_err(|e| anyhow::anyhow!("the tool list does not fit MCP's shape: {e}"))?;
        Ok(Server {
            harness,
            surface: Arc::new(surface),
            tools: Arc::new(tools),
            approvals: Arc::new(Approvals::new(approval::random_key()?)),
            calls: tokio_util::task::TaskTracker::new(),
        })
    }

    /// The `tools/list` answer.
    pub fn tool_list(&self) -> &[McpTool] {
        &self.tools
    }

    /// Calls in flight (to wait for at shutdown).
    pub fn calls(&self) -> &tokio_util::task::TaskTracker {
        &self.calls
    }

    pub fn harness(&self) -> &Arc<Harness> {
        &self.harness
    }

    async fn run(
        &self,
        tool: Tool,
        arguments: JsonObject,
        raw: bool,
        req: &CallToolRequestParams,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let args_text = Value::Object(arguments).to_string();
        let client = ctx
            .extensions
            .get::<::http::request::Parts>()
            .and_then(|p| p.extensions.get::<self::http::ClientName>())
            .map(|c| c.0.clone());
        let modern = ctx.protocol_version().is_some_and(|v| !v.has_initialize());
        let can_ask = ctx
            .client_capabilities()
            .as_ref()
            .is_some_and(form_elicitation);
        let deferred = Arc::new(Mutex::new(None));
        let confirm: Arc<dyn Confirm> = if !can_ask {
            Arc::new(Cannot)
        } else if !modern {
            Arc::new(Elicit(ctx.peer.clone()))
        } else {
            match (
                &req.request_state,
                req.input_responses.as_ref().and_then(|r| r.get(APPROVAL)),
            ) {
                (Some(state), Some(answer)) => {
                    let pending = match self.approvals.open(state, tool.name(), &args_text) {
                        Ok(p) => p,
                        Err(why) => {
                            return Ok(result(self.surface.call_result(
                                tool,
                                &Err(klaviyo_catalog::response::Failure::Denied { message: why }),
                                false,
                            ))
                            .into())
                        }
                    };
                    let approved = serde_json::from_value::<ElicitResult>(answer.clone())
                        .is_ok_and(|a| {
                            a.action == ElicitationAction::Accept
                                && a.content
                                    .as_ref()
                                    .and_then(|c| c.get("approve"))
                                    .and_then(Value::as_bool)
                                    == Some(true)
                        });
                    Arc::new(Answered {
                        approved,
                        request: pending.request,
                    })
                }
                _ => Arc::new(Defer(deferred.clone())),
            }
        };
        let caller = Caller {
            confirm: Some(confirm),
            client,
        };
        // The call runs in a tracked task of its own: if the client disconnects, its future is
        // dropped but the call (and its write) completes and is audited.
        let harness = self.harness.clone();
        let name = tool.name();
        let task_args = args_text.clone();
        let task = self
            .calls
            .spawn(async move { harness.call_as(name, &task_args, &caller).await });
        let out = task
            .await
            .map_err(|e| McpError::internal_error(format!("the call failed: {e}"), None))?;
        if let Some(question) = deferred.lock().unwrap().take() {
            let state = self.approvals.seal(tool.name(), &args_text, &question);
            return Ok(input_required(&question, state));
        }
        Ok(result(self.surface.call_result(tool, &out.result, raw)).into())
    }
}

fn form_elicitation(c: &ClientCapabilities) -> bool {
    c.elicitation
        .as_ref()
        .is_some_and(|e| e.form.is_some() || e.url.is_none())
}

/// The host-only tool that settles unknown writes from the audit log (listed when there is
/// one; the edge build has none).
const RECONCILE: &str = "reconcile_writes";

fn reconcile_tool() -> Value {
    json!({
        "name": RECONCILE,
        "title": "Check writes whose outcome is unknown",
        "description": "For every write whose answer was lost (outcome-unknown), run the read that shows whether it happened and record the answer in the audit log: found, not-found, or could-not-check (with the read to make). Never sends a write again.",
        "inputSchema": {"type": "object", "properties": {}, "additionalProperties": false},
        "outputSchema": {"type": "object", "properties": {
            "ok": {"type": "boolean"},
            "results": {"type": "array", "items": {"type": "object"}},
            "unsettled": {"type": "integer"}
        }, "required": ["ok", "results"]},
        "annotations": {"title": "Check writes whose outcome is unknown", "readOnlyHint": true, "destructiveHint": false, "idempotentHint": false, "openWorldHint": true}
    })
}

impl Server {
    async fn reconcile(&self, req: &CallToolRequestParams) -> Value {
        if let Some(k) = req.arguments.as_ref().and_then(|a| a.keys().next()) {
            return klaviyo_agent::mcp::structured(
                json!({"ok": false, "error": {"kind": "invalid-input", "field": k, "message": format!("Invalid argument `{k}`: {RECONCILE} takes no arguments")}}),
                true,
            );
        }
        match crate::reconcile::run(&self.harness).await {
            Ok((results, unsettled)) => klaviyo_agent::mcp::structured(
                json!({"ok": unsettled == 0, "results": results, "unsettled": unsettled}),
                false,
            ),
            Err(e) => klaviyo_agent::mcp::structured(
                json!({"ok": false, "error": {"kind": "unavailable", "message": e}}),
                true,
            ),
        }
    }
}

fn result(v: Value) -> CallToolResult {
    let mut r: CallToolResult = serde_json::from_value(v).unwrap_or_else(|e| {
        CallToolResult::error(vec![rmcp::model::ContentBlock::text(format!(
            "internal: result shape: {e}"
        ))])
    });
    // 2026-07-28 results say they are complete (rmcp strips it for older peers).
    r.result_type = Some(rmcp::model::ResultType::COMPLETE);
    r
}

fn input_required(question: &str, state: String) -> CallToolResponse {
    let req: InputRequest = serde_json::from_value(json!({
        "method": "elicitation/create",
        "params": {
            "mode": "form",
            "message": question,
            "requestedSchema": {"type": "object", "properties": {
                "approve": {"type": "boolean", "title": "Run this request?", "description": "Send exactly this request to Klaviyo."}
            }, "required": ["approve"]}
        }
    }))
    .expect("a valid elicitation request");
    let mut reqs = InputRequests::new();
    reqs.insert(APPROVAL.into(), req);
    InputRequiredResult::new(Some(reqs), Some(state)).into()
}

/// The client cannot be asked.
struct Cannot;

impl Confirm for Cannot {
    fn confirm(&self, _prompt: String) -> Answer {
        Box::pin(async {
            Err(
                "the MCP client cannot ask its user (it declared no elicitation capability)"
                    .to_string(),
            )
        })
    }
}

/// First round of a 2026-07-28 approval: keep the question, send nothing.
struct Defer(Arc<Mutex<Option<String>>>);

impl Confirm for Defer {
    fn confirm(&self, prompt: String) -> Answer {
        *self.0.lock().unwrap() = Some(prompt);
        Box::pin(async { Err("the user's approval was requested from the MCP client".to_string()) })
    }
}

/// Second round: the user's answer, valid only for the very request they were shown.
struct Answered {
    approved: bool,
    request: String,
}

impl Confirm for Answered {
    fn confirm(&self, prompt: String) -> Answer {
        let same = approval::same(
            approval::sha256_hex(prompt.as_bytes()).as_bytes(),
            self.request.as_bytes(),
        );
        let approved = self.approved;
        Box::pin(async move {
            match (same, approved) {
                (false, _) => Err(
                    "the request differs from the one the user was shown; nothing was sent"
                        .to_string(),
                ),
                (true, a) => Ok(a),
            }
        })
    }
}

/// Asks the user through an elicitation request during the call (2025-x sessions).
struct Elicit(Peer<RoleServer>);

#[derive(Debug, serde::Deserialize, rmcp::schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct Approval {
    /// Run this request?
    approve: bool,
}
rmcp::elicit_safe!(Approval);

impl Confirm for Elicit {
    fn confirm(&self, prompt: String) -> Answer {
        let peer = self.0.clone();
        Box::pin(async move {
            match peer.elicit::<Approval>(prompt).await {
                Ok(Some(a)) => Ok(a.approve),
                Ok(None)
                | Err(ElicitationError::UserDeclined)
                | Err(ElicitationError::UserCancelled) => Ok(false),
                Err(e) => Err(format!("asking the user failed ({e})")),
            }
        })
    }
}

impl ServerHandler for Server {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(
                "klaviyo-harness",
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions(match &self.harness.shared().sandbox {
                Some(sb) => format!(
                    "SANDBOX ACCOUNT (seed {}): sample data on this machine, not a real Klaviyo account; nothing reaches Klaviyo and no email or SMS is ever sent. {}",
                    sb.seed(),
                    self.surface.instructions()
                ),
                None => self.surface.instructions(),
            })
    }

    async fn list_tools(
        &self,
        _req: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(self.tools.to_vec()))
    }

    async fn call_tool(
        &self,
        req: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        if req.name == RECONCILE && self.harness.settings().audit_log.is_some() {
            return Ok(result(self.reconcile(&req).await).into());
        }
        match self
            .surface
            .dispatch(&req.name, req.arguments.clone().unwrap_or_default())
        {
            Dispatch::Answer(v) => Ok(result(v).into()),
            Dispatch::UnknownTool(why) => Err(McpError::invalid_params(why, None)),
            Dispatch::Run {
                tool,
                arguments,
                raw,
            } => self.run(tool, arguments, raw, &req, &ctx).await,
        }
    }
}

/// Serves MCP on stdin/stdout until the client closes the connection; calls in flight finish.
pub async fn serve_stdio(server: Server) -> anyhow::Result<()> {
    let calls = server.calls.clone();
    let running = server
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| anyhow::anyhow!("MCP initialization failed: {e}"))?;
    running.waiting().await?;
    calls.close();
    calls.wait().await;
    Ok(())
}
