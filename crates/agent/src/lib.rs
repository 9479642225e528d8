//! What agents and people see of the Klaviyo actions, as pure logic over the catalog (no I/O),
//! so the host harness (CLI, MCP server) and the HTTP (edge) component answer the same way:
//!
//! - [`auth`]: bearer tokens of the MCP HTTP front-ends (parsing, constant-time lookup).
//! - [`search`]: ranked search over everything the catalog knows about each action.
//! - [`describe`]: a compact description that fits a context window; the rest on request.
//! - [`policy`]: the user's policy and its one decision function (host and edge decide alike).
//! - [`mcp`]: the MCP tool surface as JSON (tools, annotations, results), for both front-ends.
//! - [`suggest`]: the nearest known names, for "did you mean …?" in every error.

pub mod auth;
pub mod describe;
pub mod mcp;
pub mod policy;
pub mod search;
pub mod suggest;
