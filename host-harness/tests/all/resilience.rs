//! Resilience against a fault-injecting local server: pacing to Klaviyo's limits, bounded
//! retries that never duplicate a write, timeouts, size caps, pagination.

use crate::support::{rt, Behavior, Reply, Server, FAKE_KEY};
use klaviyo_catalog::response::Failure;
use klaviyo_harness::policy::Policy;
use klaviyo_harness::runtime::default_component_path;
use klaviyo_harness::secrets::KeySource;
use klaviyo_harness::{Harness, NoTty, Settings};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn harness(server: &Server, tweak: impl FnOnce(&mut Settings)) -> Harness {
    let mut s = Settings::new(&server.url).unwrap();
    s.key_source = KeySource::Command(format!("echo {FAKE_KEY}"));
    s.policy = Policy::allow_all();
    tweak(&mut s);
    Harness::new(s, &default_component_path(), Box::new(NoTty)).unwrap()
}

const OK: &str = r#"{"data":{"type":"campaign","id":"C1"}}"#;

/// 200 concurrent calls of an endpoint limited to 10/s burst and 150/min steady, against a
/// server enforcing those limits in fixed windows: no 429 at all, in about the time the limits
/// imply (150 in the first minute, the other 50 just after it).
#[test]
fn a_burst_of_200_calls_is_paced_to_the_limits() {
    let op = klaviyo_catalog::tools::operation("get_campaign").unwrap();
    assert_eq!(
        (
            op.rate_limit.burst_per_second,
            op.rate_limit.steady_per_minute
        ),
        (10, 150)
    );
    let start = Instant::now();
    let windows: Arc<Mutex<(u64, usize, u64, usize)>> = Arc::new(Mutex::new((0, 0, 0, 0)));
    let throttled = Arc::new(AtomicUsize::new(0));
    let (w, t) = (windows.clone(), throttled.clone());
    let server = Server::start(move |_| {
        let now = start.elapsed();
        let (sec, min) = (now.as_secs(), now.as_secs() / 60);
        let mut w = w.lock().unwrap();
        if w.0 != sec {
            *w = (sec, 0, w.2, w.3);
        }
        if w.2 != min {
            w.2 = min;
            w.3 = 0;
        }
        if w.1 >= 10 || w.3 >= 150 {
            t.fetch_add(1, Ordering::SeqCst);
            return Reply::json(
                429,
                r#"{"errors":[{"code":"throttled","title":"t","detail":"slow down"}]}"#,
            )
            .with_header("retry-after", "1");
        }
        w.1 += 1;
        w.3 += 1;
        Reply::json(200, OK)
    });
    let h = Arc::new(harness(&server, |_| {}));
    let rt = rt();
    let began = Instant::now();
    let results = rt.block_on(async {
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let h = h.clone();
                tokio::spawn(async move {
                    h.call("get_campaign", &json!({"id": format!("C{i}")}).to_string())
                        .await
                        .result
                })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    let took = began.elapsed();
    assert_eq!(
        throttled.load(Ordering::SeqCst),
        0,
        "the server never had to answer 429"
    );
    assert!(
        results.iter().all(|r| r.is_ok()),
        "{:?}",
        results.iter().find(|r| r.is_err())
    );
    assert_eq!(server.requests().len(), 200, "no retries were needed");
    assert!(
        took >= Duration::from_secs(60),
        "150/min means the last 50 wait for the next minute: {took:?}"
    );
    assert!(
        took < Duration::from_secs(75),
        "and not much longer: {took:?}"
    );
}

#[test]
fn a_429_with_retry_after_is_retried_once_after_waiting() {
    let n = Arc::new(AtomicUsize::new(0));
    let c = n.clone();
    let server = Server::start(move |_| {
        if c.fetch_add(1, Ordering::SeqCst) == 0 {
            Reply::json(
                429,
                r#"{"errors":[{"code":"throttled","title":"t","detail":"x"}]}"#,
            )
            .with_header("retry-after", "1")
        } else {
            Reply::json(200, OK)
        }
    });
    let h = harness(&server, |_| {});
    let out = rt().block_on(h.call("get_campaign", r#"{"id":"C1"}"#));
    assert!(out.result.is_ok(), "{:?}", out.result);
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    let times = server.times();
    assert!(
        times[1] - times[0] >= Duration::from_secs(1),
        "waited for Retry-After: {:?}",
        times[1] - times[0]
    );
}

#[test]
fn a_429_storm_stops_at_the_bound_with_the_retry_after() {
    let server = Server::start(|_| {
        Reply::json(
            429,
            r#"{"errors":[{"code":"throttled","title":"t","detail":"Request was throttled."}]}"#,
        )
        .with_header("retry-after", "1")
    });
    let h = harness(&server, |s| s.max_retries = 2);
    let out = rt().block_on(h.call("get_campaign", r#"{"id":"C1"}"#));
    match out.result {
        Err(Failure::Throttled {
            retry_after_seconds,
            ..
        }) => assert_eq!(retry_after_seconds, Some(1)),
        other => panic!("{other:?}"),
    }
    assert_eq!(server.requests().len(), 3, "one try and two retries");
    // A bound on the total wait stops it too.
    let h = harness(&server, |s| s.max_retry_wait = Duration::from_millis(1500));
    let before = server.requests().len();
    let out = rt().block_on(h.call("get_campaign", r#"{"id":"C1"}"#));
    assert!(matches!(out.result, Err(Failure::Throttled { .. })));
    assert_eq!(
        server.requests().len() - before,
        2,
        "1 s waited, the next 1 s would pass the 1.5 s bound"
    );
}

#[test]
fn a_write_answered_504_is_sent_once_and_may_have_happened() {
    let server = Server::start(|_| Reply::json(504, "gateway timeout"));
    let h = harness(&server, |_| {});
    let out = rt().block_on(h.call("create_list", r#"{"body":{"name":"VIP"}}"#));
    match out.result {
        Err(Failure::OutcomeUnknown { message: m }) => assert!(
            m.contains("may or may not") && m.contains("get_lists"),
            "{m}"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        server.requests().len(),
        1,
        "a write is never retried after an ambiguous failure"
    );
    // The same failure on a read is retried.
    let h = harness(&server, |s| s.max_retries = 2);
    let out = rt().block_on(h.call("get_lists", "{}"));
    assert!(
        matches!(out.result, Err(Failure::Http { status: 504, .. })),
        "{:?}",
        out.result
    );
    assert_eq!(server.requests().len(), 1 + 3);
}

#[test]
fn a_write_whose_connection_drops_after_sending_is_sent_once() {
    let server = Server::start(|_| Reply::json(200, OK).with(Behavior::Drop));
    let h = harness(&server, |s| s.max_retries = 2);
    let out = rt().block_on(h.call("create_list", r#"{"body":{"name":"VIP"}}"#));
    match out.result {
        Err(Failure::OutcomeUnknown { message: m }) => {
            assert!(m.contains("not retried") && m.contains("get_lists"), "{m}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(server.requests().len(), 1);
    let out = rt().block_on(h.call("get_lists", "{}"));
    assert!(
        matches!(out.result, Err(Failure::Transport { .. })),
        "{:?}",
        out.result
    );
    assert_eq!(server.requests().len(), 1 + 3, "the read was retried");
}

#[test]
fn a_hung_server_gives_a_timeout_within_the_bound() {
    let server =
        Server::start(|_| Reply::json(200, OK).with(Behavior::Hang(Duration::from_secs(20))));
    let h = harness(&server, |s| {
        s.timeouts.first_byte = Duration::from_secs(1);
        s.max_retries = 0;
    });
    let began = Instant::now();
    let out = rt().block_on(h.call("get_lists", "{}"));
    assert!(
        matches!(out.result, Err(Failure::Timeout { message: ref m }) if m.contains("no answer within")),
        "{:?}",
        out.result
    );
    assert!(
        began.elapsed() < Duration::from_secs(4),
        "{:?}",
        began.elapsed()
    );
    let out = rt().block_on(h.call("create_list", r#"{"body":{"name":"VIP"}}"#));
    assert!(
        matches!(out.result, Err(Failure::OutcomeUnknown { .. })),
        "a write that timed out may have happened: {:?}",
        out.result
    );
}

#[test]
fn a_trickling_body_ends_at_the_call_deadline() {
    let body = format!(r#"{{"data":[],"pad":"{}"}}"#, "x".repeat(200));
    let server = Server::start(move |_| {
        Reply::json(200, &body).with(Behavior::Trickle(Duration::from_millis(50)))
    });
    let h = harness(&server, |s| s.timeouts.call = Duration::from_secs(2));
    let began = Instant::now();
    let out = rt().block_on(h.call("get_lists", "{}"));
    assert!(
        matches!(out.result, Err(Failure::Timeout { message: ref m }) if m.contains("complete answer")),
        "{:?}",
        out.result
    );
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "{:?}",
        began.elapsed()
    );
}

#[test]
fn an_oversized_body_is_refused_clearly() {
    let big = format!(r#"{{"data":"{}"}}"#, "y".repeat(2 << 20));
    let server = Server::start(move |_| Reply::json(200, &big));
    let h = harness(&server, |s| s.max_response_bytes = 1 << 20);
    let out = rt().block_on(h.call("get_lists", "{}"));
    assert!(
        matches!(out.result, Err(Failure::Transport { message: ref m }) if m.contains("larger than the 1048576-byte limit")),
        "{:?}",
        out.result
    );
}

#[test]
fn hostile_response_bodies_give_clear_errors() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (br#"{"data":[{"type":"list""#.to_vec(), "not valid JSON"),
        (vec![b'{', 0xff, 0xfe, b'}'], "not UTF-8"),
        (
            format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes(),
            "nested too deeply",
        ),
        (
            format!("{}1", "[".repeat(100_000)).into_bytes(),
            "nested too deeply",
        ),
    ];
    for (body, needle) in cases {
        let server = Server::start_raw(move |_| (200, body.clone()));
        let h = harness(&server, |_| {});
        let out = rt().block_on(h.call("get_lists", "{}"));
        assert!(
            matches!(out.result, Err(Failure::Transport { message: ref m }) if m.contains(needle)),
            "{needle}: {:?}",
            out.result
        );
    }
}

/// Three pages: the cursor comes from `links.next` (no stray `=`), goes back as `page[cursor]`
/// with the caller's `page[size]` kept, and the item cap holds.
#[test]
fn pagination_walks_every_page_and_the_cap_holds() {
    let server = Server::start(|r| {
        let q = r.query().to_string();
        let page = if q.contains("page%5Bcursor%5D=c%3D2") {
            2
        } else if q.contains("page%5Bcursor%5D=c%3D3") {
            3
        } else {
            1
        };
        let next = match page {
            1 => json!("http://x/api/profiles?page%5Bcursor%5D=c%3D2&page%5Bsize%5D=2"),
            2 => json!("http://x/api/profiles?page%5Bsize%5D=2&page%5Bcursor%5D=c%3D3"),
            _ => Value::Null,
        };
        let data: Vec<Value> = (0..2)
            .map(|i| json!({"type": "profile", "id": format!("P{page}{i}")}))
            .collect();
        Reply::json(
            200,
            &json!({"data": data, "links": {"self": "x", "next": next}}).to_string(),
        )
    });
    let h = harness(&server, |_| {});
    let rt = rt();
    let pages_seen = AtomicUsize::new(0);
    let progress = |p: usize, _items: usize| {
        pages_seen.store(p, Ordering::SeqCst);
    };
    let out =
        rt.block_on(h.call_all_pages("get_profiles", &json!({"page_size": 2}), 100, &progress));
    let doc: Value = serde_json::from_str(&out.result.unwrap()).unwrap();
    let ids: Vec<&str> = doc["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["P10", "P11", "P20", "P21", "P30", "P31"]);
    assert_eq!(doc["meta"]["pages"], 3);
    assert_eq!(doc["next_cursor"], Value::Null);
    assert_eq!(pages_seen.load(Ordering::SeqCst), 3);
    let targets: Vec<String> = server.requests().iter().map(|r| r.target.clone()).collect();
    assert_eq!(
        targets,
        [
            "/api/profiles?page%5Bsize%5D=2",
            "/api/profiles?page%5Bcursor%5D=c%3D2&page%5Bsize%5D=2",
            "/api/profiles?page%5Bcursor%5D=c%3D3&page%5Bsize%5D=2",
        ]
    );
    // The cap: 3 items stop the walk at the end of page 2 (its 4 items: nothing is skipped),
    // with where to resume.
    let out =
        rt.block_on(h.call_all_pages("get_profiles", &json!({"page_size": 2}), 3, &|_, _| {}));
    let doc: Value = serde_json::from_str(&out.result.unwrap()).unwrap();
    assert_eq!(doc["data"].as_array().unwrap().len(), 4);
    assert_eq!(doc["meta"]["truncated"], true);
    assert_eq!(doc["next_cursor"], "c=3");
    // A tool without pages says so.
    let out = rt.block_on(h.call_all_pages("get_list", &json!({"id": "L1"}), 3, &|_, _| {}));
    assert!(
        matches!(out.result, Err(Failure::InvalidInput { ref field, .. }) if field == "all_pages")
    );
}
