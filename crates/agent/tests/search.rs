//! The search over the Klaviyo actions: recall over realistic requests (`intents.tsv`), and
//! the behaviours the contract of `klaviyo_agent::search` promises.

use klaviyo_agent::search::{evaluate, search, tags};
use klaviyo_catalog::tools::Tool;
use klaviyo_catalog::Access;

const INTENTS: &str = include_str!("intents.tsv");

fn all(_: &Tool) -> bool {
    true
}

fn names(query: &str, limit: usize) -> Vec<&'static str> {
    search(query, limit, &all)
        .iter()
        .map(|h| h.tool.name())
        .collect()
}

fn intents() -> Vec<(&'static str, Vec<&'static str>)> {
    INTENTS
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (q, n) = l
                .split_once('\t')
                .unwrap_or_else(|| panic!("no tab in intent line `{l}`"));
            (q, n.split(',').map(str::trim).collect())
        })
        .collect()
}

#[test]
fn every_intent_names_real_tools() {
    let intents = intents();
    assert!(
        intents.len() >= 150,
        "only {} intents in intents.tsv",
        intents.len()
    );
    for (q, wanted) in &intents {
        assert!(!q.trim().is_empty(), "empty query");
        assert!(!wanted.is_empty(), "`{q}` names no action");
        for n in wanted {
            let t = Tool::resolve(n).unwrap_or_else(|e| panic!("`{q}`: {e}"));
            assert_eq!(t.name(), *n, "`{q}`: write the tool name, not an alias");
        }
    }
    // The set covers every tag and every access class.
    let covered: Vec<Tool> = intents
        .iter()
        .flat_map(|(_, w)| w.iter().map(|n| Tool::resolve(n).unwrap()))
        .collect();
    for (tag, _) in tags() {
        assert!(
            covered.iter().any(|t| t.tag() == tag),
            "no intent for tag {tag}"
        );
    }
    for access in [Access::Read, Access::Write, Access::Destructive] {
        assert!(covered.iter().any(|t| t.access() == access));
    }
}

#[test]
fn recall_over_the_intent_set() {
    let e = evaluate(INTENTS);
    println!(
        "intents: {}  recall@1: {:.3}  recall@5: {:.3}",
        e.intents, e.recall_at_1, e.recall_at_5
    );
    let wanted: std::collections::HashMap<&str, Vec<&str>> = intents().into_iter().collect();
    for (q, found) in &e.misses {
        let in5 = found
            .iter()
            .any(|f| wanted[q.as_str()].contains(&f.as_str()));
        println!(
            "miss@1{}: {q:?} wanted {:?}, got {found:?}",
            if in5 { "" } else { " (and @5)" },
            wanted[q.as_str()]
        );
    }
    assert_eq!(e.intents, intents().len());
    assert!(e.recall_at_5 >= 0.95, "recall@5 {:.3}", e.recall_at_5);
    assert!(e.recall_at_1 >= 0.80, "recall@1 {:.3}", e.recall_at_1);
}

#[test]
fn the_issue_examples_rank_first() {
    for (q, want) in [
        (
            "subscribe someone to SMS marketing",
            "bulk_subscribe_profiles",
        ),
        (
            "email open rate of last week's campaign",
            "query_campaign_values",
        ),
        (
            "total orders placed per day this month",
            "query_metric_aggregates",
        ),
        (
            "delete a profile for a GDPR request",
            "request_profile_deletion",
        ),
        ("look up a customer by phone number", "get_profiles"),
        ("pause a flow", "update_flow"),
        ("rename a list", "update_list"),
    ] {
        assert_eq!(names(q, 5).first(), Some(&want), "{q}: {:?}", names(q, 5));
    }
    let top = names("which lists is this person on", 3);
    assert!(
        [
            "get_lists_for_profile",
            "get_list_ids_for_profile",
            "get_profile_relationships"
        ]
        .contains(&top[0]),
        "{top:?}"
    );
}

#[test]
fn stemming_matches_word_forms() {
    // subscribe ~ subscribed ~ subscribing ~ subscription(s)
    for q in [
        "subscribed profiles",
        "subscribing profiles",
        "subscribe profiles",
    ] {
        assert_eq!(names(q, 1), ["bulk_subscribe_profiles"], "{q}");
    }
    assert!(names("subscriptions", 5).contains(&"bulk_subscribe_profiles"));
    // list ~ lists; categories ~ category
    assert_eq!(names("lists", 1), ["get_lists"]);
    assert!(names("catalog categories", 5).contains(&"get_catalog_categories"));
}

#[test]
fn synonyms_reach_klaviyo_words() {
    // text message → SMS
    let top = names("unsubscribe from text messages", 3);
    assert_eq!(top[0], "bulk_unsubscribe_profiles", "{top:?}");
    // automation → flow
    assert_eq!(names("list all automations", 1), ["get_flows"]);
    // discount → coupon
    assert_eq!(names("show all discounts", 1), ["get_coupons"]);
    // customer → profile
    assert_eq!(names("create a customer", 1)[0], "create_profile");
}

#[test]
fn the_access_class_follows_the_request() {
    assert_eq!(
        names("delete a profile for a GDPR request", 1),
        ["request_profile_deletion"]
    );
    // A delete request prefers destructive actions…
    for h in search("remove products in bulk", 1, &all) {
        assert_eq!(h.tool.access(), Access::Destructive, "{}", h.tool.name());
    }
    // …a request for numbers prefers reporting reads.
    let top = search("flow revenue report", 1, &all);
    assert_eq!(top[0].tool.access(), Access::Read);
    assert!(top[0].tool.name().starts_with("query_flow_"));
}

#[test]
fn an_exact_name_ranks_first() {
    for (q, want) in [
        ("get_profiles", "get_profiles"),
        ("get-profiles", "get_profiles"),
        ("Get Profile Lists", "get_lists_for_profile"), // promised title
        ("create_list_relationships", "add_profiles_to_list"), // Klaviyo alias
        ("Query Campaign Values", "query_campaign_values"),
        ("get_tag_relationships", "get_tag_relationships"), // composite
    ] {
        let top = search(q, 3, &all);
        assert_eq!(top[0].tool.name(), want, "{q}");
        assert!(top[0].score > top.get(1).map_or(0.0, |h| h.score));
    }
}

#[test]
fn keep_filters_before_ranking() {
    let read_only = |t: &Tool| t.access() == Access::Read;
    for (q, _) in intents() {
        for h in search(q, 10, &read_only) {
            assert_eq!(h.tool.access(), Access::Read, "{q}: {}", h.tool.name());
        }
    }
    // The filtered result is still a full page when enough reads match.
    assert_eq!(search("delete a profile", 5, &read_only).len(), 5);
    let only_lists = |t: &Tool| t.tag() == "Lists";
    assert!(search("profiles", 50, &only_lists)
        .iter()
        .all(|h| h.tool.tag() == "Lists"));
    assert!(search("get_profiles", 5, &only_lists)
        .iter()
        .all(|h| h.tool.name() != "get_profiles"));
}

#[test]
fn results_are_ordered_bounded_and_deterministic() {
    let a = search("campaign", 400, &all);
    assert!(!a.is_empty() && a.len() <= Tool::all().count());
    for w in a.windows(2) {
        assert!(
            w[0].score > w[1].score
                || (w[0].score == w[1].score && w[0].tool.name() < w[1].tool.name())
        );
    }
    let b = search("campaign", 400, &all);
    assert_eq!(
        a.iter().map(|h| h.tool.name()).collect::<Vec<_>>(),
        b.iter().map(|h| h.tool.name()).collect::<Vec<_>>()
    );
    assert_eq!(search("campaign", 3, &all).len(), 3);
    assert!(search("campaign", 0, &all).is_empty());
}

#[test]
fn empty_and_odd_queries_return_nothing_without_panic() {
    for q in [
        "",
        " ",
        "\t\n",
        "?!.,;:",
        "—…",
        "the of and",
        "🙂",
        "\u{0}",
        "12345",
    ] {
        assert!(search(q, 10, &all).is_empty(), "{q:?}");
    }
    // Non-ASCII text around words still works.
    assert!(names("«profiles» ✨", 5).contains(&"get_profiles"));
}

#[test]
fn a_very_long_query_returns_promptly() {
    let long = "subscribe someone to SMS marketing ".repeat(3000); // ~100 KB
    assert!(long.len() >= 100_000);
    // Only the first MAX_QUERY_WORDS words are read, so the answer is as quick as for a short
    // request (the benchmark times queries) and still right.
    let hits = search(&long, 5, &all);
    assert_eq!(hits[0].tool.name(), "bulk_subscribe_profiles");
    let junk: String = (0..100_000)
        .map(|i| ['a', '_', 'é', ' ', '-'][i % 5])
        .collect();
    let _ = search(&junk, 5, &all);
    let one_word = "x".repeat(100_000);
    assert!(search(&one_word, 5, &all).is_empty());
}

#[test]
fn tags_count_every_action() {
    let t = tags();
    assert_eq!(t.iter().map(|(_, n)| n).sum::<usize>(), Tool::all().count());
    assert!(t.windows(2).all(|w| w[0].0 < w[1].0));
    assert!(t.contains(&("Reporting", 7)));
    assert_eq!(t.iter().find(|(n, _)| *n == "Tags").unwrap().1, 26 + 3);
}

#[test]
fn every_synonym_reaches_the_catalog() {
    use klaviyo_agent::search::{SYNONYMS, VERBS};
    for (from, to) in SYNONYMS.iter().chain(VERBS) {
        // `get` is in no index (a stop word): it only names the verb of reads.
        if *to == "get" {
            continue;
        }
        assert!(
            !search(to, 1, &all).is_empty(),
            "`{from}` → `{to}` matches no action"
        );
    }
}

#[test]
fn every_action_is_found_by_its_title_and_its_name() {
    let mut misses = Vec::new();
    for t in Tool::all() {
        for q in [
            t.title().to_string(),
            t.name().to_string(),
            t.title().to_lowercase(),
        ] {
            let hits = klaviyo_agent::search::search(&q, 10, &|_| true);
            if !hits.iter().any(|h| h.tool.name() == t.name()) {
                misses.push(q);
            }
        }
    }
    assert!(misses.is_empty(), "{} misses: {misses:?}", misses.len());
}
