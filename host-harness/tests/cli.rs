//! The CLI as scripts and people use it: exit codes, output, policy, confirmation on a TTY,
//! and that the key appears in no output. Needs the component's release build.

#[path = "../../tests/support/mod.rs"]
mod support;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use support::{temp_dir, Reply, Server, TempDir, FAKE_KEY};

const BIN: &str = env!("CARGO_BIN_EXE_klaviyo-harness");

fn dir() -> TempDir {
    temp_dir("kc-cli")
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
    ] {
        c.env_remove(var);
    }
    c.env("HOME", std::env::temp_dir().join("kc-cli-home"));
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
            "no tool is named",
        ),
        (
            vec!["call", "get_lists", "--args", "{oops"],
            Some(FAKE_KEY),
            2,
            "not valid JSON",
        ),
        (vec!["call", "get_list", "id=5"], Some(FAKE_KEY), 2, "`id`"),
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
            "KEY=VALUE",
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
    // Only the two valid reads with a key reached the server.
    let paths: Vec<String> = server.requests().iter().map(|r| r.target.clone()).collect();
    assert_eq!(paths, vec!["/api/lists", "/api/lists/missing"]);
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
        out.contains("lists:write") && out.contains("10/s burst") && out.contains("\"body\""),
        "{out}"
    );
    let (code, _, err) = run(cmd(None, None).args(["describe", "nope_tool"]));
    assert_eq!(code, 2, "{err}");
    let (code, out, _) = run(cmd(None, None).args(["--json", "scopes"]));
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    let scopes: Vec<&str> = v["scopes"]
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
}
