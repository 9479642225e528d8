//! The integration tests, as one test binary (one link of wasmtime, shared helpers), as
//! wasmtime's `crates/wasi-http/tests/all` does: the real component (and a hostile one) in the
//! real harness, against local HTTP servers, on the runtime the CLI and the MCP server use
//! (`runtime::async_runtime()`, one thread).
//!
//! - `e2e`: exact requests, policy, audit, key hygiene, typed exports, import checks;
//! - `edge`: the HTTP build serving MCP itself, hosted as `wasmtime serve` hosts it;
//! - `sandbox`: a hostile guest is contained (egress, policy, memory, time, cache);
//! - `resilience`: pacing, retries that never duplicate a write, pagination, timeouts, caps;
//! - `cli`: the binary as scripts and people use it (exit codes, TTY confirmation, processes);
//! - `mcp`: the MCP server as an agent runtime sees it (rmcp's client over stdio and HTTP).

mod support;

mod account;
mod cli;
mod e2e;
mod edge;
mod mcp;
mod resilience;
mod sandbox;
