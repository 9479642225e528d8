//! The figures of what agents see and of the MCP server as a service:
//! - search: recall@1/@5 over the intent set (`crates/agent/tests/intents.tsv`), the index's
//!   first build, and a query's time;
//! - describe: the size distribution of the compact descriptions against the full schemas;
//! - the MCP server (release build) over stdio and over Streamable HTTP against the same
//!   local server: spawn → `tools/list` answered, per-call latency one at a time (the HTTP /
//!   stdio ratio and the p99 HTTP adds), and throughput with 64 concurrent HTTP clients.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Search recall and speed, describe sizes.
pub fn agent_figures() -> Value {
    let t = Instant::now();
    let _ = klaviyo_agent::search::search("warm up the index", 1, &|_| true);
    let build = t.elapsed();
    let intents = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../agent/tests/intents.tsv"
    ))
    .unwrap();
    let e = klaviyo_agent::search::evaluate(&intents);
    let queries: Vec<&str> = intents
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split('\t').next())
        .collect();
    let mut times: Vec<Duration> = queries
        .iter()
        .map(|q| {
            let t = Instant::now();
            let _ = klaviyo_agent::search::search(q, 8, &|_| true);
            t.elapsed()
        })
        .collect();
    times.sort();
    let compact = klaviyo_agent::describe::size_distribution(false);
    let full = klaviyo_agent::describe::size_distribution(true);
    let dist = |d: &klaviyo_agent::describe::SizeDistribution| json!({"min": d.min().1, "p50": d.percentile(50).1, "p95": d.percentile(95).1, "max": d.max().1, "max_tool": d.max().0});
    json!({
        "search": {"intents": e.intents, "recall_at_1": e.recall_at_1, "recall_at_5": e.recall_at_5,
                   "index_build_ms": ms(build), "query_p50_us": pct(&times, 0.5).as_secs_f64() * 1e6, "query_p99_us": pct(&times, 0.99).as_secs_f64() * 1e6},
        "describe_bytes": {"compact": dist(&compact), "full_schema": dist(&full)},
    })
}

const KEY: &str = "pk_bench_not_a_real_key";
const TOKEN: &str = "bench-token-0123456789abcdef";

fn serve_cmd(bin: &Path, url: &str, home: &Path) -> std::process::Command {
    let mut c = std::process::Command::new(bin);
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("KLAVIYO_BASE_URL", url)
        .env("KLAVIYO_API_KEY", KEY)
        .env("KLAVIYO_MCP_TOKENS", format!("bench:{TOKEN}"))
        .args(["serve", "--throttle", "false"]);
    c
}

const META: &str = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"bench","version":"1"}}"#;

fn call_body(id: u64) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"call_action","arguments":{{"name":"get_lists"}},{META}}}}}"#
    )
}

fn post(url: &str, body: String, method: &str, name: Option<&str>) -> http::Request<Full<Bytes>> {
    let mut b = http::Request::post(url)
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", method);
    if let Some(n) = name {
        b = b.header("mcp-name", n);
    }
    b.body(Full::new(Bytes::from(body))).unwrap()
}

type Client = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    Full<Bytes>,
>;

fn client() -> Client {
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http()
}

async fn rpc(c: &Client, url: &str, body: String, method: &str, name: Option<&str>) -> Value {
    let resp = c.request(post(url, body, method, name)).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    assert!(
        status.is_success(),
        "HTTP {status}: {}",
        String::from_utf8_lossy(&bytes)
    );
    serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&bytes)))
}

/// The server over stdio and over HTTP, on the same local Klaviyo-shaped server.
pub async fn serve_figures(bin: &Path, url: &str, calls: usize) -> Value {
    let home = std::env::temp_dir().join(format!("bench-serve-{}", std::process::id()));
    std::fs::create_dir_all(&home).unwrap();
    // Warm the precompiled cache, so both start the same way.
    let _ = std::process::Command::new(bin)
        .env("HOME", &home)
        .args(["call", "get_lists", "--dry-run"])
        .output();

    // stdio: spawn → tools/list, then calls one at a time (off the runtime's thread, which
    // serves the child's requests to the local server).
    let (stdio_spawn, mut stdio_lat) = {
        let (bin, url, home) = (bin.to_path_buf(), url.to_string(), home.clone());
        tokio::task::spawn_blocking(move || stdio_series(&bin, &url, &home, calls))
            .await
            .unwrap()
    };
    // HTTP: spawn → listening → tools/list answered, then calls one at a time on one
    // keep-alive connection, then 64 clients at once.
    let t = Instant::now();
    let mut child = serve_cmd(bin, url, &home)
        .args([
            "--http",
            "127.0.0.1:0",
            "--http-rate-per-minute",
            "100000000",
            "--http-max-concurrent-calls",
            "64",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mcp_url = tokio::task::spawn_blocking(move || {
        let mut err = BufReader::new(stderr).lines();
        let url = loop {
            let line = err.next().unwrap().unwrap();
            if let Some(rest) = line.split("serving MCP at ").nth(1) {
                break rest.split_whitespace().next().unwrap().to_string();
            }
        };
        std::thread::spawn(move || for _ in err.by_ref() {});
        url
    })
    .await
    .unwrap();
    let c = client();
    let v = rpc(
        &c,
        &mcp_url,
        format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{{{META}}}}}"#),
        "tools/list",
        None,
    )
    .await;
    assert!(v["result"]["tools"].is_array(), "{v}");
    let http_spawn = t.elapsed();
    let mut http_lat = Vec::with_capacity(calls);
    for i in 0..calls {
        let t = Instant::now();
        let v = rpc(
            &c,
            &mcp_url,
            call_body(10 + i as u64),
            "tools/call",
            Some("call_action"),
        )
        .await;
        http_lat.push(t.elapsed());
        assert_eq!(v["result"]["structuredContent"]["ok"], true, "{v}");
    }
    const CLIENTS: usize = 64;
    let per = (calls * 2 / CLIENTS).max(20);
    let url = Arc::new(mcp_url);
    let t = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..CLIENTS {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let c = client();
            for i in 0..per {
                let v = rpc(
                    &c,
                    &url,
                    call_body((w * per + i) as u64),
                    "tools/call",
                    Some("call_action"),
                )
                .await;
                assert_eq!(v["result"]["structuredContent"]["ok"], true, "{v}");
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let conc_per_sec = (CLIENTS * per) as f64 / t.elapsed().as_secs_f64();
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&home);

    stdio_lat.sort();
    http_lat.sort();
    json!({
        "stdio_spawn_to_tools_list_ms": ms(stdio_spawn),
        "http_spawn_to_tools_list_ms": ms(http_spawn),
        "calls": calls,
        "stdio_call": {"p50_ms": ms(pct(&stdio_lat, 0.5)), "p99_ms": ms(pct(&stdio_lat, 0.99))},
        "http_call": {"p50_ms": ms(pct(&http_lat, 0.5)), "p99_ms": ms(pct(&http_lat, 0.99))},
        "http_over_stdio_p50": pct(&http_lat, 0.5).as_secs_f64() / pct(&stdio_lat, 0.5).as_secs_f64(),
        "http_added_p99_ms": ms(pct(&http_lat, 0.99)) - ms(pct(&stdio_lat, 0.99)),
        "http_64_clients": {"calls": CLIENTS * per, "per_sec": conc_per_sec},
    })
}

/// The server over stdio: spawn → `tools/list` answered, then `calls` calls one at a time.
fn stdio_series(bin: &Path, url: &str, home: &Path, calls: usize) -> (Duration, Vec<Duration>) {
    let t = Instant::now();
    let mut child = serve_cmd(bin, url, home)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut send = |m: String| {
        stdin.write_all(m.as_bytes()).unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
    };
    send(format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{{{META}}}}}"#
    ));
    let mut next_answer = || loop {
        let line = lines.next().unwrap().unwrap();
        if line.contains(r#""id":"#) {
            break line;
        }
    };
    let _ = next_answer();
    let stdio_spawn = t.elapsed();
    let mut stdio_lat = Vec::with_capacity(calls);
    for i in 0..calls {
        let t = Instant::now();
        send(call_body(10 + i as u64));
        let line = next_answer();
        stdio_lat.push(t.elapsed());
        assert!(line.contains(r#""ok":true"#), "{line}");
    }
    drop(send);
    let _ = child.kill();
    let _ = child.wait();

    (stdio_spawn, stdio_lat)
}
