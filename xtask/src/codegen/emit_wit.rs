//! Stage 4b, `emit_wit`: the WIT of every action (`wit/operations.wit`) and the same docs as
//! wit-component's `package-docs` section (`src/generated/package-docs.txt`).
//!
//! Contract: identifiers are valid WIT (kebab case, no leading digit, keywords `%`-escaped);
//! each tag's interface holds its actions' parameter records and enums; the field list of each
//! action (`fields_of`, `composite_fields`) is the one `emit_glue` reads back, so the typed
//! exports and their records cannot disagree.

use super::model::{BodyEncoding, Location, Method};
use super::names::Composite;
use super::spec::{Kind, Op, Param};
use super::{escape_keyword, normalize, BANNER};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// `path`, `query` or `header`, as the docs say where a parameter goes.
fn location_name(l: Location) -> &'static str {
    match l {
        Location::Path => "path",
        Location::Query => "query",
        Location::Header => "header",
    }
}

const WIT_KEYWORDS: &[&str] = &[
    "as",
    "async",
    "bool",
    "borrow",
    "char",
    "constructor",
    "enum",
    "export",
    "f32",
    "f64",
    "flags",
    "from",
    "func",
    "future",
    "import",
    "include",
    "interface",
    "list",
    "own",
    "package",
    "record",
    "resource",
    "result",
    "s16",
    "s32",
    "s64",
    "s8",
    "static",
    "stream",
    "string",
    "tuple",
    "type",
    "u16",
    "u32",
    "u64",
    "u8",
    "use",
    "variant",
    "with",
    "world",
    "option",
    "error-context",
];

/// A WIT identifier from any text: kebab case, words starting with a letter, keywords escaped.
pub fn wit_ident(s: &str) -> String {
    let words: Vec<String> = normalize(s)
        .split('_')
        .filter(|w| !w.is_empty())
        .map(|w| {
            if w.starts_with(|c: char| c.is_ascii_digit()) {
                format!("n{w}")
            } else {
                w.to_string()
            }
        })
        .collect();
    escape_keyword(words.join("-"), WIT_KEYWORDS, |id| format!("%{id}"))
}

/// Enum case for a value: `-created_at` -> `created-at-desc`.
pub fn wit_case(v: &str) -> String {
    match v.strip_prefix('-') {
        Some(rest) => wit_ident(&format!("{rest}-desc")),
        None => wit_ident(v),
    }
}

pub fn tag_interface(tag: &str) -> String {
    wit_ident(tag)
}

fn wit_docs(out: &mut String, indent: &str, text: &str) {
    for line in text.lines() {
        let line = line.trim_end();
        if line.is_empty() {
            let _ = writeln!(out, "{indent}///");
        } else {
            let _ = writeln!(out, "{indent}/// {line}");
        }
    }
}

/// The fields of a typed params record: (wit field name, wit type, docs, param).
pub struct Field {
    pub name: String,
    pub ty: String,
    pub docs: String,
    pub arg: String,
    pub kind: FieldKind,
}

pub enum FieldKind {
    Text { required: bool },
    List,
    Int,
    Choice { required: bool },
    Body { required: bool },
}

pub fn fields_of(
    fn_name: &str,
    params: &[Param],
    body: Option<(bool, String)>,
    enums: &mut Vec<(String, Vec<String>)>,
) -> Vec<Field> {
    let mut out = Vec::new();
    for p in params {
        let name = wit_ident(&p.arg);
        let (base, kind) = match &p.kind {
            Kind::Str => (
                "string".to_string(),
                FieldKind::Text {
                    required: p.required,
                },
            ),
            Kind::List(_) => ("list<string>".to_string(), FieldKind::List),
            Kind::Int(..) => ("u32".to_string(), FieldKind::Int),
            Kind::Enum(values) => {
                let ty = format!("{fn_name}-{}", name.trim_start_matches('%'));
                enums.push((ty.clone(), values.clone()));
                (
                    ty,
                    FieldKind::Choice {
                        required: p.required,
                    },
                )
            }
        };
        let required = p.required && !matches!(p.kind, Kind::List(_) | Kind::Int(..));
        let ty = if required {
            base
        } else {
            format!("option<{base}>")
        };
        let mut docs = format!("`{}` ({})", p.wire, location_name(p.location));
        if !p.description.is_empty() {
            docs = format!("{docs}: {}", p.description);
        }
        out.push(Field {
            name,
            ty,
            docs,
            arg: p.arg.clone(),
            kind,
        });
    }
    if let Some((required, docs)) = body {
        out.push(Field {
            name: "body".into(),
            ty: if required {
                "string".into()
            } else {
                "option<string>".into()
            },
            docs,
            arg: "body".into(),
            kind: FieldKind::Body { required },
        });
    }
    out
}

pub fn body_docs(o: &Op) -> Option<(bool, String)> {
    o.body.as_ref().map(|b| {
        let what = if b.encoding == BodyEncoding::Multipart {
            "JSON object `{\"file\": base64, \"filename\"?, \"name\"?, \"hidden\"?}`, sent as multipart/form-data.".to_string()
        } else {
            format!(
                "The JSON:API request body (schema `{}`) as JSON text. {} filled in when omitted; a bare attributes object is wrapped.",
                b.schema,
                if o.method == Method::Patch { "`data.type` and `data.id` are" } else { "`data.type` is" }
            )
        };
        (b.required, what)
    })
}

/// Params of a composite: its selector, then the union of its operations' params and bodies.
pub fn composite_fields(
    c: &Composite,
    ops: &[Op],
    enums: &mut Vec<(String, Vec<String>)>,
) -> Vec<Field> {
    let fn_name = wit_ident(&c.id);
    let sel_ty = format!("{fn_name}-relationship");
    enums.push((
        sel_ty.clone(),
        c.choices.iter().map(|(v, _)| v.clone()).collect(),
    ));
    let mut params: Vec<Param> = Vec::new();
    for (_, i) in &c.choices {
        for p in &ops[*i].params {
            let in_all = c
                .choices
                .iter()
                .all(|(_, j)| ops[*j].params.iter().any(|q| q.arg == p.arg && q.required));
            if !params.iter().any(|q| q.arg == p.arg) {
                params.push(Param {
                    required: p.required && in_all,
                    ..p.clone()
                });
            }
        }
    }
    let body = c.choices.iter().find_map(|(_, i)| {
        body_docs(&ops[*i]).map(|(req, _)| {
            let all = c.choices.iter().all(|(_, j)| ops[*j].body.as_ref().is_some_and(|b| b.required));
            (req && all, "The JSON:API request body as JSON text (see the operation picked by `relationship`).".to_string())
        })
    });
    let mut fields = vec![Field {
        name: "relationship".into(),
        ty: sel_ty,
        docs: "Which relationship: picks the underlying operation.".into(),
        arg: "relationship".into(),
        kind: FieldKind::Choice { required: true },
    }];
    fields.extend(fields_of(&fn_name, &params, body, enums));
    fields
}

/// The WIT of every action, and the same docs as a `package-docs` custom section (see
/// [`package_docs`]).
///
/// Actions are functions of the world itself (`export get-profiles: func(...)`), not of
/// per-tag interfaces: a component's binary can carry docs (wit-component's `package-docs`
/// section) only for items of its own world, and hosts such as Wassette look function docs up
/// there. Each tag's interface holds that tag's parameter records and enums.
pub fn wit(
    revision: &str,
    ops: &[Op],
    composites: &[Composite],
) -> (String, Vec<(String, String)>) {
    let mut s = String::new();
    let _ = writeln!(s, "// {BANNER}");
    let _ = writeln!(
        s,
        "// Klaviyo API revision {revision}: {} operations, {} composite actions.\n",
        ops.len(),
        composites.len()
    );
    let tags: BTreeSet<String> = ops.iter().map(|o| o.tag.clone()).collect();
    let mut by_iface: BTreeMap<String, &str> = BTreeMap::new();
    for t in &tags {
        by_iface.insert(tag_interface(t), t);
    }
    let mut uses = String::new();
    let mut funcs = String::new();
    let mut docs_of = Vec::new();
    for (iface, tag) in &by_iface {
        let mut enums = Vec::new();
        let mut records = String::new();
        let mut record_names = Vec::new();
        let mut emit = |name: &str, title: &str, docs: &str, fields: Vec<Field>| {
            let docs = format!("{title}\n\n{docs}");
            funcs.push('\n');
            wit_docs(&mut funcs, "    ", &docs);
            docs_of.push((name.to_string(), docs));
            if fields.is_empty() {
                let _ = writeln!(
                    funcs,
                    "    export {name}: func() -> result<string, api-error>;"
                );
            } else {
                record_names.push(format!("{name}-params"));
                let _ = writeln!(
                    records,
                    "\n    /// Parameters of `{name}`.\n    record {name}-params {{"
                );
                for f in &fields {
                    wit_docs(&mut records, "        ", &f.docs);
                    let _ = writeln!(records, "        {}: {},", f.name, f.ty);
                }
                records.push_str("    }\n");
                let _ = writeln!(
                    funcs,
                    "    export {name}: func(params: {name}-params) -> result<string, api-error>;"
                );
            }
        };
        for o in ops.iter().filter(|o| &o.tag == tag) {
            let name = wit_ident(&o.id);
            let fields = fields_of(&name, &o.params, body_docs(o), &mut enums);
            let docs = format!(
                "`{} {}` · access: {} · scopes: {} · tool `{}`\n\n{}",
                o.method.as_str(),
                o.path,
                o.access.as_str(),
                if o.scopes.is_empty() {
                    "none".into()
                } else {
                    o.scopes.join(", ")
                },
                o.id,
                o.description
            );
            emit(&name, &o.title, &docs, fields);
        }
        for c in composites.iter().filter(|c| &c.tag == tag) {
            let name = wit_ident(&c.id);
            let fields = composite_fields(c, ops, &mut enums);
            let list: Vec<String> = c
                .choices
                .iter()
                .map(|(v, i)| {
                    format!(
                        "- `{v}`: `{}` ({} {})",
                        ops[*i].id,
                        ops[*i].method.as_str(),
                        ops[*i].path
                    )
                })
                .collect();
            let docs = format!("Composite action (tool `{}`): one action over several endpoints, picked by `relationship`:\n{}", c.id, list.join("\n"));
            emit(&name, &c.title, &docs, fields);
        }
        let types: Vec<&str> = enums
            .iter()
            .map(|(n, _)| n.as_str())
            .chain(record_names.iter().map(String::as_str))
            .collect();
        if types.is_empty() {
            continue;
        }
        let _ = writeln!(
            s,
            "/// Klaviyo API: {tag} (the parameter types of its actions)."
        );
        let _ = writeln!(s, "interface {iface} {{");
        for (name, values) in &enums {
            let _ = writeln!(s, "\n    enum {name} {{");
            for v in values {
                let _ = writeln!(s, "        /// `{v}`\n        {},", wit_case(v));
            }
            s.push_str("    }\n");
        }
        s.push_str(&records);
        s.push_str("}\n\n");
        let _ = writeln!(uses, "    use {iface}.{{{}}};", types.join(", "));
    }
    let _ = writeln!(s, "/// {OPERATIONS_WORLD_DOCS}");
    s.push_str("world operations {\n    use types.{api-error};\n");
    s.push_str(&uses);
    s.push_str(&funcs);
    s.push_str("}\n");
    (s, docs_of)
}

const OPERATIONS_WORLD_DOCS: &str = "Every Klaviyo action as a typed function: one per operation of Klaviyo's API, plus composite actions.";

/// Docs of the component's own world in wit-component's `package-docs` format (a version byte
/// on top of this JSON; see wit-parser's `PackageMetadata`), for the world a decoder names
/// `root`. The component's linker wrapper (`.cargo/link-component`) appends it to the binary:
/// wasm-component-ld drops WIT docs. Decoders (wasm-tools, jco) then show every action's docs,
/// and Wassette reads `worlds.*.func_exports.<name>.docs` as the tool description.
pub fn package_docs(docs_of: &[(String, String)]) -> String {
    let funcs: Map<String, Value> = docs_of
        .iter()
        .map(|(name, docs)| (name.clone(), json!({ "docs": docs })))
        .collect();
    let doc = json!({
        "docs": "The Klaviyo connector: every Klaviyo action for AI agents, as a WebAssembly component.",
        "worlds": { "root": { "docs": OPERATIONS_WORLD_DOCS, "func_exports": funcs } },
    });
    format!(
        "// {BANNER} The linker wrapper drops this line.\n{}\n",
        serde_json::to_string_pretty(&doc).unwrap()
    )
}
