//! Example arguments built from a tool's own JSON Schema: the required fields with plausible
//! values. Used by `describe` to show a call, by the per-operation tests and by conformance.

use crate::tools::{schema_defs, Tool};
use crate::{Kind, Location};
use serde_json::{json, Map, Value};

/// Example value for a JSON Schema (resolving `$ref` in the body `$defs`).
pub fn example_for_schema(schema: &Value) -> Value {
    example(schema, 0)
}

fn example(s: &Value, depth: usize) -> Value {
    if depth > 40 {
        return Value::Null;
    }
    let Some(m) = s.as_object() else {
        return Value::Null;
    };
    if let Some(r) = m.get("$ref").and_then(Value::as_str) {
        let def = schema_defs()
            .get(r.trim_start_matches("#/$defs/"))
            .cloned()
            .unwrap_or(Value::Null);
        return example(&def, depth + 1);
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(Value::Array(branches)) = m.get(key) {
            let b = branches
                .iter()
                .find(|b| b.get("type") != Some(&json!("null")))
                .unwrap_or(&branches[0]);
            return example(b, depth + 1);
        }
    }
    if let Some(Value::Array(values)) = m.get("enum") {
        return values
            .iter()
            .find(|v| !v.is_null())
            .cloned()
            .unwrap_or(Value::Null);
    }
    let ty = match m.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null"),
        _ if m.contains_key("properties") => "object",
        _ => "string",
    };
    match ty {
        "object" => {
            let mut out = Map::new();
            let props = m.get("properties").and_then(Value::as_object);
            let mut required: Vec<&str> = m
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            // A JSON:API relationship (`{"data": …}`) means nothing without its data, though
            // the spec leaves `data` optional.
            if required.is_empty() && props.is_some_and(|p| p.len() == 1 && p.contains_key("data"))
            {
                required.push("data");
            }
            for r in required {
                let ps = props.and_then(|p| p.get(r)).cloned().unwrap_or(json!({}));
                out.insert(r.to_string(), example(&ps, depth + 1));
            }
            Value::Object(out)
        }
        "array" => {
            let n = m
                .get("minItems")
                .and_then(Value::as_u64)
                .unwrap_or(1)
                .max(1);
            let item = example(m.get("items").unwrap_or(&json!({})), depth + 1);
            Value::Array(vec![item; n as usize])
        }
        "integer" => json!(m.get("minimum").and_then(Value::as_i64).unwrap_or(1)),
        "number" => json!(m.get("minimum").and_then(Value::as_f64).unwrap_or(1.5)),
        "boolean" => json!(true),
        "null" => Value::Null,
        _ => match m.get("format").and_then(Value::as_str) {
            Some("date-time") => json!("2026-01-01T00:00:00+00:00"),
            Some("date") => json!("2026-01-01"),
            Some("email") => json!("someone@example.com"),
            Some("uri") | Some("url") => json!("https://example.com/x"),
            Some("uuid") => json!("00000000-0000-4000-8000-000000000000"),
            _ if m.get("contentEncoding").is_some() => json!("iVBORw0KGgo="),
            _ => json!("example"),
        },
    }
}

/// Example arguments for a tool: required parameters, and with `optional` also one value for
/// each optional query feature (`fields[…]`, `include`, `sort`, `filter`, `page[…]`), and a
/// body with the required attributes.
///
/// For a composite, `choice` picks the relationship (default: the first).
pub fn example_args(tool: Tool, optional: bool) -> Value {
    example_args_for(tool, 0, optional)
}

/// [`example_args`] for the `choice`-th relationship of a composite (ignored for operations).
pub fn example_args_for(tool: Tool, choice: usize, optional: bool) -> Value {
    let mut out = Map::new();
    let ops = tool.operations();
    let op = ops[choice.min(ops.len() - 1)];
    if let Tool::Composite(c) = tool {
        out.insert(
            c.selector.into(),
            json!(c.choices[choice.min(ops.len() - 1)].0),
        );
    }
    for p in op.params {
        if !p.required && !optional {
            continue;
        }
        if p.arg == "company_id" {
            continue; // filled from the host's public key
        }
        let v = match p.kind {
            Kind::String if p.location == Location::Path => {
                json!(format!("{}-1", p.arg.replace('_', "-")))
            }
            Kind::String if p.arg == "filter" => json!(example_filter(p.description)),
            Kind::String if p.arg.starts_with("page") => json!("bmV4dC1wYWdl"),
            Kind::String if p.arg == "statistics" => json!("average_rating"),
            Kind::String if p.location == Location::Header => {
                json!("and(equals(lat,40.7),equals(lng,-74.0))")
            }
            Kind::String => json!("example"),
            Kind::Enum(v) => json!(v[0]),
            Kind::List(v) if v.is_empty() => json!(["example"]),
            Kind::List(v) => json!([v[0]]),
            Kind::Integer { min, max } => json!(max.min(min.max(5))),
        };
        out.insert(p.arg.into(), v);
    }
    if let Some(b) = &op.body {
        if b.required || optional {
            if b.encoding == crate::BodyEncoding::Multipart {
                // A 1x1 transparent GIF.
                out.insert(
                    "body".into(),
                    json!({"file": "R0lGODlhAQABAAAAACw=", "name": "pixel"}),
                );
            } else {
                let mut full = example(&json!({"$ref": format!("#/$defs/{}", b.schema)}), 0);
                // PATCH bodies name the resource of the path.
                if let (Some(id), Some(data)) = (out.get("id").cloned(), full.get_mut("data")) {
                    if data.get("id").is_some() {
                        data["id"] = id;
                    }
                }
                out.insert("body".into(), full);
            }
        }
    }
    Value::Object(out)
}

/// A filter built from the spec's "Allowed field(s)/operator(s)" text: the first field with an
/// `equals` operator (or its first operator) and a value of a plausible type.
fn example_filter(description: &str) -> String {
    let mut first: Option<(String, String)> = None;
    for line in description.lines() {
        let Some(rest) = line.strip_prefix('`') else {
            continue;
        };
        let Some((field, ops)) = rest.split_once("`:") else {
            continue;
        };
        let ops: Vec<&str> = ops
            .split(',')
            .map(|o| o.trim().trim_matches('`'))
            .filter(|o| !o.is_empty())
            .collect();
        if let Some(op) = ops.iter().find(|o| **o == "equals").or(ops.first()) {
            let candidate = (field.to_string(), op.to_string());
            if op == &"equals" {
                first = Some(candidate);
                break;
            }
            first.get_or_insert(candidate);
        }
    }
    let (field, op) = first.unwrap_or_else(|| ("id".into(), "equals".into()));
    let value = if field.ends_with("_at")
        || field.contains("date")
        || field == "datetime"
        || field == "created"
        || field == "updated"
        || field == "timestamp"
    {
        "2026-01-01T00:00:00Z".to_string()
    } else if field == "messages.channel" {
        // A channel Klaviyo knows (listing campaigns requires a channel filter).
        "'email'".to_string()
    } else if op == "any" {
        "[\"example\"]".to_string()
    } else {
        "'example'".to_string()
    };
    format!("{op}({field},{value})")
}
