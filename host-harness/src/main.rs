//! `klaviyo-harness`: run the Klaviyo connector component from the command line.

use clap::{Args, Parser, Subcommand};
use klaviyo_catalog::response::Failure;
use klaviyo_harness::config::{self, FileConfig, Overrides};
use klaviyo_harness::policy::Decision;
use klaviyo_harness::runtime::default_component_path;
use klaviyo_harness::{Harness, TtyConfirm};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit codes scripts can rely on.
mod exit {
    pub const OK: u8 = 0;
    pub const INTERNAL: u8 = 1;
    pub const BAD_INPUT: u8 = 2;
    pub const DENIED: u8 = 3;
    pub const NOT_CONFIGURED: u8 = 4;
    pub const KLAVIYO_ERROR: u8 = 5;
    pub const THROTTLED: u8 = 6;
    pub const TRANSPORT: u8 = 7;
    pub const OUTCOME_UNKNOWN: u8 = 8;
}

const AFTER_HELP: &str = "\
Examples:
  klaviyo-harness call get-lists --dry-run            # print the exact request; sends nothing
  KLAVIYO_API_KEY=pk_... klaviyo-harness call get_profiles page_size=5 fields_profile='[\"email\"]'
  klaviyo-harness call 'Add Profile to List' --args @add.json --policy policy.toml
  klaviyo-harness tools --tag lists --access read
  klaviyo-harness describe get_profiles
  klaviyo-harness scopes --policy policy.toml        # the API key scopes this policy needs
  klaviyo-harness check                              # health check of key, URL, policy
  klaviyo-harness serve --policy policy.toml         # MCP server on stdio (discovery mode)
  klaviyo-harness serve --mode all --toolsets profiles,lists --read-only

Exit codes: 0 ok, 1 internal error, 2 bad input or unknown tool, 3 denied by policy,
4 not configured (no key), 5 Klaviyo answered an error, 6 throttled, 7 transport error or
timeout, 8 a write may or may not have happened.";

#[derive(Parser)]
#[command(name = "klaviyo-harness", version, about = "Run the Klaviyo connector component safely: your key, your policy, every request checked and audited.", after_help = AFTER_HELP)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct Global {
    /// The component (.wasm) to run [default: the release build of this checkout].
    #[arg(long, global = true, env = "KLAVIYO_COMPONENT")]
    component: Option<PathBuf>,
    /// Config file (TOML) [default: ~/.config/klaviyo-harness/config.toml if present].
    #[arg(long, global = true, env = "KLAVIYO_CONFIG")]
    config: Option<PathBuf>,
    /// Klaviyo API base URL; the only host requests may go to [default: https://a.klaviyo.com].
    #[arg(long, global = true, env = "KLAVIYO_BASE_URL")]
    base_url: Option<String>,
    /// API revision header [default: the spec's revision].
    #[arg(long, global = true, env = "KLAVIYO_REVISION")]
    revision: Option<String>,
    /// Public API key (company_id) for /client/* endpoints.
    #[arg(long, global = true, env = "KLAVIYO_COMPANY_ID")]
    company_id: Option<String>,
    /// Policy file (TOML) [default: read-only].
    #[arg(long, global = true, env = "KLAVIYO_POLICY")]
    policy: Option<PathBuf>,
    /// Append one JSON line per request to this file.
    #[arg(long, global = true, env = "KLAVIYO_AUDIT_LOG")]
    audit_log: Option<PathBuf>,
    /// Read the private key from this file (mode 600) instead of KLAVIYO_API_KEY.
    #[arg(long, global = true)]
    key_file: Option<PathBuf>,
    /// Read the private key from this command's output (like a credential helper).
    #[arg(long, global = true)]
    key_command: Option<String>,
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand)]
enum Command {
    /// List the tools with their access class.
    Tools {
        /// Only this Klaviyo tag (e.g. `profiles`, `lists`, `custom-objects`).
        #[arg(long)]
        tag: Option<String>,
        /// Only this access class: read, write or destructive.
        #[arg(long)]
        access: Option<String>,
    },
    /// Show one tool: title, description, scopes, limits, argument schema, an example.
    Describe { tool: String },
    /// Call a tool through the component.
    Call {
        /// Tool name: operationId (snake or kebab case), Klaviyo alias, or action title.
        tool: String,
        /// Arguments as a JSON object, or @FILE holding one.
        #[arg(long)]
        args: Option<String>,
        /// More arguments as key=value (value parsed as JSON when it is JSON, else text).
        #[arg(value_name = "KEY=VALUE")]
        pairs: Vec<String>,
        /// Print the exact HTTP request that would be sent, and send nothing.
        #[arg(long)]
        dry_run: bool,
        /// Follow `links.next` and return every page's items as one document.
        #[arg(long)]
        all_pages: bool,
        /// With --all-pages: stop after this many items (the result says where to resume).
        #[arg(long, default_value_t = 1000, requires = "all_pages")]
        max_items: usize,
    },
    /// Health check: key present and accepted, revision, base URL, policy, egress allow-list.
    Check,
    /// The minimal set of API key scopes the current policy needs.
    Scopes,
    /// Serve the tools to an agent over MCP (stdio).
    Serve {
        /// `discovery`: three meta-tools (search, describe, call) that reach every action, a
        /// few KB of tool list; `all`: one tool per action.
        #[arg(long, value_enum, default_value_t = ServeMode::Discovery)]
        mode: ServeMode,
        /// Only these Klaviyo tags, comma-separated (e.g. `profiles,lists`).
        #[arg(long, value_delimiter = ',')]
        toolsets: Vec<String>,
        /// Only read actions.
        #[arg(long)]
        read_only: bool,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ServeMode {
    Discovery,
    All,
}

fn main() -> ExitCode {
    // Exit quietly when the reader of our output goes away (`| head`), like other CLIs.
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let rt = match klaviyo_harness::runtime::async_runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::INTERNAL);
        }
    };
    ExitCode::from(rt.block_on(run(cli)))
}

fn overrides(g: &Global, dry_run: bool) -> Overrides {
    Overrides {
        base_url: g.base_url.clone(),
        revision: g.revision.clone(),
        company_id: g.company_id.clone(),
        policy: g.policy.clone(),
        audit_log: g.audit_log.clone(),
        key_file: g.key_file.clone(),
        key_command: g.key_command.clone(),
        dry_run,
    }
}

fn file_config(g: &Global) -> Result<FileConfig, String> {
    match &g.config {
        Some(p) => FileConfig::load(p),
        None => {
            let default = std::env::var_os("HOME")
                .map(|h| PathBuf::from(h).join(".config/klaviyo-harness/config.toml"));
            match default.filter(|p| p.exists()) {
                Some(p) => FileConfig::load(&p),
                None => Ok(FileConfig::default()),
            }
        }
    }
}

fn fail(json_out: bool, code: u8, kind: &str, message: &str) -> u8 {
    if json_out {
        println!(
            "{}",
            json!({"ok": false, "error": {"kind": kind, "message": message}})
        );
    } else {
        eprintln!("error: {message}");
    }
    code
}

async fn run(cli: Cli) -> u8 {
    let g = &cli.global;
    let dry_run = matches!(cli.command, Command::Call { dry_run: true, .. });
    let file = match file_config(g) {
        Ok(f) => f,
        Err(e) => return fail(g.json, exit::BAD_INPUT, "config", &e),
    };
    let settings = match config::resolve(&overrides(g, dry_run), &file) {
        Ok(s) => s,
        Err(e) => return fail(g.json, exit::BAD_INPUT, "config", &e),
    };
    if let Command::Scopes = cli.command {
        return scopes(g.json, &settings);
    }
    let component = g
        .component
        .clone()
        .or(file.component.clone())
        .unwrap_or_else(default_component_path);
    let harness = match Harness::new(settings, &component, Box::new(TtyConfirm)) {
        Ok(h) => h,
        Err(e) => return fail(g.json, exit::INTERNAL, "load", &format!("{e:#}")),
    };
    match &cli.command {
        Command::Tools { tag, access } => {
            tools(g.json, &harness, tag.as_deref(), access.as_deref()).await
        }
        Command::Describe { tool } => describe(g.json, &harness, tool).await,
        Command::Call {
            tool,
            args,
            pairs,
            all_pages,
            max_items,
            ..
        } => {
            let args = match parse_args(args.as_deref(), pairs) {
                Ok(a) => a,
                Err(e) => return fail(g.json, exit::BAD_INPUT, "invalid-input", &e),
            };
            call(
                g.json,
                &harness,
                tool,
                &args,
                all_pages.then_some(*max_items),
            )
            .await
        }
        Command::Check => check(g.json, &harness).await,
        Command::Serve {
            mode,
            toolsets,
            read_only,
        } => {
            let surface = match klaviyo_agent::mcp::Surface::new(
                match mode {
                    ServeMode::Discovery => klaviyo_harness::mcp::Mode::Discovery,
                    ServeMode::All => klaviyo_harness::mcp::Mode::All,
                },
                (!toolsets.is_empty()).then(|| toolsets.clone()),
                *read_only,
                klaviyo_harness::mcp::Untrusted::Label,
                harness.settings().policy.clone(),
                klaviyo_agent::mcp::CLI,
            ) {
                Ok(s) => s,
                Err(e) => return fail(false, exit::BAD_INPUT, "serve", &e),
            };
            let server =
                match klaviyo_harness::mcp::Server::new(std::sync::Arc::new(harness), surface) {
                    Ok(s) => s,
                    Err(e) => return fail(false, exit::INTERNAL, "serve", &format!("{e:#}")),
                };
            match klaviyo_harness::mcp::serve_stdio(server).await {
                Ok(()) => exit::OK,
                Err(e) => fail(false, exit::INTERNAL, "serve", &format!("{e:#}")),
            }
        }
        Command::Scopes => unreachable!("handled above"),
    }
}

/// `--args JSON|@FILE` merged with `key=value` pairs.
fn parse_args(args: Option<&str>, pairs: &[String]) -> Result<Value, String> {
    let mut obj = match args {
        None => serde_json::Map::new(),
        Some(a) => {
            let text = match a.strip_prefix('@') {
                Some(path) => {
                    std::fs::read_to_string(path).map_err(|e| format!("--args @{path}: {e}"))?
                }
                None => a.to_string(),
            };
            match serde_json::from_str::<Value>(&text) {
                Ok(Value::Object(m)) => m,
                Ok(_) => return Err("--args must be a JSON object".into()),
                Err(e) => return Err(format!("--args is not valid JSON: {e}")),
            }
        }
    };
    for p in pairs {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| format!("`{p}` is not KEY=VALUE"))?;
        if k.is_empty() {
            return Err(format!("`{p}` has an empty key"));
        }
        let value = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_string()));
        obj.insert(k.to_string(), value);
    }
    Ok(Value::Object(obj))
}

fn failure_code(f: &Failure) -> (u8, &'static str) {
    match f {
        Failure::InvalidInput { .. } => (exit::BAD_INPUT, "invalid-input"),
        Failure::UnknownTool(_) => (exit::BAD_INPUT, "unknown-tool"),
        Failure::Denied(_) => (exit::DENIED, "denied"),
        Failure::NotConfigured(_) => (exit::NOT_CONFIGURED, "not-configured"),
        Failure::Http { .. } => (exit::KLAVIYO_ERROR, "http"),
        Failure::Throttled { .. } => (exit::THROTTLED, "throttled"),
        Failure::Transport(_) => (exit::TRANSPORT, "transport"),
        Failure::Timeout(_) => (exit::TRANSPORT, "timeout"),
        Failure::OutcomeUnknown(_) => (exit::OUTCOME_UNKNOWN, "outcome-unknown"),
    }
}

fn failure_json(f: &Failure) -> Value {
    let (_, kind) = failure_code(f);
    let mut v = json!({"kind": kind, "message": f.to_string()});
    match f {
        Failure::InvalidInput { field, message } => {
            v["field"] = json!(field);
            v["detail"] = json!(message);
        }
        Failure::Http {
            status,
            errors,
            request_id,
            hint,
            ..
        } => {
            v["status"] = json!(status);
            v["errors"] = Value::Array(
                errors
                    .iter()
                    .map(|e| json!({"code": e.code, "title": e.title, "detail": e.detail, "source": {"pointer": e.source_pointer, "parameter": e.source_parameter}}))
                    .collect(),
            );
            v["request_id"] = json!(request_id);
            v["hint"] = json!(hint);
        }
        Failure::Throttled {
            retry_after_seconds,
            ..
        } => v["retry_after_seconds"] = json!(retry_after_seconds),
        _ => {}
    }
    v
}

fn print_request(r: &Value) {
    let req = &r["request"];
    println!("DRY RUN: nothing was sent.");
    println!(
        "{} {}",
        req["method"].as_str().unwrap_or(""),
        req["url"].as_str().unwrap_or("")
    );
    if let Some(h) = req["headers"].as_object() {
        for (k, v) in h {
            println!("{k}: {}", v.as_str().unwrap_or(""));
        }
    }
    if !req["body"].is_null() {
        println!();
        println!(
            "{}",
            serde_json::to_string_pretty(&req["body"]).unwrap_or_default()
        );
    }
    println!();
    println!(
        "operation: {} ({}); policy would {}: {}",
        r["operation"].as_str().unwrap_or(""),
        r["access"].as_str().unwrap_or(""),
        r["policy"]["decision"].as_str().unwrap_or(""),
        r["policy"]["reason"].as_str().unwrap_or("")
    );
}

async fn call(
    json_out: bool,
    h: &Harness,
    tool: &str,
    args: &Value,
    all_pages: Option<usize>,
) -> u8 {
    let outcome = match all_pages {
        None => h.call(tool, &args.to_string()).await,
        Some(max) => {
            use std::io::IsTerminal;
            let tty = std::io::stderr().is_terminal();
            let progress = |pages: usize, items: usize| {
                if tty {
                    eprint!("\rpage {pages} · {items} items");
                }
            };
            let out = h.call_all_pages(tool, args, max, &progress).await;
            if tty {
                eprintln!();
            }
            out
        }
    };
    match outcome.result {
        Ok(_) if !outcome.dry_runs.is_empty() => {
            if json_out {
                println!(
                    "{}",
                    json!({"ok": true, "dry_run": true, "requests": outcome.dry_runs})
                );
            } else {
                for r in &outcome.dry_runs {
                    print_request(r);
                }
            }
            exit::OK
        }
        Ok(text) => {
            let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
            if json_out {
                println!("{}", json!({"ok": true, "result": value}));
            } else if value == Value::String(String::new()) {
                println!("(done: no content)");
            } else {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&value).unwrap_or_default()
                );
            }
            exit::OK
        }
        Err(f) => {
            let (code, _) = failure_code(&f);
            if json_out {
                println!("{}", json!({"ok": false, "error": failure_json(&f)}));
            } else {
                eprintln!("error: {f}");
            }
            code
        }
    }
}

async fn tools(json_out: bool, h: &Harness, tag: Option<&str>, access: Option<&str>) -> u8 {
    if let Some(a) = access {
        if klaviyo_catalog::Access::parse(a).is_none() {
            return fail(
                json_out,
                exit::BAD_INPUT,
                "invalid-input",
                &format!("--access `{a}` must be read, write or destructive"),
            );
        }
    }
    let list = match h.list_tools().await {
        Ok(l) => l,
        Err(e) => return fail(json_out, exit::INTERNAL, "component", &format!("{e:#}")),
    };
    let norm = |s: &str| klaviyo_catalog::tools::normalize(s);
    let selected: Vec<_> = list
        .iter()
        .filter(|t| tag.is_none_or(|g| norm(&t.tag) == norm(g)))
        .filter(|t| access.is_none_or(|a| t.access == a))
        .collect();
    if json_out {
        let v: Vec<Value> = selected
            .iter()
            .map(|t| json!({"name": t.name, "title": t.title, "tag": t.tag, "access": t.access, "scopes": t.scopes, "rate_limit": t.rate_limit, "aliases": t.aliases}))
            .collect();
        println!("{}", Value::Array(v));
    } else {
        for t in &selected {
            println!("{:<52} {:<12} {}", t.name, t.access, t.title);
        }
        println!("\n{} of {} tools", selected.len(), list.len());
    }
    exit::OK
}

async fn describe(json_out: bool, h: &Harness, name: &str) -> u8 {
    let t = match h.describe(name).await {
        Ok(Some(t)) => t,
        Ok(None) => {
            let msg = klaviyo_catalog::tools::Tool::resolve(name)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_else(|| format!("no tool named `{name}`"));
            return fail(json_out, exit::BAD_INPUT, "unknown-tool", &msg);
        }
        Err(e) => return fail(json_out, exit::INTERNAL, "component", &format!("{e:#}")),
    };
    let example = klaviyo_catalog::tools::Tool::resolve(&t.name)
        .map(|tool| klaviyo_catalog::example::example_args(tool, false))
        .unwrap_or(Value::Null);
    if json_out {
        let mut v = serde_json::to_value(&t).unwrap_or_default();
        v["example_arguments"] = example;
        println!("{v}");
        return exit::OK;
    }
    println!("{} ({})", t.title, t.name);
    println!("tag: {}   access: {}", t.tag, t.access);
    println!(
        "scopes: {}",
        if t.scopes.is_empty() {
            "none (public key)".into()
        } else {
            t.scopes.join(", ")
        }
    );
    let rl = &t.rate_limit;
    println!(
        "rate limit: {}/s burst, {}/min steady{}",
        rl.burst_per_second,
        rl.steady_per_minute,
        rl.daily.map(|d| format!(", {d}/day")).unwrap_or_default()
    );
    if !t.aliases.is_empty() {
        println!("also callable as: {}", t.aliases.join(", "));
    }
    println!("\n{}\n", t.description);
    println!(
        "arguments (JSON Schema):\n{}",
        serde_json::to_string_pretty(&t.input_schema).unwrap_or_default()
    );
    println!(
        "\nexample: klaviyo-harness call {} --args '{}'",
        t.name, example
    );
    exit::OK
}

async fn check(json_out: bool, h: &Harness) -> u8 {
    let s = h.settings();
    let key_source = match h.shared().keys.source() {
        klaviyo_harness::secrets::KeySource::None => "none".to_string(),
        klaviyo_harness::secrets::KeySource::Env(v) => format!("environment variable {v}"),
        klaviyo_harness::secrets::KeySource::File(p) => format!("file {}", p.display()),
        klaviyo_harness::secrets::KeySource::Command(_) => "command".to_string(),
    };
    let key = h.shared().keys.get().await;
    let key_present = matches!(key, Ok(Some(_)));
    let (accepted, detail, code) = match &key {
        Ok(Some(_)) => {
            let out = h.call("get_accounts", "{}").await;
            match out.result {
                Ok(_) => (
                    Some(true),
                    "the key was accepted (get_accounts answered)".to_string(),
                    exit::OK,
                ),
                Err(f) => {
                    let (code, _) = failure_code(&f);
                    (Some(false), f.to_string(), code)
                }
            }
        }
        Ok(None) => (
            None,
            format!("no private key found ({key_source})"),
            exit::NOT_CONFIGURED,
        ),
        Err(e) => (None, e.clone(), exit::NOT_CONFIGURED),
    };
    if json_out {
        println!(
            "{}",
            json!({
                "ok": code == exit::OK,
                "base_url": s.base_url,
                "egress_allow_list": [s.base_url],
                "revision": s.revision,
                "key_source": key_source,
                "key_present": key_present,
                "key_accepted": accepted,
                "public_key_configured": s.public_key.is_some(),
                "detail": detail,
                "policy": s.policy.summary(),
            })
        );
    } else {
        println!("base URL:          {}", s.base_url);
        println!("egress allow-list: {} (only)", s.base_url);
        println!("revision:          {}", s.revision);
        println!(
            "private key:       {} ({key_source})",
            if key_present { "present" } else { "missing" }
        );
        println!(
            "public key:        {}",
            if s.public_key.is_some() {
                "configured"
            } else {
                "not configured (/client/* tools need KLAVIYO_COMPANY_ID)"
            }
        );
        println!("connection:        {detail}");
        println!(
            "policy:            {}",
            s.policy.summary().replace('\n', "\n                   ")
        );
    }
    code
}

fn scopes(json_out: bool, s: &klaviyo_harness::Settings) -> u8 {
    let mut scopes: Vec<&str> = klaviyo_catalog::generated::OPERATIONS
        .iter()
        .filter(|op| s.policy.decide(op).decision != Decision::Deny)
        .flat_map(|op| op.scopes.iter().copied())
        .collect();
    scopes.sort();
    scopes.dedup();
    if json_out {
        println!("{}", json!({"scopes": scopes}));
    } else {
        println!("The current policy needs an API key with these scopes (read-only where only reads are allowed):");
        for sc in &scopes {
            println!("  {sc}");
        }
    }
    exit::OK
}
