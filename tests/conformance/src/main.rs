//! Conformance: every tool of the real component, run in the real harness, against Stoplight
//! Prism validating Klaviyo's official spec (an oracle we did not write).
//!
//! `conformance --prism-dir DIR --shared DIR [--report FILE] [--port N]`
//!
//! 1. Prepares Prism (patch for bracketed query params, spec fix for untyped `nullable`) and
//!    fails if Prism would still leave any request body unvalidated (`static_check.js`).
//! 2. Starts `prism mock` once on 127.0.0.1 (no `--errors`).
//! 3. Calls every operation (and every choice of every composite) twice: with the required
//!    arguments only, and with every optional query feature too; arguments and bodies come from
//!    each tool's own JSON Schema. A call fails on a 4xx or any `sl-violations` entry located in
//!    the `request` (response entries are faults of Klaviyo's examples and are ignored).
//! 4. Negative controls: deliberately broken requests, sent through a test-only path (the
//!    hostile test guest), must be caught — proving the oracle is awake.
//! 5. Prints a coverage table (per tag, and the promised actions) and writes it to `--report`.

use klaviyo_catalog::example::example_args_for;
use klaviyo_catalog::generated::{OPERATIONS, PROMISED};
use klaviyo_catalog::tools::Tool;
use klaviyo_harness::policy::Policy;
use klaviyo_harness::runtime::default_component_path;
use klaviyo_harness::secrets::KeySource;
use klaviyo_harness::{Harness, NoTty, Settings};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

struct Prism(Child);
impl Drop for Prism {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Opts {
    prism_dir: PathBuf,
    shared: PathBuf,
    report: Option<PathBuf>,
    port: u16,
}

fn parse_opts() -> Result<Opts, String> {
    let mut o = Opts {
        prism_dir: ".prism".into(),
        shared: "../shared/klaviyo-openapi".into(),
        report: None,
        port: 4010,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut val = || it.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--prism-dir" => o.prism_dir = val()?.into(),
            "--shared" => o.shared = val()?.into(),
            "--report" => o.report = Some(val()?.into()),
            "--port" => o.port = val()?.parse().map_err(|e| format!("--port: {e}"))?,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(o)
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("conformance: {e}");
            ExitCode::FAILURE
        }
    }
}

fn sh(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!("{cmd:?} failed: {text}"));
    }
    Ok(text)
}

/// Patches Prism, fixes the spec, and checks no body goes unvalidated. Returns the fixed spec.
fn prepare(o: &Opts) -> Result<PathBuf, String> {
    let modules = o.prism_dir.join("node_modules");
    let tools = o.shared.join("prism");
    sh(Command::new("bash")
        .arg(tools.join("patch_prism.sh"))
        .arg(&modules))?;
    let fixed = o.prism_dir.join("stable.prism.json");
    sh(Command::new("python3")
        .arg(tools.join("fix_spec.py"))
        .arg(o.shared.join("stable.json"))
        .arg(&fixed))?;
    let check = sh(Command::new("node")
        .arg(tools.join("static_check.js"))
        .arg(&fixed)
        .env("NODE_PATH", &modules))?;
    let line = check
        .lines()
        .find(|l| l.contains("body NOT validated"))
        .ok_or("static_check.js printed no summary")?;
    println!("static check: {line}");
    let unvalidated: usize = line
        .rsplit(':')
        .next()
        .unwrap_or("")
        .trim()
        .parse()
        .map_err(|_| format!("cannot read: {line}"))?;
    if unvalidated != 0 {
        return Err(format!(
            "Prism would not validate {unvalidated} request bodies:\n{check}"
        ));
    }
    Ok(fixed)
}

fn start_prism(o: &Opts, spec: &Path) -> Result<Prism, String> {
    let bin = o.prism_dir.join("node_modules/.bin/prism");
    let log = std::fs::File::create(o.prism_dir.join("prism.log")).map_err(|e| e.to_string())?;
    let child = Command::new(&bin)
        .args([
            "mock",
            &spec.to_string_lossy(),
            "-p",
            &o.port.to_string(),
            "-h",
            "127.0.0.1",
        ])
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    let prism = Prism(child);
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(180) {
        let text = std::fs::read_to_string(o.prism_dir.join("prism.log")).unwrap_or_default();
        if text.contains("Prism is listening") {
            println!(
                "prism: listening on 127.0.0.1:{} after {:.0?}",
                o.port,
                started.elapsed()
            );
            return Ok(prism);
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    Err("Prism did not start within 180 s (see .prism/prism.log)".into())
}

/// One call's verdict: `None` = conforming, else why not.
fn judge(out: &klaviyo_harness::CallOutcome) -> Option<String> {
    if out.responses.is_empty() {
        return Some(format!(
            "no request reached Prism: {:?}",
            out.result.as_ref().err()
        ));
    }
    for (op, status, headers) in &out.responses {
        let violations = headers
            .get("sl-violations")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let request_violations = request_violations(violations);
        if (400..500).contains(status) || !request_violations.is_empty() {
            return Some(format!(
                "{op}: HTTP {status}; {}",
                request_violations.join("; ")
            ));
        }
    }
    None
}

/// `sl-violations` entries located in the request (the header may be cut off after
/// "Too many violations! "; then any mention of a request location counts).
fn request_violations(header: &str) -> Vec<String> {
    let text = header.trim_start_matches("Too many violations! ");
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Array(items)) => items
            .iter()
            .filter(|v| v["location"][0] == "request")
            .map(|v| format!("{} {}", v["location"], v["message"]))
            .collect(),
        _ if text.contains("\"request\"") => vec![format!("(truncated) {text}")],
        _ => vec![],
    }
}

struct Case {
    tool: Tool,
    choice: usize,
    full: bool,
}

fn run() -> Result<bool, String> {
    let o = parse_opts()?;
    let spec = prepare(&o)?;
    let _prism = start_prism(&o, &spec)?;
    let base = format!("http://127.0.0.1:{}", o.port);
    let mut s = Settings::new(&base)?;
    s.key_source = KeySource::Command("echo pk_conformance_not_a_real_key".into());
    s.public_key = Some("PubKey".into());
    s.policy = Policy::allow_all();
    // Prism builds some answers slowly (a flow with its actions and definition: tens of seconds
    // on the 2-core CI machine, and the 8 calls queued behind it wait too): one CI run had 7
    // flow calls pass the harness's default 60 s first-byte limit. Requests are what is judged
    // here, not Prism's speed.
    s.timeouts.first_byte = Duration::from_secs(300);
    s.timeouts.call = Duration::from_secs(360);
    let harness = Harness::new(s.clone(), &default_component_path(), Box::new(NoTty))
        .map_err(|e| format!("{e:#}"))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;

    let mut cases = Vec::new();
    for t in Tool::all() {
        for choice in 0..t.operations().len() {
            for full in [false, true] {
                cases.push(Case {
                    tool: t,
                    choice,
                    full,
                });
            }
        }
    }
    let started = Instant::now();
    let results: Vec<(String, Option<String>)> = rt.block_on(async {
        let mut out = Vec::new();
        for chunk in cases.chunks(8) {
            let futs = chunk.iter().map(|c| {
                let args = example_args_for(c.tool, c.choice, c.full);
                let h = &harness;
                async move {
                    let r = h.call(c.tool.name(), &args.to_string()).await;
                    let op = c.tool.operations()[c.choice].id.to_string();
                    (
                        op,
                        judge(&r).map(|why| {
                            format!(
                                "{} ({}) args {args}: {why}",
                                c.tool.name(),
                                if c.full { "full" } else { "required" }
                            )
                        }),
                    )
                }
            });
            out.extend(futures_join(futs).await);
        }
        out
    });
    println!("{} calls in {:.1?}", results.len(), started.elapsed());

    // Per operation: conforming when every call that reached it conformed.
    let mut failures: Vec<String> = Vec::new();
    let mut bad_ops: BTreeSet<String> = BTreeSet::new();
    let mut exercised: BTreeSet<String> = BTreeSet::new();
    for (op, verdict) in &results {
        exercised.insert(op.clone());
        if let Some(why) = verdict {
            bad_ops.insert(op.clone());
            failures.push(why.clone());
        }
    }

    let controls = negative_controls(&rt, &s, &base)?;

    let mut report = String::new();
    let _ = writeln!(
        report,
        "# Conformance against Klaviyo's spec (Prism 5.14.2, patched; spec fixed)\n"
    );
    let _ = writeln!(
        report,
        "| tag | operations | exercised | conforming |\n|---|---:|---:|---:|"
    );
    let mut by_tag: BTreeMap<&str, (usize, usize, usize)> = BTreeMap::new();
    for op in OPERATIONS {
        let e = by_tag.entry(op.tag).or_default();
        e.0 += 1;
        if exercised.contains(op.id) {
            e.1 += 1;
            if !bad_ops.contains(op.id) {
                e.2 += 1;
            }
        }
    }
    let (mut t0, mut t1, mut t2) = (0, 0, 0);
    for (tag, (n, ex, ok)) in &by_tag {
        let _ = writeln!(report, "| {tag} | {n} | {ex} | {ok} |");
        t0 += n;
        t1 += ex;
        t2 += ok;
    }
    let _ = writeln!(report, "| **all** | **{t0}** | **{t1}** | **{t2}** |\n");
    let promised_ok = PROMISED
        .iter()
        .filter(|(_, tool)| {
            Tool::resolve(tool).is_ok_and(|t| {
                t.operations()
                    .iter()
                    .all(|op| exercised.contains(op.id) && !bad_ops.contains(op.id))
            })
        })
        .count();
    let _ = writeln!(
        report,
        "Promised actions conforming: **{promised_ok}/{}**\n",
        PROMISED.len()
    );
    let caught = controls.iter().filter(|c| c.1).count();
    let _ = writeln!(
        report,
        "Negative controls caught: **{caught}/{}**\n",
        controls.len()
    );
    for (name, ok, detail) in &controls {
        let _ = writeln!(
            report,
            "- {} {name}: {detail}",
            if *ok { "caught" } else { "MISSED" }
        );
    }
    if !failures.is_empty() {
        let _ = writeln!(report, "\n## Failures\n");
        for f in &failures {
            let _ = writeln!(report, "- {f}");
        }
    }
    println!("{report}");
    if let Some(p) = &o.report {
        if let Some(dir) = p.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        std::fs::write(p, &report).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    let ok_calls = results.iter().filter(|r| r.1.is_none()).count();
    println!(
        "conformance: {} passed, {} failed",
        ok_calls + caught,
        results.len() - ok_calls + controls.len() - caught
    );
    Ok(failures.is_empty()
        && caught == controls.len()
        && t2 == OPERATIONS.len()
        && promised_ok == PROMISED.len())
}

async fn futures_join<F: std::future::Future>(futs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let handles: Vec<_> = futs.collect();
    let mut out = Vec::with_capacity(handles.len());
    // Poll them together: a small join without extra dependencies.
    let mut pinned: Vec<std::pin::Pin<Box<F>>> = handles.into_iter().map(Box::pin).collect();
    let mut done: Vec<Option<F::Output>> = (0..pinned.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if done[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => done[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.extend(done.into_iter().map(|d| d.unwrap()));
    out
}

/// Broken requests sent through the hostile test guest (which bypasses the component's own
/// validation); each must be caught by Prism. Returns (name, caught, detail).
fn negative_controls(
    rt: &tokio::runtime::Runtime,
    s: &Settings,
    base: &str,
) -> Result<Vec<(String, bool, String)>, String> {
    let path = default_component_path().with_file_name("hostile_guest.wasm");
    let h = Harness::new(s.clone(), &path, Box::new(NoTty)).map_err(|e| format!("{e:#}"))?;
    let auth = format!(
        "Klaviyo-API-Key {}",
        klaviyo_harness::egress::KEY_PLACEHOLDER
    );
    let controls = [
        (
            "page[size] over its maximum",
            "get_profiles",
            json!({"method": "GET", "url": format!("{base}/api/profiles?page%5Bsize%5D=1000")}),
        ),
        (
            "unknown sparse field",
            "get_profiles",
            json!({"method": "GET", "url": format!("{base}/api/profiles?fields%5Bprofile%5D=no_such_field")}),
        ),
        (
            "sort value not in the enum",
            "get_campaigns",
            json!({"method": "GET", "url": format!("{base}/api/campaigns?filter=equals(messages.channel,'email')&sort=nonsense")}),
        ),
        (
            "required filter missing",
            "get_campaigns",
            json!({"method": "GET", "url": format!("{base}/api/campaigns")}),
        ),
        (
            "body missing required attribute",
            "create_list",
            json!({"method": "POST", "url": format!("{base}/api/lists"), "body": "{\"data\":{\"type\":\"list\",\"attributes\":{}}}"}),
        ),
        (
            "body with the wrong data.type",
            "create_tag",
            json!({"method": "POST", "url": format!("{base}/api/tags"), "body": "{\"data\":{\"type\":\"list\",\"attributes\":{\"name\":\"x\"}}}"}),
        ),
        (
            "body of a nullable-fixed schema with a wrong type",
            "create_profile",
            json!({"method": "POST", "url": format!("{base}/api/profiles"), "body": "{\"data\":{\"type\":\"profile\",\"attributes\":{\"email\":42}}}"}),
        ),
        (
            "include value not allowed",
            "get_lists",
            json!({"method": "GET", "url": format!("{base}/api/lists?include=nonsense")}),
        ),
    ];
    let mut out = Vec::new();
    for (name, tool, mut req) in controls {
        // Everything else right, so the only defect is the deliberate one: sent as the tool
        // it belongs to (the host lets a call make only its own tool's requests), with the
        // headers the component sets.
        req["hostile"] = json!("forge");
        req["authorization"] = json!(auth);
        req["headers"] = json!({
            "revision": klaviyo_catalog::generated::REVISION,
            "accept": "application/vnd.api+json",
        });
        if req.get("body").is_some() {
            req["headers"]["content-type"] = json!("application/vnd.api+json");
        }
        let r = rt.block_on(h.call(tool, &req.to_string()));
        // Caught only when Prism itself judged the request: a request the host refused
        // never reached the validator, so it proves nothing about it.
        let (caught, detail) = match (&r.result, judge(&r)) {
            (_, Some(_)) if r.responses.is_empty() => (false, format!("not sent: {:?}", r.result)),
            (_, Some(why)) => (true, why),
            (Ok(text), None) => (
                false,
                format!("accepted: {}", text.chars().take(120).collect::<String>()),
            ),
            (Err(e), None) => (false, format!("not sent: {e}")),
        };
        out.push((name.to_string(), caught, detail));
    }
    Ok(out)
}
