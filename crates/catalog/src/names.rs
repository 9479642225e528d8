//! Name normalisation, shared with the generator (`xtask` includes this file by path, so it
//! must stay free of dependencies).

/// Lower case, every run of other characters becomes one `_`, trimmed: `Add Profile to List`,
/// `add-profiles-to-list` and `add_profiles_to_list` compare in this form.
pub fn normalize(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_matches('_').to_string()
}
