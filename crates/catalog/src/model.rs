//! The shape of one Klaviyo operation as data. The values live in `generated/operations.rs`,
//! written by `cargo xtask codegen` from Klaviyo's OpenAPI spec.

/// HTTP method of an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    Get,
    Post,
    Patch,
    Put,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Patch => "PATCH",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }

    /// Parses an upper- or lower-case method name.
    pub fn parse(s: &str) -> Option<Method> {
        Some(match s.to_ascii_uppercase().as_str() {
            "GET" => Method::Get,
            "POST" => Method::Post,
            "PATCH" => Method::Patch,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            _ => return None,
        })
    }
}

/// What an operation does to the account, for policy decisions.
///
/// Generated rule: `Read` when every OAuth scope ends in `:read`; `Destructive` for DELETE and
/// for operations that delete, suppress, unsubscribe, merge, cancel or request deletion;
/// `Write` otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Access {
    Read,
    Write,
    Destructive,
}

impl Access {
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
            Access::Destructive => "destructive",
        }
    }

    pub fn parse(s: &str) -> Option<Access> {
        match s {
            "read" => Some(Access::Read),
            "write" => Some(Access::Write),
            "destructive" => Some(Access::Destructive),
            _ => None,
        }
    }
}

/// Where a parameter goes in the HTTP request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Location {
    Path,
    Query,
    Header,
}

/// The type of a parameter's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A free string.
    String,
    /// One of the listed strings.
    Enum(&'static [&'static str]),
    /// A list of strings, comma-joined on the wire; limited to the listed values when not empty.
    List(&'static [&'static str]),
    /// An integer within bounds.
    Integer { min: i64, max: i64 },
}

/// One parameter of an operation (the `revision` header is implicit and not listed).
#[derive(Debug)]
pub struct Param {
    /// The name on the wire, e.g. `fields[profile]`, `page[size]`, `id`.
    pub wire: &'static str,
    /// The argument name in tool calls (snake case), e.g. `fields_profile`, `page_size`.
    pub arg: &'static str,
    pub location: Location,
    pub required: bool,
    pub kind: Kind,
    pub description: &'static str,
}

/// How the request body is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyEncoding {
    /// JSON:API, `application/vnd.api+json`.
    JsonApi,
    /// `multipart/form-data` (image upload).
    Multipart,
}

/// The request body of an operation.
#[derive(Debug)]
pub struct Body {
    pub encoding: BodyEncoding,
    pub required: bool,
    /// Name of the root schema in `generated/schemas.json` (see [`crate::tools::schema_defs`]).
    pub schema: &'static str,
    /// The JSON:API `data.type` the body must carry, when the spec fixes one.
    pub data_type: Option<&'static str>,
    /// Whether `data` is an array (relationship endpoints).
    pub data_is_array: bool,
}

/// Klaviyo's per-account rate limit tier for an operation. Serialises as
/// `{"burst_per_second", "steady_per_minute", "daily"}` (CLI `--json`, tool listings).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct RateLimit {
    pub burst_per_second: u32,
    pub steady_per_minute: u32,
    pub daily: Option<u32>,
}

/// One operation of Klaviyo's API.
#[derive(Debug)]
pub struct Operation {
    /// The spec's `operationId`, e.g. `get_profiles`; also the tool name.
    pub id: &'static str,
    /// The spec tag, e.g. `Profiles`.
    pub tag: &'static str,
    /// The spec summary, e.g. `Get Profiles`.
    pub title: &'static str,
    pub description: &'static str,
    pub method: Method,
    /// Path template, e.g. `/api/profiles/{id}`.
    pub path: &'static str,
    pub params: &'static [Param],
    pub body: Option<Body>,
    pub scopes: &'static [&'static str],
    pub rate_limit: RateLimit,
    /// Klaviyo's `x-klaviyo-operation-aliases`.
    pub aliases: &'static [&'static str],
    pub access: Access,
    /// `/client/*` operations: no private key; the public key goes in `company_id`.
    pub client: bool,
}

/// A promised action that is one action over several operations, picked by an argument.
#[derive(Debug)]
pub struct Composite {
    /// Tool name, e.g. `get_tag_relationships`.
    pub id: &'static str,
    pub title: &'static str,
    /// Tag whose interface carries the typed function.
    pub tag: &'static str,
    /// The argument that picks the operation, e.g. `relationship`.
    pub selector: &'static str,
    /// (selector value, operation id), e.g. `("campaigns", "get_campaign_ids_for_tag")`.
    pub choices: &'static [(&'static str, &'static str)],
    pub access: Access,
}
