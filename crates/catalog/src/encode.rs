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

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
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
