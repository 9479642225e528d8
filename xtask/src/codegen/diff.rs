//! `cargo xtask spec-diff OLD.json NEW.json [--promised PATH]`: what moving to a new revision
//! of Klaviyo's spec changes for the connector, as a report a reviewer reads before running
//! `cargo xtask codegen --spec NEW.json`.
//!
//! Both specs go through the generator's own `spec` stage, so the report speaks of what the
//! generated table would change: operations added, removed and renamed (same method and path,
//! new id), and per operation its method or path, parameters (added, removed, now required or
//! optional, type), request body (schema name, or any change in the schema it reaches, with the
//! JSON paths that differ), access class (what policies decide on), rate limits and scopes; and
//! which promised actions point at an operation that is gone or moved.
//!
//! Contract: the report is deterministic (sorted by operation id) and empty sections are left
//! out; two identical specs report "no changes".

use super::names::Promised;
use super::spec::{self, deref, Kind, Op, Param};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// Body paths listed per operation at most; the rest is counted.
const MAX_PATHS: usize = 8;

pub fn report(old_text: &str, new_text: &str, promised: &[Promised]) -> Result<String, String> {
    let old = spec::parse(old_text).map_err(|e| format!("old spec: {e}"))?;
    let new = spec::parse(new_text).map_err(|e| format!("new spec: {e}"))?;
    let by_id = |ops: &[Op]| -> BTreeMap<String, usize> {
        ops.iter()
            .enumerate()
            .map(|(i, o)| (o.id.clone(), i))
            .collect()
    };
    let (old_ids, new_ids) = (by_id(&old.ops), by_id(&new.ops));
    let route = |o: &Op| format!("{} {}", o.method.as_str(), o.path);
    let new_by_route: BTreeMap<String, usize> = new
        .ops
        .iter()
        .enumerate()
        .map(|(i, o)| (route(o), i))
        .collect();

    // Pairs (old index, new index): same id, or same route under a new id (a rename).
    let mut pairs: Vec<(usize, usize)> = Vec::new();
    let mut renamed: Vec<(String, String)> = Vec::new();
    let mut removed: Vec<&Op> = Vec::new();
    for (id, &i) in &old_ids {
        if let Some(&j) = new_ids.get(id) {
            pairs.push((i, j));
        } else if let Some(&j) = new_by_route
            .get(&route(&old.ops[i]))
            .filter(|&&j| !old_ids.contains_key(&new.ops[j].id))
        {
            pairs.push((i, j));
            renamed.push((id.clone(), new.ops[j].id.clone()));
        } else {
            removed.push(&old.ops[i]);
        }
    }
    let paired: BTreeSet<usize> = pairs.iter().map(|&(_, j)| j).collect();
    let mut added: Vec<&Op> = (0..new.ops.len())
        .filter(|j| !paired.contains(j))
        .map(|j| &new.ops[j])
        .collect();
    added.sort_by(|a, b| a.id.cmp(&b.id));

    let mut changed: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for &(i, j) in &pairs {
        let (a, b) = (&old.ops[i], &new.ops[j]);
        let lines = op_changes(a, b, &old.doc, &new.doc);
        if !lines.is_empty() {
            changed.insert(b.id.clone(), lines);
        }
    }

    let mut affected = Vec::new();
    for p in promised {
        for (id, mp) in p.ids.iter().zip(&p.method_paths) {
            let why = match new_ids.get(id) {
                None => match renamed.iter().find(|(o, _)| o == id) {
                    Some((_, n)) => format!("`{id}` is now `{n}`"),
                    None => format!("`{id}` is gone"),
                },
                Some(&j) if route(&new.ops[j]) != *mp => {
                    format!("`{id}` moved from `{mp}` to `{}`", route(&new.ops[j]))
                }
                Some(_) => continue,
            };
            affected.push(format!("{}: {why}", p.title));
        }
    }

    let mut s = String::new();
    let _ = writeln!(
        s,
        "Klaviyo spec {} -> {}: {} operations -> {}",
        old.revision,
        new.revision,
        old.ops.len(),
        new.ops.len()
    );
    if added.is_empty() && removed.is_empty() && renamed.is_empty() && changed.is_empty() {
        s.push_str("\nno changes\n");
        return Ok(s);
    }
    section(&mut s, "Added", added.iter().map(|o| summary(o)).collect());
    section(
        &mut s,
        "Removed",
        removed.iter().map(|o| summary(o)).collect(),
    );
    section(
        &mut s,
        "Renamed (same method and path)",
        renamed.iter().map(|(a, b)| format!("{a} -> {b}")).collect(),
    );
    if !changed.is_empty() {
        let _ = writeln!(s, "\nChanged ({}):", changed.len());
        for (id, lines) in &changed {
            let _ = writeln!(s, "  {id}");
            for l in lines {
                let _ = writeln!(s, "    - {l}");
            }
        }
    }
    section(&mut s, "Promised actions affected", affected);
    Ok(s)
}

fn section(s: &mut String, title: &str, items: Vec<String>) {
    if items.is_empty() {
        return;
    }
    let _ = writeln!(s, "\n{title} ({}):", items.len());
    for i in items {
        let _ = writeln!(s, "  {i}");
    }
}

fn summary(o: &Op) -> String {
    format!(
        "{} ({} {}, {})",
        o.id,
        o.method.as_str(),
        o.path,
        o.access.as_str()
    )
}

fn kind(k: &Kind) -> String {
    match k {
        Kind::Str => "string".into(),
        Kind::Enum(v) => format!("one of {}", v.join("|")),
        Kind::List(v) if v.is_empty() => "list".into(),
        Kind::List(v) => format!("list of {}", v.join("|")),
        Kind::Int(a, b) => format!("integer {a}..={b}"),
    }
}

fn op_changes(a: &Op, b: &Op, old: &Value, new: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if (a.method, &a.path) != (b.method, &b.path) {
        out.push(format!(
            "route: {} {} -> {} {}",
            a.method.as_str(),
            a.path,
            b.method.as_str(),
            b.path
        ));
    }
    if a.access != b.access {
        out.push(format!(
            "access: {} -> {} (policies decide on this)",
            a.access.as_str(),
            b.access.as_str()
        ));
    }
    let find = |ps: &[Param], arg: &str| ps.iter().find(|p| p.arg == arg).cloned();
    for p in &b.params {
        match find(&a.params, &p.arg) {
            None => out.push(format!(
                "parameter added: `{}` ({}{})",
                p.wire,
                kind(&p.kind),
                if p.required { ", required" } else { "" }
            )),
            Some(q) => {
                if q.required != p.required {
                    out.push(format!(
                        "parameter `{}`: now {}",
                        p.wire,
                        if p.required { "required" } else { "optional" }
                    ));
                }
                if q.kind != p.kind {
                    out.push(format!(
                        "parameter `{}`: {} -> {}",
                        p.wire,
                        kind(&q.kind),
                        kind(&p.kind)
                    ));
                }
                if q.location != p.location {
                    out.push(format!(
                        "parameter `{}`: in {:?} -> {:?}",
                        p.wire, q.location, p.location
                    ));
                }
            }
        }
    }
    for q in &a.params {
        if find(&b.params, &q.arg).is_none() {
            out.push(format!("parameter removed: `{}`", q.wire));
        }
    }
    match (&a.body, &b.body) {
        (None, None) => {}
        (None, Some(_)) => out.push("request body added".into()),
        (Some(_), None) => out.push("request body removed".into()),
        (Some(x), Some(y)) => {
            if x.schema != y.schema {
                out.push(format!("body schema: {} -> {}", x.schema, y.schema));
            }
            if x.required != y.required {
                out.push(format!(
                    "body: now {}",
                    if y.required { "required" } else { "optional" }
                ));
            }
            let (sx, sy) = (
                inline(old, &old["components"]["schemas"][&x.schema], 0),
                inline(new, &new["components"]["schemas"][&y.schema], 0),
            );
            let mut paths = Vec::new();
            json_diff(&sx, &sy, "", &mut paths);
            if !paths.is_empty() {
                let n = paths.len();
                paths.truncate(MAX_PATHS);
                let more = if n > MAX_PATHS {
                    format!(" and {} more", n - MAX_PATHS)
                } else {
                    String::new()
                };
                out.push(format!("body schema changed at {}{more}", paths.join(", ")));
            }
        }
    }
    if a.rate != b.rate {
        let r = |o: &Op| {
            let mut t = format!(
                "{}/s, {}/m",
                o.rate.burst_per_second, o.rate.steady_per_minute
            );
            if let Some(d) = o.rate.daily {
                let _ = write!(t, ", {d}/d");
            }
            t
        };
        out.push(format!("rate limit: {} -> {}", r(a), r(b)));
    }
    if a.scopes != b.scopes {
        out.push(format!(
            "scopes: {} -> {}",
            a.scopes.join(", "),
            b.scopes.join(", ")
        ));
    }
    if a.client != b.client {
        out.push(format!(
            "client (public key) endpoint: {} -> {}",
            a.client, b.client
        ));
    }
    out
}

/// The schema with its `$ref`s replaced by what they point to (to a depth that ends cycles),
/// descriptions and examples dropped: what a request must look like, not how it is written.
fn inline(doc: &Value, v: &Value, depth: usize) -> Value {
    if depth > 12 {
        return Value::String("…".into());
    }
    match v {
        Value::Object(m) if m.contains_key("$ref") => inline(doc, &deref(doc, v), depth + 1),
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "description" | "example" | "title"))
                .map(|(k, x)| (k.clone(), inline(doc, x, depth + 1)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(|x| inline(doc, x, depth + 1)).collect()),
        other => other.clone(),
    }
}

/// JSON paths (`/properties/data/…`) where `a` and `b` differ: the shallowest differing node.
fn json_diff(a: &Value, b: &Value, at: &str, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let p = format!("{at}/{k}");
                match (x.get(k), y.get(k)) {
                    (Some(u), Some(v)) => json_diff(u, v, &p, out),
                    (None, Some(_)) => out.push(format!("{p} (added)")),
                    (Some(_), None) => out.push(format!("{p} (removed)")),
                    (None, None) => {}
                }
            }
        }
        _ if a == b => {}
        _ => out.push(if at.is_empty() {
            "/".into()
        } else {
            at.to_string()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> (String, Value) {
        let text =
            std::fs::read_to_string(super::super::tests::sample_dir().join("spec.json")).unwrap();
        let v = serde_json::from_str(&text).unwrap();
        (text, v)
    }

    #[test]
    fn the_same_spec_has_no_changes() {
        let (text, _) = sample();
        assert_eq!(
            report(&text, &text, &[]).unwrap(),
            "Klaviyo spec 2099-01-15 -> 2099-01-15: 10 operations -> 10\n\nno changes\n"
        );
    }

    /// A next revision of the sample spec with one change of every kind the report knows.
    #[test]
    fn a_new_revision_is_reported_change_by_change() {
        let (text, mut v) = sample();
        v["info"]["version"] = json!("2099-04-15");
        let paths = v["paths"].as_object_mut().unwrap();
        // Removed, and one promised action with it.
        paths["/api/widgets/{id}"]
            .as_object_mut()
            .unwrap()
            .remove("delete");
        // Renamed: same method and path, new id.
        paths["/api/widgets/{id}"]["patch"]["operationId"] = json!("patch_widget");
        // Added.
        paths.insert(
            "/api/gears".into(),
            json!({"get": {"operationId": "get_gears", "summary": "Get Gears", "tags": ["Gears"],
                "x-klaviyo-ratelimit": {"burst": "10/s", "steady": "150/m"},
                "x-klaviyo-scopes": ["gears:read"]}}),
        );
        let list = &mut paths["/api/widgets"]["get"];
        list["parameters"][1]["required"] = json!(true);
        list["parameters"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "include", "in": "query", "schema": {"type": "array", "items": {"type": "string", "enum": ["gears"]}}}));
        list["x-klaviyo-ratelimit"] = json!({"burst": "3/s", "steady": "60/m"});
        // The report endpoint now needs a write scope: it becomes a write.
        paths["/api/widget-reports"]["post"]["x-klaviyo-scopes"] =
            json!(["widgets:read", "widgets:write"]);
        // A nested body property changes type; a description change is not a change.
        let schemas = v["components"]["schemas"].as_object_mut().unwrap();
        schemas["Dimensions"]["properties"]["width"] = json!({"type": "integer"});
        schemas["Dimensions"]["properties"]["height"]["description"] = json!("in cm");
        let new = serde_json::to_string(&v).unwrap();

        let promised = super::super::names::parse_promised(
            "Remove a widget\tdelete_widget\tDELETE /api/widgets/{id}\n\
             Rename a widget\tupdate_widget\tPATCH /api/widgets/{id}\n\
             Get widgets\tget_widgets\tGET /api/widgets\n",
        )
        .unwrap();
        let r = report(&text, &new, &promised).unwrap();
        assert_eq!(
            r,
            "Klaviyo spec 2099-01-15 -> 2099-04-15: 10 operations -> 10

Added (1):
  get_gears (GET /api/gears, read)

Removed (1):
  delete_widget (DELETE /api/widgets/{id}, destructive)

Renamed (same method and path) (1):
  update_widget -> patch_widget

Changed (3):
  create_widget
    - body schema changed at /properties/data/properties/attributes/properties/dimensions/properties/width/type
  get_widgets
    - parameter `filter`: now required
    - parameter added: `include` (list of gears)
    - rate limit: 10/s, 150/m -> 3/s, 60/m
  query_widget_values
    - access: read -> write (policies decide on this)
    - scopes: widgets:read -> widgets:read, widgets:write

Promised actions affected (2):
  Remove a widget: `delete_widget` is gone
  Rename a widget: `update_widget` is now `patch_widget`
"
        );
    }

    #[test]
    fn a_broken_spec_is_named() {
        let (text, _) = sample();
        assert_eq!(
            report(&text, "{", &[]).err().unwrap(),
            "new spec: the spec is not JSON: EOF while parsing an object at line 1 column 1"
        );
    }
}
