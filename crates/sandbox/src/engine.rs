//! One request against the account: the host's route table (method + path → operation, the
//! same classification the egress guard uses) picks the operation, and the path's pattern picks
//! what it does — list, read, create, update, delete a resource; read, add, replace, remove a
//! relationship; read related resources — plus the jobs and queries agents use most
//! (`create_or_update_profile`, `bulk_subscribe_profiles`, `bulk_unsubscribe_profiles`,
//! `request_profile_deletion`, `create_event`, `query_metric_aggregates`). Every answer is
//! rendered through the operation's success shape from the spec ([`crate::shapes`]).
//!
//! Contract: an operation this module does not simulate answers 501 with
//! `code: sandbox_not_simulated` and changes nothing — never a made-up success. Errors are
//! Klaviyo's `errors[]` documents (404 unknown id, 400 with `source.pointer` / `source.parameter`,
//! 409 duplicate profile).

use crate::query::{self, compare, rfc3339};
use crate::seed::{subscriptions, Rng};
use crate::shapes::{self, ResourceShape, Shape};
use crate::store::{Key, Resource, State};
use klaviyo_catalog::{Method, Operation};
use serde_json::{json, Map, Value};
use std::cmp::Ordering;

/// One request as the sandbox sees it.
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    /// The raw (percent-encoded) query string, without `?`.
    pub query: &'a str,
    pub body: &'a [u8],
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: Value,
    /// The operation, when the route is known.
    pub operation: Option<&'static Operation>,
}

impl Response {
    pub(crate) fn empty(status: u16, op: &'static Operation) -> Response {
        Response {
            status,
            body: Value::Null,
            operation: Some(op),
        }
    }
}

/// A Klaviyo `errors[]` answer.
pub fn error(status: u16, code: &str, title: &str, detail: String, source: Option<Value>) -> Value {
    let mut e = json!({
        "id": format!("sandbox-{status}-{code}"),
        "status": status,
        "code": code,
        "title": title,
        "detail": detail,
    });
    if let Some(s) = source {
        e["source"] = s;
    }
    json!({ "errors": [e] })
}

pub(crate) struct Fail(pub u16, pub Value);

pub(crate) fn bad(detail: String, source: Value) -> Fail {
    Fail(
        400,
        error(400, "invalid", "Invalid input.", detail, Some(source)),
    )
}

pub(crate) fn conflict(detail: String, pointer: impl Into<String>) -> Fail {
    Fail(
        409,
        error(
            409,
            "conflict",
            "Conflict.",
            detail,
            Some(json!({"pointer": pointer.into()})),
        ),
    )
}

/// The key of a resource the request names, or a 404 at `pointer`.
pub(crate) fn existing(state: &State, ty: &str, id: &str, pointer: &str) -> Result<Key, Fail> {
    let k = (ty.to_string(), id.to_string());
    if state.exists(&k) {
        Ok(k)
    } else {
        Err(not_found(ty, id, Some(pointer)))
    }
}

pub(crate) fn not_found(what: &str, id: &str, pointer: Option<&str>) -> Fail {
    Fail(
        404,
        error(
            404,
            "not_found",
            "Not found.",
            format!("A {what} with id `{id}` does not exist in the sandbox account."),
            pointer.map(|p| json!({"pointer": p})),
        ),
    )
}

/// Decodes a query component: `+` is a space, as in every form-encoded query (a literal plus
/// arrives as `%2B`, which the catalog's decoder then restores).
fn query_decode(s: &str) -> String {
    klaviyo_catalog::encode::decode(&s.replace('+', " "))
}

pub struct Query {
    raw: Vec<(String, String)>,
    pairs: Vec<(String, String)>,
}

impl Query {
    pub fn parse(q: &str) -> Query {
        let raw: Vec<(String, String)> = q
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (k.to_string(), v.to_string())
            })
            .collect();
        let pairs = raw
            .iter()
            .map(|(k, v)| (query_decode(k), query_decode(v)))
            .collect();
        Query { raw, pairs }
    }
    pub fn get(&self, k: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    }
    fn list(&self, k: &str) -> Option<Vec<String>> {
        self.get(k).map(|v| {
            v.split(',')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        })
    }
    /// The query with `page[cursor]` set to `cursor` (other parameters as they came).
    fn with_cursor(&self, cursor: &str) -> String {
        let mut parts: Vec<String> = self
            .raw
            .iter()
            .filter(|(k, _)| query_decode(k) != "page[cursor]")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        parts.push(format!("page%5Bcursor%5D={cursor}"));
        parts.join("&")
    }
}

/// The collection segment of `/api/<seg>/…` for a resource type.
fn collection_of(ty: &str) -> String {
    use std::collections::HashMap;
    use std::sync::OnceLock;
    static MAP: OnceLock<HashMap<String, String>> = OnceLock::new();
    let m = MAP.get_or_init(|| {
        let mut m = HashMap::new();
        for op in klaviyo_catalog::generated::OPERATIONS {
            let segs: Vec<&str> = op.path.split('/').filter(|s| !s.is_empty()).collect();
            if op.method == Method::Get && segs.len() == 3 && segs[2].starts_with('{') {
                if let Some(t) = shapes::of(op.id)
                    .and_then(|s| s.data.first())
                    .and_then(|r| r.ty.clone())
                {
                    m.entry(t).or_insert_with(|| segs[1].to_string());
                }
            }
        }
        m
    });
    m.get(ty).cloned().unwrap_or_else(|| format!("{ty}s"))
}

/// The URL of a resource (`/api/<collection>/<id>`, the id encoded as the component encodes
/// path ids), the base of every link the sandbox writes.
pub(crate) fn resource_url(base: &str, k: &Key) -> String {
    format!(
        "{base}/api/{}/{}",
        collection_of(&k.0),
        klaviyo_catalog::encode::path_segment(&k.1)
    )
}

/// The resource type of collection `/api/<seg>`.
fn type_of(seg: &str) -> Option<String> {
    let item = klaviyo_catalog::routes::match_route(Method::Get, &format!("/api/{seg}/x"));
    let coll = klaviyo_catalog::routes::match_route(Method::Get, &format!("/api/{seg}"));
    for op in [item, coll].into_iter().flatten() {
        if let Some(t) = shapes::of(op.id)
            .and_then(|s| s.data.first())
            .and_then(|r| r.ty.clone())
        {
            return Some(t);
        }
    }
    klaviyo_catalog::routes::match_route(Method::Post, &format!("/api/{seg}"))
        .and_then(|o| o.body.as_ref()?.data_type)
        .map(String::from)
}

pub(crate) struct Ctx<'a> {
    pub base: &'a str,
    pub path: &'a str,
    pub q: Query,
    pub op: &'static Operation,
    pub shape: Option<&'static Shape>,
    pub now: i64,
    /// The body as it came (a multipart upload is not JSON).
    pub raw: &'a [u8],
}

impl Ctx<'_> {
    pub(crate) fn rshape(&self) -> Option<&'static ResourceShape> {
        self.shape.and_then(|s| s.data.first())
    }

    /// The attribute names of the resource this operation answers with (none when it answers
    /// no resource).
    pub(crate) fn attr_names(&self) -> &'static [String] {
        self.rshape()
            .and_then(|r| r.attrs.as_deref())
            .unwrap_or(&[])
    }
}

/// The `attributes` object of a JSON:API resource object (empty when it has none).
pub(crate) fn attrs_of(v: &Value) -> Map<String, Value> {
    v.get("attributes")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// The attributes of `given` that `names` (a shape's attribute names) allow.
pub(crate) fn known(given: &Map<String, Value>, names: &[String]) -> Map<String, Value> {
    given
        .iter()
        .filter(|(k, _)| names.contains(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Answers one request; `changed` says whether the account changed (and must be saved).
pub fn handle(state: &mut State, base: &str, req: &Request, now: i64) -> (Response, bool) {
    let Some(method) = Method::parse(req.method) else {
        return (
            Response {
                status: 405,
                body: error(
                    405,
                    "method_not_allowed",
                    "Method not allowed.",
                    format!("{} is not a method of Klaviyo's API", req.method),
                    None,
                ),
                operation: None,
            },
            false,
        );
    };
    let Some(op) = klaviyo_catalog::routes::match_route(method, req.path) else {
        return (
            Response {
                status: 404,
                body: error(
                    404,
                    "not_found",
                    "Not found.",
                    format!(
                        "{} {} is not an endpoint of Klaviyo's API",
                        req.method, req.path
                    ),
                    None,
                ),
                operation: None,
            },
            false,
        );
    };
    let cx = Ctx {
        base,
        path: req.path,
        q: Query::parse(req.query),
        op,
        shape: shapes::of(op.id),
        now,
        raw: req.body,
    };
    let multipart = op
        .body
        .as_ref()
        .is_some_and(|b| b.encoding == klaviyo_catalog::BodyEncoding::Multipart);
    let body: Value = if req.body.is_empty() || multipart {
        Value::Null
    } else {
        match serde_json::from_slice(req.body) {
            Ok(v) => v,
            Err(e) => {
                let b = error(
                    400,
                    "invalid",
                    "Invalid input.",
                    format!("the body is not JSON: {e}"),
                    Some(json!({"pointer": "/"})),
                );
                return (
                    Response {
                        status: 400,
                        body: b,
                        operation: Some(op),
                    },
                    false,
                );
            }
        }
    };
    let mut changed = false;
    let out = dispatch(state, &cx, &body, &mut changed);
    match out {
        Ok(r) => (r, changed),
        Err(Fail(status, body)) => (
            Response {
                status,
                body,
                operation: Some(op),
            },
            changed,
        ),
    }
}

/// The profile a body names (`{id?, attributes?}`, the `data` of a profile reference): its id
/// and attributes, or a 400 at `pointer` when it names none (no id, email, phone_number or
/// external_id).
pub(crate) fn profile_ref(
    data: &Value,
    pointer: &str,
) -> Result<(Option<String>, Map<String, Value>), Fail> {
    let attrs = attrs_of(data);
    let id = data.get("id").and_then(Value::as_str).map(String::from);
    if id.is_none()
        && !["email", "phone_number", "external_id"]
            .iter()
            .any(|f| attrs.get(*f).is_some_and(Value::is_string))
    {
        return Err(bad(
            "the profile needs an id, email, phone_number or external_id".into(),
            json!({ "pointer": pointer }),
        ));
    }
    Ok((id, attrs))
}

/// A text member the body must have, or a 400 at `pointer` saying `why`.
pub(crate) fn need_str<'v>(
    v: Option<&'v Value>,
    pointer: &str,
    why: &str,
) -> Result<&'v str, Fail> {
    v.and_then(Value::as_str)
        .ok_or_else(|| bad(why.to_string(), json!({ "pointer": pointer })))
}

/// `data.attributes` of a body, or a 400 naming it.
pub(crate) fn body_attributes(body: &Value) -> Result<Map<String, Value>, Fail> {
    body.pointer("/data/attributes")
        .and_then(Value::as_object)
        .cloned()
        .ok_or_else(|| {
            bad(
                "the body needs data.attributes".into(),
                json!({"pointer": "/data/attributes"}),
            )
        })
}

/// One resource answered in the operation's shape, with `links.self` of its own URL.
pub(crate) fn answer_one(
    state: &State,
    cx: &Ctx,
    key: &Key,
    fallback: u16,
) -> Result<Response, Fail> {
    let mut doc = document(state, cx, std::slice::from_ref(key), false)?;
    doc["links"] = json!({"self": resource_url(cx.base, key)});
    Ok(Response {
        status: status(cx, fallback),
        body: doc,
        operation: Some(cx.op),
    })
}

pub(crate) fn not_simulated(op: &Operation) -> Fail {
    Fail(
        501,
        error(
            501,
            "sandbox_not_simulated",
            "Not simulated by the sandbox.",
            format!(
                "`{}` ({} {}) is not simulated by the sandbox account: nothing was done and nothing changed. Run it against a real Klaviyo account (without --sandbox) to see its answer.",
                op.id,
                op.method.as_str(),
                op.path
            ),
            None,
        ),
    )
}

type Handler = fn(&mut State, &Ctx, &Value, &mut bool) -> Result<Response, Fail>;

/// The jobs and queries of this module (the others are in [`crate::actions::ACTIONS`]).
const SPECIAL: &[(&str, Handler)] = &[
    ("create_or_update_profile", upsert_profile_op),
    ("bulk_subscribe_profiles", |s, c, b, ch| {
        subscribe(s, c, b, true, ch)
    }),
    ("bulk_unsubscribe_profiles", |s, c, b, ch| {
        subscribe(s, c, b, false, ch)
    }),
    ("request_profile_deletion", delete_profile_job),
    ("create_event", create_event),
    ("query_metric_aggregates", |s, c, b, _| aggregates(s, c, b)),
];

/// What a plain resource path does, from the operation's path template and method alone.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Pattern {
    List,
    Create,
    Read,
    Update,
    Delete,
    /// `/api/X/{id}/relationships/R`
    Relationship,
    /// `/api/X/{id}/R`
    Related,
}

/// The pattern of `op`'s path and the resource type of its collection.
fn pattern(op: &Operation) -> Option<(Pattern, String)> {
    let tpl: Vec<&str> = op.path.split('/').filter(|s| !s.is_empty()).collect();
    if tpl.first() != Some(&"api") || tpl.len() < 2 {
        return None;
    }
    let ty = type_of(tpl[1])?;
    let pat = match (tpl.len(), op.method) {
        (2, Method::Get) => Pattern::List,
        // A plain resource collection: a job or a query posted there is not a resource.
        (2, Method::Post)
            if !tpl[1].ends_with("-jobs")
                && klaviyo_catalog::routes::match_route(Method::Get, op.path).is_some() =>
        {
            Pattern::Create
        }
        (3, Method::Get) => Pattern::Read,
        (3, Method::Patch) => Pattern::Update,
        (3, Method::Delete) => Pattern::Delete,
        (5, _) if tpl[3] == "relationships" => Pattern::Relationship,
        (4, Method::Get) => Pattern::Related,
        _ => return None,
    };
    Some((pat, ty))
}

fn handler(op: &Operation) -> Option<Handler> {
    SPECIAL
        .iter()
        .chain(crate::actions::ACTIONS)
        .find(|(id, _)| *id == op.id)
        .map(|(_, h)| *h)
}

/// Whether the sandbox simulates `op` (anything else answers 501 `sandbox_not_simulated`).
pub fn simulates(op: &Operation) -> bool {
    handler(op).is_some() || pattern(op).is_some()
}

fn dispatch(
    state: &mut State,
    cx: &Ctx,
    body: &Value,
    changed: &mut bool,
) -> Result<Response, Fail> {
    let op = cx.op;
    if let Some(h) = handler(op) {
        return h(state, cx, body, changed);
    }
    let Some((pat, ty)) = pattern(op) else {
        return Err(not_simulated(op));
    };
    let tpl: Vec<&str> = op.path.split('/').filter(|s| !s.is_empty()).collect();
    let got: Vec<String> = cx
        .path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(klaviyo_catalog::encode::decode)
        .collect();
    let id = got.get(2).cloned().unwrap_or_default();
    let owner: Key = (ty.clone(), id.clone());
    if matches!(
        pat,
        Pattern::Read | Pattern::Relationship | Pattern::Related
    ) && !state.exists(&owner)
    {
        return Err(not_found(&ty, &id, None));
    }
    match pat {
        Pattern::List => {
            let keys: Vec<Key> = state
                .data
                .get(&ty)
                .map(|m| m.keys().map(|id| (ty.clone(), id.clone())).collect())
                .unwrap_or_default();
            list(state, cx, keys, false)
        }
        Pattern::Create => create(state, cx, &ty, body, changed),
        Pattern::Read => single(state, cx, Some(owner)),
        Pattern::Update => update(state, cx, &owner, body, changed),
        Pattern::Delete => {
            if state
                .data
                .get_mut(&ty)
                .and_then(|m| m.remove(&id))
                .is_none()
            {
                return Err(not_found(&ty, &id, None));
            }
            *changed = true;
            Ok(Response::empty(status(cx, 204), op))
        }
        Pattern::Relationship => relationship(state, cx, &owner, tpl[4], op.method, body, changed),
        Pattern::Related => {
            let Some(rs) = cx.rshape() else {
                return Err(not_simulated(op));
            };
            let target = rs.ty.clone().unwrap_or_default();
            let keys = state.related(&owner, tpl[3], &target);
            if cx.shape.is_some_and(|s| s.many) {
                list(state, cx, keys, false)
            } else {
                single(state, cx, keys.into_iter().next())
            }
        }
    }
}

pub(crate) fn status(cx: &Ctx, fallback: u16) -> u16 {
    cx.shape.map_or(fallback, |s| s.status)
}

/// The ids a relationship holds as a filter compares them: one id, or a list of them.
fn ids_value(keys: &[Key]) -> Value {
    match keys {
        [one] => json!(one.1),
        many => Value::Array(many.iter().map(|k| json!(k.1)).collect()),
    }
}

/// A field's value for filters and sorting.
fn field(state: &State, k: &Key, name: &str) -> Result<Value, String> {
    let r = state.get(k).ok_or("gone")?;
    if name == "id" {
        return Ok(json!(k.1));
    }
    if let Some(v) = r.attributes.get(name).or(r.hidden.get(name)) {
        return Ok(v.clone());
    }
    // `coupon.id`, `profile.id`: the ids of a relationship.
    if let Some(rel) = name.strip_suffix(".id") {
        if let Some(v) = r.rels.get(rel) {
            return Ok(ids_value(v));
        }
        if shapes::item(&k.0).is_some_and(|s| s.rels.contains_key(rel)) {
            // A relationship of the type with nothing linked.
            return Ok(Value::Null);
        }
    }
    if name.contains('.') {
        let mut cur = Value::Object(r.attributes.clone());
        for part in name.split('.') {
            match cur.get(part) {
                Some(v) => cur = v.clone(),
                None => {
                    return Err(format!(
                        "`{name}` is not a field of {} that the sandbox can filter on",
                        k.0
                    ))
                }
            }
        }
        return Ok(cur);
    }
    if let Some(rel) = name.strip_suffix("_id") {
        let rel = rel.replace('_', "-");
        if let Some(v) = r.rels.get(&rel) {
            return Ok(ids_value(v));
        }
        // Membership stored on the other side (a profile's lists).
        return Ok(Value::Null);
    }
    // Known to the spec but not set on this resource.
    let known = shapes::item(&k.0)
        .and_then(|s| s.attrs.as_ref())
        .is_some_and(|a| a.iter().any(|x| x == name));
    if known || name.ends_with("created") || name.ends_with("updated") {
        return Ok(Value::Null);
    }
    Err(format!(
        "`{name}` is not a field of {} that the sandbox can filter on",
        k.0
    ))
}

fn page_size(cx: &Ctx) -> Result<usize, Fail> {
    let param = cx.op.params.iter().find(|p| p.wire == "page[size]");
    let max = match param.map(|p| p.kind) {
        Some(klaviyo_catalog::Kind::Integer { max, .. }) => max.max(1) as usize,
        _ => 10,
    };
    match cx.q.get("page[size]") {
        None => Ok(max.min(20)),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if n >= 1 && n <= max => Ok(n),
            _ => Err(bad(
                format!("page[size] must be a whole number from 1 to {max}, got `{v}`"),
                json!({"parameter": "page[size]"}),
            )),
        },
    }
}

/// A list answer: filtered, sorted, one page from the cursor on, with `links.next`.
fn list(state: &State, cx: &Ctx, mut keys: Vec<Key>, ids_only: bool) -> Result<Response, Fail> {
    if let Some(f) = cx.q.get("filter") {
        let e = query::parse(f)
            .map_err(|e| bad(format!("filter: {e}"), json!({"parameter": "filter"})))?;
        let mut kept = Vec::new();
        for k in keys {
            if query::eval(&e, &|n: &str| field(state, &k, n))
                .map_err(|e| bad(format!("filter: {e}"), json!({"parameter": "filter"})))?
            {
                kept.push(k);
            }
        }
        keys = kept;
    }
    let (sort_field, desc) = match cx.q.get("sort") {
        Some(s) => match s.strip_prefix('-') {
            Some(f) => (Some(f.to_string()), true),
            None => (Some(s.to_string()), false),
        },
        None => (None, false),
    };
    let sort_key = |k: &Key| -> Value {
        match &sort_field {
            Some(f) => field(state, k, f).unwrap_or(Value::Null),
            None => Value::Null,
        }
    };
    if let Some(f) = &sort_field {
        if let Some(k) = keys.first() {
            field(state, k, f)
                .map_err(|e| bad(format!("sort: {e}"), json!({"parameter": "sort"})))?;
        }
    }
    let order = |a: &(Value, Key), b: &(Value, Key)| -> Ordering {
        let o = compare(&a.0, &b.0)
            .unwrap_or(Ordering::Equal)
            .then_with(|| a.1 .1.cmp(&b.1 .1));
        if desc {
            o.reverse()
        } else {
            o
        }
    };
    let mut rows: Vec<(Value, Key)> = keys.into_iter().map(|k| (sort_key(&k), k)).collect();
    rows.sort_by(order);
    if let Some(c) = cx.q.get("page[cursor]") {
        let (ck, cid) = query::decode_cursor(c).ok_or_else(|| {
            bad(
                "page[cursor] is not a cursor this sandbox gave out; use next_cursor from the previous page".into(),
                json!({"parameter": "page[cursor]"}),
            )
        })?;
        let at = (ck, (String::new(), cid));
        rows.retain(|r| order(r, &at) == Ordering::Greater);
    }
    let size = page_size(cx)?;
    let more = rows.len() > size;
    rows.truncate(size);
    let self_link = if cx.q.raw.is_empty() {
        format!("{}{}", cx.base, cx.path)
    } else {
        format!(
            "{}{}?{}",
            cx.base,
            cx.path,
            cx.q.raw
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("&")
        )
    };
    let mut links = json!({"self": self_link});
    if more {
        if let Some((k, key)) = rows.last() {
            let c = query::encode_cursor(k, &key.1);
            links["next"] = json!(format!("{}{}?{}", cx.base, cx.path, cx.q.with_cursor(&c)));
        }
    }
    let page: Vec<Key> = rows.into_iter().map(|(_, k)| k).collect();
    let mut doc = if ids_only {
        json!({"data": page.iter().map(|k| json!({"type": k.0, "id": k.1})).collect::<Vec<_>>()})
    } else {
        document(state, cx, &page, true)?
    };
    doc["links"] = links;
    Ok(Response {
        status: status(cx, 200),
        body: doc,
        operation: Some(cx.op),
    })
}

pub(crate) fn single(state: &State, cx: &Ctx, key: Option<Key>) -> Result<Response, Fail> {
    if key.is_none() && !cx.shape.is_some_and(|s| s.nullable) {
        // A to-one relationship with nothing on the other end, where the spec allows no null.
        return Err(Fail(
            404,
            error(
                404,
                "not_found",
                "Not found.",
                format!(
                    "Nothing is related here in the sandbox account: {}",
                    cx.path
                ),
                None,
            ),
        ));
    }
    let keys: Vec<Key> = key.into_iter().collect();
    let mut doc = document(state, cx, &keys, false)?;
    doc["links"] = json!({"self": format!("{}{}", cx.base, cx.path)});
    Ok(Response {
        status: status(cx, 200),
        body: doc,
        operation: Some(cx.op),
    })
}

/// `{data, included?}` for `keys`, rendered through the operation's shape.
pub(crate) fn document(state: &State, cx: &Ctx, keys: &[Key], many: bool) -> Result<Value, Fail> {
    let rs = cx.rshape();
    let includes = cx.q.list("include").unwrap_or_default();
    if let Some(bad_rel) = includes.iter().find(|i| {
        let top = i.split('.').next().unwrap_or("");
        !rs.is_some_and(|r| r.rels.contains_key(top))
    }) {
        return Err(bad(
            format!(
                "include: `{bad_rel}` is not a relationship here; these are: {}",
                rs.map(|r| r.rels.keys().cloned().collect::<Vec<_>>().join(", "))
                    .unwrap_or_default()
            ),
            json!({"parameter": "include"}),
        ));
    }
    let mut included: Vec<Key> = Vec::new();
    let mut data = Vec::new();
    for k in keys {
        let shape = rs
            .filter(|r| r.ty.as_deref() == Some(k.0.as_str()))
            .or_else(|| shapes::item(&k.0));
        let mut v = render(state, cx, k, shape);
        for inc in &includes {
            let rel = inc.split('.').next().unwrap_or("");
            let Some((target, to_many)) = rs.and_then(|r| r.rel(rel)) else {
                continue;
            };
            let rel_keys = state.related(k, rel, target);
            for rk in &rel_keys {
                if !included.contains(rk) && shapes::item(&rk.0).is_some() {
                    included.push(rk.clone());
                }
            }
            let ids: Vec<Value> = rel_keys
                .iter()
                .map(|r| json!({"type": r.0, "id": r.1}))
                .collect();
            v["relationships"][rel]["data"] = if to_many {
                Value::Array(ids)
            } else {
                ids.into_iter().next().unwrap_or(Value::Null)
            };
        }
        data.push(v);
    }
    let mut doc = json!({
        "data": if many { Value::Array(data) } else { data.into_iter().next().unwrap_or(Value::Null) }
    });
    if !includes.is_empty() {
        let inc: Vec<Value> = included
            .iter()
            .map(|k| render(state, cx, k, shapes::item(&k.0)))
            .collect();
        doc["included"] = Value::Array(inc);
    }
    Ok(doc)
}

/// One resource object in `shape`: required attributes first (so the answer is always
/// complete), then the stored ones the shape names, cut to `fields[type]` if asked.
pub(crate) fn render(state: &State, cx: &Ctx, k: &Key, shape: Option<&ResourceShape>) -> Value {
    let Some(shape) = shape else {
        return json!({"type": k.0, "id": k.1});
    };
    let Some(names) = &shape.attrs else {
        return json!({"type": k.0, "id": k.1});
    };
    let empty = Resource::default();
    let r = state.get(k).unwrap_or(&empty);
    let extra =
        cx.q.list(&format!("additional-fields[{}]", k.0))
            .unwrap_or_default();
    let fields = cx.q.list(&format!("fields[{}]", k.0));
    // Decided before anything is copied: a profile's `subscriptions` are large, and Klaviyo
    // returns them (and `predictive_analytics`) only when asked.
    let wanted = |n: &str| -> bool {
        if k.0 == "profile"
            && (n == "subscriptions" || n == "predictive_analytics")
            && !extra.iter().any(|e| e == n)
            && !shape.required.contains_key(n)
        {
            return false;
        }
        fields.as_ref().is_none_or(|f| {
            f.iter()
                .any(|x| x == n || (x.starts_with(n) && x[n.len()..].starts_with('.')))
        })
    };
    let mut attrs: Map<String, Value> = shape
        .required
        .iter()
        .filter(|(n, _)| wanted(n))
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect();
    for n in names.iter().filter(|n| wanted(n)) {
        if let Some(v) = r.attributes.get(n) {
            attrs.insert(n.clone(), v.clone());
        }
    }
    // A campaign message's `definition` seen by operations that answer its parts.
    if let Some(def) = r.attributes.get("definition") {
        for part in ["label", "channel", "content"] {
            if names.iter().any(|n| n == part) && wanted(part) && !r.attributes.contains_key(part) {
                if let Some(v) = def.get(part) {
                    attrs.insert(part.into(), v.clone());
                }
            }
        }
    }
    if names.iter().any(|n| n == "profile_count") && extra.iter().any(|e| e == "profile_count") {
        attrs.insert(
            "profile_count".into(),
            json!(state.related(k, "profiles", "profile").len()),
        );
    }
    let url = resource_url(cx.base, k);
    let mut rels = Map::new();
    for rel in shape.rels.keys() {
        rels.insert(
            rel.clone(),
            json!({"links": {
                "self": format!("{url}/relationships/{rel}"),
                "related": format!("{url}/{rel}")
            }}),
        );
    }
    let mut v = json!({"type": k.0, "id": k.1, "attributes": attrs});
    if !shape.rels.is_empty() {
        v["relationships"] = Value::Object(rels);
    }
    v["links"] = json!({ "self": url });
    v
}

pub(crate) fn new_id(state: &mut State, ty: &str, attrs: &Map<String, Value>, now: i64) -> String {
    let mut rng = Rng::new(state.seed ^ state.counter.rotate_left(17));
    match ty {
        "coupon" => attrs
            .get("external_id")
            .and_then(Value::as_str)
            .map(String::from)
            .unwrap_or_else(|| state.short_id(&mut rng)),
        t if t.starts_with("catalog-") => match attrs.get("external_id").and_then(Value::as_str) {
            Some(e) => format!("$custom:::$default:::{e}"),
            None => state.short_id(&mut rng),
        },
        "list" | "segment" | "metric" | "flow" | "template" | "coupon-code" | "flow-message" => {
            state.short_id(&mut rng)
        }
        "profile" | "event" | "campaign" | "campaign-message" => state.ulid(&mut rng, now),
        _ => state.uuid(&mut rng),
    }
}

pub(crate) fn stamp_times(
    attrs: &mut Map<String, Value>,
    names: &[String],
    now: &str,
    creating: bool,
) {
    for (n, on_create) in [
        ("created", true),
        ("created_at", true),
        ("updated", false),
        ("updated_at", false),
    ] {
        if names.iter().any(|x| x == n) && (creating || !on_create) {
            attrs.insert(n.into(), json!(now));
        }
    }
}

pub(crate) fn data_of<'a>(body: &'a Value, ty: &str) -> Result<&'a Value, Fail> {
    let data = body
        .get("data")
        .ok_or_else(|| bad("the body needs `data`".into(), json!({"pointer": "/data"})))?;
    if let Some(t) = data.get("type").and_then(Value::as_str) {
        if t != ty {
            return Err(conflict(
                format!("data.type is `{t}`; this endpoint takes `{ty}`"),
                "/data/type",
            ));
        }
    }
    Ok(data)
}

/// Links from a body's `relationships`, each target checked.
pub(crate) fn body_links(state: &State, data: &Value) -> Result<Vec<(String, Key)>, Fail> {
    let mut out = Vec::new();
    for (rel, v) in data
        .get("relationships")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let items: Vec<&Value> = match v.get("data") {
            Some(Value::Array(a)) => a.iter().collect(),
            Some(o @ Value::Object(_)) => vec![o],
            _ => vec![],
        };
        for (i, it) in items.iter().enumerate() {
            let (Some(t), Some(id)) = (
                it.get("type").and_then(Value::as_str),
                it.get("id").and_then(Value::as_str),
            ) else {
                continue;
            };
            let k = (t.to_string(), id.to_string());
            if !state.exists(&k) {
                return Err(not_found(
                    t,
                    id,
                    Some(&format!("/data/relationships/{rel}/data/{i}/id")),
                ));
            }
            out.push((rel.clone(), k));
        }
    }
    Ok(out)
}

fn duplicate_profile(
    state: &State,
    attrs: &Map<String, Value>,
    except: Option<&str>,
) -> Option<(String, String)> {
    for f in ["email", "phone_number", "external_id"] {
        let Some(v) = attrs.get(f).filter(|v| v.is_string()) else {
            continue;
        };
        for (id, r) in state.data.get("profile").into_iter().flatten() {
            if Some(id.as_str()) != except && r.attributes.get(f) == Some(v) {
                return Some((id.clone(), f.to_string()));
            }
        }
    }
    None
}

fn duplicate(id: &str, field: &str) -> Fail {
    let mut e = error(
        409,
        "duplicate_profile",
        "Conflict.",
        format!("A profile already exists with this {field}."),
        Some(json!({"pointer": format!("/data/attributes/{field}")})),
    );
    e["errors"][0]["meta"] = json!({"duplicate_profile_id": id});
    Fail(409, e)
}

fn create(
    state: &mut State,
    cx: &Ctx,
    ty: &str,
    body: &Value,
    changed: &mut bool,
) -> Result<Response, Fail> {
    let data = data_of(body, ty)?;
    let names = cx.attr_names();
    let given = attrs_of(data);
    let mut attrs = known(&given, names);
    let now = rfc3339(cx.now);
    stamp_times(&mut attrs, names, &now, true);
    if ty == "profile" {
        if let Some((id, f)) = duplicate_profile(state, &attrs, None) {
            return Err(duplicate(&id, &f));
        }
    }
    if ty == "campaign" {
        attrs.insert("status".into(), json!("Draft"));
        attrs.entry("archived").or_insert(json!(false));
    }
    let links = body_links(state, data)?;
    let id = match data.get("id").and_then(Value::as_str) {
        Some(id) => id.to_string(),
        None => new_id(state, ty, &attrs, cx.now),
    };
    let key = (ty.to_string(), id.clone());
    if state.exists(&key) {
        return Err(conflict(
            format!("A {ty} with id `{id}` already exists."),
            "/data/id",
        ));
    }
    state.insert(&ty, &id, attrs);
    for (rel, to) in links {
        state.link(&key, &rel, &to);
    }
    if ty == "campaign" {
        create_campaign_messages(state, cx, &key, &given, &now);
    }
    *changed = true;
    single_created(state, cx, key)
}

/// A new campaign's messages (`campaign-messages.data[]` of its attributes).
fn create_campaign_messages(
    state: &mut State,
    cx: &Ctx,
    campaign: &Key,
    given: &Map<String, Value>,
    now: &str,
) {
    let msgs = given
        .get("campaign-messages")
        .and_then(|m| m.get("data"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for m in msgs {
        let def = m
            .get("attributes")
            .and_then(|a| a.get("definition"))
            .cloned()
            .unwrap_or(Value::Null);
        if let Some(ch) = def.get("channel") {
            if let Some(r) = state.get_mut(campaign) {
                r.hidden.insert("messages.channel".into(), ch.clone());
            }
        }
        let mid = new_id(state, "campaign-message", &Map::new(), cx.now);
        let mk = ("campaign-message".to_string(), mid.clone());
        let attrs =
            json!({"definition": def, "send_times": null, "created_at": now, "updated_at": now});
        state.insert(
            "campaign-message",
            &mid,
            attrs.as_object().cloned().unwrap_or_default(),
        );
        state.link(campaign, "campaign-messages", &mk);
        state.link(&mk, "campaign", campaign);
    }
}

fn single_created(state: &State, cx: &Ctx, key: Key) -> Result<Response, Fail> {
    if cx.rshape().is_none() {
        return Ok(Response::empty(status(cx, 204), cx.op));
    }
    answer_one(state, cx, &key, 201)
}

fn update(
    state: &mut State,
    cx: &Ctx,
    key: &Key,
    body: &Value,
    changed: &mut bool,
) -> Result<Response, Fail> {
    if !state.exists(key) {
        return Err(not_found(&key.0, &key.1, None));
    }
    let data = data_of(body, &key.0)?;
    if let Some(id) = data.get("id").and_then(Value::as_str) {
        if id != key.1 {
            return Err(conflict(
                format!("data.id `{id}` is not the id in the path (`{}`)", key.1),
                "/data/id",
            ));
        }
    }
    let names = match cx.attr_names() {
        [] => shapes::attr_names(&key.0),
        n => n,
    };
    let given = attrs_of(data);
    if key.0 == "profile" {
        if let Some((id, f)) = duplicate_profile(state, &given, Some(&key.1)) {
            return Err(duplicate(&id, &f));
        }
    }
    let links = body_links(state, data)?;
    let now = rfc3339(cx.now);
    let r = state.get_mut(key).expect("checked above");
    for (k, v) in given {
        if !names.contains(&k) {
            continue;
        }
        match (r.attributes.get_mut(&k), v) {
            (Some(Value::Object(old)), Value::Object(new))
                if k == "properties" || k == "location" =>
            {
                for (pk, pv) in new {
                    old.insert(pk, pv);
                }
            }
            (_, v) => {
                r.attributes.insert(k, v);
            }
        }
    }
    stamp_times(&mut r.attributes, names, &now, false);
    for (rel, to) in links {
        if let Some(v) = state.get_mut(key).and_then(|r| r.rels.get_mut(&rel)) {
            v.clear();
        }
        state.link(key, &rel, &to);
    }
    *changed = true;
    if cx.rshape().is_none() {
        return Ok(Response::empty(status(cx, 204), cx.op));
    }
    single(state, cx, Some(key.clone()))
}

fn relationship(
    state: &mut State,
    cx: &Ctx,
    owner: &Key,
    rel: &str,
    m: Method,
    body: &Value,
    changed: &mut bool,
) -> Result<Response, Fail> {
    let target = match cx.rshape().and_then(|r| r.ty.clone()).or_else(|| {
        cx.op
            .body
            .as_ref()
            .and_then(|b| b.data_type)
            .map(String::from)
    }) {
        Some(t) => t,
        None => return Err(not_simulated(cx.op)),
    };
    if m == Method::Get {
        let keys = state.related(owner, rel, &target);
        if cx.shape.is_some_and(|s| s.many) {
            let mut r = list(state, cx, keys, true)?;
            r.body["links"]["related"] = json!(format!("{}/{rel}", resource_url(cx.base, owner)));
            return Ok(r);
        }
        let d = keys
            .first()
            .map_or(Value::Null, |k| json!({"type": k.0, "id": k.1}));
        return Ok(Response {
            status: status(cx, 200),
            body: json!({"data": d, "links": {"self": format!("{}{}", cx.base, cx.path), "related": format!("{}/{rel}", resource_url(cx.base, owner))}}),
            operation: Some(cx.op),
        });
    }
    let items: Vec<Value> = match body.get("data") {
        Some(Value::Array(a)) => a.clone(),
        Some(o @ Value::Object(_)) => vec![o.clone()],
        Some(Value::Null) | None if m == Method::Patch => vec![],
        _ => {
            return Err(bad(
                "the body needs `data`: the resources to relate".into(),
                json!({"pointer": "/data"}),
            ))
        }
    };
    let mut keys = Vec::new();
    for (i, it) in items.iter().enumerate() {
        let t = it.get("type").and_then(Value::as_str).unwrap_or("");
        let id = it.get("id").and_then(Value::as_str).unwrap_or("");
        if t != target {
            return Err(conflict(
                format!("data[{i}].type is `{t}`; this relationship holds `{target}`"),
                format!("/data/{i}/type"),
            ));
        }
        let k = (t.to_string(), id.to_string());
        if !state.exists(&k) {
            return Err(not_found(t, id, Some(&format!("/data/{i}/id"))));
        }
        keys.push(k);
    }
    match m {
        Method::Post => {
            for k in &keys {
                state.relate(owner, rel, k);
            }
        }
        Method::Delete => {
            for k in &keys {
                state.unlink(owner, rel, k);
            }
        }
        Method::Patch => {
            for k in state.related(owner, rel, &target) {
                state.unlink(owner, rel, &k);
            }
            for k in &keys {
                state.link(owner, rel, k);
            }
        }
        _ => return Err(not_simulated(cx.op)),
    }
    *changed = true;
    Ok(Response::empty(status(cx, 204), cx.op))
}

// ---- jobs and queries ----

pub(crate) fn find_profile(
    state: &State,
    id: Option<&str>,
    attrs: &Map<String, Value>,
) -> Option<String> {
    if let Some(id) = id {
        if state.exists(&("profile".into(), id.into())) {
            return Some(id.to_string());
        }
    }
    duplicate_profile(state, attrs, None).map(|(id, _)| id)
}

/// Creates or updates a profile from `attrs`; returns its id and whether it was created.
pub(crate) fn upsert_profile(
    state: &mut State,
    now: i64,
    id: Option<&str>,
    attrs: &Map<String, Value>,
) -> (String, bool) {
    let names = shapes::attr_names("profile");
    let now_s = rfc3339(now);
    match find_profile(state, id, attrs) {
        Some(pid) => {
            let r = state
                .get_mut(&("profile".into(), pid.clone()))
                .expect("found");
            for (k, v) in attrs {
                if names.contains(k) && k != "subscriptions" {
                    match (r.attributes.get_mut(k), v) {
                        (Some(Value::Object(old)), Value::Object(new)) => {
                            for (pk, pv) in new {
                                old.insert(pk.clone(), pv.clone());
                            }
                        }
                        _ => {
                            r.attributes.insert(k.clone(), v.clone());
                        }
                    }
                }
            }
            r.attributes.insert("updated".into(), json!(now_s));
            (pid, false)
        }
        None => {
            // Consent is set by subscribing, never by writing the profile.
            let mut a = known(attrs, names);
            a.remove("subscriptions");
            a.insert("created".into(), json!(now_s));
            a.insert("updated".into(), json!(now_s));
            let has_phone = a.get("phone_number").is_some_and(Value::is_string);
            a.insert(
                "subscriptions".into(),
                subscriptions(
                    "NEVER_SUBSCRIBED",
                    has_phone.then_some("NEVER_SUBSCRIBED"),
                    &now_s,
                    false,
                ),
            );
            let pid = new_id(state, "profile", &a, now);
            state.insert("profile", &pid, a);
            (pid, true)
        }
    }
}

fn upsert_profile_op(
    state: &mut State,
    cx: &Ctx,
    body: &Value,
    changed: &mut bool,
) -> Result<Response, Fail> {
    let data = data_of(body, "profile")?;
    let (id, attrs) = profile_ref(data, "/data/attributes")?;
    let (pid, created) = upsert_profile(state, cx.now, id.as_deref(), &attrs);
    *changed = true;
    let key = ("profile".to_string(), pid);
    let mut r = answer_one(state, cx, &key, 200)?;
    r.status = if created { 201 } else { 200 };
    Ok(r)
}

/// `bulk_subscribe_profiles` / `bulk_unsubscribe_profiles`: consent for each profile (created
/// when new), and list membership when a list is named.
pub(crate) fn subscribe(
    state: &mut State,
    cx: &Ctx,
    body: &Value,
    on: bool,
    changed: &mut bool,
) -> Result<Response, Fail> {
    let data = body
        .get("data")
        .ok_or_else(|| bad("the body needs `data`".into(), json!({"pointer": "/data"})))?;
    let list_id = data
        .pointer("/relationships/list/data/id")
        .and_then(Value::as_str);
    let list = list_id.map(|id| ("list".to_string(), id.to_string()));
    if let Some(l) = &list {
        if !state.exists(l) {
            return Err(not_found(
                "list",
                &l.1,
                Some("/data/relationships/list/data/id"),
            ));
        }
    }
    let profiles = data
        .pointer("/attributes/profiles/data")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if profiles.is_empty() {
        return Err(bad(
            "no profiles given".into(),
            json!({"pointer": "/data/attributes/profiles/data"}),
        ));
    }
    let now_s = rfc3339(cx.now);
    for (i, p) in profiles.iter().enumerate() {
        let attrs = attrs_of(p);
        let id = p.get("id").and_then(Value::as_str);
        if id.is_none()
            && !["email", "phone_number"]
                .iter()
                .any(|f| attrs.get(*f).is_some_and(Value::is_string))
        {
            return Err(bad(
                format!("profile {i} needs an email or a phone_number"),
                json!({"pointer": format!("/data/attributes/profiles/data/{i}/attributes")}),
            ));
        }
        let pid = if on {
            upsert_profile(state, cx.now, id, &attrs).0
        } else {
            match find_profile(state, id, &attrs) {
                Some(p) => p,
                None => continue,
            }
        };
        let key = ("profile".to_string(), pid);
        let email_ch = attrs
            .get("subscriptions")
            .and_then(|s| s.get("email"))
            .is_some()
            || (!on && attrs.get("email").is_some());
        let sms_ch = attrs
            .get("subscriptions")
            .and_then(|s| s.get("sms"))
            .is_some()
            || (!on && attrs.get("phone_number").is_some());
        let consent = if on { "SUBSCRIBED" } else { "UNSUBSCRIBED" };
        if let Some(r) = state.get_mut(&key) {
            let subs = r
                .attributes
                .entry("subscriptions")
                .or_insert_with(|| subscriptions("NEVER_SUBSCRIBED", None, &now_s, false));
            if email_ch {
                subs["email"]["marketing"]["consent"] = json!(consent);
                subs["email"]["marketing"]["can_receive_email_marketing"] = json!(on);
                subs["email"]["marketing"]["consent_timestamp"] = json!(now_s);
                subs["email"]["marketing"]["last_updated"] = json!(now_s);
                subs["email"]["marketing"]["method"] = json!("API");
            }
            if sms_ch {
                subs["sms"]["marketing"]["consent"] = json!(consent);
                subs["sms"]["marketing"]["can_receive_sms_marketing"] = json!(on);
                subs["sms"]["marketing"]["consent_timestamp"] = json!(now_s);
                subs["sms"]["marketing"]["last_updated"] = json!(now_s);
                subs["sms"]["marketing"]["method"] = json!("API");
            }
            r.attributes.insert("updated".into(), json!(now_s));
        }
        if let Some(l) = &list {
            if on {
                state.relate(l, "profiles", &key);
            } else {
                state.unlink(l, "profiles", &key);
            }
        }
    }
    *changed = true;
    Ok(Response::empty(status(cx, 202), cx.op))
}

fn delete_profile_job(
    state: &mut State,
    cx: &Ctx,
    body: &Value,
    changed: &mut bool,
) -> Result<Response, Fail> {
    let p = body
        .pointer("/data/attributes/profile/data")
        .ok_or_else(|| {
            bad(
                "the body needs data.attributes.profile.data: the profile to delete".into(),
                json!({"pointer": "/data/attributes/profile/data"}),
            )
        })?;
    let attrs = attrs_of(p);
    let Some(pid) = find_profile(state, p.get("id").and_then(Value::as_str), &attrs) else {
        // Klaviyo accepts the job whether or not the profile exists; nothing to delete here.
        return Ok(Response::empty(status(cx, 202), cx.op));
    };
    let key = ("profile".to_string(), pid.clone());
    if let Some(m) = state.data.get_mut("profile") {
        m.remove(&pid);
    }
    if let Some(events) = state.data.get_mut("event") {
        events.retain(|_, e| !e.rels.get("profile").is_some_and(|v| v.contains(&key)));
    }
    for m in state.data.values_mut() {
        for r in m.values_mut() {
            for v in r.rels.values_mut() {
                v.retain(|k| k != &key);
            }
        }
    }
    *changed = true;
    Ok(Response::empty(status(cx, 202), cx.op))
}

pub(crate) fn create_event(
    state: &mut State,
    cx: &Ctx,
    body: &Value,
    changed: &mut bool,
) -> Result<Response, Fail> {
    let a = body_attributes(body)?;
    record_event(state, cx.now, &a)?;
    *changed = true;
    Ok(Response::empty(status(cx, 202), cx.op))
}

/// Stores one event from `create_event`-shaped attributes (metric by name, profile upserted).
pub(crate) fn record_event(
    state: &mut State,
    now: i64,
    a: &Map<String, Value>,
) -> Result<(), Fail> {
    let name = a
        .get("metric")
        .and_then(|m| m.pointer("/data/attributes/name"))
        .and_then(Value::as_str)
        .ok_or_else(|| {
            bad(
                "the event needs metric.data.attributes.name".into(),
                json!({"pointer": "/data/attributes/metric/data/attributes/name"}),
            )
        })?
        .to_string();
    let (pid_given, pattrs) = profile_ref(
        a.get("profile")
            .and_then(|p| p.get("data"))
            .unwrap_or(&Value::Null),
        "/data/attributes/profile/data",
    )?;
    let now_s = rfc3339(now);
    let metric = match state.data.get("metric").and_then(|m| {
        m.iter()
            .find(|(_, r)| r.attributes.get("name").and_then(Value::as_str) == Some(&name))
    }) {
        Some((id, _)) => id.clone(),
        None => {
            let attrs = json!({"name": name, "created": now_s, "updated": now_s,
                               "integration": {"object": "integration", "id": "7FtS4J", "name": "API", "category": "API"}});
            let id = new_id(state, "metric", &Map::new(), now);
            state.insert(
                "metric",
                &id,
                attrs.as_object().cloned().unwrap_or_default(),
            );
            id
        }
    };
    let (pid, _) = upsert_profile(state, now, pid_given.as_deref(), &pattrs);
    let t = a
        .get("time")
        .and_then(Value::as_str)
        .and_then(query::instant)
        .map_or(now, |s| s as i64);
    let mut props = a.get("properties").cloned().unwrap_or(json!({}));
    if let Some(v) = a.get("value") {
        props["$value"] = v.clone();
    }
    let eid = new_id(state, "event", &Map::new(), t);
    let uuid = a.get("unique_id").cloned().unwrap_or(json!(eid.clone()));
    let attrs =
        json!({"timestamp": t, "datetime": rfc3339(t), "uuid": uuid, "event_properties": props});
    let ek = ("event".to_string(), eid.clone());
    state.insert(
        "event",
        &eid,
        attrs.as_object().cloned().unwrap_or_default(),
    );
    state.link(&ek, "profile", &("profile".into(), pid.clone()));
    state.link(&ek, "metric", &("metric".into(), metric));
    if let Some(r) = state.get_mut(&("profile".into(), pid)) {
        r.attributes
            .insert("last_event_date".into(), json!(rfc3339(t)));
    }
    Ok(())
}

/// The starts of the `step`-long intervals from `start` until `to` (a report's dates); at most
/// 1,000, else a 400 at `pointer` naming the `unit`.
pub(crate) fn buckets(
    start: i64,
    to: i64,
    step: i64,
    unit: &str,
    pointer: &str,
) -> Result<Vec<i64>, Fail> {
    let n = (to - start + step - 1).div_euclid(step).max(0);
    if n > 1000 {
        return Err(bad(
            format!(
                "the time range holds more than 1000 {unit}s; narrow it or use a longer interval"
            ),
            json!({ "pointer": pointer }),
        ));
    }
    Ok((0..n).map(|i| start + i * step).collect())
}

/// `query_metric_aggregates`: count, sum_value and unique per interval over the stored events
/// of one metric, within the `datetime` bounds of the filter.
fn aggregates(state: &State, cx: &Ctx, body: &Value) -> Result<Response, Fail> {
    let a = body_attributes(body)?;
    let metric = need_str(
        a.get("metric_id"),
        "/data/attributes/metric_id",
        "metric_id is required",
    )?;
    let mkey = ("metric".to_string(), metric.to_string());
    if !state.exists(&mkey) {
        return Err(not_found(
            "metric",
            metric,
            Some("/data/attributes/metric_id"),
        ));
    }
    if a.get("by")
        .and_then(Value::as_array)
        .is_some_and(|b| !b.is_empty())
    {
        return Err(Fail(501, error(501, "sandbox_not_simulated", "Not simulated by the sandbox.", "grouping metric aggregates `by` a dimension is not simulated by the sandbox; ask without `by`".into(), Some(json!({"pointer": "/data/attributes/by"})))));
    }
    let measurements: Vec<String> = a
        .get("measurements")
        .and_then(Value::as_array)
        .map(|m| {
            m.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let interval = a.get("interval").and_then(Value::as_str).unwrap_or("day");
    let step: i64 = match interval {
        "hour" => 3600,
        "day" => 86400,
        "week" => 7 * 86400,
        "month" => 30 * 86400,
        other => {
            return Err(bad(
                format!("interval `{other}`: use hour, day, week or month"),
                json!({"pointer": "/data/attributes/interval"}),
            ))
        }
    };
    let (mut from, mut to) = (None, None);
    for f in a
        .get("filter")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        let e = query::parse(f).map_err(|e| {
            bad(
                format!("filter: {e}"),
                json!({"pointer": "/data/attributes/filter"}),
            )
        })?;
        let when = e.args.get(1).and_then(|x| match x {
            query::Arg::Word(w) | query::Arg::Str(w) => query::instant(w),
            _ => None,
        });
        match e.op.as_str() {
            "greater-or-equal" | "greater-than" => from = when,
            "less-than" | "less-or-equal" => to = when,
            _ => {}
        }
    }
    let (Some(from), Some(to)) = (from, to) else {
        return Err(bad("filter needs the time range: [\"greater-or-equal(datetime,START)\", \"less-than(datetime,END)\"]".into(), json!({"pointer": "/data/attributes/filter"})));
    };
    let (from, to) = (from as i64, to as i64);
    let start = if step >= 86400 {
        from.div_euclid(86400) * 86400
    } else {
        from.div_euclid(3600) * 3600
    };
    let dates = buckets(start, to, step, interval, "/data/attributes/filter")?;
    let n = dates.len();
    let mut count = vec![0f64; n];
    let mut sum = vec![0f64; n];
    let mut uniq: Vec<std::collections::BTreeSet<String>> = vec![Default::default(); n];
    for (_, e) in state.data.get("event").into_iter().flatten() {
        if !e.rels.get("metric").is_some_and(|v| v.contains(&mkey)) {
            continue;
        }
        let ts = e
            .attributes
            .get("timestamp")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if ts < from || ts >= to {
            continue;
        }
        let i = ((ts - start) / step) as usize;
        if i >= n {
            continue;
        }
        count[i] += 1.0;
        sum[i] += e
            .attributes
            .get("event_properties")
            .and_then(|p| p.get("$value"))
            .and_then(Value::as_f64)
            .unwrap_or(0.0);
        if let Some(p) = e.rels.get("profile").and_then(|v| v.first()) {
            uniq[i].insert(p.1.clone());
        }
    }
    let mut m = Map::new();
    for name in &measurements {
        let v: Vec<f64> = match name.as_str() {
            "count" => count.clone(),
            "sum_value" => sum.iter().map(|x| (x * 100.0).round() / 100.0).collect(),
            "unique" => uniq.iter().map(|u| u.len() as f64).collect(),
            other => {
                return Err(bad(
                    format!(
                        "measurement `{other}`: the sandbox counts count, sum_value and unique"
                    ),
                    json!({"pointer": "/data/attributes/measurements"}),
                ))
            }
        };
        m.insert(name.clone(), json!(v));
    }
    let body = json!({
        "data": {
            "type": "metric-aggregate",
            "id": format!("{metric}-{interval}-{from}-{to}"),
            "attributes": {"dates": dates.iter().map(|d| rfc3339(*d)).collect::<Vec<_>>(), "data": [{"dimensions": [], "measurements": m}]},
            "links": {"self": format!("{}/api/metric-aggregates", cx.base)}
        },
        "links": {"self": format!("{}/api/metric-aggregates", cx.base)}
    });
    Ok(Response {
        status: status(cx, 200),
        body,
        operation: Some(cx.op),
    })
}
