//! The host harness: loads the Klaviyo connector component in wasmtime and runs its tools with
//! the host in control — the key never enters the component, every request passes the egress
//! guard and the user's policy, and every request is audited.
//!
//! - [`runtime`]: engine, component loading (import check, precompiled cache), one fresh store
//!   per call with memory and time limits; the `secrets` import.
//! - [`egress`]: the wasi:http `send_request` hook (destination, classification, credentials,
//!   policy, audit, key substitution).
//! - [`policy`], [`secrets`], [`audit`], [`config`]: what the user configures.
//! - [`sandbox`]: the built-in sandbox account (`klaviyo_sandbox`) on a local port.

pub mod args;
pub mod audit;
pub mod config;
pub mod confirm;
pub mod dirs;
pub mod egress;
pub mod mcp;
pub mod policy;
pub mod reconcile;
pub mod report;
pub mod runtime;
pub mod sandbox;
pub mod secrets;
pub mod throttle;
pub mod transport;

pub use config::{Settings, Timeouts};
pub use confirm::{Confirm, NoTty, TtyConfirm};
pub use runtime::{CallOutcome, Caller, Harness, ToolInfo};

/// State shared by every call of one harness.
pub struct Shared {
    pub settings: Settings,
    pub keys: secrets::KeyStore,
    pub audit: audit::AuditLog,
    /// Who answers `ask` when a call brings no one of its own.
    pub confirm: std::sync::Arc<dyn Confirm>,
    pub transport: transport::Transport,
    pub limiter: throttle::RateLimiter,
    /// The sandbox account that answers instead of the network (`--sandbox`).
    pub sandbox: Option<std::sync::Arc<klaviyo_sandbox::Sandbox>>,
}
