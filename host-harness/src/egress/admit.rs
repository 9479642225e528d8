//! Admission: may this request leave the host at all? A pure function of the settings, the
//! tool the agent called, and the request as the component made it — no I/O, no policy, no
//! key — so every rule is a row in the table test below.
//!
//! Stages, in order (the first that fails refuses the request):
//! 1. destination: scheme and authority are the configured base URL's;
//! 2. path: every segment canonical (no `.`/`..`, empty segments, encoded `/ \ ? # %`, or
//!    escapes other than the component's own);
//! 3. route: method + path is a Klaviyo operation (the host's own classification);
//! 4. tool: that operation is one the called tool may make (composites: any of theirs);
//! 5. headers: only `accept`, `content-type`, `content-length`, `revision` (= the configured
//!    one), `authorization`, `host` (= the base URL's; wasi:http sets it) and the operation's
//!    own header parameters, each at most once; no method overrides;
//! 6. credentials: `authorization` is exactly the host's placeholder on `/api/*`, absent on
//!    `/client/*`;
//! 7. body: absent when the operation takes none; otherwise the operation's encoding, and it
//!    parses (JSON, or multipart with the declared boundary).

use super::show::parse_multipart;
use crate::Settings;
use klaviyo_catalog::encode::segment_problem;
use klaviyo_catalog::routes::match_route;
use klaviyo_catalog::tools::Tool;
use klaviyo_catalog::{BodyEncoding, Location, Method, Operation};

/// The value the component receives instead of the private key.
pub const KEY_PLACEHOLDER: &str = "host-provided-private-key";

/// Headers that ask a server to treat a request as another method.
const METHOD_OVERRIDES: &[&str] = &[
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

const JSON_API: &str = "application/vnd.api+json";

/// Why a request was refused, and the operation it was classified as (once known).
#[derive(Debug, Clone)]
pub struct Refusal {
    pub operation: Option<&'static Operation>,
    pub reason: Reason,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    Destination {
        got: String,
        allowed: String,
    },
    Path(String),
    NotAnOperation {
        method: String,
        path: String,
    },
    OutsideTool {
        tool: Option<&'static str>,
        operation: &'static str,
    },
    MethodOverride(String),
    Header(String),
    Revision {
        got: String,
        expected: String,
    },
    Credentials(&'static str),
    Body(String),
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::Destination { got, allowed } => {
                write!(f, "egress to {got} is not allowed: the only allowed destination is {allowed}")
            }
            Reason::Path(why) => write!(f, "the path is not canonical: {why}"),
            Reason::NotAnOperation { method, path } => {
                write!(f, "{method} {path} is not a Klaviyo API operation this host knows")
            }
            Reason::OutsideTool { tool: Some(t), operation } => write!(
                f,
                "`{operation}` is not an operation of the called tool `{t}`: a call may make only its own tool's requests"
            ),
            Reason::OutsideTool { tool: None, operation } => write!(
                f,
                "`{operation}` was requested outside any tool call: this call may not send requests"
            ),
            Reason::MethodOverride(h) => {
                write!(f, "the `{h}` header would change the method; requests are sent as classified")
            }
            Reason::Header(why) => write!(f, "{why}"),
            Reason::Revision { got, expected } => write!(
                f,
                "the `revision` header is `{got}`; this host sends `{expected}` (set `revision` in the config to change it)"
            ),
            Reason::Credentials(why) => write!(f, "{why}"),
            Reason::Body(why) => write!(f, "{why}"),
        }
    }
}

/// The operation `parts` + `body` may be sent as, for a call of `tool` (`None`: the call is
/// not a tool call, e.g. listing tools, and may send nothing).
pub fn admit(
    s: &Settings,
    tool: Option<Tool>,
    parts: &http::request::Parts,
    body: &[u8],
) -> Result<&'static Operation, Refusal> {
    let refuse = |operation, reason| Err(Refusal { operation, reason });
    // 1. destination
    let uri = &parts.uri;
    if uri.scheme() != s.base.scheme() || uri.authority() != s.base.authority() {
        let got = format!(
            "{}://{}",
            uri.scheme_str().unwrap_or("?"),
            uri.authority().map(|a| a.as_str()).unwrap_or("?")
        );
        return refuse(
            None,
            Reason::Destination {
                got,
                allowed: s.base_url.clone(),
            },
        );
    }
    // 2. canonical path
    let path = uri.path();
    let Some(rest) = path.strip_prefix('/') else {
        return refuse(
            None,
            Reason::Path(format!("`{path}` does not start with /")),
        );
    };
    for seg in rest.split('/') {
        if let Some(why) = segment_problem(seg) {
            return refuse(None, Reason::Path(why));
        }
    }
    // 3. route
    let method = Method::parse(parts.method.as_str());
    let Some(op) = method.and_then(|m| match_route(m, path)) else {
        return refuse(
            None,
            Reason::NotAnOperation {
                method: parts.method.to_string(),
                path: path.to_string(),
            },
        );
    };
    let refuse = |reason| {
        Err(Refusal {
            operation: Some(op),
            reason,
        })
    };
    // 4. the called tool's own operations
    if !tool.is_some_and(|t| t.operations().iter().any(|o| std::ptr::eq(*o, op))) {
        return refuse(Reason::OutsideTool {
            tool: tool.map(|t| t.name()),
            operation: op.id,
        });
    }
    // 5. headers
    for name in parts.headers.keys() {
        let n = name.as_str();
        if METHOD_OVERRIDES.contains(&n) {
            return refuse(Reason::MethodOverride(n.to_string()));
        }
        if n == "host" {
            // Set by wasi:http from the URL's authority (a guest cannot set it); it must be
            // the base URL's.
            let h = parts.headers.get_all(name).iter().collect::<Vec<_>>();
            let ok = h.len() == 1
                && s.base
                    .authority()
                    .is_some_and(|a| h[0].as_bytes() == a.as_str().as_bytes());
            if !ok {
                return refuse(Reason::Header(
                    "the `host` header is not the base URL's".into(),
                ));
            }
            continue;
        }
        let known = matches!(
            n,
            "accept" | "content-type" | "content-length" | "revision" | "authorization"
        ) || op
            .params
            .iter()
            .any(|p| p.location == Location::Header && p.wire.eq_ignore_ascii_case(n));
        if !known {
            return refuse(Reason::Header(format!(
                "the `{n}` header is not one Klaviyo needs for `{}`; the host forwards only accept, content-type, content-length, revision, authorization{}",
                op.id,
                header_params(op)
            )));
        }
        if parts.headers.get_all(name).iter().count() > 1 {
            return refuse(Reason::Header(format!(
                "the `{n}` header appears more than once"
            )));
        }
    }
    let header = |n: &str| {
        parts
            .headers
            .get(n)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    match header("revision") {
        Some(r) if r == s.revision => {}
        Some(got) => {
            return refuse(Reason::Revision {
                got,
                expected: s.revision.clone(),
            })
        }
        None => return refuse(Reason::Header("the `revision` header is missing".into())),
    }
    if let Some(a) = header("accept") {
        if a != JSON_API {
            return refuse(Reason::Header(format!(
                "the `accept` header must be `{JSON_API}`, not `{a}`"
            )));
        }
    }
    if let Some(l) = header("content-length") {
        if l.parse::<usize>().ok() != Some(body.len()) {
            return refuse(Reason::Header(format!(
                "the `content-length` header says {l} but the body has {} bytes",
                body.len()
            )));
        }
    }
    // 6. credentials
    let expected = format!("Klaviyo-API-Key {KEY_PLACEHOLDER}");
    match (op.client, header("authorization")) {
        (true, Some(_)) => {
            return refuse(Reason::Credentials("client endpoints must not carry an Authorization header"))
        }
        (false, Some(a)) if a != expected => {
            return refuse(Reason::Credentials(
                "the Authorization header must be the host's key placeholder; the component cannot supply a key",
            ))
        }
        (false, None) => return refuse(Reason::Credentials("the request has no Authorization header")),
        _ => {}
    }
    // 7. body
    let content_type = header("content-type");
    match (&op.body, body.is_empty()) {
        (None, true) if content_type.is_none() => {}
        (None, _) => {
            return refuse(Reason::Body(format!("`{}` takes no request body", op.id)));
        }
        (Some(b), true) => {
            if b.required {
                return refuse(Reason::Body(format!("`{}` needs a request body", op.id)));
            }
        }
        (Some(b), false) => {
            let ct = content_type.unwrap_or_default();
            match b.encoding {
                BodyEncoding::JsonApi => {
                    if ct != JSON_API {
                        return refuse(Reason::Body(format!(
                            "`{}` takes a `{JSON_API}` body; the content-type is `{ct}`",
                            op.id
                        )));
                    }
                    if serde_json::from_slice::<serde::de::IgnoredAny>(body).is_err() {
                        return refuse(Reason::Body("the body is not valid JSON".into()));
                    }
                }
                BodyEncoding::Multipart => {
                    if let Err(e) = parse_multipart(&ct, body) {
                        return refuse(Reason::Body(format!(
                            "`{}` takes a multipart/form-data body: {e}",
                            op.id
                        )));
                    }
                }
            }
        }
    }
    Ok(op)
}

fn header_params(op: &Operation) -> String {
    op.params
        .iter()
        .filter(|p| p.location == Location::Header)
        .map(|p| format!(", {}", p.wire.to_ascii_lowercase()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings::new("https://a.klaviyo.com").unwrap()
    }

    fn auth() -> String {
        format!("Klaviyo-API-Key {KEY_PLACEHOLDER}")
    }

    /// A request as the component makes it, then changed by `edit`.
    fn request(method: &str, url: &str, headers: &[(&str, &str)]) -> http::request::Parts {
        let mut b = http::Request::builder().method(method).uri(url);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    fn std_headers(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, String)> {
        let mut h = vec![
            ("accept", JSON_API.to_string()),
            ("revision", klaviyo_catalog::generated::REVISION.to_string()),
            ("authorization", auth()),
        ];
        for (k, v) in extra {
            h.retain(|(n, _)| n != k);
            if !v.is_empty() {
                h.push((k, v.to_string()));
            }
        }
        h
    }

    fn check(
        tool: &str,
        method: &str,
        url: &str,
        extra: &[(&'static str, &'static str)],
        body: &[u8],
    ) -> Result<&'static str, Reason> {
        let h = std_headers(extra);
        let hs: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let parts = request(method, url, &hs);
        let tool = Tool::resolve(tool).ok();
        admit(&settings(), tool, &parts, body)
            .map(|o| o.id)
            .map_err(|r| r.reason)
    }

    const A: &str = "https://a.klaviyo.com";

    #[test]
    fn table() {
        let json_ct = [("content-type", JSON_API)];
        let list_body = br#"{"data":{"type":"list","attributes":{"name":"VIP"}}}"#;
        type Row = (
            &'static str,
            &'static str,
            String,
            Vec<(&'static str, &'static str)>,
            Vec<u8>,
            Result<&'static str, fn(&Reason) -> bool>,
        );
        let table: Vec<Row> = vec![
            ("get_lists", "GET", format!("{A}/api/lists"), vec![], vec![], Ok("get_lists")),
            ("Get Lists", "GET", format!("{A}/api/lists?fields%5Blist%5D=name"), vec![], vec![], Ok("get_lists")),
            ("get_list", "GET", format!("{A}/api/lists/Y6nRLr"), vec![], vec![], Ok("get_list")),
            ("create_list", "POST", format!("{A}/api/lists"), json_ct.to_vec(), list_body.to_vec(), Ok("create_list")),
            // destination
            ("get_lists", "GET", "http://a.klaviyo.com/api/lists".into(), vec![], vec![], Err(|r| matches!(r, Reason::Destination { .. }))),
            ("get_lists", "GET", "https://evil.example/api/lists".into(), vec![], vec![], Err(|r| matches!(r, Reason::Destination { .. }))),
            ("get_lists", "GET", "https://a.klaviyo.com:444/api/lists".into(), vec![], vec![], Err(|r| matches!(r, Reason::Destination { .. }))),
            ("get_lists", "GET", "https://user@a.klaviyo.com/api/lists".into(), vec![], vec![], Err(|r| matches!(r, Reason::Destination { .. }))),
            // canonical paths
            ("get_list", "GET", format!("{A}/api/lists/%2e%2e"), vec![], vec![], Err(|r| matches!(r, Reason::Path(_)))),
            ("get_list", "GET", format!("{A}/api/lists/a%2Fb"), vec![], vec![], Err(|r| matches!(r, Reason::Path(_)))),
            ("get_list", "GET", format!("{A}/api/lists/a%3Fb"), vec![], vec![], Err(|r| matches!(r, Reason::Path(_)))),
            ("get_list", "GET", format!("{A}/api/lists/a%5Cb"), vec![], vec![], Err(|r| matches!(r, Reason::Path(_)))),
            ("get_list", "GET", format!("{A}/api/lists/%2525"), vec![], vec![], Err(|r| matches!(r, Reason::Path(_)))),
            ("get_list", "GET", format!("{A}/api/lists/%59"), vec![], vec![], Err(|r| matches!(r, Reason::Path(_)))),
            ("get_lists", "GET", format!("{A}/api//lists"), vec![], vec![], Err(|r| matches!(r, Reason::Path(_)))),
            ("get_lists", "GET", format!("{A}/api/./lists"), vec![], vec![], Err(|r| matches!(r, Reason::Path(_)))),
            ("get_lists", "GET", format!("{A}/api/flows/../lists"), vec![], vec![], Err(|r| matches!(r, Reason::Path(_)))),
            ("get_lists", "GET", format!("{A}/api/lists/"), vec![], vec![], Err(|r| matches!(r, Reason::Path(_)))),
            // route
            ("get_lists", "GET", format!("{A}/internal/admin"), vec![], vec![], Err(|r| matches!(r, Reason::NotAnOperation { .. }))),
            ("get_lists", "HEAD", format!("{A}/api/lists"), vec![], vec![], Err(|r| matches!(r, Reason::NotAnOperation { .. }))),
            // the called tool's operations only (red-team break 1)
            ("get_lists", "DELETE", format!("{A}/api/flows/F1"), vec![], vec![], Err(|r| matches!(r, Reason::OutsideTool { operation: "delete_flow", .. }))),
            ("get_whatever", "GET", format!("{A}/api/lists"), vec![], vec![], Err(|r| matches!(r, Reason::OutsideTool { tool: None, .. }))),
            ("get_tag_relationships", "GET", format!("{A}/api/tags/T1/relationships/lists"), vec![], vec![], Ok("get_list_ids_for_tag")),
            ("get_tag_relationships", "GET", format!("{A}/api/lists"), vec![], vec![], Err(|r| matches!(r, Reason::OutsideTool { .. }))),
            // headers
            ("get_lists", "GET", format!("{A}/api/lists"), vec![("x-http-method-override", "DELETE")], vec![], Err(|r| matches!(r, Reason::MethodOverride(_)))),
            ("get_lists", "GET", format!("{A}/api/lists"), vec![("x-forwarded-for", "1.2.3.4")], vec![], Err(|r| matches!(r, Reason::Header(m) if m.contains("x-forwarded-for")))),
            ("get_lists", "GET", format!("{A}/api/lists"), vec![("cookie", "a=b")], vec![], Err(|r| matches!(r, Reason::Header(_)))),
            ("get_lists", "GET", format!("{A}/api/lists"), vec![("host", "a.klaviyo.com")], vec![], Ok("get_lists")),
            ("get_lists", "GET", format!("{A}/api/lists"), vec![("host", "evil.example")], vec![], Err(|r| matches!(r, Reason::Header(m) if m.contains("host")))),
            ("get_lists", "GET", format!("{A}/api/lists"), vec![("revision", "2023-01-24")], vec![], Err(|r| matches!(r, Reason::Revision { .. }))),
            ("get_lists", "GET", format!("{A}/api/lists"), vec![("revision", "")], vec![], Err(|r| matches!(r, Reason::Header(m) if m.contains("revision")))),
            ("get_lists", "GET", format!("{A}/api/lists"), vec![("accept", "text/html")], vec![], Err(|r| matches!(r, Reason::Header(m) if m.contains("accept")))),
            ("get_client_geofences", "GET", format!("{A}/client/geofences?company_id=Pub1"), vec![("authorization", ""), ("x-klaviyo-api-filters", "and(equals(lat,1),equals(lng,2))")], vec![], Ok("get_client_geofences")),
            // credentials
            ("get_lists", "GET", format!("{A}/api/lists"), vec![("authorization", "Klaviyo-API-Key pk_made_up")], vec![], Err(|r| matches!(r, Reason::Credentials(_)))),
            ("get_lists", "GET", format!("{A}/api/lists"), vec![("authorization", "")], vec![], Err(|r| matches!(r, Reason::Credentials(_)))),
            ("create_client_subscription", "POST", format!("{A}/client/subscriptions?company_id=Pub1"), vec![("content-type", JSON_API)], br#"{"data":{}}"#.to_vec(), Err(|r| matches!(r, Reason::Credentials(_)))),
            // body
            ("get_lists", "GET", format!("{A}/api/lists"), vec![("content-type", JSON_API)], b"{}".to_vec(), Err(|r| matches!(r, Reason::Body(_)))),
            ("create_list", "POST", format!("{A}/api/lists"), vec![("content-type", "multipart/form-data; boundary=x")], list_body.to_vec(), Err(|r| matches!(r, Reason::Body(_)))),
            ("create_list", "POST", format!("{A}/api/lists"), json_ct.to_vec(), b"{not json".to_vec(), Err(|r| matches!(r, Reason::Body(_)))),
            ("create_list", "POST", format!("{A}/api/lists"), json_ct.to_vec(), vec![], Err(|r| matches!(r, Reason::Body(_)))),
            ("upload_image_from_file", "POST", format!("{A}/api/image-upload"), vec![("content-type", "multipart/form-data; boundary=b")], br#"{"a":1}"#.to_vec(), Err(|r| matches!(r, Reason::Body(_)))),
            ("upload_image_from_file", "POST", format!("{A}/api/image-upload"), vec![("content-type", "multipart/form-data; boundary=b")], b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.gif\"\r\nContent-Type: image/gif\r\n\r\nGIF89a\r\n--b--\r\n".to_vec(), Ok("upload_image_from_file")),
            ("create_list", "POST", format!("{A}/api/lists"), vec![("content-type", JSON_API), ("content-length", "3")], list_body.to_vec(), Err(|r| matches!(r, Reason::Header(m) if m.contains("content-length")))),
        ];
        for (tool, method, url, extra, body, expected) in table {
            let got = check(tool, method, &url, &extra, &body);
            match (&got, &expected) {
                (Ok(op), Ok(want)) => assert_eq!(op, want, "{tool} {method} {url}"),
                (Err(reason), Err(pred)) => {
                    assert!(
                        pred(reason),
                        "{tool} {method} {url}: refused for another reason: {reason}"
                    )
                }
                _ => panic!("{tool} {method} {url} {extra:?}: got {got:?}"),
            }
        }
    }

    #[test]
    fn client_endpoints_go_without_a_key() {
        let parts = request(
            "POST",
            &format!("{A}/client/subscriptions?company_id=Pub1"),
            &[
                ("accept", JSON_API),
                ("revision", klaviyo_catalog::generated::REVISION),
                ("content-type", JSON_API),
            ],
        );
        let tool = Tool::resolve("create_client_subscription").ok();
        assert_eq!(
            admit(&settings(), tool, &parts, br#"{"data":{}}"#)
                .unwrap()
                .id,
            "create_client_subscription"
        );
    }

    #[test]
    fn a_header_sent_twice_is_refused() {
        let mut parts = request("GET", &format!("{A}/api/lists"), &[]);
        for (k, v) in std_headers(&[]) {
            parts.headers.append(k, v.parse().unwrap());
        }
        parts
            .headers
            .append("authorization", "Klaviyo-API-Key pk_other".parse().unwrap());
        let r = admit(&settings(), Tool::resolve("get_lists").ok(), &parts, b"").unwrap_err();
        assert!(
            matches!(&r.reason, Reason::Header(m) if m.contains("more than once")),
            "{}",
            r.reason
        );
    }
}
