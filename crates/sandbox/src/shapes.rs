//! The spec's success answers, per operation (`generated/shapes.json`, written by
//! `cargo xtask codegen`): status, one resource or many, and each resource's type, attribute
//! names, required attributes with a value of the right type, relationships, required links.
//! Rendering through these is what makes the sandbox's answers the spec's exact shape.

use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

#[derive(Debug, Deserialize)]
pub struct Shape {
    pub status: u16,
    #[serde(default)]
    pub many: bool,
    #[serde(default)]
    pub nullable: bool,
    /// Alternatives of `data` (one unless the spec says `oneOf`); empty: no JSON:API data.
    #[serde(default)]
    pub data: Vec<ResourceShape>,
    /// A document without `data`, with its required members.
    #[serde(default)]
    pub document: Option<Value>,
}

#[derive(Debug, Deserialize)]
pub struct ResourceShape {
    #[serde(rename = "type")]
    pub ty: Option<String>,
    /// `None`: a resource identifier (`{type, id}`), no attributes.
    #[serde(default)]
    pub attrs: Option<Vec<String>>,
    #[serde(default)]
    pub required: Map<String, Value>,
    /// name → target type, `*` suffix when to-many.
    #[serde(default)]
    pub rels: BTreeMap<String, String>,
    #[serde(default)]
    pub links: bool,
}

impl ResourceShape {
    /// The target type of relationship `rel`, and whether it is to-many.
    pub fn rel(&self, rel: &str) -> Option<(&str, bool)> {
        self.rels.get(rel).map(|t| match t.strip_suffix('*') {
            Some(t) => (t, true),
            None => (t.as_str(), false),
        })
    }
}

#[derive(Deserialize)]
struct File {
    operations: HashMap<String, Shape>,
}

fn all() -> &'static HashMap<String, Shape> {
    static SHAPES: OnceLock<HashMap<String, Shape>> = OnceLock::new();
    SHAPES.get_or_init(|| {
        let f: File = serde_json::from_str(include_str!("generated/shapes.json"))
            .expect("generated/shapes.json is valid (written by cargo xtask codegen)");
        f.operations
    })
}

/// The success shape of operation `id`.
pub fn of(id: &str) -> Option<&'static Shape> {
    all().get(id)
}

/// The attribute names of a `ty` resource as its own `get_*` answers it (none when unknown).
pub fn attr_names(ty: &str) -> &'static [String] {
    item(ty).and_then(|s| s.attrs.as_deref()).unwrap_or(&[])
}

/// The shape of a single `ty` resource as its own `get_*` answers it (for `included`, and for
/// answers of operations whose shape names no attributes).
pub fn item(ty: &str) -> Option<&'static ResourceShape> {
    static ITEMS: OnceLock<HashMap<String, &'static ResourceShape>> = OnceLock::new();
    ITEMS
        .get_or_init(|| {
            let mut m: HashMap<String, &'static ResourceShape> = HashMap::new();
            let mut ids: Vec<&String> = all().keys().collect();
            ids.sort();
            for id in ids {
                let (Some(op), Some(s)) = (klaviyo_catalog::tools::operation(id), all().get(id))
                else {
                    continue;
                };
                if op.method != klaviyo_catalog::Method::Get || s.many {
                    continue;
                }
                for r in &s.data {
                    if let (Some(t), Some(_)) = (&r.ty, &r.attrs) {
                        // The plain `/api/X/{id}` read wins over reads through a relationship.
                        let plain = op.path.matches('/').count() == 3;
                        if plain || !m.contains_key(t) {
                            m.insert(t.clone(), r);
                        }
                    }
                }
            }
            m
        })
        .get(ty)
        .copied()
}
