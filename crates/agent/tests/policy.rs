//! The policy decides per operation (what the host classified), reads rule names in every
//! form the CLI accepts, refuses rules that match nothing, and never lets a glob lower a
//! destructive action.

use klaviyo_agent::policy::{Decision, Policy};
use klaviyo_catalog::generated::OPERATIONS;
use klaviyo_catalog::tools::operation;
use klaviyo_catalog::Access;

fn d(p: &Policy, id: &str) -> Decision {
    p.decide(operation(id).unwrap_or_else(|| panic!("no operation {id}")))
        .decision
}

fn policy(text: &str) -> Policy {
    Policy::from_toml(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

#[test]
fn a_read_glob_cannot_allow_a_destructive_request() {
    // The red-team case: one ordinary rule allowing `get_*`. Whatever the agent called, the
    // host decides on what is sent: DELETE /api/flows/F1 is delete_flow, a deletion job is
    // request_profile_deletion.
    let p = policy("[[rules]]\ntools = \"get_*\"\ndecision = \"allow\"");
    assert_eq!(d(&p, "get_lists"), Decision::Allow);
    assert_eq!(d(&p, "delete_flow"), Decision::Deny);
    assert_eq!(d(&p, "request_profile_deletion"), Decision::Deny);
    assert_eq!(d(&p, "create_list"), Decision::Deny);
}

#[test]
fn destructive_is_a_floor_for_globs() {
    let p = policy(
        "[defaults]\nwrite = \"allow\"\n[[rules]]\ntools = \"*_list\"\ndecision = \"allow\"\n[[rules]]\ntools = \"*\"\ndecision = \"ask\"",
    );
    assert_eq!(
        d(&p, "delete_list"),
        Decision::Deny,
        "a glob never lowers destructive"
    );
    assert_eq!(d(&p, "remove_profiles_from_list"), Decision::Deny);
    assert_eq!(
        d(&p, "create_list"),
        Decision::Ask,
        "strictest applicable rule wins"
    );
    let lints = p.lints();
    assert!(
        lints
            .iter()
            .any(|l| l.rule == 1 && l.message.contains("delete_list")),
        "{lints:?}"
    );
}

#[test]
fn naming_a_destructive_action_exactly_or_by_access_lowers_it() {
    let p = policy("[[rules]]\ntools = \"Delete List\"\ndecision = \"ask\"");
    assert_eq!(d(&p, "delete_list"), Decision::Ask);
    assert_eq!(d(&p, "delete_flow"), Decision::Deny);
    let p =
        policy("[[rules]]\ntools = \"delete_*\"\naccess = \"destructive\"\ndecision = \"allow\"");
    assert_eq!(d(&p, "delete_list"), Decision::Allow);
    assert_eq!(
        d(&p, "request_profile_deletion"),
        Decision::Deny,
        "not matched by delete_*"
    );
    assert!(p.destructive_possible());
    assert!(p.lints().iter().any(|l| l
        .message
        .contains("lets destructive actions run without asking")));
    // A composite named exactly covers its operations.
    let p = policy("[[rules]]\ntools = \"Delete Tag Relationships\"\ndecision = \"allow\"");
    assert_eq!(d(&p, "remove_tag_from_lists"), Decision::Allow);
    assert_eq!(d(&p, "remove_tag_from_flows"), Decision::Allow);
}

#[test]
fn rule_names_are_read_in_every_accepted_form() {
    for name in [
        "send_campaign",
        "send-campaign",
        "create_campaign_send_job",
        "Create campaign send job",
        "Send Campaign",
        "SEND-CAMPAIGN",
    ] {
        let p = policy(&format!(
            "[defaults]\nwrite = \"allow\"\n[[rules]]\ntools = \"{name}\"\ndecision = \"deny\""
        ));
        assert_eq!(d(&p, "send_campaign"), Decision::Deny, "rule `{name}`");
        assert_eq!(
            d(&p, "create_campaign"),
            Decision::Allow,
            "rule `{name}` only"
        );
    }
    // Globs in other forms too.
    let p = policy(
        "[defaults]\nwrite = \"allow\"\n[[rules]]\ntools = \"Create *\"\ndecision = \"deny\"",
    );
    assert_eq!(d(&p, "create_list"), Decision::Deny);
    assert_eq!(d(&p, "update_list"), Decision::Allow);
    let p = policy(
        "[defaults]\nwrite = \"allow\"\n[[rules]]\ntools = \"*-campaign\"\ndecision = \"deny\"",
    );
    assert_eq!(d(&p, "create_campaign"), Decision::Deny);
}

#[test]
fn a_rule_matching_no_action_is_refused_with_the_nearest_names() {
    let e =
        Policy::from_toml("[[rules]]\ntools = \"send-campain\"\ndecision = \"deny\"").unwrap_err();
    assert!(
        e.contains("rule #1") && e.contains("matches no action"),
        "{e}"
    );
    assert!(
        e.contains("send_campaign"),
        "suggests the nearest name: {e}"
    );
    let e = Policy::from_toml("[[rules]]\ntools = \"zzz_*\"\ndecision = \"deny\"").unwrap_err();
    assert!(e.contains("matches no action"), "{e}");
    let e = Policy::from_toml(
        "[[rules]]\ntools = \"get_*\"\naccess = \"destructive\"\ndecision = \"deny\"",
    )
    .unwrap_err();
    assert!(e.contains("no destructive actions"), "{e}");
}

#[test]
fn malformed_policies_are_refused_naming_the_field() {
    for (text, needle) in [
        (
            "[[rules]]\ndecision = \"allow\"",
            "needs `tools` or `access`",
        ),
        (
            "[[rules]]\naccess = \"writes\"\ndecision = \"allow\"",
            "writes",
        ),
        (
            "[[rules]]\ntools = \"get_lists\"\ndecision = \"maybe\"",
            "maybe",
        ),
        ("[defaults]\nread = \"allow\"\nwrit = \"allow\"", "writ"),
        (
            "[[rules]]\ntool = \"get_lists\"\ndecision = \"allow\"",
            "tool",
        ),
        ("nonsense = [", "policy"),
    ] {
        let e = Policy::from_toml(text).unwrap_err();
        assert!(e.contains(needle), "{text:?}: {e}");
    }
}

#[test]
fn the_example_policy_file_does_what_it_says() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/policy.toml"
    ))
    .unwrap();
    let p = policy(&text);
    assert_eq!(d(&p, "get_profiles"), Decision::Allow);
    assert_eq!(d(&p, "create_list"), Decision::Allow);
    assert_eq!(d(&p, "add_profiles_to_list"), Decision::Allow);
    assert_eq!(d(&p, "tag_lists"), Decision::Allow);
    assert_eq!(d(&p, "create_profile"), Decision::Ask, "other writes ask");
    assert_eq!(d(&p, "send_campaign"), Decision::Deny);
    assert_eq!(
        d(&p, "delete_list"),
        Decision::Deny,
        "says destructive = deny"
    );
    assert_eq!(
        d(&p, "remove_profiles_from_list"),
        Decision::Ask,
        "named exactly"
    );
    // Every destructive action but the one it names stays denied.
    for op in OPERATIONS
        .iter()
        .filter(|o| o.access == Access::Destructive)
    {
        if op.id != "remove_profiles_from_list" {
            assert_eq!(p.decide(op).decision, Decision::Deny, "{}", op.id);
        }
    }
}
