//! Every tool of the generated catalog builds the right request from example arguments, and the
//! request rules (encoding, envelope, validation) hold, with bad inputs refused by name.

use klaviyo_catalog::encode::{decode, path_segment, query_component};
use klaviyo_catalog::example::{example_args, example_args_for};
use klaviyo_catalog::generated::{COMPOSITES, NAMES, OPERATIONS, PROMISED, REVISION};
use klaviyo_catalog::request::{prepare, Connection, Request};
use klaviyo_catalog::routes::match_route;
use klaviyo_catalog::tools::Tool;
use klaviyo_catalog::{Access, Error, Kind, Location, Method};
use serde_json::{json, Value};

fn conn() -> Connection {
    Connection {
        base_url: "https://a.klaviyo.com".into(),
        revision: REVISION.into(),
        private_key: Some("pk_PLACEHOLDER".into()),
        public_key: Some("PubKey1".into()),
    }
}

fn call(name: &str, args: Value) -> Result<Request, Error> {
    prepare(Tool::resolve(name).unwrap(), &args, &conn())
}

fn invalid(r: Result<Request, Error>) -> (String, String) {
    match r {
        Err(Error::InvalidInput { field, message }) => (field, message),
        other => panic!("expected invalid input, got {other:?}"),
    }
}

#[test]
fn catalog_has_every_operation_and_composite() {
    assert_eq!(OPERATIONS.len(), 345);
    assert_eq!(COMPOSITES.len(), 6);
    assert_eq!(Tool::all().count(), 351);
    let mut ids: Vec<&str> = OPERATIONS.iter().map(|o| o.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 345);
}

/// For every operation: method, path (ids substituted and encoded), query (each given
/// parameter, comma-joined lists), headers (revision, accept, auth or company_id, content-type).
#[test]
fn every_operation_builds_the_right_request() {
    for op in OPERATIONS {
        let args = example_args(Tool::Op(op), true);
        let req =
            prepare(Tool::Op(op), &args, &conn()).unwrap_or_else(|e| panic!("{}: {e}", op.id));
        assert_eq!(req.method, op.method, "{}", op.id);
        let (path, query) = req
            .path_and_query
            .split_once('?')
            .unwrap_or((&req.path_and_query, ""));
        let mut expected_path = op.path.to_string();
        let mut expected_query: Vec<String> = Vec::new();
        for p in op.params {
            let v = &args[p.arg];
            let text = match v {
                Value::Null if p.arg == "company_id" => "PubKey1".to_string(),
                Value::Null => continue,
                Value::String(s) => s.clone(),
                Value::Array(a) => a
                    .iter()
                    .map(|x| x.as_str().unwrap())
                    .collect::<Vec<_>>()
                    .join(","),
                other => other.to_string(),
            };
            match p.location {
                Location::Path => {
                    expected_path = expected_path.replace(&format!("{{{}}}", p.wire), &text)
                }
                Location::Query => expected_query.push(format!("{}={}", p.wire, text)),
                Location::Header => {
                    assert_eq!(req.header(p.wire), Some(text.as_str()), "{}", op.id)
                }
            }
        }
        assert_eq!(decode(path), expected_path, "{}", op.id);
        let got_query: Vec<String> = if query.is_empty() {
            vec![]
        } else {
            query.split('&').map(decode).collect()
        };
        assert_eq!(got_query, expected_query, "{}", op.id);
        assert_eq!(
            req.url,
            format!("https://a.klaviyo.com{}", req.path_and_query)
        );
        assert_eq!(req.header("revision"), Some(REVISION), "{}", op.id);
        assert_eq!(
            req.header("accept"),
            Some("application/vnd.api+json"),
            "{}",
            op.id
        );
        if op.client {
            assert_eq!(
                req.header("authorization"),
                None,
                "{}: client endpoints never carry the private key",
                op.id
            );
            assert!(
                got_query.iter().any(|q| q == "company_id=PubKey1"),
                "{}",
                op.id
            );
        } else {
            assert_eq!(
                req.header("authorization"),
                Some("Klaviyo-API-Key pk_PLACEHOLDER"),
                "{}",
                op.id
            );
        }
        match (&op.body, &req.body) {
            (None, None) => assert_eq!(req.header("content-type"), None),
            (Some(b), Some(body)) => {
                let ct = req.header("content-type").unwrap();
                if b.encoding == klaviyo_catalog::BodyEncoding::Multipart {
                    assert!(
                        ct.starts_with("multipart/form-data; boundary="),
                        "{}",
                        op.id
                    );
                } else {
                    assert_eq!(ct, "application/vnd.api+json", "{}", op.id);
                    let v: Value = serde_json::from_slice(body).unwrap();
                    if let Some(t) = b.data_type {
                        let ty = if b.data_is_array {
                            &v["data"][0]["type"]
                        } else {
                            &v["data"]["type"]
                        };
                        assert_eq!(ty, t, "{}", op.id);
                    }
                }
            }
            other => panic!("{}: body mismatch {other:?}", op.id),
        }
        // The host's own classification finds this same operation from the request it sees.
        let routed = match_route(req.method, path)
            .unwrap_or_else(|| panic!("{}: no route for {path}", op.id));
        assert_eq!(routed.id, op.id);
    }
}

#[test]
fn every_composite_reaches_each_of_its_operations() {
    for c in COMPOSITES {
        for (i, (value, id)) in c.choices.iter().enumerate() {
            let args = example_args_for(Tool::Composite(c), i, true);
            assert_eq!(args["relationship"], json!(value));
            let req = prepare(Tool::Composite(c), &args, &conn())
                .unwrap_or_else(|e| panic!("{}/{value}: {e}", c.id));
            assert_eq!(req.operation.id, *id);
            let path = req.path_and_query.split('?').next().unwrap();
            assert!(path.ends_with(&format!("/relationships/{value}")), "{path}");
        }
        let (field, msg) = invalid(prepare(
            Tool::Composite(c),
            &json!({"relationship": "nope", "id": "x"}),
            &conn(),
        ));
        assert_eq!(field, "relationship");
        assert!(msg.contains(c.choices[0].0), "{msg}");
    }
}

#[test]
fn all_promised_actions_resolve() {
    assert_eq!(PROMISED.len(), 225);
    for (title, tool) in PROMISED {
        let t = Tool::resolve(title).unwrap_or_else(|e| panic!("{title}: {e}"));
        assert_eq!(t.name(), *tool, "{title}");
    }
}

#[test]
fn names_resolve_in_every_accepted_form() {
    assert_eq!(
        Tool::resolve("get_profiles").unwrap().name(),
        "get_profiles"
    );
    assert_eq!(
        Tool::resolve("get-profiles").unwrap().name(),
        "get_profiles"
    );
    assert_eq!(
        Tool::resolve("Add Profile to List").unwrap().name(),
        "add_profiles_to_list"
    );
    assert_eq!(
        Tool::resolve("Get campaign campaign messages")
            .unwrap()
            .name(),
        "get_messages_for_campaign"
    );
    assert_eq!(
        Tool::resolve("Create Client Event V2").unwrap().name(),
        "create_client_event"
    );
    // A Klaviyo alias.
    assert_eq!(
        Tool::resolve("clone_campaign").unwrap().name(),
        "create_campaign_clone"
    );
    assert_eq!(
        Tool::resolve("Get Tag Relationships").unwrap().name(),
        "get_tag_relationships"
    );
    for op in OPERATIONS {
        for a in op.aliases {
            let t = Tool::resolve(a).unwrap();
            let shadowed = klaviyo_catalog::generated::SHADOWED_ALIASES
                .iter()
                .any(|(n, _)| n == a);
            assert!(shadowed || t.name() == op.id, "alias {a} of {}", op.id);
        }
    }
    match Tool::resolve("get_profilez") {
        Err(Error::UnknownTool(m)) => assert!(m.contains("get_profilez"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(
        NAMES.windows(2).all(|w| w[0].0 < w[1].0),
        "NAMES is sorted for binary search"
    );
}

#[test]
fn exact_request_for_a_typical_read() {
    let r = call(
        "get_profiles",
        json!({
            "fields_profile": ["email", "first_name"],
            "filter": "equals(email,'a+b@example.com')",
            "page_size": 5,
            "sort": "-created",
        }),
    )
    .unwrap();
    assert_eq!(r.method, Method::Get);
    assert_eq!(
        r.url,
        "https://a.klaviyo.com/api/profiles?fields%5Bprofile%5D=email,first_name&filter=equals(email,'a%2Bb@example.com')&page%5Bsize%5D=5&sort=-created"
    );
}

#[test]
fn path_ids_stay_inside_their_segment() {
    for id in ["a b", "ü", "$custom:::$default:::SKU-1", "a..b"] {
        let r = call("get_list", json!({"id": id})).unwrap();
        let path = r.path_and_query.split('?').next().unwrap();
        assert_eq!(path, format!("/api/lists/{}", path_segment(id)));
        assert_eq!(path.matches('/').count(), 3, "{path}");
        assert_eq!(match_route(Method::Get, path).unwrap().id, "get_list");
        assert!(path
            .split('/')
            .skip(1)
            .all(|s| klaviyo_catalog::encode::segment_problem(s).is_none()));
    }
}

#[test]
fn ids_that_would_change_the_path_are_refused_before_sending() {
    for id in ["a/b?c#d", "..", ".", "100%", "ü/../x", "a\\b", "x\ny"] {
        match call("get_list", json!({"id": id})) {
            Err(Error::InvalidInput { field, message }) => {
                assert_eq!(field, "id");
                assert!(message.contains("exactly as Klaviyo gives it"), "{message}");
            }
            other => panic!("{id:?}: {other:?}"),
        }
    }
}

#[test]
fn envelope_is_completed() {
    // Bare attributes: wrapped, type filled.
    let r = call("create_list", json!({"body": {"name": "VIP"}})).unwrap();
    let v: Value = serde_json::from_slice(r.body.as_ref().unwrap()).unwrap();
    assert_eq!(
        v,
        json!({"data": {"type": "list", "attributes": {"name": "VIP"}}})
    );
    // Resource object without type.
    let r = call(
        "create_list",
        json!({"body": {"attributes": {"name": "VIP"}}}),
    )
    .unwrap();
    let v: Value = serde_json::from_slice(r.body.as_ref().unwrap()).unwrap();
    assert_eq!(v["data"]["type"], "list");
    // PATCH: data.id from the path.
    let r = call("update_list", json!({"id": "L1", "body": {"name": "VIP2"}})).unwrap();
    let v: Value = serde_json::from_slice(r.body.as_ref().unwrap()).unwrap();
    assert_eq!(
        v,
        json!({"data": {"type": "list", "id": "L1", "attributes": {"name": "VIP2"}}})
    );
    // A different data.id is refused.
    let (field, msg) = invalid(call(
        "update_list",
        json!({"id": "L1", "body": {"data": {"id": "L2", "attributes": {"name": "x"}}}}),
    ));
    assert_eq!(field, "body.data.id");
    assert!(msg.contains("L1"), "{msg}");
    // Relationship endpoint: a list of ids.
    let r = call(
        "add_profiles_to_list",
        json!({"id": "L1", "body": ["P1", "P2"]}),
    )
    .unwrap();
    let v: Value = serde_json::from_slice(r.body.as_ref().unwrap()).unwrap();
    assert_eq!(
        v,
        json!({"data": [{"type": "profile", "id": "P1"}, {"type": "profile", "id": "P2"}]})
    );
    // A body given as JSON text is parsed.
    let r = call("create_list", json!({"body": "{\"name\": \"VIP\"}"})).unwrap();
    assert!(r.body.is_some());
}

#[test]
fn delete_bodies_are_sent_where_the_spec_has_them() {
    let r = call(
        "remove_profiles_from_list",
        json!({"id": "L1", "body": ["P1"]}),
    )
    .unwrap();
    assert_eq!(r.method, Method::Delete);
    assert_eq!(r.header("content-type"), Some("application/vnd.api+json"));
    assert!(r.body.is_some());
    let (field, _) = invalid(call("remove_profiles_from_list", json!({"id": "L1"})));
    assert_eq!(field, "body");
}

#[test]
fn bad_inputs_name_the_field_and_rule() {
    let cases: Vec<(&str, Value, &str, &str)> = vec![
        ("get_list", json!({}), "id", "required"),
        ("get_list", json!({"id": ""}), "id", "empty"),
        ("get_list", json!({"id": 5}), "id", "string"),
        (
            "get_list",
            json!({"id": "x", "bogus": 1}),
            "bogus",
            "unknown argument",
        ),
        (
            "get_profiles",
            json!({"page_size": 0}),
            "page_size",
            "from 1 to 100",
        ),
        (
            "get_profiles",
            json!({"page_size": 101}),
            "page_size",
            "from 1 to 100",
        ),
        (
            "get_profiles",
            json!({"page_size": "5"}),
            "page_size",
            "integer",
        ),
        ("get_profiles", json!({"sort": "name"}), "sort", "one of"),
        (
            "get_profiles",
            json!({"fields_profile": "email"}),
            "fields_profile",
            "array",
        ),
        (
            "get_profiles",
            json!({"fields_profile": ["nope"]}),
            "fields_profile[0]",
            "not allowed",
        ),
        (
            "get_profiles",
            json!({"fields_profile": []}),
            "fields_profile",
            "empty",
        ),
        ("get_campaigns", json!({}), "filter", "required"),
        ("create_list", json!({}), "body", "required"),
        (
            "create_list",
            json!({"body": {"name": 5}}),
            "body.data.attributes.name",
            "expected string",
        ),
        (
            "create_list",
            json!({"body": {"nmae": "x"}}),
            "body.data.attributes.nmae",
            "unknown property",
        ),
        (
            "create_list",
            json!({"body": "{not json"}),
            "body",
            "not valid JSON",
        ),
        ("create_list", json!({"body": 7}), "body", "JSON object"),
        (
            "create_profile",
            json!({"body": {"email": ["x"]}}),
            "body.data.attributes.email",
            "expected string",
        ),
        ("get_profiles", json!([1]), "arguments", "JSON object"),
    ];
    for (tool, args, field, needle) in cases {
        let (f, m) = invalid(call(tool, args.clone()));
        assert_eq!(f, field, "{tool} {args}");
        assert!(
            m.contains(needle),
            "{tool} {args}: `{m}` should mention `{needle}`"
        );
    }
}

#[test]
fn missing_keys_are_not_configured_errors() {
    let mut c = conn();
    c.private_key = None;
    assert!(matches!(
        prepare(Tool::resolve("get_lists").unwrap(), &json!({}), &c),
        Err(Error::NotConfigured(_))
    ));
    let mut c = conn();
    c.public_key = None;
    let args = example_args(Tool::resolve("create_client_event").unwrap(), false);
    assert!(matches!(
        prepare(Tool::resolve("create_client_event").unwrap(), &args, &c),
        Err(Error::NotConfigured(_))
    ));
}

#[test]
fn hostile_bodies_are_refused_not_crashed() {
    let mut deep = json!("x");
    for _ in 0..200 {
        deep = json!({ "a": deep });
    }
    let (f, m) = invalid(call(
        "create_profile",
        json!({"body": {"properties": deep}}),
    ));
    assert_eq!(f, "body");
    assert!(m.contains("nested"), "{m}");
}

#[test]
fn image_upload_is_multipart() {
    let gif = "R0lGODlhAQABAAAAACw=";
    let r = call(
        "upload_image_from_file",
        json!({"body": {"file": gif, "name": "logo", "hidden": true}}),
    )
    .unwrap();
    let ct = r.header("content-type").unwrap();
    let boundary = ct.split("boundary=").nth(1).unwrap();
    let body = String::from_utf8_lossy(r.body.as_ref().unwrap()).into_owned();
    assert!(body.starts_with(&format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"logo.gif\"\r\nContent-Type: image/gif\r\n\r\nGIF8")));
    assert!(body.contains("name=\"hidden\"\r\n\r\ntrue\r\n"));
    assert!(body.ends_with(&format!("--{boundary}--\r\n")));
    let (f, _) = invalid(call(
        "upload_image_from_file",
        json!({"body": {"file": "!!!"}}),
    ));
    assert_eq!(f, "body.file");
}

#[test]
fn access_classes_follow_the_rule() {
    let class = |id: &str| Tool::resolve(id).unwrap().access();
    assert_eq!(class("get_profiles"), Access::Read);
    assert_eq!(class("query_campaign_values"), Access::Read);
    assert_eq!(class("create_list"), Access::Write);
    assert_eq!(class("delete_list"), Access::Destructive);
    assert_eq!(class("bulk_unsubscribe_profiles"), Access::Destructive);
    assert_eq!(class("request_profile_deletion"), Access::Destructive);
    assert_eq!(class("create_client_review"), Access::Write);
    assert_eq!(class("delete_tag_relationships"), Access::Destructive);
    for op in OPERATIONS {
        if op.method == Method::Delete {
            assert_eq!(op.access, Access::Destructive, "{}", op.id);
        }
        if op.method == Method::Get {
            assert_eq!(op.access, Access::Read, "{}", op.id);
        }
    }
}

#[test]
fn input_schemas_are_self_contained() {
    for t in Tool::all() {
        let s = t.input_schema();
        let text = s.to_string();
        for r in text.split("\"$ref\":\"#/$defs/").skip(1) {
            let name = r.split('"').next().unwrap();
            assert!(
                s["$defs"].get(name).is_some(),
                "{}: $ref {name} not in its $defs",
                t.name()
            );
        }
        for p in t.operations()[0].params {
            assert!(
                s["properties"].get(p.arg).is_some(),
                "{}: {}",
                t.name(),
                p.arg
            );
            if p.required && p.arg != "company_id" {
                assert!(
                    s["required"].as_array().unwrap().contains(&json!(p.arg)),
                    "{}: {}",
                    t.name(),
                    p.arg
                );
            }
            if let Kind::Integer { min, max } = p.kind {
                assert_eq!(s["properties"][p.arg]["minimum"], json!(min));
                assert_eq!(s["properties"][p.arg]["maximum"], json!(max));
            }
        }
    }
}

#[test]
fn query_encoding_keeps_values_intact() {
    for s in [
        "equals(email,'x&y=z')",
        "any(id,[\"a\",\"b\"])",
        "greater-than(datetime,2026-01-01T00:00:00Z)",
    ] {
        assert_eq!(decode(&query_component(s)), s);
        assert!(!query_component(s).contains('&'));
    }
}

#[test]
fn every_problem_of_a_call_is_reported_at_once() {
    let tool = Tool::resolve("get_profiles").unwrap();
    let all = klaviyo_catalog::request::problems(
        tool,
        &json!({"page_size": 5000, "sort": "nonsense", "fields_profile": ["nope"], "bogus": 1}),
        &conn(),
    );
    let fields: Vec<&str> = all
        .iter()
        .map(|e| match e {
            Error::InvalidInput { field, .. } => field.split('[').next().unwrap(),
            _ => "",
        })
        .collect();
    for want in ["page_size", "sort", "fields_profile", "bogus"] {
        assert!(fields.contains(&want), "{want} missing from {all:?}");
    }
    // Body problems all at once: two missing attributes and an unknown one.
    let tool = Tool::resolve("create_tag").unwrap();
    let all = klaviyo_catalog::request::problems(tool, &json!({"body": {"nmae": "x"}}), &conn());
    let text = format!("{all:?}");
    assert!(
        text.contains("body.data.attributes.nmae") && text.contains("body.data.attributes.name"),
        "{text}"
    );
    // A valid call has none; a missing required argument is one.
    assert!(klaviyo_catalog::request::problems(
        Tool::resolve("get_lists").unwrap(),
        &json!({}),
        &conn()
    )
    .is_empty());
    let all =
        klaviyo_catalog::request::problems(Tool::resolve("get_list").unwrap(), &json!({}), &conn());
    assert_eq!(all.len(), 1, "{all:?}");
}
