//! Compact descriptions of an action, sized for an agent's context window.
//!
//! Contract:
//! - [`describe`] gives JSON (for MCP `structuredContent` and `--json`), [`describe_text`] the
//!   same for people (plain text, lines of about 100 characters at most, no JSON escapes, ending
//!   with a `klaviyo-harness call …` command that can be pasted into a POSIX shell).
//! - By default (no `path`, `full: false`) the description is compact: what the action does
//!   (the spec's first paragraph(s), at most [`DESCRIPTION_MAX`] characters), access class,
//!   scopes, rate limits, tag, title, short aliases, then the arguments, required ones first,
//!   each with its type, allowed values (the first few and a count of the rest), one line of
//!   description and where it goes (`path`, `query`, `header`, `body`). A JSON:API body is shown
//!   as its `data.attributes.*` and `data.relationships.*` fields; anything deeper is named with
//!   the `path` that describes it. Last comes `example`: minimal arguments (required only) that
//!   the request builder accepts as they are (the tests run every tool's example through
//!   `klaviyo_catalog::request::prepare`).
//! - `path` (dotted, e.g. `body.data.attributes.definition`, `sort`, or through a union by its
//!   option's name, e.g. `…definition.actions.SendEmailAction`) describes that part: every
//!   allowed value, the full filter syntax, or a sub-schema's fields two levels deep. A path that
//!   names nothing is a [`DescribeError`] naming the path and the valid keys at that point.
//! - `full: true` gives the whole JSON Schema ([`Tool::input_schema`]); with a `path`, the
//!   sub-schema there with the `$defs` it uses.
//! - Compact outputs stay small: over all tools, p95 ≤ 8 KB and max ≤ 24 KB
//!   ([`size_distribution`]; checked by the tests).
//!
//! JSON shape. Compact: `name`, `title`, `tag`, `access`, `endpoint` (operations), `description`,
//! `scopes`, `auth` (client endpoints), `rate_limit` {`burst_per_second`, `steady_per_minute`,
//! `daily`?}, `aliases`?, `arguments`, `example`, `details`. An argument or field: `name`,
//! `required` (only when true), `in` (arguments), `type`, `values` + `more_values` (the count
//! left out), `default`, `description`, `allowed` (a filter's fields and operators), `only_for`
//! (composites), `more` (`describe with path=…`); a body adds `attributes`, `relationships`
//! (`to`: the related type, `many`), `data` (other `data` fields), `items` (list bodies),
//! `fields` (non-JSON:API), or `variants` (per composite choice). With a path: `name`, `path`,
//! the same keys for that part (every value), `fields` two levels deep, `options` (a union's
//! choices, by name), `example_value`.
//!
//! Pure and deterministic (no I/O): the host and the edge component answer the same way.

use klaviyo_catalog::example::{example_args, example_for_schema};
use klaviyo_catalog::tools::{schema_defs, Tool};
use klaviyo_catalog::{BodyEncoding, Kind, Location, Method, Operation, Param};
use serde_json::{json, Map, Value};
use std::fmt;
use std::sync::OnceLock;

/// What to describe.
#[derive(Clone, Copy, Debug, Default)]
pub struct DescribeOptions<'a> {
    /// A dotted path into the arguments (`sort`, `body.data.attributes.definition`); `None` or
    /// empty for the whole action.
    pub path: Option<&'a str>,
    /// The full JSON Schema instead of the compact summary.
    pub full: bool,
}

/// A `path` that names nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DescribeError {
    pub tool: &'static str,
    /// The path as asked.
    pub path: String,
    /// The longest prefix that exists (empty: the arguments themselves).
    pub at: String,
    /// The key that is not there.
    pub key: String,
    /// The keys accepted after `at` (empty when `at` has no parts).
    pub valid: Vec<String>,
}

impl fmt::Display for DescribeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = if self.at.is_empty() {
            format!("the arguments of `{}`", self.tool)
        } else {
            format!("`{}`", self.at)
        };
        write!(
            f,
            "no path `{}` in `{}`: {at} has no `{}`",
            self.path, self.tool, self.key
        )?;
        if self.valid.is_empty() {
            write!(f, " (it has no parts to describe)")
        } else {
            write!(f, "; valid keys there: {}", self.valid.join(", "))
        }
    }
}

impl std::error::Error for DescribeError {}

/// Longest action description kept in the compact form (whole paragraphs, else sentences).
pub const DESCRIPTION_MAX: usize = 400;
/// Longest one-line description of an argument or field.
const LINE_MAX: usize = 160;
/// Enumerations longer than this are cut to [`VALUES_SHOWN`] values and a count.
const VALUES_MAX: usize = 8;
const VALUES_SHOWN: usize = 6;
/// A drill-down larger than this is shown one level less deep.
const NODE_BUDGET: usize = 12_000;
/// Width of `describe_text` lines.
const WIDTH: usize = 100;

/// The compact (default) or full description as JSON (for MCP structuredContent and `--json`).
pub fn describe(tool: Tool, opts: &DescribeOptions) -> Result<Value, DescribeError> {
    let path = opts.path.map(str::trim).filter(|p| !p.is_empty());
    match (path, opts.full) {
        (None, true) => Ok(tool.input_schema()),
        (None, false) => Ok(compact(tool)),
        (Some(p), full) => {
            let target = resolve(tool, p)?;
            Ok(if full {
                full_at(tool, &target)
            } else {
                node(tool, &target)
            })
        }
    }
}

/// The same for people: plain text, no JSON escapes, lines ≤ ~100 chars, ending with a CLI
/// example `klaviyo-harness call NAME key=value …`, shell-quoted.
pub fn describe_text(tool: Tool, opts: &DescribeOptions) -> Result<String, DescribeError> {
    let v = describe(tool, opts)?;
    if opts.full {
        return Ok(serde_json::to_string_pretty(&v).unwrap_or_default() + "\n");
    }
    let mut out = String::new();
    if v.get("path").is_some() {
        render_node(&mut out, &v);
    } else {
        render_compact(&mut out, tool, &v);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// The compact description.

fn compact(tool: Tool) -> Value {
    let mut out = Map::new();
    out.insert("name".into(), json!(tool.name()));
    out.insert("title".into(), json!(tool.title()));
    out.insert("tag".into(), json!(tool.tag()));
    out.insert("access".into(), json!(tool.access().as_str()));
    if let Tool::Op(op) = tool {
        out.insert(
            "endpoint".into(),
            json!(format!("{} {}", op.method.as_str(), op.path)),
        );
    }
    out.insert(
        "description".into(),
        json!(summary(&tool.description(), DESCRIPTION_MAX)),
    );
    out.insert("scopes".into(), json!(tool.scopes()));
    if tool.operations().iter().any(|o| o.client) {
        out.insert(
            "auth".into(),
            json!("public key (company_id, filled in by the host); no private key"),
        );
    }
    let rl = tool.rate_limit();
    let mut r =
        json!({"burst_per_second": rl.burst_per_second, "steady_per_minute": rl.steady_per_minute});
    if let Some(d) = rl.daily {
        r["daily"] = json!(d);
    }
    out.insert("rate_limit".into(), r);
    let aliases: Vec<&str> = tool
        .aliases()
        .into_iter()
        .filter(|a| a.len() <= 48)
        .take(5)
        .collect();
    if !aliases.is_empty() {
        out.insert("aliases".into(), json!(aliases));
    }
    out.insert("arguments".into(), Value::Array(arguments(tool)));
    out.insert("example".into(), example(tool));
    out.insert(
        "details".into(),
        json!("describe with path=<argument or dotted path> for one part (all values, the fields inside), or full=true for the whole JSON Schema"),
    );
    Value::Object(out)
}

/// Argument names in order (required first) with whether each is required. Mirrors
/// [`Tool::input_schema`] (the tests check they agree) without building its `$defs`.
fn argument_names(tool: Tool) -> Vec<(String, bool)> {
    let ops = tool.operations();
    let mut names: Vec<&str> = Vec::new();
    let mut required: Vec<&str> = Vec::new();
    if let Tool::Composite(c) = tool {
        names.push(c.selector);
        required.push(c.selector);
    }
    for op in &ops {
        for p in op.params {
            if names.contains(&p.arg) {
                continue;
            }
            names.push(p.arg);
            let in_all = ops
                .iter()
                .all(|o| o.params.iter().any(|q| q.arg == p.arg && q.required));
            if p.required && in_all && p.arg != "company_id" {
                required.push(p.arg);
            }
        }
    }
    if ops.iter().any(|o| o.body.is_some()) {
        names.push("body");
        if ops
            .iter()
            .all(|o| o.body.as_ref().is_some_and(|b| b.required))
        {
            required.push("body");
        }
    }
    let mut out: Vec<(String, bool)> = required.iter().map(|r| (r.to_string(), true)).collect();
    out.extend(
        names
            .iter()
            .filter(|n| !required.contains(n))
            .map(|n| (n.to_string(), false)),
    );
    out
}

fn arguments(tool: Tool) -> Vec<Value> {
    argument_names(tool)
        .into_iter()
        .map(|(name, required)| argument(tool, &name, required, false))
        .collect()
}

/// The entry of one argument; `all` shows every value and the whole description.
fn argument(tool: Tool, name: &str, required: bool, all: bool) -> Value {
    let ops = tool.operations();
    if let Tool::Composite(c) = tool {
        if name == c.selector {
            let values: Vec<&str> = c.choices.iter().map(|(v, _)| *v).collect();
            let mut e = entry(name, required);
            e.insert("in".into(), json!("selector"));
            e.insert("type".into(), json!("string"));
            put_values(&mut e, values.iter().map(|v| json!(v)).collect(), all);
            e.insert(
                "description".into(),
                json!("Which relationship: picks the endpoint."),
            );
            return Value::Object(e);
        }
    }
    if name == "body" {
        return body_argument(tool, required);
    }
    let p = ops
        .iter()
        .flat_map(|o| o.params.iter())
        .find(|p| p.arg == name)
        .expect("argument names come from the params");
    let mut e = param_entry(p, required, all);
    if let Tool::Composite(c) = tool {
        let only: Vec<&str> = c
            .choices
            .iter()
            .zip(&ops)
            .filter(|(_, o)| o.params.iter().any(|q| q.arg == name))
            .map(|((v, _), _)| *v)
            .collect();
        if only.len() < ops.len() {
            e.insert(
                "only_for".into(),
                json!(format!("{}={}", c.selector, only.join("|"))),
            );
        }
    }
    Value::Object(e)
}

fn entry(name: &str, required: bool) -> Map<String, Value> {
    let mut e = Map::new();
    e.insert("name".into(), json!(name));
    if required {
        e.insert("required".into(), json!(true));
    }
    e
}

fn put_values(e: &mut Map<String, Value>, values: Vec<Value>, all: bool) {
    if values.is_empty() {
        return;
    }
    if all || values.len() <= VALUES_MAX {
        e.insert("values".into(), Value::Array(values));
    } else {
        let more = values.len() - VALUES_SHOWN;
        e.insert(
            "values".into(),
            Value::Array(values.into_iter().take(VALUES_SHOWN).collect()),
        );
        e.insert("more_values".into(), json!(more));
    }
}

fn param_entry(p: &Param, required: bool, all: bool) -> Map<String, Value> {
    let mut e = entry(p.arg, required);
    e.insert(
        "in".into(),
        json!(match p.location {
            Location::Path => "path",
            Location::Query => "query",
            Location::Header => "header",
        }),
    );
    match p.kind {
        Kind::String => {
            e.insert("type".into(), json!("string"));
        }
        Kind::Enum(values) => {
            e.insert("type".into(), json!("string"));
            put_values(&mut e, values.iter().map(|v| json!(v)).collect(), all);
        }
        Kind::List(values) => {
            e.insert("type".into(), json!("string[]"));
            put_values(&mut e, values.iter().map(|v| json!(v)).collect(), all);
        }
        Kind::Integer { min, max } => {
            e.insert("type".into(), json!(format!("integer ({min}..{max})")));
        }
    }
    let (head, allowed) = split_filter(p.description);
    let mut desc = if all {
        summary(head, usize::MAX)
    } else {
        one_line(head)
    };
    if p.arg == "company_id" {
        desc = join_sentences(
            &desc,
            "Defaults to the public key the host is configured with.",
        );
    }
    if !desc.is_empty() {
        e.insert("description".into(), json!(desc));
    }
    if let Some(a) = allowed {
        e.insert("allowed".into(), json!(a));
    }
    e
}

fn join_sentences(a: &str, b: &str) -> String {
    if a.is_empty() {
        b.to_string()
    } else {
        format!("{a} {b}")
    }
}

/// Splits a filter description into its text and the allowed fields/operators, grouped by
/// operator set: `id, email: any, equals; created: greater-than, less-than`.
fn split_filter(desc: &str) -> (&str, Option<String>) {
    const MARK: &str = "Allowed field(s)/operator(s):";
    let Some(i) = desc.find(MARK) else {
        return (desc, None);
    };
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for line in desc[i + MARK.len()..].lines() {
        let Some((field, ops)) = line.trim().split_once(':') else {
            continue;
        };
        let field = field.trim().trim_matches('`').to_string();
        let ops: Vec<&str> = ops
            .split(',')
            .map(|o| o.trim().trim_matches('`'))
            .filter(|o| !o.is_empty())
            .collect();
        if field.is_empty() || ops.is_empty() {
            continue;
        }
        let ops = ops.join(", ");
        match groups.iter_mut().find(|(o, _)| *o == ops) {
            Some((_, fields)) => fields.push(field),
            None => groups.push((ops, vec![field])),
        }
    }
    let text = groups
        .iter()
        .map(|(ops, fields)| format!("{}: {ops}", fields.join(", ")))
        .collect::<Vec<_>>()
        .join("; ");
    (desc[..i].trim_end(), (!text.is_empty()).then_some(text))
}

// ---------------------------------------------------------------------------------------------
// Bodies.

fn body_argument(tool: Tool, required: bool) -> Value {
    let mut e = entry("body", required);
    e.insert("in".into(), json!("body"));
    let ops = tool.operations();
    let summaries: Vec<(String, Map<String, Value>)> = ops
        .iter()
        .enumerate()
        .filter(|(_, o)| o.body.is_some())
        .map(|(i, o)| {
            let label = match tool {
                Tool::Composite(c) => c.choices[i].0.to_string(),
                Tool::Op(_) => String::new(),
            };
            (label, body_summary(o))
        })
        .collect();
    if summaries.iter().all(|(_, s)| *s == summaries[0].1) {
        e.extend(summaries.into_iter().next().unwrap().1);
    } else {
        e.insert("type".into(), json!("object"));
        let sel = match tool {
            Tool::Composite(c) => c.selector,
            Tool::Op(_) => "",
        };
        e.insert(
            "description".into(),
            json!(format!("Its shape depends on `{sel}`; see variants.")),
        );
        let mut variants = Map::new();
        for (label, s) in summaries {
            variants.insert(label, Value::Object(s));
        }
        e.insert("variants".into(), Value::Object(variants));
    }
    Value::Object(e)
}

fn body_summary(op: &Operation) -> Map<String, Value> {
    let b = op.body.as_ref().expect("operation has a body");
    let root = def(b.schema);
    let mut e = Map::new();
    e.insert("type".into(), json!("object"));
    if b.encoding == BodyEncoding::Multipart {
        e.insert(
            "description".into(),
            json!("The upload: `file` is the image as base64 text; sent as multipart/form-data."),
        );
        e.insert("fields".into(), Value::Array(fields_of(root, "body", 0)));
        return e;
    }
    let data = norm(root).prop("data");
    let dn = data.map(norm);
    let dtype = b.data_type.unwrap_or("…");
    let mut desc = String::new();
    if let Some(items) = dn.as_ref().and_then(|d| d.items()) {
        desc.push_str(&format!(
            "JSON:API document {{\"data\": [{{\"type\": \"{dtype}\", \"id\": …}}, …]}}; `type` is filled in, so a plain list of ids is accepted."
        ));
        let fields: Vec<Value> = fields_of(items, "body.data", 0)
            .into_iter()
            .filter(|f| f["name"] != "type" || b.data_type.is_none())
            .collect();
        e.insert("description".into(), json!(desc));
        e.insert("items".into(), Value::Array(fields));
        return e;
    }
    let Some(dn) = dn else {
        e.insert("fields".into(), Value::Array(fields_of(root, "body", 0)));
        return e;
    };
    let patch_id = op.method == Method::Patch && op.params.iter().any(|p| p.wire == "id");
    desc.push_str(&format!(
        "JSON:API document {{\"data\": {{…}}}}; `data.type` (\"{dtype}\"){} filled in.",
        if patch_id {
            " and `data.id` (from the path `id`) are"
        } else {
            " is"
        }
    ));
    let mut data_fields: Vec<Value> = Vec::new();
    for (k, v, req) in dn.props() {
        match k {
            "type" if b.data_type.is_some() => {}
            "id" if patch_id => {}
            "attributes" => {
                e.insert(
                    "attributes".into(),
                    Value::Array(fields_of(v, "body.data.attributes", 0)),
                );
                desc.push_str(" A bare attributes object is accepted too.");
            }
            "relationships" => {
                let rn = norm(v);
                let rels: Vec<Value> = rn
                    .props()
                    .map(|(rk, rv, rreq)| {
                        relationship(rk, rv, rreq, &format!("body.data.relationships.{rk}"))
                    })
                    .collect();
                e.insert("relationships".into(), Value::Array(rels));
                desc.push_str(" A relationship is {\"data\": {\"type\": …, \"id\": …}} (a list of them when `many`).");
            }
            _ => data_fields.push(field_entry(k, v, req, &format!("body.data.{k}"), 0)),
        }
    }
    if !data_fields.is_empty() {
        e.insert("data".into(), Value::Array(data_fields));
    }
    e.insert("description".into(), json!(desc));
    e
}

fn relationship(name: &str, v: &'static Value, required: bool, path: &str) -> Value {
    let n = norm(v);
    let target = n.prop("data").map(|d| {
        let dn = norm(d);
        match dn.items() {
            Some(items) => (true, norm(items)),
            None => (false, dn),
        }
    });
    let to = target.as_ref().and_then(|(_, t)| {
        t.prop("type")
            .map(norm)
            .and_then(|tn| match tn.s.get("enum") {
                Some(Value::Array(a)) if a.len() == 1 => a[0].as_str(),
                _ => None,
            })
    });
    let (Some((many, t)), Some(to)) = (target.as_ref(), to) else {
        return field_entry(name, v, required, path, 0);
    };
    let mut e = entry(name, required);
    e.insert("type".into(), json!("relationship"));
    e.insert("to".into(), json!(to));
    if *many {
        e.insert("many".into(), json!(true));
    }
    let desc = t
        .prop("id")
        .and_then(|i| norm(i).desc)
        .or(n.desc)
        .map(one_line)
        .unwrap_or_default();
    if !desc.is_empty() {
        e.insert("description".into(), json!(desc));
    }
    Value::Object(e)
}

// ---------------------------------------------------------------------------------------------
// JSON Schema nodes (the body `$defs` are static, so nodes are `&'static Value`).

fn empty() -> &'static Value {
    static EMPTY: OnceLock<Value> = OnceLock::new();
    EMPTY.get_or_init(|| json!({}))
}

fn empty_map() -> &'static Map<String, Value> {
    empty().as_object().unwrap()
}

fn def(name: &str) -> &'static Value {
    schema_defs().get(name).unwrap_or(empty())
}

/// A schema with `$ref`s and single-branch unions (nullable) unwrapped.
struct Norm {
    s: &'static Map<String, Value>,
    /// The first description met while unwrapping (the property's own wins over its `$ref`'s).
    desc: Option<&'static str>,
    /// Union branches (two or more, `null` left out) with something inside, labelled.
    branches: Vec<(String, &'static Value)>,
    /// A union of plain values (`string or integer`, enums): shown as one type, not options.
    simple: Vec<&'static Value>,
}

fn norm(mut v: &'static Value) -> Norm {
    let mut desc: Option<&'static str> = None;
    for _ in 0..64 {
        let Some(m) = v.as_object() else { break };
        if desc.is_none() {
            desc = m.get("description").and_then(Value::as_str);
        }
        if let Some(r) = m.get("$ref").and_then(Value::as_str) {
            v = def(r.trim_start_matches("#/$defs/"));
            continue;
        }
        let branches: Vec<&'static Value> = ["oneOf", "anyOf"]
            .iter()
            .filter_map(|k| m.get(*k).and_then(Value::as_array))
            .flatten()
            .filter(|b| b.get("type") != Some(&json!("null")))
            .collect();
        if branches.len() == 1 {
            v = branches[0];
            continue;
        }
        if branches.len() > 1 && branches.iter().all(|b| is_plain(b, 0)) {
            return Norm {
                s: m,
                desc,
                branches: Vec::new(),
                simple: branches,
            };
        }
        let mut labelled: Vec<(String, &'static Value)> = Vec::new();
        for (i, b) in branches.iter().enumerate() {
            let mut l = label(b);
            if labelled.iter().any(|(x, _)| *x == l) {
                l = format!("{l}{}", i + 1);
            }
            labelled.push((l, b));
        }
        return Norm {
            s: m,
            desc,
            branches: labelled,
            simple: Vec::new(),
        };
    }
    Norm {
        s: empty_map(),
        desc,
        branches: Vec::new(),
        simple: Vec::new(),
    }
}

/// Whether a schema is a plain value (no properties, no options with properties), looked at
/// without building a [`Norm`] (which calls this).
fn is_plain(mut v: &'static Value, depth: usize) -> bool {
    for _ in 0..64 {
        let Some(m) = v.as_object() else { return true };
        if let Some(r) = m.get("$ref").and_then(Value::as_str) {
            v = def(r.trim_start_matches("#/$defs/"));
            continue;
        }
        if m.get("properties")
            .and_then(Value::as_object)
            .is_some_and(|p| !p.is_empty())
        {
            return false;
        }
        let branches: Vec<&'static Value> = ["oneOf", "anyOf"]
            .iter()
            .filter_map(|k| m.get(*k).and_then(Value::as_array))
            .flatten()
            .collect();
        if depth > 8 {
            return false;
        }
        if !branches.is_empty() {
            return branches.iter().all(|b| is_plain(b, depth + 1));
        }
        return match m.get("items") {
            Some(items) => is_plain(items, depth + 1),
            None => true,
        };
    }
    false
}

/// A union branch's name: its `$defs` name, else its fixed `type` value, else its type.
fn label(b: &'static Value) -> String {
    if let Some(r) = b.get("$ref").and_then(Value::as_str) {
        return r.trim_start_matches("#/$defs/").to_string();
    }
    let n = norm(b);
    if let Some(t) = n.prop("type").map(norm) {
        if let Some(Value::Array(a)) = t.s.get("enum") {
            if let [Value::String(s)] = a.as_slice() {
                return s.clone();
            }
        }
    }
    type_str(b).replace(' ', "_")
}

impl Norm {
    fn types(&self) -> Vec<&'static str> {
        match self.s.get("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(ts)) => ts
                .iter()
                .filter_map(Value::as_str)
                .filter(|t| *t != "null")
                .collect(),
            _ if self.s.contains_key("properties") => vec!["object"],
            _ => vec![],
        }
    }

    fn is_array(&self) -> bool {
        self.branches.is_empty() && self.simple.is_empty() && self.types() == ["array"]
    }

    fn items(&self) -> Option<&'static Value> {
        if self.is_array() {
            Some(self.s.get("items").unwrap_or(empty()))
        } else {
            None
        }
    }

    fn properties(&self) -> Option<&'static Map<String, Value>> {
        self.s.get("properties").and_then(Value::as_object)
    }

    fn prop(&self, k: &str) -> Option<&'static Value> {
        self.properties().and_then(|p| p.get(k))
    }

    fn required(&self) -> Vec<&'static str> {
        self.s
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect()
    }

    /// Properties, required ones first (in the schema's order), then the others by name.
    fn props(&self) -> impl Iterator<Item = (&'static str, &'static Value, bool)> {
        let props = self.properties();
        let req = self.required();
        let mut out: Vec<(&'static str, &'static Value, bool)> = req
            .iter()
            .filter_map(|r| props.and_then(|p| p.get_key_value(*r)))
            .map(|(k, v)| (k.as_str(), v, true))
            .collect();
        for (k, v) in props.into_iter().flatten() {
            if !req.contains(&k.as_str()) {
                out.push((k.as_str(), v, false));
            }
        }
        out.into_iter()
    }

    fn values(&self) -> Vec<Value> {
        if !self.simple.is_empty() {
            let members: Vec<Norm> = self.simple.iter().map(|b| norm(b)).collect();
            if !members.iter().all(|m| m.s.contains_key("enum")) {
                return Vec::new();
            }
            return members.iter().flat_map(|m| m.values()).collect();
        }
        match self.s.get("enum") {
            Some(Value::Array(a)) => a.iter().filter(|v| !v.is_null()).cloned().collect(),
            _ => Vec::new(),
        }
    }
}

/// Whether there is more inside: an object with properties, a union, or a list of those.
fn has_inner(v: &'static Value) -> bool {
    let n = norm(v);
    if !n.branches.is_empty() {
        return true;
    }
    if let Some(items) = n.items() {
        return has_inner(items);
    }
    n.properties().is_some_and(|p| !p.is_empty())
}

/// A short type: `string`, `string (date-time)`, `integer (1..100)`, `object`, `string[]`,
/// `list of one of: A, B, … (+3 more)`.
fn type_str(v: &'static Value) -> String {
    type_str_depth(v, 0)
}

fn type_str_depth(v: &'static Value, depth: usize) -> String {
    if depth > 8 {
        return "any".into();
    }
    let n = norm(v);
    if !n.branches.is_empty() {
        let labels: Vec<&str> = n.branches.iter().map(|(l, _)| l.as_str()).collect();
        return format!("one of: {}", cut_list(&labels, 4));
    }
    if !n.simple.is_empty() {
        let mut types: Vec<String> = Vec::new();
        for b in &n.simple {
            let t = type_str_depth(b, depth + 1);
            if !types.contains(&t) {
                types.push(t);
            }
        }
        return types.join(" or ");
    }
    if let Some(items) = n.items() {
        let it = type_str_depth(items, depth + 1);
        return if it.contains(' ') {
            format!("list of {it}")
        } else {
            format!("{it}[]")
        };
    }
    let types = n.types();
    if types.is_empty() {
        return if n.s.contains_key("enum") {
            "string".into()
        } else {
            "any".into()
        };
    }
    let mut parts: Vec<String> = Vec::new();
    for t in types {
        parts.push(match t {
            "string" => match n.s.get("format").and_then(Value::as_str) {
                Some(f) => format!("string ({f})"),
                None if n.s.contains_key("contentEncoding") => "string (base64)".into(),
                None => "string".into(),
            },
            "integer" | "number" => {
                let min = n.s.get("minimum");
                let max = n.s.get("maximum");
                match (min, max) {
                    (Some(a), Some(b)) => format!("{t} ({a}..{b})"),
                    (Some(a), None) => format!("{t} (≥ {a})"),
                    (None, Some(b)) => format!("{t} (≤ {b})"),
                    _ => t.to_string(),
                }
            }
            "object" if n.properties().is_none_or(|p| p.is_empty()) => {
                if n.s.get("additionalProperties") == Some(&json!(false)) {
                    "object (empty)".into()
                } else {
                    "object (any keys)".into()
                }
            }
            other => other.to_string(),
        });
    }
    parts.join(" or ")
}

fn cut_list(items: &[&str], shown: usize) -> String {
    if items.len() <= shown + 1 {
        items.join(", ")
    } else {
        format!(
            "{}, … (+{} more)",
            items[..shown].join(", "),
            items.len() - shown
        )
    }
}

/// One field: name, required, type, values, default, one line of description, and either its
/// fields (`levels` > 0) or the path that describes them.
fn field_entry(name: &str, v: &'static Value, required: bool, path: &str, levels: usize) -> Value {
    let n = norm(v);
    let mut e = entry(name, required);
    e.insert("type".into(), json!(type_str(v)));
    let vals = match n.items() {
        Some(items) if n.branches.is_empty() => norm(items).values(),
        _ => n.values(),
    };
    put_values(&mut e, vals, false);
    if let Some(d) =
        n.s.get("default")
            .filter(|d| !d.is_object() && !d.is_array())
    {
        e.insert("default".into(), d.clone());
    }
    if let Some(d) = n.desc.map(one_line).filter(|d| !d.is_empty()) {
        e.insert("description".into(), json!(d));
    }
    if has_inner(v) {
        let inner = n.items().map(norm).unwrap_or(n);
        if levels > 0 && inner.branches.is_empty() {
            e.insert(
                "fields".into(),
                Value::Array(fields_of(v, path, levels - 1)),
            );
        } else {
            e.insert("more".into(), json!(format!("describe with path={path}")));
        }
    }
    Value::Object(e)
}

/// The fields of an object schema (through lists).
fn fields_of(v: &'static Value, path: &str, levels: usize) -> Vec<Value> {
    let mut n = norm(v);
    if let Some(items) = n.items() {
        n = norm(items);
    }
    n.props()
        .map(|(k, pv, req)| field_entry(k, pv, req, &format!("{path}.{k}"), levels))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Drill-down.

/// What a path names.
enum Target {
    Param(String, bool),
    Selector,
    Body(bool),
    /// Inside the body: the schema, the path as written canonically, required in its parent.
    Schema(&'static Value, String, bool),
    /// One branch of a composite's body.
    BodyVariant(&'static Operation, String),
}

fn resolve(tool: Tool, path: &str) -> Result<Target, DescribeError> {
    let segs: Vec<String> = path
        .split('.')
        .map(|s| match s.find('[') {
            Some(i) => s[..i].to_string(),
            None => s.to_string(),
        })
        .filter(|s| !s.is_empty())
        .collect();
    let err = |at: &str, key: &str, valid: Vec<String>| DescribeError {
        tool: tool.name(),
        path: path.to_string(),
        at: at.to_string(),
        key: key.to_string(),
        valid,
    };
    let names = argument_names(tool);
    let Some(first) = segs.first() else {
        return Err(err("", "", names.into_iter().map(|(n, _)| n).collect()));
    };
    let Some((_, req)) = names.iter().find(|(n, _)| n == first) else {
        return Err(err("", first, names.into_iter().map(|(n, _)| n).collect()));
    };
    let mut target = if first == "body" {
        Target::Body(*req)
    } else if matches!(tool, Tool::Composite(c) if c.selector == first) {
        Target::Selector
    } else {
        Target::Param(first.clone(), *req)
    };
    let mut at = first.clone();
    for seg in &segs[1..] {
        let next = match &target {
            Target::Param(..) | Target::Selector => return Err(err(&at, seg, Vec::new())),
            Target::Body(_) => {
                let ops: Vec<&'static Operation> = tool
                    .operations()
                    .into_iter()
                    .filter(|o| o.body.is_some())
                    .collect();
                if let Tool::Composite(c) = tool {
                    if let Some(i) = c.choices.iter().position(|(v, _)| v == seg) {
                        let op = tool.operations()[i];
                        if op.body.is_none() {
                            return Err(err(&at, seg, Vec::new()));
                        }
                        target = Target::BodyVariant(op, format!("{at}.{seg}"));
                        at = format!("{at}.{seg}");
                        continue;
                    }
                }
                let mut found = None;
                let mut valid: Vec<String> = Vec::new();
                for op in &ops {
                    let root = def(op.body.as_ref().unwrap().schema);
                    match step(root, seg) {
                        Ok(x) => {
                            found = Some(x);
                            break;
                        }
                        Err(v) => valid.extend(v),
                    }
                }
                if let Tool::Composite(c) = tool {
                    valid.extend(c.choices.iter().map(|(v, _)| v.to_string()));
                }
                match found {
                    Some((v, req)) => Target::Schema(v, format!("{at}.{seg}"), req),
                    None => return Err(err(&at, seg, dedup(valid))),
                }
            }
            Target::BodyVariant(op, _) => {
                let root = def(op.body.as_ref().unwrap().schema);
                match step(root, seg) {
                    Ok((v, req)) => Target::Schema(v, format!("{at}.{seg}"), req),
                    Err(valid) => return Err(err(&at, seg, dedup(valid))),
                }
            }
            Target::Schema(v, _, _) => match step(v, seg) {
                Ok((x, req)) => Target::Schema(x, format!("{at}.{seg}"), req),
                Err(valid) => return Err(err(&at, seg, dedup(valid))),
            },
        };
        at = format!("{at}.{seg}");
        target = next;
    }
    Ok(target)
}

fn dedup(mut v: Vec<String>) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    v.retain(|x| {
        if seen.contains(x) {
            false
        } else {
            seen.push(x.clone());
            true
        }
    });
    v
}

/// One step into a schema: a property (lists are transparent), or a union's option by name
/// (or 1-based number), or a property of the first option that has it.
fn step(v: &'static Value, seg: &str) -> Result<(&'static Value, bool), Vec<String>> {
    step_depth(v, seg, 0)
}

fn step_depth(
    v: &'static Value,
    seg: &str,
    depth: usize,
) -> Result<(&'static Value, bool), Vec<String>> {
    if depth > 16 {
        return Err(Vec::new());
    }
    let n = norm(v);
    if let Some(items) = n.items() {
        return step_depth(items, seg, depth + 1);
    }
    if !n.branches.is_empty() {
        let by_number = seg
            .parse::<usize>()
            .ok()
            .and_then(|i| i.checked_sub(1))
            .and_then(|i| n.branches.get(i));
        if let Some((_, b)) = n
            .branches
            .iter()
            .find(|(l, _)| l.eq_ignore_ascii_case(seg))
            .or(by_number)
        {
            return Ok((b, true));
        }
        let mut valid: Vec<String> = n.branches.iter().map(|(l, _)| l.clone()).collect();
        for (_, b) in &n.branches {
            match step_depth(b, seg, depth + 1) {
                Ok(x) => return Ok(x),
                Err(v) => valid.extend(v.into_iter().filter(|k| !k.is_empty())),
            }
        }
        return Err(valid);
    }
    match n.prop(seg) {
        Some(p) => Ok((p, n.required().contains(&seg))),
        None => Err(n.props().map(|(k, _, _)| k.to_string()).collect()),
    }
}

fn node(tool: Tool, target: &Target) -> Value {
    let mut out = Map::new();
    out.insert("name".into(), json!(tool.name()));
    let arg = match (target, tool) {
        (Target::Param(n, r), _) => Some((n.as_str(), *r)),
        (Target::Selector, Tool::Composite(c)) => Some((c.selector, true)),
        _ => None,
    };
    if let Some((name, req)) = arg {
        out.insert("path".into(), json!(name));
        if let Value::Object(a) = argument(tool, name, req, true) {
            out.extend(a.into_iter().filter(|(k, _)| k != "name"));
        }
        return Value::Object(out);
    }
    match target {
        Target::Body(req) => {
            out.insert("path".into(), json!("body"));
            if let Value::Object(a) = body_argument(tool, *req) {
                out.extend(a.into_iter().filter(|(k, _)| k != "name"));
            }
        }
        Target::BodyVariant(op, path) => {
            out.insert("path".into(), json!(path));
            out.extend(body_summary(op));
        }
        Target::Schema(v, path, req) => {
            out.insert("path".into(), json!(path));
            if *req {
                out.insert("required".into(), json!(true));
            }
            out.extend(schema_node(v, path));
        }
        Target::Param(..) | Target::Selector => {}
    }
    Value::Object(out)
}

/// A sub-schema in detail: type, all values, description, fields two levels deep (one when that
/// is too big), union options with their fields, and an example value.
fn schema_node(v: &'static Value, path: &str) -> Map<String, Value> {
    let n = norm(v);
    let mut out = Map::new();
    out.insert("type".into(), json!(type_str(v)));
    let inner = n.items().map(norm).unwrap_or(norm(v));
    let vals = if inner.branches.is_empty() {
        inner.values()
    } else {
        n.values()
    };
    put_values(&mut out, vals, true);
    if let Some(d) = n.s.get("default") {
        out.insert("default".into(), d.clone());
    }
    if let Some(d) = n.desc.map(|d| summary(d, DESCRIPTION_MAX)) {
        out.insert("description".into(), json!(d));
    }
    if !inner.branches.is_empty() {
        let options = |levels: Option<usize>| -> Value {
            Value::Array(
                inner
                    .branches
                    .iter()
                    .map(|(l, b)| {
                        let p = format!("{path}.{l}");
                        let mut o = Map::new();
                        o.insert("name".into(), json!(l));
                        let bn = norm(b);
                        if let Some(d) = bn.desc.map(one_line) {
                            o.insert("description".into(), json!(d));
                        }
                        match levels {
                            Some(lv) if bn.properties().is_some() => {
                                o.insert("fields".into(), Value::Array(fields_of(b, &p, lv)));
                            }
                            _ => {
                                o.insert("type".into(), json!(type_str(b)));
                                if has_inner(b) {
                                    o.insert(
                                        "more".into(),
                                        json!(format!("describe with path={p}")),
                                    );
                                }
                            }
                        }
                        Value::Object(o)
                    })
                    .collect(),
            )
        };
        let mut opts = options(Some(0));
        if size(&opts) > NODE_BUDGET {
            opts = options(None);
        }
        out.insert("options".into(), opts);
    } else if inner.properties().is_some_and(|p| !p.is_empty()) {
        let mut fields = Value::Array(fields_of(v, path, 1));
        if size(&fields) > NODE_BUDGET {
            fields = Value::Array(fields_of(v, path, 0));
        }
        out.insert("fields".into(), fields);
    }
    let ex = example_for_schema(v);
    let filled = match &ex {
        Value::Object(m) => !m.is_empty(),
        Value::Array(a) => !a.is_empty(),
        _ => false,
    };
    if filled && size(&ex) <= 1500 {
        out.insert("example_value".into(), ex);
    }
    out
}

fn size(v: &Value) -> usize {
    serde_json::to_string(v).map(|s| s.len()).unwrap_or(0)
}

/// `full: true` with a path: the raw sub-schema and the `$defs` it uses.
fn full_at(tool: Tool, target: &Target) -> Value {
    let schema = tool.input_schema();
    let (path, sub) = match target {
        Target::Param(name, _) => (name.clone(), schema["properties"][name].clone()),
        Target::Selector => {
            let sel = match tool {
                Tool::Composite(c) => c.selector,
                Tool::Op(_) => "",
            };
            (sel.to_string(), schema["properties"][sel].clone())
        }
        Target::Body(_) => ("body".into(), schema["properties"]["body"].clone()),
        Target::BodyVariant(op, p) => (
            p.clone(),
            json!({"$ref": format!("#/$defs/{}", op.body.as_ref().unwrap().schema)}),
        ),
        Target::Schema(v, p, _) => (p.clone(), (*v).clone()),
    };
    let mut defs = Map::new();
    let mut todo = vec![sub.clone()];
    while let Some(v) = todo.pop() {
        match v {
            Value::Object(m) => {
                if let Some(name) = m
                    .get("$ref")
                    .and_then(Value::as_str)
                    .and_then(|r| r.strip_prefix("#/$defs/"))
                {
                    if !defs.contains_key(name) {
                        if let Some(d) = schema_defs().get(name) {
                            defs.insert(name.to_string(), d.clone());
                            todo.push(d.clone());
                        }
                    }
                }
                todo.extend(m.into_iter().map(|(_, v)| v));
            }
            Value::Array(a) => todo.extend(a),
            _ => {}
        }
    }
    let mut out = json!({"name": tool.name(), "path": path, "schema": sub});
    if !defs.is_empty() {
        out["$defs"] = Value::Object(defs);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Examples.

/// Minimal arguments (required only) that the request builder accepts as they are, in the
/// short forms it completes: no `data.type`, no `data.id` on PATCH, a bare attributes object,
/// a plain list of ids for relationship bodies.
fn example(tool: Tool) -> Value {
    let mut ex = example_args(tool, false);
    let ops = tool.operations();
    let op = match tool {
        Tool::Composite(c) => {
            let sel = ex.get(c.selector).and_then(Value::as_str).unwrap_or("");
            let i = c.choices.iter().position(|(v, _)| *v == sel).unwrap_or(0);
            ops[i]
        }
        Tool::Op(op) => op,
    };
    let Some(b) = op.body.as_ref() else {
        return ex;
    };
    if b.encoding != BodyEncoding::JsonApi || b.data_type.is_none() {
        return ex;
    }
    let path_id = ex.get("id").cloned();
    let Some(body) = ex.get_mut("body") else {
        return ex;
    };
    let short = match body.get("data").cloned() {
        Some(Value::Array(items)) => {
            let ids: Option<Vec<Value>> = items
                .iter()
                .map(|i| {
                    let m = i.as_object()?;
                    let only_id = m.keys().all(|k| k == "id" || k == "type");
                    only_id.then(|| m.get("id").cloned()).flatten()
                })
                .collect();
            ids.map(Value::Array)
        }
        Some(Value::Object(mut d)) => {
            d.remove("type");
            if op.method == Method::Patch && d.get("id") == path_id.as_ref() && path_id.is_some() {
                d.remove("id");
            }
            let resource_keys = ["type", "id", "attributes", "relationships", "meta"];
            match d.get("attributes") {
                Some(Value::Object(a))
                    if d.len() == 1
                        && !a.contains_key("data")
                        && !((a.contains_key("attributes") || a.contains_key("relationships"))
                            && a.keys().all(|k| resource_keys.contains(&k.as_str()))) =>
                {
                    Some(Value::Object(a.clone()))
                }
                _ => Some(json!({ "data": d })),
            }
        }
        _ => None,
    };
    if let Some(s) = short {
        *body = s;
    }
    ex
}

/// Quotes a word for a POSIX shell: bare when safe, else in single quotes, else in double
/// quotes when that needs no escapes, else single quotes with `'\''` for each `'`.
pub fn shell_quote(s: &str) -> String {
    let safe = |b: u8| b.is_ascii_alphanumeric() || b"_-.,/:@%+=".contains(&b);
    if !s.is_empty() && s.bytes().all(safe) {
        return s.to_string();
    }
    if !s.contains('\'') {
        return format!("'{s}'");
    }
    if !s.contains(['"', '$', '`', '\\', '!']) {
        return format!("\"{s}\"");
    }
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// `klaviyo-harness call NAME key=value …` with the example arguments, shell-quoted. A value is
/// given as text unless it is JSON (the CLI reads a value as JSON when it parses as JSON, else as
/// text); long JSON values are spread over lines inside their quotes (JSON ignores the spaces).
pub fn cli_example(tool: Tool) -> String {
    let ex = example(tool);
    let mut keys: Vec<&String> = ex
        .as_object()
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    let selector = match tool {
        Tool::Composite(c) => c.selector,
        Tool::Op(_) => "",
    };
    keys.sort_by_key(|k| (k.as_str() != selector, k.as_str() == "body", k.as_str()));
    let words: Vec<String> = keys
        .iter()
        .map(|k| {
            let v = &ex[k.as_str()];
            let text = match v {
                Value::String(s) if serde_json::from_str::<Value>(s).is_err() => s.clone(),
                Value::Object(_) | Value::Array(_) if v.to_string().len() > 70 => {
                    let pretty = serde_json::to_string_pretty(v).unwrap_or_default();
                    pretty.replace('\n', "\n    ")
                }
                other => other.to_string(),
            };
            format!("{k}={}", shell_quote(&text))
        })
        .collect();
    let head = format!("klaviyo-harness call {}", tool.name());
    let one = std::iter::once(head.clone())
        .chain(words.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ");
    // `describe_text` indents it by two.
    if one.chars().count() + 2 <= WIDTH && !one.contains('\n') {
        return one;
    }
    let mut out = head;
    for w in words {
        out.push_str(" \\\n  ");
        out.push_str(&w);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Sizes.

/// Sizes in bytes of one description per tool (`serde_json::to_string`), sorted ascending.
#[derive(Clone, Debug)]
pub struct SizeDistribution {
    pub sizes: Vec<(&'static str, usize)>,
}

impl SizeDistribution {
    /// Nearest-rank percentile (`p` in 0..=100).
    pub fn percentile(&self, p: usize) -> (&'static str, usize) {
        let n = self.sizes.len();
        let rank = (p * n).div_ceil(100).clamp(1, n);
        self.sizes[rank - 1]
    }
    pub fn min(&self) -> (&'static str, usize) {
        self.sizes[0]
    }
    pub fn max(&self) -> (&'static str, usize) {
        self.sizes[self.sizes.len() - 1]
    }
    pub fn largest(&self, k: usize) -> Vec<(&'static str, usize)> {
        self.sizes.iter().rev().take(k).copied().collect()
    }
}

impl fmt::Display for SizeDistribution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kb = |x: (&str, usize)| format!("{:.1} KB ({})", x.1 as f64 / 1024.0, x.0);
        write!(
            f,
            "{} tools: min {}, p50 {}, p95 {}, max {}; largest: {}",
            self.sizes.len(),
            kb(self.min()),
            kb(self.percentile(50)),
            kb(self.percentile(95)),
            kb(self.max()),
            self.largest(5)
                .iter()
                .map(|(n, s)| format!("{n} {:.1} KB", *s as f64 / 1024.0))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

/// The size distribution of the compact descriptions (`full: false`) or of the full JSON
/// Schemas (`full: true`) over every tool.
pub fn size_distribution(full: bool) -> SizeDistribution {
    let opts = DescribeOptions { path: None, full };
    let mut sizes: Vec<(&'static str, usize)> = Tool::all()
        .map(|t| (t.name(), size(&describe(t, &opts).expect("no path"))))
        .collect();
    sizes.sort_by_key(|(n, s)| (*s, *n));
    SizeDistribution { sizes }
}

// ---------------------------------------------------------------------------------------------
// Text.

/// Text on one line: Markdown links reduced to their text, `**` dropped, list items joined
/// with `;`, whitespace collapsed.
fn clean(text: &str) -> String {
    let mut out = String::new();
    let mut prev_bullet = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let (bullet, line) = match line.strip_prefix("- ").or_else(|| line.strip_prefix("* ")) {
            Some(rest) => (true, rest),
            None => (false, line),
        };
        if !out.is_empty() {
            out.push_str(if bullet && prev_bullet { "; " } else { " " });
        }
        out.push_str(line);
        prev_bullet = bullet;
    }
    let out = strip_links(&out).replace("**", "");
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `[text](url)` → `text`.
fn strip_links(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('[') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let link = tail.find("](").and_then(|j| {
            let text = &tail[1..j];
            (!text.contains('[')).then_some(())?;
            let close = tail[j + 2..].find(')')?;
            Some((text, j + 2 + close + 1))
        });
        match link {
            Some((text, end)) => {
                out.push_str(text);
                rest = &tail[end..];
            }
            None => {
                out.push('[');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Whole paragraphs while they fit in `max` characters (the first one at least, cut to
/// sentences then words), `…` when something was left out.
fn summary(text: &str, max: usize) -> String {
    let paras: Vec<String> = text
        .split("\n\n")
        .map(clean)
        .filter(|p| !p.is_empty())
        .collect();
    let mut out = String::new();
    for (i, p) in paras.iter().enumerate() {
        let len = out.chars().count() + p.chars().count() + 1;
        if i > 0 && len > max {
            out.push_str(" …");
            return out;
        }
        if i == 0 {
            out = cut(p, max);
        } else {
            out.push(' ');
            out.push_str(p);
        }
    }
    out
}

/// The first sentence, at most [`LINE_MAX`] characters.
fn one_line(text: &str) -> String {
    let first = text.split("\n\n").map(clean).find(|p| !p.is_empty());
    let Some(p) = first else {
        return String::new();
    };
    let end = sentence_end(&p).unwrap_or(p.len());
    cut(&p[..end], LINE_MAX)
}

/// The end (byte index after the `.`) of the first sentence, if the text has more after it.
fn sentence_end(p: &str) -> Option<usize> {
    let bytes = p.as_bytes();
    let mut from = 0;
    while let Some(i) = p[from..].find(". ").map(|i| i + from) {
        let word = p[..i].rsplit(' ').next().unwrap_or("");
        let abbrev = [
            "e.g", "i.e", "etc", "vs", "Ex", "ex", "approx", "incl", "No",
        ]
        .contains(&word.trim_start_matches(['(', '`']))
            || word.chars().count() == 1;
        let inside_code = p[..i].matches('`').count() % 2 == 1;
        if !abbrev && !inside_code && bytes.get(i + 2).is_some() {
            return Some(i + 1);
        }
        from = i + 2;
    }
    None
}

/// At most `max` characters: whole sentences when possible, else whole words, then `…`.
fn cut(p: &str, max: usize) -> String {
    if p.chars().count() <= max {
        return p.to_string();
    }
    let mut end = 0;
    let mut rest_from = 0;
    while let Some(e) = sentence_end(&p[rest_from..]).map(|e| e + rest_from) {
        if p[..e].chars().count() > max {
            break;
        }
        end = e;
        rest_from = e + 1;
    }
    if end > 0 {
        return format!("{} …", &p[..end]);
    }
    let mut out = String::new();
    for w in p.split(' ') {
        if out.chars().count() + w.chars().count() + 2 > max {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(w);
    }
    out.push('…');
    out
}

/// Joins words that [`wrap`] keeps on one line (printed as a space).
const GLUE: char = '\u{1}';

/// Appends `first` + `text` wrapped at [`WIDTH`], continuation lines indented by `indent`.
fn wrap(out: &mut String, first: &str, indent: usize, text: &str) {
    let start = out.len();
    let mut line = first.to_string();
    let mut empty = true;
    for w in text.split_whitespace() {
        let len = line.chars().count();
        if !empty && len + 1 + w.chars().count() > WIDTH {
            out.push_str(line.trim_end());
            out.push('\n');
            line = " ".repeat(indent);
            empty = true;
        }
        if !empty || (!line.is_empty() && !line.ends_with(' ')) {
            line.push(' ');
        }
        line.push_str(w);
        empty = false;
    }
    out.push_str(line.trim_end());
    out.push('\n');
    if out[start..].contains(GLUE) {
        let tail = out[start..].replace(GLUE, " ");
        out.truncate(start);
        out.push_str(&tail);
    }
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

fn values_text(e: &Value) -> String {
    let Some(Value::Array(vals)) = e.get("values") else {
        return String::new();
    };
    let mut t: Vec<String> = vals
        .iter()
        .map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect();
    if let Some(m) = e.get("more_values").and_then(Value::as_u64) {
        t.push(format!("…{GLUE}(+{m}{GLUE}more)"));
    }
    format!("one of: {}", t.join(", "))
}

/// One argument or field: `name* (in) type, one of: …: description`, then what is inside.
fn render_entry(out: &mut String, e: &Value, indent: usize) {
    let pad = " ".repeat(indent);
    let mut head = format!("{pad}{}", s(e, "name"));
    if e.get("required") == Some(&json!(true)) {
        head.push('*');
    }
    let loc = s(e, "in");
    if !loc.is_empty() && loc != "body" {
        head.push_str(&format!(" ({loc})"));
    }
    let mut text = String::new();
    let ty = s(e, "type");
    if ty == "relationship" {
        text.push_str(&format!(
            "→ {}{}",
            s(e, "to"),
            if e.get("many").is_some() {
                " (a list)"
            } else {
                ""
            }
        ));
    } else if !ty.is_empty() {
        text.push_str(ty);
    }
    let vals = values_text(e);
    if !vals.is_empty() {
        text.push_str(&format!(", {vals}"));
    }
    if let Some(d) = e.get("default") {
        text.push_str(&format!(", default {d}"));
    }
    if let Some(o) = e.get("only_for").and_then(Value::as_str) {
        text.push_str(&format!(" (only with {o})"));
    }
    let desc = s(e, "description");
    if !desc.is_empty() {
        text.push_str(&format!(": {desc}"));
    }
    if let Some(a) = e.get("allowed").and_then(Value::as_str) {
        text.push_str(&format!(" Allowed fields and operators: {a}."));
    }
    if let Some(m) = e.get("more").and_then(Value::as_str) {
        text.push_str(&format!(" ({m})"));
    }
    wrap(out, &head, indent + 4, &text);
    render_inside(out, e, indent + 2);
}

/// The parts of a body or field: attributes, relationships, data fields, items, fields,
/// options, variants.
fn render_inside(out: &mut String, e: &Value, indent: usize) {
    let pad = " ".repeat(indent);
    for (key, title) in [
        ("data", "data"),
        ("attributes", "data.attributes"),
        ("relationships", "data.relationships"),
        ("items", "each item of data"),
        ("fields", ""),
    ] {
        if let Some(Value::Array(list)) = e.get(key) {
            if list.is_empty() {
                continue;
            }
            if title.is_empty() {
                for f in list {
                    render_entry(out, f, indent);
                }
            } else {
                out.push_str(&format!("{pad}{title}:\n"));
                for f in list {
                    render_entry(out, f, indent + 2);
                }
            }
        }
    }
    if let Some(Value::Array(opts)) = e.get("options") {
        out.push_str(&format!("{pad}one of these options:\n"));
        for o in opts {
            render_entry(out, o, indent + 2);
        }
    }
    if let Some(Value::Object(vs)) = e.get("variants") {
        for (label, v) in vs {
            let mut w = v.clone();
            w["name"] = json!(format!("when {label}"));
            render_entry(out, &w, indent);
        }
    }
}

fn render_compact(out: &mut String, tool: Tool, v: &Value) {
    out.push_str(&format!("{} — {}\n", s(v, "name"), s(v, "title")));
    let mut meta = vec![s(v, "access").to_string()];
    if !s(v, "endpoint").is_empty() {
        meta.push(s(v, "endpoint").to_string());
    }
    meta.push(format!("tag {}", s(v, "tag")));
    let scopes: Vec<&str> = v["scopes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    meta.push(if scopes.is_empty() {
        "scopes: none (public key)".into()
    } else {
        format!("scopes: {}", scopes.join(", "))
    });
    wrap(out, "", 2, &meta.join(" · "));
    let rl = &v["rate_limit"];
    out.push_str(&format!(
        "rate limit: {}/s burst, {}/min steady{}\n",
        rl["burst_per_second"],
        rl["steady_per_minute"],
        rl.get("daily")
            .map(|d| format!(", {d}/day"))
            .unwrap_or_default()
    ));
    if let Some(Value::Array(a)) = v.get("aliases") {
        let names: Vec<&str> = a.iter().filter_map(Value::as_str).collect();
        wrap(out, "also callable as:", 2, &names.join(", "));
    }
    out.push('\n');
    wrap(out, "", 0, s(v, "description"));
    out.push('\n');
    match v.get("arguments").and_then(Value::as_array) {
        Some(args) if !args.is_empty() => {
            out.push_str("Arguments (* = required):\n");
            for a in args {
                render_entry(out, a, 2);
            }
        }
        _ => out.push_str("No arguments.\n"),
    }
    out.push('\n');
    wrap(
        out,
        "More:",
        2,
        &format!("`klaviyo-harness describe {} --path <argument or dotted path>` for one part (all values, the fields inside); `--schema` for the whole JSON Schema.", tool.name()),
    );
    out.push_str("\nExample:\n");
    for line in cli_example(tool).lines() {
        out.push_str("  ");
        out.push_str(line);
        out.push('\n');
    }
}

fn render_node(out: &mut String, v: &Value) {
    out.push_str(&format!("{}: {}\n", s(v, "name"), s(v, "path")));
    let mut e = v.clone();
    if let Some(m) = e.as_object_mut() {
        m.insert("name".into(), json!(s(v, "path")));
        m.remove("example_value");
    }
    render_entry(out, &e, 0);
    if let Some(ex) = v.get("example_value") {
        out.push_str("\nExample value:\n");
        for line in serde_json::to_string_pretty(ex).unwrap_or_default().lines() {
            out.push_str("  ");
            out.push_str(line);
            out.push('\n');
        }
    }
}
