//! `serve`: the component's tools over the Model Context Protocol (stdio, rmcp). Every call goes
//! through the same runtime, egress guard, policy, pacing and audit as the CLI.
//!
//! Tool selection keeps the agent's context small: `discovery` (default) lists three
//! meta-tools (search → describe → call) that reach every action; `all` lists every action;
//! `--toolsets` limits to Klaviyo tags and `--read-only` to read actions, in either mode.

use crate::runtime::ToolInfo;
use crate::{Confirm, Harness};
use klaviyo_catalog::response::Failure;
use klaviyo_catalog::tools::normalize;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    JsonObject, ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
    ToolAnnotations,
};
use rmcp::service::{ElicitationError, ElicitationMode, RequestContext};
use rmcp::{ErrorData as McpError, Peer, RoleServer, ServerHandler, ServiceExt};
use serde_json::{json, Value};
use std::sync::Arc;

/// Which tools the server lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Three meta-tools: `search_actions`, `describe_action`, `call_action`.
    Discovery,
    /// One MCP tool per action.
    All,
}

/// Which actions are reachable (in both modes).
#[derive(Clone, Debug)]
pub struct Selection {
    pub mode: Mode,
    /// Klaviyo tags (normalized), e.g. `profiles`, `lists`; `None` = all.
    pub toolsets: Option<Vec<String>>,
    /// Only read actions.
    pub read_only: bool,
}

impl Selection {
    pub fn allows(&self, t: &ToolInfo) -> bool {
        (!self.read_only || t.access == "read")
            && self
                .toolsets
                .as_ref()
                .is_none_or(|sets| sets.iter().any(|s| *s == normalize(&t.tag)))
    }
}

#[derive(Clone)]
pub struct Server {
    harness: Arc<Harness>,
    selection: Selection,
    /// The selected tools, listed from the component on first need (so the discovery tool
    /// list is answered without waiting for it).
    tools: Arc<tokio::sync::OnceCell<Vec<ToolInfo>>>,
}

const RAW: &str = "raw_response";

impl Server {
    /// A server for `selection`; unknown toolsets are refused up front.
    pub async fn new(harness: Arc<Harness>, selection: Selection) -> anyhow::Result<Server> {
        if let Some(sets) = &selection.toolsets {
            let mut tags: Vec<String> = klaviyo_catalog::generated::OPERATIONS
                .iter()
                .map(|o| normalize(o.tag))
                .collect();
            tags.sort();
            tags.dedup();
            if let Some(bad) = sets.iter().find(|s| !tags.contains(s)) {
                anyhow::bail!("unknown toolset `{bad}`; known: {}", tags.join(", "));
            }
        }
        Ok(Server {
            harness,
            selection,
            tools: Default::default(),
        })
    }

    /// The selected tools, as the component lists them.
    async fn tools(&self) -> Result<&[ToolInfo], McpError> {
        self.tools
            .get_or_try_init(|| async {
                let all = self.harness.list_tools().await.map_err(|e| {
                    McpError::internal_error(
                        format!("the component could not list its tools: {e:#}"),
                        None,
                    )
                })?;
                Ok(all
                    .iter()
                    .filter(|t| self.selection.allows(t))
                    .cloned()
                    .collect())
            })
            .await
            .map(Vec::as_slice)
    }

    /// The `tools/list` answer for the selection.
    pub async fn tool_list(&self) -> Result<Vec<Tool>, McpError> {
        Ok(match self.selection.mode {
            Mode::All => self.tools().await?.iter().map(mcp_tool).collect(),
            Mode::Discovery => meta_tools(),
        })
    }

    async fn find(&self, name: &str) -> Result<Option<&ToolInfo>, McpError> {
        let Ok(tool) = klaviyo_catalog::tools::Tool::resolve(name) else {
            return Ok(None);
        };
        Ok(self.tools().await?.iter().find(|t| t.name == tool.name()))
    }

    /// Ranked search over names, titles, aliases and tags.
    pub async fn search(&self, query: &str, limit: usize) -> Result<Vec<Value>, McpError> {
        let q = normalize(query);
        let words: Vec<&str> = q.split('_').filter(|w| !w.is_empty()).collect();
        let mut scored: Vec<(i64, &ToolInfo)> = self
            .tools()
            .await?
            .iter()
            .filter_map(|t| {
                let title = normalize(&t.title);
                let exact = q == t.name || q == title || t.aliases.iter().any(|a| *a == q);
                let hay_words: Vec<String> = [t.name.clone(), title.clone(), normalize(&t.tag)]
                    .into_iter()
                    .chain(t.aliases.iter().cloned())
                    .flat_map(|s| s.split('_').map(String::from).collect::<Vec<_>>())
                    .collect();
                let hits = words
                    .iter()
                    .filter(|w| {
                        hay_words
                            .iter()
                            .any(|h| h == *w || (w.len() > 3 && h.starts_with(*w)))
                    })
                    .count();
                if !exact && hits == 0 {
                    return None;
                }
                let all = hits == words.len();
                let score =
                    if exact { 1000 } else { 0 } + if all { 100 } else { 0 } + 10 * hits as i64
                        - t.name.len() as i64 / 10;
                Some((score, t))
            })
            .collect();
        scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.name.cmp(&b.1.name)));
        Ok(scored
            .into_iter()
            .take(limit)
            .map(|(_, t)| json!({"name": t.name, "title": t.title, "tag": t.tag, "access": t.access, "summary": summary(&t.description)}))
            .collect())
    }

    async fn run(
        &self,
        name: &str,
        mut args: JsonObject,
        peer: &Peer<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let Some(tool) = self.find(name).await? else {
            return Err(McpError::invalid_params(
                format!(
                    "unknown tool `{name}`{}",
                    if self.selection.mode == Mode::Discovery {
                        "; use search_actions to find an action"
                    } else {
                        ""
                    }
                ),
                None,
            ));
        };
        let raw = match args.remove(RAW) {
            None => false,
            Some(Value::Bool(b)) => b,
            Some(other) => {
                return Ok(tool_error(format!(
                    "Invalid argument `{RAW}`: must be true or false, got {other}"
                )))
            }
        };
        let confirm: Arc<dyn Confirm> = Arc::new(Elicit(peer.clone()));
        let out = self
            .harness
            .call_with(&tool.name, &Value::Object(args).to_string(), Some(confirm))
            .await;
        Ok(match out.result {
            Ok(body) if raw || body.trim().is_empty() => text_result(if body.trim().is_empty() {
                "done (no content)".into()
            } else {
                body
            }),
            Ok(body) => text_result(klaviyo_catalog::response::compact(&body).to_string()),
            Err(f) => tool_error(explain(&tool.name, &f)),
        })
    }
}

fn text_result(text: String) -> CallToolResult {
    CallToolResult::success(vec![ContentBlock::text(text)])
}

fn tool_error(text: String) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(text)])
}

/// An error an agent can act on: what failed, and what to change.
fn explain(tool: &str, f: &Failure) -> String {
    match f {
        Failure::InvalidInput { field, message } => {
            format!("Invalid argument `{field}`: {message}. Nothing was sent; fix the argument (describe_action `{tool}` shows the schema) and call again.")
        }
        Failure::Http {
            status,
            errors,
            hint,
            request_id,
            body,
        } => {
            let mut s = format!("Klaviyo answered HTTP {status} to `{tool}`.");
            for e in errors {
                s.push_str(&format!(
                    "\n- {}: {}",
                    e.code,
                    if e.detail.is_empty() {
                        &e.title
                    } else {
                        &e.detail
                    }
                ));
                if let Some(p) = e
                    .source_pointer
                    .as_deref()
                    .or(e.source_parameter.as_deref())
                {
                    s.push_str(&format!(" (source: {p})"));
                }
            }
            if errors.is_empty() {
                if let Some(b) = body {
                    s.push_str(&format!("\n{}", b.chars().take(500).collect::<String>()));
                }
            }
            match (hint, status) {
                (Some(h), _) => s.push_str(&format!("\nHint: {h}.")),
                (None, 400 | 422) => {
                    s.push_str("\nHint: change the argument named in `source` and call again.")
                }
                (None, 404) => s.push_str("\nHint: check the id; list the resources to find it."),
                _ => {}
            }
            if let Some(r) = request_id {
                s.push_str(&format!("\nKlaviyo request id: {r}"));
            }
            s
        }
        Failure::Throttled {
            retry_after_seconds,
            detail,
        } => match retry_after_seconds {
            Some(n) => format!("Throttled: {detail}. Retry `{tool}` after {n} s."),
            None => format!("Throttled: {detail}. Retry `{tool}` later."),
        },
        Failure::Denied(m) => format!("Not allowed by the user's policy: {m}"),
        other => other.to_string(),
    }
}

fn summary(description: &str) -> String {
    let first = description.split("\n\n").next().unwrap_or("").trim();
    let mut s: String = first.chars().take(200).collect();
    if first.chars().count() > 200 {
        s.push('…');
    }
    s
}

fn mcp_tool(t: &ToolInfo) -> Tool {
    let mut schema = match &t.input_schema {
        Value::Object(m) => m.clone(),
        _ => JsonObject::new(),
    };
    schema.remove("$schema");
    if let Some(Value::Object(props)) = schema.get_mut("properties") {
        props.insert(RAW.into(), json!({"type": "boolean", "description": "Return Klaviyo's raw JSON:API response instead of the compact form."}));
    }
    let annotations = ToolAnnotations::with_title(t.title.clone())
        .read_only(t.access == "read")
        .destructive(t.access == "destructive");
    Tool::new(t.name.clone(), t.description.clone(), schema)
        .with_title(t.title.clone())
        .with_annotations(annotations)
}

fn meta_tools() -> Vec<Tool> {
    let obj = |v: Value| match v {
        Value::Object(m) => m,
        _ => JsonObject::new(),
    };
    vec![
        Tool::new(
            "search_actions",
            "Find Klaviyo actions (profiles, lists, segments, campaigns, flows, catalogs, coupons, events, metrics, reports, tags, templates, images, forms, webhooks, …) by words. Returns names, titles, access class and a one-line summary. Then use describe_action for the arguments and call_action to run it.",
            obj(json!({"type": "object", "properties": {
                "query": {"type": "string", "description": "Words, e.g. `add profile to list` or `campaign report`."},
                "limit": {"type": "integer", "minimum": 1, "maximum": 50, "description": "Most results (default 10)."}
            }, "required": ["query"], "additionalProperties": false})),
        )
        .with_title("Search Klaviyo actions")
        .with_annotations(ToolAnnotations::with_title("Search Klaviyo actions").read_only(true).destructive(false)),
        Tool::new(
            "describe_action",
            "Describe one Klaviyo action: what it does, its access class (read/write/destructive), scopes, rate limits, the JSON Schema of its arguments and an example.",
            obj(json!({"type": "object", "properties": {
                "name": {"type": "string", "description": "The action's name (from search_actions) or title."}
            }, "required": ["name"], "additionalProperties": false})),
        )
        .with_title("Describe a Klaviyo action")
        .with_annotations(ToolAnnotations::with_title("Describe a Klaviyo action").read_only(true).destructive(false)),
        Tool::new(
            "call_action",
            "Run one Klaviyo action with its arguments (see describe_action). Reads return a compact form (id, type, attributes, next_cursor); writes follow the user's policy and may need their approval.",
            obj(json!({"type": "object", "properties": {
                "name": {"type": "string", "description": "The action's name."},
                "arguments": {"type": "object", "description": "The action's arguments, as describe_action shows."},
                "raw_response": {"type": "boolean", "description": "Return Klaviyo's raw JSON:API response."}
            }, "required": ["name"], "additionalProperties": false})),
        )
        .with_title("Run a Klaviyo action")
        .with_annotations(ToolAnnotations::with_title("Run a Klaviyo action").read_only(false).destructive(true)),
    ]
}

/// Asks the MCP client's user through elicitation; refuses when the client cannot ask.
struct Elicit(Peer<RoleServer>);

#[derive(Debug, serde::Deserialize, rmcp::schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
struct Approval {
    /// Allow this request?
    approve: bool,
}
rmcp::elicit_safe!(Approval);

impl Confirm for Elicit {
    fn confirm(&self, prompt: String) -> crate::confirm::Answer {
        let peer = self.0.clone();
        Box::pin(async move {
            if !peer
                .supported_elicitation_modes()
                .contains(&ElicitationMode::Form)
            {
                return Err(
                    "the MCP client cannot ask the user (it does not support elicitation)"
                        .to_string(),
                );
            }
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
        let mode = match self.selection.mode {
            Mode::Discovery => "Use search_actions to find a Klaviyo action, describe_action to see its arguments, call_action to run it.",
            Mode::All => "Each tool is one Klaviyo action.",
        };
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("klaviyo-harness", env!("CARGO_PKG_VERSION")))
            .with_instructions(format!(
                "Klaviyo (email/SMS marketing) for this account. {mode} Writes follow the user's policy (read-only by default) and may need their approval."
            ))
    }

    async fn list_tools(
        &self,
        _req: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(self.tool_list().await?))
    }

    async fn call_tool(
        &self,
        req: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let mut args = req.arguments.clone().unwrap_or_default();
        if self.selection.mode == Mode::All {
            return Ok(self.run(&req.name, args, &ctx.peer).await?.into());
        }
        let text =
            |args: &JsonObject, k: &str| args.get(k).and_then(Value::as_str).map(String::from);
        let result = match req.name.as_ref() {
            "search_actions" => {
                let Some(q) = text(&args, "query") else { return Ok(tool_error("Invalid argument `query`: required, a string of words".into()).into()) };
                let limit = match args.get("limit") {
                    None => 10,
                    Some(v) => match v.as_u64() {
                        Some(n @ 1..=50) => n as usize,
                        _ => return Ok(tool_error(format!("Invalid argument `limit`: must be an integer from 1 to 50, got {v}")).into()),
                    },
                };
                text_result(Value::Array(self.search(&q, limit).await?).to_string())
            }
            "describe_action" => {
                let Some(n) = text(&args, "name") else { return Ok(tool_error("Invalid argument `name`: required, an action name".into()).into()) };
                match self.find(&n).await? {
                    Some(t) => {
                        let example = klaviyo_catalog::tools::Tool::resolve(&t.name).map(|tool| klaviyo_catalog::example::example_args(tool, false)).unwrap_or(Value::Null);
                        text_result(
                            json!({"name": t.name, "title": t.title, "tag": t.tag, "access": t.access, "description": t.description.clone(),
                                   "scopes": t.scopes, "rate_limit": t.rate_limit, "arguments": t.input_schema, "example_arguments": example})
                            .to_string(),
                        )
                    }
                    None => tool_error(format!("No action named `{n}` is available here; use search_actions to find one.")),
                }
            }
            "call_action" => {
                let Some(n) = text(&args, "name") else { return Ok(tool_error("Invalid argument `name`: required, an action name".into()).into()) };
                let mut inner = match args.remove("arguments") {
                    None | Some(Value::Null) => JsonObject::new(),
                    Some(Value::Object(m)) => m,
                    Some(other) => return Ok(tool_error(format!("Invalid argument `arguments`: must be an object, got {other}")).into()),
                };
                if let Some(r) = args.remove(RAW) {
                    inner.insert(RAW.into(), r);
                }
                if self.find(&n).await?.is_none() {
                    tool_error(format!("No action named `{n}` is available here; use search_actions to find one."))
                } else {
                    self.run(&n, inner, &ctx.peer).await?
                }
            }
            other => return Err(McpError::invalid_params(format!("unknown tool `{other}`: this server has search_actions, describe_action and call_action"), None)),
        };
        Ok(result.into())
    }
}

/// Serves MCP on stdin/stdout until the client closes the connection.
pub async fn serve_stdio(server: Server) -> anyhow::Result<()> {
    let running = server
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| anyhow::anyhow!("MCP initialization failed: {e}"))?;
    running.waiting().await?;
    Ok(())
}
