//! The user's policy file. The rules, their matching and the one decision function live in
//! `klaviyo_agent::policy` (shared with the HTTP build, so both decide identically); the host
//! adds reading the file.

pub use klaviyo_agent::policy::*;
use std::path::Path;

/// Reads and checks a policy file; errors name the file, the rule and the fix.
pub fn load(path: &Path) -> Result<Policy, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("policy file {}: {e}", path.display()))?;
    Policy::from_toml(&text).map_err(|e| format!("{e} ({})", path.display()))
}
