//! Validation of JSON values against the JSON Schema subset used by the spec's request bodies:
//! `$ref` (into the generated `$defs`), `type` (one or a list), `enum`, `properties`,
//! `required`, `additionalProperties: false`, `items`, `oneOf`/`anyOf`/`allOf`, `minItems`,
//! `maxItems`, `maxProperties`, `minLength`, `maxLength`, `minimum`, `maximum`.
//! `oneOf` is checked like `anyOf` (at least one branch), since the spec's branches overlap.
//! Annotations (`description`, `default`, `format`, `contentEncoding`) are not assertions.

use crate::tools::schema_defs;
use crate::Error;
use serde_json::{Map, Value};

/// Deepest nesting of the value accepted before giving up (hostile input).
pub const MAX_DEPTH: usize = 64;

/// Validates `value` against definition `root`; `field` names the value in errors (e.g. `body`).
pub fn validate(root: &str, value: &Value, field: &str) -> Result<(), Error> {
    validate_all(root, value, field).map_err(|mut all| all.swap_remove(0))
}

/// [`validate`], reporting every problem it finds (within an object: each unknown property,
/// each missing required one, and the first problem of each value), in document order.
pub fn validate_all(root: &str, value: &Value, field: &str) -> Result<(), Vec<Error>> {
    let schema = Value::Object(Map::from_iter([(
        "$ref".to_string(),
        Value::String(format!("#/$defs/{root}")),
    )]));
    check(&schema, value, field, 0)
        .map_err(|all| all.into_iter().map(|(f, m)| Error::invalid(f, m)).collect())
}

/// Problems found, at least one: (field path, message).
type Fail = Vec<(String, String)>;

fn fail(path: &str, message: String) -> Fail {
    vec![(path.to_string(), message)]
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_matches(t: &str, v: &Value) -> bool {
    match t {
        "number" => v.is_number(),
        "integer" => v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0),
        other => type_name(v) == other,
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(60).collect::<String>())
    } else {
        s
    }
}

fn check(schema: &Value, v: &Value, path: &str, depth: usize) -> Result<(), Fail> {
    if depth > MAX_DEPTH {
        return Err(vec![(
            path.into(),
            format!("nested deeper than {MAX_DEPTH} levels"),
        )]);
    }
    let Some(s) = schema.as_object() else {
        return Ok(());
    };
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        let name = r.trim_start_matches("#/$defs/");
        let def = schema_defs()
            .get(name)
            .ok_or_else(|| fail(path, format!("internal: schema {name} missing")))?;
        return check(def, v, path, depth + 1);
    }
    if let Some(t) = s.get("type") {
        let types: Vec<&str> = match t {
            Value::String(t) => vec![t.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        if !types.is_empty() && !types.iter().any(|t| type_matches(t, v)) {
            return Err(vec![(
                path.into(),
                format!(
                    "expected {}, got {} {}",
                    types.join(" or "),
                    type_name(v),
                    short(v)
                ),
            )]);
        }
    }
    if let Some(Value::Array(allowed)) = s.get("enum") {
        if !allowed.contains(v) {
            let list: Vec<String> = allowed.iter().map(|a| a.to_string()).collect();
            return Err(vec![(
                path.into(),
                format!("must be one of {}; got {}", list.join(", "), short(v)),
            )]);
        }
    }
    for key in ["allOf"] {
        if let Some(Value::Array(branches)) = s.get(key) {
            for b in branches {
                check(b, v, path, depth + 1)?;
            }
        }
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(Value::Array(branches)) = s.get(key) {
            let mut best: Option<Fail> = None;
            let mut ok = false;
            for b in branches {
                match check(b, v, path, depth + 1) {
                    Ok(()) => {
                        ok = true;
                        break;
                    }
                    Err(e) => {
                        if best.as_ref().is_none_or(|b| e[0].0.len() > b[0].0.len()) {
                            best = Some(e);
                        }
                    }
                }
            }
            if !ok {
                let closest =
                    best.unwrap_or_else(|| fail(path, "matches none of the allowed shapes".into()));
                return Err(closest
                    .into_iter()
                    .map(|(f, m)| {
                        (
                            f,
                            format!(
                                "{m} (no allowed shape of `{path}` matched; this is the closest)"
                            ),
                        )
                    })
                    .collect());
            }
        }
    }
    match v {
        Value::Object(m) => check_object(s, m, path, depth),
        Value::Array(a) => {
            if let Some(n) = s.get("minItems").and_then(Value::as_u64) {
                if (a.len() as u64) < n {
                    return Err(vec![(
                        path.into(),
                        format!("needs at least {n} items, got {}", a.len()),
                    )]);
                }
            }
            if let Some(n) = s.get("maxItems").and_then(Value::as_u64) {
                if a.len() as u64 > n {
                    return Err(vec![(
                        path.into(),
                        format!("allows at most {n} items, got {}", a.len()),
                    )]);
                }
            }
            if let Some(items) = s.get("items") {
                for (i, item) in a.iter().enumerate() {
                    check(items, item, &format!("{path}[{i}]"), depth + 1)?;
                }
            }
            Ok(())
        }
        Value::String(text) => {
            let n = text.chars().count() as u64;
            if let Some(min) = s.get("minLength").and_then(Value::as_u64) {
                if n < min {
                    return Err(vec![(
                        path.into(),
                        format!("must be at least {min} characters"),
                    )]);
                }
            }
            if let Some(max) = s.get("maxLength").and_then(Value::as_u64) {
                if n > max {
                    return Err(vec![(
                        path.into(),
                        format!("must be at most {max} characters, got {n}"),
                    )]);
                }
            }
            Ok(())
        }
        Value::Number(num) => {
            let x = num.as_f64().unwrap_or(0.0);
            if let Some(min) = s.get("minimum").and_then(Value::as_f64) {
                if x < min {
                    return Err(vec![(
                        path.into(),
                        format!("must be at least {min}, got {num}"),
                    )]);
                }
            }
            if let Some(max) = s.get("maximum").and_then(Value::as_f64) {
                if x > max {
                    return Err(vec![(
                        path.into(),
                        format!("must be at most {max}, got {num}"),
                    )]);
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn check_object(
    s: &Map<String, Value>,
    m: &Map<String, Value>,
    path: &str,
    depth: usize,
) -> Result<(), Fail> {
    let props = s.get("properties").and_then(Value::as_object);
    if let Some(n) = s.get("maxProperties").and_then(Value::as_u64) {
        if m.len() as u64 > n {
            return Err(vec![(
                path.into(),
                format!("allows at most {n} properties, got {}", m.len()),
            )]);
        }
    }
    // Unknown properties first (a misspelt name explains a "missing" one), then required ones,
    // then the values: every problem, not only the first.
    let mut problems: Fail = Vec::new();
    if s.get("additionalProperties") == Some(&Value::Bool(false)) {
        let mut allowed: Vec<&str> = props
            .map(|p| p.keys().map(String::as_str).collect())
            .unwrap_or_default();
        allowed.sort();
        for k in m
            .keys()
            .filter(|k| !props.is_some_and(|p| p.contains_key(*k)))
        {
            problems.push((
                format!("{path}.{k}"),
                format!("unknown property; allowed here: {}", allowed.join(", ")),
            ));
        }
    }
    if let Some(Value::Array(req)) = s.get("required") {
        for r in req.iter().filter_map(Value::as_str) {
            if !m.contains_key(r) {
                problems.push((format!("{path}.{r}"), "is required".into()));
            }
        }
    }
    for (k, val) in m {
        let sub = format!("{path}.{k}");
        let r = match props.and_then(|p| p.get(k)) {
            Some(ps) => check(ps, val, &sub, depth + 1),
            None => match s.get("additionalProperties").filter(|a| a.is_object()) {
                Some(ap) => check(ap, val, &sub, depth + 1),
                None if depth_of(val) + depth > MAX_DEPTH => {
                    Err(fail(&sub, format!("nested deeper than {MAX_DEPTH} levels")))
                }
                None => Ok(()),
            },
        };
        if let Err(e) = r {
            problems.extend(e);
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// Nesting depth of a value, without recursion (free-form values are unbounded otherwise).
pub fn depth_of(v: &Value) -> usize {
    let mut max = 0;
    let mut stack = vec![(v, 1usize)];
    while let Some((v, d)) = stack.pop() {
        max = max.max(d);
        match v {
            Value::Array(a) => stack.extend(a.iter().map(|x| (x, d + 1))),
            Value::Object(o) => stack.extend(o.values().map(|x| (x, d + 1))),
            _ => {}
        }
    }
    max
}
