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

/// What to tell someone who passed `key`, which `tool` does not take as an argument: the
/// nearest argument names, or where in the body it belongs (`list_id` →
/// `body.data.relationships.list.data.id`, `name` → `body.data.attributes.name`).
pub fn unknown_argument_hint(tool: klaviyo_catalog::tools::Tool, key: &str) -> Option<String> {
    let schema = tool.input_schema();
    let args: Vec<&str> = schema["properties"]
        .as_object()
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let near = nearest(key, args.iter().copied(), 2);
    if !near.is_empty() {
        return Some(did_you_mean(&near));
    }
    fn follow(defs: &serde_json::Value, v: &serde_json::Value) -> serde_json::Value {
        let mut v = v;
        for _ in 0..8 {
            match v["$ref"].as_str().and_then(|r| r.strip_prefix("#/$defs/")) {
                Some(name) => v = &defs[name],
                None => break,
            }
        }
        v.clone()
    }
    let defs = &schema["$defs"];
    let deref = |v: &serde_json::Value| follow(defs, v);
    let body = deref(&schema["properties"]["body"]);
    let body = match body["anyOf"].as_array() {
        Some(b) => deref(&b[0]),
        None => body,
    };
    let data = deref(&body["properties"]["data"]);
    let data = if data["type"] == "array" {
        deref(&data["items"])
    } else {
        data
    };
    let keys = |v: serde_json::Value| -> Vec<String> {
        v["properties"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    };
    let attrs = keys(deref(&data["properties"]["attributes"]));
    let rels = keys(deref(&data["properties"]["relationships"]));
    let k = normalize(key);
    for stem in [k.strip_suffix("_ids"), k.strip_suffix("_id")]
        .into_iter()
        .flatten()
    {
        if let Some(r) = rels.iter().find(|r| {
            let r = normalize(r);
            r == stem || r == format!("{stem}s")
        }) {
            return Some(format!(
                "`{key}` belongs in `body.data.relationships.{r}.data.id` (or `.data[].id` for several)"
            ));
        }
    }
    if let Some(a) = attrs.iter().find(|a| normalize(a) == k).or_else(|| {
        nearest(key, attrs.iter().map(String::as_str), 1)
            .first()
            .and_then(|n| attrs.iter().find(|a| a.as_str() == *n))
    }) {
        return Some(format!(
            "`{key}` belongs in `body.data.attributes.{a}` (a bare attributes object is enough: body='{{\"{a}\": …}}')"
        ));
    }
    None
}

#[cfg(test)]
mod hint_tests {
    use super::unknown_argument_hint as hint;
    use klaviyo_catalog::tools::Tool;

    #[test]
    fn unknown_arguments_point_where_they_belong() {
        let t = |n: &str| Tool::resolve(n).unwrap();
        assert_eq!(
            hint(t("get_profiles"), "page_sise").as_deref(),
            Some("did you mean `page_size`?")
        );
        let h = hint(t("create_coupon_code"), "coupon_id").unwrap();
        assert!(h.contains("body.data.relationships.coupon.data.id"), "{h}");
        let h = hint(t("create_list"), "name").unwrap();
        assert!(h.contains("body.data.attributes.name"), "{h}");
        assert_eq!(hint(t("get_lists"), "zzzzzzzz"), None);
    }
}
