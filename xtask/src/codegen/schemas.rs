//! Stage 3, `schemas`: the component schemas reachable from request bodies, converted from
//! OpenAPI 3.0 to JSON Schema `$defs` (`crates/catalog/src/generated/schemas.json`), which the
//! catalog validates bodies against and `describe` shows.
//!
//! Contract: every schema a body reaches is present (a dangling `$ref` is an error); the output
//! is one definition per line, sorted, so a revision's diff reads schema by schema.

use super::spec::Op;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

pub fn defs(spec: &Value, ops: &[Op]) -> Result<String, String> {
    let schemas = spec["components"]["schemas"]
        .as_object()
        .ok_or("spec has no components.schemas")?;
    let mut todo: Vec<String> = ops
        .iter()
        .filter_map(|o| o.body.as_ref().map(|b| b.schema.clone()))
        .collect();
    let mut defs = BTreeMap::new();
    while let Some(name) = todo.pop() {
        if defs.contains_key(&name) {
            continue;
        }
        let s = schemas
            .get(&name)
            .ok_or(format!("schema {name} is referenced but missing"))?;
        let converted = to_json_schema(s, &mut todo);
        defs.insert(name, converted);
    }
    Ok(super::json_lines("$defs", defs.iter()))
}

/// OpenAPI 3.0 schema -> JSON Schema: `$ref`s point into `$defs`, `nullable` becomes a `null`
/// type, examples are dropped, binary strings become base64 text, and objects that declare their
/// properties reject unknown ones (so the tool schema says exactly what is validated).
fn to_json_schema(s: &Value, refs: &mut Vec<String>) -> Value {
    match s {
        Value::Object(m) => {
            if let Some(r) = m.get("$ref").and_then(Value::as_str) {
                let name = r.trim_start_matches("#/components/schemas/").to_string();
                refs.push(name.clone());
                return json!({ "$ref": format!("#/$defs/{name}") });
            }
            let mut out = Map::new();
            for (k, v) in m {
                match k.as_str() {
                    "example" | "nullable" | "readOnly" | "writeOnly" => {}
                    "properties" => {
                        let props = v.as_object().map(|p| {
                            p.iter()
                                .map(|(pk, pv)| (pk.clone(), to_json_schema(pv, refs)))
                                .collect()
                        });
                        out.insert(k.clone(), Value::Object(props.unwrap_or_default()));
                    }
                    "format" if v == "binary" => {
                        out.insert("contentEncoding".into(), json!("base64"));
                    }
                    _ => {
                        out.insert(k.clone(), to_json_schema(v, refs));
                    }
                }
            }
            if out.contains_key("properties") && !out.contains_key("additionalProperties") {
                out.insert("additionalProperties".into(), Value::Bool(false));
            }
            if m.get("nullable") == Some(&Value::Bool(true)) {
                match out.get("type").cloned() {
                    Some(Value::String(t)) => {
                        out.insert("type".into(), json!([t, "null"]));
                        if let Some(Value::Array(e)) = out.get_mut("enum") {
                            e.push(Value::Null);
                        }
                    }
                    _ => {
                        let desc = out.remove("description");
                        let mut wrapped = Map::new();
                        if let Some(d) = desc {
                            wrapped.insert("description".into(), d);
                        }
                        wrapped.insert(
                            "anyOf".into(),
                            json!([Value::Object(out), {"type": "null"}]),
                        );
                        return Value::Object(wrapped);
                    }
                }
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(|v| to_json_schema(v, refs)).collect()),
        other => other.clone(),
    }
}
