//! `klaviyo-harness`: run the Klaviyo connector component from the command line, or serve it
//! over MCP. `main` parses, runs, and reports an error once: `run` returns an [`Exit`] or an
//! [`Error`], which prints itself (text, or the `--json` envelope) and picks the exit code.

use clap::{Parser, Subcommand};
use klaviyo_agent::policy::Decision;
use klaviyo_catalog::response::Failure;
use klaviyo_catalog::tools::Tool;
use klaviyo_harness::args::Problem;
use klaviyo_harness::config::{self, Layer, Resolved, ServeLayer, ServeMode, UntrustedContent};
use klaviyo_harness::runtime::{
    default_component_path, installed_component_paths, EMBEDDED_COMPONENT,
};
use klaviyo_harness::{Harness, TtyConfirm};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

const AFTER_HELP: &str = "\
Examples:
  klaviyo-harness call get-lists --dry-run            # print the exact request; sends nothing
  KLAVIYO_API_KEY=pk_... klaviyo-harness call get_profiles page_size=5 fields_profile=email,first_name
  klaviyo-harness call 'Add Profile to List' --args @add.json --policy policy.toml
  klaviyo-harness tools subscribe someone to sms      # search the actions
  klaviyo-harness tools --tags                        # the Klaviyo tags (toolsets)
  klaviyo-harness describe get_profiles               # compact; --schema for the JSON Schema
  klaviyo-harness scopes --policy policy.toml         # the API key scopes this policy needs
  klaviyo-harness check                               # key, URL, policy, component, cache
  klaviyo-harness serve --policy policy.toml          # MCP on stdio (discovery mode)
  klaviyo-harness serve --http 127.0.0.1:8080 --http-token-file tokens
  klaviyo-harness report --since 7d --format html --out week.html   # what the agent did
  klaviyo-harness reconcile                           # settle writes whose outcome is unknown
  klaviyo-harness --connection acme check             # one of several accounts ([connections.acme])

Exit codes: 0 ok, 1 internal error, 2 bad input or unknown tool, 3 denied by policy,
4 not configured (no key, no component), 5 Klaviyo answered an error, 6 throttled,
7 transport error or timeout, 8 a write may or may not have happened,
9 `report --verify` found the audit log's hash chain broken.
--json prints {\"ok\": true, \"result\": …, \"http\": {…}} or {\"ok\": false, \"error\": {\"kind\": …}}.";

#[derive(Parser)]
#[command(name = "klaviyo-harness", version, about = "Run the Klaviyo connector component safely: your key, your policy, every request checked and audited.", after_help = AFTER_HELP)]
struct Cli {
    /// Config file (TOML) [default: ~/.config/klaviyo-harness/config.toml if present].
    #[arg(long, global = true, env = "KLAVIYO_CONFIG")]
    config: Option<PathBuf>,
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    json: bool,
    /// The named connection (`[connections.NAME]` in the config file) to use.
    #[arg(long, global = true, env = "KLAVIYO_CONNECTION")]
    connection: Option<String>,
    #[command(flatten)]
    settings: Layer,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum SandboxAction {
    /// What the account holds, and where it is kept.
    Status,
    /// Start the account again from its seed (every change since is lost).
    Reset,
    /// Answer Klaviyo's API on 127.0.0.1:PORT (for Prism's proxy, curl, other clients).
    Serve {
        #[arg(long, default_value_t = 8787)]
        port: u16,
    },
}

#[derive(Subcommand)]
enum Command {
    /// List the actions, or search them: `tools subscribe to sms`.
    Tools {
        /// Words describing what to do (ranked search); none: every action.
        query: Vec<String>,
        /// Only this Klaviyo tag (e.g. `profiles`, `lists`, `custom-objects`).
        #[arg(long)]
        tag: Option<String>,
        /// Only this access class: read, write or destructive.
        #[arg(long)]
        access: Option<String>,
        /// List the tags (toolsets) with their number of actions.
        #[arg(long)]
        tags: bool,
        /// Most search results.
        #[arg(long, default_value_t = 10)]
        limit: usize,
    },
    /// Describe one action: what it does, access, scopes, limits, arguments, a runnable example.
    Describe {
        tool: String,
        /// A dotted path into the arguments to describe in detail (e.g. body.data.attributes).
        #[arg(long)]
        path: Option<String>,
        /// The full JSON Schema of the arguments instead of the compact form.
        #[arg(long)]
        schema: bool,
    },
    /// Call an action through the component.
    Call {
        /// Tool name: operationId (snake or kebab case), Klaviyo alias, or action title.
        tool: String,
        /// Arguments as a JSON object, @FILE holding one, or @- for standard input.
        #[arg(long)]
        args: Option<String>,
        /// Arguments as KEY=VALUE (typed as the action's schema says; lists as a,b,c).
        #[arg(value_name = "KEY=VALUE")]
        pairs: Vec<String>,
        /// Print the exact HTTP request that would be sent, and send nothing.
        #[arg(long)]
        dry_run: bool,
        /// Follow `links.next` and return every page's items as one document.
        #[arg(long)]
        all_pages: bool,
        /// With --all-pages: stop at the end of the page that reaches this many items.
        #[arg(long, default_value_t = 1000, requires = "all_pages")]
        max_items: usize,
    },
    /// Health check: config, component, cache, key (checked with a read the policy allows),
    /// revision, base URL, policy (with warnings).
    Check {
        /// Check every named connection of the config file (whatever --connection names).
        #[arg(long)]
        all: bool,
    },
    /// The minimal set of API key scopes the current policy needs.
    Scopes,
    /// What the agent did, from the audit log: per day, per action, writes that landed, what
    /// needs a person's look. `--verify` checks the log's hash chain instead.
    Report {
        /// The first day to include: `7d` (the last 7 days) or a date YYYY-MM-DD.
        #[arg(long)]
        since: Option<String>,
        /// text, json or html (one self-contained page).
        #[arg(long, default_value = "text")]
        format: String,
        /// Write the report to FILE instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Check the hash chain of the log (and of rotated files given with --log, oldest first).
        #[arg(long)]
        verify: bool,
        /// Audit log files to read, rotated ones first [default: the configured audit log].
        #[arg(long = "log", value_name = "FILE")]
        logs: Vec<PathBuf>,
    },
    /// The built-in sandbox account (`--sandbox` answers from it): `status` shows what it
    /// holds, `reset` starts it again from its seed, `serve` answers Klaviyo's API on 127.0.0.1.
    Sandbox {
        #[command(subcommand)]
        action: SandboxAction,
    },
    /// Settle writes whose outcome is unknown: for each, run the read that shows whether it
    /// happened and record the answer in the audit log. Never sends a write again.
    Reconcile,
    /// Serve the actions to agents over MCP (stdio, or Streamable HTTP with --http).
    Serve {
        #[command(flatten)]
        serve: ServeLayer,
    },
}

/// Exit codes scripts can rely on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Exit {
    Ok = 0,
    Internal = 1,
    BadInput = 2,
    Denied = 3,
    NotConfigured = 4,
    Klaviyo = 5,
    Throttled = 6,
    Transport = 7,
    OutcomeUnknown = 8,
    AuditBroken = 9,
}

impl From<&Failure> for Exit {
    fn from(f: &Failure) -> Exit {
        match f {
            Failure::InvalidInput { .. } | Failure::UnknownTool { .. } => Exit::BadInput,
            Failure::Denied { .. } => Exit::Denied,
            Failure::NotConfigured { .. } => Exit::NotConfigured,
            Failure::Http { .. } => Exit::Klaviyo,
            Failure::Throttled { .. } => Exit::Throttled,
            Failure::Transport { .. } | Failure::Timeout { .. } => Exit::Transport,
            Failure::OutcomeUnknown { .. } => Exit::OutcomeUnknown,
        }
    }
}

/// A failed command: what to print, and the exit code.
#[derive(Debug)]
enum Error {
    /// The configuration is wrong (file, flags, policy).
    Config(String),
    /// Something the command needs is missing (the component, a key).
    NotConfigured(String),
    /// The arguments are wrong; every problem, each with its field.
    Input(Vec<Problem>),
    /// The call failed.
    Call { failure: Failure, http: Value },
    /// A bug or an environment failure.
    Internal(String),
}

impl Error {
    fn exit(&self) -> Exit {
        match self {
            Error::Config(_) | Error::Input(_) => Exit::BadInput,
            Error::NotConfigured(_) => Exit::NotConfigured,
            Error::Call { failure, .. } => Exit::from(failure),
            Error::Internal(_) => Exit::Internal,
        }
    }

    /// Prints the error once (stderr, or the JSON envelope on stdout) and returns the code.
    fn report(self, json_out: bool) -> ExitCode {
        let code = self.exit();
        let (kind, message, extra) = match self {
            Error::Config(m) => ("config", m, None),
            Error::NotConfigured(m) => ("not-configured", m, None),
            Error::Input(problems) => {
                let text = problems
                    .iter()
                    .map(|p| p.message.as_str())
                    .collect::<Vec<_>>()
                    .join("\n");
                let mut extra = json!({"problems": problems});
                if let [one] = problems.as_slice() {
                    extra["field"] = json!(one.field);
                }
                ("invalid-input", text, Some(extra))
            }
            Error::Internal(m) => ("internal", m, None),
            Error::Call { failure, http } => {
                if json_out {
                    let mut e = failure.to_json();
                    e["message"] = json!(failure.to_string());
                    println!("{}", json!({"ok": false, "error": e, "http": http}));
                } else {
                    eprintln!("error: {failure}");
                }
                return ExitCode::from(code as u8);
            }
        };
        if json_out {
            let mut e = json!({"kind": kind, "message": message});
            if let Some(Value::Object(x)) = extra {
                e.as_object_mut().unwrap().extend(x);
            }
            println!("{}", json!({"ok": false, "error": e}));
        } else {
            for line in message.lines() {
                eprintln!("error: {line}");
            }
        }
        ExitCode::from(code as u8)
    }
}

fn main() -> ExitCode {
    // Exit quietly when the reader of our output goes away (`| head`), like other CLIs.
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let json_out = cli.json;
    let rt = match klaviyo_harness::runtime::async_runtime() {
        Ok(rt) => rt,
        Err(e) => {
            return Error::Internal(format!("cannot start the async runtime: {e}")).report(json_out)
        }
    };
    match rt.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => e.report(json_out),
    }
}

/// Flags and environment over the config file over the defaults.
fn resolve(cli: &Cli, serve: Option<&ServeLayer>, dry_run: bool) -> Result<Resolved, Error> {
    resolve_as(cli, serve, dry_run, cli.connection.as_deref())
}

/// [`resolve`] for the named connection `connection` (or none).
fn resolve_as(
    cli: &Cli,
    serve: Option<&ServeLayer>,
    dry_run: bool,
    connection: Option<&str>,
) -> Result<Resolved, Error> {
    let mut flags = cli.settings.clone();
    if let Some(s) = serve {
        flags.serve = s.clone();
    }
    resolve_flags(cli, &flags, dry_run, connection)
}

/// `flags` (the command line's layer, possibly amended) over the config file.
fn resolve_flags(
    cli: &Cli,
    flags: &Layer,
    dry_run: bool,
    connection: Option<&str>,
) -> Result<Resolved, Error> {
    let path = config_path(cli);
    let file = match &path {
        Some(p) => Some((p.as_path(), Layer::from_file(p).map_err(Error::Config)?)),
        None => None,
    };
    let env_key = std::env::var_os("KLAVIYO_API_KEY").is_some_and(|k| !k.is_empty());
    config::resolve(flags, file, env_key, dry_run, connection).map_err(Error::Config)
}

/// `--config`, else `~/.config/klaviyo-harness/config.toml` when it exists.
fn config_path(cli: &Cli) -> Option<PathBuf> {
    cli.config.clone().or_else(|| {
        std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(".config/klaviyo-harness/config.toml"))
            .filter(|p| p.exists())
    })
}

/// The harness on the component the configuration names, or the one built in.
fn harness(r: &Resolved) -> Result<Harness, Error> {
    let settings = r.settings.clone();
    let confirm = Box::new(TtyConfirm);
    let load = |e: anyhow::Error| Error::Internal(format!("{e:#}"));
    if let Some(p) = &r.component {
        if !p.exists() {
            return Err(Error::NotConfigured(format!(
                "the component {} does not exist: pass --component PATH or set KLAVIYO_COMPONENT (or `component` in the config file) to a built klaviyo_connector.wasm",
                p.display()
            )));
        }
        return Harness::new(settings, p, confirm).map_err(load);
    }
    if !EMBEDDED_COMPONENT.is_empty() {
        return Harness::from_bytes(
            settings,
            EMBEDDED_COMPONENT,
            "the built-in component",
            confirm,
        )
        .map_err(load);
    }
    let mut places = installed_component_paths();
    places.push(default_component_path());
    match places.iter().find(|p| p.exists()) {
        Some(p) => Harness::new(settings, p, confirm).map_err(load),
        None => Err(Error::NotConfigured(format!(
            "this binary was built without its component and none was found in {}: pass --component PATH or set KLAVIYO_COMPONENT",
            places.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// The tool an argument names, or the nearest names.
fn tool(name: &str) -> Result<Tool, Error> {
    Tool::resolve(name).map_err(|_| {
        let near = klaviyo_agent::suggest::nearest(
            name,
            klaviyo_catalog::generated::NAMES.iter().map(|(n, _)| *n),
            3,
        );
        let mut near: Vec<&str> = near
            .iter()
            .filter_map(|n| Tool::resolve(n).ok().map(|t| t.name()))
            .collect();
        near.dedup();
        Error::Input(vec![Problem::new(
            Some("tool"),
            format!(
                "no action is named `{name}`; {}",
                if near.is_empty() {
                    "`klaviyo-harness tools WORDS` searches them".to_string()
                } else {
                    klaviyo_agent::suggest::did_you_mean(&near)
                }
            ),
        )])
    })
}

async fn run(cli: Cli) -> Result<Exit, Error> {
    let json_out = cli.json;
    match &cli.command {
        Command::Tools {
            query,
            tag,
            access,
            tags,
            limit,
        } => tools(
            &cli,
            query,
            tag.as_deref(),
            access.as_deref(),
            *tags,
            *limit,
        ),
        Command::Describe {
            tool: name,
            path,
            schema,
        } => describe(json_out, name, path.as_deref(), *schema),
        Command::Scopes => scopes(json_out, &resolve(&cli, None, false)?.settings),
        Command::Reconcile => reconcile(&cli).await,
        Command::Sandbox { action } => sandbox(&cli, action).await,
        Command::Report {
            since,
            format,
            out,
            verify,
            logs,
        } => report(
            &cli,
            since.as_deref(),
            format,
            out.as_deref(),
            *verify,
            logs,
        ),
        Command::Call {
            tool: name,
            args,
            pairs,
            dry_run,
            all_pages,
            max_items,
        } => {
            let r = resolve(&cli, None, *dry_run)?;
            let t = tool(name)?;
            let arguments =
                klaviyo_harness::args::parse(t, args.as_deref(), pairs, &mut std::io::stdin())
                    .map_err(Error::Input)?;
            precheck(t, &arguments, &r.settings)?;
            let h = harness(&r)?;
            call(json_out, &h, t, &arguments, all_pages.then_some(*max_items)).await
        }
        Command::Check { all: false } => {
            let r = resolve(&cli, None, false)?;
            let h = harness(&r)?;
            let (code, doc) = check(&h, &r).await;
            print_check(json_out, &doc);
            Ok(code)
        }
        Command::Check { all: true } => check_all(&cli).await,
        Command::Serve { serve } => {
            let r = resolve(&cli, Some(serve), false)?;
            serve_mcp(&r).await
        }
    }
}

/// `sandbox status | reset | serve`: the account of the configured seed (with or without
/// `--sandbox`).
async fn sandbox(cli: &Cli, action: &SandboxAction) -> Result<Exit, Error> {
    let mut flags = cli.settings.clone();
    flags.sandbox = Some(true);
    let r = resolve_flags(cli, &flags, false, cli.connection.as_deref())?;
    let sb_settings = r.settings.sandbox.clone().expect("sandbox is on");
    let sb = Arc::new(klaviyo_sandbox::Sandbox::new(
        sb_settings.seed,
        r.settings.state_dir.as_deref(),
        sb_settings.faults,
    ));
    let kept = match sb.file() {
        Some(f) => f.display().to_string(),
        None => "this process only (no state directory)".into(),
    };
    match action {
        SandboxAction::Reset => {
            sb.reset().map_err(Error::Internal)?;
            if cli.json {
                println!(
                    "{}",
                    json!({"ok": true, "reset": true, "seed": sb.seed(), "file": sb.file()})
                );
            } else {
                println!(
                    "sandbox account (seed {}) started again from its sample data; kept in {kept}",
                    sb.seed()
                );
            }
            Ok(Exit::Ok)
        }
        SandboxAction::Status => {
            let counts = sb.counts().map_err(Error::Internal)?;
            if cli.json {
                let m: serde_json::Map<String, Value> =
                    counts.iter().map(|(t, n)| (t.clone(), json!(n))).collect();
                println!(
                    "{}",
                    json!({"ok": true, "seed": sb.seed(), "file": sb.file(), "resources": m})
                );
            } else {
                println!("sandbox account (seed {}), kept in {kept}:", sb.seed());
                for (t, n) in counts {
                    println!("  {t:<20} {n}");
                }
            }
            Ok(Exit::Ok)
        }
        SandboxAction::Serve { port } => {
            klaviyo_harness::sandbox::serve(sb.clone(), *port, |addr| {
                eprintln!(
                    "sandbox account (seed {}) answering Klaviyo's API at http://{addr} (any `Authorization: Klaviyo-API-Key …`); Ctrl-C stops",
                    sb.seed()
                );
            })
            .await
            .map_err(|e| Error::Internal(format!("{e:#}")))?;
            Ok(Exit::Ok)
        }
    }
}

/// Every problem with the arguments, found by the catalog's validator before anything runs.
fn precheck(t: Tool, args: &Value, s: &klaviyo_harness::Settings) -> Result<(), Error> {
    let conn = klaviyo_catalog::request::Connection {
        base_url: s.base_url.clone(),
        revision: s.revision.clone(),
        private_key: Some("placeholder".into()),
        public_key: s.public_key.clone().or(Some("placeholder".into())),
    };
    let problems = klaviyo_catalog::request::problems(t, args, &conn);
    if problems.is_empty() {
        return Ok(());
    }
    Err(Error::Input(
        problems
            .into_iter()
            .map(|e| match e {
                klaviyo_catalog::Error::InvalidInput { field, message }
                    if message.starts_with("unknown argument") =>
                {
                    Problem::new(
                        Some(&field),
                        format!(
                            "`{field}`: unknown argument of `{}`{}",
                            t.name(),
                            klaviyo_agent::suggest::unknown_argument_hint(t, &field)
                                .map(|h| format!("; {h}"))
                                .unwrap_or_default()
                        ),
                    )
                }
                klaviyo_catalog::Error::InvalidInput { field, message } => {
                    // "`id` is required", "`page_size` must be …"; otherwise "`field`: …".
                    let predicate = [
                        "is ",
                        "must ",
                        "needs ",
                        "allows ",
                        "contains ",
                        "expected ",
                    ]
                    .iter()
                    .any(|w| message.starts_with(w));
                    let m = if predicate {
                        format!("`{field}` {message}")
                    } else {
                        format!("`{field}`: {message}")
                    };
                    Problem::new(Some(&field), m)
                }
                other => Problem::new(None, other.to_string()),
            })
            .collect(),
    ))
}

fn print_request(r: &Value) {
    println!("DRY RUN: nothing was sent.");
    print!(
        "{}",
        klaviyo_harness::egress::show::request_text(&r["request"])
    );
    println!();
    println!(
        "operation: {} ({}); policy would {}: {}",
        r["operation"].as_str().unwrap_or(""),
        r["access"].as_str().unwrap_or(""),
        r["policy"]["decision"].as_str().unwrap_or(""),
        r["policy"]["reason"].as_str().unwrap_or("")
    );
}

/// The status and Klaviyo request id of the last answer a call got.
fn http_of(o: &klaviyo_harness::CallOutcome) -> Value {
    match o.responses.last() {
        Some((op, status, headers)) => json!({
            "status": status,
            "request_id": headers.get("x-klaviyo-req-id").and_then(|v| v.to_str().ok()),
            "operation": op,
            "requests": o.responses.len(),
        }),
        None => Value::Null,
    }
}

async fn call(
    json_out: bool,
    h: &Harness,
    t: Tool,
    args: &Value,
    all_pages: Option<usize>,
) -> Result<Exit, Error> {
    let outcome = match all_pages {
        None => h.call(t.name(), &args.to_string()).await,
        Some(max) => {
            use std::io::IsTerminal;
            let tty = std::io::stderr().is_terminal();
            let progress = |pages: usize, items: usize| {
                if tty {
                    eprint!("\rpage {pages} · {items} items");
                }
            };
            let out = h.call_all_pages(t.name(), args, max, &progress).await;
            if tty {
                eprintln!();
            }
            out
        }
    };
    let mut http = http_of(&outcome);
    if let Some(sb) = &h.shared().sandbox {
        if json_out {
            if let Value::Object(m) = &mut http {
                m.insert("sandbox".into(), json!({"seed": sb.seed()}));
            }
        } else if outcome.dry_runs.is_empty() {
            eprintln!(
                "sandbox account (seed {}): sample data on this machine; nothing was sent to Klaviyo",
                sb.seed()
            );
        }
    }
    match outcome.result {
        Ok(_) if !outcome.dry_runs.is_empty() => {
            if json_out {
                println!(
                    "{}",
                    json!({"ok": true, "dry_run": true, "requests": outcome.dry_runs})
                );
            } else {
                outcome.dry_runs.iter().for_each(print_request);
            }
            Ok(Exit::Ok)
        }
        Ok(text) => {
            let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
            if json_out {
                println!("{}", json!({"ok": true, "result": value, "http": http}));
            } else if value == Value::String(String::new()) {
                println!("(done: no content)");
            } else {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&value).unwrap_or_default()
                );
            }
            Ok(Exit::Ok)
        }
        Err(failure) => Err(Error::Call { failure, http }),
    }
}

fn tools(
    cli: &Cli,
    query: &[String],
    tag: Option<&str>,
    access: Option<&str>,
    tags: bool,
    limit: usize,
) -> Result<Exit, Error> {
    let norm = klaviyo_catalog::tools::normalize;
    if tags {
        let list = klaviyo_agent::search::tags();
        if cli.json {
            let v: Vec<Value> = list
                .iter()
                .map(|(t, n)| json!({"tag": t, "toolset": norm(t), "actions": n}))
                .collect();
            println!("{}", json!({"ok": true, "result": v}));
        } else {
            for (t, n) in &list {
                println!("{:<28} {:<28} {n}", norm(t), t);
            }
            eprintln!(
                "\n{} tags; use one with `serve --toolsets` or `tools --tag`",
                list.len()
            );
        }
        return Ok(Exit::Ok);
    }
    let access = match access {
        None => None,
        Some(a) => Some(klaviyo_catalog::Access::parse(a).ok_or_else(|| {
            Error::Input(vec![Problem::new(
                Some("--access"),
                format!("--access `{a}` must be read, write or destructive"),
            )])
        })?),
    };
    if let Some(g) = tag {
        let known: Vec<String> = klaviyo_agent::search::tags()
            .iter()
            .map(|(t, _)| norm(t))
            .collect();
        if !known.contains(&norm(g)) {
            let near = klaviyo_agent::suggest::nearest(g, known.iter().map(String::as_str), 3);
            return Err(Error::Input(vec![Problem::new(
                Some("--tag"),
                format!(
                    "--tag `{g}` is not a Klaviyo tag; {}",
                    if near.is_empty() {
                        "`tools --tags` lists them".into()
                    } else {
                        klaviyo_agent::suggest::did_you_mean(&near)
                    }
                ),
            )]));
        }
    }
    let keep = |t: &Tool| {
        tag.is_none_or(|g| norm(t.tag()) == norm(g)) && access.is_none_or(|a| t.access() == a)
    };
    let selected: Vec<Tool> = if query.is_empty() {
        Tool::all().filter(|t| keep(t)).collect()
    } else {
        klaviyo_agent::search::search(&query.join(" "), limit, &keep)
            .into_iter()
            .map(|h| h.tool)
            .collect()
    };
    let total = Tool::all().count();
    if cli.json {
        let v: Vec<Value> = selected
            .iter()
            .map(|t| {
                json!({"name": t.name(), "title": t.title(), "tag": t.tag(), "access": t.access().as_str(), "scopes": t.scopes(),
                       "rate_limit": t.rate_limit(),
                       "aliases": t.aliases()})
            })
            .collect();
        println!("{}", json!({"ok": true, "result": v}));
    } else {
        for t in &selected {
            println!("{:<52} {:<12} {}", t.name(), t.access().as_str(), t.title());
        }
        if query.is_empty() {
            eprintln!("\n{} of {total} tools", selected.len());
        } else {
            eprintln!(
                "\n{} best matches of {total} tools; `klaviyo-harness describe NAME` for one",
                selected.len()
            );
        }
    }
    Ok(Exit::Ok)
}

fn describe(json_out: bool, name: &str, path: Option<&str>, schema: bool) -> Result<Exit, Error> {
    let t = tool(name)?;
    let opts = klaviyo_agent::describe::DescribeOptions { path, full: schema };
    let bad = |e: klaviyo_agent::describe::DescribeError| {
        Error::Input(vec![Problem::new(Some("--path"), e.to_string())])
    };
    if json_out {
        let v = klaviyo_agent::describe::describe(t, &opts).map_err(bad)?;
        println!("{}", json!({"ok": true, "result": v}));
    } else if schema {
        let v = klaviyo_agent::describe::describe(t, &opts).map_err(bad)?;
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        println!(
            "{}",
            klaviyo_agent::describe::describe_text(t, &opts)
                .map_err(bad)?
                .trim_end()
        );
    }
    Ok(Exit::Ok)
}

async fn check(h: &Harness, r: &Resolved) -> (Exit, Value) {
    use klaviyo_harness::secrets::KeySource;
    let s = h.settings();
    let key_source = match h.shared().keys.source() {
        KeySource::None => "none".to_string(),
        KeySource::Env(v) => format!("environment variable {v}"),
        KeySource::File(p) => format!("file {}", p.display()),
        KeySource::Command(c) => format!("command `{c}`"),
    };
    // The sandbox account needs no key and none is read: the check is its answer.
    let sandbox = h.shared().sandbox.clone();
    let key = match &sandbox {
        Some(_) => Ok(None),
        None => h.shared().keys.get().await,
    };
    let key_present = matches!(key, Ok(Some(_)));
    let (accepted, detail, mut code) = if sandbox.is_some() {
        match h.call("get_accounts", "{}").await.result {
            Ok(_) => (
                None,
                "the sandbox account answered get_accounts (no key is read in the sandbox)"
                    .to_string(),
                Exit::Ok,
            ),
            Err(f) => (
                None,
                format!("the sandbox account did not answer: {f}"),
                Exit::from(&f),
            ),
        }
    } else {
        match &key {
            Ok(Some(_)) => match s.policy.key_check_action() {
                None => (None, "the policy allows none of the reads the key is checked with (get_accounts, get_lists, get_metrics, get_segments, get_tags)".to_string(), Exit::Ok),
                Some(action) => match h.call(action, "{}").await.result {
                    Ok(_) => (Some(true), format!("the key was accepted ({action} answered)"), Exit::Ok),
                    Err(Failure::Http { status: 403, .. }) => (Some(true), format!("the key was accepted, but it lacks the scope {action} needs"), Exit::Ok),
                    Err(f) => (Some(false), f.to_string(), Exit::from(&f)),
                },
            },
            Ok(None) => (None, format!("no private key found ({key_source})"), Exit::NotConfigured),
            Err(e) => (None, e.clone(), Exit::NotConfigured),
        }
    };
    let today = klaviyo_harness::audit::now_rfc3339();
    let revision_status = klaviyo_harness::mcp::http::revision_status(&s.revision, &today);
    let mut warnings: Vec<String> = s.policy.lints().into_iter().map(|l| l.message).collect();
    match revision_status {
        "deprecated" => warnings.push(format!("revision {} is over a year old: Klaviyo has deprecated it; it is retired two years after its date", s.revision)),
        "retired" => warnings.push(format!("revision {} is over two years old: Klaviyo has retired it; set `revision` to a current one", s.revision)),
        "unknown" => warnings.push(format!("revision `{}` is not a date (YYYY-MM-DD)", s.revision)),
        _ => {}
    }
    if s.revision != klaviyo_catalog::generated::REVISION {
        warnings.push(format!("revision {} differs from the spec this build was generated from ({}): requests follow the {} spec", s.revision, klaviyo_catalog::generated::REVISION, klaviyo_catalog::generated::REVISION));
    }
    if revision_status == "retired" && code == Exit::Ok {
        code = Exit::NotConfigured;
    }
    let component = match &r.component {
        Some(p) => p.display().to_string(),
        None if !EMBEDDED_COMPONENT.is_empty() => {
            format!("built in ({} bytes)", EMBEDDED_COMPONENT.len())
        }
        None => "found beside the binary".into(),
    };
    let doc = json!({
        "ok": code == Exit::Ok,
        "connection": s.connection,
        "config_file": r.config_file,
        "component": component,
        "cache_dir": s.cache_dir,
        "state_dir": s.state_dir,
        "audit_log": s.audit_log,
        "base_url": s.base_url,
        "egress_allow_list": [s.base_url],
        "revision": {"value": s.revision, "status": revision_status},
        "key_source": key_source,
        "key_present": key_present,
        "key_accepted": accepted,
        "public_key_configured": s.public_key.is_some(),
        "detail": detail,
        "policy": s.policy.summary(),
        "warnings": warnings,
        "sandbox": sandbox.as_ref().map(|sb| json!({"seed": sb.seed(), "file": sb.file()})),
    });
    (code, doc)
}

/// `check`'s findings, as JSON or as lines for a person.
fn print_check(json_out: bool, d: &Value) {
    if json_out {
        println!("{d}");
        return;
    }
    let text = |k: &str| match &d[k] {
        Value::String(s) => s.clone(),
        Value::Null => "none".into(),
        v => v.to_string(),
    };
    if let Some(c) = d["connection"].as_str() {
        println!("connection name:   {c}");
    }
    println!("config file:       {}", text("config_file"));
    println!("component:         {}", text("component"));
    println!("cache:             {}", text("cache_dir"));
    println!("state:             {}", text("state_dir"));
    println!("audit log:         {}", text("audit_log"));
    println!("base URL:          {}", text("base_url"));
    println!("egress allow-list: {} (only)", text("base_url"));
    println!(
        "revision:          {} ({})",
        d["revision"]["value"].as_str().unwrap_or(""),
        d["revision"]["status"].as_str().unwrap_or("")
    );
    if let Some(sb) = d["sandbox"].as_object() {
        println!(
            "sandbox:           seed {} (sample data, kept in {}; nothing is sent to Klaviyo)",
            sb["seed"],
            sb["file"].as_str().unwrap_or("this process only")
        );
    }
    println!(
        "private key:       {} ({})",
        if d["sandbox"].is_object() {
            "not needed in the sandbox"
        } else if d["key_present"] == true {
            "present"
        } else {
            "missing"
        },
        text("key_source")
    );
    println!(
        "public key:        {}",
        if d["public_key_configured"] == true {
            "configured"
        } else {
            "not configured (/client/* tools need KLAVIYO_COMPANY_ID)"
        }
    );
    println!("connection:        {}", text("detail"));
    println!(
        "policy:            {}",
        text("policy").replace('\n', "\n                   ")
    );
    for w in d["warnings"].as_array().into_iter().flatten() {
        println!("warning:           {}", w.as_str().unwrap_or(""));
    }
}

/// `check --all`: every named connection of the config file, each checked as `check` does.
async fn check_all(cli: &Cli) -> Result<Exit, Error> {
    let names = resolve(cli, None, false)?.connections;
    if names.is_empty() {
        return Err(Error::NotConfigured(
            "check --all checks the config file's named connections, and it has none: add [connections.NAME] tables (or run check without --all)".into(),
        ));
    }
    let mut worst = Exit::Ok;
    let mut docs = serde_json::Map::new();
    for name in &names {
        let r = resolve_as(cli, None, false, Some(name))?;
        let (code, doc) = match harness(&r) {
            Ok(h) => check(&h, &r).await,
            Err(Error::NotConfigured(m) | Error::Internal(m) | Error::Config(m)) => (
                Exit::NotConfigured,
                json!({"ok": false, "connection": name, "detail": m}),
            ),
            Err(e) => return Err(e),
        };
        if worst == Exit::Ok {
            worst = code;
        }
        if !cli.json {
            println!("== {name} ==");
            print_check(false, &doc);
            println!();
        }
        docs.insert(name.clone(), doc);
    }
    if cli.json {
        println!("{}", json!({"ok": worst == Exit::Ok, "result": docs}));
    }
    Ok(worst)
}

/// `reconcile`: the reads that settle the audit log's unknown writes, each recorded there.
async fn reconcile(cli: &Cli) -> Result<Exit, Error> {
    use klaviyo_harness::reconcile;
    let r = resolve(cli, None, false)?;
    let Some(log) = r.settings.audit_log.clone() else {
        return Err(Error::NotConfigured(
            "reconcile reads and writes the audit log, and none is configured: pass --audit-log PATH (or KLAVIYO_AUDIT_LOG, or `audit_log` in the config file)".into(),
        ));
    };
    let h = harness(&r)?;
    let (results, unsettled) = reconcile::run(&h).await.map_err(Error::Internal)?;
    if cli.json {
        println!("{}", json!({"ok": unsettled == 0, "result": results}));
    } else if results.is_empty() {
        println!(
            "nothing to reconcile: no write with an unknown outcome is pending in {}",
            log.display()
        );
    } else {
        for v in &results {
            println!(
                "{} {} {} ({}): {}: {}",
                v["time"].as_str().unwrap_or(""),
                v["method"].as_str().unwrap_or(""),
                v["path"].as_str().unwrap_or(""),
                v["operation"].as_str().unwrap_or(""),
                v["outcome"].as_str().unwrap_or(""),
                v["text"].as_str().unwrap_or("")
            );
        }
    }
    Ok(if unsettled == 0 {
        Exit::Ok
    } else {
        Exit::OutcomeUnknown
    })
}

/// `report`: the figures of the audit log, or the check of its chain.
fn report(
    cli: &Cli,
    since: Option<&str>,
    format: &str,
    out: Option<&Path>,
    verify: bool,
    logs: &[PathBuf],
) -> Result<Exit, Error> {
    use klaviyo_harness::report;
    let input = |field: &str, why: String| Error::Input(vec![Problem::new(Some(field), why)]);
    let format = if cli.json { "json" } else { format };
    if !["text", "json", "html"].contains(&format) {
        return Err(input(
            "--format",
            format!("`{format}` is not a format: use text, json or html"),
        ));
    }
    let resolved = resolve(cli, None, false);
    // With --sandbox: the sandbox account's records only (the connection its audit records
    // carry, `sandbox:SEED`); without: a real account's, the sandbox's left out.
    let sandbox = resolved
        .as_ref()
        .ok()
        .filter(|r| r.settings.sandbox.is_some())
        .and_then(|r| r.settings.connection.clone());
    let logs = if logs.is_empty() {
        match resolved?.settings.audit_log {
            Some(p) => vec![p],
            None => return Err(Error::NotConfigured(
                "no audit log is configured: pass --log FILE, or turn auditing on with --audit-log PATH (or KLAVIYO_AUDIT_LOG, or `audit_log` in the config file)".into(),
            )),
        }
    } else {
        logs.to_vec()
    };
    if verify {
        let v = klaviyo_harness::audit::verify(&logs)
            .map_err(|e| Error::NotConfigured(format!("cannot read the audit log: {e}")))?;
        if cli.json {
            println!(
                "{}",
                json!({"ok": v.broken.is_none(), "result": {"files": v.files, "records": v.records, "broken": v.broken, "notes": v.notes}})
            );
        } else {
            for n in &v.notes {
                println!("note: {n}");
            }
            match &v.broken {
                None => println!(
                    "the chain holds: {} records in {} file(s)",
                    v.records, v.files
                ),
                Some(b) => println!(
                    "the chain is broken: {b} ({} records verified before it)",
                    v.records
                ),
            }
        }
        return Ok(if v.broken.is_none() {
            Exit::Ok
        } else {
            Exit::AuditBroken
        });
    }
    let since = match since {
        None => None,
        Some(s) => Some(
            report::since_day(s, &klaviyo_harness::audit::now_rfc3339()[..10])
                .map_err(|e| input("--since", e))?,
        ),
    };
    // A progress line on a terminal, for logs big enough to take a while.
    let big = logs
        .iter()
        .filter_map(|p| p.metadata().ok())
        .map(|m| m.len())
        .sum::<u64>()
        > 16 << 20;
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut progress = |share: f64| {
        if big && tty {
            eprint!("\rreading the audit log… {:3.0}%", share * 100.0);
            if share >= 1.0 {
                eprintln!();
            }
        }
    };
    let r = report::read(
        &logs,
        since.as_deref(),
        sandbox.as_deref().or(cli.connection.as_deref()),
        &mut progress,
    )
    .map_err(Error::NotConfigured)?;
    let text = match format {
        "json" => json!({"ok": true, "result": r}).to_string() + "\n",
        "html" => report::html(&r),
        _ => report::text(&r),
    };
    match out {
        Some(p) => std::fs::write(p, text)
            .map_err(|e| Error::Internal(format!("cannot write {}: {e}", p.display())))?,
        None => print!("{text}"),
    }
    Ok(Exit::Ok)
}

fn scopes(json_out: bool, s: &klaviyo_harness::Settings) -> Result<Exit, Error> {
    let mut scopes: Vec<&str> = klaviyo_catalog::generated::OPERATIONS
        .iter()
        .filter(|op| s.policy.decide(op).decision != Decision::Deny)
        .flat_map(|op| op.scopes.iter().copied())
        .collect();
    scopes.sort();
    scopes.dedup();
    if json_out {
        println!("{}", json!({"ok": true, "result": {"scopes": scopes}}));
    } else {
        println!("The current policy needs an API key with these scopes (read-only where only reads are allowed):");
        for sc in &scopes {
            println!("  {sc}");
        }
    }
    Ok(Exit::Ok)
}

/// Bearer tokens for `serve --http`: the file (mode 600), the environment, a command.
fn http_tokens(v: &ServeLayer) -> Result<Vec<klaviyo_harness::mcp::http::Token>, Error> {
    use klaviyo_harness::mcp::http::parse_tokens;
    let mut tokens = Vec::new();
    if let Some(p) = &v.http_token_file {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(p)
                .map_err(|e| Error::Config(format!("token file {}: {e}", p.display())))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                return Err(Error::Config(format!(
                    "token file {} is readable by group or others (mode {:o}); run `chmod 600 {}`",
                    p.display(),
                    mode & 0o777,
                    p.display()
                )));
            }
        }
        let text = std::fs::read_to_string(p)
            .map_err(|e| Error::Config(format!("token file {}: {e}", p.display())))?;
        tokens.extend(
            parse_tokens(&text, &format!("token file {}", p.display())).map_err(Error::Config)?,
        );
    }
    if let Some(t) = &v.http_tokens {
        tokens.extend(parse_tokens(t, "KLAVIYO_MCP_TOKENS").map_err(Error::Config)?);
    }
    if let Some(c) = &v.http_token_command {
        let out = std::process::Command::new("sh")
            .args(["-c", c])
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .output()
            .map_err(|e| Error::Config(format!("token command `{c}` could not run: {e}")))?;
        if !out.status.success() {
            return Err(Error::Config(format!(
                "token command `{c}` failed ({})",
                out.status
            )));
        }
        tokens.extend(
            parse_tokens(
                &String::from_utf8_lossy(&out.stdout),
                &format!("token command `{c}`"),
            )
            .map_err(Error::Config)?,
        );
    }
    let mut names: Vec<&str> = tokens.iter().map(|t| &*t.name).collect();
    names.sort();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(Error::Config(format!("two tokens are named `{}` (across the token file, KLAVIYO_MCP_TOKENS and the token command)", w[0])));
    }
    Ok(tokens)
}

async fn serve_mcp(r: &Resolved) -> Result<Exit, Error> {
    let v = &r.serve;
    let tokens = if v.http.is_some() {
        http_tokens(v)?
    } else {
        vec![]
    };
    let surface = klaviyo_agent::mcp::Surface::new(
        match v.mode() {
            ServeMode::Discovery => klaviyo_harness::mcp::Mode::Discovery,
            ServeMode::All => klaviyo_harness::mcp::Mode::All,
        },
        v.toolsets.clone(),
        v.read_only(),
        match v.untrusted() {
            UntrustedContent::Hide => klaviyo_harness::mcp::Untrusted::Hide,
            UntrustedContent::Label => klaviyo_harness::mcp::Untrusted::Label,
            UntrustedContent::Show => klaviyo_harness::mcp::Untrusted::Show,
        },
        r.settings.policy.clone(),
        klaviyo_agent::mcp::CLI,
    )
    .map_err(|e| Error::Input(vec![Problem::new(Some("--toolsets"), e)]))?;
    let server = klaviyo_harness::mcp::Server::new(Arc::new(harness(r)?), surface)
        .map_err(|e| Error::Internal(format!("{e:#}")))?;
    match &v.http {
        None => klaviyo_harness::mcp::serve_stdio(server)
            .await
            .map_err(|e| Error::Internal(format!("{e:#}")))?,
        Some(addr) => {
            let mut o = klaviyo_harness::mcp::http::HttpOptions::new(addr);
            o.tokens = tokens;
            o.allowed_hosts = v.http_allowed_hosts.clone().unwrap_or_default();
            o.allowed_origins = v.http_allowed_origins.clone().unwrap_or_default();
            if let Some(n) = v.http_max_concurrent_calls {
                o.max_concurrent_calls = n;
            }
            if let Some(n) = v.http_max_body_bytes {
                o.max_body_bytes = n;
            }
            if let Some(n) = v.http_rate_per_minute {
                o.rate_per_minute = n;
            }
            if let Some(m) = v.key_check_minutes {
                o.key_check_every = std::time::Duration::from_secs(m.max(1) * 60);
            }
            if let Some(secs) = v.grace_secs {
                o.grace = std::time::Duration::from_secs(secs);
            }
            klaviyo_harness::mcp::http::serve_http(server, o, |_| {})
                .await
                .map_err(|e| Error::Config(format!("{e:#}")))?
        }
    }
    Ok(Exit::Ok)
}
