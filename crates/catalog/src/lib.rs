//! Klaviyo's API as data, and the pure logic shared by the component and the host.
//!
//! - [`generated`]: one static [`Operation`] descriptor per spec operation, the composite
//!   actions, the accepted names and the body schemas — written by `cargo xtask codegen`.
//! - [`tools`]: resolving a tool by any accepted name, and each tool's JSON Schema.
//! - [`request`]: arguments (JSON) → validated, exact HTTP request. No I/O.
//! - [`validate`]: the JSON Schema subset the spec's request bodies use.
//! - [`response`]: Klaviyo's answers → result or structured error.
//! - [`routes`]: method + concrete path → operation, for the host's own classification.
//! - [`encode`], [`dates`]: percent-encoding; calendar arithmetic.
//!
//! Nothing here does I/O, so all of it is tested natively and runs the same inside the
//! component and in the host.

pub mod dates;
pub mod encode;
pub mod example;
mod model;
mod names;
pub mod request;
pub mod response;
pub mod routes;
pub mod tools;
pub mod validate;

pub use model::*;

/// Generated from Klaviyo's OpenAPI spec; see `xtask/src/codegen.rs`.
pub mod generated {
    #[rustfmt::skip]
    #[path = "operations.rs"]
    mod operations;
    pub use operations::*;

    /// JSON Schema `$defs` of every request body (and what they reference), deflated by
    /// `build.rs` from `generated/schemas.json`; see [`crate::tools::schema_defs`].
    pub static SCHEMA_DEFS_DEFLATED: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/schemas.json.deflate"));
}

/// Errors the pure layer can report, a subset of the WIT `api-error`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// `field` is an argument name or a path into it (`body.data.attributes.email`).
    InvalidInput {
        field: String,
        message: String,
    },
    NotConfigured(String),
    UnknownTool(String),
}

impl Error {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Error {
        Error::InvalidInput {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::InvalidInput { field, message } => {
                write!(f, "invalid input: `{field}`: {message}")
            }
            Error::NotConfigured(m) => write!(f, "not configured: {m}"),
            Error::UnknownTool(m) => write!(f, "unknown tool: {m}"),
        }
    }
}

impl std::error::Error for Error {}
