//! Approvals over MCP's input-required round trip (protocol 2026-07-28), where the server keeps
//! no session: the first call of an `ask` action sends nothing and answers "input required"
//! with a question showing the exact request and a sealed `requestState`; the client retries
//! with the user's answer and that state. The state is the client's to echo, so it is
//! untrusted: it is sealed here with HMAC-SHA256 under a key drawn at start-up, and binds
//! - the action and a hash of its arguments (a retry cannot carry other arguments),
//! - a hash of the exact question (the request shown; the retry must make that same request),
//! - an expiry, and a one-time nonce (an approval is spent when used: a replayed retry does
//!   not send the write twice).

use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long an approval question stays answerable.
pub const APPROVAL_TTL: Duration = Duration::from_secs(600);

/// What a sealed state says.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Pending {
    pub tool: String,
    /// SHA-256 of the arguments' JSON text, hex.
    pub args: String,
    /// SHA-256 of the question (the exact request as shown), hex.
    pub request: String,
    /// Seconds since the epoch after which the state is refused.
    pub expires: u64,
    pub nonce: String,
}

/// Seals and opens states, and remembers spent nonces.
pub struct Approvals {
    key: [u8; 32],
    spent: Mutex<HashMap<String, u64>>,
}

pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

fn hmac(key: &[u8; 32], msg: &[u8]) -> [u8; 32] {
    let mut ipad = [0x36u8; 64];
    let mut opad = [0x5cu8; 64];
    for (i, k) in key.iter().enumerate() {
        ipad[i] ^= k;
        opad[i] ^= k;
    }
    let inner = Sha256::new()
        .chain_update(ipad)
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(opad)
        .chain_update(inner)
        .finalize()
        .into()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

pub use klaviyo_agent::auth::same;

/// 32 random bytes from the operating system.
pub fn random_key() -> std::io::Result<[u8; 32]> {
    use std::io::Read;
    let mut k = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut k)?;
    Ok(k)
}

impl Approvals {
    pub fn new(key: [u8; 32]) -> Approvals {
        Approvals {
            key,
            spent: Mutex::new(HashMap::new()),
        }
    }

    /// A state for `tool` called with `args`, asking about `question`.
    pub fn seal(&self, tool: &str, args: &str, question: &str) -> String {
        let nonce = random_key()
            .map(|k| hex(&k[..16]))
            .unwrap_or_else(|_| hex(&now().to_be_bytes()));
        let p = Pending {
            tool: tool.into(),
            args: sha256_hex(args.as_bytes()),
            request: sha256_hex(question.as_bytes()),
            expires: now() + APPROVAL_TTL.as_secs(),
            nonce,
        };
        let body = hex(serde_json::to_string(&p).expect("serializable").as_bytes());
        let mac = hex(&hmac(&self.key, body.as_bytes()));
        format!("{body}.{mac}")
    }

    /// Opens a state echoed by a client for a retry of `tool` with `args`, and spends it.
    /// Every refusal says why (and nothing is sent).
    pub fn open(&self, state: &str, tool: &str, args: &str) -> Result<Pending, String> {
        let (body, mac) = state
            .split_once('.')
            .ok_or("the approval state is malformed")?;
        let mac = unhex(mac).ok_or("the approval state is malformed")?;
        if !same(&mac, &hmac(&self.key, body.as_bytes())) {
            return Err("the approval state was not issued by this server (or the server restarted); call the action again to be asked anew".into());
        }
        let p: Pending = unhex(body)
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or("the approval state is malformed")?;
        if p.tool != tool || p.args != sha256_hex(args.as_bytes()) {
            return Err(
                "the approval was given for another action or other arguments; nothing was sent"
                    .into(),
            );
        }
        let t = now();
        if t > p.expires {
            return Err(
                "the approval question expired; call the action again to be asked anew".into(),
            );
        }
        let mut spent = self.spent.lock().unwrap();
        spent.retain(|_, exp| *exp >= t);
        if spent.insert(p.nonce.clone(), p.expires).is_some() {
            return Err("this approval was already used: an approval sends its request once; call the action again to be asked anew".into());
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_case_2_shape() {
        // RFC 4231 test case 2 uses a 4-byte key; ours are 32 bytes, zero-padded the same way.
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(b"Jefe");
        assert_eq!(
            hex(&hmac(&key, b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn a_state_opens_once_for_its_own_call() {
        let a = Approvals::new([7; 32]);
        let s = a.seal("create_list", "{\"body\":1}", "POST /api/lists …");
        assert!(a
            .open(&s, "create_list", "{\"body\":2}")
            .unwrap_err()
            .contains("other arguments"));
        assert!(a
            .open(&s, "delete_list", "{\"body\":1}")
            .unwrap_err()
            .contains("another action"));
        let p = a.open(&s, "create_list", "{\"body\":1}").unwrap();
        assert_eq!(p.request, sha256_hex("POST /api/lists …".as_bytes()));
        assert!(a
            .open(&s, "create_list", "{\"body\":1}")
            .unwrap_err()
            .contains("already used"));
        // Tampering is detected; another server's state is refused.
        let mut t = s.clone();
        t.replace_range(0..2, "00");
        assert!(a
            .open(&t, "create_list", "{\"body\":1}")
            .unwrap_err()
            .contains("not issued"));
        let other = Approvals::new([8; 32]);
        assert!(other
            .open(&a.seal("x", "", ""), "x", "")
            .unwrap_err()
            .contains("not issued"));
        assert!(a.open("garbage", "x", "").is_err());
    }
}
