//! Bearer tokens of the MCP HTTP front-ends (the host's `serve --http` and the edge build),
//! one copy: parsing the configured tokens and finding which one a request presents.
//!
//! Contract:
//! - Tokens are `name:token` or bare tokens (named `default`, `default-2`, …), separated by
//!   commas or newlines; `#` starts a comment line. Each must be at least 16 characters; names
//!   are unique. Errors name the source and the entry, never a token.
//! - Only SHA-256 digests are kept. A presented token is compared with every configured one,
//!   each in constant time and without an early exit, so timing tells nothing about which one
//!   is close.

use sha2::{Digest, Sha256};

/// A configured token: its name and a digest of its value.
#[derive(Clone)]
pub struct Token {
    pub name: String,
    digest: [u8; 32],
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Token({}, [redacted])", self.name)
    }
}

impl Token {
    pub fn new(name: &str, value: &str) -> Token {
        Token {
            name: name.to_string(),
            digest: Sha256::digest(value.as_bytes()).into(),
        }
    }
}

/// Parses tokens; `origin` names the source in errors (`KLAVIYO_MCP_TOKENS`, a file).
pub fn parse_tokens(text: &str, origin: &str) -> Result<Vec<Token>, String> {
    let mut out: Vec<Token> = Vec::new();
    for (i, item) in text.split(['\n', ',']).map(str::trim).enumerate() {
        if item.is_empty() || item.starts_with('#') {
            continue;
        }
        let (name, value) = match item.split_once(':') {
            Some((n, v)) if !n.trim().is_empty() && !v.trim().is_empty() => {
                (n.trim().to_string(), v.trim())
            }
            Some(_) => {
                return Err(format!(
                    "{origin}: entry {} is `name:token` with an empty part",
                    i + 1
                ))
            }
            None => (
                if out.is_empty() {
                    "default".to_string()
                } else {
                    format!("default-{}", out.len() + 1)
                },
                item,
            ),
        };
        if value.len() < 16 {
            return Err(format!(
                "{origin}: the token named `{name}` is shorter than 16 characters; use a long random one (e.g. `openssl rand -hex 32`)"
            ));
        }
        if out.iter().any(|t| t.name == name) {
            return Err(format!("{origin}: two tokens are named `{name}`"));
        }
        out.push(Token::new(&name, value));
    }
    Ok(out)
}

/// Whether two byte strings are equal, in time that depends only on their length.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len()
        && std::hint::black_box(a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y))) == 0
}

/// The name of the token an `Authorization` header value presents (`Bearer <token>`).
pub fn client_for<'t>(tokens: &'t [Token], authorization: &[u8]) -> Option<&'t str> {
    let presented = authorization
        .strip_prefix(b"Bearer ")
        .or_else(|| authorization.strip_prefix(b"bearer "))?;
    let digest: [u8; 32] = Sha256::digest(presented).into();
    let mut found = None;
    for t in tokens {
        if same(&t.digest, &digest) {
            found = Some(t.name.as_str());
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_parse_with_names_and_are_found_by_value() {
        let t = parse_tokens(
            "# comment\nalice:0123456789abcdef0123\n bob : fedcba9876543210fedc \n",
            "f",
        )
        .unwrap();
        assert_eq!(
            t.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
            ["alice", "bob"]
        );
        assert_eq!(client_for(&t, b"Bearer fedcba9876543210fedc"), Some("bob"));
        assert_eq!(client_for(&t, b"Bearer fedcba9876543210fedX"), None);
        assert_eq!(client_for(&t, b"Basic fedcba9876543210fedc"), None);
        let t = parse_tokens("0123456789abcdef0123,fedcba9876543210fedc", "env").unwrap();
        assert_eq!(
            t.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
            ["default", "default-2"]
        );
        assert!(parse_tokens("short", "f")
            .unwrap_err()
            .contains("shorter than 16"));
        assert!(
            parse_tokens("a:0123456789abcdef0123\na:0123456789abcdef0124", "f")
                .unwrap_err()
                .contains("two tokens")
        );
        assert!(parse_tokens("a:", "f").unwrap_err().contains("empty part"));
        assert!(!format!("{:?}", Token::new("x", "secret-value-123456")).contains("secret"));
        assert!(!parse_tokens("x:short", "f").unwrap_err().contains("short,"));
    }
}
