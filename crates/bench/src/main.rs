//! `cargo run --release -p bench [-- --calls N --concurrency C --json PATH]`
//! `cargo run --release -p bench -- --profile native|component|refused --calls N`: only that
//! series, one call at a time, for a sampling profiler (`perf record -g -- target/release/bench …`).
//! `BENCH_NO_AUDIT=1` turns the audit log off, to see what it costs (it is on by default).
//!
//! In one run, against the same local HTTP server on 127.0.0.1:
//! - per-call latency (p50, p99) and throughput of a read tool through the full harness path
//!   (component, egress guard, policy, audit on; pacing off), one call at a time and C at once;
//! - the same request from a native Rust client with keep-alive (the floor), and the ratio;
//! - start-up: precompiled component load → first answered call; cold `Component::new`;
//! - the harness CLI's and MCP server's time to answer and peak RSS (child processes);
//! - the component's size;
//! - the HTTP (edge) build inside wasmtime, as `wasmtime serve` runs it: precompiled, cold
//!   instantiate → first `tools/list` answered; and its size.
//!
//! Prints a table and writes it as JSON (default `target/bench.json`).

mod serve;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use klaviyo_harness::policy::Policy;
use klaviyo_harness::runtime::default_component_path;
use klaviyo_harness::secrets::KeySource;
use klaviyo_harness::{Harness, NoTty, Settings};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

const BODY: &str = r#"{"data":[{"type":"list","id":"Y6nRLr","attributes":{"name":"Newsletter","created":"2026-01-01T00:00:00+00:00","updated":"2026-01-02T00:00:00+00:00","opt_in_process":"double_opt_in"},"relationships":{"profiles":{"links":{"self":"https://a.klaviyo.com/api/lists/Y6nRLr/relationships/profiles/"}}},"links":{"self":"https://a.klaviyo.com/api/lists/Y6nRLr/"}}],"links":{"self":"https://a.klaviyo.com/api/lists/","next":null,"prev":null}}"#;
const KEY: &str = "pk_bench_not_a_real_key";

/// Connections the bench server accepted (keep-alive means a handful, whatever the calls).
static CONNECTIONS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A minimal keep-alive HTTP/1.1 server answering every request with `BODY`.
async fn server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            CONNECTIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(|_req| async {
                    Ok::<_, std::convert::Infallible>(
                        http::Response::builder()
                            .header("content-type", "application/vnd.api+json")
                            .body(Full::new(Bytes::from_static(BODY.as_bytes())))
                            .unwrap(),
                    )
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    url
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

struct Series {
    p50: Duration,
    p99: Duration,
    per_sec: f64,
}

async fn measure<F, Fut>(n: usize, concurrency: usize, f: F) -> Series
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let f = Arc::new(f);
    let began = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..concurrency {
        let f = f.clone();
        let share = n / concurrency + usize::from(w < n % concurrency);
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(share);
            for _ in 0..share {
                let t = Instant::now();
                f().await;
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let total = began.elapsed();
    all.sort();
    Series {
        p50: percentile(&all, 0.5),
        p99: percentile(&all, 0.99),
        per_sec: n as f64 / total.as_secs_f64(),
    }
}

/// The value after `name` on the command line, if given.
fn opt_arg(name: &str) -> Option<String> {
    std::env::args().skip_while(|a| a != name).nth(1)
}

fn arg(name: &str, default: &str) -> String {
    opt_arg(name).unwrap_or_else(|| default.to_string())
}

fn main() {
    // The runtime the harness CLI and MCP server run on (one thread), for the server too.
    let rt = klaviyo_harness::runtime::async_runtime().expect("cannot start the async runtime");
    rt.block_on(run());
}

async fn run() {
    let n: usize = arg("--calls", "3000").parse().unwrap();
    let conc: usize = arg("--concurrency", "8").parse().unwrap();
    let json_path = PathBuf::from(arg("--json", "target/bench.json"));
    let component = default_component_path();
    let url = server().await;
    let audit = std::env::temp_dir().join(format!("bench-audit-{}.jsonl", std::process::id()));

    let settings = {
        let mut s = Settings::new(&url).unwrap();
        s.key_source = KeySource::Command(format!("echo {KEY}"));
        s.policy = Policy::read_only();
        s.audit_log = std::env::var_os("BENCH_NO_AUDIT")
            .is_none()
            .then(|| audit.clone());
        s.throttle = false;
        s
    };

    let profile = opt_arg("--profile");
    // Start-up: cold compile, then precompiled load → first answered call.
    let engine = wasmtime::Engine::default();
    let bytes = std::fs::read(&component).expect("build the component first");
    let t = Instant::now();
    if profile.is_none() {
        let _ = wasmtime::component::Component::new(&engine, &bytes).unwrap();
    }
    let cold_compile = t.elapsed();
    drop(Harness::new(settings.clone(), &component, Box::new(NoTty)).unwrap()); // warm the cache
    let t = Instant::now();
    let h = Arc::new(Harness::new(settings.clone(), &component, Box::new(NoTty)).unwrap());
    let first = h.call("get_lists", "{}").await;
    assert!(first.result.is_ok(), "{:?}", first.result);
    let startup = t.elapsed();

    // Native floor: the same request with a keep-alive client.
    let client: hyper_util::client::legacy::Client<_, Full<Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http();
    let client = Arc::new(client);
    let native_req = {
        let url = format!("{url}/api/lists");
        let client = client.clone();
        move || {
            let req = http::Request::get(&url)
                .header("accept", "application/vnd.api+json")
                .header("revision", klaviyo_catalog::generated::REVISION)
                .header("authorization", format!("Klaviyo-API-Key {KEY}"))
                .body(Full::new(Bytes::new()))
                .unwrap();
            let client = client.clone();
            async move {
                let resp = client.request(req).await.unwrap();
                let body = resp.into_body().collect().await.unwrap().to_bytes();
                assert_eq!(body.len(), BODY.len());
            }
        }
    };
    let harness_call = {
        let h = h.clone();
        move || {
            let h = h.clone();
            async move {
                let out = h.call("get_lists", "{}").await;
                assert!(out.result.is_ok(), "{:?}", out.result);
            }
        }
    };
    // Where the time goes: a call the component refuses before any request (instantiate, run
    // the guest's validation, return) — the fixed cost of the sandbox per call.
    let refuse_call = {
        let h = h.clone();
        move || {
            let h = h.clone();
            async move {
                let out = h.call("get_list", "{}").await;
                assert!(out.result.is_err());
            }
        }
    };
    // The sandbox account in place of the network: the same call through every host stage,
    // answered in-process (state on disk, as the CLI keeps it), and the sandbox's own share.
    let sandbox_dir = std::env::temp_dir().join(format!("bench-sandbox-{}", std::process::id()));
    let sandbox_h = {
        let mut s = settings.clone();
        s.state_dir = Some(sandbox_dir.clone());
        s.audit_log = None;
        s.sandbox = Some(klaviyo_harness::config::SandboxSettings {
            seed: 1,
            faults: Default::default(),
        });
        Arc::new(Harness::new(s, &component, Box::new(NoTty)).unwrap())
    };
    let sandbox_call = {
        let h = sandbox_h.clone();
        move || {
            let h = h.clone();
            async move {
                let out = h.call("get_lists", "{}").await;
                assert!(out.result.is_ok(), "{:?}", out.result);
            }
        }
    };
    let sandbox_only = {
        let sb = klaviyo_sandbox::Sandbox::new(1, Some(&sandbox_dir), Default::default());
        let sb = Arc::new(sb);
        move || {
            let sb = sb.clone();
            async move {
                let r = klaviyo_sandbox::Request {
                    method: "GET",
                    path: "/api/profiles",
                    query: "page%5Bsize%5D=20&filter=greater-than(created,2020-01-01T00:00:00Z)",
                    body: b"",
                };
                assert!(matches!(
                    sb.handle(&r, "https://a.klaviyo.com"),
                    klaviyo_sandbox::Outcome::Answer { status: 200, .. }
                ));
            }
        }
    };
    if let Some(series) = profile {
        let s = match series.as_str() {
            "native" => measure(n, 1, native_req).await,
            "component" => measure(n, 1, harness_call).await,
            "refused" => measure(n, 1, refuse_call).await,
            other => panic!("--profile {other}: expected native, component or refused"),
        };
        println!(
            "{series}: p50 {:.0} µs, p99 {:.0} µs; connections accepted: {}",
            us(s.p50),
            us(s.p99),
            CONNECTIONS.load(std::sync::atomic::Ordering::Relaxed)
        );
        let _ = std::fs::remove_file(audit);
        return;
    }
    // Warm-up, then measure; native and component interleaved per series.
    measure(200, 1, native_req.clone()).await;
    measure(200, 1, harness_call.clone()).await;
    let native1 = measure(n, 1, native_req.clone()).await;
    let comp1 = measure(n, 1, harness_call.clone()).await;
    let refuse1 = measure(n, 1, refuse_call.clone()).await;
    measure(50, 1, sandbox_call.clone()).await;
    let sandbox1 = measure(n, 1, sandbox_call.clone()).await;
    let sandbox_alone = measure(n, 1, sandbox_only.clone()).await;
    let native_c = measure(n, conc, native_req.clone()).await;
    let comp_c = measure(n, conc, harness_call.clone()).await;

    // The CLI and the MCP server as separate processes (precompiled component cached): the
    // release binary beside this one (`cargo build --release -p klaviyo-harness`).
    let bin = std::env::current_exe()
        .unwrap()
        .with_file_name("klaviyo-harness");
    assert!(
        bin.exists(),
        "build the harness first: cargo build --release -p klaviyo-harness ({} missing)",
        bin.display()
    );
    // Child processes are waited for off the runtime's thread, which serves their requests.
    let (cli_time, cli_rss, mcp) = {
        let url = url.clone();
        tokio::task::spawn_blocking(move || {
            let mut cli = std::process::Command::new(&bin);
            cli.args(["call", "get_lists"])
                .env("KLAVIYO_BASE_URL", &url)
                .env("KLAVIYO_API_KEY", KEY);
            let t = Instant::now();
            let status = cli.stdout(std::process::Stdio::null()).status().unwrap();
            let cli_time = t.elapsed();
            assert!(status.success());
            let cli_rss = gnu_time_rss(&mut cli).unwrap_or(0);
            (cli_time, cli_rss, mcp_startup(&bin, &url))
        })
        .await
        .unwrap()
    };

    // What agents see (search, describe), and the server over stdio and HTTP.
    let agent = serve::agent_figures();
    let bin = std::env::current_exe()
        .unwrap()
        .with_file_name("klaviyo-harness");
    let served = serve::serve_figures(&bin, &url, 500).await;
    let size = std::fs::metadata(&component).unwrap().len();
    let edge = edge_startup(&component.with_file_name("klaviyo_connector_http.wasm")).await;
    let ratio1 = comp1.p50.as_secs_f64() / native1.p50.as_secs_f64();
    let ratio_c = native_c.per_sec / comp_c.per_sec;
    println!(
        "\nbench: {n} calls of get_lists per series against 127.0.0.1 (same server for all)\n"
    );
    println!("| series | p50 µs | p99 µs | calls/s |\n|---|---:|---:|---:|");
    for (name, s) in [
        ("native keep-alive, 1 at a time", &native1),
        ("component via harness, 1 at a time", &comp1),
        (
            "component, refused before sending (no HTTP), 1 at a time",
            &refuse1,
        ),
        (&*format!("native keep-alive, {conc} concurrent"), &native_c),
        (
            &*format!("component via harness, {conc} concurrent"),
            &comp_c,
        ),
    ] {
        println!(
            "| {name} | {:.0} | {:.0} | {:.0} |",
            us(s.p50),
            us(s.p99),
            s.per_sec
        );
    }
    println!(
        "sandbox account: `get_lists` through every host stage p50 {:.0} µs, p99 {:.0} µs ({:.2}x the same call against the local server); the sandbox alone, a filtered page of 20 profiles: p50 {:.0} µs, p99 {:.0} µs",
        us(sandbox1.p50),
        us(sandbox1.p99),
        sandbox1.p50.as_secs_f64() / comp1.p50.as_secs_f64(),
        us(sandbox_alone.p50),
        us(sandbox_alone.p99)
    );
    println!("\nratio component/native p50 (1 at a time): {ratio1:.2}x; throughput ratio native/component ({conc} concurrent): {ratio_c:.2}x");
    println!(
        "start-up, precompiled component → first answered call: {:.1} ms",
        startup.as_secs_f64() * 1e3
    );
    println!(
        "Component::new cold compile: {:.0} ms",
        cold_compile.as_secs_f64() * 1e3
    );
    println!(
        "CLI `call get_lists` (spawn → exit): {:.1} ms",
        cli_time.as_secs_f64() * 1e3
    );
    println!(
        "MCP `serve`: spawn → tools/list answered: discovery {:.1} ms, all {:.1} ms",
        mcp["discovery_ms"].as_f64().unwrap(),
        mcp["all_ms"].as_f64().unwrap()
    );
    println!("tools/list size: discovery {} bytes, all {} bytes, --toolsets profiles,lists {} bytes, --read-only all {} bytes",
        mcp["discovery_bytes"], mcp["all_bytes"], mcp["toolsets_bytes"], mcp["read_only_bytes"]);
    println!(
        "peak RSS: CLI call {:.1} MB; MCP serve discovery {:.1} MB, all {:.1} MB",
        cli_rss as f64 / 1024.0,
        mcp["discovery_peak_rss_mb"].as_f64().unwrap(),
        mcp["all_peak_rss_mb"].as_f64().unwrap()
    );
    println!("component size: {:.2} MB ({size} bytes)", size as f64 / 1e6);
    let sr = &agent["search"];
    println!(
        "search: recall@1 {:.3}, recall@5 {:.3} over {} intents; index built in {:.1} ms; a query p50 {:.0} µs, p99 {:.0} µs",
        sr["recall_at_1"].as_f64().unwrap(), sr["recall_at_5"].as_f64().unwrap(), sr["intents"],
        sr["index_build_ms"].as_f64().unwrap(), sr["query_p50_us"].as_f64().unwrap(), sr["query_p99_us"].as_f64().unwrap()
    );
    let (dc, df) = (
        &agent["describe_bytes"]["compact"],
        &agent["describe_bytes"]["full_schema"],
    );
    println!(
        "describe_action bytes over 351 actions: compact min {} / p50 {} / p95 {} / max {} ({}); full schema p50 {} / p95 {} / max {} ({})",
        dc["min"], dc["p50"], dc["p95"], dc["max"], dc["max_tool"], df["p50"], df["p95"], df["max"], df["max_tool"]
    );
    println!(
        "MCP server (release), spawn → tools/list answered: stdio {:.1} ms, HTTP {:.1} ms",
        served["stdio_spawn_to_tools_list_ms"].as_f64().unwrap(),
        served["http_spawn_to_tools_list_ms"].as_f64().unwrap()
    );
    println!(
        "MCP call_action get_lists, one at a time ({} calls): stdio p50 {:.2} ms p99 {:.2} ms; HTTP p50 {:.2} ms p99 {:.2} ms; HTTP/stdio p50 {:.2}x; HTTP adds {:.2} ms at p99",
        served["calls"], served["stdio_call"]["p50_ms"].as_f64().unwrap(), served["stdio_call"]["p99_ms"].as_f64().unwrap(),
        served["http_call"]["p50_ms"].as_f64().unwrap(), served["http_call"]["p99_ms"].as_f64().unwrap(),
        served["http_over_stdio_p50"].as_f64().unwrap(), served["http_added_p99_ms"].as_f64().unwrap()
    );
    println!(
        "MCP over HTTP, 64 concurrent clients: {:.0} calls/s ({} calls)",
        served["http_64_clients"]["per_sec"].as_f64().unwrap(),
        served["http_64_clients"]["calls"]
    );
    match edge["bytes"].as_u64() {
        Some(bytes) => println!(
            "HTTP (edge) build, precompiled, cold: load {:.2} ms + instantiate → first tools/list answered {:.2} ms = {:.2} ms (median of {} fresh engines); size {:.2} MB ({bytes} bytes)",
            edge["load_precompiled_ms"].as_f64().unwrap(),
            edge["first_tools_list_ms"].as_f64().unwrap(),
            edge["total_ms"].as_f64().unwrap(),
            edge["runs"],
            bytes as f64 / 1e6
        ),
        None => println!("HTTP (edge) build: not measured ({})", edge["skipped"]),
    }
    let report = json!({
        "calls": n, "concurrency": conc,
        "native_1": {"p50_us": us(native1.p50), "p99_us": us(native1.p99), "per_sec": native1.per_sec},
        "component_1": {"p50_us": us(comp1.p50), "p99_us": us(comp1.p99), "per_sec": comp1.per_sec},
        "component_refused_no_http_1": {"p50_us": us(refuse1.p50), "p99_us": us(refuse1.p99), "per_sec": refuse1.per_sec},
        "native_concurrent": {"p50_us": us(native_c.p50), "p99_us": us(native_c.p99), "per_sec": native_c.per_sec},
        "component_concurrent": {"p50_us": us(comp_c.p50), "p99_us": us(comp_c.p99), "per_sec": comp_c.per_sec},
        "ratio_p50_single": ratio1, "ratio_throughput_concurrent": ratio_c,
        "startup_precompiled_first_call_ms": startup.as_secs_f64() * 1e3,
        "cold_compile_ms": cold_compile.as_secs_f64() * 1e3,
        "cli_call_ms": cli_time.as_secs_f64() * 1e3,
        "cli_peak_rss_mb": cli_rss as f64 / 1024.0,
        "mcp": mcp, "component_bytes": size, "edge": edge, "agent": agent, "served": served,
        "sandbox_call_1": {"p50_us": us(sandbox1.p50), "p99_us": us(sandbox1.p99), "per_sec": sandbox1.per_sec},
        "sandbox_alone_profiles_page": {"p50_us": us(sandbox_alone.p50), "p99_us": us(sandbox_alone.p99)},
    });
    let _ = std::fs::remove_dir_all(&sandbox_dir);
    if let Some(d) = json_path.parent() {
        let _ = std::fs::create_dir_all(d);
    }
    std::fs::write(&json_path, serde_json::to_string_pretty(&report).unwrap()).unwrap();
    println!("\nwrote {}", json_path.display());
    let _ = std::fs::remove_file(audit);
}

/// A running process's peak RSS in KiB (`VmHWM` of its own address space). Not `wait4`'s
/// rusage: on Linux that keeps the high-water mark of the address space the child was spawned
/// from (this benchmark's), which would overstate a small child.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Peak RSS (KiB) of a short-lived command, measured by GNU time from a small parent.
fn gnu_time_rss(cmd: &mut std::process::Command) -> Option<u64> {
    let mut timed = std::process::Command::new("/usr/bin/time");
    timed
        .arg("-f")
        .arg("%M")
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            timed.env(k, v);
        }
    }
    let out = timed.stdout(std::process::Stdio::null()).output().ok()?;
    out.status.success().then_some(())?;
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .last()?
        .trim()
        .parse()
        .ok()
}

/// Spawns `serve` per mode, speaks just enough MCP for `tools/list`, and times it.
fn mcp_startup(bin: &std::path::Path, url: &str) -> Value {
    use std::io::{BufRead, BufReader, Write};
    let mut out = json!({});
    for (key, args) in [
        ("discovery", vec![]),
        ("all", vec!["--mode", "all"]),
        (
            "toolsets",
            vec!["--mode", "all", "--toolsets", "profiles,lists"],
        ),
        ("read_only", vec!["--mode", "all", "--read-only"]),
    ] {
        let t = Instant::now();
        let mut child = std::process::Command::new(bin)
            .arg("serve")
            .args(&args)
            .env("KLAVIYO_BASE_URL", url)
            .env("KLAVIYO_API_KEY", KEY)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let msgs = [
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}"#,
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
        ];
        for m in msgs {
            stdin.write_all(format!("{m}\n").as_bytes()).unwrap();
        }
        stdin.flush().unwrap();
        let mut bytes = 0;
        for line in lines.by_ref() {
            let line = line.unwrap();
            if line.contains(r#""id":2"#) {
                let v: Value = serde_json::from_str(&line).unwrap();
                bytes = serde_json::to_string(&v["result"]["tools"]).unwrap().len();
                break;
            }
        }
        let took = t.elapsed();
        let rss = peak_rss_kib(child.id()).unwrap_or(0);
        drop(stdin);
        let _ = child.wait();
        out[format!("{key}_ms")] = json!(took.as_secs_f64() * 1e3);
        out[format!("{key}_bytes")] = json!(bytes);
        out[format!("{key}_peak_rss_mb")] = json!(rss as f64 / 1024.0);
    }
    out
}

/// Store state for the HTTP build: WASI (the environment is its settings) and wasi:http.
struct EdgeState {
    wasi: wasmtime_wasi::WasiCtx,
    http: wasmtime_wasi_http::WasiHttpCtx,
    table: wasmtime::component::ResourceTable,
}

impl wasmtime_wasi::WasiView for EdgeState {
    fn ctx(&mut self) -> wasmtime_wasi::WasiCtxView<'_> {
        wasmtime_wasi::WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl wasmtime_wasi_http::WasiHttpView for EdgeState {
    fn http(&mut self) -> wasmtime_wasi_http::WasiHttpCtxView<'_> {
        wasmtime_wasi_http::WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: Default::default(),
        }
    }
}

/// The HTTP (edge) build as `wasmtime serve -S cli` runs it: from its precompiled artifact, in
/// a fresh engine each time (cold), load, then instantiate and answer one MCP `tools/list`
/// (discovery mode) through `wasi:http/incoming-handler`. Medians over fresh engines.
async fn edge_startup(path: &std::path::Path) -> Value {
    use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
    use wasmtime_wasi_http::p2::bindings::ProxyPre;
    use wasmtime_wasi_http::WasiHttpView;
    const RUNS: usize = 20;
    const TOKEN: &str = "bench-token-0123456789abcdef";
    let Ok(bytes) = std::fs::read(path) else {
        return json!({"skipped": format!("{} missing", path.display())});
    };
    let cwasm = std::env::temp_dir().join(format!("bench-edge-{}.cwasm", std::process::id()));
    std::fs::write(
        &cwasm,
        wasmtime::Engine::default()
            .precompile_component(&bytes)
            .unwrap(),
    )
    .unwrap();
    let (mut loads, mut firsts, mut totals) = (Vec::new(), Vec::new(), Vec::new());
    let mut answer_bytes = 0;
    for _ in 0..RUNS {
        let engine = wasmtime::Engine::default();
        let t = Instant::now();
        // SAFETY: written just above by `precompile_component` of the same engine configuration.
        let component =
            unsafe { wasmtime::component::Component::deserialize_file(&engine, &cwasm) }.unwrap();
        let mut linker = wasmtime::component::Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).unwrap();
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).unwrap();
        let pre = ProxyPre::new(linker.instantiate_pre(&component).unwrap()).unwrap();
        let loaded = t.elapsed();
        let t1 = Instant::now();
        let mut store = wasmtime::Store::new(
            &engine,
            EdgeState {
                wasi: wasmtime_wasi::WasiCtx::builder()
                    .env("KLAVIYO_MCP_TOKENS", format!("bench:{TOKEN}"))
                    .build(),
                http: wasmtime_wasi_http::WasiHttpCtx::new(),
                table: wasmtime::component::ResourceTable::new(),
            },
        );
        let req = http::Request::post("http://edge.bench/mcp")
            .header("authorization", format!("Bearer {TOKEN}"))
            .header("content-type", "application/json")
            .header("mcp-protocol-version", "2025-11-25")
            .body(Full::new(Bytes::from_static(
                br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
            )))
            .unwrap();
        let req = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, req)
            .unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let out = store.data_mut().http().new_response_outparam(tx).unwrap();
        let proxy = pre.instantiate_async(&mut store).await.unwrap();
        proxy
            .wasi_http_incoming_handler()
            .call_handle(&mut store, req, out)
            .await
            .unwrap();
        let resp = rx.await.unwrap().unwrap();
        assert_eq!(resp.status(), 200);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v["result"]["tools"].as_array().map(Vec::len),
            Some(3),
            "{v}"
        );
        let first = t1.elapsed();
        answer_bytes = body.len();
        loads.push(loaded);
        firsts.push(first);
        totals.push(loaded + first);
    }
    let _ = std::fs::remove_file(&cwasm);
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2].as_secs_f64() * 1e3
    };
    json!({
        "runs": RUNS,
        "load_precompiled_ms": median(&mut loads),
        "first_tools_list_ms": median(&mut firsts),
        "total_ms": median(&mut totals),
        "tools_list_answer_bytes": answer_bytes,
        "bytes": bytes.len(),
    })
}
