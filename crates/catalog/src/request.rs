//! Tool arguments (a JSON object) → the exact HTTP request Klaviyo expects. Pure: no I/O.
//!
//! Rules: unknown or ill-typed arguments are refused naming the field; path parameters are
//! percent-encoded inside their segment; list query parameters are comma-joined; the `revision`,
//! `accept` and `content-type` headers are set; `/client/*` operations carry the public key as
//! `company_id` and never an `Authorization` header; the JSON:API envelope is completed when the
//! caller gives less (`data.type`, and `data.id` from the path for PATCH); bodies are validated
//! against the operation's schema.

use crate::encode::{path_segment, query_component};
use crate::tools::{operation, Tool};
use crate::validate::{depth_of, validate, validate_all, MAX_DEPTH};
use crate::{BodyEncoding, Error, Kind, Location, Method, Operation};
use serde_json::{json, Map, Value};

pub const JSON_API: &str = "application/vnd.api+json";

/// What the host provides for building requests.
#[derive(Clone, Debug)]
pub struct Connection {
    /// e.g. `https://a.klaviyo.com`, no trailing slash needed.
    pub base_url: String,
    pub revision: String,
    /// What goes after `Klaviyo-API-Key ` (a placeholder the host substitutes, or the key).
    pub private_key: Option<String>,
    /// Public key / site id for `company_id`.
    pub public_key: Option<String>,
}

/// A request ready to send.
#[derive(Clone, Debug)]
pub struct Request {
    pub operation: &'static Operation,
    pub method: Method,
    /// Path and query, e.g. `/api/profiles/?page%5Bsize%5D=5`.
    pub path_and_query: String,
    /// `base_url` + `path_and_query`.
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Builds the request for a tool call. `args` is the arguments object (`null` = no arguments).
pub fn prepare(tool: Tool, args: &Value, conn: &Connection) -> Result<Request, Error> {
    let mut args = match args {
        Value::Null => Map::new(),
        Value::Object(m) => m.clone(),
        other => {
            return Err(Error::invalid(
                "arguments",
                format!("must be a JSON object, got {}", kind_of(other)),
            ))
        }
    };
    let op = match tool {
        Tool::Op(op) => op,
        Tool::Composite(c) => {
            let sel = args.remove(c.selector);
            let values: Vec<&str> = c.choices.iter().map(|(v, _)| *v).collect();
            let chosen = match &sel {
                None => {
                    return Err(Error::invalid(
                        c.selector,
                        format!("is required: one of {}", values.join(", ")),
                    ))
                }
                Some(Value::String(s)) => c.choices.iter().find(|(v, _)| v == s),
                Some(_) => None,
            };
            let Some((value, id)) = chosen else {
                return Err(Error::invalid(
                    c.selector,
                    format!("must be one of {}; got {}", values.join(", "), sel.unwrap()),
                ));
            };
            let op = operation(id).expect("composite names a known operation");
            for k in args.keys() {
                if k != "body" || op.body.is_none() {
                    if !op.params.iter().any(|p| p.arg == k) {
                        return Err(Error::invalid(
                            k.as_str(),
                            format!(
                                "is not accepted when {} is `{value}` ({})",
                                c.selector, op.id
                            ),
                        ));
                    }
                }
            }
            op
        }
    };
    build(op, args, conn)
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn build(
    op: &'static Operation,
    mut args: Map<String, Value>,
    conn: &Connection,
) -> Result<Request, Error> {
    let known =
        |k: &str| op.params.iter().any(|p| p.arg == k) || (k == "body" && op.body.is_some());
    if let Some(k) = args.keys().find(|k| !known(k)) {
        let mut names: Vec<&str> = op.params.iter().map(|p| p.arg).collect();
        if op.body.is_some() {
            names.push("body");
        }
        let takes = if names.is_empty() {
            "no arguments".to_string()
        } else {
            names.join(", ")
        };
        return Err(Error::invalid(
            k.as_str(),
            format!("unknown argument; `{}` takes: {takes}", op.id),
        ));
    }
    if op.client && !args.contains_key("company_id") {
        match &conn.public_key {
            Some(k) => {
                args.insert("company_id".into(), Value::String(k.clone()));
            }
            None => {
                return Err(Error::NotConfigured(format!(
                    "`{}` is a client endpoint: it needs the public API key (company_id); pass `company_id` or configure KLAVIYO_COMPANY_ID",
                    op.id
                )))
            }
        }
    }
    let mut path = op.path.to_string();
    let mut query: Vec<String> = Vec::new();
    let mut headers: Vec<(String, String)> = vec![
        ("accept".into(), JSON_API.into()),
        ("revision".into(), conn.revision.clone()),
    ];
    let mut path_id: Option<String> = None;
    for p in op.params {
        let Some(v) = args.get(p.arg) else {
            if p.required {
                return Err(Error::invalid(
                    p.arg,
                    format!("is required ({})", describe_kind(&p.kind)),
                ));
            }
            continue;
        };
        let text = param_value(p.arg, &p.kind, v)?;
        match p.location {
            Location::Path => {
                if let Some(problem) = crate::encode::segment_text_problem(&text) {
                    return Err(Error::invalid(
                        p.arg,
                        format!("{problem}: pass the id exactly as Klaviyo gives it"),
                    ));
                }
                if p.wire == "id" {
                    path_id = Some(text.clone());
                }
                path = path.replace(&format!("{{{}}}", p.wire), &path_segment(&text));
            }
            Location::Query => query.push(format!(
                "{}={}",
                query_component(p.wire),
                query_component(&text)
            )),
            Location::Header => {
                if text.contains(['\r', '\n']) {
                    return Err(Error::invalid(p.arg, "must not contain line breaks"));
                }
                headers.push((p.wire.to_ascii_lowercase(), text));
            }
        }
    }
    if !op.client {
        match &conn.private_key {
            Some(k) => headers.push(("authorization".into(), format!("Klaviyo-API-Key {k}"))),
            None => {
                return Err(Error::NotConfigured(
                    "no Klaviyo private API key: set KLAVIYO_API_KEY (or a key file/command) in the host".into(),
                ))
            }
        }
    }
    let body = match (&op.body, args.remove("body")) {
        (None, _) => None,
        (Some(b), None) if b.required => {
            return Err(Error::invalid(
                "body",
                format!("is required (schema `{}`)", b.schema),
            ))
        }
        (Some(_), None) => None,
        (Some(b), Some(v)) => {
            let v = match v {
                Value::String(s) => serde_json::from_str(&s)
                    .map_err(|e| Error::invalid("body", format!("is not valid JSON: {e}")))?,
                v => v,
            };
            if depth_of(&v) > MAX_DEPTH {
                return Err(Error::invalid(
                    "body",
                    format!("nested deeper than {MAX_DEPTH} levels"),
                ));
            }
            match b.encoding {
                BodyEncoding::JsonApi => {
                    let v = complete_envelope(op, v, path_id.as_deref())?;
                    validate(b.schema, &v, "body")?;
                    headers.push(("content-type".into(), JSON_API.into()));
                    Some(serde_json::to_vec(&v).expect("JSON values serialize"))
                }
                BodyEncoding::Multipart => {
                    validate(b.schema, &v, "body")?;
                    let (ct, bytes) = multipart(&v)?;
                    headers.push(("content-type".into(), ct));
                    Some(bytes)
                }
            }
        }
    };
    let mut path_and_query = path;
    if !query.is_empty() {
        path_and_query.push('?');
        path_and_query.push_str(&query.join("&"));
    }
    let url = format!("{}{}", conn.base_url.trim_end_matches('/'), path_and_query);
    Ok(Request {
        operation: op,
        method: op.method,
        path_and_query,
        url,
        headers,
        body,
    })
}

fn describe_kind(k: &Kind) -> String {
    match k {
        Kind::String => "a non-empty string".into(),
        Kind::Enum(v) => format!("one of {}", v.join(", ")),
        Kind::List(v) if v.is_empty() => "a list of strings".into(),
        Kind::List(v) => format!("a list of: {}", v.join(", ")),
        Kind::Integer { min, max } => format!("an integer from {min} to {max}"),
    }
}

/// Checks one parameter value and gives its wire text.
fn param_value(arg: &str, kind: &Kind, v: &Value) -> Result<String, Error> {
    let want = || describe_kind(kind);
    match kind {
        Kind::String => match v {
            Value::String(s) if !s.is_empty() => Ok(s.clone()),
            Value::String(_) => Err(Error::invalid(arg, "must not be empty")),
            other => Err(Error::invalid(
                arg,
                format!("must be {}, got {}", want(), kind_of(other)),
            )),
        },
        Kind::Enum(values) => match v {
            Value::String(s) if values.contains(&s.as_str()) => Ok(s.clone()),
            _ => Err(Error::invalid(arg, format!("must be {}; got {v}", want()))),
        },
        Kind::List(values) => {
            let Value::Array(items) = v else {
                return Err(Error::invalid(
                    arg,
                    format!("must be {} (a JSON array), got {}", want(), kind_of(v)),
                ));
            };
            if items.is_empty() {
                return Err(Error::invalid(arg, "must not be empty (omit it instead)"));
            }
            let mut out: Vec<&str> = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let field = format!("{arg}[{i}]");
                let Value::String(s) = item else {
                    return Err(Error::invalid(
                        field,
                        format!("must be a string, got {}", kind_of(item)),
                    ));
                };
                if s.is_empty() || s.contains(',') {
                    return Err(Error::invalid(
                        field,
                        "must be a non-empty value without commas",
                    ));
                }
                if !values.is_empty() && !values.contains(&s.as_str()) {
                    return Err(Error::invalid(
                        field,
                        format!("`{s}` is not allowed; allowed: {}", values.join(", ")),
                    ));
                }
                if out.contains(&s.as_str()) {
                    return Err(Error::invalid(field, format!("`{s}` is listed twice")));
                }
                out.push(s);
            }
            Ok(out.join(","))
        }
        Kind::Integer { min, max } => match v.as_i64() {
            Some(n) if n >= *min && n <= *max => Ok(n.to_string()),
            _ => Err(Error::invalid(arg, format!("must be {}; got {v}", want()))),
        },
    }
}

/// Completes the JSON:API envelope: accepts the full `{"data": …}` document, the resource object
/// (`{"type"?, "id"?, "attributes", "relationships"?}`), a bare attributes object, or for
/// relationship endpoints a list of ids / resource identifiers.
pub fn complete_envelope(
    op: &Operation,
    body: Value,
    path_id: Option<&str>,
) -> Result<Value, Error> {
    let b = op.body.as_ref().expect("operation has a body");
    let resource_keys = ["type", "id", "attributes", "relationships", "meta"];
    let mut doc = match body {
        Value::Object(m) if m.contains_key("data") => Value::Object(m),
        Value::Array(items) if b.data_is_array => json!({ "data": items }),
        Value::Object(m)
            if (m.contains_key("attributes") || m.contains_key("relationships"))
                && m.keys().all(|k| resource_keys.contains(&k.as_str())) =>
        {
            json!({ "data": m })
        }
        Value::Object(m) if !b.data_is_array => json!({ "data": { "attributes": m } }),
        other => {
            return Err(Error::invalid(
                "body",
                format!(
                    "must be a JSON object{}, got {}",
                    if b.data_is_array {
                        " or a list of ids"
                    } else {
                        ""
                    },
                    kind_of(&other)
                ),
            ))
        }
    };
    let fill = |item: &mut Value, field: &str, with_id: bool| -> Result<(), Error> {
        if let Value::String(id) = item {
            *item = json!({ "id": id });
        }
        let Some(obj) = item.as_object_mut() else {
            return Ok(());
        };
        if let Some(t) = b.data_type {
            obj.entry("type")
                .or_insert_with(|| Value::String(t.to_string()));
        }
        if with_id {
            if let Some(pid) = path_id {
                match obj.get("id") {
                    None => {
                        obj.insert("id".into(), Value::String(pid.to_string()));
                    }
                    Some(Value::String(given)) if given != pid => {
                        return Err(Error::invalid(
                            format!("{field}.id"),
                            format!(
                                "`{given}` differs from the path id `{pid}`; they must be equal"
                            ),
                        ))
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    };
    match &mut doc["data"] {
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                fill(item, &format!("body.data[{i}]"), false)?;
            }
        }
        data @ Value::Object(_) => fill(data, "body.data", op.method == Method::Patch)?,
        _ => {}
    }
    Ok(doc)
}

/// The multipart form of `upload_image_from_file`: `{"file": base64, "name"?, "hidden"?}`.
fn multipart(v: &Value) -> Result<(String, Vec<u8>), Error> {
    let file_b64 = v["file"].as_str().unwrap_or_default();
    let file = base64_decode(file_b64)
        .ok_or_else(|| Error::invalid("body.file", "must be base64 text (standard alphabet)"))?;
    if file.is_empty() {
        return Err(Error::invalid("body.file", "must not be empty"));
    }
    let (mime, ext) = match file.as_slice() {
        [0x89, b'P', b'N', b'G', ..] => ("image/png", "png"),
        [0xFF, 0xD8, 0xFF, ..] => ("image/jpeg", "jpg"),
        [b'G', b'I', b'F', b'8', ..] => ("image/gif", "gif"),
        _ => {
            return Err(Error::invalid(
                "body.file",
                "must be a JPEG, PNG or GIF image",
            ))
        }
    };
    let mut boundary = format!("klaviyo-connector-{:016x}", fnv(&file));
    while contains(&file, boundary.as_bytes()) {
        boundary.push('x');
    }
    let mut out = Vec::new();
    let mut part = |name: &str, extra: &str, ctype: Option<&str>, data: &[u8]| {
        out.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"{extra}\r\n")
                .as_bytes(),
        );
        if let Some(ct) = ctype {
            out.extend_from_slice(format!("Content-Type: {ct}\r\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
    };
    let name = v["name"].as_str();
    let filename = format!(
        "{}.{ext}",
        name.map(sanitize_filename)
            .unwrap_or_else(|| "image".into())
    );
    part(
        "file",
        &format!("; filename=\"{filename}\""),
        Some(mime),
        &file,
    );
    if let Some(n) = name {
        part("name", "", None, n.as_bytes());
    }
    if let Some(h) = v["hidden"].as_bool() {
        part("hidden", "", None, h.to_string().as_bytes());
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    Ok((format!("multipart/form-data; boundary={boundary}"), out))
}

fn sanitize_filename(s: &str) -> String {
    let t: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    if t.is_empty() {
        "image".into()
    } else {
        t
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf29ce484222325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

/// Decodes standard base64 (padding optional, whitespace ignored).
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes().filter(|c| !c.is_ascii_whitespace()) {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => continue,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// Every problem [`prepare`] would find with these arguments, not only the first: each
/// argument's, and every problem of the body (see [`crate::validate::validate_all`]). Empty
/// when `prepare` accepts them (or fails for a reason other than the arguments).
pub fn problems(tool: Tool, args: &Value, conn: &Connection) -> Vec<Error> {
    let Value::Object(given) = args else {
        return prepare(tool, args, conn).err().into_iter().collect();
    };
    let mut args = given.clone();
    let examples = crate::example::example_args(tool, true);
    let mut found: Vec<Error> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    // Each round finds the first problem left, records it, and sets that argument aside (or,
    // when it is required, stands in a valid value) so the next round finds the next one.
    for _ in 0..64 {
        let Err(e) = prepare(tool, &Value::Object(args.clone()), conn) else {
            break;
        };
        let Error::InvalidInput { field, .. } = &e else {
            break;
        };
        let top = field.split(['.', '[']).next().unwrap_or("").to_string();
        if top == "body" {
            let id = args.get("id").and_then(Value::as_str);
            found.extend(body_problems(tool, args.get("body"), id, &e));
        } else if !found.contains(&e) {
            found.push(e.clone());
        }
        if seen.contains(&top) {
            match examples.get(&top) {
                Some(v) if args.get(&top) != Some(v) => {
                    args.insert(top.clone(), v.clone());
                }
                _ => break,
            }
        } else {
            seen.push(top.clone());
            args.remove(&top);
        }
    }
    found
}

/// All problems of the body (after the envelope is completed as `prepare` does); `first` when
/// the body cannot be checked that far.
fn body_problems(
    tool: Tool,
    body: Option<&Value>,
    path_id: Option<&str>,
    first: &Error,
) -> Vec<Error> {
    let fallback = || vec![first.clone()];
    let Some(body) = body else { return fallback() };
    let op = match tool {
        Tool::Op(op) => op,
        Tool::Composite(_) => return fallback(),
    };
    let Some(b) = &op.body else { return fallback() };
    if b.encoding != BodyEncoding::JsonApi {
        return fallback();
    }
    let v = match body {
        Value::String(s) => match serde_json::from_str(s) {
            Ok(v) => v,
            Err(_) => return fallback(),
        },
        v => v.clone(),
    };
    match complete_envelope(op, v, path_id).map(|v| validate_all(b.schema, &v, "body")) {
        Ok(Err(all)) => all,
        _ => fallback(),
    }
}
