//! Hostile input, generated: arbitrary tool arguments, ids, response bodies and links never
//! panic and always end in a result or a clear error. Bounded by proptest's case count.

use klaviyo_catalog::encode::{decode, path_segment};
use klaviyo_catalog::generated::OPERATIONS;
use klaviyo_catalog::request::{base64_decode, prepare, Connection};
use klaviyo_catalog::response::{interpret, next_cursor, Failure};
use klaviyo_catalog::routes::match_route;
use klaviyo_catalog::tools::Tool;
use klaviyo_catalog::{Error, Location};
use proptest::prelude::*;
use serde_json::{Map, Value};

fn conn() -> Connection {
    Connection {
        base_url: "https://a.klaviyo.com".into(),
        revision: "2026-07-15".into(),
        private_key: Some("placeholder".into()),
        public_key: Some("Pub".into()),
    }
}

/// Arbitrary JSON, a few levels deep, with strings that include separators and unicode.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "(?s).{0,40}".prop_map(Value::String),
        "[a-z/?#%. ]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,10}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Any arguments for any tool: a request or a clear error, never a panic. Keys are drawn
    /// from the tool's own argument names (so values get type-checked) and from noise.
    #[test]
    fn arguments_never_panic(tool_ix in 0usize..351, picks in prop::collection::vec((0usize..8, json()), 0..8), noise in "[a-z_]{1,8}") {
        let tool = Tool::by_index(tool_ix).unwrap();
        let op = tool.operations()[0];
        let mut names: Vec<&str> = op.params.iter().map(|p| p.arg).collect();
        names.push("body");
        names.push(&noise);
        let mut args = Map::new();
        for (k, v) in picks {
            args.insert(names[k % names.len()].to_string(), v);
        }
        match prepare(tool, &Value::Object(args), &conn()) {
            Ok(req) => {
                prop_assert!(req.url.starts_with("https://a.klaviyo.com/"));
                let path = req.path_and_query.split('?').next().unwrap();
                prop_assert_eq!(path.split('/').count(), req.operation.path.split('/').count());
                prop_assert!(!req.path_and_query.contains('#'));
            }
            Err(Error::InvalidInput { field, message }) => {
                prop_assert!(!field.is_empty());
                prop_assert!(!message.is_empty());
            }
            Err(Error::NotConfigured(_)) | Err(Error::UnknownTool(_)) => {}
        }
    }

    /// Any id stays inside its path segment and round-trips.
    #[test]
    fn ids_stay_in_their_segment(id in "(?s).{1,30}") {
        let seg = path_segment(&id);
        prop_assert!(!seg.contains('/') && !seg.contains('?') && !seg.contains('#'));
        prop_assert!(seg != "." && seg != "..");
        prop_assert_eq!(decode(&seg), id.clone());
        for op in OPERATIONS.iter().filter(|o| o.params.iter().any(|p| p.location == Location::Path)) {
            let args = op.params.iter().filter(|p| p.required && p.location == Location::Path)
                .map(|p| (p.arg.to_string(), Value::String(id.clone()))).collect::<Map<_, _>>();
            if let Ok(req) = prepare(Tool::Op(op), &Value::Object(args), &conn()) {
                let path = req.path_and_query.split('?').next().unwrap();
                prop_assert_eq!(match_route(op.method, path).map(|o| o.id), Some(op.id));
                // What the component sends, the host's canonical-path check accepts.
                for seg in path.split('/').skip(1) {
                    prop_assert_eq!(klaviyo_catalog::encode::segment_problem(seg), None);
                }
            }
        }
    }

    /// Any answer — status, headers, bytes — gives a result or a failure, never a panic; a
    /// success is always UTF-8 JSON (or empty).
    #[test]
    fn answers_never_panic(op_ix in 0usize..345, status in 100u16..600, body in prop::collection::vec(any::<u8>(), 0..300), ra in "[0-9a-z.\\- ]{0,6}") {
        let op = &OPERATIONS[op_ix];
        let header = |n: &str| (n == "retry-after").then(|| ra.clone());
        match interpret(op, status, &header, &body) {
            Ok(text) => {
                prop_assert!((200..300).contains(&status));
                prop_assert!(text.trim().is_empty() || serde_json::from_str::<Value>(&text).is_ok());
            }
            Err(Failure::Throttled { .. }) => prop_assert_eq!(status, 429),
            Err(_) => {}
        }
    }

    /// Structured bodies of any shape as answers.
    #[test]
    fn json_answers_never_panic(op_ix in 0usize..345, status in prop::sample::select(vec![200u16, 201, 202, 204, 400, 403, 404, 429, 500, 503]), body in json()) {
        let op = &OPERATIONS[op_ix];
        let text = body.to_string();
        let _ = interpret(op, status, &|_| None, text.as_bytes());
        let _ = next_cursor(&text);
    }

    /// A cursor survives the round trip through `links.next`, whatever it holds.
    #[test]
    fn cursors_round_trip(cursor in "(?s).{1,40}", size in 1u32..100) {
        let encoded = klaviyo_catalog::encode::query_component(&cursor);
        let doc = serde_json::json!({"links": {"next": format!("https://a.klaviyo.com/api/profiles?page%5Bsize%5D={size}&page%5Bcursor%5D={encoded}")}});
        prop_assert_eq!(next_cursor(&doc.to_string()), Some(cursor));
    }

    #[test]
    fn base64_never_panics(s in "(?s).{0,64}") {
        let _ = base64_decode(&s);
    }
}
