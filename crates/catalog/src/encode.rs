//! Percent-encoding for path segments and query strings.

use std::fmt::Write as _;

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
}

/// Encodes one path segment: everything but RFC 3986 unreserved characters is escaped, and a
/// segment of only dots (`.`, `..`) is escaped too, so no id can change the path.
pub fn path_segment(s: &str) -> String {
    if !s.is_empty() && s.bytes().all(|b| b == b'.') {
        return "%2E".repeat(s.len());
    }
    encode(s, is_unreserved)
}

/// Encodes a query key or value. Sub-delimiters that carry no meaning in a query string are
/// kept readable (`,()':@!*$;/`); `&`, `=`, `+`, `#`, `%`, `[`, `]`, spaces and non-ASCII are
/// escaped.
pub fn query_component(s: &str) -> String {
    encode(s, |b| is_unreserved(b) || b",()':@!*$;/".contains(&b))
}

fn encode(s: &str, keep: impl Fn(u8) -> bool) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if keep(b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Decodes `%XX` escapes (and nothing else); invalid escapes are kept as they are.
pub fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Why `text` cannot be sent as one path segment (an id), if it cannot. Ids travel inside one
/// segment; the host refuses anything a server could read as another path, so the component
/// refuses it first, naming the argument.
pub fn segment_text_problem(text: &str) -> Option<&'static str> {
    if text.is_empty() {
        Some("is empty")
    } else if text.bytes().all(|b| b == b'.') {
        Some("is only dots (`.` and `..` would change the path)")
    } else if text.contains(['/', '\\', '?', '#', '%']) {
        Some("contains one of / \\ ? # % (no Klaviyo id does)")
    } else if text.chars().any(char::is_control) {
        Some("contains a control character")
    } else {
        None
    }
}

/// Why a path segment as sent is not canonical, if it is not: empty, not UTF-8 once decoded, a
/// decoded text [`segment_text_problem`] refuses, or escapes other than [`path_segment`]'s own
/// (`%41` for `A`, lower-case hex, a raw character that must be escaped).
pub fn segment_problem(segment: &str) -> Option<String> {
    if segment.is_empty() {
        return Some("an empty segment".into());
    }
    let mut bytes = Vec::with_capacity(segment.len());
    let raw = segment.as_bytes();
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%' {
            match (
                raw.get(i + 1).and_then(|b| hex(*b)),
                raw.get(i + 2).and_then(|b| hex(*b)),
            ) {
                (Some(h), Some(l)) => {
                    bytes.push(h * 16 + l);
                    i += 3;
                    continue;
                }
                _ => return Some(format!("`{segment}` has a broken %-escape")),
            }
        }
        bytes.push(raw[i]);
        i += 1;
    }
    let Ok(text) = String::from_utf8(bytes) else {
        return Some(format!("`{segment}` is not UTF-8 once decoded"));
    };
    if let Some(p) = segment_text_problem(&text) {
        return Some(format!("`{segment}` {p}"));
    }
    let canonical = path_segment(&text);
    (canonical != segment)
        .then(|| format!("`{segment}` is not canonically encoded (`{canonical}`)"))
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_canonical_segments_pass() {
        use super::segment_problem as p;
        for ok in [
            "api",
            "profiles",
            "Y6nRLr",
            "%24custom%3A%3A%3A%24default%3A%3A%3AX",
            "a%20b",
            "%C3%BC",
            "a..b",
            "~x",
        ] {
            assert_eq!(p(ok), None, "{ok}");
        }
        for bad in [
            "", ".", "..", "%2e", "%2E%2E", "%2F", "a%2Fb", "a%3Fb", "a%23b", "a%5Cb", "%25",
            "%2525", "%41", "%c3%bc", "a b", "%zz", "%0A", "%FF",
        ] {
            assert!(p(bad).is_some(), "{bad:?} passed");
        }
    }

    use super::*;

    #[test]
    fn path_segments_cannot_escape() {
        assert_eq!(path_segment("a/b?c#d"), "a%2Fb%3Fc%23d");
        assert_eq!(path_segment("100%"), "100%25");
        assert_eq!(path_segment(".."), "%2E%2E");
        assert_eq!(path_segment("."), "%2E");
        assert_eq!(path_segment("a..b"), "a..b");
        assert_eq!(path_segment("ü"), "%C3%BC");
        assert_eq!(path_segment("01GSQ-x_y.z~"), "01GSQ-x_y.z~");
    }

    #[test]
    fn query_components() {
        assert_eq!(query_component("fields[profile]"), "fields%5Bprofile%5D");
        assert_eq!(
            query_component("equals(email,'a+b@x.com')"),
            "equals(email,'a%2Bb@x.com')"
        );
        assert_eq!(query_component("a&b=c d#"), "a%26b%3Dc%20d%23");
    }

    #[test]
    fn decode_round_trips() {
        for s in ["a/b?c#d", "ü & = +", "fields[profile]", "%zz"] {
            assert_eq!(decode(&query_component(s)), s);
            assert_eq!(decode(&path_segment(s)), s);
        }
        assert_eq!(decode("%zz%4"), "%zz%4");
        assert_eq!(decode("%ü%"), "%ü%");
    }
}
