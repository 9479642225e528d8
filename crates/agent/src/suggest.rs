//! "Did you mean …?": the known names nearest to a mistyped one, for every error that names
//! something unknown (a tool, an argument, a policy rule, a toolset).
//!
//! Nearness is the edit distance between normalised forms (`Send Campaign`, `send-campaign`
//! and `send_campaign` are the same name), with two easier ways to be near: one name contains
//! the other, or they share most of their words (`get_profile_lists` ~ `get_lists_for_profile`).

use klaviyo_catalog::tools::normalize;

/// Up to `k` of `candidates` nearest to `name`, nearest first; only reasonably near ones.
pub fn nearest<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
    k: usize,
) -> Vec<&'a str> {
    let n = normalize(name);
    if n.is_empty() {
        return Vec::new();
    }
    let words: Vec<&str> = n.split('_').collect();
    let mut scored: Vec<(usize, &'a str)> = candidates
        .into_iter()
        .filter_map(|c| {
            let cn = normalize(c);
            let d = distance(&n, &cn);
            let budget = (n.len().max(cn.len()) / 3).max(2);
            let shared = words
                .iter()
                .filter(|w| w.len() > 2 && cn.split('_').any(|x| x == **w))
                .count();
            let near_words = words.len() > 1 && shared * 3 >= words.len() * 2;
            let contains = n.len() >= 4 && (cn.contains(&n) || n.contains(&cn));
            (d <= budget || near_words || contains).then_some((d, c))
        })
        .collect();
    scored.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(b.1)));
    scored.dedup_by(|a, b| a.1 == b.1);
    scored.into_iter().take(k).map(|(_, c)| c).collect()
}

/// Levenshtein distance over bytes (names are ASCII after normalisation).
fn distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// `did you mean `a`, `b`?` or an empty string.
pub fn did_you_mean(near: &[&str]) -> String {
    if near.is_empty() {
        return String::new();
    }
    let names: Vec<String> = near.iter().map(|n| format!("`{n}`")).collect();
    format!("did you mean {}?", names.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_and_other_forms_are_near() {
        let names = [
            "get_profiles",
            "get_profile",
            "get_lists",
            "send_campaign",
            "create_campaign",
        ];
        assert_eq!(
            nearest("get_profiless", names, 2),
            vec!["get_profiles", "get_profile"]
        );
        assert_eq!(nearest("Send Campain", names, 1), vec!["send_campaign"]);
        assert_eq!(
            nearest("campaign", names, 3),
            vec!["send_campaign", "create_campaign"]
        );
        assert!(nearest("zzzzzz", names, 3).is_empty());
        assert!(nearest("", names, 3).is_empty());
    }
}
