//! Loading and running the component: one engine and one pre-instantiated component per
//! harness; a fresh store per call, with a memory limit and an epoch deadline.

use crate::egress::{CallLog, Hooks, KEY_PLACEHOLDER};
use crate::{Confirm, Settings, Shared};
use anyhow::{anyhow, bail, Context as _, Result};
use klaviyo_catalog::response::{Failure, KlaviyoError};
use klaviyo_catalog::tools::Tool;
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use wasmtime::component::{Component, Linker, ResourceTable, Val};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, StoreLimits,
    StoreLimitsBuilder, UpdateDeadline,
};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "harness",
        exports: { default: async },
    });
}

use bindings::exports::klaviyo::connector::tools as wit_tools;
use bindings::klaviyo::connector::{secrets as wit_secrets, types as wit_types};

/// Interfaces a component may import; anything else is refused at load time.
pub const ALLOWED_IMPORTS: &[&str] = &[
    "wasi:http/",
    "wasi:io/",
    "wasi:clocks/",
    "wasi:random/",
    "wasi:cli/",
    "klaviyo:connector/secrets@",
];

/// Most calls running at once (the pooling allocator's instance slots).
const MAX_CONCURRENT_CALLS: u32 = 64;
/// Memory a finished call's slot keeps mapped (only its dirty pages are reset).
const KEEP_RESIDENT: usize = 2 << 20;
/// Epoch tick: the granularity of the per-call deadline.
const TICK: Duration = Duration::from_millis(10);
/// Time the component gets past the call deadline to turn the host's timeout into its answer.
const GRACE: Duration = Duration::from_secs(2);
/// Most resources (requests, headers, streams, …) a call's guest may hold at once. A call
/// uses a few dozen; the bound keeps a guest from growing host memory outside its own
/// linear-memory limit (with [`MAX_FIELD_BYTES`]: at most ~16 MB of headers).
const MAX_RESOURCES: usize = 1_000;
/// Largest header set (a wasi:http `fields`) a guest may build, in bytes of host memory.
/// Our requests carry five short headers.
const MAX_FIELD_BYTES: usize = 16 * 1024;

/// Who a call is made for: who answers `ask` (default: the harness's own), and who is
/// calling (an HTTP client's token name, for the audit log).
#[derive(Clone, Default)]
pub struct Caller {
    pub confirm: Option<Arc<dyn Confirm>>,
    pub client: Option<Arc<str>>,
}

struct State {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    hooks: Hooks,
    limits: StoreLimits,
    connection: wit_secrets::Connection,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for State {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

impl wit_secrets::Host for State {
    fn get_connection(&mut self) -> wit_secrets::Connection {
        self.connection.clone()
    }
}

impl wit_types::Host for State {}

/// A tool as the component lists it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ToolInfo {
    pub name: String,
    pub title: String,
    pub description: String,
    pub tag: String,
    pub access: String,
    pub scopes: Vec<String>,
    pub rate_limit: klaviyo_catalog::RateLimit,
    pub aliases: Vec<String>,
    pub input_schema: serde_json::Value,
}

/// The result of one call, and what the host saw of it.
#[derive(Debug)]
pub struct CallOutcome {
    pub result: Result<String, Failure>,
    /// Requests captured in dry-run mode (key redacted).
    pub dry_runs: Vec<serde_json::Value>,
    /// Answers received over the network: (operation id, status, headers).
    pub responses: Vec<(String, u16, http::HeaderMap)>,
}

pub struct Harness {
    engine: Engine,
    pre: bindings::HarnessPre<State>,
    shared: Arc<Shared>,
    slots: Semaphore,
    tools: tokio::sync::OnceCell<Vec<ToolInfo>>,
}

/// The async runtime the CLI and the MCP server run calls on: one thread. A call mostly waits
/// on the network, and its CPU work (the guest, the host's checks) takes tens of microseconds;
/// on one thread the hand-offs between the guest, the egress hook and the HTTP connection are
/// plain task switches, where a multi-threaded runtime turns each into a cross-thread wake-up
/// (the bench measured 2× the per-call latency that way).
pub fn async_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

fn engine() -> Result<Engine> {
    let mut config = Config::new();
    config.epoch_interruption(true);
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(MAX_CONCURRENT_CALLS);
    pool.total_core_instances(MAX_CONCURRENT_CALLS * 8);
    pool.total_memories(MAX_CONCURRENT_CALLS * 2);
    pool.total_tables(MAX_CONCURRENT_CALLS * 8);
    pool.max_memory_size(256 << 20);
    pool.max_memories_per_component(4);
    pool.max_tables_per_component(16);
    pool.max_core_instances_per_component(32);
    // Reset a finished call's memory by rewriting only the pages it dirtied (found with
    // Linux's PAGEMAP_SCAN), instead of unmapping it all: no page faults for the next call and
    // no TLB shootdowns across threads. Where PAGEMAP_SCAN is missing, keep the default
    // (`madvise`), which beats rewriting the whole memory every call.
    if PoolingAllocationConfig::is_pagemap_scan_available() {
        pool.pagemap_scan(wasmtime::Enabled::Yes);
        pool.linear_memory_keep_resident(KEEP_RESIDENT);
        pool.table_keep_resident(KEEP_RESIDENT);
    }
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Ok(Engine::new(&config)?)
}

/// The connector component built into this binary (empty when it was built without one; see
/// `build.rs`).
pub static EMBEDDED_COMPONENT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/component.wasm"));

/// The release build of the component in this workspace's `target/` (tests, the bench):
/// `KLAVIYO_COMPONENT`, else the first `wasm32-wasip2/release/klaviyo_connector.wasm` above
/// this executable, else `target/…`.
pub fn default_component_path() -> PathBuf {
    if let Some(p) = std::env::var_os("KLAVIYO_COMPONENT") {
        return PathBuf::from(p);
    }
    let rel = Path::new("wasm32-wasip2/release/klaviyo_connector.wasm");
    if let Ok(exe) = std::env::current_exe() {
        // target/{debug,release}/klaviyo-harness (or target/debug/deps/test-binary)
        for dir in exe.ancestors().skip(1).take(3) {
            let p = dir.join(rel);
            if p.exists() {
                return p;
            }
        }
    }
    Path::new("target").join(rel)
}

/// Where an installed harness looks for a component file when none is given and none is
/// built in: beside the executable, then `/usr/local/share/klaviyo-harness/`, then
/// `~/.local/share/klaviyo-harness/`.
pub fn installed_component_paths() -> Vec<PathBuf> {
    let name = "klaviyo_connector.wasm";
    let mut v = Vec::new();
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        v.push(dir.join(name));
    }
    v.push(PathBuf::from("/usr/local/share/klaviyo-harness").join(name));
    if let Some(h) = std::env::var_os("HOME") {
        v.push(
            PathBuf::from(h)
                .join(".local/share/klaviyo-harness")
                .join(name),
        );
    }
    v
}

/// The cache directory, created `0700` when missing, if it is private: a real directory owned
/// by this user that group and others cannot write to. A precompiled artifact is native code
/// run inside the process that holds the key, so anything less is refused.
fn private_cache_dir(dir: Option<&Path>) -> Result<PathBuf, String> {
    let dir =
        dir.ok_or("no cache directory is known (set KLAVIYO_CACHE_DIR, XDG_CACHE_HOME or HOME)")?;
    crate::dirs::private_dir(dir, "cache directory")
}

/// Whether a cached artifact may be trusted: a regular file (not a link) owned by this user,
/// not writable by group or others.
fn private_file(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        std::fs::symlink_metadata(path)
            .is_ok_and(|m| m.is_file() && m.uid() == me && m.permissions().mode() & 0o022 == 0)
    }
    #[cfg(not(unix))]
    {
        path.is_file()
    }
}

/// Compiles the component, or loads the precompiled artifact cached for these exact bytes and
/// this engine configuration — only from a private cache directory (see
/// [`private_cache_dir`]); otherwise it compiles, with a warning.
pub fn load_component(engine: &Engine, path: &Path, cache: Option<&Path>) -> Result<Component> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read the component at {} (build it with `cargo build --target wasm32-wasip2 --release`)", path.display()))?;
    load_component_bytes(engine, &bytes, &path.display().to_string(), cache)
}

/// [`load_component`] for bytes in memory (`origin` names them in messages).
pub fn load_component_bytes(
    engine: &Engine,
    bytes: &[u8],
    origin: &str,
    cache: Option<&Path>,
) -> Result<Component> {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    let key = format!("{:x}-{:016x}", Sha256::digest(bytes), h.finish());
    let dir = match private_cache_dir(cache) {
        Ok(d) => Some(d),
        Err(why) => {
            eprintln!("warning: not using the precompiled cache: {why}; compiling the component (seconds) on every start");
            None
        }
    };
    if let Some(dir) = &dir {
        let cached = dir.join(format!("{key}.cwasm"));
        if private_file(&cached) {
            // SAFETY: the file was written by `Component::serialize` of this same engine
            // configuration (the key covers the engine's compatibility hash and the input
            // bytes), and sits, as a regular file of ours, in a directory only we can write to.
            match unsafe { Component::deserialize_file(engine, &cached) } {
                Ok(c) => return Ok(c),
                // E.g. a cache on a `noexec` mount: the code cannot be mapped executable.
                Err(e) => eprintln!(
                    "warning: the cached artifact {} cannot be loaded ({e}); compiling instead (is the cache on a noexec mount?)",
                    cached.display()
                ),
            }
        } else if cached.symlink_metadata().is_ok() {
            eprintln!(
                "warning: ignoring the cached artifact {}: it is not a private file of yours; recompiling",
                cached.display()
            );
        }
    }
    use std::io::IsTerminal;
    if std::io::stderr().is_terminal() {
        eprintln!("Compiling the component for this machine (once; a few seconds)…");
    }
    let component = Component::new(engine, bytes)
        .map_err(|e| anyhow!("the component at {origin} does not compile: {e}"))?;
    if let (Some(dir), Ok(art)) = (dir, component.serialize()) {
        let cached = dir.join(format!("{key}.cwasm"));
        let tmp = dir.join(format!("{key}.{}.tmp", std::process::id()));
        let mut open = std::fs::OpenOptions::new();
        open.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
        let written = open
            .open(&tmp)
            .and_then(|mut f| std::io::Write::write_all(&mut f, &art));
        if written.is_ok() {
            let _ = std::fs::rename(&tmp, &cached);
        } else {
            let _ = std::fs::remove_file(&tmp);
        }
    }
    Ok(component)
}

/// Refuses a component importing anything beyond [`ALLOWED_IMPORTS`] and our own types-only
/// interfaces (`klaviyo:connector/<tag>`: the parameter records and enums of the actions, which
/// carry no functions, so they give the component nothing to call).
pub fn check_imports(engine: &Engine, component: &Component) -> Result<()> {
    use wasmtime::component::types::ComponentItem;
    let ty = component.component_type();
    let types_only = |item: &ComponentItem| match item {
        ComponentItem::ComponentInstance(i) => i
            .exports(engine)
            .all(|(_, e)| matches!(e.ty, ComponentItem::Type(_))),
        _ => false,
    };
    let bad: Vec<String> = ty
        .imports(engine)
        .filter(|(name, item)| {
            !ALLOWED_IMPORTS.iter().any(|p| name.starts_with(p))
                && !(name.starts_with("klaviyo:connector/") && types_only(&item.ty))
        })
        .map(|(name, _)| name.to_string())
        .collect();
    if !bad.is_empty() {
        bail!(
            "refusing to load the component: it imports {} — this host provides only wasi:http, wasi:io, wasi:clocks, wasi:random, wasi:cli and klaviyo:connector/secrets (no filesystem, no sockets)",
            bad.join(", ")
        );
    }
    Ok(())
}

fn linker(engine: &Engine) -> Result<Linker<State>> {
    use wasmtime_wasi::p2::bindings::{cli, random};
    use wasmtime_wasi::{cli::WasiCli, random::WasiRandom, random::WasiRandomView};
    let mut l = Linker::new(engine);
    // io, clocks, random, stdio and http: the wasi:http proxy world.
    wasmtime_wasi_http::p2::add_to_linker_async(&mut l)?;
    // The rest of wasi:cli that Rust's std links (environment is empty; exit ends the call).
    fn cli_view(t: &mut State) -> wasmtime_wasi::cli::WasiCliCtxView<'_> {
        wasmtime_wasi::cli::WasiCliView::cli(t)
    }
    cli::environment::add_to_linker::<State, WasiCli>(&mut l, cli_view)?;
    cli::exit::add_to_linker::<State, WasiCli>(&mut l, cli_view)?;
    cli::terminal_input::add_to_linker::<State, WasiCli>(&mut l, cli_view)?;
    cli::terminal_output::add_to_linker::<State, WasiCli>(&mut l, cli_view)?;
    cli::terminal_stdin::add_to_linker::<State, WasiCli>(&mut l, cli_view)?;
    cli::terminal_stdout::add_to_linker::<State, WasiCli>(&mut l, cli_view)?;
    cli::terminal_stderr::add_to_linker::<State, WasiCli>(&mut l, cli_view)?;
    random::insecure::add_to_linker::<State, WasiRandom>(&mut l, |t| t.random())?;
    random::insecure_seed::add_to_linker::<State, WasiRandom>(&mut l, |t| t.random())?;
    bindings::Harness::add_to_linker::<State, wasmtime::component::HasSelf<State>>(&mut l, |s| s)?;
    Ok(l)
}

impl Harness {
    /// Loads the component at `component` with these settings; `confirm` handles `ask`.
    pub fn new(settings: Settings, component: &Path, confirm: Box<dyn Confirm>) -> Result<Harness> {
        let bytes = std::fs::read(component).with_context(|| format!("cannot read the component at {} (build it with `cargo build --target wasm32-wasip2 --release`)", component.display()))?;
        Harness::from_bytes(settings, &bytes, &component.display().to_string(), confirm)
    }

    /// [`Harness::new`] with the component's bytes (`origin` names them in messages).
    pub fn from_bytes(
        settings: Settings,
        bytes: &[u8],
        origin: &str,
        confirm: Box<dyn Confirm>,
    ) -> Result<Harness> {
        let engine = engine()?;
        let comp = load_component_bytes(&engine, bytes, origin, settings.cache_dir.as_deref())?;
        check_imports(&engine, &comp)?;
        let linker = linker(&engine)?;
        let pre = linker
            .instantiate_pre(&comp)
            .map_err(|e| anyhow!("the component cannot be linked: {e}"))?;
        let pre = bindings::HarnessPre::new(pre)
            .map_err(|e| anyhow!("the component does not export the tools interface: {e}"))?;
        let weak = engine.weak();
        std::thread::spawn(move || loop {
            std::thread::sleep(TICK);
            match weak.upgrade() {
                Some(e) => e.increment_epoch(),
                None => break,
            }
        });
        let shared = Arc::new(Shared {
            keys: crate::secrets::KeyStore::new(settings.key_source.clone()),
            audit: crate::audit::AuditLog::new(settings.audit_log.as_deref()),
            transport: crate::transport::Transport::new(
                settings.timeouts.clone(),
                settings.max_response_bytes,
            ),
            limiter: crate::throttle::RateLimiter::new(
                settings.state_dir.as_deref().filter(|_| settings.throttle),
            ),
            sandbox: settings.sandbox.as_ref().map(|sb| {
                Arc::new(klaviyo_sandbox::Sandbox::new(
                    sb.seed,
                    settings.state_dir.as_deref(),
                    sb.faults.clone(),
                ))
            }),
            settings,
            confirm: Arc::from(confirm),
        });
        Ok(Harness {
            engine,
            pre,
            shared,
            slots: Semaphore::new(MAX_CONCURRENT_CALLS as usize),
            tools: Default::default(),
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.shared.settings
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    fn store(
        &self,
        called: &str,
        tool: Option<Tool>,
        caller: &Caller,
        log: Arc<Mutex<CallLog>>,
    ) -> Store<State> {
        let s = &self.shared.settings;
        // The component gets a placeholder, never the key. With no key configured it gets
        // none (so it reports "not configured" itself), except in dry runs, which show the
        // request. A key file or command is not read here: the egress hook reads it when a
        // request is admitted, and refuses (audited) when it cannot.
        let has_key = self.shared.keys.configured();
        let connection = wit_secrets::Connection {
            base_url: s.base_url.clone(),
            revision: s.revision.clone(),
            private_key_placeholder: (has_key || s.dry_run || self.shared.sandbox.is_some())
                .then(|| KEY_PLACEHOLDER.to_string()),
            public_key: s.public_key.clone(),
        };
        let mut http = WasiHttpCtx::new();
        http.set_field_size_limit(MAX_FIELD_BYTES);
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_RESOURCES);
        let started = Instant::now();
        let state = State {
            wasi: WasiCtx::builder().build(),
            http,
            table,
            hooks: Hooks {
                call: crate::egress::CallScope {
                    shared: self.shared.clone(),
                    confirm: caller
                        .confirm
                        .clone()
                        .unwrap_or_else(|| self.shared.confirm.clone()),
                    called: called.to_string(),
                    tool,
                    client: caller.client.clone(),
                    log,
                    deadline: started + s.timeouts.call,
                },
            },
            limits: StoreLimitsBuilder::new()
                .memory_size(s.memory_limit)
                .instances(64)
                .build(),
            connection,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        // The HTTP path ends at the call deadline with a clear error; the guest itself gets a
        // little longer before it is interrupted. Until then, a guest that computes without
        // waiting yields to the runtime every tick, so other calls on the same (one-thread)
        // runtime go on while it spins.
        let stop = started + s.timeouts.call + GRACE;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            Ok(if Instant::now() >= stop {
                UpdateDeadline::Interrupt
            } else {
                UpdateDeadline::YieldCustom(1, Box::pin(tokio::task::yield_now()))
            })
        });
        store
    }

    /// Runs `f` on a fresh instance within the call deadline. `called` is the name the caller
    /// used (audit only); `tool` what it resolves to in the host's catalog (the requests it
    /// may make).
    async fn with_instance<R>(
        &self,
        called: &str,
        tool: Option<Tool>,
        caller: &Caller,
        f: impl AsyncFnOnce(
            &mut Store<State>,
            &bindings::Harness,
            wasmtime::component::Instance,
        ) -> Result<R>,
    ) -> Result<(R, CallLog)> {
        let _slot = self
            .slots
            .acquire()
            .await
            .expect("semaphore is never closed");
        let log = Arc::new(Mutex::new(CallLog::default()));
        let mut store = self.store(called, tool, caller, log.clone());
        let deadline = self.shared.settings.timeouts.call + GRACE;
        let run = async {
            let instance = self
                .pre
                .instance_pre()
                .instantiate_async(&mut store)
                .await?;
            let typed = bindings::Harness::new(&mut store, &instance)?;
            f(&mut store, &typed, instance).await
        };
        let r = match tokio::time::timeout(deadline, run).await {
            Ok(r) => r?,
            Err(_) => bail!("the call took longer than {} s", deadline.as_secs()),
        };
        let log = std::mem::take(&mut *log.lock().unwrap());
        Ok((r, log))
    }

    /// Every tool the component offers (listed once, then cached).
    pub async fn list_tools(&self) -> Result<&[ToolInfo]> {
        self.tools
            .get_or_try_init(|| async {
                let (tools, _) = self
                    .with_instance(
                        "list_tools",
                        None,
                        &Caller::default(),
                        async |store, h, _| {
                            Ok(h.klaviyo_connector_tools().call_list_tools(store).await?)
                        },
                    )
                    .await?;
                tools.into_iter().map(tool_info).collect::<Result<Vec<_>>>()
            })
            .await
            .map(Vec::as_slice)
    }

    /// One tool by any accepted name.
    pub async fn describe(&self, name: &str) -> Result<Option<ToolInfo>> {
        let (t, _) = self
            .with_instance(
                "describe_tool",
                None,
                &Caller::default(),
                async |store, h, _| {
                    Ok(h.klaviyo_connector_tools()
                        .call_describe_tool(store, name)
                        .await?)
                },
            )
            .await?;
        t.map(tool_info).transpose()
    }

    /// Calls a tool by name with JSON arguments through the component's `tools` interface.
    pub async fn call(&self, name: &str, arguments: &str) -> CallOutcome {
        self.call_as(name, arguments, &Caller::default()).await
    }

    /// [`Harness::call`] on behalf of `caller` (who answers `ask`, who is calling).
    pub async fn call_as(&self, name: &str, arguments: &str, caller: &Caller) -> CallOutcome {
        let tool = Tool::resolve(name).ok();
        let r = self
            .with_instance(name, tool, caller, async |store, h, _| {
                Ok(h.klaviyo_connector_tools()
                    .call_call_tool(store, name, arguments)
                    .await?)
            })
            .await;
        let r = r.map(|(result, log)| (result.map_err(failure_from_wit), log));
        // The component refuses a call without a key before making a request (it got no
        // placeholder): the host records that refusal like the ones it makes itself.
        if let Ok((Err(Failure::NotConfigured { message: why }), log)) = &r {
            if log.requests == 0 {
                let op = tool.and_then(|t| t.operations().first().copied());
                let _ = self.shared.audit.write(&crate::audit::Record {
                    time: crate::audit::now_rfc3339(),
                    event: "not-configured",
                    request: 0,
                    tool: name,
                    connection: self.shared.settings.connection.as_deref(),
                    client: caller.client.as_deref(),
                    operation: op.map_or("-", |o| o.id),
                    access: op.map_or("-", |o| o.access.as_str()),
                    decision: "deny",
                    method: op.map_or("-", |o| o.method.as_str()),
                    path: op.map_or("-", |o| o.path),
                    status: None,
                    duration_ms: None,
                    klaviyo_request_id: None,
                    detail: Some(why.clone()),
                    outcome: None,
                    paced_ms: None,
                    check: None,
                });
            }
        }
        outcome(r)
    }

    /// Calls a paginated tool page after page (following `links.next`), until the last page or
    /// at least `max_items` items. It stops only at a page boundary, so nothing is skipped: the
    /// result holds every item of the pages fetched (up to a page more than `max_items`), and
    /// `next_cursor` resumes exactly after them. `progress(pages, items)` is called after each
    /// page. The document: `data`, `included` (deduplicated), `meta` (`pages`, `items`,
    /// `truncated`, `max_items`) and `next_cursor`. A server that repeats a cursor, or whose
    /// `links.next` has no cursor, ends the walk with an error (never a silent end or a loop).
    pub async fn call_all_pages(
        &self,
        name: &str,
        args: &serde_json::Value,
        max_items: usize,
        progress: &(dyn Fn(usize, usize) + Sync),
    ) -> CallOutcome {
        use klaviyo_catalog::response::{next_page, NextPage};
        use serde_json::{json, Value};
        let fail = |f: Failure, responses| CallOutcome {
            result: Err(f),
            dry_runs: vec![],
            responses,
        };
        let tool = match Tool::resolve(name) {
            Ok(t) => t,
            Err(e) => return fail(e.into(), vec![]),
        };
        if !tool
            .operations()
            .iter()
            .all(|op| op.params.iter().any(|p| p.arg == "page_cursor"))
        {
            return fail(
                Failure::InvalidInput {
                    field: "all_pages".into(),
                    message: format!("`{}` is not paginated (it has no page_cursor)", tool.name()),
                },
                vec![],
            );
        }
        let mut args = match args {
            Value::Object(m) => m.clone(),
            Value::Null => Default::default(),
            _ => {
                return fail(
                    Failure::InvalidInput {
                        field: "arguments".into(),
                        message: "must be a JSON object".into(),
                    },
                    vec![],
                )
            }
        };
        let (mut data, mut included, mut seen) =
            (Vec::new(), Vec::new(), std::collections::HashSet::new());
        let (mut pages, mut responses) = (0usize, Vec::new());
        let mut cursors: std::collections::HashSet<String> = args
            .get("page_cursor")
            .and_then(Value::as_str)
            .map(String::from)
            .into_iter()
            .collect();
        let cursor = loop {
            let out = self
                .call(name, &Value::Object(args.clone()).to_string())
                .await;
            responses.extend(out.responses);
            let body = match out.result {
                Ok(b) => b,
                Err(f) => {
                    return CallOutcome {
                        result: Err(f),
                        dry_runs: out.dry_runs,
                        responses,
                    }
                }
            };
            if !out.dry_runs.is_empty() {
                return CallOutcome {
                    result: Ok(body),
                    dry_runs: out.dry_runs,
                    responses,
                };
            }
            pages += 1;
            let doc: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            match &doc["data"] {
                Value::Array(items) => data.extend(items.iter().cloned()),
                Value::Null => {}
                one => data.push(one.clone()),
            }
            for inc in doc["included"].as_array().into_iter().flatten() {
                if seen.insert((inc["type"].to_string(), inc["id"].to_string())) {
                    included.push(inc.clone());
                }
            }
            progress(pages, data.len());
            let stop = |why: String, responses| {
                fail(
                    Failure::Transport {
                        message: format!(
                            "{why}; stopped after {pages} page(s) and {} item(s) to avoid a loop",
                            data.len()
                        ),
                    },
                    responses,
                )
            };
            match next_page(&body) {
                NextPage::Last => break None,
                NextPage::NoCursor(link) => {
                    return stop(format!("page {pages} links to a next page ({link}) without a page cursor to follow"), responses)
                }
                NextPage::Cursor(c) if !cursors.insert(c.clone()) => {
                    return stop(format!("the server returned a cursor it had returned before (page {pages})"), responses)
                }
                NextPage::Cursor(c) if data.len() >= max_items => break Some(c),
                NextPage::Cursor(c) => {
                    args.insert("page_cursor".into(), Value::String(c));
                }
            }
        };
        let truncated = cursor.is_some();
        let mut doc = json!({
            "data": data,
            "meta": {"pages": pages, "items": data.len(), "max_items": max_items, "truncated": truncated},
            "next_cursor": cursor,
        });
        if truncated {
            doc["meta"]["note"] = json!(format!(
                "stopped at the end of page {pages} with {} items (max_items {max_items}): pass page_cursor=next_cursor to resume; nothing is skipped",
                data.len()
            ));
        }
        if !included.is_empty() {
            doc["included"] = Value::Array(included);
        }
        CallOutcome {
            result: Ok(doc.to_string()),
            dry_runs: vec![],
            responses,
        }
    }

    /// Calls a typed export, e.g. `get-profiles` with its params record, through wasmtime's
    /// dynamic API. `params` are the function's arguments as component values.
    pub async fn call_typed(&self, function: &str, params: Vec<Val>) -> CallOutcome {
        let tool = Tool::resolve(function).ok();
        let r = self
            .with_instance(
                function,
                tool,
                &Caller::default(),
                async |store, _, instance| {
                    let func = instance
                        .get_func(&mut *store, function)
                        .ok_or_else(|| anyhow!("the component exports no function {function}"))?;
                    let mut results = [Val::Bool(false)];
                    func.call_async(&mut *store, &params, &mut results).await?;
                    Ok(results[0].clone())
                },
            )
            .await;
        outcome(r.map(|(v, log)| (result_from_val(v), log)))
    }
}

/// A finished call (or a trap / host error while running it) as its outcome.
fn outcome(r: Result<(Result<String, Failure>, CallLog)>) -> CallOutcome {
    match r {
        Ok((result, log)) => CallOutcome {
            result,
            dry_runs: log.dry_runs,
            responses: log.responses,
        },
        Err(e) => CallOutcome {
            result: Err(Failure::Transport {
                message: format!("the component failed: {e:#}"),
            }),
            dry_runs: vec![],
            responses: vec![],
        },
    }
}

fn tool_info(t: wit_tools::Tool) -> Result<ToolInfo> {
    Ok(ToolInfo {
        input_schema: serde_json::from_str(&t.input_schema)
            .with_context(|| format!("tool {} has an invalid schema", t.name))?,
        name: t.name,
        title: t.title,
        description: t.description,
        tag: t.tag,
        access: match t.access {
            wit_tools::Access::Read => "read",
            wit_tools::Access::Write => "write",
            wit_tools::Access::Destructive => "destructive",
        }
        .to_string(),
        scopes: t.scopes,
        rate_limit: klaviyo_catalog::RateLimit {
            burst_per_second: t.rate_limit.burst_per_second,
            steady_per_minute: t.rate_limit.steady_per_minute,
            daily: t.rate_limit.daily,
        },
        aliases: t.aliases,
    })
}

fn failure_from_wit(e: wit_types::ApiError) -> Failure {
    use wit_types::ApiError as E;
    match e {
        E::Http(h) => Failure::Http {
            status: h.status,
            errors: h
                .errors
                .into_iter()
                .map(|k| KlaviyoError {
                    id: k.id,
                    code: k.code,
                    title: k.title,
                    detail: k.detail,
                    source_pointer: k.source_pointer,
                    source_parameter: k.source_parameter,
                })
                .collect(),
            request_id: h.request_id,
            hint: h.hint,
            body: h.body,
        },
        E::Throttled(t) => Failure::Throttled {
            retry_after_seconds: t.retry_after_seconds,
            detail: t.detail,
        },
        E::InvalidInput(i) => Failure::InvalidInput {
            field: i.field,
            message: i.message,
        },
        E::Denied(m) => Failure::Denied { message: m },
        E::NotConfigured(m) => Failure::NotConfigured { message: m },
        E::UnknownTool(m) => Failure::UnknownTool { message: m },
        E::Transport(m) => Failure::Transport { message: m },
        E::Timeout(m) => Failure::Timeout { message: m },
        E::OutcomeUnknown(m) => Failure::OutcomeUnknown { message: m },
    }
}

/// `result<string, api-error>` as a dynamic value → Rust.
fn result_from_val(v: Val) -> Result<String, Failure> {
    let text = |v: &Val| match v {
        Val::String(s) => s.clone(),
        _ => String::new(),
    };
    let field = |fields: &[(String, Val)], name: &str| {
        fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let opt = |v: Option<Val>| match v {
        Some(Val::Option(Some(b))) => Some(text(&b)),
        _ => None,
    };
    match v {
        Val::Result(Ok(Some(b))) => Ok(text(&b)),
        Val::Result(Ok(None)) => Ok(String::new()),
        Val::Result(Err(Some(b))) => match *b {
            Val::Variant(case, payload) => {
                let payload = payload.map(|p| *p);
                let rec = match &payload {
                    Some(Val::Record(f)) => f.clone(),
                    _ => vec![],
                };
                let s = payload.as_ref().map(text).unwrap_or_default();
                Err(match case.as_str() {
                    "invalid-input" => Failure::InvalidInput {
                        field: field(&rec, "field").map(|v| text(&v)).unwrap_or_default(),
                        message: field(&rec, "message").map(|v| text(&v)).unwrap_or_default(),
                    },
                    "throttled" => Failure::Throttled {
                        retry_after_seconds: match field(&rec, "retry-after-seconds") {
                            Some(Val::Option(Some(b))) => match *b {
                                Val::U32(n) => Some(n),
                                _ => None,
                            },
                            _ => None,
                        },
                        detail: field(&rec, "detail").map(|v| text(&v)).unwrap_or_default(),
                    },
                    "http" => Failure::Http {
                        status: match field(&rec, "status") {
                            Some(Val::U16(n)) => n,
                            _ => 0,
                        },
                        errors: match field(&rec, "errors") {
                            Some(Val::List(items)) => items
                                .iter()
                                .map(|e| {
                                    let f = match e {
                                        Val::Record(f) => f.clone(),
                                        _ => vec![],
                                    };
                                    KlaviyoError {
                                        id: opt(field(&f, "id")),
                                        code: field(&f, "code")
                                            .map(|v| text(&v))
                                            .unwrap_or_default(),
                                        title: field(&f, "title")
                                            .map(|v| text(&v))
                                            .unwrap_or_default(),
                                        detail: field(&f, "detail")
                                            .map(|v| text(&v))
                                            .unwrap_or_default(),
                                        source_pointer: opt(field(&f, "source-pointer")),
                                        source_parameter: opt(field(&f, "source-parameter")),
                                    }
                                })
                                .collect(),
                            _ => vec![],
                        },
                        request_id: opt(field(&rec, "request-id")),
                        hint: opt(field(&rec, "hint")),
                        body: opt(field(&rec, "body")),
                    },
                    "denied" => Failure::Denied { message: s },
                    "not-configured" => Failure::NotConfigured { message: s },
                    "unknown-tool" => Failure::UnknownTool { message: s },
                    "timeout" => Failure::Timeout { message: s },
                    "outcome-unknown" => Failure::OutcomeUnknown { message: s },
                    _ => Failure::Transport { message: s },
                })
            }
            other => Err(Failure::Transport {
                message: format!("unexpected error value {other:?}"),
            }),
        },
        other => Err(Failure::Transport {
            message: format!("unexpected result value {other:?}"),
        }),
    }
}
