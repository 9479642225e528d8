//! Tools: every operation plus the composite actions, found by any accepted name, each with a
//! self-contained JSON Schema of its arguments.

use crate::generated::{COMPOSITES, NAMES, OPERATIONS, SCHEMA_DEFS_DEFLATED};
use crate::{Access, Composite, Error, Kind, Location, Operation, RateLimit};
use serde_json::{json, Map, Value};
use std::sync::OnceLock;

/// One callable action.
#[derive(Clone, Copy, Debug)]
pub enum Tool {
    Op(&'static Operation),
    Composite(&'static Composite),
}

pub use crate::names::normalize;

/// The operation with this exact operationId.
pub fn operation(id: &str) -> Option<&'static Operation> {
    OPERATIONS.iter().find(|o| o.id == id)
}

impl Tool {
    /// All tools: operations in table order, then composites.
    pub fn all() -> impl Iterator<Item = Tool> {
        (0..OPERATIONS.len() + COMPOSITES.len()).map(|i| Tool::by_index(i).unwrap())
    }

    /// Tool by index: `OPERATIONS[i]`, then `COMPOSITES[i - OPERATIONS.len()]`.
    pub fn by_index(i: usize) -> Option<Tool> {
        match OPERATIONS.get(i) {
            Some(op) => Some(Tool::Op(op)),
            None => COMPOSITES.get(i - OPERATIONS.len()).map(Tool::Composite),
        }
    }

    /// Finds a tool by operationId (snake or kebab case), Klaviyo alias, or promised title.
    pub fn resolve(name: &str) -> Result<Tool, Error> {
        let n = normalize(name);
        match NAMES.binary_search_by(|(k, _)| k.cmp(&n.as_str())) {
            Ok(i) => Ok(Tool::by_index(NAMES[i].1 as usize).unwrap()),
            Err(_) => {
                let words: Vec<&str> = n.split('_').filter(|w| w.len() > 2).collect();
                let mut close: Vec<&str> = Tool::all()
                    .map(|t| t.name())
                    .filter(|t| !words.is_empty() && words.iter().all(|w| t.contains(w)))
                    .take(5)
                    .collect();
                close.sort();
                let hint = if close.is_empty() {
                    "list the tools to see the names".to_string()
                } else {
                    format!("did you mean: {}?", close.join(", "))
                };
                Err(Error::UnknownTool(format!(
                    "no tool is named `{name}`; {hint}"
                )))
            }
        }
    }

    pub fn index(&self) -> usize {
        match self {
            Tool::Op(op) => OPERATIONS
                .iter()
                .position(|o| std::ptr::eq(o, *op))
                .unwrap(),
            Tool::Composite(c) => {
                OPERATIONS.len() + COMPOSITES.iter().position(|x| std::ptr::eq(x, *c)).unwrap()
            }
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Tool::Op(op) => op.id,
            Tool::Composite(c) => c.id,
        }
    }

    pub fn title(&self) -> &'static str {
        match self {
            Tool::Op(op) => op.title,
            Tool::Composite(c) => c.title,
        }
    }

    pub fn tag(&self) -> &'static str {
        match self {
            Tool::Op(op) => op.tag,
            Tool::Composite(c) => c.tag,
        }
    }

    pub fn access(&self) -> Access {
        match self {
            Tool::Op(op) => op.access,
            Tool::Composite(c) => c.access,
        }
    }

    /// The operations this tool may call.
    pub fn operations(&self) -> Vec<&'static Operation> {
        match self {
            Tool::Op(op) => vec![*op],
            Tool::Composite(c) => c
                .choices
                .iter()
                .map(|(_, id)| operation(id).unwrap())
                .collect(),
        }
    }

    pub fn description(&self) -> String {
        match self {
            Tool::Op(op) => op.description.to_string(),
            Tool::Composite(c) => {
                let mut s = format!(
                    "{}: one action over several endpoints, picked by `{}`:",
                    c.title, c.selector
                );
                for (v, id) in c.choices {
                    let op = operation(id).unwrap();
                    s.push_str(&format!(
                        "\n- `{v}`: {} ({} {})",
                        op.title,
                        op.method.as_str(),
                        op.path
                    ));
                }
                s
            }
        }
    }

    /// Union of the scopes of the tool's operations, sorted.
    pub fn scopes(&self) -> Vec<&'static str> {
        let mut v: Vec<&'static str> = self
            .operations()
            .iter()
            .flat_map(|o| o.scopes.iter().copied())
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// The strictest rate limit among the tool's operations.
    pub fn rate_limit(&self) -> RateLimit {
        self.operations()
            .iter()
            .map(|o| o.rate_limit)
            .min_by_key(|r| (r.burst_per_second, r.steady_per_minute))
            .unwrap()
    }

    /// Other accepted names (normalized): Klaviyo aliases and promised titles.
    pub fn aliases(&self) -> Vec<&'static str> {
        let i = self.index() as u16;
        NAMES
            .iter()
            .filter(|(n, t)| *t == i && *n != self.name())
            .map(|(n, _)| *n)
            .collect()
    }

    /// Self-contained JSON Schema of the arguments object.
    pub fn input_schema(&self) -> Value {
        let mut props = Map::new();
        let mut required: Vec<Value> = Vec::new();
        let mut bodies: Vec<Value> = Vec::new();
        let ops = self.operations();
        if let Tool::Composite(c) = self {
            let values: Vec<&str> = c.choices.iter().map(|(v, _)| *v).collect();
            props.insert(
                c.selector.into(),
                json!({"type": "string", "enum": values, "description": "Which relationship: picks the endpoint."}),
            );
            required.push(json!(c.selector));
        }
        for op in &ops {
            for p in op.params {
                if props.contains_key(p.arg) {
                    continue;
                }
                props.insert(p.arg.into(), param_schema(p));
                let in_all = ops
                    .iter()
                    .all(|o| o.params.iter().any(|q| q.arg == p.arg && q.required));
                if p.required && in_all && p.arg != "company_id" {
                    required.push(json!(p.arg));
                }
            }
            if let Some(b) = &op.body {
                let r = json!({"$ref": format!("#/$defs/{}", b.schema)});
                if !bodies.contains(&r) {
                    bodies.push(r);
                }
            }
        }
        if !bodies.is_empty() {
            let op = ops[0];
            let b = op.body.as_ref().unwrap();
            let mut body = if bodies.len() == 1 {
                bodies.pop().unwrap()
            } else {
                json!({"anyOf": bodies})
            };
            let desc = match b.encoding {
                crate::BodyEncoding::Multipart => "The upload: `file` is the image as base64 text; sent as multipart/form-data.".to_string(),
                crate::BodyEncoding::JsonApi => format!(
                    "JSON:API request body. `data.type`{} may be omitted (filled in); a bare attributes object is wrapped in `data.attributes`{}.",
                    if op.method == crate::Method::Patch { " and `data.id`" } else { "" },
                    if b.data_is_array { "; for relationships, a list of ids is accepted" } else { "" }
                ),
            };
            body.as_object_mut()
                .unwrap()
                .insert("description".into(), json!(desc));
            props.insert("body".into(), body);
            if ops
                .iter()
                .all(|o| o.body.as_ref().is_some_and(|b| b.required))
            {
                required.push(json!("body"));
            }
        }
        let mut schema = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": props,
            "required": required,
            "additionalProperties": false,
        });
        let mut defs = Map::new();
        collect_defs(&schema, &mut defs);
        if !defs.is_empty() {
            schema["$defs"] = Value::Object(defs);
        }
        schema
    }
}

fn param_schema(p: &crate::Param) -> Value {
    let mut s = match p.kind {
        Kind::String => json!({"type": "string", "minLength": 1}),
        Kind::Enum(values) => json!({"type": "string", "enum": values}),
        Kind::List(values) if values.is_empty() => {
            json!({"type": "array", "items": {"type": "string"}, "minItems": 1})
        }
        Kind::List(values) => {
            json!({"type": "array", "items": {"type": "string", "enum": values}, "minItems": 1, "uniqueItems": true})
        }
        Kind::Integer { min, max } => json!({"type": "integer", "minimum": min, "maximum": max}),
    };
    let mut desc = format!(
        "`{}` ({})",
        p.wire,
        match p.location {
            Location::Path => "path",
            Location::Query => "query",
            Location::Header => "header",
        }
    );
    if !p.description.is_empty() {
        desc = format!("{desc}: {}", p.description);
    }
    if p.arg == "company_id" {
        desc.push_str(" Defaults to the public key the host is configured with.");
    }
    s["description"] = json!(desc);
    s
}

/// The parsed `$defs` of all request bodies.
pub fn schema_defs() -> &'static Map<String, Value> {
    static DEFS: OnceLock<Map<String, Value>> = OnceLock::new();
    DEFS.get_or_init(|| {
        let text = miniz_oxide::inflate::decompress_to_vec(SCHEMA_DEFS_DEFLATED)
            .expect("build.rs deflated the schemas");
        let v: Value = serde_json::from_slice(&text).expect("generated schemas.json is valid JSON");
        match v {
            Value::Object(mut m) => match m.remove("$defs") {
                Some(Value::Object(d)) => d,
                _ => Map::new(),
            },
            _ => Map::new(),
        }
    })
}

/// Adds every definition reachable from `schema` to `out`.
fn collect_defs(schema: &Value, out: &mut Map<String, Value>) {
    let mut todo = vec![schema.clone()];
    while let Some(v) = todo.pop() {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    if let Some(name) = r.strip_prefix("#/$defs/") {
                        if !out.contains_key(name) {
                            if let Some(d) = schema_defs().get(name) {
                                out.insert(name.to_string(), d.clone());
                                todo.push(d.clone());
                            }
                        }
                    }
                }
                todo.extend(m.into_iter().map(|(_, v)| v));
            }
            Value::Array(a) => todo.extend(a),
            _ => {}
        }
    }
}
