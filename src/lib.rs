//! The Klaviyo connector component.
//!
//! Every export ends in [`call_tool`]: the typed functions (generated, `generated/exports.rs`)
//! collect their params record into [`Args`]; the `tools` interface parses JSON arguments.
//! [`call_tool`] resolves the operation, builds and validates the request with
//! `klaviyo_catalog::request`, sends it through wasi:http (`waki`), and interprets the answer
//! with `klaviyo_catalog::response`. Connection settings and the key placeholder come from the
//! host's `secrets` interface on every call — or, in the `env` build (feature `env`, package
//! `klaviyo-connector-env`), from the environment.
//!
//! The `http` build (feature `http`, package `klaviyo-connector-http`) exports none of these:
//! it exports `wasi:http/incoming-handler` and serves MCP itself ([`http`]), through the same
//! executor, with the user's policy checked on each built request before it is sent.

#[cfg(not(feature = "http"))]
#[allow(warnings)]
mod bindings {
    // The main build imports the host's `secrets` interface; the `env` build (package
    // `klaviyo-connector-env`) reads its settings from the environment instead.
    #[cfg(not(feature = "env"))]
    wit_bindgen::generate!({ path: "wit", world: "connector" });
    #[cfg(feature = "env")]
    wit_bindgen::generate!({ path: "wit", world: "connector-env" });
}
#[cfg(not(feature = "http"))]
mod generated {
    #[rustfmt::skip]
    pub mod exports;
}
#[cfg(feature = "http")]
mod http;

#[cfg(not(feature = "http"))]
use bindings::exports::klaviyo::connector::tools::{self, Access, RateLimit};
#[cfg(not(feature = "http"))]
use bindings::klaviyo::connector::types::{
    ApiError, HttpError, InvalidInput, KlaviyoError, Throttled,
};
use klaviyo_catalog::request::{self, Connection};
use klaviyo_catalog::response::{self, Failure};
use klaviyo_catalog::tools::Tool;
#[cfg(not(feature = "http"))]
use serde_json::Map;
use serde_json::Value;

pub struct Component;

// Export symbols only for the component build: their names (`klaviyo:connector/…`) are not
// valid native linker symbols, and the native build exists only for tests and tooling.
#[cfg(all(target_arch = "wasm32", not(feature = "http")))]
bindings::export!(Component with_types_in bindings);

/// Arguments of a typed call, by tool argument name, before validation.
#[cfg(not(feature = "http"))]
#[derive(Default)]
pub struct Args {
    map: Map<String, Value>,
    /// Indices of enum cases, resolved against the operation's parameter table.
    choices: Vec<(&'static str, usize)>,
    /// The body as JSON text (typed functions take it as a string).
    body: Option<String>,
}

#[cfg(not(feature = "http"))]
impl Args {
    pub fn text(&mut self, name: &str, v: Option<String>) {
        if let Some(v) = v {
            self.map.insert(name.into(), Value::String(v));
        }
    }
    pub fn list(&mut self, name: &str, v: Option<Vec<String>>) {
        if let Some(v) = v {
            self.map.insert(
                name.into(),
                Value::Array(v.into_iter().map(Value::String).collect()),
            );
        }
    }
    pub fn int(&mut self, name: &str, v: Option<u32>) {
        if let Some(v) = v {
            self.map.insert(name.into(), Value::from(v));
        }
    }
    pub fn choice(&mut self, name: &'static str, v: Option<usize>) {
        if let Some(v) = v {
            self.choices.push((name, v));
        }
    }
    pub fn body(&mut self, v: Option<String>) {
        self.body = v;
    }

    /// The JSON arguments object the tools interface would have received.
    fn into_json(mut self, tool: Tool) -> Result<Value, Failure> {
        for (name, index) in self.choices {
            let values = choice_values(tool, name);
            let v = values.get(index).ok_or_else(|| Failure::InvalidInput {
                field: name.into(),
                message: format!("enum case {index} is out of range"),
            })?;
            self.map.insert(name.into(), Value::String((*v).into()));
        }
        if let Some(b) = self.body {
            let v: Value = serde_json::from_str(&b).map_err(|e| Failure::InvalidInput {
                field: "body".into(),
                message: format!("is not valid JSON: {e}"),
            })?;
            self.map.insert("body".into(), v);
        }
        Ok(Value::Object(self.map))
    }
}

/// The enum values of argument `name` of a tool, in WIT case order.
#[cfg(not(feature = "http"))]
fn choice_values(tool: Tool, name: &str) -> Vec<&'static str> {
    match tool {
        Tool::Composite(c) if c.selector == name => c.choices.iter().map(|(v, _)| *v).collect(),
        _ => tool
            .operations()
            .iter()
            .flat_map(|op| op.params.iter())
            .find(|p| p.arg == name)
            .map(|p| match p.kind {
                klaviyo_catalog::Kind::Enum(v) => v.to_vec(),
                _ => Vec::new(),
            })
            .unwrap_or_default(),
    }
}

/// Entry point of every typed export: tool `index` of the catalog with typed arguments.
#[cfg(not(feature = "http"))]
pub fn call_tool(index: usize, args: Args) -> Result<String, ApiError> {
    let tool = Tool::by_index(index).expect("generated index is in range");
    let result = args.into_json(tool).and_then(|json| execute(tool, &json));
    result.map_err(to_wit)
}

#[cfg(not(feature = "env"))]
fn connection() -> Connection {
    let c = bindings::klaviyo::connector::secrets::get_connection();
    Connection {
        base_url: c.base_url,
        revision: c.revision,
        private_key: c.private_key_placeholder,
        public_key: c.public_key,
    }
}

/// The `env` build: settings from the environment; the key, when set, is in the component.
#[cfg(feature = "env")]
fn connection() -> Connection {
    let var = |k: &str| {
        std::env::var(k)
            .ok()
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    Connection {
        base_url: var("KLAVIYO_BASE_URL").unwrap_or_else(|| "https://a.klaviyo.com".into()),
        revision: var("KLAVIYO_REVISION")
            .unwrap_or_else(|| klaviyo_catalog::generated::REVISION.into()),
        private_key: var("KLAVIYO_API_KEY"),
        public_key: var("KLAVIYO_COMPANY_ID"),
    }
}

/// Builds, sends and interprets one tool call.
#[cfg(not(feature = "http"))]
fn execute(tool: Tool, args: &Value) -> Result<String, Failure> {
    execute_admitted(tool, args, |_| Ok(()))
}

/// [`execute`], with `admit` deciding on the built request before anything is sent (the
/// `http` build's policy); its refusal is the call's answer.
fn execute_admitted(
    tool: Tool,
    args: &Value,
    admit: impl FnOnce(&request::Request) -> Result<(), Failure>,
) -> Result<String, Failure> {
    let req = request::prepare(tool, args, &connection())?;
    admit(&req)?;
    send(&req)
}

fn send(req: &request::Request) -> Result<String, Failure> {
    use klaviyo_catalog::Method as M;
    let method = match req.method {
        M::Get => waki::Method::Get,
        M::Post => waki::Method::Post,
        M::Patch => waki::Method::Patch,
        M::Put => waki::Method::Put,
        M::Delete => waki::Method::Delete,
    };
    let mut builder = waki::Client::new().request(method, &req.url);
    for (k, v) in &req.headers {
        let name =
            waki::header::HeaderName::from_bytes(k.as_bytes()).map_err(|e| Failure::Transport {
                message: format!("bad header name {k}: {e}"),
            })?;
        builder = builder.headers([(name, v.as_str())]);
    }
    if let Some(b) = &req.body {
        builder = builder.body(b.clone());
    }
    let is_write = req.operation.access != klaviyo_catalog::Access::Read;
    let unknown = |e: String| {
        if is_write {
            Failure::OutcomeUnknown { message: format!(
                "the connection failed ({e}) after the {} request may have been sent: it may or may not have happened; check the current state with a read before retrying",
                req.operation.id
            ) }
        } else {
            Failure::Transport { message: e }
        }
    };
    let resp = builder.send().map_err(|e| unknown(e.to_string()))?;
    let status = resp.status_code();
    let headers = resp.headers().clone();
    let body = resp
        .body()
        .map_err(|e| unknown(format!("reading the response failed: {e}")))?;
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(String::from)
    };
    response::interpret(req.operation, status, &header, &body)
}

#[cfg(not(feature = "http"))]
fn to_wit(f: Failure) -> ApiError {
    match f {
        Failure::Http {
            status,
            errors,
            request_id,
            hint,
            body,
        } => ApiError::Http(HttpError {
            status,
            errors: errors
                .into_iter()
                .map(|e| KlaviyoError {
                    id: e.id,
                    code: e.code,
                    title: e.title,
                    detail: e.detail,
                    source_pointer: e.source_pointer,
                    source_parameter: e.source_parameter,
                })
                .collect(),
            request_id,
            hint,
            body,
        }),
        Failure::Throttled {
            retry_after_seconds,
            detail,
        } => ApiError::Throttled(Throttled {
            retry_after_seconds,
            detail,
        }),
        Failure::InvalidInput { field, message } => {
            ApiError::InvalidInput(InvalidInput { field, message })
        }
        Failure::Denied { message: m } => ApiError::Denied(m),
        Failure::NotConfigured { message: m } => ApiError::NotConfigured(m),
        Failure::UnknownTool { message: m } => ApiError::UnknownTool(m),
        Failure::Transport { message: m } => ApiError::Transport(m),
        Failure::Timeout { message: m } => ApiError::Timeout(m),
        Failure::OutcomeUnknown { message: m } => ApiError::OutcomeUnknown(m),
    }
}

#[cfg(not(feature = "http"))]
fn tool_record(t: Tool) -> tools::Tool {
    let rl = t.rate_limit();
    tools::Tool {
        name: t.name().into(),
        title: t.title().into(),
        description: t.description(),
        tag: t.tag().into(),
        access: match t.access() {
            klaviyo_catalog::Access::Read => Access::Read,
            klaviyo_catalog::Access::Write => Access::Write,
            klaviyo_catalog::Access::Destructive => Access::Destructive,
        },
        scopes: t.scopes().into_iter().map(String::from).collect(),
        rate_limit: RateLimit {
            burst_per_second: rl.burst_per_second,
            steady_per_minute: rl.steady_per_minute,
            daily: rl.daily,
        },
        aliases: t.aliases().into_iter().map(String::from).collect(),
        input_schema: t.input_schema().to_string(),
    }
}

#[cfg(not(feature = "http"))]
impl tools::Guest for Component {
    fn list_tools() -> Vec<tools::Tool> {
        Tool::all().map(tool_record).collect()
    }

    fn describe_tool(name: String) -> Option<tools::Tool> {
        Tool::resolve(&name).ok().map(tool_record)
    }

    fn call_tool(name: String, arguments: String) -> Result<String, ApiError> {
        let run = || -> Result<String, Failure> {
            let tool = Tool::resolve(&name)?;
            let args: Value = if arguments.trim().is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&arguments).map_err(|e| Failure::InvalidInput {
                    field: "arguments".into(),
                    message: format!("is not valid JSON: {e}"),
                })?
            };
            execute(tool, &args)
        };
        run().map_err(to_wit)
    }
}
