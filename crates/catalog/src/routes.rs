//! Method + concrete path → operation. The host classifies every outgoing request with this,
//! from the catalog, never from what the guest claims.

use crate::generated::OPERATIONS;
use crate::{Method, Operation};

/// The operation a request is for: `path` is the path without query (percent-encoded as sent).
/// Literal segments win over `{param}` segments when both match.
pub fn match_route(method: Method, path: &str) -> Option<&'static Operation> {
    let segs: Vec<&str> = path.split('/').collect();
    let mut best: Option<(&'static Operation, usize)> = None;
    for op in OPERATIONS.iter().filter(|o| o.method == method) {
        let tpl: Vec<&str> = op.path.split('/').collect();
        if tpl.len() != segs.len() {
            continue;
        }
        let mut literal = 0;
        let ok = tpl.iter().zip(&segs).all(|(t, s)| {
            if t.starts_with('{') && t.ends_with('}') {
                !s.is_empty()
            } else if t == s {
                literal += 1;
                true
            } else {
                false
            }
        });
        if ok && best.is_none_or(|(_, l)| literal > l) {
            best = Some((op, literal));
        }
    }
    best.map(|(op, _)| op)
}
