//! The CLI as scripts and people use it: exit codes, output, policy, confirmation on a TTY,
//! and that the key appears in no output. Needs the component's release build.

use crate::support::{temp_dir, Behavior, Reply, Server, TempDir, FAKE_KEY};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_klaviyo-harness");

fn dir() -> TempDir {
    temp_dir("kc-cli")
}

/// A private state directory for this test process.
fn state_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("kc-cli-state-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    d
}

/// Sets a clean environment: no key unless given, base URL of the test server.
fn clean_env(c: &mut Command, base_url: Option<&str>, key: Option<&str>) {
    for var in [
        "KLAVIYO_API_KEY",
        "KLAVIYO_BASE_URL",
        "KLAVIYO_POLICY",
        "KLAVIYO_AUDIT_LOG",
        "KLAVIYO_COMPANY_ID",
        "KLAVIYO_CONFIG",
        "KLAVIYO_REVISION",
        "KLAVIYO_COMPONENT",
        "KLAVIYO_CACHE_DIR",
        "KLAVIYO_STATE_DIR",
        "KLAVIYO_MCP_TOKENS",
        "XDG_CACHE_HOME",
        "XDG_STATE_HOME",
    ] {
        c.env_remove(var);
    }
    c.env("HOME", std::env::temp_dir().join("kc-cli-home"));
    // Pacing state of this test run only: daily counts must not pile up across runs.
    c.env("KLAVIYO_STATE_DIR", state_dir());
    if let Some(u) = base_url {
        c.env("KLAVIYO_BASE_URL", u);
    }
    if let Some(k) = key {
        c.env("KLAVIYO_API_KEY", k);
    }
    c.stdin(Stdio::null());
}

/// The harness binary with a clean environment.
fn cmd(base_url: Option<&str>, key: Option<&str>) -> Command {
    let mut c = Command::new(BIN);
    clean_env(&mut c, base_url, key);
    c
}

fn run(c: &mut Command) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = c.output().unwrap();
    let (out, err) = (
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    );
    assert!(
        !out.contains(FAKE_KEY) && !err.contains(FAKE_KEY),
        "the key leaked into output:\n{out}\n{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    (status.code().unwrap_or(-1), out, err)
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn dry_run_without_a_key_prints_the_exact_request() {
    let (code, out, _) =
        run(cmd(None, None).args(["call", "get-lists", "--dry-run", "fields_list=[\"name\"]"]));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("DRY RUN: nothing was sent."));
    assert!(
        out.contains("GET https://a.klaviyo.com/api/lists?fields%5Blist%5D=name"),
        "{out}"
    );
    assert!(out.contains("authorization: Klaviyo-API-Key [redacted]"));
    assert!(out.contains("revision: 2026-07-15"));
    // Against a local server, nothing reaches it.
    let server = Server::ok();
    let (code, out, _) = run(cmd(Some(&server.url), Some(FAKE_KEY)).args([
        "--json",
        "call",
        "create_list",
        "--dry-run",
        "--args",
        r#"{"body":{"name":"VIP"}}"#,
    ]));
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["requests"][0]["request"]["body"]["data"]["type"], "list");
    assert!(server.requests().is_empty());
}

#[test]
fn exit_codes_for_scripts() {
    let server = Server::start(|r| {
        if r.path() == "/api/lists/missing" {
            Reply::json(
                404,
                r#"{"errors":[{"code":"not_found","title":"Not found","detail":"no such list"}]}"#,
            )
        } else {
            Reply::json(200, r#"{"data":[]}"#)
        }
    });
    let url = server.url.clone();
    let cases: Vec<(Vec<&str>, Option<&str>, i32, &str)> = vec![
        (vec!["call", "get_lists"], Some(FAKE_KEY), 0, ""),
        (
            vec!["call", "get_profilez"],
            Some(FAKE_KEY),
            2,
            "did you mean `get_profile`, `get_profiles`?",
        ),
        (
            vec!["call", "get_lists", "--args", "{oops"],
            Some(FAKE_KEY),
            2,
            "not valid JSON",
        ),
        // A number where the schema wants a string is taken as text.
        (vec!["call", "get_image", "id=7"], Some(FAKE_KEY), 0, ""),
        (vec!["call", "get_list", "id="], Some(FAKE_KEY), 2, "`id`"),
        (
            vec!["call", "get_list"],
            Some(FAKE_KEY),
            2,
            "`id` is required",
        ),
        (
            vec!["call", "get_list", "nokeyvalue"],
            Some(FAKE_KEY),
            2,
            "did you mean `id=nokeyvalue`?",
        ),
        (
            vec!["call", "create_list", "body={\"name\":\"x\"}"],
            Some(FAKE_KEY),
            3,
            "denied",
        ),
        (vec!["call", "get_lists"], None, 4, "KLAVIYO_API_KEY"),
        (
            vec!["call", "get_list", "id=missing"],
            Some(FAKE_KEY),
            5,
            "not_found",
        ),
    ];
    for (args, key, want, needle) in cases {
        let (code, out, err) = run(cmd(Some(&url), key).args(&args));
        assert_eq!(code, want, "{args:?}: {out}{err}");
        assert!(
            err.contains(needle) || out.contains(needle),
            "{args:?}: `{needle}` not in {out}{err}"
        );
    }
    // Only the three valid reads with a key reached the server.
    let paths: Vec<String> = server.requests().iter().map(|r| r.target.clone()).collect();
    assert_eq!(
        paths,
        vec!["/api/lists", "/api/images/7", "/api/lists/missing"]
    );
}

#[test]
fn json_output_and_args_from_a_file() {
    let server = Server::ok();
    let d = dir();
    let args = write(&d.0, "args.json", r#"{"id": "L1"}"#);
    let (code, out, _) = run(cmd(Some(&server.url), Some(FAKE_KEY))
        .args(["--json", "call", "Get List"])
        .arg("--args")
        .arg(format!("@{}", args.display())));
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(server.requests()[0].target, "/api/lists/L1");
    let (code, out, _) = run(cmd(Some(&server.url), Some(FAKE_KEY)).args([
        "--json",
        "call",
        "get_profiles",
        "page_size=0",
    ]));
    assert_eq!(code, 2);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["error"]["kind"], "invalid-input");
    assert_eq!(v["error"]["field"], "page_size");
}

#[test]
fn ask_confirms_on_a_tty_and_refuses_without_one() {
    let server = Server::start(|_| Reply::json(201, r#"{"data":{"type":"list","id":"L2"}}"#));
    let d = dir();
    let policy = write(&d.0, "policy.toml", "[defaults]\nwrite = \"ask\"\n");
    let audit = d.0.join("audit.jsonl");
    let line = format!(
        "{BIN} call create_list body='{{\"name\":\"VIP\"}}' --policy {} --audit-log {}",
        policy.display(),
        audit.display()
    );
    // No terminal at all (a new session without a controlling terminal): refused, with how
    // to allow it.
    let mut c = Command::new("setsid");
    c.arg("-w").arg("sh").arg("-c").arg(&line);
    clean_env(&mut c, Some(&server.url), Some(FAKE_KEY));
    let (code, _, err) = run(&mut c);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("needs confirmation") && err.contains("decision = \"allow\""),
        "{err}"
    );
    assert!(server.requests().is_empty());
    // On a terminal (a pseudo-terminal from `script`): the prompt shows the exact request;
    // "n" declines, "y" sends.
    for (answer, want_code, want_requests) in [("n", 3, 0), ("y", 0, 1)] {
        let mut c = Command::new("script");
        c.args(["-qec", &line, "/dev/null"]);
        clean_env(&mut c, Some(&server.url), Some(FAKE_KEY));
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        {
            use std::io::Write;
            // Typed ahead: the terminal buffers it until the prompt reads.
            child
                .stdin
                .as_mut()
                .unwrap()
                .write_all(format!("{answer}\n").as_bytes())
                .unwrap();
        }
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(!text.contains(FAKE_KEY));
        // The exact request: method, URL, every header (key redacted), the body as sent.
        assert!(
            text.contains("POST ")
                && text.contains("/api/lists")
                && text.contains("revision: ")
                && text.contains("content-type: application/vnd.api+json")
                && text.contains("authorization: Klaviyo-API-Key [redacted]")
                && text.contains("\"name\": \"VIP\"")
                && text.contains("Run this request?"),
            "{text}"
        );
        assert_eq!(out.status.code(), Some(want_code), "{answer}: {text}");
        assert_eq!(server.requests().len(), want_requests, "{answer}");
    }
    let audit = std::fs::read_to_string(&audit).unwrap();
    assert!(!audit.contains(FAKE_KEY));
    assert!(audit.contains("\"decision\":\"ask\""), "{audit}");
}

#[test]
fn tools_describe_scopes_and_check() {
    let server = Server::start(|r| {
        if r.path() == "/api/accounts" {
            Reply::json(200, r#"{"data":[{"type":"account","id":"A1"}]}"#)
        } else {
            Reply::json(404, "{}")
        }
    });
    let (code, out, _) = run(cmd(None, None).args(["tools", "--tag", "lists", "--access", "read"]));
    assert_eq!(code, 0);
    let names: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(
        names.contains(&"get_lists") && names.contains(&"get_list"),
        "{out}"
    );
    assert!(
        !names.contains(&"create_list") && !names.contains(&"get_profiles"),
        "{out}"
    );
    let (code, out, _) = run(cmd(None, None).args(["describe", "add-profiles-to-list"]));
    assert_eq!(code, 0);
    assert!(
        out.contains("lists:write") && out.contains("10/s burst") && out.contains("body* object"),
        "{out}"
    );
    assert!(
        !out.contains("\\n"),
        "no literal \\n in what people read: {out}"
    );
    let (code, _, err) = run(cmd(None, None).args(["describe", "nope_tool"]));
    assert_eq!(code, 2, "{err}");
    let (code, out, _) = run(cmd(None, None).args(["--json", "scopes"]));
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    let scopes: Vec<&str> = v["result"]["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(
        scopes.iter().all(|s| s.ends_with(":read")),
        "read-only policy needs read scopes only: {scopes:?}"
    );
    let d = dir();
    let policy = write(
        &d.0,
        "p.toml",
        "[[rules]]\ntools = \"create_list\"\ndecision = \"allow\"\n",
    );
    let (_, out, _) = run(cmd(None, None)
        .args(["--json", "scopes", "--policy"])
        .arg(&policy));
    assert!(out.contains("lists:write"), "{out}");
    let (code, out, _) = run(cmd(Some(&server.url), Some(FAKE_KEY)).args(["check"]));
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("present") && out.contains("accepted") && out.contains(&server.url),
        "{out}"
    );
    let (code, out, _) = run(cmd(Some(&server.url), None).args(["check"]));
    assert_eq!(code, 4, "{out}");
}

#[test]
fn a_key_file_readable_by_others_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let server = Server::ok();
    let d = dir();
    let key = write(&d.0, "key", FAKE_KEY);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, _, err) = run(cmd(Some(&server.url), None)
        .args(["call", "get_lists", "--key-file"])
        .arg(&key));
    assert_eq!(code, 4);
    assert!(err.contains("chmod 600"), "{err}");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (code, _, _) = run(cmd(Some(&server.url), None)
        .args(["call", "get_lists", "--key-file"])
        .arg(&key));
    assert_eq!(code, 0);
    assert_eq!(
        server.requests()[0].header("authorization"),
        Some(format!("Klaviyo-API-Key {FAKE_KEY}").as_str())
    );
    // A private file in a directory others can write to: they could swap it. Refused.
    std::fs::set_permissions(&d.0, std::fs::Permissions::from_mode(0o777)).unwrap();
    let (code, _, err) = run(cmd(Some(&server.url), None)
        .args(["call", "get_lists", "--key-file"])
        .arg(&key));
    std::fs::set_permissions(&d.0, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("could replace the key") && !err.contains(FAKE_KEY),
        "{err}"
    );
    // A key command that hangs is stopped, named, and nothing is sent.
    let (code, _, err) =
        run(cmd(Some(&server.url), None).args(["call", "get_lists", "--key-command", "sleep 60"]));
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("`sleep 60` timed out"), "{err}");
    assert_eq!(server.requests().len(), 1, "nothing more was sent");
}

#[test]
fn an_http_server_without_tokens_listens_only_on_loopback() {
    let (code, _, err) = run(cmd(None, Some(FAKE_KEY)).args(["serve", "--http", "0.0.0.0:0"]));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("refusing to listen on 0.0.0.0") && err.contains("without a token"),
        "{err}"
    );
}

/// A server that pages 30 profiles by `page[size]` and `page[cursor]` (`c<offset>`).
fn paging_server() -> Server {
    Server::start(|r| {
        let q = r.query().to_string();
        let param = |k: &str| {
            q.split('&')
                .find_map(|p| p.strip_prefix(k))
                .map(|v| v.to_string())
        };
        let size: usize = param("page%5Bsize%5D=")
            .and_then(|v| v.parse().ok())
            .unwrap_or(10);
        let from: usize = param("page%5Bcursor%5D=c")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let items: Vec<String> = (from..(from + size).min(30))
            .map(|i| format!(r#"{{"type":"profile","id":"P{}"}}"#, i + 1))
            .collect();
        let next = if from + size < 30 {
            format!(
                r#""{}/api/profiles?page%5Bcursor%5D=c{}&page%5Bsize%5D={size}""#,
                "https://a.klaviyo.com",
                from + size
            )
        } else {
            "null".into()
        };
        Reply::json(
            200,
            &format!(
                r#"{{"data":[{}],"links":{{"next":{next}}}}}"#,
                items.join(",")
            ),
        )
    })
}

fn ids(v: &Value) -> Vec<String> {
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn all_pages_stops_at_a_page_boundary_and_resumes_exactly() {
    let server = paging_server();
    let (code, out, err) = run(cmd(Some(&server.url), Some(FAKE_KEY)).args([
        "--json",
        "call",
        "get_profiles",
        "page_size=5",
        "--all-pages",
        "--max-items",
        "12",
    ]));
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let first = ids(&v["result"]);
    assert_eq!(
        first.len(),
        15,
        "the whole third page, not 12 of it: {first:?}"
    );
    assert_eq!(v["result"]["meta"]["truncated"], true);
    assert!(v["result"]["meta"]["note"]
        .as_str()
        .unwrap()
        .contains("nothing is skipped"));
    let cursor = v["result"]["next_cursor"].as_str().unwrap().to_string();
    let (code, out, err) = run(cmd(Some(&server.url), Some(FAKE_KEY))
        .args([
            "--json",
            "call",
            "get_profiles",
            "page_size=5",
            "--all-pages",
        ])
        .arg(format!("page_cursor={cursor}")));
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let rest = ids(&v["result"]);
    assert_eq!(v["result"]["meta"]["truncated"], false);
    assert!(v["result"]["next_cursor"].is_null());
    let all: Vec<String> = first.into_iter().chain(rest).collect();
    let want: Vec<String> = (1..=30).map(|i| format!("P{i}")).collect();
    assert_eq!(all, want, "every record once, in order");
}

#[test]
fn all_pages_refuses_to_loop_or_to_end_silently() {
    // The same cursor again and again.
    let same = Server::start(|_| {
        Reply::json(
            200,
            r#"{"data":[{"type":"profile","id":"P1"}],"links":{"next":"https://a.klaviyo.com/api/profiles?page%5Bcursor%5D=again"}}"#,
        )
    });
    let (code, _, err) =
        run(cmd(Some(&same.url), Some(FAKE_KEY)).args(["call", "get_profiles", "--all-pages"]));
    assert_eq!(code, 7, "{err}");
    assert!(
        err.contains("returned before") && err.contains("to avoid a loop"),
        "{err}"
    );
    assert!(
        same.requests().len() <= 3,
        "stopped at once: {}",
        same.requests().len()
    );
    // A next link without a cursor: there is more, and no way to get it — say so.
    let odd = Server::start(|_| {
        Reply::json(
            200,
            r#"{"data":[{"type":"profile","id":"P1"}],"links":{"next":"https://a.klaviyo.com/api/profiles?offset=5"}}"#,
        )
    });
    let (code, _, err) =
        run(cmd(Some(&odd.url), Some(FAKE_KEY)).args(["call", "get_profiles", "--all-pages"]));
    assert_eq!(code, 7, "{err}");
    assert!(err.contains("without a page cursor"), "{err}");
}

#[test]
fn arguments_as_people_type_them() {
    let server = Server::ok();
    let url = server.url.clone();
    // Lists from commas, numbers as the schema wants them.
    let (code, _, err) = run(cmd(Some(&url), Some(FAKE_KEY)).args([
        "call",
        "get_profiles",
        "fields_profile=email,first_name",
        "page_size=5",
    ]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        server.requests()[0].target,
        "/api/profiles?fields%5Bprofile%5D=email,first_name&page%5Bsize%5D=5"
    );
    // Every problem at once, each with its field; nothing sent.
    let (code, out, _) = run(cmd(Some(&url), Some(FAKE_KEY)).args([
        "--json",
        "call",
        "get_profiles",
        "page_size=500",
        "sort=bogus",
        "page_sise=1",
    ]));
    assert_eq!(code, 2);
    let v: Value = serde_json::from_str(&out).unwrap();
    let fields: Vec<&str> = v["error"]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["page_sise"], "unknown names first: {v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("did you mean `page_size`"),
        "{v}"
    );
    let (code, _, err) = run(cmd(Some(&url), Some(FAKE_KEY)).args([
        "call",
        "get_profiles",
        "page_size=500",
        "sort=bogus",
    ]));
    assert_eq!(code, 2);
    assert!(
        err.contains("`page_size`") && err.contains("`sort`"),
        "both at once: {err}"
    );
    // Where an argument belongs, and the nearest action name.
    let (_, _, err) =
        run(cmd(Some(&url), Some(FAKE_KEY)).args(["call", "create_coupon_code", "coupon_id=C1"]));
    assert!(
        err.contains("body.data.relationships.coupon.data.id"),
        "{err}"
    );
    let (code, _, err) = run(cmd(Some(&url), Some(FAKE_KEY)).args(["call", "get_profils"]));
    assert_eq!(code, 2);
    assert!(
        err.contains("did you mean `get_profile`, `get_profiles`?"),
        "{err}"
    );
    // Duplicates are an error, not last-wins.
    let (code, _, err) =
        run(cmd(Some(&url), Some(FAKE_KEY)).args(["call", "get_list", "id=A", "id=B"]));
    assert_eq!(code, 2);
    assert!(err.contains("given twice"), "{err}");
    // --args @- reads standard input.
    let mut c = cmd(Some(&url), Some(FAKE_KEY));
    c.args(["call", "get_list", "--args", "@-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(br#"{"id": "FromStdin"}"#)
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        server.requests().last().unwrap().target,
        "/api/lists/FromStdin"
    );
    assert_eq!(server.requests().len(), 2, "nothing else was sent");
    // An image from a file, shown as the host parsed the multipart body.
    let d = dir();
    let logo = d.0.join("logo.gif");
    std::fs::write(&logo, b"GIF89a\x01\x00\x01\x00").unwrap();
    let (code, out, err) = run(cmd(None, None)
        .args(["call", "upload_image_from_file", "--dry-run", "name=Logo"])
        .arg(format!("file=@{}", logo.display())));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("\"multipart\"")
            && out.contains("\"name\": \"file\"")
            && out.contains("\"bytes\": 10"),
        "{out}"
    );
}

#[test]
fn json_output_is_one_envelope_with_the_http_status_and_request_id() {
    let server = Server::start(|r| {
        if r.path() == "/api/lists/missing" {
            Reply::json(
                404,
                r#"{"errors":[{"code":"not_found","title":"Not found","detail":"no such list"}]}"#,
            )
            .with_header("x-klaviyo-req-id", "req-404")
        } else {
            Reply::json(200, r#"{"data":[]}"#).with_header("x-klaviyo-req-id", "req-200")
        }
    });
    let (code, out, _) =
        run(cmd(Some(&server.url), Some(FAKE_KEY)).args(["--json", "call", "get_lists"]));
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (
            v["ok"].clone(),
            v["http"]["status"].clone(),
            v["http"]["request_id"].clone()
        ),
        (json!(true), json!(200), json!("req-200"))
    );
    let (code, out, _) = run(cmd(Some(&server.url), Some(FAKE_KEY)).args([
        "--json",
        "call",
        "get_list",
        "id=missing",
    ]));
    assert_eq!(code, 5);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(
        (v["error"]["kind"].clone(), v["error"]["status"].clone()),
        (json!("http"), json!(404))
    );
    assert_eq!(v["http"]["request_id"], "req-404");
    // `tools --json` is the same envelope; the footer goes to stderr in text mode.
    let (_, out, _) = run(cmd(None, None).args(["--json", "tools", "--tag", "lists"]));
    let v: Value = serde_json::from_str(&out).unwrap();
    assert!(
        v["ok"] == true
            && v["result"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t["name"] == "get_lists")
    );
    let (_, out, err) = run(cmd(None, None).args(["tools"]));
    assert!(
        !out.contains("of 351 tools") && err.contains("351 of 351 tools"),
        "{err}"
    );
}

use serde_json::json;

#[test]
fn a_copied_binary_runs_its_built_in_component() {
    let d = dir();
    let bin = d.0.join("klaviyo-harness");
    std::fs::copy(BIN, &bin).unwrap();
    let mut c = Command::new(&bin);
    clean_env(&mut c, None, None);
    let (code, out, err) = run(c.args(["call", "get_lists", "--dry-run"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("GET https://a.klaviyo.com/api/lists"), "{out}");
    let mut c = Command::new(&bin);
    clean_env(&mut c, None, None);
    let (code, _, err) = run(c.args([
        "call",
        "get_lists",
        "--dry-run",
        "--component",
        "/nonexistent/klaviyo_connector.wasm",
    ]));
    assert_eq!(code, 4, "a missing component is not configured: {err}");
    assert!(
        err.contains("--component") && err.contains("KLAVIYO_COMPONENT"),
        "{err}"
    );
}

#[test]
fn check_shows_the_setup_and_warns_about_the_policy_and_revision() {
    let server = Server::start(|r| {
        if r.path() == "/api/accounts" {
            Reply::json(
                403,
                r#"{"errors":[{"code":"permission_denied","title":"no","detail":"missing scope"}]}"#,
            )
        } else {
            Reply::json(200, r#"{"data":[]}"#)
        }
    });
    let d = dir();
    let _policy = write(&d.0, "policy.toml", "[defaults]\nwrite = \"allow\"\n[[rules]]\ntools = \"*_list\"\ndecision = \"allow\"\n[[rules]]\ntools = \"get_accounts\"\ndecision = \"deny\"\n");
    let config = write(
        &d.0,
        "config.toml",
        &format!(
            "policy = \"policy.toml\"\naudit_log = \"audit.jsonl\"\nrevision = \"2024-02-15\"\n"
        ),
    );
    let (code, out, _) = run(cmd(Some(&server.url), Some(FAKE_KEY))
        .args(["--json", "check", "--config"])
        .arg(&config));
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["config_file"], json!(config.display().to_string()));
    assert!(
        v["component"].as_str().unwrap().starts_with("built in"),
        "{v}"
    );
    assert_eq!(
        v["audit_log"],
        json!(d.0.join("audit.jsonl").display().to_string())
    );
    assert!(v["cache_dir"].is_string());
    let warnings = v["warnings"].to_string();
    assert!(
        warnings.contains("delete_list") && warnings.contains("does not apply"),
        "the floor holds a glob: {warnings}"
    );
    assert!(warnings.contains("retired"), "{warnings}");
    assert_eq!(v["revision"]["status"], "retired");
    assert_eq!(code, 4, "a retired revision is not a working setup");
    // The key was checked with a read the policy allows (get_accounts is denied here).
    assert!(v["detail"].as_str().unwrap().contains("get_lists"), "{v}");
    assert!(server
        .requests()
        .iter()
        .all(|r| r.path() != "/api/accounts"));
    // A key without accounts:read is still a working key.
    let (code, out, _) = run(cmd(Some(&server.url), Some(FAKE_KEY)).args(["--json", "check"]));
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(code, 0, "{v}");
    assert!(
        v["detail"].as_str().unwrap().contains("lacks the scope"),
        "{v}"
    );
}

#[test]
fn the_first_compile_says_so_on_a_terminal() {
    let d = dir();
    let line = format!("{BIN} call get_lists --dry-run");
    let mut c = Command::new("script");
    c.args(["-qec", &line, "/dev/null"]);
    clean_env(&mut c, None, None);
    c.env("KLAVIYO_CACHE_DIR", d.0.join("fresh-cache"));
    let (code, out, _) = run(&mut c);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("Compiling the component for this machine"),
        "{out}"
    );
    // Cached now: no notice.
    let mut c = Command::new("script");
    c.args(["-qec", &line, "/dev/null"]);
    clean_env(&mut c, None, None);
    c.env("KLAVIYO_CACHE_DIR", d.0.join("fresh-cache"));
    let (_, out, _) = run(&mut c);
    assert!(!out.contains("Compiling"), "{out}");
}

#[test]
fn describe_is_compact_for_people_and_the_schema_is_on_request() {
    let (code, out, _) = run(cmd(None, None).args(["describe", "create_flow"]));
    assert_eq!(code, 0);
    assert!(out.len() < 8 * 1024, "{} bytes", out.len());
    assert!(
        out.contains("Example:") && out.contains("--path") && !out.contains("\\n"),
        "{out}"
    );
    let (code, out, _) = run(cmd(None, None).args(["describe", "create_flow", "--schema"]));
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert!(
        v["$defs"].is_object() && out.len() > 100_000,
        "the full schema"
    );
    let (code, _, err) = run(cmd(None, None).args([
        "describe",
        "create_flow",
        "--path",
        "body.data.attributes.nope",
    ]));
    assert_eq!(code, 2);
    assert!(err.contains("valid keys"), "{err}");
}

#[test]
fn settings_that_would_leak_or_mislead_are_refused_up_front() {
    // Plain http to another machine: refused, dry runs too.
    let (code, _, err) =
        run(cmd(Some("http://a.klaviyo.com"), None).args(["call", "get_lists", "--dry-run"]));
    assert_eq!(code, 2);
    assert!(err.contains("clear text"), "{err}");
    // A policy rule that matches nothing: refused, with the nearest names.
    let d = dir();
    let policy = write(
        &d.0,
        "p.toml",
        "[[rules]]\ntools = \"send-campain\"\ndecision = \"deny\"\n",
    );
    let (code, _, err) = run(cmd(None, None)
        .args(["call", "get_lists", "--dry-run", "--policy"])
        .arg(&policy));
    assert_eq!(code, 2);
    assert!(
        err.contains("matches no action") && err.contains("send_campaign"),
        "{err}"
    );
    // Unknown config keys are refused, naming them.
    let config = write(&d.0, "c.toml", "base_ulr = \"https://a.klaviyo.com\"\n");
    let (code, _, err) = run(cmd(None, None).args(["check", "--config"]).arg(&config));
    assert_eq!(code, 2);
    assert!(err.contains("base_ulr"), "{err}");
}

#[test]
fn a_planted_precompiled_artifact_is_never_loaded() {
    use std::os::unix::fs::PermissionsExt;
    let server = Server::ok();
    let d = dir();
    std::fs::set_permissions(&d.0, std::fs::Permissions::from_mode(0o700)).unwrap();
    let (cache, other) = (d.0.join("cache"), d.0.join("other"));
    let hostile =
        klaviyo_harness::runtime::default_component_path().with_file_name("hostile_guest.wasm");
    let run_with = |cache: &Path, extra: &[&str]| {
        let mut c = cmd(Some(&server.url), Some(FAKE_KEY));
        c.env("KLAVIYO_CACHE_DIR", cache)
            .args(["call", "get_lists"])
            .args(extra);
        run(&mut c)
    };
    // The connector's artifact, and the hostile guest's under another cache.
    assert_eq!(run_with(&cache, &[]).0, 0);
    let (code, _, _) = run_with(&other, &["--component", hostile.to_str().unwrap()]);
    assert_eq!(code, 2, "the hostile guest knows no get_lists");
    let art = |dir: &Path| {
        std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "cwasm"))
            .unwrap()
    };
    let target = art(&cache);
    // Plant the hostile artifact under the connector's name, writable by others: ignored.
    std::fs::copy(art(&other), &target).unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o666)).unwrap();
    let before = server.requests().len();
    let (code, _, err) = run_with(&cache, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("ignoring the cached artifact"), "{err}");
    assert_eq!(
        server.requests().len(),
        before + 1,
        "the real component ran"
    );
    // Positive control: the same artifact as a private file of ours is trusted (and would have
    // been run): the test can tell.
    std::fs::copy(art(&other), &target).unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (code, _, _) = run_with(&cache, &[]);
    assert_eq!(
        code, 2,
        "the planted (hostile) code ran: the check above is what stopped it"
    );
    // A cache directory others can write to is not used at all.
    let open = d.0.join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let (code, _, err) = run_with(&open, &[]);
    assert_eq!(code, 0);
    assert!(err.contains("not using the precompiled cache"), "{err}");
    assert_eq!(
        std::fs::read_dir(&open).unwrap().count(),
        0,
        "nothing written there"
    );
    // Without any cache location: no cache, and never a shared temp dir.
    let mut c = cmd(Some(&server.url), Some(FAKE_KEY));
    c.env_remove("HOME")
        .env_remove("XDG_CACHE_HOME")
        .env_remove("KLAVIYO_CACHE_DIR")
        .args(["call", "get_lists"]);
    let (code, _, err) = run(&mut c);
    assert_eq!(code, 0);
    assert!(err.contains("no cache directory is known"), "{err}");
}

/// Agents often run the CLI once per action: separate processes must draw on one pacing budget
/// per account (the state directory) instead of each starting afresh. Eight processes started
/// at once for an action limited to 1/s (15 a day) reach the server about a second apart, and a
/// second batch of eight continues the day's count: seven more are sent, the eighth is refused.
#[test]
fn separate_processes_share_one_pacing_budget_and_daily_cap() {
    use std::os::unix::fs::DirBuilderExt;
    let tool = klaviyo_catalog::tools::Tool::resolve("create_custom_metric").unwrap();
    let limit = tool.rate_limit();
    assert_eq!(
        (limit.burst_per_second, limit.steady_per_minute, limit.daily),
        (1, 15, Some(15))
    );
    let args = klaviyo_catalog::example::example_args(tool, false).to_string();
    let server = Server::start(|_| {
        Reply::json(
            201,
            r#"{"data":{"type":"custom-metric","id":"CM1","attributes":{"name":"x"}}}"#,
        )
    });
    let d = dir();
    let state = d.0.join("state");
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&state)
        .unwrap();
    let policy = write(
        &d.0,
        "policy.toml",
        "[[rules]]\ntools = \"create_custom_metric\"\ndecision = \"allow\"\n",
    );
    let call = || {
        let mut c = cmd(Some(&server.url), Some(FAKE_KEY));
        c.env("KLAVIYO_STATE_DIR", &state)
            .env("KLAVIYO_POLICY", &policy)
            .args(["call", "create_custom_metric", "--args", &args]);
        c
    };
    // Compile the component into the cache first, so that the processes start together.
    let (code, out, err) = run(call().arg("--dry-run"));
    assert_eq!(code, 0, "{out}{err}");
    let batch = || {
        std::thread::scope(|s| {
            let procs: Vec<_> = (0..8).map(|_| s.spawn(|| run(&mut call()))).collect();
            procs
                .into_iter()
                .map(|p| p.join().unwrap())
                .collect::<Vec<_>>()
        })
    };
    // Arrival times one second apart, allowing for latency on a busy machine (the pacer spaces
    // sends 1.03 s apart; unshared, all eight would arrive within a fraction of a second).
    let assert_paced = |n: usize| {
        let mut times = server.times();
        times.sort();
        assert_eq!(times.len(), n);
        for w in times.windows(2) {
            assert!(
                w[1] - w[0] >= std::time::Duration::from_millis(900),
                "two requests within {:?}: {:?}",
                w[1] - w[0],
                times.iter().map(|t| *t - times[0]).collect::<Vec<_>>()
            );
        }
    };
    let first = batch();
    for (code, out, err) in &first {
        assert_eq!(*code, 0, "{out}{err}");
    }
    assert_paced(8);
    let times = server.times();
    let span = *times.iter().max().unwrap() - *times.iter().min().unwrap();
    assert!(
        span >= std::time::Duration::from_secs(7),
        "8 requests at 1/s: {span:?}"
    );
    // A second batch: the day's count goes on from 8, so only 7 more fit under 15.
    let second = batch();
    let refused: Vec<_> = second.iter().filter(|(code, ..)| *code != 0).collect();
    assert_eq!(refused.len(), 1, "{second:?}");
    let (code, out, err) = refused[0];
    assert_eq!(*code, 6, "throttled: {out}{err}");
    assert!(
        format!("{out}{err}").contains("daily limit of 15"),
        "{out}{err}"
    );
    assert_paced(15);
}

/// The harness against `server` with the key, this policy and an audit log in `d`: the log's
/// path, and a runner of one command line.
fn audited(
    d: &TempDir,
    server: &Server,
    policy: &str,
) -> (PathBuf, impl Fn(&[&str]) -> (i32, String, String)) {
    let audit = d.0.join("audit.jsonl");
    let policy = write(&d.0, "policy.toml", policy);
    let (url, log) = (server.url.clone(), audit.clone());
    let runner = move |args: &[&str]| {
        let mut c = cmd(Some(&url), Some(FAKE_KEY));
        c.arg("--audit-log").arg(&log).arg("--policy").arg(&policy);
        c.args(args);
        run(&mut c)
    };
    (audit, runner)
}

/// The audit log of a realistic session, made through real calls against a local server (reads,
/// a 404, a 429 retried, a write that landed, a write whose answer was lost, denials the agent
/// kept retrying, an `ask` nobody could answer), read back by `report`: every figure exact,
/// the hash chain whole, and the HTML page self-contained. The page is kept in target/tmp for
/// the headless-browser check (`tests/report/run.sh`).
#[test]
fn report_reads_back_what_the_calls_did() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let metrics = AtomicUsize::new(0);
    let server = Server::start(move |r| match (r.method.as_str(), r.path()) {
        ("GET", "/api/lists") => Reply::json(200, r#"{"data":[]}"#),
        ("GET", "/api/lists/missing") => Reply::json(
            404,
            r#"{"errors":[{"code":"not_found","title":"Not found","detail":"no list"}]}"#,
        ),
        ("GET", "/api/metrics") if metrics.fetch_add(1, Ordering::SeqCst) == 0 => {
            Reply::json(429, r#"{"errors":[]}"#).with_header("retry-after", "1")
        }
        ("GET", "/api/metrics") => Reply::json(200, r#"{"data":[]}"#),
        ("POST", "/api/lists/L1/relationships/profiles") => Reply::json(204, ""),
        ("POST", "/api/lists") => {
            Reply::json(201, r#"{"data":{"type":"list","id":"L9"}}"#).with(Behavior::Drop)
        }
        _ => Reply::json(500, "{}"),
    });
    let d = dir();
    let (audit, harness) = audited(
        &d,
        &server,
        "[[rules]]\ntools = \"add_profiles_to_list\"\ndecision = \"allow\"\n\n[[rules]]\ntools = \"create_list\"\ndecision = \"allow\"\n\n[[rules]]\ntools = \"create_tag\"\ndecision = \"ask\"\n",
    );
    let call = |args: &[&str]| harness(&[&["call"], args].concat()).0;
    for _ in 0..3 {
        assert_eq!(call(&["get_lists"]), 0);
    }
    assert_eq!(call(&["get_list", "id=missing"]), 5);
    assert_eq!(call(&["get_metrics"]), 0);
    assert_eq!(
        call(&[
            "add_profiles_to_list",
            "--args",
            r#"{"id":"L1","body":{"data":[{"type":"profile","id":"P1"}]}}"#
        ]),
        0
    );
    assert_eq!(
        call(&["create_list", "--args", r#"{"body":{"name":"VIP"}}"#]),
        8
    );
    for _ in 0..3 {
        assert_eq!(
            call(&[
                "update_list",
                "--args",
                r#"{"id":"L1","body":{"name":"x"}}"#
            ]),
            3
        );
    }
    assert_eq!(
        call(&["create_tag", "--args", r#"{"body":{"name":"t"}}"#]),
        3
    );

    let report = |extra: &[&str]| {
        let mut c = cmd(None, None);
        c.args(["report", "--log"]).arg(&audit).args(extra);
        run(&mut c)
    };
    let (code, out, err) = report(&["--json"]);
    assert_eq!(code, 0, "{err}");
    let r: Value = serde_json::from_str(&out).unwrap();
    let r = &r["result"];
    assert_eq!(r["skipped"], json!([]));
    assert_eq!(
        r["totals"],
        json!({"calls": 11,
               "by_access": {"read": 5, "write": 6},
               "by_outcome": {"ok": 5, "http-404": 1, "outcome-unknown": 1, "denied": 3, "unconfirmed": 1}})
    );
    assert_eq!(
        r["asked"],
        json!({"approved": 0, "declined": 0, "unconfirmed": 1})
    );
    assert_eq!(r["throttling"]["klaviyo_429s"], 1);
    assert_eq!(r["throttling"]["retries"], 1);
    assert_eq!(r["throttling"]["held_back"], 0);
    assert_eq!(r["days"].as_array().unwrap().len(), 1);
    assert_eq!(r["first_week"][0]["calls"], 11);
    assert_eq!(r["first_week"][0]["writes_ok"], 1);
    let writes = r["writes"].as_array().unwrap();
    assert_eq!(writes.len(), 1);
    assert_eq!(writes[0]["operation"], "add_profiles_to_list");
    assert_eq!(writes[0]["ids"], json!(["L1"]));
    assert_eq!(writes[0]["status"], 204);
    let tools = r["tools"].as_array().unwrap();
    assert_eq!(
        (tools[0]["action"].as_str(), tools[0]["calls"].as_u64()),
        (Some("get_lists"), Some(3))
    );
    let update = tools.iter().find(|t| t["action"] == "update_list").unwrap();
    assert_eq!(
        (update["calls"].as_u64(), update["p50_ms"].as_u64()),
        (Some(3), None)
    );
    assert!(tools.iter().find(|t| t["action"] == "get_lists").unwrap()["p95_ms"].is_u64());
    let kinds: Vec<&str> = r["needs_attention"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["denied-retries", "error-rate", "outcome-unknown"]);
    let attention = r["needs_attention"].to_string();
    assert!(
        attention.contains("update_list was denied 3 times"),
        "{attention}"
    );
    assert!(attention.contains("2 of 7 requests failed"), "{attention}");
    assert!(
        attention.contains("POST /api/lists may or may not have happened; check with `get_lists`"),
        "{attention}"
    );

    // The text report carries the same figures.
    let (code, text, _) = report(&[]);
    assert_eq!(code, 0);
    assert!(text.contains("Total: 11 calls (read 5, write 6): denied 3, http-404 1, ok 5, outcome-unknown 1, unconfirmed 1"), "{text}");
    assert!(
        text.contains("Asked: 0 approved, 0 declined, 1 could not be asked"),
        "{text}"
    );

    // The chain holds, then breaks where a line is changed.
    let (code, out, _) = report(&["--verify"]);
    assert_eq!(code, 0, "{out}");
    let lines = std::fs::read_to_string(&audit).unwrap().lines().count();
    assert!(
        out.contains(&format!("the chain holds: {lines} records in 1 file(s)")),
        "{out}"
    );
    let html = d.0.join("report.html");
    let (code, _, _) = report(&["--format", "html", "--out", html.to_str().unwrap()]);
    assert_eq!(code, 0);
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains("<svg id=\"calls-per-day\"")
            && page.contains("<svg id=\"latency-per-action\"")
    );
    // Nothing to fetch: no script, no linked or embedded resource.
    assert!(!page.contains("<script") && !page.contains(" src=") && !page.contains(" href="));
    std::fs::copy(
        &html,
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-sample.html"),
    )
    .unwrap();

    let tampered =
        std::fs::read_to_string(&audit)
            .unwrap()
            .replacen("\"status\":404", "\"status\":200", 1);
    std::fs::write(&audit, tampered).unwrap();
    let (code, out, _) = report(&["--verify"]);
    assert_eq!(code, 9, "{out}");
    assert!(
        out.contains("the chain is broken:") && out.contains("the hash does not match"),
        "{out}"
    );
    // A corrupt line is reported with its number and skipped, never fatal.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&audit)
        .unwrap();
    std::io::Write::write_all(&mut f, b"{\"time\":\"2026-").unwrap();
    let (code, out, _) = report(&["--json"]);
    assert_eq!(code, 0);
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        r["result"]["skipped"][0]["line"].as_u64(),
        Some(lines as u64 + 1)
    );
    assert_eq!(r["result"]["totals"]["calls"], 11);
}

#[test]
fn report_without_a_log_says_how_to_turn_auditing_on() {
    let (code, _, err) = run(cmd(None, None).args(["report"]));
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("--audit-log PATH"), "{err}");
    let (code, _, err) = run(cmd(None, None).args(["report", "--log", "/nonexistent/audit.jsonl"]));
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("no audit log at /nonexistent/audit.jsonl: turn auditing on"),
        "{err}"
    );
    let (code, _, err) =
        run(cmd(None, None).args(["report", "--log", "x", "--since", "yesterday"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--since"), "{err}");
}

/// Writes whose answers were lost are settled by reads, never by sending them again: an update
/// whose resource is there, a deletion whose resource is gone, a create the log cannot
/// identify (left pending, exit 8, tried again next time); `report` then lists only that one.
#[test]
fn reconcile_settles_unknown_writes_with_reads_only() {
    let server = Server::start(|r| match (r.method.as_str(), r.path()) {
        ("GET", "/api/lists/L1") => Reply::json(200, r#"{"data":{"type":"list","id":"L1"}}"#),
        ("GET", "/api/lists/L2") => Reply::json(
            404,
            r#"{"errors":[{"code":"not_found","title":"Not found","detail":"no list"}]}"#,
        ),
        // Every write's answer is lost.
        _ => Reply::json(200, "{}").with(Behavior::Drop),
    });
    let d = dir();
    let (audit, harness) = audited(
        &d,
        &server,
        "[[rules]]\ntools = \"update_list\"\ndecision = \"allow\"\n\n[[rules]]\ntools = \"delete_list\"\ndecision = \"allow\"\n\n[[rules]]\ntools = \"create_list\"\ndecision = \"allow\"\n",
    );
    let body = r#"{"id":"L1","body":{"name":"x"}}"#;
    assert_eq!(harness(&["call", "update_list", "--args", body]).0, 8);
    assert_eq!(harness(&["call", "delete_list", "id=L2"]).0, 8);
    assert_eq!(
        harness(&[
            "call",
            "create_list",
            "--args",
            r#"{"body":{"name":"VIP"}}"#
        ])
        .0,
        8
    );
    let writes = || {
        server
            .requests()
            .iter()
            .filter(|r| r.method != "GET")
            .count()
    };
    assert_eq!(writes(), 3);

    let (code, out, err) = harness(&["--json", "reconcile"]);
    assert_eq!(code, 8, "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let got: Vec<(&str, &str)> = v["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["operation"].as_str().unwrap(),
                r["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("update_list", "found"),
            ("delete_list", "not-found"),
            ("create_list", "could-not-check")
        ]
    );
    assert!(v["result"][1]["text"]
        .as_str()
        .unwrap()
        .contains("the deletion happened"));
    assert_eq!(writes(), 3, "reconcile never sends a write");

    // Settled ones are not checked again; the create is.
    let (code, out, _) = harness(&["--json", "reconcile"]);
    assert_eq!(code, 8, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["result"].as_array().unwrap().len(), 1);
    assert_eq!(v["result"][0]["operation"], "create_list");
    assert_eq!(writes(), 3);

    let (_, out, _) = harness(&["report", "--json", "--log", audit.to_str().unwrap()]);
    let r: Value = serde_json::from_str(&out).unwrap();
    let unknown: Vec<&Value> = r["result"]["needs_attention"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["kind"] == "outcome-unknown")
        .collect();
    assert_eq!(unknown.len(), 1);
    assert!(unknown[0]["what"]
        .as_str()
        .unwrap()
        .starts_with("POST /api/lists "));
    let (code, out, _) = harness(&["report", "--verify"]);
    assert_eq!(code, 0, "{out}");
}

/// An agency's config: two accounts as named connections, each reached at its own base URL with
/// its own key (which wins over a KLAVIYO_API_KEY that could belong to any account), picked by
/// --connection or KLAVIYO_CONNECTION; `check --all` checks both; the audit records say which
/// connection made them and `report --connection` keeps to one.
#[test]
fn named_connections_reach_their_own_account_with_their_own_key() {
    let (a, b) = (Server::ok(), Server::ok());
    let d = dir();
    let cfg = write(
        &d.0,
        "config.toml",
        &format!(
            "audit_log = \"audit.jsonl\"\n\n[connections.acme]\nbase_url = \"{}\"\nkey_command = \"echo pk_acme_1\"\n\n[connections.beta]\nbase_url = \"{}\"\nkey_command = \"echo pk_beta_2\"\n",
            a.url, b.url
        ),
    );
    let harness = |args: &[&str], connection_env: Option<&str>| {
        let mut c = cmd(None, Some(FAKE_KEY));
        c.arg("--config").arg(&cfg).args(args);
        if let Some(n) = connection_env {
            c.env("KLAVIYO_CONNECTION", n);
        }
        run(&mut c)
    };
    assert_eq!(
        harness(&["--connection", "acme", "call", "get_lists"], None).0,
        0
    );
    assert_eq!(harness(&["call", "get_lists"], Some("beta")).0, 0);
    let (ra, rb) = (a.requests(), b.requests());
    assert_eq!((ra.len(), rb.len()), (1, 1));
    assert_eq!(
        ra[0].header("authorization"),
        Some("Klaviyo-API-Key pk_acme_1")
    );
    assert_eq!(
        rb[0].header("authorization"),
        Some("Klaviyo-API-Key pk_beta_2")
    );

    // --all checks every connection, whatever KLAVIYO_CONNECTION names.
    let (code, out, err) = harness(&["--json", "check", "--all"], Some("beta"));
    assert_eq!(code, 0, "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    for (name, server) in [("acme", &a), ("beta", &b)] {
        let c = &v["result"][name];
        assert_eq!(c["connection"], name);
        assert_eq!(c["base_url"], server.url.as_str());
        assert_eq!(c["key_accepted"], true, "{c}");
    }
    assert_eq!((a.requests().len(), b.requests().len()), (2, 2));

    let (code, _, err) = harness(&["--connection", "acne", "call", "get_lists"], None);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("no connection `acne`") && err.contains("acme, beta"),
        "{err}"
    );

    let calls = |connection: Option<&str>| {
        let mut args = vec!["report", "--json"];
        if let Some(c) = connection {
            args.extend(["--connection", c]);
        }
        let (code, out, err) = harness(&args, None);
        assert_eq!(code, 0, "{err}");
        let r: Value = serde_json::from_str(&out).unwrap();
        r["result"]["totals"]["calls"].as_u64().unwrap()
    };
    assert_eq!(
        (calls(Some("acme")), calls(Some("beta")), calls(None)),
        (2, 2, 4)
    );
}
