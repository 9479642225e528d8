//! Stage 1, `spec`: Klaviyo's OpenAPI document → the operations, in the catalog's own model
//! types (`Method`, `Location`, `Access`, `RateLimit`; `crates/catalog/src/model.rs`), with owned
//! text. Everything the later stages need is read here; they never look at JSON again, except
//! `schemas`, which converts the body schemas themselves.
//!
//! Contract: operations sorted by WIT interface then id; operation ids unique; argument names
//! unique per operation; every path parameter appears in its path. A spec that breaks one of
//! these is an error naming the operation, never a silently different table.

use super::model::{Access, BodyEncoding, Location, Method, RateLimit};
use super::normalize;
use serde_json::Value;
use std::collections::BTreeSet;

/// A parameter's value type (the catalog's `Kind`, with owned values).
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    Str,
    Enum(Vec<String>),
    List(Vec<String>),
    Int(i64, i64),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    pub wire: String,
    pub arg: String,
    pub location: Location,
    pub required: bool,
    pub kind: Kind,
    pub description: String,
}

#[derive(Debug, PartialEq)]
pub struct Body {
    pub encoding: BodyEncoding,
    pub required: bool,
    /// Name of the request body's schema in `components.schemas`.
    pub schema: String,
    pub data_type: Option<String>,
    pub data_is_array: bool,
}

#[derive(Debug, PartialEq)]
pub struct Op {
    pub id: String,
    pub tag: String,
    pub title: String,
    pub description: String,
    pub method: Method,
    pub path: String,
    pub params: Vec<Param>,
    pub body: Option<Body>,
    pub scopes: Vec<String>,
    pub rate: RateLimit,
    pub aliases: Vec<String>,
    pub access: Access,
    /// A client (public key) endpoint: the spec's `security: []`.
    pub client: bool,
}

/// The spec as the generator uses it.
pub struct Spec {
    pub revision: String,
    pub ops: Vec<Op>,
    /// The whole document, for the `schemas` stage.
    pub doc: Value,
}

pub fn parse(text: &str) -> Result<Spec, String> {
    let doc: Value =
        serde_json::from_str(text).map_err(|e| format!("the spec is not JSON: {e}"))?;
    let revision = doc["info"]["version"]
        .as_str()
        .ok_or("spec has no info.version")?
        .to_string();
    let ops = collect_ops(&doc)?;
    Ok(Spec { revision, ops, doc })
}

fn collect_ops(spec: &Value) -> Result<Vec<Op>, String> {
    let mut ops = Vec::new();
    let paths = spec["paths"].as_object().ok_or("spec has no paths")?;
    for (path, item) in paths {
        for (method, o) in item.as_object().ok_or("path item is not an object")? {
            // Path-level keys (`parameters`, `summary`) and methods the API does not use.
            let Some(method) = Method::parse(method) else {
                continue;
            };
            ops.push(op(spec, path, method, o)?);
        }
    }
    ops.sort_by(|a, b| {
        (super::emit_wit::tag_interface(&a.tag), &a.id)
            .cmp(&(super::emit_wit::tag_interface(&b.tag), &b.id))
    });
    let mut seen = BTreeSet::new();
    for o in &ops {
        if !seen.insert(o.id.clone()) {
            return Err(format!("duplicate operationId {}", o.id));
        }
    }
    Ok(ops)
}

pub(crate) fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn param(spec: &Value, p: &Value, ctx: &dyn Fn(&str) -> String) -> Result<Option<Param>, String> {
    let p = deref(spec, p);
    let wire = p["name"].as_str().ok_or(ctx("parameter without name"))?;
    let location = match p["in"].as_str() {
        Some("path") => Location::Path,
        Some("query") => Location::Query,
        // The harness sends the revision it was built for; it is not an argument.
        Some("header") if wire == "revision" => return Ok(None),
        Some("header") => Location::Header,
        other => return Err(ctx(&format!("parameter {wire} in {other:?}"))),
    };
    let schema = deref(spec, &p["schema"]);
    let kind = match schema["type"].as_str() {
        Some("string") if schema.get("enum").is_some() => Kind::Enum(strings(&schema["enum"])),
        Some("string") => Kind::Str,
        Some("array") => Kind::List(strings(&deref(spec, &schema["items"])["enum"])),
        Some("integer") => Kind::Int(
            schema["minimum"].as_i64().unwrap_or(0),
            schema["maximum"].as_i64().unwrap_or(i64::from(u32::MAX)),
        ),
        other => {
            return Err(ctx(&format!(
                "parameter {wire} has unsupported type {other:?}"
            )))
        }
    };
    Ok(Some(Param {
        wire: wire.to_string(),
        arg: normalize(wire),
        location,
        required: p["required"].as_bool().unwrap_or(false),
        kind,
        description: param_description(wire, p["description"].as_str().unwrap_or("")),
    }))
}

fn body(spec: &Value, rb: &Value, ctx: &dyn Fn(&str) -> String) -> Result<Body, String> {
    let rb = deref(spec, rb);
    let content = rb["content"]
        .as_object()
        .ok_or(ctx("requestBody without content"))?;
    let (ct, media) = content
        .iter()
        .next()
        .ok_or(ctx("empty requestBody content"))?;
    let encoding = match ct.as_str() {
        "application/vnd.api+json" | "application/json" => BodyEncoding::JsonApi,
        "multipart/form-data" => BodyEncoding::Multipart,
        other => return Err(ctx(&format!("unsupported content type {other}"))),
    };
    let schema = ref_name(&media["schema"]).ok_or(ctx("body schema is not a $ref"))?;
    let root = &spec["components"]["schemas"][&schema];
    let data = deref(spec, &root["properties"]["data"]);
    let data_is_array = data["type"] == "array";
    let resource = if data_is_array {
        deref(spec, &data["items"])
    } else {
        data
    };
    let ty = deref(spec, &resource["properties"]["type"]);
    let data_type = match ty["enum"].as_array() {
        Some(a) if a.len() == 1 => a[0].as_str().map(String::from),
        _ => None,
    };
    Ok(Body {
        encoding,
        required: rb["required"].as_bool().unwrap_or(false),
        schema,
        data_type,
        data_is_array,
    })
}

fn op(spec: &Value, path: &str, method: Method, o: &Value) -> Result<Op, String> {
    let id = o["operationId"]
        .as_str()
        .ok_or(format!("{} {path}: no operationId", method.as_str()))?;
    let ctx = |m: &str| format!("{id}: {m}");
    let tag = o["tags"][0].as_str().ok_or(ctx("no tag"))?.to_string();
    let mut params = Vec::new();
    for p in o["parameters"].as_array().cloned().unwrap_or_default() {
        params.extend(param(spec, &p, &ctx)?);
    }
    // Path parameters first, in path order; then the rest as the spec lists them.
    params.sort_by_key(|p| match p.location {
        Location::Path => path.find(&format!("{{{}}}", p.wire)).unwrap_or(0),
        _ => usize::MAX,
    });
    let mut args = BTreeSet::new();
    for p in &params {
        if !args.insert(p.arg.clone()) || p.arg == "body" {
            return Err(ctx(&format!("argument name {} is not unique", p.arg)));
        }
        if p.location == Location::Path && !path.contains(&format!("{{{}}}", p.wire)) {
            return Err(ctx(&format!("path parameter {} not in {path}", p.wire)));
        }
    }
    let body = match o.get("requestBody") {
        None => None,
        Some(rb) => Some(body(spec, rb, &ctx)?),
    };
    let scopes = strings(&o["x-klaviyo-scopes"]);
    let rl = &o["x-klaviyo-ratelimit"];
    let rate = RateLimit {
        burst_per_second: parse_rate(rl["burst"].as_str(), "s")
            .ok_or(ctx("bad burst rate limit"))?,
        steady_per_minute: parse_rate(rl["steady"].as_str(), "m")
            .ok_or(ctx("bad steady rate limit"))?,
        daily: match rl.get("daily") {
            None => None,
            Some(d) => Some(parse_rate(d.as_str(), "d").ok_or(ctx("bad daily rate limit"))?),
        },
    };
    let client = o
        .get("security")
        .and_then(Value::as_array)
        .is_some_and(|s| s.is_empty());
    Ok(Op {
        id: id.to_string(),
        access: access_class(id, method, &scopes),
        tag,
        title: o["summary"].as_str().unwrap_or(id).to_string(),
        description: operation_description(o["description"].as_str().unwrap_or("")),
        method,
        path: path.to_string(),
        params,
        body,
        scopes,
        rate,
        aliases: strings(&o["x-klaviyo-operation-aliases"]),
        client,
    })
}

/// The access class rule (documented in ARCHITECTURE.md): `Read` for GET and for operations
/// whose scopes are all `:read` (POST report/query/render endpoints); else `Destructive` for
/// DELETE and ids with a destructive word; else `Write`. Client endpoints without scopes that
/// are not GET are writes.
pub fn access_class(id: &str, method: Method, scopes: &[String]) -> Access {
    const DESTRUCTIVE_WORDS: &[&str] = &[
        "delete",
        "deletion",
        "suppress",
        "unsubscribe",
        "merge",
        "cancel",
        "remove",
    ];
    if method == Method::Get || (!scopes.is_empty() && scopes.iter().all(|s| s.ends_with(":read")))
    {
        Access::Read
    } else if method == Method::Delete || id.split('_').any(|w| DESTRUCTIVE_WORDS.contains(&w)) {
        Access::Destructive
    } else {
        Access::Write
    }
}

/// `"10/s"` with unit `s` → 10.
fn parse_rate(s: Option<&str>, unit: &str) -> Option<u32> {
    let (n, u) = s?.split_once('/')?;
    (u == unit).then_some(())?;
    n.parse().ok()
}

/// Follows `$ref`s (to any depth) and returns the value they lead to.
pub fn deref(spec: &Value, v: &Value) -> Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let mut cur = spec;
            for part in r.trim_start_matches("#/").split('/') {
                cur = &cur[part];
            }
            deref(spec, cur)
        }
        None => v.clone(),
    }
}

fn ref_name(v: &Value) -> Option<String> {
    v.get("$ref")?
        .as_str()?
        .strip_prefix("#/components/schemas/")
        .map(String::from)
}

/// A parameter's text without the spec's "For more information please visit <url>" line,
/// which says only which API overview section applies: that becomes a short phrase.
fn param_description(wire: &str, s: &str) -> String {
    let text = clean_text(s);
    let prefix = "For more information please visit ";
    let Some(rest) = text.strip_prefix(prefix) else {
        return text;
    };
    let (url, tail) = rest.split_once('\n').unwrap_or((rest, ""));
    let what = match url.rsplit('#').next().unwrap_or("") {
        "sparse-fieldsets" => "The fields to return (sparse fieldset).".to_string(),
        "relationships" => "Related resources to include in `included`.".to_string(),
        "pagination" if wire.contains("size") => "Page size.".to_string(),
        "pagination" => {
            "Cursor of the page to fetch: `next_cursor` (from `links.next`) of the previous page."
                .to_string()
        }
        "sorting" => "Sort order (`-` prefix: descending).".to_string(),
        "filtering" => {
            "Filter expression, e.g. `equals(field,'value')`, combined with `and(...)`.".to_string()
        }
        other => format!("See Klaviyo's API overview: {other}."),
    };
    if tail.trim().is_empty() {
        what
    } else {
        format!("{what} {}", tail.trim())
    }
}

/// The operation's own text: the spec's trailing rate-limit / scope / spec-link boilerplate is
/// dropped (those are structured fields of the operation).
fn operation_description(s: &str) -> String {
    let text = clean_text(s);
    match text.find("*Rate limits*") {
        Some(i) => text[..i].trim().to_string(),
        None => text,
    }
}

fn clean_text(s: &str) -> String {
    s.replace("<br>", "\n").trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_rule() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let post = Method::Post;
        assert_eq!(
            access_class("query_campaign_values", post, &s(&["campaigns:read"])),
            Access::Read
        );
        assert_eq!(
            access_class("create_client_review", post, &[]),
            Access::Write
        );
        assert_eq!(
            access_class("get_client_reviews", Method::Get, &[]),
            Access::Read
        );
        assert_eq!(
            access_class("bulk_delete_catalog_items", post, &s(&["catalogs:write"])),
            Access::Destructive
        );
        assert_eq!(
            access_class("merge_profiles", post, &s(&["profiles:write"])),
            Access::Destructive
        );
        assert_eq!(
            access_class("delete_list", Method::Delete, &s(&["lists:write"])),
            Access::Destructive
        );
        assert_eq!(
            access_class("create_list", post, &s(&["lists:write"])),
            Access::Write
        );
        assert_eq!(
            access_class(
                "get_bulk_delete_catalog_items_job",
                Method::Get,
                &s(&["catalogs:read"])
            ),
            Access::Read
        );
    }

    #[test]
    fn rates_need_their_unit() {
        assert_eq!(parse_rate(Some("10/s"), "s"), Some(10));
        assert_eq!(parse_rate(Some("10/m"), "s"), None);
        assert_eq!(parse_rate(Some("ten/s"), "s"), None);
        assert_eq!(parse_rate(None, "s"), None);
    }

    #[test]
    fn a_spec_that_breaks_the_contract_is_refused_with_the_operation() {
        let doc = |params: &str| {
            format!(
                r#"{{"info":{{"version":"r"}},"paths":{{"/api/x/{{id}}/":{{"get":{{
                "operationId":"get_x","tags":["X"],"parameters":[{params}],
                "x-klaviyo-ratelimit":{{"burst":"1/s","steady":"1/m"}}}}}}}}}}"#
            )
        };
        let e = parse(&doc(
            r#"{"name":"other","in":"path","required":true,"schema":{"type":"string"}}"#,
        ))
        .err()
        .unwrap();
        assert_eq!(e, "get_x: path parameter other not in /api/x/{id}/");
        let e = parse(&doc(
            r#"{"name":"n","in":"query","schema":{"type":"object"}}"#,
        ))
        .err()
        .unwrap();
        assert_eq!(
            e,
            "get_x: parameter n has unsupported type Some(\"object\")"
        );
        let e = parse(
            r#"{"info":{"version":"r"},"paths":{"/a":{"get":{"operationId":"a","tags":["A"],
            "x-klaviyo-ratelimit":{"burst":"1/m","steady":"1/m"}}}}}"#,
        )
        .err()
        .unwrap();
        assert_eq!(e, "a: bad burst rate limit");
    }
}
