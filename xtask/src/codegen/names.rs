//! Stage 2, `names`: the promised actions, the composite actions they imply, and the table of
//! every accepted tool name.
//!
//! Contract: a promised action that names an operation the spec lacks, or a method and path
//! that differ from the spec's, is an error; so is a name that would mean two tools. Klaviyo's
//! own aliases give way to operation ids and promised titles (`shadowed`), never the reverse.

use super::model::Access;
use super::normalize;
use super::spec::Op;
use std::collections::BTreeMap;

/// One line of promised-actions.tsv: a product name, the operation(s) behind it, and the
/// method and path of each (checked against the spec).
pub struct Promised {
    pub title: String,
    pub ids: Vec<String>,
    pub method_paths: Vec<String>,
}

impl Promised {
    /// The tool the title names: the operation, or the composite named after the title.
    pub fn tool(&self) -> String {
        if self.ids.len() == 1 {
            self.ids[0].clone()
        } else {
            normalize(&self.title)
        }
    }
}

/// A promised action served by several operations, one picked by the `relationship` argument.
pub struct Composite {
    pub id: String,
    pub title: String,
    pub tag: String,
    /// (`relationship` value, index of the operation in the spec's order).
    pub choices: Vec<(String, usize)>,
    /// The strongest access class among the choices.
    pub access: Access,
}

/// Every accepted name and what it means.
pub struct Names {
    /// Normalized name → tool index (operations first, then composites).
    pub table: BTreeMap<String, usize>,
    /// Klaviyo aliases left out because a stronger name means another tool: (alias, op index).
    pub shadowed: Vec<(String, usize)>,
}

pub fn parse_promised(text: &str) -> Result<Vec<Promised>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() < 3 {
            return Err(format!(
                "promised actions line {}: expected 3+ tab-separated columns",
                n + 1
            ));
        }
        out.push(Promised {
            title: cols[0].trim().to_string(),
            ids: cols[1].split(',').map(|s| s.trim().to_string()).collect(),
            method_paths: cols[2].split('|').map(|s| s.trim().to_string()).collect(),
        });
    }
    Ok(out)
}

/// The operation `id` promised as `method_path` under `title`, checked against the spec.
fn promised_op(ops: &[Op], title: &str, id: &str, method_path: &str) -> Result<usize, String> {
    let i = ops
        .iter()
        .position(|o| o.id == id)
        .ok_or(format!("promised action names unknown operation {id}"))?;
    let o = &ops[i];
    if method_path != format!("{} {}", o.method.as_str(), o.path) {
        return Err(format!(
            "{title}: promised `{method_path}` but the spec has {} {}",
            o.method.as_str(),
            o.path
        ));
    }
    Ok(i)
}

pub fn composites(ops: &[Op], promised: &[Promised]) -> Result<Vec<Composite>, String> {
    let mut out: Vec<Composite> = Vec::new();
    for p in promised.iter().filter(|p| p.ids.len() > 1) {
        let id = normalize(&p.title);
        if out.iter().any(|c| c.id == id) {
            continue;
        }
        let mut choices = Vec::new();
        for (opid, mp) in p.ids.iter().zip(&p.method_paths) {
            let i = promised_op(ops, &p.title, opid, mp)?;
            let value = ops[i].path.rsplit('/').next().unwrap().to_string();
            if choices.iter().any(|(v, _)| *v == value) {
                return Err(format!("{}: two operations end in /{value}", p.title));
            }
            choices.push((value, i));
        }
        let access = choices.iter().map(|&(_, i)| ops[i].access).max().unwrap();
        out.push(Composite {
            id,
            title: p.title.clone(),
            tag: ops[choices[0].1].tag.clone(),
            choices,
            access,
        });
    }
    Ok(out)
}

/// Precedence: operationIds and composite ids, then promised titles (what users were promised),
/// then Klaviyo's `x-klaviyo-operation-aliases`. A clash among the first two is an error.
pub fn names(ops: &[Op], composites: &[Composite], promised: &[Promised]) -> Result<Names, String> {
    let mut table: BTreeMap<String, usize> = BTreeMap::new();
    let mut add = |name: &str, tool: usize, why: &str| -> Result<(), String> {
        let n = normalize(name);
        match table.insert(n.clone(), tool) {
            Some(prev) if prev != tool => Err(format!(
                "name `{n}` ({why}) names two tools: {prev} and {tool}"
            )),
            _ => Ok(()),
        }
    };
    for (i, o) in ops.iter().enumerate() {
        add(&o.id, i, "operationId")?;
    }
    for (j, c) in composites.iter().enumerate() {
        add(&c.id, ops.len() + j, "composite")?;
    }
    for p in promised {
        let tool = if p.ids.len() == 1 {
            promised_op(ops, &p.title, &p.ids[0], &p.method_paths[0])?
        } else {
            ops.len()
                + composites
                    .iter()
                    .position(|c| c.id == normalize(&p.title))
                    .unwrap()
        };
        add(&p.title, tool, "promised title")?;
    }
    let mut shadowed = Vec::new();
    for (i, o) in ops.iter().enumerate() {
        for a in &o.aliases {
            let n = normalize(a);
            match table.get(&n) {
                Some(&t) if t != i => shadowed.push((n, i)),
                _ => {
                    table.insert(n, i);
                }
            }
        }
    }
    Ok(Names { table, shadowed })
}
