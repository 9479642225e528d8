//! `klaviyo-harness reconcile`: settles the writes whose outcome is unknown (the request went
//! out and its answer was lost), from the audit log, without ever repeating one.
//!
//! Contract:
//! - A write is pending when the log has a `done` record with `outcome: outcome-unknown` and no
//!   later `reconciled` record for the same `request`, of this run's connection (a named
//!   connection, the sandbox account `sandbox:SEED`, or none): another account's writes are
//!   never judged by a read of this one.
//! - For each, only a **read** runs: for a change to one resource (PATCH, PUT or DELETE on
//!   `…/{id}`), the GET of the same path, ids from the recorded path. A create or a
//!   relationship change cannot be judged that way (the log keeps no body): it is
//!   `could-not-check`, with the read to make by hand. The write itself is never sent again.
//! - The answer is one of `found` (the resource is there; for a deletion: it did not happen),
//!   `not-found` (a 404; for a deletion: it happened) or `could-not-check` (no read names the
//!   resource, e.g. a create, whose body the log does not keep; or the read failed), and is
//!   recorded as a `reconciled` audit record; `found` and `not-found` settle the write (`report`
//!   stops listing it), `could-not-check` leaves it pending for the next run.

use crate::Harness;
use klaviyo_catalog::{Method, Operation};
use serde_json::{json, Map, Value};

/// Reconciles every pending write of the harness's audit log: the reads, the `reconciled`
/// records. Returns one JSON object per write (`operation`, `method`, `path`, `outcome`,
/// `read`, `text`) and how many remain unsettled (`could-not-check`).
pub async fn run(h: &Harness) -> Result<(Vec<Value>, usize), String> {
    let Some(log) = h.settings().audit_log.clone() else {
        return Err("no audit log is configured".into());
    };
    let text = match std::fs::read_to_string(&log) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(format!("audit log {}: {e}", log.display())),
    };
    // Only this account's writes: another connection's (or the sandbox's) are settled by a
    // read of that account, never this one.
    let mine = h.settings().connection.as_deref();
    let records: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|r| r["connection"].as_str() == mine)
        .collect();
    let mut results = Vec::new();
    let mut unsettled = 0;
    for p in pending(&records) {
        let (outcome, text, read) = match read_for(&p) {
            Ok((read, args)) => {
                let out = h.call(read.id, &Value::Object(args).to_string()).await;
                let (o, t) = judge(&p, &out.result);
                (o, t, Some(read.id))
            }
            Err(why) => ("could-not-check", why, None),
        };
        unsettled += usize::from(outcome == "could-not-check");
        let rec = crate::audit::Record {
            time: crate::audit::now_rfc3339(),
            event: "reconciled",
            request: p.request,
            tool: "reconcile",
            connection: h.settings().connection.as_deref(),
            client: None,
            operation: p.operation.id,
            access: p.operation.access.as_str(),
            decision: "-",
            method: &p.method,
            path: &p.path,
            status: None,
            duration_ms: None,
            klaviyo_request_id: None,
            detail: Some(text.clone()),
            outcome: Some(outcome),
            paced_ms: None,
            check: read.map(String::from),
        };
        h.shared().audit.write(&rec)?;
        results.push(json!({"request": p.request, "time": p.time, "operation": p.operation.id, "method": p.method, "path": p.path, "outcome": outcome, "read": read, "text": text}));
    }
    Ok((results, unsettled))
}

/// A write whose outcome is unknown and not yet reconciled.
#[derive(Debug)]
pub struct Pending {
    pub request: u64,
    pub time: String,
    pub operation: &'static Operation,
    pub method: String,
    pub path: String,
}

/// The pending writes of a log, oldest first.
pub fn pending(records: &[Value]) -> Vec<Pending> {
    // A check that could not be made leaves the write pending: the next run tries again.
    let settled: Vec<u64> = records
        .iter()
        .filter(|r| r["event"] == "reconciled" && r["outcome"] != "could-not-check")
        .filter_map(|r| r["request"].as_u64())
        .collect();
    records
        .iter()
        .filter(|r| r["event"] == "done" && r["outcome"] == "outcome-unknown")
        .filter_map(|r| {
            let request = r["request"].as_u64()?;
            if settled.contains(&request) {
                return None;
            }
            let id = r["operation"].as_str()?;
            let operation = klaviyo_catalog::generated::OPERATIONS
                .iter()
                .find(|o| o.id == id)?;
            Some(Pending {
                request,
                time: r["time"].as_str().unwrap_or("").to_string(),
                operation,
                method: r["method"].as_str().unwrap_or("").to_string(),
                path: r["path"].as_str().unwrap_or("").to_string(),
            })
        })
        .collect()
}

/// The path parameters `path` gives `template` (`/api/lists/{id}` + `/api/lists/L1` → id=L1).
pub fn path_args(template: &str, path: &str) -> Option<Map<String, Value>> {
    let t: Vec<&str> = template.trim_end_matches('/').split('/').collect();
    let p: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    if t.len() != p.len() {
        return None;
    }
    let mut args = Map::new();
    for (a, b) in t.iter().zip(&p) {
        match a.strip_prefix('{').and_then(|a| a.strip_suffix('}')) {
            Some(name) => {
                args.insert(name.to_string(), Value::String(b.to_string()));
            }
            None if a == b => {}
            None => return None,
        }
    }
    Some(args)
}

/// The read that shows whether `p` happened, with its arguments; or why there is none.
pub fn read_for(p: &Pending) -> Result<(&'static Operation, Map<String, Value>), String> {
    // Only a change to one resource (`…/{id}`) can be judged by reading it back: a create or a
    // relationship change would need the body, which the log does not keep.
    let one_resource = p.operation.path.trim_end_matches('/').ends_with('}')
        && matches!(
            p.operation.method,
            Method::Patch | Method::Put | Method::Delete
        );
    let read = klaviyo_catalog::generated::OPERATIONS
        .iter()
        .filter(|_| one_resource)
        .find(|o| o.method == Method::Get && o.path == p.operation.path);
    match read {
        Some(r) => path_args(r.path, &p.path)
            .map(|args| (r, args))
            .ok_or_else(|| format!("the recorded path {} does not fit {}", p.path, r.path)),
        None => Err(format!(
            "no read names the resource `{}` made or changed ({}); the audit log keeps no request body, so look for it yourself: {}",
            p.operation.id,
            p.path,
            klaviyo_catalog::response::check_hint(p.operation)
        )),
    }
}

/// `found`, `not-found` or `could-not-check`, and a sentence saying what it means for `p`.
pub fn judge(
    p: &Pending,
    read: &Result<String, klaviyo_catalog::response::Failure>,
) -> (&'static str, String) {
    use klaviyo_catalog::response::Failure;
    let deletion = p.method == "DELETE";
    match read {
        Ok(_) if deletion => (
            "found",
            "the resource is still there: the deletion did not happen".into(),
        ),
        Ok(_) => (
            "found",
            "the resource is there; its attributes show whether the change landed".into(),
        ),
        Err(Failure::Http { status: 404, .. }) if deletion => (
            "not-found",
            "the resource is gone: the deletion happened".into(),
        ),
        Err(Failure::Http { status: 404, .. }) => (
            "not-found",
            "the resource does not exist: the write did not take effect on it".into(),
        ),
        Err(f) => ("could-not-check", format!("the read failed: {f}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_arguments_come_from_the_recorded_path() {
        let a = path_args("/api/lists/{id}", "/api/lists/L1").unwrap();
        assert_eq!(Value::Object(a), json!({"id": "L1"}));
        assert!(path_args("/api/lists/{id}", "/api/lists").is_none());
        assert!(path_args("/api/lists/{id}", "/api/flows/F1").is_none());
    }

    #[test]
    fn pending_writes_are_the_unknown_ones_not_yet_reconciled() {
        let log = [
            json!({"event": "done", "request": 1, "operation": "update_list", "method": "PATCH", "path": "/api/lists/L1", "outcome": "outcome-unknown", "time": "t"}),
            json!({"event": "done", "request": 2, "operation": "delete_list", "method": "DELETE", "path": "/api/lists/L2", "outcome": "outcome-unknown", "time": "t"}),
            json!({"event": "done", "request": 3, "operation": "get_lists", "method": "GET", "path": "/api/lists", "status": 200, "time": "t"}),
            json!({"event": "reconciled", "request": 1, "outcome": "found", "time": "t"}),
            json!({"event": "reconciled", "request": 2, "outcome": "could-not-check", "time": "t"}),
        ];
        let p = pending(&log);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].request, 2);
        let (read, args) = read_for(&p[0]).unwrap();
        assert_eq!(read.id, "get_list");
        assert_eq!(Value::Object(args), json!({"id": "L2"}));
    }

    #[test]
    fn a_create_cannot_be_checked_without_its_body() {
        let log = [
            json!({"event": "done", "request": 5, "operation": "create_list", "method": "POST", "path": "/api/lists", "outcome": "outcome-unknown", "time": "t"}),
        ];
        let p = pending(&log);
        let why = read_for(&p[0]).unwrap_err();
        assert!(
            why.contains("keeps no request body") && why.contains("get_lists"),
            "{why}"
        );
    }
}
