//! The request as a person sees it before approving it (and as a dry run prints it): the
//! method, the URL, every header as sent (the key redacted), and the body as actually sent —
//! JSON pretty-printed, multipart summarised by parsing it here (never by trusting the
//! component's content-type), anything else as text.

use serde_json::{json, Value};

/// One part of a multipart body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub name: Option<String>,
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub size: usize,
}

/// Parses a `multipart/form-data` body with the boundary of `content_type`.
pub fn parse_multipart(content_type: &str, body: &[u8]) -> Result<Vec<Part>, String> {
    let (mime, params) = content_type.split_once(';').unwrap_or((content_type, ""));
    if !mime.trim().eq_ignore_ascii_case("multipart/form-data") {
        return Err(format!("the content-type is `{content_type}`"));
    }
    let boundary = params
        .split(';')
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v.trim().trim_matches('"'))
        .filter(|b| !b.is_empty() && b.len() <= 70)
        .ok_or("the content-type has no boundary")?;
    let delim = format!("--{boundary}");
    let mut rest = body
        .strip_prefix(delim.as_bytes())
        .ok_or("the body does not start with the boundary")?;
    let next = format!("\r\n--{boundary}");
    let mut parts = Vec::new();
    loop {
        if rest.starts_with(b"--") {
            return if parts.is_empty() {
                Err("the body has no parts".into())
            } else {
                Ok(parts)
            };
        }
        rest = rest
            .strip_prefix(b"\r\n")
            .ok_or("a boundary is not followed by a line break")?;
        let head_end = find(rest, b"\r\n\r\n").ok_or("a part has no end of headers")?;
        let head =
            std::str::from_utf8(&rest[..head_end]).map_err(|_| "a part's headers are not UTF-8")?;
        let content = &rest[head_end + 4..];
        let end = find(content, next.as_bytes()).ok_or("a part has no closing boundary")?;
        let mut part = Part {
            name: None,
            filename: None,
            content_type: None,
            size: end,
        };
        for line in head.split("\r\n") {
            let (k, v) = line
                .split_once(':')
                .ok_or("a part header is not `name: value`")?;
            if k.trim().eq_ignore_ascii_case("content-disposition") {
                for p in v.split(';').skip(1) {
                    if let Some((pk, pv)) = p.trim().split_once('=') {
                        let pv = pv.trim().trim_matches('"').to_string();
                        match pk.trim() {
                            "name" => part.name = Some(pv),
                            "filename" => part.filename = Some(pv),
                            _ => {}
                        }
                    }
                }
            } else if k.trim().eq_ignore_ascii_case("content-type") {
                part.content_type = Some(v.trim().to_string());
            }
        }
        parts.push(part);
        rest = &content[end + next.len()..];
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Headers as sent, the key (or its placeholder) redacted.
pub fn headers(h: &http::HeaderMap) -> Value {
    let mut m = serde_json::Map::new();
    for (k, v) in h {
        let text = if k == http::header::AUTHORIZATION {
            "Klaviyo-API-Key [redacted]".to_string()
        } else {
            String::from_utf8_lossy(v.as_bytes()).into_owned()
        };
        m.insert(k.as_str().to_string(), Value::String(text));
    }
    Value::Object(m)
}

/// The body as sent: JSON, a multipart summary (parsed here), or text.
pub fn body(body: &[u8], content_type: Option<&str>) -> Value {
    if body.is_empty() {
        return Value::Null;
    }
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        return v;
    }
    if let Some(ct) = content_type.filter(|c| c.to_ascii_lowercase().starts_with("multipart/")) {
        return match parse_multipart(ct, body) {
            Ok(parts) => json!({"multipart": parts.iter().map(|p| json!({
                "name": p.name, "filename": p.filename, "content_type": p.content_type, "bytes": p.size,
            })).collect::<Vec<_>>(), "bytes": body.len()}),
            Err(e) => json!({"not_valid_multipart": e, "text": lossy_prefix(body)}),
        };
    }
    json!({"text": lossy_prefix(body), "bytes": body.len()})
}

fn lossy_prefix(b: &[u8]) -> String {
    const MAX: usize = 4096;
    let mut s = String::from_utf8_lossy(&b[..b.len().min(MAX)]).into_owned();
    if b.len() > MAX {
        s.push_str(&format!("… ({} more bytes)", b.len() - MAX));
    }
    s
}

/// The request as JSON: `{method, url, headers, body}`.
pub fn request(parts: &http::request::Parts, bytes: &[u8]) -> Value {
    let ct = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    json!({
        "method": parts.method.as_str(),
        "url": parts.uri.to_string(),
        "headers": headers(&parts.headers),
        "body": body(bytes, ct),
    })
}

/// The request as text for a person: `METHOD URL`, one header per line, a blank line, the body.
pub fn request_text(shown: &Value) -> String {
    let mut s = format!(
        "{} {}\n",
        shown["method"].as_str().unwrap_or(""),
        shown["url"].as_str().unwrap_or("")
    );
    for (k, v) in shown["headers"].as_object().into_iter().flatten() {
        s.push_str(&format!("{k}: {}\n", v.as_str().unwrap_or("")));
    }
    if !shown["body"].is_null() {
        s.push('\n');
        s.push_str(&serde_json::to_string_pretty(&shown["body"]).unwrap_or_default());
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_is_parsed_not_trusted() {
        let ct = "multipart/form-data; boundary=xyz";
        let body = b"--xyz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"logo.png\"\r\nContent-Type: image/png\r\n\r\nPNGDATA\r\n--xyz\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nLogo\r\n--xyz--\r\n";
        let parts = parse_multipart(ct, body).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name.as_deref(), Some("file"));
        assert_eq!(parts[0].filename.as_deref(), Some("logo.png"));
        assert_eq!(parts[0].content_type.as_deref(), Some("image/png"));
        assert_eq!(parts[0].size, 7);
        assert_eq!(parts[1].size, 4);
        // A JSON body labelled multipart is shown as the JSON it is.
        let shown = super::body(br#"{"data":{"type":"list"}}"#, Some(ct));
        assert_eq!(shown["data"]["type"], "list");
        // Text labelled multipart that does not parse says so and shows the text.
        let shown = super::body(b"delete everything", Some(ct));
        assert!(shown["not_valid_multipart"].is_string(), "{shown}");
        assert_eq!(shown["text"], "delete everything");
        for bad in [
            &b""[..],
            b"--xyz--\r\n",
            b"--other\r\n\r\n",
            b"--xyz\r\nno-colon\r\n\r\nx\r\n--xyz--",
        ] {
            assert!(
                parse_multipart(ct, bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(
            parse_multipart("multipart/form-data", body).is_err(),
            "no boundary"
        );
    }
}
