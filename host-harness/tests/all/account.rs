//! The sandbox account (`--sandbox`) behind the real component and every host stage: an agent's
//! task lands in it (search → call → verify by a read), `ask` is asked and a declined write
//! changes nothing, no key is ever read, and an injected timeout on a write is reported as a
//! write that may have happened — and did.

use crate::support::{rt, temp_dir};
use klaviyo_catalog::response::Failure;
use klaviyo_harness::config::SandboxSettings;
use klaviyo_harness::confirm::Answer;
use klaviyo_harness::policy::Policy;
use klaviyo_harness::runtime::default_component_path;
use klaviyo_harness::secrets::KeySource;
use klaviyo_harness::{Caller, Confirm, Harness, NoTty, Settings};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

struct Answers(Mutex<Vec<bool>>, Mutex<Vec<String>>);

impl Confirm for Answers {
    fn confirm(&self, prompt: String) -> Answer {
        self.1.lock().unwrap().push(prompt);
        let yes = self.0.lock().unwrap().remove(0);
        Box::pin(async move { Ok(yes) })
    }
}

fn harness(dir: &std::path::Path, faults: &str) -> Harness {
    let mut s = Settings::new("https://a.klaviyo.com").unwrap();
    // A key source that fails if anything reads it.
    s.key_source = KeySource::File(dir.join("no-such-key"));
    s.state_dir = Some(dir.to_path_buf());
    s.audit_log = Some(dir.join("audit.jsonl"));
    s.policy = Policy::from_toml("[defaults]\nwrite = \"ask\"").unwrap();
    s.max_retries = 0;
    s.connection = Some("sandbox:11".into());
    s.sandbox = Some(SandboxSettings {
        seed: 11,
        faults: klaviyo_sandbox::Faults::parse(faults).unwrap(),
    });
    Harness::new(s, &default_component_path(), Box::new(NoTty)).unwrap()
}

fn ok(o: &klaviyo_harness::CallOutcome) -> Value {
    serde_json::from_str(o.result.as_ref().unwrap_or_else(|e| panic!("{e:?}"))).unwrap()
}

#[test]
fn an_agent_task_lands_in_the_sandbox_with_every_host_stage_and_no_key() {
    let dir = temp_dir("sandbox-account");
    let h = harness(&dir.0, "");
    let rt = rt();
    let answers = Arc::new(Answers(
        Mutex::new(vec![true, false, true]),
        Mutex::new(vec![]),
    ));
    let caller = Caller {
        confirm: Some(answers.clone()),
        client: None,
    };
    // Find the VIP list.
    let lists =
        ok(&rt.block_on(h.call("get_lists", r#"{"filter":"equals(name,'VIP Customers')"}"#)));
    let vip = lists["data"][0]["id"]
        .as_str()
        .expect("the sample brand has a VIP list")
        .to_string();
    // Create a profile (asked, approved).
    let created = rt.block_on(h.call_as(
        "create_profile",
        &json!({"body": {"data": {"type": "profile", "attributes": {"email": "rehearsal@example.com", "first_name": "Rae"}}}}).to_string(),
        &caller,
    ));
    let pid = ok(&created)["data"]["id"].as_str().unwrap().to_string();
    // The agent finds how to add it to the list, as it would through search_actions.
    let hits = klaviyo_agent::search::search("add a profile to a list", 5, &|_| true);
    assert!(
        hits.iter()
            .any(|hit| hit.tool.name() == "add_profiles_to_list"),
        "search finds the action"
    );
    // Declined: nothing changes.
    let declined = rt.block_on(h.call_as(
        "add_profiles_to_list",
        &json!({"id": vip, "body": {"data": [{"type": "profile", "id": pid}]}}).to_string(),
        &caller,
    ));
    assert!(
        matches!(declined.result, Err(Failure::Denied { .. })),
        "{:?}",
        declined.result
    );
    let members = |h: &Harness| -> Vec<String> {
        let v = ok(&rt.block_on(h.call(
            "get_profile_relationships_lists",
            &json!({"id": pid}).to_string(),
        )));
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(members(&h).is_empty());
    // Approved: it lands, and a read shows it.
    let added = rt.block_on(h.call_as(
        "add_profiles_to_list",
        &json!({"id": vip, "body": {"data": [{"type": "profile", "id": pid}]}}).to_string(),
        &caller,
    ));
    assert!(added.result.is_ok(), "{:?}", added.result);
    assert_eq!(members(&h), vec![vip.clone()]);
    // The prompts showed the exact requests; the audit has every request; no key was read.
    let prompts = answers.1.lock().unwrap().clone();
    assert_eq!(prompts.len(), 3);
    assert!(prompts[2].contains(&format!("/api/lists/{vip}/relationships/profiles")));
    let audit = std::fs::read_to_string(dir.0.join("audit.jsonl")).unwrap();
    assert!(
        audit
            .lines()
            .filter(|l| l.contains("\"event\":\"done\""))
            .count()
            >= 5
    );
    assert!(!audit.contains("no-such-key"));
    // Another harness (another process, as the CLI runs) sees the same account.
    let again = harness(&dir.0, "");
    let lists = ok(&rt.block_on(again.call(
        "get_profile_relationships_lists",
        &json!({"id": pid}).to_string(),
    )));
    assert_eq!(lists["data"][0]["id"], json!(vip));
}

#[test]
fn an_injected_timeout_on_a_write_says_it_may_have_happened_and_it_did() {
    let dir = temp_dir("sandbox-faults");
    let h = harness(&dir.0, "timeout=1");
    let rt = rt();
    let caller = Caller {
        confirm: Some(Arc::new(Answers(
            Mutex::new(vec![true]),
            Mutex::new(vec![]),
        ))),
        client: None,
    };
    let out = rt.block_on(
        h.call_as(
            "create_list",
            &json!({"body": {"data": {"type": "list", "attributes": {"name": "Answer lost"}}}})
                .to_string(),
            &caller,
        ),
    );
    assert!(
        matches!(out.result, Err(Failure::OutcomeUnknown { .. })),
        "{:?}",
        out.result
    );
    let calm = harness(&dir.0, "");
    let lists =
        ok(&rt.block_on(calm.call("get_lists", r#"{"filter":"equals(name,'Answer lost')"}"#)));
    assert_eq!(
        lists["data"].as_array().unwrap().len(),
        1,
        "the write landed although its answer was lost"
    );
    let id = lists["data"][0]["id"].as_str().unwrap().to_string();
    // An update whose answer is lost is settled by `reconcile` with a read of the sandbox.
    let caller = Caller {
        confirm: Some(Arc::new(Answers(
            Mutex::new(vec![true]),
            Mutex::new(vec![]),
        ))),
        client: None,
    };
    let renamed = rt.block_on(h.call_as(
        "update_list",
        &json!({"id": id, "body": {"data": {"type": "list", "id": id, "attributes": {"name": "Renamed"}}}}).to_string(),
        &caller,
    ));
    assert!(
        matches!(renamed.result, Err(Failure::OutcomeUnknown { .. })),
        "{:?}",
        renamed.result
    );
    // A run on a real account (no connection) leaves the sandbox's writes alone.
    let mut real = Settings::new("https://a.klaviyo.com").unwrap();
    real.audit_log = Some(dir.0.join("audit.jsonl"));
    real.key_source = KeySource::File(dir.0.join("no-such-key"));
    let real = Harness::new(real, &default_component_path(), Box::new(NoTty)).unwrap();
    let (results, _) = rt.block_on(klaviyo_harness::reconcile::run(&real)).unwrap();
    assert!(results.is_empty(), "{results:?}");
    let (results, unsettled) = rt.block_on(klaviyo_harness::reconcile::run(&calm)).unwrap();
    let outcomes: Vec<&str> = results
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, vec!["could-not-check", "found"], "{results:?}");
    assert_eq!(unsettled, 1, "a create cannot be judged from the log");
}
