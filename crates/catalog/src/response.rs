//! Klaviyo's answers → the response text, or a structured failure an agent can act on.

use crate::{Access, Operation};
use serde_json::Value;

/// Header a host sets on a response it made itself (never one Klaviyo sent): its value says
/// why the request was not answered by Klaviyo, and the body (text) says what to do.
/// Hosts strip this header from real responses.
pub const HOST_VERDICT_HEADER: &str = "x-klaviyo-connector-host";

/// Why the host answered a request itself: the value of [`HOST_VERDICT_HEADER`]. One enum on
/// both sides, so the host and the component cannot disagree on a spelling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HostVerdict {
    /// The policy or the egress guard refused the request; nothing was sent.
    Denied,
    /// No key (or no public key) to send it with; nothing was sent.
    NotConfigured,
    /// The host's pacing or a daily cap holds it back; nothing was sent.
    Throttled,
    /// A read got no answer in time.
    Timeout,
    /// A write was sent and its answer lost: it may or may not have happened.
    OutcomeUnknown,
    /// The host could not send it or read the answer (for a read: nothing changed).
    Transport,
}

impl HostVerdict {
    pub const ALL: [HostVerdict; 6] = [
        HostVerdict::Denied,
        HostVerdict::NotConfigured,
        HostVerdict::Throttled,
        HostVerdict::Timeout,
        HostVerdict::OutcomeUnknown,
        HostVerdict::Transport,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            HostVerdict::Denied => "denied",
            HostVerdict::NotConfigured => "not-configured",
            HostVerdict::Throttled => "throttled",
            HostVerdict::Timeout => "timeout",
            HostVerdict::OutcomeUnknown => "outcome-unknown",
            HostVerdict::Transport => "transport",
        }
    }

    /// The verdict a header value names; an unknown value is a transport failure (the host
    /// said something went wrong, but not what).
    pub fn parse(s: &str) -> HostVerdict {
        HostVerdict::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .unwrap_or(HostVerdict::Transport)
    }

    /// The failure the component reports for this verdict, with the host's text.
    pub fn failure(self, text: String, retry_after: Option<u32>) -> Failure {
        match self {
            HostVerdict::Denied => Failure::Denied { message: text },
            HostVerdict::NotConfigured => Failure::NotConfigured { message: text },
            HostVerdict::Throttled => Failure::Throttled {
                retry_after_seconds: retry_after,
                detail: text,
            },
            HostVerdict::Timeout => Failure::Timeout { message: text },
            HostVerdict::OutcomeUnknown => Failure::OutcomeUnknown { message: text },
            HostVerdict::Transport => Failure::Transport { message: text },
        }
    }
}

/// One entry of Klaviyo's `errors[]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct KlaviyoError {
    pub id: Option<String>,
    pub code: String,
    pub title: String,
    pub detail: String,
    pub source_pointer: Option<String>,
    pub source_parameter: Option<String>,
}

impl KlaviyoError {
    /// What went wrong: the detail, or the title when Klaviyo gave no detail.
    pub fn text(&self) -> &str {
        if self.detail.is_empty() {
            &self.title
        } else {
            &self.detail
        }
    }

    /// Where: the JSON pointer into the body, or the query parameter.
    pub fn location(&self) -> Option<&str> {
        self.source_pointer
            .as_deref()
            .or(self.source_parameter.as_deref())
    }
}

/// Mirrors the WIT `api-error` variant. Serialises itself as `{"kind": "denied", "message":
/// …}` (the kind in kebab case, then the variant's fields), the shape the CLI's `--json` and
/// the MCP results use.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Failure {
    Http {
        status: u16,
        errors: Vec<KlaviyoError>,
        request_id: Option<String>,
        hint: Option<String>,
        body: Option<String>,
    },
    Throttled {
        retry_after_seconds: Option<u32>,
        detail: String,
    },
    InvalidInput {
        field: String,
        message: String,
    },
    Denied {
        message: String,
    },
    NotConfigured {
        message: String,
    },
    UnknownTool {
        message: String,
    },
    Transport {
        message: String,
    },
    Timeout {
        message: String,
    },
    OutcomeUnknown {
        message: String,
    },
}

impl Failure {
    /// The kind as the WIT variant and `--json` spell it (`invalid-input`, `outcome-unknown`).
    pub fn kind(&self) -> &'static str {
        match self {
            Failure::Http { .. } => "http",
            Failure::Throttled { .. } => "throttled",
            Failure::InvalidInput { .. } => "invalid-input",
            Failure::Denied { .. } => "denied",
            Failure::NotConfigured { .. } => "not-configured",
            Failure::UnknownTool { .. } => "unknown-tool",
            Failure::Transport { .. } => "transport",
            Failure::Timeout { .. } => "timeout",
            Failure::OutcomeUnknown { .. } => "outcome-unknown",
        }
    }

    /// As JSON: the variant's own fields, its `kind`, and `text` (the sentence [`Display`]
    /// gives, for people and agents).
    ///
    /// [`Display`]: std::fmt::Display
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        v["text"] = serde_json::Value::String(self.to_string());
        v
    }
}

impl From<crate::Error> for Failure {
    fn from(e: crate::Error) -> Failure {
        match e {
            crate::Error::InvalidInput { field, message } => {
                Failure::InvalidInput { field, message }
            }
            crate::Error::NotConfigured(m) => Failure::NotConfigured { message: m },
            crate::Error::UnknownTool(m) => Failure::UnknownTool { message: m },
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Http {
                status,
                errors,
                request_id,
                hint,
                body,
            } => {
                write!(f, "Klaviyo answered HTTP {status}")?;
                for e in errors {
                    write!(f, "; {}: {}", e.code, e.text())?;
                    if let Some(p) = e.location() {
                        write!(f, " (at {p})")?;
                    }
                }
                if errors.is_empty() {
                    if let Some(b) = body {
                        write!(f, ": {}", b.chars().take(300).collect::<String>())?;
                    }
                }
                if let Some(h) = hint {
                    write!(f, ". {h}")?;
                }
                if let Some(r) = request_id {
                    write!(f, " [request id {r}]")?;
                }
                Ok(())
            }
            Failure::Throttled {
                retry_after_seconds,
                detail,
            } => match retry_after_seconds {
                Some(s) => write!(f, "throttled: retry after {s} s ({detail})"),
                None => write!(f, "throttled: {detail}"),
            },
            Failure::InvalidInput { field, message } => {
                write!(f, "invalid input: `{field}` {message}")
            }
            Failure::Denied { message: m } => write!(f, "denied by host policy: {m}"),
            Failure::NotConfigured { message: m } => write!(f, "not configured: {m}"),
            Failure::UnknownTool { message: m } => write!(f, "unknown tool: {m}"),
            Failure::Transport { message: m } => write!(f, "transport error: {m}"),
            Failure::Timeout { message: m } => write!(f, "timeout: {m}"),
            Failure::OutcomeUnknown { message: m } => write!(f, "outcome unknown: {m}"),
        }
    }
}

/// Parses `{"errors": [...]}`; `None` when the body is not such a document.
pub fn parse_errors(body: &str) -> Option<Vec<KlaviyoError>> {
    let v: Value = serde_json::from_str(body).ok()?;
    let arr = v.get("errors")?.as_array()?;
    let text = |e: &Value, k: &str| e.get(k).and_then(Value::as_str).map(String::from);
    Some(
        arr.iter()
            .map(|e| KlaviyoError {
                id: text(e, "id"),
                code: text(e, "code").unwrap_or_default(),
                title: text(e, "title").unwrap_or_default(),
                detail: text(e, "detail").unwrap_or_default(),
                source_pointer: e.get("source").and_then(|s| text(s, "pointer")),
                source_parameter: e.get("source").and_then(|s| text(s, "parameter")),
            })
            .collect(),
    )
}

/// Seconds from a `Retry-After` value (delta-seconds form; fractional values round up).
pub fn parse_retry_after(v: &str) -> Option<u32> {
    let f: f64 = v.trim().parse().ok()?;
    (f.is_finite() && f >= 0.0).then(|| f.ceil().min(f64::from(u32::MAX)) as u32)
}

/// How long to wait after a 429: `Retry-After` (seconds), else `RateLimit-Reset`, else the
/// "Expected available in N seconds" of Klaviyo's throttled detail.
pub fn retry_after_seconds(header: &dyn Fn(&str) -> Option<String>, body: &str) -> Option<u32> {
    header("retry-after")
        .and_then(|v| parse_retry_after(&v))
        .or_else(|| header("ratelimit-reset").and_then(|v| parse_retry_after(&v)))
        .or_else(|| {
            parse_errors(body)?
                .iter()
                .find_map(|e| detail_seconds(&e.detail))
        })
}

/// A read that tells whether a write happened: the GET of the same path, or of its collection.
pub fn check_hint(op: &Operation) -> String {
    let parent = op.path.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
    let read = [op.path, parent].iter().find_map(|p| {
        crate::generated::OPERATIONS
            .iter()
            .find(|o| o.method == crate::Method::Get && o.path == *p)
    });
    match read {
        Some(r) => format!(
            "check with `{}` ({} {}) before retrying",
            r.id,
            r.method.as_str(),
            r.path
        ),
        None => "check the affected resources with a read before retrying".to_string(),
    }
}

/// Deepest JSON nesting accepted in an answer (Klaviyo's documents are far shallower; this keeps
/// every later parser of the result safe).
pub const MAX_RESPONSE_DEPTH: usize = 128;

/// Maximum nesting of arrays/objects in JSON text, without parsing it (strings skipped).
pub fn json_depth(text: &[u8]) -> usize {
    let (mut depth, mut max, mut in_str, mut escaped) = (0usize, 0usize, false, false);
    for &b in text {
        if in_str {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// Turns a response into the tool's result. `header` looks up a response header by name.
pub fn interpret(
    op: &Operation,
    status: u16,
    header: &dyn Fn(&str) -> Option<String>,
    body: &[u8],
) -> Result<String, Failure> {
    let text = String::from_utf8_lossy(body).into_owned();
    if let Some(verdict) = header(HOST_VERDICT_HEADER) {
        let retry_after = header("retry-after").and_then(|v| parse_retry_after(&v));
        return Err(HostVerdict::parse(&verdict).failure(text, retry_after));
    }
    if (200..300).contains(&status) {
        let Ok(utf8) = std::str::from_utf8(body) else {
            return Err(Failure::Transport {
                message: format!("Klaviyo answered {status} with a body that is not UTF-8 text"),
            });
        };
        if !utf8.trim().is_empty() {
            if json_depth(utf8.as_bytes()) > MAX_RESPONSE_DEPTH {
                return Err(Failure::Transport { message: format!("Klaviyo answered {status} with JSON nested too deeply (over {MAX_RESPONSE_DEPTH} levels)") });
            }
            if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(utf8) {
                return Err(Failure::Transport {
                    message: format!(
                        "Klaviyo answered {status} with a body that is not valid JSON ({e})"
                    ),
                });
            }
        }
        return Ok(text);
    }
    let errors = parse_errors(&text);
    if status == 429 {
        let detail = errors
            .as_ref()
            .and_then(|e| e.first().map(|e| e.detail.clone()))
            .unwrap_or_else(|| "Klaviyo's rate limit for this endpoint was reached".into());
        return Err(Failure::Throttled {
            retry_after_seconds: retry_after_seconds(header, &text),
            detail,
        });
    }
    if status >= 500 && op.access != Access::Read {
        return Err(Failure::OutcomeUnknown {
            message: format!(
            "Klaviyo answered HTTP {status} to `{}`: the write may or may not have happened; {}",
            op.id,
            check_hint(op)
        ),
        });
    }
    let hint = match status {
        401 => Some(
            "The private API key was not accepted: check the key the host is configured with"
                .to_string(),
        ),
        403 => Some(format!(
            "This action needs the API key scopes: {}",
            if op.scopes.is_empty() {
                "none (public key)".into()
            } else {
                op.scopes.join(", ")
            }
        )),
        _ => None,
    };
    Err(Failure::Http {
        status,
        request_id: header("x-klaviyo-req-id"),
        hint,
        body: if errors.is_none() && !text.is_empty() {
            Some(text.chars().take(2000).collect())
        } else {
            None
        },
        errors: errors.unwrap_or_default(),
    })
}

/// Klaviyo's throttled detail says e.g. "Request was throttled. Expected available in 3 seconds."
fn detail_seconds(detail: &str) -> Option<u32> {
    let i = detail.find(" in ")?;
    detail[i + 4..].split_whitespace().next()?.parse().ok()
}

/// The cursor of the next page, from `links.next` of a JSON:API response: the value of the
/// `page[cursor]` (or `page_cursor`) query parameter, percent-decoded, ready to pass back as the
/// `page_cursor` argument. `None` on the last page. (Other parameters of the link, such as
/// `page[size]`, are the caller's own arguments and are kept by passing them again.)
pub fn next_cursor(body: &str) -> Option<String> {
    let v: Value = serde_json::from_str(body).ok()?;
    let next = v.get("links")?.get("next")?.as_str()?;
    let query = next.split_once('?')?.1.split('#').next()?;
    query.split('&').find_map(|pair| {
        let (k, val) = pair.split_once('=')?;
        let key = crate::encode::decode(&k.replace('+', " "));
        (key == "page[cursor]" || key == "page_cursor")
            .then(|| crate::encode::decode(&val.replace('+', " ")))
    })
}

/// What `links.next` of a JSON:API answer says about the next page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NextPage {
    /// No `links.next` (or null): this is the last page.
    Last,
    /// The next page's cursor, ready to pass back as `page_cursor`.
    Cursor(String),
    /// A `links.next` without a `page[cursor]` in it: there is more, but no way to ask for it.
    NoCursor(String),
}

/// [`next_cursor`], telling a last page apart from a next link that cannot be followed.
pub fn next_page(body: &str) -> NextPage {
    let Ok(v) = serde_json::from_str::<Value>(body) else {
        return NextPage::Last;
    };
    match v.get("links").and_then(|l| l.get("next")) {
        None | Some(Value::Null) => NextPage::Last,
        Some(Value::String(s)) if s.is_empty() => NextPage::Last,
        Some(link) => match next_cursor(body) {
            Some(c) => NextPage::Cursor(c),
            None => NextPage::NoCursor(link.to_string()),
        },
    }
}

/// A compact form of a JSON:API answer for a model's context: each resource reduced to `id`,
/// `type`, `attributes` and the relationships that have data (links dropped); `included` the
/// same; the next page's cursor as `next_cursor`. Other documents come back unchanged.
pub fn compact(body: &str) -> Value {
    let Ok(doc) = serde_json::from_str::<Value>(body) else {
        return Value::String(body.to_string());
    };
    let Some(obj) = doc.as_object() else {
        return doc;
    };
    if !obj.contains_key("data") {
        return doc;
    }
    fn resource(r: &Value) -> Value {
        let Some(o) = r.as_object() else {
            return r.clone();
        };
        let mut out = serde_json::Map::new();
        for k in ["id", "type", "attributes"] {
            if let Some(v) = o.get(k) {
                out.insert(k.into(), v.clone());
            }
        }
        if let Some(Value::Object(rels)) = o.get("relationships") {
            let kept: serde_json::Map<String, Value> = rels
                .iter()
                .filter_map(|(k, v)| {
                    let data = v.get("data")?;
                    let empty = data.is_null() || data.as_array().is_some_and(|a| a.is_empty());
                    (!empty).then(|| (k.clone(), data.clone()))
                })
                .collect();
            if !kept.is_empty() {
                out.insert("relationships".into(), Value::Object(kept));
            }
        }
        Value::Object(out)
    }
    let each = |v: &Value| match v {
        Value::Array(items) => Value::Array(items.iter().map(resource).collect()),
        other => resource(other),
    };
    let mut out = serde_json::Map::new();
    out.insert("data".into(), each(&obj["data"]));
    if let Some(inc) = obj.get("included") {
        out.insert("included".into(), each(inc));
    }
    if let Some(meta) = obj.get("meta") {
        out.insert("meta".into(), meta.clone());
    }
    if let Some(c) = next_cursor(body) {
        out.insert("next_cursor".into(), Value::String(c));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_keeps_what_a_model_needs() {
        let body = r#"{"data":[{"type":"list","id":"L1","attributes":{"name":"VIP"},"links":{"self":"x"},
            "relationships":{"profiles":{"links":{"self":"y"}},"tags":{"data":[{"type":"tag","id":"T1"}]},"flows":{"data":[]}}}],
            "links":{"self":"s","next":"https://a.klaviyo.com/api/lists?page%5Bcursor%5D=abc%3D"}}"#;
        let c = compact(body);
        assert_eq!(
            c,
            serde_json::json!({"data": [{"id": "L1", "type": "list", "attributes": {"name": "VIP"},
                "relationships": {"tags": [{"type": "tag", "id": "T1"}]}}], "next_cursor": "abc="})
        );
        assert_eq!(
            compact(r#"{"errors":[]}"#),
            serde_json::json!({"errors": []})
        );
        assert_eq!(compact(""), Value::String(String::new()));
    }

    #[test]
    fn next_cursor_from_links() {
        let doc = |next: &str| format!(r#"{{"data":[],"links":{{"self":"x","next":{next}}}}}"#);
        assert_eq!(
            next_cursor(&doc(r#""https://a.klaviyo.com/api/profiles/?page%5Bcursor%5D=bmV4dDo6aWQ6OjQz%3D%3D&page%5Bsize%5D=5""#)).as_deref(),
            Some("bmV4dDo6aWQ6OjQz==")
        );
        assert_eq!(
            next_cursor(&doc(
                r#""https://a.klaviyo.com/api/x?page[size]=2&page[cursor]=abc""#
            ))
            .as_deref(),
            Some("abc")
        );
        assert_eq!(
            next_cursor(&doc(r#""https://a.klaviyo.com/api/x?page_cursor=a%2Bb+c""#)).as_deref(),
            Some("a+b c")
        );
        assert_eq!(next_cursor(&doc("null")), None);
        assert_eq!(next_cursor("not json"), None);
    }

    #[test]
    fn depth_skips_strings() {
        assert_eq!(json_depth(br#"{"a":[1,{"b":"[[[\"{{"}]}"#), 3);
        assert_eq!(json_depth(b"[[[["), 4);
        assert_eq!(json_depth(b"1"), 0);
    }

    #[test]
    fn retry_after_sources() {
        let none = |_: &str| None;
        let ra = |n: &str| (n == "retry-after").then(|| "2".to_string());
        assert_eq!(retry_after_seconds(&ra, ""), Some(2));
        let reset = |n: &str| (n == "ratelimit-reset").then(|| "7".to_string());
        assert_eq!(retry_after_seconds(&reset, ""), Some(7));
        let body = r#"{"errors":[{"code":"throttled","title":"t","detail":"Request was throttled. Expected available in 3 seconds."}]}"#;
        assert_eq!(retry_after_seconds(&none, body), Some(3));
        assert_eq!(retry_after_seconds(&none, "{}"), None);
    }
}
