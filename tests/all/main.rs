//! The integration tests of the root package, as one test binary (one link, shared helpers):
//! the real component (and a hostile one) in the real harness, against local HTTP servers.
//!
//! - `e2e`: exact requests, policy, audit, key hygiene, typed exports, import checks;
//! - `edge`: the HTTP build serving MCP itself, hosted as `wasmtime serve` hosts it;
//! - `sandbox`: a hostile guest is contained (egress, policy, memory, time, cache);
//! - `resilience`: pacing, retries that never duplicate a write, pagination, timeouts, caps.

#[path = "../support/mod.rs"]
mod support;

mod e2e;
mod edge;
mod resilience;
mod sandbox;
