//! The host contains a misbehaving component: a hostile guest (`tests/hostile-guest`, built with
//! the connector) spins, exhausts memory, and forges requests straight through wasi:http.

mod support;

use klaviyo_catalog::response::Failure;
use klaviyo_harness::egress::KEY_PLACEHOLDER;
use klaviyo_harness::policy::Policy;
use klaviyo_harness::runtime::default_component_path;
use klaviyo_harness::secrets::KeySource;
use klaviyo_harness::{Harness, NoTty, Settings};
use serde_json::json;
use std::time::{Duration, Instant};
use support::{Server, FAKE_KEY};

fn hostile(server: &Server, tweak: impl FnOnce(&mut Settings)) -> Harness {
    let path = default_component_path().with_file_name("hostile_guest.wasm");
    assert!(
        path.exists(),
        "build the components first: cargo build --target wasm32-wasip2 --release ({} missing)",
        path.display()
    );
    let mut s = Settings::new(&server.url).unwrap();
    s.key_source = KeySource::Command(format!("echo {FAKE_KEY}"));
    s.policy = Policy::read_only();
    tweak(&mut s);
    Harness::new(s, &path, Box::new(NoTty)).unwrap()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_spinning_guest_is_stopped_by_the_deadline() {
    let server = Server::ok();
    let h = hostile(&server, |s| s.timeouts.call = Duration::from_secs(1));
    let started = Instant::now();
    let out = rt().block_on(h.call("spin", "{}"));
    let took = started.elapsed();
    assert!(
        matches!(out.result, Err(Failure::Transport(ref m)) if m.contains("component failed")),
        "{:?}",
        out.result
    );
    assert!(
        took < Duration::from_secs(10),
        "stopped within the bound, took {took:?}"
    );
    // The harness is still usable afterwards.
    let out = rt().block_on(h.call("nothing", "{}"));
    assert!(matches!(out.result, Err(Failure::UnknownTool(_))));
}

#[test]
fn a_memory_hog_is_stopped_by_the_limit() {
    let server = Server::ok();
    let h = hostile(&server, |s| s.memory_limit = 32 << 20);
    let out = rt().block_on(h.call("grow", "{}"));
    assert!(
        matches!(out.result, Err(Failure::Transport(ref m)) if m.contains("component failed")),
        "{:?}",
        out.result
    );
}

#[test]
fn forged_requests_from_a_component_are_refused() {
    let server = Server::ok();
    let other = Server::ok();
    let h = hostile(&server, |_| {});
    let rt = rt();
    let auth = format!("Klaviyo-API-Key {KEY_PLACEHOLDER}");
    let cases = [
        json!({"method": "POST", "url": format!("{}/api/lists", server.url), "authorization": auth, "body": "{}"}),
        json!({"method": "PATCH", "url": format!("{}/api/lists/L1", server.url), "authorization": auth, "body": "{}"}),
        json!({"method": "DELETE", "url": format!("{}/api/profiles/P1", server.url), "authorization": auth}),
        json!({"method": "POST", "url": format!("{}/api/profile-suppression-bulk-create-jobs", server.url), "authorization": auth, "body": "{}"}),
        json!({"method": "GET", "url": format!("{}/api/lists", other.url), "authorization": auth}),
        json!({"method": "GET", "url": format!("{}/api/lists", server.url), "authorization": "Klaviyo-API-Key pk_made_up"}),
        json!({"method": "GET", "url": format!("{}/api/lists", server.url)}),
        json!({"method": "GET", "url": format!("{}/internal/admin", server.url), "authorization": auth}),
    ];
    for c in &cases {
        let out = rt.block_on(h.call("forge", &c.to_string()));
        let text = out.result.unwrap();
        assert!(text.starts_with("403|denied|"), "{c}: {text}");
        assert!(!text.contains(FAKE_KEY));
    }
    assert!(
        server.requests().is_empty(),
        "no forged request reached the server"
    );
    assert!(other.requests().is_empty());
    // A well-formed read is let through, and the key is substituted only there.
    let out = rt.block_on(h.call("forge", &json!({"method": "GET", "url": format!("{}/api/lists", server.url), "authorization": auth}).to_string()));
    assert!(out.result.unwrap().starts_with("200||"));
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(
        reqs[0].header("authorization"),
        Some(format!("Klaviyo-API-Key {FAKE_KEY}").as_str())
    );
}
