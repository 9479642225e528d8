//! Stage 4c, `emit_glue`: the component's typed exports (`src/generated/exports.rs`): each
//! WIT function collects its record's fields into `Args` and calls the one executor with its
//! tool index.
//!
//! Contract: the fields are `emit_wit`'s own (`fields_of`, `composite_fields`), so a record and
//! its glue never disagree; tool indices follow the catalog's order (operations, then composites).

use super::emit_wit::{
    body_docs, composite_fields, fields_of, tag_interface, wit_ident, Field, FieldKind,
};
use super::names::Composite;
use super::spec::Op;
use super::{escape_keyword, BANNER};
use std::collections::BTreeSet;
use std::fmt::Write as _;

fn lit(s: &str) -> String {
    format!("{s:?}")
}

const RUST_KEYWORDS: &[&str] = &[
    "as", "break", "const", "continue", "crate", "else", "enum", "extern", "false", "fn", "for",
    "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return",
    "self", "static", "struct", "super", "trait", "true", "type", "unsafe", "use", "where",
    "while", "async", "await", "dyn", "abstract", "become", "box", "do", "final", "macro",
    "override", "priv", "typeof", "unsized", "virtual", "yield", "try", "gen",
];

pub fn rust_ident(wit: &str) -> String {
    escape_keyword(
        wit.trim_start_matches('%').replace('-', "_"),
        RUST_KEYWORDS,
        |id| format!("{id}_"),
    )
}

pub fn camel(s: &str) -> String {
    s.trim_start_matches('%')
        .split(['-', '_'])
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

pub fn exports(ops: &[Op], composites: &[Composite]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "// {BANNER}\n");
    s.push_str("use crate::bindings::klaviyo::connector as x;\nuse crate::{call_tool, Args, Component};\nuse crate::bindings::klaviyo::connector::types::ApiError;\n");
    s.push_str("\nimpl crate::bindings::Guest for Component {\n");
    let tags: BTreeSet<String> = ops.iter().map(|o| o.tag.clone()).collect();
    for tag in &tags {
        let module = rust_ident(&tag_interface(tag));
        let _ = writeln!(s, "    // {tag}");
        let mut emit = |name: &str, tool: usize, fields: Vec<Field>| {
            let f = rust_ident(name);
            if fields.is_empty() {
                let _ = writeln!(s, "    fn {f}() -> Result<String, ApiError> {{\n        call_tool({tool}, Args::default())\n    }}");
                return;
            }
            let _ = writeln!(
                s,
                "    fn {f}(p: x::{module}::{}Params) -> Result<String, ApiError> {{",
                camel(name)
            );
            s.push_str("        let mut a = Args::default();\n");
            for fl in &fields {
                let field = rust_ident(&fl.name);
                let arg = lit(&fl.arg);
                let line = match fl.kind {
                    FieldKind::Text { required: true } => {
                        format!("a.text({arg}, Some(p.{field}));")
                    }
                    FieldKind::Text { required: false } => format!("a.text({arg}, p.{field});"),
                    FieldKind::List => format!("a.list({arg}, p.{field});"),
                    FieldKind::Int => format!("a.int({arg}, p.{field});"),
                    FieldKind::Choice { required: true } => {
                        format!("a.choice({arg}, Some(p.{field} as usize));")
                    }
                    FieldKind::Choice { required: false } => {
                        format!("a.choice({arg}, p.{field}.map(|v| v as usize));")
                    }
                    FieldKind::Body { required: true } => format!("a.body(Some(p.{field}));"),
                    FieldKind::Body { required: false } => format!("a.body(p.{field});"),
                };
                let _ = writeln!(s, "        {line}");
            }
            let _ = writeln!(s, "        call_tool({tool}, a)\n    }}");
        };
        let mut enums = Vec::new();
        for (i, o) in ops.iter().enumerate().filter(|(_, o)| &o.tag == tag) {
            let name = wit_ident(&o.id);
            emit(
                &name,
                i,
                fields_of(&name, &o.params, body_docs(o), &mut enums),
            );
        }
        for (j, c) in composites.iter().enumerate().filter(|(_, c)| &c.tag == tag) {
            emit(
                &wit_ident(&c.id),
                ops.len() + j,
                composite_fields(c, ops, &mut enums),
            );
        }
    }
    s.push_str("}\n");
    s
}
