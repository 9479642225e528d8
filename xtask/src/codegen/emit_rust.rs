//! Stage 4a, `emit_rust`: the catalog's operation table (`crates/catalog/src/generated/
//! operations.rs`): `REVISION`, `PROMISED`, `OPERATIONS`, `COMPOSITES`, `NAMES` and
//! `SHADOWED_ALIASES`, as Rust literals of the catalog's model types.
//!
//! Contract: the enums are printed from the model's own values (`{:?}` of `Method`, `Access`,
//! `Location`, `BodyEncoding`), so a model change that the table does not follow fails to
//! compile in the catalog, never silently.

use super::names::{Composite, Names, Promised};
use super::spec::{Kind, Op};
use super::BANNER;
use std::fmt::Write as _;

fn lit(s: &str) -> String {
    format!("{s:?}")
}

fn str_slice(v: &[String]) -> String {
    let items: Vec<String> = v.iter().map(|s| lit(s)).collect();
    format!("&[{}]", items.join(", "))
}

fn operation(s: &mut String, o: &Op) {
    let _ = writeln!(s, "    Operation {{");
    let _ = writeln!(s, "        id: {},", lit(&o.id));
    let _ = writeln!(s, "        tag: {},", lit(&o.tag));
    let _ = writeln!(s, "        title: {},", lit(&o.title));
    let _ = writeln!(s, "        description: {},", lit(&o.description));
    let _ = writeln!(s, "        method: Method::{:?},", o.method);
    let _ = writeln!(s, "        path: {},", lit(&o.path));
    s.push_str("        params: &[\n");
    for p in &o.params {
        let kind = match &p.kind {
            Kind::Str => "Kind::String".to_string(),
            Kind::Enum(v) => format!("Kind::Enum({})", str_slice(v)),
            Kind::List(v) => format!("Kind::List({})", str_slice(v)),
            Kind::Int(a, b) => format!("Kind::Integer {{ min: {a}, max: {b} }}"),
        };
        let _ = writeln!(
            s,
            "            Param {{ wire: {}, arg: {}, location: Location::{:?}, required: {}, kind: {kind}, description: {} }},",
            lit(&p.wire), lit(&p.arg), p.location, p.required, lit(&p.description)
        );
    }
    s.push_str("        ],\n");
    match &o.body {
        None => s.push_str("        body: None,\n"),
        Some(b) => {
            let _ = writeln!(
                s,
                "        body: Some(Body {{ encoding: BodyEncoding::{:?}, required: {}, schema: {}, data_type: {}, data_is_array: {} }}),",
                b.encoding,
                b.required,
                lit(&b.schema),
                match &b.data_type { Some(t) => format!("Some({})", lit(t)), None => "None".into() },
                b.data_is_array
            );
        }
    }
    let _ = writeln!(s, "        scopes: {},", str_slice(&o.scopes));
    let _ = writeln!(
        s,
        "        rate_limit: RateLimit {{ burst_per_second: {}, steady_per_minute: {}, daily: {:?} }},",
        o.rate.burst_per_second, o.rate.steady_per_minute, o.rate.daily
    );
    let _ = writeln!(s, "        aliases: {},", str_slice(&o.aliases));
    let _ = writeln!(s, "        access: Access::{:?},", o.access);
    let _ = writeln!(s, "        client: {},", o.client);
    s.push_str("    },\n");
}

pub fn table(
    revision: &str,
    ops: &[Op],
    composites: &[Composite],
    names: &Names,
    promised: &[Promised],
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "// {BANNER}\n");
    s.push_str("use crate::model::*;\n\n");
    let _ = writeln!(
        s,
        "/// The API revision the spec describes; sent as the `revision` header."
    );
    let _ = writeln!(s, "pub const REVISION: &str = {};\n", lit(revision));
    s.push_str("/// The actions users were promised (promised-actions.tsv): (title, tool name).\n");
    s.push_str("pub static PROMISED: &[(&str, &str)] = &[\n");
    for p in promised {
        let _ = writeln!(s, "    ({}, {}),", lit(&p.title), lit(&p.tool()));
    }
    s.push_str("];\n\n");
    s.push_str("/// Every operation of the spec, sorted by interface then id.\n");
    s.push_str("pub static OPERATIONS: &[Operation] = &[\n");
    for o in ops {
        operation(&mut s, o);
    }
    s.push_str("];\n\n");
    s.push_str("/// Promised actions that pick one of several operations by an argument.\n");
    s.push_str("pub static COMPOSITES: &[Composite] = &[\n");
    for c in composites {
        let choices: Vec<String> = c
            .choices
            .iter()
            .map(|(v, i)| format!("({}, {})", lit(v), lit(&ops[*i].id)))
            .collect();
        let _ = writeln!(
            s,
            "    Composite {{ id: {}, title: {}, tag: {}, selector: \"relationship\", choices: &[{}], access: Access::{:?} }},",
            lit(&c.id), lit(&c.title), lit(&c.tag), choices.join(", "), c.access
        );
    }
    s.push_str("];\n\n");
    s.push_str("/// Every accepted tool name, normalized (see `normalize`), sorted, with its tool index:\n");
    s.push_str("/// operations first (`OPERATIONS[i]`), then composites (`COMPOSITES[i - OPERATIONS.len()]`).\n");
    s.push_str("pub static NAMES: &[(&str, u16)] = &[\n");
    for (n, i) in &names.table {
        let _ = writeln!(s, "    ({}, {i}),", lit(n));
    }
    s.push_str("];\n\n");
    s.push_str("/// Klaviyo aliases not accepted because a promised title or an operationId with the same\n");
    s.push_str("/// name means another tool: (alias, the operation Klaviyo gave it to).\n");
    s.push_str("pub static SHADOWED_ALIASES: &[(&str, &str)] = &[\n");
    for (n, i) in &names.shadowed {
        let _ = writeln!(s, "    ({}, {}),", lit(n), lit(&ops[*i].id));
    }
    s.push_str("];\n");
    s
}
