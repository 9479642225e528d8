//! Stage 3b, `responses`: what each operation answers on success, as the sandbox account needs
//! it to answer in the spec's exact shape (`crates/sandbox/src/generated/shapes.json`).
//!
//! For every operation: the success status (the first 2xx the spec lists) and, when the answer
//! is a JSON:API document, the shape of its `data` — one resource or a list of them, and for
//! each resource its `type`, its attribute names, the *required* attributes with a value of
//! the right type (an enum's first value, `null` where nullable, `""`, `0`, `false`, `[]`, or an
//! object of its own required members), its relationships (name → target type, `*` for
//! to-many) and whether `links` is required. `allOf` is merged, `oneOf` gives alternatives.
//!
//! Contract: deterministic (sorted keys, one operation per line); an operation without a success
//! response is an error naming it. Nothing of the spec's prose is copied: names and types only.

use super::spec::{deref, strings, Op};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

pub fn shapes(spec: &Value, ops: &[Op]) -> Result<String, String> {
    let mut out = BTreeMap::new();
    for o in ops {
        let method = o.method.as_str().to_ascii_lowercase();
        let item = &spec["paths"][&o.path][&method];
        let responses = item["responses"]
            .as_object()
            .ok_or(format!("{}: no responses", o.id))?;
        let Some((code, resp)) = responses.iter().find(|(c, _)| c.starts_with('2')) else {
            return Err(format!("{}: no success response", o.id));
        };
        let status: u16 = code
            .parse()
            .map_err(|_| format!("{}: success status `{code}` is not a number", o.id))?;
        let resp = deref(spec, resp);
        let schema = resp["content"]
            .as_object()
            .and_then(|c| c.values().next())
            .map(|m| m["schema"].clone());
        let mut shape = Map::new();
        shape.insert("status".into(), json!(status));
        if let Some(schema) = schema {
            let doc = flat(spec, &schema);
            match doc["properties"].get("data") {
                None => {
                    shape.insert("document".into(), default_of(spec, &doc));
                }
                Some(data) => {
                    let (many, item) = one_or_many(spec, data);
                    shape.insert("many".into(), json!(many));
                    if item["nullable"] == true {
                        shape.insert("nullable".into(), json!(true));
                    }
                    let alternatives: Vec<Value> = match item.get("oneOf").and_then(Value::as_array)
                    {
                        Some(alts) => alts
                            .iter()
                            .map(|a| resource(spec, &flat(spec, a)))
                            .collect(),
                        None => vec![resource(spec, &item)],
                    };
                    shape.insert("data".into(), Value::Array(alternatives));
                }
            }
        }
        out.insert(o.id.clone(), Value::Object(shape));
    }
    Ok(super::json_lines("operations", out.iter()))
}

/// A `data` schema as (whether it is an array, the schema of one item).
fn one_or_many(spec: &Value, data: &Value) -> (bool, Value) {
    let data = flat(spec, data);
    if data["type"] == "array" {
        (true, flat(spec, &data["items"]))
    } else {
        (false, data)
    }
}

/// One resource object's shape.
fn resource(spec: &Value, r: &Value) -> Value {
    let props = &r["properties"];
    let required = strings(&r["required"]);
    let ty = enum_first(spec, &props["type"]);
    let mut out = Map::new();
    out.insert("type".into(), ty.map_or(Value::Null, Value::String));
    if let Some(attrs) = props.get("attributes") {
        let a = flat(spec, attrs);
        let names: Vec<&String> = a["properties"]
            .as_object()
            .map(|m| m.keys().collect())
            .unwrap_or_default();
        let mut req = Map::new();
        for name in strings(&a["required"]) {
            let v = &a["properties"][&name];
            req.insert(name.clone(), default_of(spec, v));
        }
        out.insert("attrs".into(), json!(names));
        out.insert("required".into(), Value::Object(req));
    }
    if let Some(rels) = props.get("relationships") {
        let rels = flat(spec, rels);
        let mut m = Map::new();
        for (name, rel) in rels["properties"].as_object().into_iter().flatten() {
            let rel = flat(spec, rel);
            let (many, item) = one_or_many(spec, &rel["properties"]["data"]);
            let ty = enum_first(spec, &item["properties"]["type"]).unwrap_or_default();
            m.insert(
                name.clone(),
                json!(if many { format!("{ty}*") } else { ty }),
            );
        }
        out.insert("rels".into(), Value::Object(m));
    }
    out.insert("links".into(), json!(required.iter().any(|r| r == "links")));
    Value::Object(out)
}

fn enum_first(spec: &Value, s: &Value) -> Option<String> {
    let s = flat(spec, s);
    s["enum"].get(0)?.as_str().map(String::from)
}

/// A value of the schema's type, as small as it may be.
fn default_of(spec: &Value, s: &Value) -> Value {
    let s = flat(spec, s);
    if s["nullable"] == true {
        return Value::Null;
    }
    if let Some(first) = s["enum"].get(0) {
        return first.clone();
    }
    if let Some(alt) = s.get("oneOf").or(s.get("anyOf")).and_then(|a| a.get(0)) {
        return default_of(spec, alt);
    }
    match s["type"].as_str() {
        Some("string") => match s["format"].as_str() {
            Some("date-time") => json!("2026-01-01T00:00:00+00:00"),
            Some("date") => json!("2026-01-01"),
            _ => json!(""),
        },
        Some("integer") | Some("number") => json!(0),
        Some("boolean") => json!(false),
        Some("array") => json!([]),
        Some("object") | None if s.get("properties").is_some() => {
            let mut m = Map::new();
            for name in strings(&s["required"]) {
                m.insert(name.clone(), default_of(spec, &s["properties"][&name]));
            }
            Value::Object(m)
        }
        Some("object") => json!({}),
        _ => Value::Null,
    }
}

/// The schema with `$ref`s followed and `allOf` merged into one object schema (properties
/// merged member by member, `required` joined).
fn flat(spec: &Value, s: &Value) -> Value {
    let s = deref(spec, s);
    let Some(all) = s.get("allOf").and_then(Value::as_array) else {
        return s;
    };
    let mut out = Map::new();
    for part in all {
        let part = flat(spec, part);
        merge_into(spec, &mut out, part);
    }
    for (k, v) in s.as_object().into_iter().flatten() {
        if k != "allOf" {
            out.entry(k.clone()).or_insert(v.clone());
        }
    }
    Value::Object(out)
}

fn merge_into(spec: &Value, out: &mut Map<String, Value>, part: Value) {
    let Value::Object(part) = part else { return };
    for (k, v) in part {
        match k.as_str() {
            "properties" => {
                let props = out
                    .entry("properties")
                    .or_insert_with(|| json!({}))
                    .as_object_mut()
                    .expect("properties is an object");
                for (name, p) in v.as_object().into_iter().flatten() {
                    let p = flat(spec, p);
                    match props.remove(name) {
                        Some(prev)
                            if prev.get("properties").is_some()
                                || p.get("properties").is_some() =>
                        {
                            let mut m = Map::new();
                            merge_into(spec, &mut m, prev);
                            merge_into(spec, &mut m, p);
                            props.insert(name.clone(), Value::Object(m));
                        }
                        _ => {
                            props.insert(name.clone(), p);
                        }
                    }
                }
            }
            "required" => {
                let req = out
                    .entry("required")
                    .or_insert_with(|| json!([]))
                    .as_array_mut()
                    .expect("required is an array");
                for r in v.as_array().into_iter().flatten() {
                    if !req.contains(r) {
                        req.push(r.clone());
                    }
                }
            }
            _ => {
                out.insert(k, v);
            }
        }
    }
}
