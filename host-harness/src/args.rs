//! Arguments as people type them, into the JSON object an action takes. The action's own JSON
//! Schema decides what a typed value means:
//! - `id=7`: the schema wants a string, so `"7"` (not a number);
//! - `fields_profile=email,first_name` (or `fields_profile=email`): a list of strings, split
//!   at commas where no allowed value has one; a JSON array works too;
//! - `page_size=5`: an integer; `body='{"name":"VIP"}'` or `body=@list.json`: JSON;
//! - `upload_image_from_file file=@logo.png name=Logo`: the multipart body's fields, the file
//!   read and encoded here;
//! - `--args JSON`, `--args @FILE`, `--args @-` (standard input): a JSON object, merged with
//!   the pairs.
//!
//! A key given twice is an error (never last-wins), and every problem is reported at once,
//! each with its field and what to do.

use klaviyo_catalog::tools::Tool;
use serde_json::{Map, Value};
use std::io::Read;

/// One problem with the arguments: the field it is about (when there is one) and what to do.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    pub field: Option<String>,
    pub message: String,
}

impl Problem {
    pub fn new(field: Option<&str>, message: impl Into<String>) -> Problem {
        Problem {
            field: field.map(String::from),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Parses `--args` and `key=value` pairs for `tool`. `stdin` serves `--args @-`.
pub fn parse(
    tool: Tool,
    args: Option<&str>,
    pairs: &[String],
    stdin: &mut dyn Read,
) -> Result<Value, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut obj = match args {
        None => Map::new(),
        Some(a) => {
            let text = match a.strip_prefix('@') {
                Some("-") => {
                    let mut s = String::new();
                    match stdin.read_to_string(&mut s) {
                        Ok(_) => s,
                        Err(e) => {
                            return Err(vec![Problem::new(
                                Some("--args"),
                                format!("--args @-: cannot read standard input: {e}"),
                            )])
                        }
                    }
                }
                Some(path) => match std::fs::read_to_string(path) {
                    Ok(s) => s,
                    Err(e) => {
                        return Err(vec![Problem::new(
                            Some("--args"),
                            format!("--args @{path}: {e}"),
                        )])
                    }
                },
                None => a.to_string(),
            };
            match serde_json::from_str::<Value>(&text) {
                Ok(Value::Object(m)) => m,
                Ok(_) => {
                    return Err(vec![Problem::new(
                        Some("--args"),
                        "--args must be a JSON object, e.g. '{\"id\": \"Y6nRLr\"}'",
                    )])
                }
                Err(e) => {
                    return Err(vec![Problem::new(
                        Some("--args"),
                        format!("--args is not valid JSON: {e}"),
                    )])
                }
            }
        }
    };
    let schema = tool.input_schema();
    let props = schema["properties"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let multipart = tool.operations().iter().any(|o| {
        o.body
            .as_ref()
            .is_some_and(|b| b.encoding == klaviyo_catalog::BodyEncoding::Multipart)
    });
    let mut body_fields = Map::new();
    let mut given: Vec<String> = obj.keys().cloned().collect();
    for p in pairs {
        let Some((k, v)) = p.split_once('=') else {
            problems.push(Problem::new(None, bare_value(tool, &schema, p)));
            continue;
        };
        if k.is_empty() {
            problems.push(Problem::new(
                None,
                format!("`{p}` has an empty key: write KEY=VALUE"),
            ));
            continue;
        }
        if given.iter().any(|g| g == k) {
            problems.push(Problem::new(
                Some(k),
                format!("`{k}` is given twice: give each argument once"),
            ));
            continue;
        }
        given.push(k.to_string());
        match props.get(k) {
            Some(ps) => match typed(k, v, ps) {
                Ok(value) => {
                    obj.insert(k.to_string(), value);
                }
                Err(e) => problems.push(Problem::new(Some(k), e)),
            },
            None if multipart && ["file", "name", "hidden"].contains(&k) => {
                match multipart_field(k, v) {
                    Ok(value) => {
                        body_fields.insert(k.to_string(), value);
                    }
                    Err(e) => problems.push(Problem::new(Some(k), e)),
                }
            }
            None => problems.push(Problem::new(
                Some(k),
                format!(
                    "`{k}`: unknown argument of `{}`{}",
                    tool.name(),
                    klaviyo_agent::suggest::unknown_argument_hint(tool, k)
                        .map(|h| format!("; {h}"))
                        .unwrap_or_default()
                ),
            )),
        }
    }
    if !body_fields.is_empty() {
        if obj.contains_key("body") {
            problems.push(Problem::new(
                Some("body"),
                "`body` is given and so are its fields (file, name, hidden): give one or the other",
            ));
        } else {
            obj.insert("body".into(), Value::Object(body_fields));
        }
    }
    if problems.is_empty() {
        Ok(Value::Object(obj))
    } else {
        Err(problems)
    }
}

/// A value without `KEY=`: say which key it probably is.
fn bare_value(tool: Tool, schema: &Value, v: &str) -> String {
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(Value::as_str)
                .filter(|k| *k != "body")
                .collect()
        })
        .unwrap_or_default();
    match required.as_slice() {
        [one] => format!("`{v}` is not KEY=VALUE; did you mean `{one}={v}`?"),
        [] => format!("`{v}` is not KEY=VALUE; `{}` takes named arguments (`klaviyo-harness describe {}` lists them)", tool.name(), tool.name()),
        many => format!("`{v}` is not KEY=VALUE; `{}` needs {}", tool.name(), many.iter().map(|k| format!("`{k}=…`")).collect::<Vec<_>>().join(", ")),
    }
}

/// The JSON type(s) a schema allows.
fn types(schema: &Value) -> Vec<String> {
    match &schema["type"] {
        Value::String(t) => vec![t.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect(),
        _ if schema["enum"].is_array() => vec!["string".into()],
        _ => vec![],
    }
}

/// `value` as the schema of `key` wants it.
fn typed(key: &str, v: &str, schema: &Value) -> Result<Value, String> {
    let ts = types(schema);
    let from_file =
        |path: &str| std::fs::read_to_string(path).map_err(|e| format!("`{key}=@{path}`: {e}"));
    if ts.iter().any(|t| t == "string") {
        // The text as typed, even when it looks like a number (`id=7`) — unless it is a
        // quoted JSON string.
        return Ok(match serde_json::from_str::<Value>(v) {
            Ok(Value::String(s)) if v.trim_start().starts_with('"') => Value::String(s),
            _ => Value::String(v.to_string()),
        });
    }
    if ts.iter().any(|t| t == "array") {
        if v.trim_start().starts_with('[') {
            return serde_json::from_str(v)
                .map_err(|e| format!("`{key}`: not a valid JSON list ({e}); or write a,b,c"));
        }
        let allowed: Vec<&str> = schema["items"]["enum"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let parts: Vec<Value> = if allowed.iter().any(|a| a.contains(',')) {
            vec![Value::String(v.to_string())]
        } else {
            v.split(',')
                .map(|s| Value::String(s.trim().to_string()))
                .filter(|s| s != "")
                .collect()
        };
        return Ok(Value::Array(parts));
    }
    if ts.iter().any(|t| t == "integer" || t == "number") {
        return match serde_json::from_str::<Value>(v) {
            Ok(n @ Value::Number(_)) => Ok(n),
            _ => Err(format!(
                "`{key}` must be {}, got `{v}`",
                if ts.iter().any(|t| t == "integer") {
                    "an integer"
                } else {
                    "a number"
                }
            )),
        };
    }
    // An object (the body) or anything else: JSON, or JSON from a file.
    let text = match v.strip_prefix('@') {
        Some(path) => from_file(path)?,
        None => v.to_string(),
    };
    serde_json::from_str(&text).map_err(|e| {
        format!(
            "`{key}` must be JSON ({e}); e.g. {key}='{{\"name\": \"VIP\"}}' or {key}=@file.json"
        )
    })
}

/// A field of the multipart image upload: `file=@path` is read and base64-encoded.
fn multipart_field(key: &str, v: &str) -> Result<Value, String> {
    match (key, v.strip_prefix('@')) {
        ("file", Some(path)) => {
            let bytes = std::fs::read(path).map_err(|e| format!("`file=@{path}`: {e}"))?;
            Ok(Value::String(base64(&bytes)))
        }
        ("hidden", _) => match v {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(format!("`hidden` must be true or false, got `{v}`")),
        },
        _ => Ok(Value::String(v.to_string())),
    }
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(tool: &str, args: Option<&str>, pairs: &[&str]) -> Result<Value, Vec<String>> {
        let pairs: Vec<String> = pairs.iter().map(|s| s.to_string()).collect();
        parse(
            Tool::resolve(tool).unwrap(),
            args,
            &pairs,
            &mut std::io::empty(),
        )
        .map_err(|ps| ps.into_iter().map(|p| p.message).collect())
    }

    #[test]
    fn values_take_the_type_the_schema_wants() {
        assert_eq!(p("get_image", None, &["id=7"]).unwrap(), json!({"id": "7"}));
        assert_eq!(
            p(
                "get_profiles",
                None,
                &["fields_profile=email,first_name", "page_size=5"]
            )
            .unwrap(),
            json!({"fields_profile": ["email", "first_name"], "page_size": 5})
        );
        assert_eq!(
            p("get_profiles", None, &["fields_profile=email"]).unwrap(),
            json!({"fields_profile": ["email"]})
        );
        assert_eq!(
            p("get_profiles", None, &["fields_profile=[\"email\"]"]).unwrap(),
            json!({"fields_profile": ["email"]})
        );
        assert_eq!(
            p("create_list", None, &["body={\"name\":\"VIP\"}"]).unwrap(),
            json!({"body": {"name": "VIP"}})
        );
        assert!(p("get_profiles", None, &["page_size=five"]).unwrap_err()[0].contains("integer"));
    }

    #[test]
    fn mistakes_are_reported_together_with_their_fix() {
        let e = p(
            "get_profiles",
            None,
            &["page_size=1", "page_size=2", "page_sise=3", "Y6nRLr"],
        )
        .unwrap_err();
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(e[0].contains("given twice"), "{e:?}");
        assert!(e[1].contains("did you mean `page_size`"), "{e:?}");
        assert!(e[2].contains("not KEY=VALUE"), "{e:?}");
        let e = p("get_list", None, &["Y6nRLr"]).unwrap_err();
        assert!(e[0].contains("did you mean `id=Y6nRLr`"), "{e:?}");
        let e = p("get_list", Some("{\"id\":\"a\"}"), &["id=b"]).unwrap_err();
        assert!(e[0].contains("given twice"), "{e:?}");
    }

    #[test]
    fn args_come_from_json_a_file_or_stdin() {
        let mut stdin = std::io::Cursor::new(b"{\"id\": \"X1\"}".to_vec());
        let v = parse(
            Tool::resolve("get_list").unwrap(),
            Some("@-"),
            &[],
            &mut stdin,
        )
        .unwrap();
        assert_eq!(v, json!({"id": "X1"}));
        assert!(p("get_list", Some("[1]"), &[]).unwrap_err()[0].contains("JSON object"));
    }

    #[test]
    fn an_image_file_is_read_and_encoded() {
        let path = std::env::temp_dir().join(format!("kh-args-{}.gif", std::process::id()));
        std::fs::write(&path, b"GIF89a").unwrap();
        let v = p(
            "upload_image_from_file",
            None,
            &[&format!("file=@{}", path.display()), "name=Logo"],
        )
        .unwrap();
        assert_eq!(v, json!({"body": {"file": "R0lGODlh", "name": "Logo"}}));
        std::fs::remove_file(&path).unwrap();
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"a"), "YQ==");
    }
}
