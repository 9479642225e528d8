//! The host contains a misbehaving component: a hostile guest (`tests/hostile-guest`, built with
//! the connector) spins, exhausts memory, builds header sets to grow host memory, floods
//! requests, and forges requests straight through wasi:http under whatever tool name the host
//! called it with. Every guarantee here is the host's own, whatever the component does.

use crate::support::{rt, temp_dir, Reply, Server, FAKE_KEY};
use klaviyo_catalog::response::Failure;
use klaviyo_harness::confirm::Answer;
use klaviyo_harness::egress::KEY_PLACEHOLDER;
use klaviyo_harness::policy::Policy;
use klaviyo_harness::runtime::default_component_path;
use klaviyo_harness::secrets::KeySource;
use klaviyo_harness::{Caller, Confirm, Harness, NoTty, Settings};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Tests that measure this process's memory run one at a time.
static MEMORY: Mutex<()> = Mutex::new(());

fn hostile_path() -> PathBuf {
    let path = default_component_path().with_file_name("hostile_guest.wasm");
    assert!(
        path.exists(),
        "build the components first: cargo build --target wasm32-wasip2 --release ({} missing)",
        path.display()
    );
    path
}

fn hostile(server: &Server, tweak: impl FnOnce(&mut Settings)) -> Harness {
    let mut s = Settings::new(&server.url).unwrap();
    s.key_source = KeySource::Command(format!("echo {FAKE_KEY}"));
    s.policy = Policy::read_only();
    tweak(&mut s);
    Harness::new(s, &hostile_path(), Box::new(NoTty)).unwrap()
}

fn auth() -> String {
    format!("Klaviyo-API-Key {KEY_PLACEHOLDER}")
}

/// A forged request as the hostile guest sends it, with the headers the real component sets.
fn forge(method: &str, path: &str, body: Option<&str>, extra: Value) -> String {
    let mut headers = json!({"accept": "application/vnd.api+json", "revision": klaviyo_catalog::generated::REVISION});
    if body.is_some() {
        headers["content-type"] = json!("application/vnd.api+json");
    }
    for (k, v) in extra.as_object().into_iter().flatten() {
        headers[k] = v.clone();
    }
    json!({"hostile": "forge", "method": method, "path": path, "authorization": auth(), "headers": headers, "body": body}).to_string()
}

fn audit_lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_spinning_guest_is_stopped_by_the_deadline() {
    let server = Server::ok();
    let h = hostile(&server, |s| s.timeouts.call = Duration::from_secs(1));
    let started = Instant::now();
    let out = rt().block_on(h.call("spin", "{}"));
    let took = started.elapsed();
    assert!(
        matches!(out.result, Err(Failure::Transport { message: ref m }) if m.contains("component failed")),
        "{:?}",
        out.result
    );
    assert!(
        took < Duration::from_secs(10),
        "stopped within the bound, took {took:?}"
    );
    // The harness is still usable afterwards.
    let out = rt().block_on(h.call("nothing", "{}"));
    assert!(matches!(out.result, Err(Failure::UnknownTool { .. })));
}

/// Red-team break 6: on the one-thread runtime the CLI and MCP server use, a spinning guest
/// must not freeze the other calls: they are answered while it spins, and it is still stopped
/// at its deadline.
#[test]
fn a_spinning_guest_does_not_hold_up_other_calls() {
    let server = Server::ok();
    let h = Arc::new(hostile(&server, |s| {
        s.timeouts.call = Duration::from_secs(4)
    }));
    let rt = klaviyo_harness::runtime::async_runtime().unwrap();
    rt.block_on(async {
        let spinner = {
            let h = h.clone();
            tokio::spawn(async move {
                let out = h.call("get_lists", r#"{"hostile":"spin"}"#).await;
                (Instant::now(), out)
            })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        // A read and a plain timer, both while the guest spins.
        let timer = Instant::now();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let slept = timer.elapsed();
        let read = h
            .call("get_lists", &forge("GET", "/api/lists", None, json!({})))
            .await;
        let read_done = Instant::now();
        assert!(
            read.result.as_deref().unwrap().starts_with("200||"),
            "{:?}",
            read.result
        );
        let (spin_done, spun) = spinner.await.unwrap();
        assert!(
            matches!(spun.result, Err(Failure::Transport { message: ref m }) if m.contains("component failed")),
            "{:?}",
            spun.result
        );
        assert!(
            read_done < spin_done,
            "the read was answered while the guest was still spinning"
        );
        assert!(
            slept < Duration::from_secs(2),
            "a 300 ms sleep took {slept:?} during the spin"
        );
    });
}

#[test]
fn a_memory_hog_is_stopped_by_the_limit() {
    let _m = MEMORY.lock().unwrap_or_else(|e| e.into_inner());
    let server = Server::ok();
    let h = hostile(&server, |s| s.memory_limit = 32 << 20);
    let out = rt().block_on(h.call("grow", "{}"));
    assert!(
        matches!(out.result, Err(Failure::Transport { message: ref m }) if m.contains("component failed")),
        "{:?}",
        out.result
    );
}

fn rss_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: usize = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

/// Red-team break 5: header sets live in host memory, outside the guest's linear-memory
/// limit. 8,000 sets of 120 KB took the host from 28 MB to 953 MB; the resource table and the
/// header-set size are now bounded per call (1,000 × 16 KB), so it stays within tens of MB.
#[test]
fn a_guest_cannot_grow_host_memory_with_header_sets() {
    let _m = MEMORY.lock().unwrap_or_else(|e| e.into_inner());
    let server = Server::ok();
    let h = hostile(&server, |s| s.memory_limit = 32 << 20);
    let rt = rt();
    let before = rss_bytes();
    let out = rt.block_on(h.call(
        "get_lists",
        r#"{"hostile":"fields","count":8000,"size":120000}"#,
    ));
    let grown = rss_bytes().saturating_sub(before);
    assert!(
        grown < 64 << 20,
        "host memory grew by {} MB ({:?})",
        grown >> 20,
        out.result
    );
    // Whatever the guest got, it is far from 8,000 × 120 KB, and the harness goes on.
    if let Ok(text) = &out.result {
        let bytes: usize = text.split_whitespace().nth(5).unwrap().parse().unwrap();
        assert!(bytes <= 20 << 20, "{text}");
    }
    let ok = rt.block_on(h.call("get_lists", &forge("GET", "/api/lists", None, json!({}))));
    assert!(ok.result.unwrap().starts_with("200||"));
}

#[test]
fn a_call_may_make_only_a_few_requests() {
    let server = Server::ok();
    let h = hostile(&server, |_| {});
    let out = rt().block_on(h.call("get_lists", r#"{"hostile":"many","count":20}"#));
    let statuses = out.result.unwrap();
    let codes: Vec<&str> = statuses.split(',').collect();
    assert_eq!(codes.len(), 20);
    assert!(codes[..8].iter().all(|c| *c == "200"), "{statuses}");
    assert!(codes[8..].iter().all(|c| *c == "403"), "{statuses}");
    assert_eq!(server.requests().len(), 8);
}

/// Red-team break 1: the policy decides on what is sent, never on the called name, and a call
/// may make only its own tool's requests.
#[test]
fn a_called_name_cannot_carry_other_requests() {
    let server = Server::ok();
    let dir = temp_dir("kc-sandbox");
    let audit = dir.0.join("audit.jsonl");
    let a = audit.clone();
    let h = hostile(&server, move |s| {
        s.policy = Policy::from_toml("[[rules]]\ntools = \"get_*\"\ndecision = \"allow\"").unwrap();
        s.audit_log = Some(a);
    });
    let rt = rt();
    let cases = [
        (
            "get_lists",
            forge("DELETE", "/api/flows/F1", None, json!({})),
            "delete_flow",
        ),
        (
            "get_lists",
            forge(
                "POST",
                "/api/data-privacy-deletion-jobs",
                Some(
                    r#"{"data":{"type":"data-privacy-deletion-job","attributes":{"profile":{"data":{"type":"profile","attributes":{"email":"a@b.c"}}}}}}"#,
                ),
                json!({}),
            ),
            "request_profile_deletion",
        ),
        (
            "get_whatever",
            forge("GET", "/api/lists", None, json!({})),
            "get_lists",
        ),
        (
            "get_flows",
            forge("DELETE", "/api/flows/F1", None, json!({})),
            "delete_flow",
        ),
    ];
    for (called, args, op) in &cases {
        let text = rt.block_on(h.call(called, args)).result.unwrap();
        assert!(text.starts_with("403|denied|"), "{called} → {op}: {text}");
        assert!(!text.contains(FAKE_KEY));
    }
    assert!(server.requests().is_empty(), "nothing reached the server");
    let lines = audit_lines(&audit);
    for (called, _, op) in &cases {
        assert!(
            lines
                .iter()
                .any(|l| l["event"] == "denied" && l["tool"] == *called && l["operation"] == *op),
            "audited: {called} → {op}: {lines:?}"
        );
    }
    // The same rule still lets the called tool's own read through.
    let ok = rt.block_on(h.call("get_lists", &forge("GET", "/api/lists", None, json!({}))));
    assert!(ok.result.unwrap().starts_with("200||"));
}

#[test]
fn forged_requests_from_a_component_are_refused() {
    let server = Server::ok();
    let other = Server::ok();
    let h = hostile(&server, |_| {});
    let rt = rt();
    let cases = [
        ("create_list", forge("POST", "/api/lists", Some("{}"), json!({}))),
        ("update_list", forge("PATCH", "/api/lists/L1", Some("{}"), json!({}))),
        ("delete_profile", forge("DELETE", "/api/profiles/P1", None, json!({}))),
        ("suppress_profiles", forge("POST", "/api/profile-suppression-bulk-create-jobs", Some("{}"), json!({}))),
        ("get_lists", json!({"hostile": "forge", "method": "GET", "url": format!("{}/api/lists", other.url), "authorization": auth()}).to_string()),
        ("get_lists", forge("GET", "/api/lists", None, json!({"authorization": "Klaviyo-API-Key pk_made_up"}))),
        ("get_lists", json!({"hostile": "forge", "method": "GET", "path": "/api/lists", "headers": {"revision": klaviyo_catalog::generated::REVISION}}).to_string()),
        ("get_lists", forge("GET", "/internal/admin", None, json!({}))),
        ("get_lists", forge("GET", "/api/lists", None, json!({"x-http-method-override": "DELETE"}))),
        ("get_lists", forge("GET", "/api/lists", None, json!({"x-forwarded-host": "evil.example"}))),
        ("get_lists", forge("GET", "/api/lists", None, json!({"revision": "2020-01-01"}))),
        ("get_list", forge("GET", "/api/lists/%2E%2E", None, json!({}))),
        ("get_list", forge("GET", "/api/lists/a%2Fb", None, json!({}))),
        ("get_lists", forge("GET", "/api//lists", None, json!({}))),
        ("get_lists", forge("GET", "/api/lists", Some("{}"), json!({}))),
    ];
    for (called, args) in &cases {
        let text = rt.block_on(h.call(called, args)).result.unwrap();
        assert!(text.starts_with("403|denied|"), "{called} {args}: {text}");
        assert!(!text.contains(FAKE_KEY));
    }
    assert!(
        server.requests().is_empty(),
        "no forged request reached the server"
    );
    assert!(other.requests().is_empty());
    // A well-formed read is let through, and the key is substituted only there.
    let out = rt.block_on(h.call("get_lists", &forge("GET", "/api/lists", None, json!({}))));
    assert!(out.result.unwrap().starts_with("200||"));
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(
        reqs[0].header("authorization"),
        Some(format!("Klaviyo-API-Key {FAKE_KEY}").as_str())
    );
}

/// Asks nobody: records the prompt and answers no.
struct Recorder(Arc<Mutex<Vec<String>>>);

impl Confirm for Recorder {
    fn confirm(&self, prompt: String) -> Answer {
        self.0.lock().unwrap().push(prompt);
        Box::pin(async { Ok(false) })
    }
}

/// Red-team break 4: the confirmation shows the request as it would be sent — every header
/// (the key redacted) and the body as it is, multipart parsed by the host, not labelled by the
/// component.
#[test]
fn the_question_shows_the_exact_request() {
    let server = Server::ok();
    let h = hostile(&server, |s| {
        s.policy = Policy::from_toml("[defaults]\nwrite = \"ask\"").unwrap()
    });
    let rt = rt();
    let prompts = Arc::new(Mutex::new(Vec::new()));
    let caller = Caller {
        confirm: Some(Arc::new(Recorder(prompts.clone()))),
        client: None,
    };
    let body = r#"{"data":{"type":"list","attributes":{"name":"VIP"}}}"#;
    let out = rt.block_on(h.call_as(
        "create_list",
        &forge("POST", "/api/lists", Some(body), json!({})),
        &caller,
    ));
    assert!(out.result.unwrap().starts_with("403|denied|"), "declined");
    let mpart = "--b0\r\nContent-Disposition: form-data; name=\"file\"; filename=\"logo.gif\"\r\nContent-Type: image/gif\r\n\r\nGIF89a..\r\n--b0\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nLogo\r\n--b0--\r\n";
    let out = rt.block_on(h.call_as(
        "upload_image_from_file",
        &forge(
            "POST",
            "/api/image-upload",
            Some(mpart),
            json!({"content-type": "multipart/form-data; boundary=b0"}),
        ),
        &caller,
    ));
    assert!(out.result.unwrap().starts_with("403|denied|"), "declined");
    // JSON labelled multipart is not a multipart body: refused before anyone is asked.
    let out = rt.block_on(h.call_as(
        "upload_image_from_file",
        &forge(
            "POST",
            "/api/image-upload",
            Some(body),
            json!({"content-type": "multipart/form-data; boundary=b0"}),
        ),
        &caller,
    ));
    let text = out.result.unwrap();
    assert!(
        text.starts_with("403|denied|") && text.contains("multipart"),
        "{text}"
    );
    let prompts = prompts.lock().unwrap();
    assert_eq!(prompts.len(), 2, "{prompts:?}");
    let p = &prompts[0];
    for want in [
        "POST ",
        "/api/lists",
        &format!("revision: {}", klaviyo_catalog::generated::REVISION),
        "accept: application/vnd.api+json",
        "content-type: application/vnd.api+json",
        "authorization: Klaviyo-API-Key [redacted]",
        "\"name\": \"VIP\"",
    ] {
        assert!(p.contains(want), "missing {want:?} in:\n{p}");
    }
    let p = &prompts[1];
    for want in [
        "\"filename\": \"logo.gif\"",
        "\"content_type\": \"image/gif\"",
        "\"bytes\": 8",
        "\"name\": \"name\"",
    ] {
        assert!(p.contains(want), "missing {want:?} in:\n{p}");
    }
    assert!(!p.contains(FAKE_KEY) && !prompts[0].contains(FAKE_KEY));
    assert!(server.requests().is_empty());
}

/// Whatever comes back, the key does not: a server (or a proxy) echoing the request's
/// Authorization header in its body and headers.
#[test]
fn the_key_is_scrubbed_from_answers() {
    let server = Server::start(|r| {
        let auth = r.header("authorization").unwrap_or("").to_string();
        Reply::json(200, &format!(r#"{{"data":[],"echo":"{auth}"}}"#)).with_header("x-echo", &auth)
    });
    let h = hostile(&server, |_| {});
    let text = rt()
        .block_on(h.call("get_lists", &forge("GET", "/api/lists", None, json!({}))))
        .result
        .unwrap();
    assert!(!text.contains(FAKE_KEY), "{text}");
    assert!(text.contains("Klaviyo-API-Key [redacted]"), "{text}");
    assert_eq!(
        server.requests()[0].header("authorization"),
        Some(format!("Klaviyo-API-Key {FAKE_KEY}").as_str())
    );
}

/// A refusal because no key can be read is audited like any other, and names the command.
#[test]
fn a_missing_key_is_refused_and_audited() {
    let server = Server::ok();
    let dir = temp_dir("kc-sandbox-nokey");
    let audit = dir.0.join("audit.jsonl");
    let a = audit.clone();
    let h = hostile(&server, move |s| {
        s.key_source = KeySource::Command("exit 7".into());
        s.audit_log = Some(a);
    });
    let text = rt()
        .block_on(h.call("get_lists", &forge("GET", "/api/lists", None, json!({}))))
        .result
        .unwrap();
    assert!(
        text.starts_with("503|not-configured|") && text.contains("exit 7"),
        "{text}"
    );
    assert!(server.requests().is_empty());
    let lines = audit_lines(&audit);
    assert!(
        lines
            .iter()
            .any(|l| l["event"] == "not-configured" && l["operation"] == "get_lists"),
        "{lines:?}"
    );
}
