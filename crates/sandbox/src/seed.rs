//! The sample account a sandbox starts from: a small apparel brand ("Sandbox Outfitters") with
//! 300 profiles and their consent, lists and memberships, segments, campaigns and their
//! messages, flows with actions and messages, metrics and ~90 days of events, tags, templates,
//! coupons and codes, and a catalog of items, variants and categories.
//!
//! Deterministic: the same seed and day give the same account, byte for byte (a splitmix64
//! generator; no clock but the `today` passed in, no hash-map order). Events fall in the 90
//! days before `today`, so reports over "last week" find data whenever the sandbox was reset.

use crate::query::rfc3339;
use crate::store::{Key, State};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

pub const PROFILES: usize = 300;

/// splitmix64: small, fast, and the same everywhere.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

const FIRST: &[&str] = &[
    "Ava", "Liam", "Maya", "Noah", "Zoe", "Ethan", "Chloe", "Lucas", "Priya", "Omar", "Sofia",
    "Mateo", "Hana", "Leo", "Amara", "Jonah", "Elena", "Kai", "Nora", "Diego", "Isla", "Ravi",
    "Grace", "Felix", "Yara", "Owen", "Mila", "Theo", "Aisha", "Ben", "Lena", "Sam", "Ines",
    "Caleb", "Ruby", "Hugo", "Tess", "Arjun", "June", "Milo",
];
const LAST: &[&str] = &[
    "Smith", "Garcia", "Chen", "Patel", "Johnson", "Okafor", "Nguyen", "Rossi", "Kim", "Muller",
    "Silva", "Brown", "Haddad", "Lopez", "Novak", "Sato", "Walker", "Dubois", "Khan", "Moreau",
    "Jensen", "Reyes", "Cohen", "Ali", "Baker", "Costa", "Evans", "Ivanova", "Park", "Wright",
];
const CITIES: &[(&str, &str, &str, &str, &str)] = &[
    (
        "Brooklyn",
        "NY",
        "United States",
        "11201",
        "America/New_York",
    ),
    ("Austin", "TX", "United States", "78701", "America/Chicago"),
    (
        "Portland",
        "OR",
        "United States",
        "97205",
        "America/Los_Angeles",
    ),
    ("Denver", "CO", "United States", "80202", "America/Denver"),
    ("Chicago", "IL", "United States", "60601", "America/Chicago"),
    ("Toronto", "ON", "Canada", "M5V 2T6", "America/Toronto"),
    (
        "London",
        "England",
        "United Kingdom",
        "EC1A 1BB",
        "Europe/London",
    ),
    (
        "Seattle",
        "WA",
        "United States",
        "98101",
        "America/Los_Angeles",
    ),
];
const PRODUCTS: &[(&str, &str, f64)] = &[
    ("Merino Crew Sweater", "Knitwear", 98.0),
    ("Waxed Canvas Jacket", "Outerwear", 189.0),
    ("Organic Cotton Tee", "Basics", 32.0),
    ("Slim Selvedge Jeans", "Denim", 128.0),
    ("Wool Beanie", "Accessories", 29.0),
    ("Down Puffer Vest", "Outerwear", 149.0),
    ("Linen Button-Down", "Shirts", 78.0),
    ("Trail Runner Socks (3-pack)", "Accessories", 24.0),
    ("Quilted Overshirt", "Shirts", 118.0),
    ("Cashmere Scarf", "Accessories", 85.0),
    ("Heavyweight Hoodie", "Basics", 88.0),
    ("Chore Coat", "Outerwear", 168.0),
    ("Relaxed Chinos", "Denim", 92.0),
    ("Leather Belt", "Accessories", 58.0),
    ("Flannel Shirt", "Shirts", 74.0),
    ("Rain Shell", "Outerwear", 139.0),
    ("Ribbed Tank", "Basics", 26.0),
    ("Corduroy Trousers", "Denim", 104.0),
    ("Fleece Pullover", "Knitwear", 96.0),
    ("Alpaca Cardigan", "Knitwear", 158.0),
];

pub struct Seeder {
    pub rng: Rng,
    pub state: State,
    pub now: i64,
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

impl Seeder {
    fn put(&mut self, ty: &str, id: &str, attrs: Value) -> Key {
        self.state.insert(ty, id, obj(attrs))
    }

    fn link(&mut self, from: &Key, rel: &str, to: &Key) {
        self.state.link(from, rel, to);
    }

    fn hide(&mut self, at: &Key, name: &str, v: Value) {
        if let Some(r) = self.state.get_mut(at) {
            r.hidden.insert(name.into(), v);
        }
    }

    fn ago(&mut self, max_days: u64) -> i64 {
        self.now - (self.rng.below(max_days * 86400) as i64)
    }
}

/// The subscriptions object of a profile response, complete in every required member.
pub fn subscriptions(email: &str, sms: Option<&str>, at: &str, sms_on: bool) -> Value {
    let can = email == "SUBSCRIBED";
    let ts = if email == "NEVER_SUBSCRIBED" {
        Value::Null
    } else {
        json!(at)
    };
    json!({
        "email": {"marketing": {
            "can_receive_email_marketing": can, "consent": email, "consent_timestamp": ts,
            "last_updated": ts, "method": if can { json!("FORM") } else { Value::Null },
            "method_detail": null, "custom_method_detail": null, "double_optin": null,
            "suppression": [], "list_suppressions": []}},
        "sms": {"marketing": {
            "can_receive_sms_marketing": sms_on, "consent": sms.unwrap_or("NEVER_SUBSCRIBED"),
            "consent_timestamp": if sms.is_some() { json!(at) } else { Value::Null },
            "method": null, "method_detail": null, "last_updated": null},
            "transactional": {"can_receive_sms_transactional": sms_on,
            "consent": sms.unwrap_or("NEVER_SUBSCRIBED"), "consent_timestamp": null,
            "method": null, "method_detail": null, "last_updated": null}}
    })
}

/// A new account from `seed`, its events in the 90 days before `now` (seconds since the epoch).
pub fn account(seed: u64, now: i64) -> State {
    let mut s = Seeder {
        rng: Rng::new(seed),
        state: State::new(seed, now),
        now,
    };
    let now_s = rfc3339(now);
    s.put(
        "account",
        crate::PUBLIC_KEY,
        json!({
            "test_account": true,
            "contact_information": {
                "default_sender_name": "Sandbox Outfitters",
                "default_sender_email": "hello@sandbox-outfitters.example",
                "website_url": "https://sandbox-outfitters.example",
                "organization_name": "Sandbox Outfitters",
                "street_address": {"address1": "125 Water St", "address2": null, "city": "Brooklyn",
                    "region": "NY", "country": "United States", "zip": "11201"}
            },
            "industry": "Apparel & Accessories",
            "timezone": "America/New_York",
            "preferred_currency": "USD",
            "public_api_key": crate::PUBLIC_KEY,
            "locale": "en-US"
        }),
    );

    // Metrics.
    let metric_names = [
        ("Placed Order", "Shopify", "eCommerce"),
        ("Ordered Product", "Shopify", "eCommerce"),
        ("Viewed Product", "Klaviyo", "API"),
        ("Added to Cart", "Shopify", "eCommerce"),
        ("Started Checkout", "Shopify", "eCommerce"),
        ("Received Email", "Klaviyo", "Internal"),
        ("Opened Email", "Klaviyo", "Internal"),
        ("Clicked Email", "Klaviyo", "Internal"),
        ("Subscribed to List", "Klaviyo", "Internal"),
    ];
    let created_long_ago = rfc3339(now - 400 * 86400);
    let metrics: Vec<Key> = metric_names
        .iter()
        .map(|(name, integ, cat)| {
            let id = s.state.short_id(&mut s.rng);
            s.put(
                "metric",
                &id,
                json!({"name": name, "created": created_long_ago, "updated": created_long_ago,
                       "integration": {"object": "integration", "id": if *integ == "Shopify" { "0eMvjm" } else { "7FtS4J" },
                                       "name": integ, "category": cat}}),
            )
        })
        .collect();

    // Lists.
    let list_defs = [
        ("Newsletter", "double_opt_in"),
        ("VIP Customers", "single_opt_in"),
        ("SMS Subscribers", "single_opt_in"),
        ("Wholesale Leads", "single_opt_in"),
        ("Holiday Gift Guide 2026 Waitlist", "double_opt_in"),
        ("Test Recipients", "single_opt_in"),
    ];
    let lists: Vec<Key> = list_defs
        .iter()
        .map(|(name, opt)| {
            let id = s.state.short_id(&mut s.rng);
            let c = rfc3339(s.ago(700) - 30 * 86400);
            s.put(
                "list",
                &id,
                json!({"name": name, "created": c, "updated": c, "opt_in_process": opt}),
            )
        })
        .collect();

    // Profiles, their consent and list memberships.
    let mut profiles = Vec::new();
    for i in 0..PROFILES {
        let first = *s.rng.pick(FIRST);
        let last = *s.rng.pick(LAST);
        let (city, region, country, zip, tz) = *s.rng.pick(CITIES);
        let created = s.ago(700);
        let email = format!(
            "{}.{}{}@example.com",
            first.to_lowercase(),
            last.to_lowercase(),
            i + 1
        );
        let has_phone = s.rng.chance(60);
        let phone = has_phone.then(|| format!("+1555{:07}", 100_0000 + s.rng.below(899_9999)));
        let consent = match s.rng.below(100) {
            0..=64 => "SUBSCRIBED",
            65..=74 => "UNSUBSCRIBED",
            _ => "NEVER_SUBSCRIBED",
        };
        let sms = phone.as_ref().map(|_| match s.rng.below(100) {
            0..=44 => "SUBSCRIBED",
            45..=54 => "UNSUBSCRIBED",
            _ => "NEVER_SUBSCRIBED",
        });
        let customer = s.rng.chance(70);
        let vip = customer && s.rng.chance(15);
        let c = rfc3339(created);
        let id = s.state.ulid(&mut s.rng, created);
        let source = *s.rng.pick(&[
            "Shopify checkout",
            "Popup form",
            "Footer form",
            "Instagram lead ad",
        ]);
        let favorite = *s
            .rng
            .pick(&["Knitwear", "Outerwear", "Denim", "Basics", "Accessories"]);
        let key = s.put(
            "profile",
            &id,
            json!({
                "email": email,
                "phone_number": phone,
                "external_id": if customer { json!(format!("shopify_{}", 7_200_000 + i)) } else { Value::Null },
                "first_name": first,
                "last_name": last,
                "organization": if i % 29 == 0 { json!(format!("{last} & Co")) } else { Value::Null },
                "locale": if country == "United States" { "en-US" } else if country == "Canada" { "en-CA" } else { "en-GB" },
                "title": null,
                "image": null,
                "created": c,
                "updated": c,
                "last_event_date": null,
                "location": {"address1": format!("{} Main St", 10 + i), "address2": null, "city": city,
                    "country": country, "latitude": null, "longitude": null, "region": region, "zip": zip,
                    "timezone": tz, "ip": null},
                "properties": {"source": source, "vip": vip, "favorite_category": favorite},
                "subscriptions": subscriptions(consent, sms, &c, sms == Some("SUBSCRIBED")),
            }),
        );
        if consent == "SUBSCRIBED" {
            s.link(&lists[0], "profiles", &key);
        }
        if vip {
            s.link(&lists[1], "profiles", &key);
        }
        if sms == Some("SUBSCRIBED") {
            s.link(&lists[2], "profiles", &key);
        }
        if i % 23 == 0 {
            s.link(&lists[3], "profiles", &key);
        }
        if consent == "SUBSCRIBED" && s.rng.chance(18) {
            s.link(&lists[4], "profiles", &key);
        }
        if i < 3 {
            s.link(&lists[5], "profiles", &key);
        }
        profiles.push((key, customer));
    }

    // Events over the last 90 days: browsing, carts, orders, email engagement.
    let mut orders: BTreeMap<String, (u32, f64, i64)> = BTreeMap::new();
    let mut engaged_recently = Vec::new();
    let mut last_event: BTreeMap<String, i64> = BTreeMap::new();
    for (p, customer) in &profiles {
        let n = if *customer {
            3 + s.rng.below(9)
        } else {
            s.rng.below(4)
        };
        for _ in 0..n {
            let t = s.ago(90);
            let which = match s.rng.below(100) {
                0..=14 if *customer => 0,
                0..=29 => 2,
                30..=39 => 3,
                40..=44 => 4,
                45..=64 => 5,
                65..=84 => 6,
                _ => 7,
            };
            let (name, cat, price) = *s.rng.pick(PRODUCTS);
            let props = match which {
                0 => {
                    let qty = 1 + s.rng.below(3);
                    let value = price * qty as f64;
                    let e = orders.entry(p.1.clone()).or_insert((0, 0.0, 0));
                    e.0 += 1;
                    e.1 += value;
                    e.2 = e.2.max(t);
                    json!({"$value": value, "OrderId": format!("#{}", 1000 + s.rng.below(9000)),
                           "ItemNames": [name], "Categories": [cat], "Quantity": qty})
                }
                2..=4 => json!({"ProductName": name, "Categories": [cat], "Price": price}),
                _ => {
                    json!({"Subject": *s.rng.pick(&["New arrivals are here", "Your weekend edit", "Last chance: 20% off knitwear"])})
                }
            };
            if (6..=7).contains(&which) && t > now - 30 * 86400 {
                engaged_recently.push(p.clone());
            }
            let le = last_event.entry(p.1.clone()).or_insert(0);
            *le = (*le).max(t);
            let id = s.state.ulid(&mut s.rng, t);
            let uuid = format!(
                "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
                s.rng.next() as u32,
                s.rng.below(0x10000),
                s.rng.below(0x1000),
                s.rng.below(0x1000),
                s.rng.next() & 0xffff_ffff_ffff
            );
            let e = s.put(
                "event",
                &id,
                json!({"timestamp": t, "datetime": rfc3339(t), "uuid": uuid, "event_properties": props}),
            );
            s.link(&e, "profile", p);
            s.link(&e, "metric", &metrics[which]);
        }
    }
    for (pid, t) in &last_event {
        if let Some(r) = s.state.data.get_mut("profile").and_then(|m| m.get_mut(pid)) {
            r.attributes
                .insert("last_event_date".into(), json!(rfc3339(*t)));
        }
    }

    // Segments, their members computed from the events above.
    let seg_defs: [(&str, Vec<Key>); 4] = [
        ("Engaged (opened or clicked in 30 days)", {
            let mut v = engaged_recently.clone();
            v.sort();
            v.dedup();
            v
        }),
        (
            "Repeat buyers",
            orders
                .iter()
                .filter(|(_, o)| o.0 >= 2)
                .map(|(id, _)| ("profile".to_string(), id.clone()))
                .collect(),
        ),
        (
            "Lapsed customers (no order in 60 days)",
            profiles
                .iter()
                .filter(|(p, c)| *c && orders.get(&p.1).is_none_or(|o| o.2 < now - 60 * 86400))
                .map(|(p, _)| p.clone())
                .collect(),
        ),
        (
            "High value (over $500 spent)",
            orders
                .iter()
                .filter(|(_, o)| o.1 > 500.0)
                .map(|(id, _)| ("profile".to_string(), id.clone()))
                .collect(),
        ),
    ];
    let mut segments = Vec::new();
    for (i, (name, members)) in seg_defs.into_iter().enumerate() {
        let id = s.state.short_id(&mut s.rng);
        let seg = s.put(
            "segment",
            &id,
            json!({"name": name, "created": created_long_ago, "updated": now_s,
                   "definition": {"condition_groups": []},
                   "is_active": true, "is_processing": false, "is_starred": i == 1}),
        );
        for m in members {
            s.link(&seg, "profiles", &m);
        }
        segments.push(seg);
    }

    // Tags.
    let group = s.put(
        "tag-group",
        "tg-default",
        json!({"name": "Marketing", "exclusive": false, "default": true}),
    );
    let tags: Vec<Key> = ["Holiday", "VIP", "Welcome", "Promotion", "Evergreen"]
        .iter()
        .map(|n| {
            let id = s.state.uuid(&mut s.rng);
            let t = s.put("tag", &id, json!({"name": n}));
            s.link(&t, "tag-group", &group);
            s.link(&group, "tags", &t);
            t
        })
        .collect();
    s.link(&tags[0], "lists", &lists[4]);
    s.link(&tags[1], "lists", &lists[1]);
    s.link(&tags[1], "segments", &segments[3]);

    // Templates.
    let templates: Vec<Key> = [
        ("Newsletter — two column", "SYSTEM_DRAGGABLE"),
        ("Promotion — hero image", "SYSTEM_DRAGGABLE"),
        ("Welcome email 1", "CODE"),
        ("Plain text note from the founder", "CODE"),
    ]
    .iter()
    .map(|(name, editor)| {
        let id = s.state.short_id(&mut s.rng);
        let c = rfc3339(s.ago(300));
        s.put(
            "template",
            &id,
            json!({"name": name, "editor_type": editor,
                   "html": format!("<html><body><h1>{name}</h1><p>Hi {{{{ first_name|default:'there' }}}},</p><p>{{% unsubscribe %}}</p></body></html>"),
                   "text": null, "amp": null, "created": c, "updated": c}),
        )
    })
    .collect();

    // Campaigns and their messages.
    let camp_defs = [
        ("Black Friday Early Access", "Sent", 40, 1, 0),
        ("November Newsletter", "Sent", 25, 0, 4),
        ("New Arrivals: Winter Collection", "Sent", 60, 0, 3),
        ("Cyber Monday 30% Off", "Scheduled", -3, 0, 3),
        ("Holiday Gift Guide", "Draft", -10, 4, 0),
        ("VIP Thank You", "Draft", -14, 1, 1),
        ("Back in Stock: Merino Crew", "Sent", 12, 0, 4),
        ("Win-back: We Miss You", "Cancelled", 35, 0, 3),
    ];
    for (name, status, days_ago, list, tag) in camp_defs {
        let when = now - days_ago * 86400;
        let created = rfc3339(when.min(now) - 7 * 86400);
        let id = s.state.ulid(&mut s.rng, when);
        let c = s.put(
            "campaign",
            &id,
            json!({"name": name, "status": status, "archived": false,
                   "audiences": {"included": [lists[list].1.clone()], "excluded": [lists[5].1.clone()]},
                   "send_options": {"use_smart_sending": true},
                   "tracking_options": {"add_tracking_params": false, "custom_tracking_params": null,
                                        "is_tracking_clicks": true, "is_tracking_opens": true},
                   "send_strategy": {"method": "static", "datetime": rfc3339(when), "options": null},
                   "created_at": created, "updated_at": created,
                   "scheduled_at": if status == "Draft" { Value::Null } else { json!(created) },
                   "send_time": if status == "Draft" || status == "Cancelled" { Value::Null } else { json!(rfc3339(when)) }}),
        );
        s.hide(&c, "messages.channel", json!("email"));
        let mid = s.state.ulid(&mut s.rng, when);
        let m = s.put(
            "campaign-message",
            &mid,
            json!({"definition": {"channel": "email", "label": name,
                     "content": {"subject": name, "preview_text": "Sandbox Outfitters", "from_email": "hello@sandbox-outfitters.example",
                                 "from_label": "Sandbox Outfitters", "reply_to_email": null, "cc_email": null, "bcc_email": null}},
                   "send_times": null, "created_at": created, "updated_at": created}),
        );
        s.link(&c, "campaign-messages", &m);
        s.link(&m, "campaign", &c);
        s.link(&m, "template", &templates[1]);
        s.link(&tags[tag], "campaigns", &c);
    }

    // Flows, with actions and messages.
    let flow_defs = [
        ("Welcome Series", "live", "Added to List", 3),
        ("Abandoned Cart Reminder", "live", "Metric", 2),
        ("Browse Abandonment", "manual", "Metric", 1),
        ("Post-Purchase Thank You", "live", "Metric", 2),
        ("Win-back", "draft", "Metric", 2),
    ];
    for (i, (name, status, trigger, steps)) in flow_defs.into_iter().enumerate() {
        let id = s.state.short_id(&mut s.rng);
        let c = rfc3339(s.ago(500) - 60 * 86400);
        let f = s.put(
            "flow",
            &id,
            json!({"name": name, "status": status, "archived": false, "created": c, "updated": c,
                   "trigger_type": trigger}),
        );
        if i == 0 {
            s.link(&tags[2], "flows", &f);
            s.link(&lists[0], "flow-triggers", &f);
        }
        for _ in 0..steps {
            let aid = format!("{}", 90_000_000 + s.rng.below(9_999_999));
            let a = s.put("flow-action", &aid, json!({"created": c, "updated": c}));
            s.link(&f, "flow-actions", &a);
            s.link(&a, "flow", &f);
            let mid = s.state.short_id(&mut s.rng);
            let m = s.put(
                "flow-message",
                &mid,
                json!({"channel": "email", "created": c, "updated": c}),
            );
            s.link(&a, "flow-messages", &m);
            s.link(&m, "flow-action", &a);
            s.link(&m, "template", &templates[2]);
        }
    }

    // Coupons and codes.
    for (ext, desc) in [
        (
            "WELCOME10",
            "10% off a first order, sent by the Welcome Series",
        ),
        ("VIPFREESHIP", "Free shipping for VIP customers"),
        ("WINBACK20", "20% off for lapsed customers"),
    ] {
        let c = s.put(
            "coupon",
            ext,
            json!({"external_id": ext, "description": desc, "monitor_configuration": null}),
        );
        for j in 0..10 {
            let code = format!("{}-{:06X}", &ext[..4], s.rng.below(0xFF_FFFF));
            let status = match j {
                0..=5 => "UNASSIGNED",
                6..=8 => "ASSIGNED_TO_PROFILE",
                _ => "USED",
            };
            let id = s.state.short_id(&mut s.rng);
            let k = s.put(
                "coupon-code",
                &id,
                json!({"unique_code": code, "expires_at": rfc3339(now + 90 * 86400), "status": status}),
            );
            s.link(&k, "coupon", &c);
            if status != "UNASSIGNED" {
                let p = profiles[s.rng.below(PROFILES as u64) as usize].0.clone();
                s.link(&k, "profile", &p);
            }
        }
    }

    // Catalog: categories, items, variants.
    let mut cats: BTreeMap<&str, Key> = BTreeMap::new();
    for (_, cat, _) in PRODUCTS {
        if !cats.contains_key(cat) {
            let ext = cat.to_lowercase();
            let id = format!("$custom:::$default:::{ext}");
            let k = s.put(
                "catalog-category",
                &id,
                json!({"external_id": ext, "name": cat, "updated": created_long_ago}),
            );
            cats.insert(cat, k);
        }
    }
    for (i, (name, cat, price)) in PRODUCTS.iter().enumerate() {
        let ext = format!("SKU-{}", 1001 + i);
        let slug = name
            .to_lowercase()
            .replace(|c: char| !c.is_ascii_alphanumeric(), "-");
        let url = format!("https://sandbox-outfitters.example/products/{slug}");
        let img = format!("https://sandbox-outfitters.example/images/{slug}.jpg");
        let id = format!("$custom:::$default:::{ext}");
        let item = s.put(
            "catalog-item",
            &id,
            json!({"external_id": ext, "title": name, "description": format!("{name}, from our {cat} collection."),
                   "price": price, "url": url, "image_full_url": img, "image_thumbnail_url": img, "images": [img],
                   "custom_metadata": {"category": cat}, "published": true, "created": created_long_ago, "updated": created_long_ago}),
        );
        let c = cats[cat].clone();
        s.link(&c, "items", &item);
        s.link(&item, "categories", &c);
        for size in ["S", "M", "L"] {
            let vext = format!("{ext}-{size}");
            let vid = format!("$custom:::$default:::{vext}");
            let qty = s.rng.below(60);
            let v = s.put(
                "catalog-variant",
                &vid,
                json!({"external_id": vext, "title": format!("{name} / {size}"), "description": name,
                       "sku": vext, "inventory_policy": 1, "inventory_quantity": qty, "price": price,
                       "url": url, "image_full_url": img, "image_thumbnail_url": img, "images": [img],
                       "custom_metadata": {"size": size}, "published": true, "created": created_long_ago, "updated": created_long_ago}),
            );
            s.link(&item, "variants", &v);
            s.link(&v, "item", &item);
        }
    }
    s.state
}
