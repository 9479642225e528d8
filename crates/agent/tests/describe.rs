//! What agents rely on in `describe`: it fits a context window, its example runs as printed
//! (as JSON and as a pasted shell command), required arguments come first, long lists are cut
//! with a count, every part can be described by path, and `full` is the whole JSON Schema.

use klaviyo_agent::describe::{
    cli_example, describe, describe_text, shell_quote, size_distribution, DescribeOptions,
};
use klaviyo_catalog::example::example_args;
use klaviyo_catalog::request::{prepare, Connection};
use klaviyo_catalog::tools::Tool;
use serde_json::{json, Map, Value};

const COMPACT: DescribeOptions = DescribeOptions {
    path: None,
    full: false,
};

fn at(path: &str) -> DescribeOptions<'_> {
    DescribeOptions {
        path: Some(path),
        full: false,
    }
}

fn conn() -> Connection {
    Connection {
        base_url: "https://a.klaviyo.com".into(),
        revision: klaviyo_catalog::generated::REVISION.into(),
        private_key: Some("pk_placeholder".into()),
        public_key: Some("PubKey1".into()),
    }
}

fn tool(name: &str) -> Tool {
    Tool::resolve(name).unwrap()
}

fn compact(t: Tool) -> Value {
    describe(t, &COMPACT).unwrap()
}

/// Every value of `key` anywhere in `v`.
fn all_strings<'a>(v: &'a Value, key: &str, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == key {
                    if let Some(s) = x.as_str() {
                        out.push(s);
                    }
                }
                all_strings(x, key, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| all_strings(x, key, out)),
        _ => {}
    }
}

#[test]
fn compact_descriptions_fit_a_context_window() {
    let before = size_distribution(true);
    let after = size_distribution(false);
    println!("full JSON Schema: {before}");
    println!("compact:          {after}");
    assert_eq!(after.sizes.len(), 351);
    assert!(after.percentile(95).1 <= 8 * 1024, "{after}");
    assert!(after.max().1 <= 24 * 1024, "{after}");
}

#[test]
fn every_example_runs_as_printed_and_means_the_same_request_as_the_full_form() {
    for t in Tool::all() {
        let ex = &compact(t)["example"];
        let req = prepare(t, ex, &conn())
            .unwrap_or_else(|e| panic!("{}: example {ex} refused: {e}", t.name()));
        // The short forms (no data.type, bare attributes, list of ids) are completed into the
        // same request as the full document the example generator gives.
        let full = prepare(t, &example_args(t, false), &conn()).unwrap();
        assert_eq!(req.path_and_query, full.path_and_query, "{}", t.name());
        // As JSON values: key order is serde_json's (insertion order where a dependency turns
        // on `preserve_order`), not part of the request's meaning.
        let json = |b: &Option<Vec<u8>>| {
            b.as_ref()
                .map(|b| serde_json::from_slice::<serde_json::Value>(b).map_err(|_| b.clone()))
        };
        assert_eq!(json(&req.body), json(&full.body), "{}", t.name());
    }
}

/// Splits a command line into words as a POSIX shell does (no expansions): blanks separate
/// words; `'…'` is literal; in `"…"` a backslash escapes `$`, `` ` ``, `"`, `\` and newline;
/// outside quotes a backslash escapes the next character and backslash-newline disappears.
fn shell_words(s: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\\' => match chars.next() {
                Some('\n') => {}
                Some(x) => {
                    cur.push(x);
                    in_word = true;
                }
                None => panic!("trailing backslash in {s}"),
            },
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(x) => cur.push(x),
                        None => panic!("unclosed ' in {s}"),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.peek() {
                            Some('$' | '`' | '"' | '\\') => cur.push(chars.next().unwrap()),
                            Some('\n') => {
                                chars.next();
                            }
                            _ => cur.push('\\'),
                        },
                        Some(x @ ('$' | '`')) => panic!("unescaped {x} in double quotes: {s}"),
                        Some(x) => cur.push(x),
                        None => panic!("unclosed \" in {s}"),
                    }
                }
            }
            '$' | '`' | ';' | '&' | '|' | '<' | '>' | '(' | ')' | '*' | '?' | '[' | '#' | '~' => {
                panic!("unquoted shell character {c:?} in {s}")
            }
            x => {
                cur.push(x);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

/// The CLI's rule for `key=value`: the value is JSON when it parses as JSON, else text.
fn cli_args(words: &[String]) -> Value {
    let mut m = Map::new();
    for w in words {
        let (k, v) = w
            .split_once('=')
            .unwrap_or_else(|| panic!("`{w}` is not KEY=VALUE"));
        let value = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_string()));
        m.insert(k.to_string(), value);
    }
    Value::Object(m)
}

#[test]
fn the_cli_example_pasted_into_a_shell_gives_the_json_example() {
    for t in Tool::all() {
        let cmd = cli_example(t);
        let words = shell_words(&cmd);
        assert_eq!(words[..3], ["klaviyo-harness", "call", t.name()], "{cmd}");
        assert_eq!(cli_args(&words[3..]), compact(t)["example"], "{cmd}");
        let text = describe_text(t, &COMPACT).unwrap();
        assert!(
            text.trim_end().ends_with(cmd.lines().last().unwrap()),
            "{} text does not end with its CLI example",
            t.name()
        );
    }
    // The case that broke before: a filter with single quotes.
    let cmd = cli_example(tool("get_campaigns"));
    assert_eq!(
        cmd,
        "klaviyo-harness call get_campaigns filter=\"equals(messages.channel,'email')\""
    );
}

#[test]
fn shell_quoting_survives_every_special_character() {
    for s in [
        "",
        "plain",
        "two words",
        "it's",
        "say \"hi\"",
        "it's \"$HOME\" `x` \\ !",
        "equals(a,'b')",
        "line\nbreak",
        "'",
        "''",
        "-leading",
    ] {
        let q = shell_quote(s);
        assert_eq!(shell_words(&q), vec![s.to_string()], "{s:?} quoted as {q}");
    }
}

#[test]
fn required_arguments_come_first_and_every_argument_is_listed() {
    for t in Tool::all() {
        let schema = t.input_schema();
        let required: Vec<&str> = schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let mut all: Vec<&str> = schema["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let d = compact(t);
        let args = d["arguments"].as_array().unwrap();
        let names: Vec<&str> = args.iter().map(|a| a["name"].as_str().unwrap()).collect();
        let flags: Vec<bool> = args.iter().map(|a| a["required"] == json!(true)).collect();
        assert_eq!(&names[..required.len()], &required[..], "{}", t.name());
        assert!(
            flags[..required.len()].iter().all(|f| *f)
                && flags[required.len()..].iter().all(|f| !*f),
            "{}",
            t.name()
        );
        let mut sorted = names.clone();
        sorted.sort();
        all.sort();
        assert_eq!(sorted, all, "{}", t.name());
        for a in args {
            assert!(a["type"].is_string(), "{}: {a}", t.name());
            assert!(a["in"].is_string(), "{}: {a}", t.name());
        }
    }
}

#[test]
fn long_enumerations_are_cut_with_a_count_and_a_path_gives_them_all() {
    let t = tool("get_profiles");
    let d = compact(t);
    let fields = d["arguments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "fields_profile")
        .unwrap();
    let total = klaviyo_catalog::tools::operation("get_profiles")
        .unwrap()
        .params
        .iter()
        .find(|p| p.arg == "fields_profile")
        .map(|p| match p.kind {
            klaviyo_catalog::Kind::List(v) => v.len(),
            _ => 0,
        })
        .unwrap();
    let shown = fields["values"].as_array().unwrap().len();
    assert!(shown < 10, "{fields}");
    assert_eq!(fields["more_values"], json!(total - shown));
    let text = describe_text(t, &COMPACT).unwrap();
    assert!(
        text.contains(&format!("… (+{} more)", total - shown)),
        "{text}"
    );
    let all = describe(t, &at("fields_profile")).unwrap();
    assert_eq!(all["values"].as_array().unwrap().len(), total);
    assert!(all.get("more_values").is_none());
}

#[test]
fn a_filter_keeps_its_allowed_fields_and_operators() {
    let d = compact(tool("get_profiles"));
    let filter = d["arguments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "filter")
        .unwrap();
    let allowed = filter["allowed"].as_str().unwrap();
    assert!(
        allowed.contains("id, email, phone_number, external_id: any, equals"),
        "{allowed}"
    );
    assert!(
        allowed.contains("created, updated: greater-than, less-than"),
        "{allowed}"
    );
}

#[test]
fn json_api_bodies_show_attributes_and_relationships() {
    let d = compact(tool("create_coupon_code"));
    let body = d["arguments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "body")
        .unwrap();
    assert_eq!(body["attributes"][0]["name"], "unique_code");
    assert_eq!(body["attributes"][0]["required"], true);
    assert_eq!(body["relationships"][0]["name"], "coupon");
    assert_eq!(body["relationships"][0]["to"], "coupon");
    assert!(body["description"].as_str().unwrap().contains("filled in"));
    // PATCH: data.id comes from the path, and the example relies on it.
    let d = compact(tool("update_profile"));
    let body = &d["arguments"].as_array().unwrap()[1];
    assert!(
        body["description"].as_str().unwrap().contains("data.id"),
        "{body}"
    );
    // Relationship endpoints take a plain list of ids.
    let d = compact(tool("add_profiles_to_list"));
    assert_eq!(d["example"]["body"], json!(["example"]));
}

#[test]
fn create_flow_is_small_and_its_definition_can_be_described_by_path() {
    let t = tool("create_flow");
    let d = compact(t);
    assert!(serde_json::to_string(&d).unwrap().len() < 8 * 1024);
    let def = describe(t, &at("body.data.attributes.definition")).unwrap();
    let names: Vec<&str> = def["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    for n in ["triggers", "actions", "entry_action_id"] {
        assert!(names.contains(&n), "{names:?}");
    }
    let actions = describe(t, &at("body.data.attributes.definition.actions")).unwrap();
    let options: Vec<&str> = actions["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert!(options.contains(&"SendEmailAction"), "{options:?}");
    let email = describe(
        t,
        &at("body.data.attributes.definition.actions.SendEmailAction"),
    )
    .unwrap();
    assert!(email["fields"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["name"] == "type" && f["values"] == json!(["send-email"])));
    let text = describe_text(t, &at("body.data.attributes.definition")).unwrap();
    assert!(text.contains("entry_action_id"), "{text}");
}

#[test]
fn every_more_pointer_can_be_described() {
    for t in Tool::all() {
        let d = compact(t);
        let mut more = Vec::new();
        all_strings(&d, "more", &mut more);
        for m in more {
            let path = m.strip_prefix("describe with path=").unwrap();
            let node =
                describe(t, &at(path)).unwrap_or_else(|e| panic!("{}: `{m}` fails: {e}", t.name()));
            assert_eq!(node["path"], path);
            describe_text(t, &at(path)).unwrap();
        }
    }
}

#[test]
fn a_bad_path_names_the_path_and_lists_the_valid_keys() {
    let t = tool("create_flow");
    let e = describe(t, &at("body.data.attributes.nope")).unwrap_err();
    assert_eq!(e.valid, ["name", "definition"]);
    let msg = e.to_string();
    assert!(msg.contains("body.data.attributes.nope"), "{msg}");
    assert!(msg.contains("name, definition"), "{msg}");
    let e = describe(t, &at("nope")).unwrap_err();
    assert!(e.valid.contains(&"body".to_string()) && e.valid.contains(&"fields_flow".to_string()));
    let e = describe(t, &at("fields_flow.x")).unwrap_err();
    assert!(e.valid.is_empty());
    assert!(describe_text(t, &at("body.data.nope")).is_err());
}

#[test]
fn full_is_the_whole_json_schema() {
    for t in Tool::all() {
        let full = describe(
            t,
            &DescribeOptions {
                path: None,
                full: true,
            },
        )
        .unwrap();
        assert_eq!(full, t.input_schema(), "{}", t.name());
    }
    let sub = describe(
        tool("create_flow"),
        &DescribeOptions {
            path: Some("body.data.attributes.definition"),
            full: true,
        },
    )
    .unwrap();
    assert_eq!(sub["schema"], json!({"$ref": "#/$defs/FlowDefinition"}));
    assert!(sub["$defs"]["FlowDefinition"].is_object());
}

#[test]
fn composites_describe_their_selector_and_each_variant() {
    let t = tool("create_tag_relationships");
    let d = compact(t);
    assert_eq!(d["arguments"][0]["name"], "relationship");
    assert_eq!(
        d["arguments"][0]["values"],
        json!(["campaigns", "flows", "lists", "segments"])
    );
    assert_eq!(d["example"]["relationship"], "campaigns");
    let v = describe(t, &at("body.flows")).unwrap();
    assert!(
        v["description"].as_str().unwrap().contains("\"flow\""),
        "{v}"
    );
}

#[test]
fn descriptions_are_one_clean_line_and_text_lines_are_short() {
    for t in Tool::all() {
        let d = compact(t);
        let mut descs = Vec::new();
        all_strings(&d, "description", &mut descs);
        for s in descs {
            assert!(
                !s.contains('\n') && !s.contains("\\n"),
                "{}: {s:?}",
                t.name()
            );
            assert!(
                !s.contains("](http"),
                "{}: markdown link in {s:?}",
                t.name()
            );
        }
        let text = describe_text(t, &COMPACT).unwrap();
        assert!(!text.contains("\\n"), "{}: {text}", t.name());
        for line in text.lines() {
            // A line is longer only when it is one unbreakable word after its indent.
            assert!(
                line.chars().count() <= 100 || !line.trim().contains(' '),
                "{}: line of {} chars: {line}",
                t.name(),
                line.chars().count()
            );
        }
    }
}
