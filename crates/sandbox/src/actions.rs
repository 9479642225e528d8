//! The sandbox's jobs, reports and client endpoints beyond plain resources: bulk create /
//! update / delete jobs (catalog, coupon codes, profile import, events), suppression, sending
//! a campaign and estimating its recipients, clones, template render and assignment, profile
//! merge, image upload, campaign and flow reports, and the `/client/*` writes.
//!
//! Reports are sample data, computed the same way every time from the account: a sent
//! campaign's recipients are its audience's members; opens, clicks and conversions follow
//! rates derived from the campaign's id — consistent with each other (rates are ratios of the
//! counts), never random between two calls.

use crate::engine::{
    answer_one, attrs_of, bad, body_attributes, body_links, buckets, create_event, data_of,
    document, existing, find_profile, known, need_str, new_id, not_found, profile_ref,
    record_event, resource_url, stamp_times, status, subscribe, upsert_profile, Ctx, Fail,
    Response,
};
use crate::query::{self, rfc3339};
use crate::shapes;
use crate::store::{Key, State};
use serde_json::{json, Map, Value};

type Handler = fn(&mut State, &Ctx, &Value, &mut bool) -> Result<Response, Fail>;

/// The operations of this module and what answers each.
pub(crate) const ACTIONS: &[(&str, Handler)] = &[
    ("bulk_create_catalog_items", bulk_job),
    ("bulk_create_catalog_variants", bulk_job),
    ("bulk_create_catalog_categories", bulk_job),
    ("bulk_update_catalog_items", bulk_job),
    ("bulk_update_catalog_variants", bulk_job),
    ("bulk_update_catalog_categories", bulk_job),
    ("bulk_delete_catalog_items", bulk_job),
    ("bulk_delete_catalog_variants", bulk_job),
    ("bulk_delete_catalog_categories", bulk_job),
    ("bulk_create_coupon_codes", bulk_job),
    ("bulk_import_profiles", import_profiles),
    ("bulk_create_events", bulk_events),
    ("bulk_create_client_events", bulk_events),
    ("create_client_event", create_event),
    ("create_client_profile", client_profile),
    ("create_client_subscription", client_subscription),
    ("create_back_in_stock_subscription", back_in_stock),
    ("create_client_back_in_stock_subscription", back_in_stock),
    ("create_client_push_token", |s, c, b, ch| {
        push_token(s, c, b, ch, true)
    }),
    ("unregister_client_push_token", |s, c, b, ch| {
        push_token(s, c, b, ch, false)
    }),
    ("bulk_suppress_profiles", |s, c, b, ch| {
        suppress(s, c, b, ch, true)
    }),
    ("bulk_unsuppress_profiles", |s, c, b, ch| {
        suppress(s, c, b, ch, false)
    }),
    ("send_campaign", send_campaign),
    ("refresh_campaign_recipient_estimation", estimate),
    ("create_campaign_clone", |s, c, b, ch| {
        clone(s, c, b, ch, "campaign", "new_name")
    }),
    ("clone_template", |s, c, b, ch| {
        clone(s, c, b, ch, "template", "name")
    }),
    ("render_template", |s, c, b, _| render_template(s, c, b)),
    ("assign_template_to_campaign_message", assign_template),
    ("merge_profiles", merge),
    ("upload_image_from_file", upload_image),
    ("query_campaign_values", |s, c, b, _| {
        report(s, c, b, Report::Campaigns)
    }),
    ("query_flow_values", |s, c, b, _| {
        report(s, c, b, Report::Flows { series: false })
    }),
    ("query_flow_series", |s, c, b, _| {
        report(s, c, b, Report::Flows { series: true })
    }),
];

/// A completed job, stored so its `get_*_job` reads it, answered in the operation's shape.
fn finish_job(
    state: &mut State,
    cx: &Ctx,
    ty: &str,
    id: Option<String>,
    counts: (usize, usize),
    links: &[(String, Key)],
) -> Result<Response, Fail> {
    let now = rfc3339(cx.now);
    let names = cx.attr_names();
    let mut a = Map::new();
    let (total, failed) = counts;
    for (k, v) in [
        ("status", json!("complete")),
        ("created_at", json!(now)),
        ("started_at", json!(now)),
        ("completed_at", json!(now)),
        ("total_count", json!(total)),
        ("completed_count", json!(total - failed)),
        ("failed_count", json!(failed)),
        ("skipped_count", json!(failed)),
        ("expires_at", json!(rfc3339(cx.now + 7 * 86400))),
    ] {
        if names.iter().any(|n| n == k) {
            a.insert(k.into(), v);
        }
    }
    let id = id.unwrap_or_else(|| new_id(state, ty, &Map::new(), cx.now));
    let key = (ty.to_string(), id.clone());
    state.insert(&ty, &id, a);
    for (rel, to) in links {
        state.link(&key, rel, to);
    }
    answer_one(state, cx, &key, 202)
}

/// The items array of a bulk job: the first `{data: [...]}` among its attributes.
fn job_items(data: &Value) -> Result<(String, Vec<Value>), Fail> {
    for (k, v) in data
        .get("attributes")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        if let Some(a) = v.get("data").and_then(Value::as_array) {
            return Ok((k.clone(), a.clone()));
        }
    }
    Err(bad(
        "the job has no items: data.attributes.<items>.data must list them".into(),
        json!({"pointer": "/data/attributes"}),
    ))
}

fn bulk_job(
    state: &mut State,
    cx: &Ctx,
    body: &Value,
    changed: &mut bool,
) -> Result<Response, Fail> {
    let job_ty = cx
        .op
        .body
        .as_ref()
        .and_then(|b| b.data_type)
        .unwrap_or("job")
        .to_string();
    let data = data_of(body, &job_ty)?;
    let (field, items) = job_items(data)?;
    let rel = cx
        .rshape()
        .and_then(|r| r.rels.keys().next().cloned())
        .unwrap_or_else(|| field.clone());
    let job_links = body_links(state, data)?;
    let now = rfc3339(cx.now);
    let mut done: Vec<(String, Key)> = Vec::new();
    let mut failed = 0;
    for (i, it) in items.iter().enumerate() {
        let ty = it
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let names = shapes::attr_names(&ty);
        if names.is_empty() {
            return Err(bad(
                format!("item {i}: `{ty}` is not a type this job takes"),
                json!({"pointer": format!("/data/attributes/{field}/data/{i}/type")}),
            ));
        }
        let mut attrs = known(&attrs_of(it), names);
        if job_ty.ends_with("-bulk-create-job") {
            stamp_times(&mut attrs, names, &now, true);
            let id = it
                .get("id")
                .and_then(Value::as_str)
                .map(String::from)
                .unwrap_or_else(|| new_id(state, &ty, &attrs, cx.now));
            let key = (ty.clone(), id.clone());
            if state.exists(&key) {
                failed += 1;
                continue;
            }
            if ty == "coupon-code" && !attrs.contains_key("status") {
                attrs.insert("status".into(), json!("UNASSIGNED"));
            }
            let links = body_links(state, it)?;
            state.insert(&ty, &id, attrs);
            for (r, to) in links {
                state.link(&key, &r, &to);
                // A variant's item, a code's coupon: shown from both sides.
                if r == "item" {
                    state.link(&to, "variants", &key);
                }
            }
            done.push((rel.clone(), key));
        } else {
            let id = it
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let key = (ty.clone(), id.clone());
            if !state.exists(&key) {
                failed += 1;
                continue;
            }
            if job_ty.ends_with("-bulk-delete-job") {
                state.data.get_mut(&ty).map(|m| m.remove(&id));
            } else {
                stamp_times(&mut attrs, names, &now, false);
                let r = state.get_mut(&key).expect("checked");
                for (k, v) in attrs {
                    r.attributes.insert(k, v);
                }
                done.push((rel.clone(), key));
            }
        }
    }
    *changed = true;
    let mut links = done;
    links.extend(job_links);
    finish_job(state, cx, &job_ty, None, (items.len(), failed), &links)
}

fn import_profiles(
    state: &mut State,
    cx: &Ctx,
    body: &Value,
    changed: &mut bool,
) -> Result<Response, Fail> {
    let data = data_of(body, "profile-bulk-import-job")?;
    let (_, items) = job_items(data)?;
    let lists = body_links(state, data)?;
    let mut links = Vec::new();
    let mut failed = 0;
    for it in &items {
        let Ok((id, a)) = profile_ref(it, "") else {
            failed += 1;
            continue;
        };
        let (pid, _) = upsert_profile(state, cx.now, id.as_deref(), &a);
        let pk = ("profile".to_string(), pid);
        for (_, l) in &lists {
            state.relate(l, "profiles", &pk);
        }
        links.push(("profiles".to_string(), pk));
    }
    links.extend(lists.iter().map(|(_, l)| ("lists".to_string(), l.clone())));
    *changed = true;
    finish_job(
        state,
        cx,
        "profile-bulk-import-job",
        None,
        (items.len(), failed),
        &links,
    )
}

fn bulk_events(
    state: &mut State,
    cx: &Ctx,
    body: &Value,
    changed: &mut bool,
) -> Result<Response, Fail> {
    let data = body
        .get("data")
        .ok_or_else(|| bad("the body needs `data`".into(), json!({"pointer": "/data"})))?;
    let (_, groups) = job_items(data)?;
    for (i, g) in groups.iter().enumerate() {
        let ga = attrs_of(g);
        let profile = ga.get("profile").cloned().unwrap_or(Value::Null);
        let events = ga
            .get("events")
            .and_then(|e| e.get("data"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if events.is_empty() {
            return Err(bad(
                format!("group {i} has no events"),
                json!({"pointer": format!("/data/attributes/events-bulk-create/data/{i}/attributes/events/data")}),
            ));
        }
        for e in events {
            let mut a = attrs_of(&e);
            a.insert("profile".into(), profile.clone());
            record_event(state, cx.now, &a)?;
        }
    }
    *changed = true;
    Ok(Response::empty(status(cx, 202), cx.op))
}

fn client_profile(
    state: &mut State,
    cx: &Ctx,
    body: &Value,
    changed: &mut bool,
) -> Result<Response, Fail> {
    let data = data_of(body, "profile")?;
    let (id, a) = profile_ref(data, "/data/attributes")?;
    upsert_profile(state, cx.now, id.as_deref(), &a);
    *changed = true;
    Ok(Response::empty(status(cx, 202), cx.op))
}

/// One profile's subscription from a form: the bulk subscribe of one.
fn client_subscription(
    state: &mut State,
    cx: &Ctx,
    body: &Value,
    changed: &mut bool,
) -> Result<Response, Fail> {
    let p = body
        .pointer("/data/attributes/profile/data")
        .cloned()
        .ok_or_else(|| {
            bad(
                "the body needs data.attributes.profile.data".into(),
                json!({"pointer": "/data/attributes/profile/data"}),
            )
        })?;
    let list = body
        .pointer("/data/relationships/list")
        .cloned()
        .unwrap_or(Value::Null);
    let as_bulk = json!({"data": {"attributes": {"profiles": {"data": [p]}}, "relationships": {"list": list}}});
    subscribe(state, cx, &as_bulk, true, changed)?;
    Ok(Response::empty(status(cx, 202), cx.op))
}

fn back_in_stock(
    state: &mut State,
    cx: &Ctx,
    body: &Value,
    changed: &mut bool,
) -> Result<Response, Fail> {
    let a = body_attributes(body)?;
    let variant = need_str(
        body.pointer("/data/relationships/variant/data/id"),
        "/data/relationships/variant/data/id",
        "the body needs relationships.variant.data.id",
    )?;
    if !state.exists(&("catalog-variant".into(), variant.into())) {
        return Err(not_found(
            "catalog-variant",
            variant,
            Some("/data/relationships/variant/data/id"),
        ));
    }
    let ev = json!({"metric": {"data": {"type": "metric", "attributes": {"name": "Subscribed to Back in Stock"}}},
                    "profile": a.get("profile").cloned().unwrap_or(Value::Null),
                    "properties": {"variant_id": variant, "channels": a.get("channels").cloned().unwrap_or(json!(["EMAIL"]))}});
    record_event(state, cx.now, ev.as_object().expect("object"))?;
    *changed = true;
    Ok(Response::empty(status(cx, 202), cx.op))
}

fn push_token(
    state: &mut State,
    cx: &Ctx,
    body: &Value,
    changed: &mut bool,
    register: bool,
) -> Result<Response, Fail> {
    let a = body_attributes(body)?;
    let token = need_str(
        a.get("token"),
        "/data/attributes/token",
        "token is required",
    )?
    .to_string();
    let existing: Vec<String> = state
        .data
        .get("push-token")
        .into_iter()
        .flatten()
        .filter(|(_, r)| r.attributes.get("token").and_then(Value::as_str) == Some(&token))
        .map(|(id, _)| id.clone())
        .collect();
    if register {
        let (pid, pa) = profile_ref(
            a.get("profile")
                .and_then(|p| p.get("data"))
                .unwrap_or(&Value::Null),
            "/data/attributes/profile/data",
        )?;
        let (pid, _) = upsert_profile(state, cx.now, pid.as_deref(), &pa);
        let names = shapes::attr_names("push-token");
        let mut attrs = known(&a, names);
        stamp_times(&mut attrs, names, &rfc3339(cx.now), true);
        let id = existing
            .first()
            .cloned()
            .unwrap_or_else(|| new_id(state, "push-token", &Map::new(), cx.now));
        let key = ("push-token".to_string(), id.clone());
        state.insert("push-token", &id, attrs);
        state.link(&key, "profile", &("profile".into(), pid));
    } else if let Some(m) = state.data.get_mut("push-token") {
        for id in existing {
            m.remove(&id);
        }
    }
    *changed = true;
    Ok(Response::empty(status(cx, 202), cx.op))
}

fn suppress(
    state: &mut State,
    cx: &Ctx,
    body: &Value,
    changed: &mut bool,
    on: bool,
) -> Result<Response, Fail> {
    let job_ty = if on {
        "profile-suppression-bulk-create-job"
    } else {
        "profile-suppression-bulk-delete-job"
    };
    let data = data_of(body, job_ty)?;
    let mut targets: Vec<String> = Vec::new();
    let mut skipped = 0;
    for p in data
        .pointer("/attributes/profiles/data")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match find_profile(state, p.get("id").and_then(Value::as_str), &attrs_of(p)) {
            Some(id) => targets.push(id),
            None => skipped += 1,
        }
    }
    let groups = body_links(state, data)?;
    for (_, g) in &groups {
        for k in state.related(g, "profiles", "profile") {
            targets.push(k.1);
        }
    }
    if targets.is_empty() && skipped == 0 {
        return Err(bad("name the profiles (data.attributes.profiles.data) or a list or segment (data.relationships)".into(), json!({"pointer": "/data"})));
    }
    let now = rfc3339(cx.now);
    for id in &targets {
        if let Some(r) = state.get_mut(&("profile".into(), id.clone())) {
            let m =
                &mut r.attributes.entry("subscriptions").or_insert(json!({}))["email"]["marketing"];
            if on {
                m["suppression"] = json!([{"reason": "USER_SUPPRESSED", "timestamp": now}]);
                m["can_receive_email_marketing"] = json!(false);
            } else {
                m["suppression"] = json!([]);
                m["can_receive_email_marketing"] = json!(m["consent"] == "SUBSCRIBED");
            }
        }
    }
    *changed = true;
    let links: Vec<(String, Key)> = groups.iter().map(|(r, k)| (r.clone(), k.clone())).collect();
    finish_job(
        state,
        cx,
        job_ty,
        None,
        (targets.len() + skipped, skipped),
        &links,
    )
}

/// Members of a campaign's audience: included lists and segments, minus excluded ones, who can
/// receive email marketing.
fn audience(state: &State, campaign: &Key) -> Vec<Key> {
    let Some(c) = state.get(campaign) else {
        return vec![];
    };
    let ids = |k: &str| -> Vec<String> {
        c.attributes
            .get("audiences")
            .and_then(|a| a.get(k))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(String::from))
            .collect()
    };
    let members = |id: &str| -> Vec<Key> {
        let mut out = Vec::new();
        for t in ["list", "segment"] {
            let k = (t.to_string(), id.to_string());
            if state.exists(&k) {
                out.extend(state.related(&k, "profiles", "profile"));
            }
        }
        out
    };
    let excluded: Vec<Key> = ids("excluded").iter().flat_map(|i| members(i)).collect();
    let mut out: Vec<Key> = ids("included")
        .iter()
        .flat_map(|i| members(i))
        .filter(|p| !excluded.contains(p))
        .filter(|p| {
            state
                .get(p)
                .and_then(|r| r.attributes.get("subscriptions"))
                .and_then(|s| s.pointer("/email/marketing/can_receive_email_marketing"))
                .and_then(Value::as_bool)
                .unwrap_or(false)
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

fn campaign_of(state: &State, body: &Value) -> Result<Key, Fail> {
    let id = need_str(
        body.pointer("/data/id"),
        "/data/id",
        "data.id must be the campaign's id",
    )?;
    existing(state, "campaign", id, "/data/id")
}

fn send_campaign(
    state: &mut State,
    cx: &Ctx,
    body: &Value,
    changed: &mut bool,
) -> Result<Response, Fail> {
    let c = campaign_of(state, body)?;
    let st = state
        .get(&c)
        .and_then(|r| r.attributes.get("status"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if !["Draft", "Scheduled"].contains(&st.as_str()) {
        return Err(bad(
            format!("the campaign is `{st}`: only a Draft or Scheduled campaign can be sent"),
            json!({"pointer": "/data/id"}),
        ));
    }
    let now = rfc3339(cx.now);
    let recipients = audience(state, &c);
    let name = state
        .get(&c)
        .and_then(|r| r.attributes.get("name"))
        .cloned()
        .unwrap_or(Value::Null);
    for p in &recipients {
        let ev = json!({"metric": {"data": {"type": "metric", "attributes": {"name": "Received Email"}}},
                        "profile": {"data": {"type": "profile", "id": p.1}},
                        "properties": {"Campaign Name": name, "$message": c.1}});
        record_event(state, cx.now, ev.as_object().expect("object"))?;
    }
    if let Some(r) = state.get_mut(&c) {
        r.attributes.insert("status".into(), json!("Sent"));
        r.attributes.insert("send_time".into(), json!(now));
        r.attributes.insert("scheduled_at".into(), json!(now));
        r.attributes.insert("updated_at".into(), json!(now));
    }
    *changed = true;
    finish_job(
        state,
        cx,
        "campaign-send-job",
        Some(c.1.clone()),
        (recipients.len(), 0),
        &[],
    )
}

fn estimate(
    state: &mut State,
    cx: &Ctx,
    body: &Value,
    changed: &mut bool,
) -> Result<Response, Fail> {
    let c = campaign_of(state, body)?;
    let n = audience(state, &c).len();
    state.insert(
        "campaign-recipient-estimation",
        &c.1,
        json!({"estimated_recipient_count": n})
            .as_object()
            .cloned()
            .unwrap_or_default(),
    );
    *changed = true;
    finish_job(
        state,
        cx,
        "campaign-recipient-estimation-job",
        Some(c.1.clone()),
        (n, 0),
        &[],
    )
}

fn clone(
    state: &mut State,
    cx: &Ctx,
    body: &Value,
    changed: &mut bool,
    ty: &str,
    name_field: &str,
) -> Result<Response, Fail> {
    let data = data_of(body, ty)?;
    let id = data.get("id").and_then(Value::as_str).ok_or_else(|| {
        bad(
            format!("data.id must be the {ty} to clone"),
            json!({"pointer": "/data/id"}),
        )
    })?;
    let src = (ty.to_string(), id.to_string());
    let Some(orig) = state.get(&src).cloned() else {
        return Err(not_found(ty, id, Some("/data/id")));
    };
    let mut copy = orig.clone();
    let old = orig
        .attributes
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let name = attrs_of(data)
        .get(name_field)
        .and_then(Value::as_str)
        .map(String::from)
        .unwrap_or(format!("{old} (Clone)"));
    copy.attributes.insert("name".into(), json!(name));
    let names: Vec<String> = copy.attributes.keys().cloned().collect();
    stamp_times(&mut copy.attributes, &names, &rfc3339(cx.now), true);
    if ty == "campaign" {
        copy.attributes.insert("status".into(), json!("Draft"));
        copy.attributes.insert("send_time".into(), Value::Null);
        copy.attributes.insert("scheduled_at".into(), Value::Null);
    }
    copy.rels.clear();
    let new = new_id(state, ty, &Map::new(), cx.now);
    let key = (ty.to_string(), new.clone());
    state.data.entry(ty.into()).or_default().insert(new, copy);
    if ty == "campaign" {
        for m in state.related(&src, "campaign-messages", "campaign-message") {
            let Some(mut mc) = state.get(&m).cloned() else {
                continue;
            };
            mc.rels.clear();
            let mid = new_id(state, "campaign-message", &Map::new(), cx.now);
            let mk = ("campaign-message".to_string(), mid.clone());
            state
                .data
                .entry("campaign-message".into())
                .or_default()
                .insert(mid, mc);
            state.link(&key, "campaign-messages", &mk);
            state.link(&mk, "campaign", &key);
        }
    }
    *changed = true;
    answer_one(state, cx, &key, 201)
}

/// `{{ name }}` and `{{ name|default:'x' }}` filled from the context (nested names with dots).
fn fill(text: &str, ctx: &Value) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let Some(j) = rest[i..].find("}}") else {
            out.push_str(&rest[i..]);
            return out;
        };
        let expr = rest[i + 2..i + j].trim();
        let (name, default) = match expr.split_once("|default:") {
            Some((n, d)) => (n.trim(), d.trim().trim_matches(|c| c == '\'' || c == '"')),
            None => (expr, ""),
        };
        let v = name.split('.').try_fold(ctx, |v, part| v.get(part));
        match v {
            Some(Value::String(s)) => out.push_str(s),
            Some(Value::Null) | None => out.push_str(default),
            Some(other) => out.push_str(&other.to_string()),
        }
        rest = &rest[i + j + 2..];
    }
    out.push_str(rest);
    out
}

fn render_template(state: &mut State, cx: &Ctx, body: &Value) -> Result<Response, Fail> {
    let data = data_of(body, "template")?;
    let id = need_str(
        data.get("id"),
        "/data/id",
        "data.id must be the template to render",
    )?;
    let key = ("template".to_string(), id.to_string());
    let Some(t) = state.get(&key).cloned() else {
        return Err(not_found("template", id, Some("/data/id")));
    };
    let context = attrs_of(data).get("context").cloned().unwrap_or(json!({}));
    let mut rendered = t.clone();
    for f in ["html", "text", "amp"] {
        if let Some(Value::String(s)) = t.attributes.get(f) {
            rendered
                .attributes
                .insert(f.into(), json!(fill(s, &context)));
        }
    }
    // Rendered in a scratch copy of the account: rendering changes nothing.
    let mut scratch = State::new(state.seed, state.seeded);
    scratch
        .data
        .entry("template".into())
        .or_default()
        .insert(id.to_string(), rendered);
    let mut doc = document(&scratch, cx, std::slice::from_ref(&key), false)?;
    doc["links"] = json!({"self": resource_url(cx.base, &key)});
    Ok(Response {
        status: status(cx, 201),
        body: doc,
        operation: Some(cx.op),
    })
}

fn assign_template(
    state: &mut State,
    cx: &Ctx,
    body: &Value,
    changed: &mut bool,
) -> Result<Response, Fail> {
    let data = data_of(body, "campaign-message")?;
    let id = need_str(
        data.get("id"),
        "/data/id",
        "data.id must be the campaign message",
    )?;
    let key = existing(state, "campaign-message", id, "/data/id")?;
    let links = body_links(state, data)?;
    let Some((_, tpl)) = links.iter().find(|(r, _)| r == "template") else {
        return Err(bad(
            "relationships.template.data names the template to assign".into(),
            json!({"pointer": "/data/relationships/template"}),
        ));
    };
    if let Some(r) = state.get_mut(&key) {
        r.rels.insert("template".into(), vec![tpl.clone()]);
    }
    *changed = true;
    answer_one(state, cx, &key, 200)
}

fn merge(state: &mut State, cx: &Ctx, body: &Value, changed: &mut bool) -> Result<Response, Fail> {
    let dest = need_str(
        body.pointer("/data/id"),
        "/data/id",
        "data.id must be the profile to keep",
    )?
    .to_string();
    let dk = ("profile".to_string(), dest.clone());
    if !state.exists(&dk) {
        return Err(not_found("profile", &dest, Some("/data/id")));
    }
    let sources: Vec<String> = body
        .pointer("/data/relationships/profiles/data")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| p.get("id").and_then(Value::as_str).map(String::from))
        .collect();
    if sources.is_empty() {
        return Err(bad(
            "relationships.profiles.data names the profiles to merge into data.id".into(),
            json!({"pointer": "/data/relationships/profiles/data"}),
        ));
    }
    for (i, s) in sources.iter().enumerate() {
        let sk = ("profile".to_string(), s.clone());
        let Some(src) = state.get(&sk).cloned() else {
            return Err(not_found(
                "profile",
                s,
                Some(&format!("/data/relationships/profiles/data/{i}/id")),
            ));
        };
        // Fields the kept profile lacks come from the merged one; links move over.
        if let Some(d) = state.get_mut(&dk) {
            for (k, v) in src.attributes {
                if d.attributes.get(&k).is_none_or(Value::is_null) {
                    d.attributes.insert(k, v);
                }
            }
        }
        for m in state.data.values_mut() {
            for r in m.values_mut() {
                for v in r.rels.values_mut() {
                    for k in v.iter_mut() {
                        if *k == sk {
                            *k = dk.clone();
                        }
                    }
                    v.dedup();
                }
            }
        }
        state.data.get_mut("profile").map(|m| m.remove(s));
    }
    *changed = true;
    let url = resource_url(cx.base, &dk);
    Ok(Response {
        status: status(cx, 201),
        body: json!({"data": {"type": "profile", "id": dest, "links": {"self": url}},
                     "links": {"self": url}}),
        operation: Some(cx.op),
    })
}

/// A multipart upload: the file part's name, format and size (the bytes are not kept).
fn upload_image(
    state: &mut State,
    cx: &Ctx,
    _body: &Value,
    changed: &mut bool,
) -> Result<Response, Fail> {
    let raw = String::from_utf8_lossy(cx.raw);
    let boundary = raw.lines().next().unwrap_or("").trim().to_string();
    if !boundary.starts_with("--") {
        return Err(bad(
            "the body must be multipart/form-data with a `file` part".into(),
            json!({"pointer": "/file"}),
        ));
    }
    let mut file: Option<(String, usize)> = None;
    let mut name: Option<String> = None;
    let mut hidden = false;
    for part in raw.split(&boundary).skip(1) {
        let Some((head, content)) = part.split_once("\r\n\r\n") else {
            continue;
        };
        let content = content.strip_suffix("\r\n").unwrap_or(content);
        let field = head
            .split("name=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or("");
        match field {
            "file" => {
                let fname = head
                    .split("filename=\"")
                    .nth(1)
                    .and_then(|r| r.split('"').next())
                    .unwrap_or("upload")
                    .to_string();
                file = Some((fname, content.len()));
            }
            "name" => name = Some(content.trim().to_string()),
            "hidden" => hidden = content.trim() == "true",
            _ => {}
        }
    }
    let Some((fname, size)) = file else {
        return Err(bad(
            "the upload has no `file` part".into(),
            json!({"pointer": "/file"}),
        ));
    };
    let format = fname
        .rsplit('.')
        .next()
        .filter(|e| *e != fname)
        .unwrap_or("png")
        .to_lowercase();
    let id = new_id(state, "image", &Map::new(), cx.now);
    let attrs = json!({"name": name.unwrap_or(fname), "image_url": format!("https://sandbox-outfitters.example/images/uploads/{id}.{format}"),
                       "format": format, "size": size, "hidden": hidden, "updated_at": rfc3339(cx.now)});
    let key = ("image".to_string(), id.clone());
    state.insert("image", &id, attrs.as_object().cloned().unwrap_or_default());
    *changed = true;
    answer_one(state, cx, &key, 201)
}

enum Report {
    Campaigns,
    Flows { series: bool },
}

/// `[start, end)` of a report's timeframe: a `key` relative to now, or `start`/`end`.
fn timeframe(t: &Value, now: i64) -> Result<(i64, i64), Fail> {
    let day = now.div_euclid(86400) * 86400;
    if let Some(k) = t.get("key").and_then(Value::as_str) {
        let (y, m, _) = query::civil_from_days(day / 86400);
        let month_start = query::days_from_civil(y, m, 1) * 86400;
        let prev_month = if m == 1 {
            query::days_from_civil(y - 1, 12, 1)
        } else {
            query::days_from_civil(y, m - 1, 1)
        } * 86400;
        let year_start = query::days_from_civil(y, 1, 1) * 86400;
        let weekday = (day / 86400 + 4).rem_euclid(7); // 0 = Sunday
        let week_start = day - weekday * 86400;
        return Ok(match k {
            "today" => (day, now + 1),
            "yesterday" => (day - 86400, day),
            "last_7_days" => (day - 7 * 86400, day),
            "last_30_days" => (day - 30 * 86400, day),
            "last_90_days" => (day - 90 * 86400, day),
            "last_3_months" => (day - 91 * 86400, day),
            "last_365_days" | "last_12_months" => (day - 365 * 86400, day),
            "this_week" => (week_start, now + 1),
            "last_week" => (week_start - 7 * 86400, week_start),
            "this_month" => (month_start, now + 1),
            "last_month" => (prev_month, month_start),
            "this_year" => (year_start, now + 1),
            "last_year" => (query::days_from_civil(y - 1, 1, 1) * 86400, year_start),
            other => {
                return Err(bad(
                    format!("timeframe key `{other}` is not one the sandbox knows"),
                    json!({"pointer": "/data/attributes/timeframe/key"}),
                ))
            }
        });
    }
    let at = |f: &str| {
        t.get(f)
            .and_then(Value::as_str)
            .and_then(query::instant)
            .map(|s| s as i64)
    };
    match (at("start"), at("end")) {
        (Some(s), Some(e)) if s < e => Ok((s, e)),
        _ => Err(bad(
            "timeframe needs a `key` (e.g. last_30_days) or `start` before `end`".into(),
            json!({"pointer": "/data/attributes/timeframe"}),
        )),
    }
}

/// Counts of one message's sends, the sample data reports are made of.
#[derive(Default, Clone, Copy)]
struct Counts {
    recipients: f64,
    delivered: f64,
    bounced: f64,
    opens: f64,
    opens_unique: f64,
    clicks: f64,
    clicks_unique: f64,
    conversions: f64,
    conversion_value: f64,
    unsubscribes: f64,
    spam: f64,
}

impl Counts {
    /// From a recipient count and rates derived from `id` (the same every time).
    fn of(id: &str, recipients: f64) -> Counts {
        let h = id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        let frac = |shift: u32| ((h >> shift) & 0xffff) as f64 / 65535.0;
        let bounced = (recipients * (0.005 + 0.01 * frac(0))).round();
        let delivered = recipients - bounced;
        let opens_unique = (delivered * (0.28 + 0.25 * frac(16))).round();
        let clicks_unique = (opens_unique * (0.06 + 0.12 * frac(32))).round();
        let conversions = (clicks_unique * (0.1 + 0.2 * frac(48))).round();
        Counts {
            recipients,
            delivered,
            bounced,
            opens: (opens_unique * 1.45).round(),
            opens_unique,
            clicks: (clicks_unique * 1.3).round(),
            clicks_unique,
            conversions,
            conversion_value: (conversions * (70.0 + 60.0 * frac(8)) * 100.0).round() / 100.0,
            unsubscribes: (delivered * 0.003).round(),
            spam: (delivered * 0.0004).round(),
        }
    }

    fn add(&mut self, o: &Counts) {
        self.recipients += o.recipients;
        self.delivered += o.delivered;
        self.bounced += o.bounced;
        self.opens += o.opens;
        self.opens_unique += o.opens_unique;
        self.clicks += o.clicks;
        self.clicks_unique += o.clicks_unique;
        self.conversions += o.conversions;
        self.conversion_value += o.conversion_value;
        self.unsubscribes += o.unsubscribes;
        self.spam += o.spam;
    }

    fn stat(&self, name: &str) -> Option<f64> {
        let r = |a: f64, b: f64| {
            if b > 0.0 {
                (a / b * 10000.0).round() / 10000.0
            } else {
                0.0
            }
        };
        Some(match name {
            "recipients" => self.recipients,
            "delivered" => self.delivered,
            "delivery_rate" => r(self.delivered, self.recipients),
            "bounced" | "bounced_or_failed" => self.bounced,
            "bounce_rate" | "bounced_or_failed_rate" => r(self.bounced, self.recipients),
            "failed" => 0.0,
            "failed_rate" => 0.0,
            "opens" => self.opens,
            "opens_unique" => self.opens_unique,
            "open_rate" => r(self.opens_unique, self.delivered),
            "clicks" => self.clicks,
            "clicks_unique" => self.clicks_unique,
            "click_rate" => r(self.clicks_unique, self.delivered),
            "click_to_open_rate" => r(self.clicks_unique, self.opens_unique),
            "conversions" => self.conversions,
            "conversion_uniques" => self.conversions,
            "conversion_rate" => r(self.conversions, self.delivered),
            "conversion_value" => self.conversion_value,
            "average_order_value" => r(self.conversion_value, self.conversions),
            "revenue_per_recipient" => r(self.conversion_value, self.delivered),
            "unsubscribes" | "unsubscribe_uniques" => self.unsubscribes,
            "unsubscribe_rate" => r(self.unsubscribes, self.delivered),
            "spam_complaints" => self.spam,
            "spam_complaint_rate" => r(self.spam, self.delivered),
            "message_segment_count_sum"
            | "text_message_credit_usage_amount"
            | "text_message_spend"
            | "text_message_roi" => 0.0,
            _ => return None,
        })
    }
}

/// Counts as whole numbers, rates and money as decimals.
fn number(name: &str, v: f64) -> Value {
    let decimal = name.ends_with("_rate")
        || name.ends_with("_value")
        || name.ends_with("_recipient")
        || name.ends_with("_roi")
        || name.ends_with("_spend")
        || name.ends_with("_amount");
    if decimal {
        json!(v)
    } else {
        json!(v.round() as i64)
    }
}

fn report(state: &State, cx: &Ctx, body: &Value, kind: Report) -> Result<Response, Fail> {
    let a = body_attributes(body)?;
    let stats: Vec<String> = a
        .get("statistics")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(String::from))
        .collect();
    if stats.is_empty() {
        return Err(bad(
            "statistics: name at least one, e.g. [\"open_rate\"]".into(),
            json!({"pointer": "/data/attributes/statistics"}),
        ));
    }
    if let Some(s) = stats.iter().find(|s| Counts::default().stat(s).is_none()) {
        return Err(bad(
            format!("statistic `{s}` is not one Klaviyo reports"),
            json!({"pointer": "/data/attributes/statistics"}),
        ));
    }
    let metric = a
        .get("conversion_metric_id")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !state.exists(&("metric".into(), metric.into())) {
        return Err(not_found(
            "metric",
            metric,
            Some("/data/attributes/conversion_metric_id"),
        ));
    }
    let (from, to) = timeframe(a.get("timeframe").unwrap_or(&Value::Null), cx.now)?;
    let group_by: Option<Vec<String>> = a.get("group_by").and_then(Value::as_array).map(|g| {
        g.iter()
            .filter_map(|s| s.as_str().map(String::from))
            .collect()
    });
    // One row per message: (groupings, counts).
    let mut rows: Vec<(Map<String, Value>, Counts)> = Vec::new();
    let mut owners = Vec::new();
    match kind {
        Report::Campaigns => {
            for (id, c) in state.data.get("campaign").into_iter().flatten() {
                let key = ("campaign".to_string(), id.clone());
                let sent = c
                    .attributes
                    .get("send_time")
                    .and_then(Value::as_str)
                    .and_then(query::instant)
                    .map(|s| s as i64);
                if !sent.is_some_and(|t| t >= from && t < to) {
                    continue;
                }
                if c.attributes.get("status").and_then(Value::as_str) != Some("Sent") {
                    continue;
                }
                let n = audience(state, &key).len() as f64;
                for m in state.related(&key, "campaign-messages", "campaign-message") {
                    let mut g = Map::new();
                    g.insert("campaign_id".into(), json!(id));
                    g.insert("campaign_message_id".into(), json!(m.1));
                    g.insert("send_channel".into(), json!("email"));
                    rows.push((g, Counts::of(&m.1, n)));
                }
                owners.push(key);
            }
        }
        Report::Flows { .. } => {
            for (id, f) in state.data.get("flow").into_iter().flatten() {
                if f.attributes.get("status").and_then(Value::as_str) != Some("live") {
                    continue;
                }
                let key = ("flow".to_string(), id.clone());
                for action in state.related(&key, "flow-actions", "flow-action") {
                    for m in state.related(&action, "flow-messages", "flow-message") {
                        let mut g = Map::new();
                        g.insert("flow_id".into(), json!(id));
                        g.insert("flow_message_id".into(), json!(m.1));
                        g.insert("send_channel".into(), json!("email"));
                        // A live flow sends every day: recipients per day from its id.
                        let per_day = 3.0 + (Counts::of(&m.1, 100.0).opens_unique % 9.0);
                        rows.push((g, Counts::of(&m.1, per_day)));
                    }
                }
                owners.push(key);
            }
        }
    }
    let grouped =
        |rows: &[(Map<String, Value>, Counts)], scale: f64| -> Vec<(Map<String, Value>, Counts)> {
            let mut out: Vec<(Map<String, Value>, Counts)> = Vec::new();
            for (g, c) in rows {
                let g: Map<String, Value> = match &group_by {
                    Some(keys) => g
                        .iter()
                        .filter(|(k, _)| keys.contains(k))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                    None => g.clone(),
                };
                let mut c = *c;
                if scale != 1.0 {
                    for v in [
                        &mut c.recipients,
                        &mut c.delivered,
                        &mut c.bounced,
                        &mut c.opens,
                        &mut c.opens_unique,
                        &mut c.clicks,
                        &mut c.clicks_unique,
                        &mut c.conversions,
                        &mut c.unsubscribes,
                        &mut c.spam,
                    ] {
                        *v = (*v * scale).round();
                    }
                    c.conversion_value = (c.conversion_value * scale * 100.0).round() / 100.0;
                }
                match out.iter_mut().find(|(og, _)| *og == g) {
                    Some((_, oc)) => oc.add(&c),
                    None => out.push((g, c)),
                }
            }
            out
        };
    let days = ((to - from) as f64 / 86400.0).max(0.0);
    let mut attributes = Map::new();
    let results: Vec<Value> = match kind {
        Report::Flows { series: true } => {
            let step = match a.get("interval").and_then(Value::as_str).unwrap_or("daily") {
                "hourly" => 3600,
                "daily" => 86400,
                "weekly" => 7 * 86400,
                "monthly" => 30 * 86400,
                other => {
                    return Err(bad(
                        format!("interval `{other}`: use hourly, daily, weekly or monthly"),
                        json!({"pointer": "/data/attributes/interval"}),
                    ))
                }
            };
            let times = buckets(from, to, step, "interval", "/data/attributes/interval")?;
            attributes.insert(
                "date_times".into(),
                json!(times.iter().map(|t| rfc3339(*t)).collect::<Vec<_>>()),
            );
            let per = grouped(&rows, step as f64 / 86400.0);
            per.into_iter()
                .map(|(g, c)| {
                    let s: Map<String, Value> = stats
                        .iter()
                        .map(|n| {
                            (
                                n.clone(),
                                json!(vec![number(n, c.stat(n).unwrap_or(0.0)); times.len()]),
                            )
                        })
                        .collect();
                    json!({"groupings": g, "statistics": s})
                })
                .collect()
        }
        _ => {
            let scale = if matches!(kind, Report::Flows { .. }) {
                days
            } else {
                1.0
            };
            grouped(&rows, scale)
                .into_iter()
                .map(|(g, c)| {
                    let s: Map<String, Value> = stats
                        .iter()
                        .map(|n| (n.clone(), number(n, c.stat(n).unwrap_or(0.0))))
                        .collect();
                    json!({"groupings": g, "statistics": s})
                })
                .collect()
        }
    };
    attributes.insert("results".into(), Value::Array(results));
    let ty = cx.rshape().and_then(|r| r.ty.clone()).unwrap_or_default();
    let rel = if matches!(kind, Report::Campaigns) {
        "campaigns"
    } else {
        "flows"
    };
    let data = json!({"type": ty, "id": format!("{ty}-{from}-{to}"), "attributes": attributes,
        "relationships": {rel: {"data": owners.iter().map(|k| json!({"type": k.0, "id": k.1})).collect::<Vec<_>>(),
            "links": {"self": format!("{}/api/{}", cx.base, ty), "related": format!("{}/api/{}", cx.base, ty)}}}});
    Ok(Response {
        status: status(cx, 200),
        body: json!({"data": data, "links": {"self": format!("{}{}", cx.base, cx.path)}}),
        operation: Some(cx.op),
    })
}
