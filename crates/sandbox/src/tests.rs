//! The sandbox behaves like an account: writes change what reads return, pages neither skip
//! nor repeat, errors come in Klaviyo's shape, and what it does not simulate says so.

use super::*;
use serde_json::{json, Value};

const BASE: &str = "https://a.klaviyo.com";

fn call(sb: &Sandbox, method: &str, path_query: &str, body: Value) -> (u16, Value) {
    let (path, query) = path_query.split_once('?').unwrap_or((path_query, ""));
    let body = if body.is_null() {
        Vec::new()
    } else {
        body.to_string().into_bytes()
    };
    match sb.handle(
        &Request {
            method,
            path,
            query,
            body: &body,
        },
        BASE,
    ) {
        Outcome::Answer {
            status,
            body,
            headers,
        } => {
            assert!(headers.iter().any(|(k, _)| k == SANDBOX_HEADER));
            (
                status,
                if body.is_empty() {
                    Value::Null
                } else {
                    serde_json::from_slice(&body).unwrap()
                },
            )
        }
        Outcome::Timeout => (0, Value::Null),
    }
}

fn names(doc: &Value) -> Vec<String> {
    doc["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["attributes"]["name"].as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn a_created_list_is_listed_gains_members_and_is_gone_after_delete() {
    let sb = Sandbox::new(7, None, Faults::default());
    let (s, doc) = call(
        &sb,
        "POST",
        "/api/lists",
        json!({"data": {"type": "list", "attributes": {"name": "Spring Launch"}}}),
    );
    assert_eq!(s, 201, "{doc}");
    let id = doc["data"]["id"].as_str().unwrap().to_string();
    assert_eq!(doc["data"]["attributes"]["name"], "Spring Launch");
    let (_, all) = call(&sb, "GET", "/api/lists?page%5Bsize%5D=10", Value::Null);
    assert!(names(&all).contains(&"Spring Launch".to_string()), "{all}");

    let (_, profiles) = call(&sb, "GET", "/api/profiles?page%5Bsize%5D=2", Value::Null);
    let members: Vec<Value> = profiles["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| json!({"type": "profile", "id": p["id"]}))
        .collect();
    let (s, _) = call(
        &sb,
        "POST",
        &format!("/api/lists/{id}/relationships/profiles"),
        json!({"data": members}),
    );
    assert_eq!(s, 204);
    let (_, rel) = call(
        &sb,
        "GET",
        &format!("/api/lists/{id}/relationships/profiles"),
        Value::Null,
    );
    assert_eq!(rel["data"].as_array().unwrap().len(), 2, "{rel}");
    let (_, counted) = call(
        &sb,
        "GET",
        &format!("/api/lists/{id}?additional-fields%5Blist%5D=profile_count"),
        Value::Null,
    );
    assert_eq!(counted["data"]["attributes"]["profile_count"], 2);
    // The membership is visible from the profile's side too.
    let pid = members[0]["id"].as_str().unwrap();
    let (_, lists_of) = call(
        &sb,
        "GET",
        &format!("/api/profiles/{pid}/lists"),
        Value::Null,
    );
    assert!(
        names(&lists_of).contains(&"Spring Launch".to_string()),
        "{lists_of}"
    );

    let (s, _) = call(&sb, "DELETE", &format!("/api/lists/{id}"), Value::Null);
    assert_eq!(s, 204);
    let (s, gone) = call(&sb, "GET", &format!("/api/lists/{id}"), Value::Null);
    assert_eq!(s, 404);
    assert_eq!(gone["errors"][0]["code"], "not_found");
}

#[test]
fn pages_follow_cursors_without_skipping_or_repeating_even_when_the_account_changes() {
    let sb = Sandbox::new(3, None, Faults::default());
    let mut seen = Vec::new();
    let mut next = Some("/api/profiles?page%5Bsize%5D=40&sort=-created".to_string());
    let mut pages = 0;
    while let Some(url) = next {
        let (s, doc) = call(&sb, "GET", &url, Value::Null);
        assert_eq!(s, 200, "{doc}");
        for p in doc["data"].as_array().unwrap() {
            seen.push((
                p["attributes"]["created"].as_str().unwrap().to_string(),
                p["id"].as_str().unwrap().to_string(),
            ));
        }
        if pages == 1 {
            // A profile created mid-way (newest, so before the cursor) does not shift later pages.
            call(
                &sb,
                "POST",
                "/api/profiles",
                json!({"data": {"type": "profile", "attributes": {"email": "mid@example.com"}}}),
            );
        }
        next = doc["links"]["next"]
            .as_str()
            .map(|l| l.trim_start_matches(BASE).to_string());
        pages += 1;
    }
    assert_eq!(
        seen.len(),
        seed::PROFILES,
        "every seeded profile exactly once"
    );
    let mut ids: Vec<&String> = seen.iter().map(|(_, id)| id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), seed::PROFILES);
    assert!(
        seen.windows(2)
            .all(|w| query::compare(&json!(w[0].0), &json!(w[1].0))
                != Some(std::cmp::Ordering::Less)),
        "sorted newest first"
    );
    assert_eq!(pages, 8);
}

#[test]
fn filters_sort_fields_and_include_work_as_klaviyo_documents() {
    let sb = Sandbox::new(1, None, Faults::default());
    let (_, vip) = call(
        &sb,
        "GET",
        "/api/lists?filter=equals(name,%27VIP%20Customers%27)",
        Value::Null,
    );
    assert_eq!(names(&vip), vec!["VIP Customers"]);
    let (_, p) = call(&sb, "GET", "/api/profiles?page%5Bsize%5D=1", Value::Null);
    let email = p["data"][0]["attributes"]["email"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, found) = call(
        &sb,
        "GET",
        &format!(
            "/api/profiles?filter=equals(email,%27{email}%27)&fields%5Bprofile%5D=email,first_name"
        ),
        Value::Null,
    );
    assert_eq!(found["data"].as_array().unwrap().len(), 1);
    let attrs = found["data"][0]["attributes"].as_object().unwrap();
    assert_eq!(
        attrs.keys().collect::<Vec<_>>(),
        vec!["email", "first_name"]
    );
    let (_, sorted) = call(&sb, "GET", "/api/lists?sort=-name", Value::Null);
    let n = names(&sorted);
    let mut want = n.clone();
    want.sort_by(|a, b| b.cmp(a));
    assert_eq!(n, want);
    let (_, camps) = call(
        &sb,
        "GET",
        "/api/campaigns?filter=equals(messages.channel,%27email%27)&include=tags",
        Value::Null,
    );
    assert!(!camps["data"].as_array().unwrap().is_empty());
    assert!(camps["included"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["type"] == "tag"));
    let (_, recent) = call(
        &sb,
        "GET",
        "/api/events?filter=greater-than(datetime,2000-01-01T00:00:00Z)&page%5Bsize%5D=5",
        Value::Null,
    );
    assert_eq!(recent["data"].as_array().unwrap().len(), 5);
    let (s, bad) = call(
        &sb,
        "GET",
        "/api/lists?filter=equal(name,%27x%27)",
        Value::Null,
    );
    assert_eq!(s, 400);
    assert_eq!(bad["errors"][0]["source"]["parameter"], "filter");
    assert!(bad["errors"][0]["detail"]
        .as_str()
        .unwrap()
        .contains("unknown filter operator `equal`"));
}

#[test]
fn subscribing_by_email_creates_the_profile_consents_and_joins_the_list() {
    let sb = Sandbox::new(1, None, Faults::default());
    let (_, l) = call(
        &sb,
        "GET",
        "/api/lists?filter=equals(name,%27SMS%20Subscribers%27)",
        Value::Null,
    );
    let list = l["data"][0]["id"].as_str().unwrap().to_string();
    let body = json!({"data": {"type": "profile-subscription-bulk-create-job", "attributes": {"profiles": {"data": [
        {"type": "profile", "attributes": {"email": "new@example.com", "phone_number": "+15555550123",
         "subscriptions": {"sms": {"marketing": {"consent": "SUBSCRIBED"}}}}}]}},
        "relationships": {"list": {"data": {"type": "list", "id": list}}}}});
    let (s, _) = call(
        &sb,
        "POST",
        "/api/profile-subscription-bulk-create-jobs",
        body,
    );
    assert_eq!(s, 202);
    let (_, p) = call(&sb, "GET", "/api/profiles?filter=equals(email,%27new@example.com%27)&additional-fields%5Bprofile%5D=subscriptions", Value::Null);
    let prof = &p["data"][0];
    assert_eq!(
        prof["attributes"]["subscriptions"]["sms"]["marketing"]["consent"],
        "SUBSCRIBED"
    );
    assert_eq!(
        prof["attributes"]["subscriptions"]["email"]["marketing"]["consent"],
        "NEVER_SUBSCRIBED"
    );
    let pid = prof["id"].as_str().unwrap();
    let (_, lists) = call(
        &sb,
        "GET",
        &format!("/api/profiles/{pid}/relationships/lists"),
        Value::Null,
    );
    assert_eq!(
        lists["data"],
        json!([{"type": "list", "id": list}]),
        "{lists}"
    );
}

#[test]
fn duplicates_unknown_ids_and_unsimulated_operations_answer_like_klaviyo_and_change_nothing() {
    let sb = Sandbox::new(1, None, Faults::default());
    let (_, p) = call(&sb, "GET", "/api/profiles?page%5Bsize%5D=1", Value::Null);
    let email = p["data"][0]["attributes"]["email"].clone();
    let (s, dup) = call(
        &sb,
        "POST",
        "/api/profiles",
        json!({"data": {"type": "profile", "attributes": {"email": email}}}),
    );
    assert_eq!(s, 409);
    assert_eq!(
        dup["errors"][0]["meta"]["duplicate_profile_id"],
        p["data"][0]["id"]
    );
    assert_eq!(
        dup["errors"][0]["source"]["pointer"],
        "/data/attributes/email"
    );
    let (s, nf) = call(
        &sb,
        "POST",
        "/api/lists/NOPE00/relationships/profiles",
        json!({"data": []}),
    );
    assert_eq!(s, 404);
    assert!(nf["errors"][0]["detail"]
        .as_str()
        .unwrap()
        .contains("NOPE00"));
    let before = sb.counts().unwrap();
    let (s, ns) = call(
        &sb,
        "POST",
        "/api/conversation-messages",
        json!({"data": {"type": "conversation-message", "attributes": {}}}),
    );
    assert_eq!(s, 501);
    assert_eq!(ns["errors"][0]["code"], "sandbox_not_simulated");
    assert_eq!(sb.counts().unwrap(), before);
}

#[test]
fn the_same_seed_gives_the_same_account_and_the_state_file_is_shared() {
    let day = 1_780_000_000;
    assert_eq!(
        serde_json::to_string(&seed::account(5, day)).unwrap(),
        serde_json::to_string(&seed::account(5, day)).unwrap()
    );
    assert_ne!(
        serde_json::to_string(&seed::account(5, day)).unwrap(),
        serde_json::to_string(&seed::account(6, day)).unwrap()
    );
    let dir = std::env::temp_dir().join(format!("sandbox-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let a = Sandbox::new(9, Some(&dir), Faults::default());
    let b = Sandbox::new(9, Some(&dir), Faults::default());
    let (s, doc) = call(
        &a,
        "POST",
        "/api/tags",
        json!({"data": {"type": "tag", "attributes": {"name": "Rehearsal"},
        "relationships": {"tag-group": {"data": {"type": "tag-group", "id": "tg-default"}}}}}),
    );
    assert_eq!(s, 201, "{doc}");
    let (_, tags) = call(
        &b,
        "GET",
        "/api/tags?filter=equals(name,%27Rehearsal%27)",
        Value::Null,
    );
    assert_eq!(
        tags["data"].as_array().unwrap().len(),
        1,
        "the second instance sees the first one's write"
    );
    b.reset().unwrap();
    let (_, tags) = call(
        &a,
        "GET",
        "/api/tags?filter=equals(name,%27Rehearsal%27)",
        Value::Null,
    );
    assert!(
        tags["data"].as_array().unwrap().is_empty(),
        "reset starts again"
    );
    std::fs::write(store::state_file(&dir, 9), b"{broken").unwrap();
    let (s, e) = call(&a, "GET", "/api/tags", Value::Null);
    assert_eq!(s, 500);
    assert!(
        e["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("sandbox reset"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn metric_aggregates_count_the_stored_events() {
    let sb = Sandbox::new(1, None, Faults::default());
    let (_, m) = call(
        &sb,
        "GET",
        "/api/metrics?filter=equals(name,%27Placed%20Order%27)",
        Value::Null,
    );
    let metric = m["data"][0]["id"].as_str().unwrap().to_string();
    let (_, ev) = call(
        &sb,
        "GET",
        &format!("/api/events?filter=equals(metric_id,%27{metric}%27)&page%5Bsize%5D=200"),
        Value::Null,
    );
    let mut total = ev["data"].as_array().unwrap().len();
    let mut next = ev["links"]["next"].as_str().map(String::from);
    while let Some(n) = next {
        let (_, d) = call(&sb, "GET", n.trim_start_matches(BASE), Value::Null);
        total += d["data"].as_array().unwrap().len();
        next = d["links"]["next"].as_str().map(String::from);
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let (from, to) = (
        query::rfc3339(now - 100 * 86400),
        query::rfc3339(now + 86400),
    );
    let body = json!({"data": {"type": "metric-aggregate", "attributes": {"metric_id": metric, "measurements": ["count", "sum_value"],
        "interval": "week", "filter": [format!("greater-or-equal(datetime,{from})"), format!("less-than(datetime,{to})")]}}});
    let (s, agg) = call(&sb, "POST", "/api/metric-aggregates", body.clone());
    assert_eq!(s, 200, "{agg}");
    let counted: f64 = agg["data"]["attributes"]["data"][0]["measurements"]["count"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .sum();
    assert_eq!(counted as usize, total);
    assert!(total > 50, "the sample brand has orders ({total})");
    let mut long = body.clone();
    long["data"]["attributes"]["interval"] = json!("hour");
    let (s, e) = call(&sb, "POST", "/api/metric-aggregates", long);
    assert_eq!(s, 400);
    assert!(
        e["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("more than 1000 hours"),
        "{e}"
    );
}

#[test]
fn injected_faults_come_at_the_asked_rate_and_a_timed_out_write_still_lands() {
    assert_eq!(
        Faults::parse("429=0.5,timeout").unwrap(),
        Faults {
            throttle: 0.5,
            server_error: 0.0,
            timeout: 0.2
        }
    );
    assert!(Faults::parse("418")
        .unwrap_err()
        .contains("use 429, 5xx or timeout"));
    assert!(Faults::parse("429=2").unwrap_err().contains("from 0 to 1"));
    let sb = Sandbox::new(
        1,
        None,
        Faults {
            throttle: 0.0,
            server_error: 0.0,
            timeout: 1.0,
        },
    );
    let body = json!({"data": {"type": "list", "attributes": {"name": "Lost answer"}}}).to_string();
    let out = sb.handle(
        &Request {
            method: "POST",
            path: "/api/lists",
            query: "",
            body: body.as_bytes(),
        },
        BASE,
    );
    assert!(matches!(out, Outcome::Timeout));
    let quiet = Sandbox::new(
        1,
        None,
        Faults {
            throttle: 0.5,
            ..Faults::default()
        },
    );
    let throttled = (0..200)
        .filter(|_| call(&quiet, "GET", "/api/lists", Value::Null).0 == 429)
        .count();
    assert!((60..140).contains(&throttled), "{throttled} of 200");
    // The timed-out write happened.
    let sb2 = &sb;
    let names_now = match sb2.handle(
        &Request {
            method: "GET",
            path: "/api/lists",
            query: "",
            body: b"",
        },
        BASE,
    ) {
        Outcome::Answer { .. } | Outcome::Timeout => sb2.counts().unwrap(),
    };
    assert!(
        names_now.iter().any(|(t, n)| t == "list" && *n == 7),
        "{names_now:?}"
    );
}

fn first(sb: &Sandbox, path: &str) -> Value {
    let (s, d) = call(sb, "GET", path, Value::Null);
    assert_eq!(s, 200, "{d}");
    d["data"][0].clone()
}

#[test]
fn sending_a_campaign_marks_it_sent_records_what_was_received_and_reports_its_rates() {
    let sb = Sandbox::new(1, None, Faults::default());
    let draft = first(
        &sb,
        "/api/campaigns?filter=equals(messages.channel,%27email%27),equals(status,%27Draft%27)",
    );
    let id = draft["id"].as_str().unwrap().to_string();
    let (s, est) = call(
        &sb,
        "POST",
        "/api/campaign-recipient-estimation-jobs",
        json!({"data": {"type": "campaign-recipient-estimation-job", "id": id}}),
    );
    assert_eq!(s, 202, "{est}");
    let (_, n) = call(
        &sb,
        "GET",
        &format!("/api/campaign-recipient-estimations/{id}"),
        Value::Null,
    );
    let expected = n["data"]["attributes"]["estimated_recipient_count"]
        .as_u64()
        .unwrap();
    assert!(expected > 0);
    let (s, job) = call(
        &sb,
        "POST",
        "/api/campaign-send-jobs",
        json!({"data": {"type": "campaign-send-job", "id": id}}),
    );
    assert_eq!(s, 202, "{job}");
    assert_eq!(job["data"]["attributes"]["status"], "complete");
    let (_, c) = call(&sb, "GET", &format!("/api/campaigns/{id}"), Value::Null);
    assert_eq!(c["data"]["attributes"]["status"], "Sent");
    let (s, again) = call(
        &sb,
        "POST",
        "/api/campaign-send-jobs",
        json!({"data": {"type": "campaign-send-job", "id": id}}),
    );
    assert_eq!(s, 400, "a sent campaign is not sent twice: {again}");
    let received = first(
        &sb,
        "/api/metrics?filter=equals(name,%27Received%20Email%27)",
    );
    let metric = received["id"].as_str().unwrap();
    let order = first(&sb, "/api/metrics?filter=equals(name,%27Placed%20Order%27)");
    let body = json!({"data": {"type": "campaign-values-report", "attributes": {"statistics": ["recipients", "open_rate", "opens_unique", "delivered"],
        "timeframe": {"key": "last_7_days"}, "conversion_metric_id": order["id"]}}});
    let (s, rep) = call(&sb, "POST", "/api/campaign-values-reports", body.clone());
    assert_eq!(s, 200, "{rep}");
    let row = rep["data"]["attributes"]["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["groupings"]["campaign_id"] == json!(id))
        .cloned();
    // Sent now: in today's range, not in last_7_days (which ends at midnight).
    assert!(row.is_none());
    let mut today = body;
    today["data"]["attributes"]["timeframe"] = json!({"key": "today"});
    let (_, rep) = call(&sb, "POST", "/api/campaign-values-reports", today);
    let row = rep["data"]["attributes"]["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["groupings"]["campaign_id"] == json!(id))
        .cloned()
        .expect("the campaign sent today");
    let st = &row["statistics"];
    assert_eq!(st["recipients"].as_u64(), Some(expected));
    let rate = st["open_rate"].as_f64().unwrap();
    let ratio = st["opens_unique"].as_f64().unwrap() / st["delivered"].as_f64().unwrap();
    assert!(
        (rate - ratio).abs() < 0.0001,
        "rates are ratios of the counts"
    );
    let (_, ev) = call(
        &sb,
        "GET",
        &format!("/api/events?filter=equals(metric_id,%27{metric}%27)&page%5Bsize%5D=200"),
        Value::Null,
    );
    assert!(ev["data"].as_array().unwrap().len() as u64 >= expected.min(200));
}

#[test]
fn bulk_jobs_create_update_and_delete_their_items_and_can_be_read_back() {
    let sb = Sandbox::new(1, None, Faults::default());
    let item = |ext: &str| json!({"type": "catalog-item", "attributes": {"external_id": ext, "title": ext, "description": "d", "url": "https://x.example/p", "catalog_type": "$default", "integration_type": "$custom", "price": 10}});
    let (s, job) = call(
        &sb,
        "POST",
        "/api/catalog-item-bulk-create-jobs",
        json!({"data": {"type": "catalog-item-bulk-create-job", "attributes": {"items": {"data": [item("NEW-1"), item("NEW-2")]}}}}),
    );
    assert_eq!(s, 202, "{job}");
    assert_eq!(job["data"]["attributes"]["completed_count"], 2);
    let jid = job["data"]["id"].as_str().unwrap();
    let (s, again) = call(
        &sb,
        "GET",
        &format!("/api/catalog-item-bulk-create-jobs/{jid}"),
        Value::Null,
    );
    assert_eq!(s, 200, "{again}");
    let id = "$custom:::$default:::NEW-1";
    let enc = "%24custom%3A%3A%3A%24default%3A%3A%3ANEW-1";
    let (s, got) = call(
        &sb,
        "GET",
        &format!("/api/catalog-items/{enc}"),
        Value::Null,
    );
    assert_eq!(s, 200, "{got}");
    assert_eq!(got["data"]["id"], id);
    let (s, _) = call(
        &sb,
        "POST",
        "/api/catalog-item-bulk-update-jobs",
        json!({"data": {"type": "catalog-item-bulk-update-job", "attributes": {"items": {"data": [{"type": "catalog-item", "id": id, "attributes": {"title": "Renamed"}}]}}}}),
    );
    assert_eq!(s, 202);
    let (_, got) = call(
        &sb,
        "GET",
        &format!("/api/catalog-items/{enc}"),
        Value::Null,
    );
    assert_eq!(got["data"]["attributes"]["title"], "Renamed");
    let (_, del) = call(
        &sb,
        "POST",
        "/api/catalog-item-bulk-delete-jobs",
        json!({"data": {"type": "catalog-item-bulk-delete-job", "attributes": {"items": {"data": [{"type": "catalog-item", "id": id}, {"type": "catalog-item", "id": "nope"}]}}}}),
    );
    assert_eq!(del["data"]["attributes"]["failed_count"], 1, "{del}");
    let (s, _) = call(
        &sb,
        "GET",
        &format!("/api/catalog-items/{enc}"),
        Value::Null,
    );
    assert_eq!(s, 404);
}

#[test]
fn suppression_merge_upload_render_and_client_writes_change_the_account() {
    let sb = Sandbox::new(1, None, Faults::default());
    let p = first(&sb, "/api/profiles?page%5Bsize%5D=2");
    let email = p["attributes"]["email"].as_str().unwrap().to_string();
    let (s, _) = call(
        &sb,
        "POST",
        "/api/profile-suppression-bulk-create-jobs",
        json!({"data": {"type": "profile-suppression-bulk-create-job", "attributes": {"profiles": {"data": [{"type": "profile", "attributes": {"email": email}}]}}}}),
    );
    assert_eq!(s, 202);
    let (_, got) = call(
        &sb,
        "GET",
        &format!(
            "/api/profiles/{}?additional-fields%5Bprofile%5D=subscriptions",
            p["id"].as_str().unwrap()
        ),
        Value::Null,
    );
    assert_eq!(
        got["data"]["attributes"]["subscriptions"]["email"]["marketing"]["suppression"][0]
            ["reason"],
        "USER_SUPPRESSED"
    );
    assert_eq!(
        got["data"]["attributes"]["subscriptions"]["email"]["marketing"]
            ["can_receive_email_marketing"],
        false
    );

    let (_, two) = call(&sb, "GET", "/api/profiles?page%5Bsize%5D=2", Value::Null);
    let (keep, gone) = (
        two["data"][0]["id"].as_str().unwrap().to_string(),
        two["data"][1]["id"].as_str().unwrap().to_string(),
    );
    let (s, m) = call(
        &sb,
        "POST",
        "/api/profile-merge",
        json!({"data": {"type": "profile-merge", "id": keep, "relationships": {"profiles": {"data": [{"type": "profile", "id": gone}]}}}}),
    );
    assert_eq!(s, 201, "{m}");
    assert_eq!(
        call(&sb, "GET", &format!("/api/profiles/{gone}"), Value::Null).0,
        404
    );

    let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"logo.png\"\r\nContent-Type: image/png\r\n\r\nPNGDATA\r\n--XyZ\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nBrand logo\r\n--XyZ--\r\n";
    let out = sb.handle(
        &Request {
            method: "POST",
            path: "/api/image-upload",
            query: "",
            body,
        },
        BASE,
    );
    let Outcome::Answer { status, body, .. } = out else {
        panic!("answer")
    };
    let img: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status, 201, "{img}");
    assert_eq!(img["data"]["attributes"]["name"], "Brand logo");
    assert_eq!(img["data"]["attributes"]["format"], "png");
    assert_eq!(img["data"]["attributes"]["size"], 7);

    let t = first(&sb, "/api/templates");
    let (s, r) = call(
        &sb,
        "POST",
        "/api/template-render",
        json!({"data": {"type": "template", "id": t["id"], "attributes": {"context": {"first_name": "Ada"}}}}),
    );
    assert_eq!(s, 201, "{r}");
    assert!(
        r["data"]["attributes"]["html"]
            .as_str()
            .unwrap()
            .contains("Hi Ada,"),
        "{r}"
    );

    let list = first(&sb, "/api/lists?filter=equals(name,%27Newsletter%27)");
    let (s, _) = call(
        &sb,
        "POST",
        "/client/subscriptions",
        json!({"data": {"type": "subscription", "attributes": {"profile": {"data": {"type": "profile", "attributes": {"email": "form@example.com", "subscriptions": {"email": {"marketing": {"consent": "SUBSCRIBED"}}}}}}},
        "relationships": {"list": {"data": {"type": "list", "id": list["id"]}}}}}),
    );
    assert_eq!(s, 202);
    let f = first(&sb, "/api/profiles?filter=equals(email,%27form@example.com%27)&additional-fields%5Bprofile%5D=subscriptions");
    assert_eq!(
        f["attributes"]["subscriptions"]["email"]["marketing"]["consent"],
        "SUBSCRIBED"
    );
}

/// Every action users were promised (the catalog's 225 promised titles, composites included)
/// is simulated: none of them answers `sandbox_not_simulated`.
#[test]
fn every_promised_action_is_simulated() {
    let mut missing = Vec::new();
    for (title, _) in klaviyo_catalog::generated::PROMISED {
        let tool = klaviyo_catalog::tools::Tool::resolve(title)
            .unwrap_or_else(|e| panic!("{title}: {e:?}"));
        for op in tool.operations() {
            if !engine::simulates(op) {
                missing.push(format!("{title} ({})", op.id));
            }
        }
    }
    assert!(missing.is_empty(), "not simulated: {missing:?}");
    let all = klaviyo_catalog::generated::OPERATIONS.len();
    let simulated = klaviyo_catalog::generated::OPERATIONS
        .iter()
        .filter(|o| engine::simulates(o))
        .count();
    assert!(simulated * 100 / all >= 90, "{simulated} of {all}");
}

/// Every operation, called with the catalog's example arguments (the requests the component
/// would build), gets an answer the sandbox means: its success, or a Klaviyo error about the
/// example's ids and values — never a crash (500) — and 501 only for what `simulates` says.
#[test]
fn every_operation_answers_its_example_request_without_crashing() {
    let sb = Sandbox::new(2, None, Faults::default());
    let conn = klaviyo_catalog::request::Connection {
        base_url: BASE.into(),
        revision: klaviyo_catalog::generated::REVISION.into(),
        private_key: Some("placeholder".into()),
        public_key: Some("SbX4mP".into()),
    };
    let mut seen = 0;
    for tool in klaviyo_catalog::tools::Tool::all() {
        let args = klaviyo_catalog::example::example_args(tool, false);
        let Ok(req) = klaviyo_catalog::request::prepare(tool, &args, &conn) else {
            continue;
        };
        let (path, query) = req
            .path_and_query
            .split_once('?')
            .unwrap_or((&req.path_and_query, ""));
        let body = req.body.clone().unwrap_or_default();
        let out = sb.handle(
            &Request {
                method: req.method.as_str(),
                path,
                query,
                body: &body,
            },
            BASE,
        );
        let Outcome::Answer { status, body, .. } = out else {
            panic!("{}: no answer", tool.name())
        };
        let text = String::from_utf8_lossy(&body);
        assert!(status != 500, "{}: {status} {text}", tool.name());
        assert_eq!(
            status == 501,
            !engine::simulates(req.operation),
            "{}: {status} {text}",
            tool.name()
        );
        if status >= 400 {
            let doc: Value = serde_json::from_slice(&body).unwrap();
            assert!(
                doc["errors"][0]["detail"].is_string(),
                "{}: {text}",
                tool.name()
            );
        }
        seen += 1;
    }
    assert!(seen > 300, "{seen}");
}
