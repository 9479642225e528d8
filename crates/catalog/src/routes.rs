//! Method + concrete path → operation. The host classifies every outgoing request with this,
//! from the catalog, never from what the guest claims.

use crate::generated::OPERATIONS;
use crate::{Method, Operation};
use std::sync::OnceLock;

/// Path templates split once: (operation, segments), with `None` for a `{param}` segment.
type Template = (&'static Operation, Vec<Option<&'static str>>);

fn templates() -> &'static [Template] {
    static T: OnceLock<Vec<Template>> = OnceLock::new();
    T.get_or_init(|| {
        OPERATIONS
            .iter()
            .map(|op| {
                let segs = op
                    .path
                    .split('/')
                    .map(|t| (!(t.starts_with('{') && t.ends_with('}'))).then_some(t))
                    .collect();
                (op, segs)
            })
            .collect()
    })
}

/// The operation a request is for: `path` is the path without query (percent-encoded as sent).
/// Literal segments win over `{param}` segments when both match.
pub fn match_route(method: Method, path: &str) -> Option<&'static Operation> {
    let segs: Vec<&str> = path.split('/').collect();
    let mut best: Option<(&'static Operation, usize)> = None;
    for (op, tpl) in templates()
        .iter()
        .filter(|(o, t)| o.method == method && t.len() == segs.len())
    {
        let mut literal = 0;
        let ok = tpl.iter().zip(&segs).all(|(t, s)| match t {
            None => !s.is_empty(),
            Some(t) if t == s => {
                literal += 1;
                true
            }
            Some(_) => false,
        });
        if ok && best.is_none_or(|(_, l)| literal > l) {
            best = Some((op, literal));
        }
    }
    best.map(|(op, _)| op)
}
