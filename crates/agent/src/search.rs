//! Ranked search over the Klaviyo actions, for agents in discovery mode.
//!
//! # Contract
//!
//! - [`search`] ranks every tool of [`Tool::all`] that `keep` accepts (tools it rejects are
//!   never returned) and returns at most `limit` [`Hit`]s, best first, only tools the request
//!   matched at all. Equal scores are ordered by tool name: the answer is deterministic.
//! - A request equal to a tool name, a Klaviyo alias, a promised title or an operation title
//!   (compared after [`tools::normalize`]) ranks that tool first; an identifier-like word of a
//!   longer request (`get_profiles`, `get-profiles`) that names a tool lifts it strongly.
//! - Otherwise the score is BM25F over what the catalog knows of each tool, with per-field
//!   weights (names and titles weigh most, description text least): the tool name (its words
//!   and adjacent pairs), title, promised titles and Klaviyo aliases, tag, summary (first
//!   sentence), the rest of the description, argument names, filterable fields (from the
//!   `filter` argument's "Allowed field(s)" list), `additional-fields` values, and the request
//!   body's `data.attributes` names, descriptions and enum values (`open_rate`, `daily`).
//! - A request is lower-cased, split into words, stop words dropped, and each word stemmed by a
//!   small suffix stripper (`subscribed` ≡ `subscribing` ≡ `subscription` ≡ `subscribe`,
//!   `lists` ≡ `list`). It is expanded with two reviewed tables: [`SYNONYMS`], Klaviyo's
//!   vocabulary for what people say (`text message` → SMS, `customer` → profile, `GDPR` →
//!   deletion request), and [`VERBS`], the verbs of action names for the verbs people use
//!   (`rename` → update, `pause` → update status, `copy` → clone). Expansions weigh less than
//!   the words typed.
//! - Then the reading of the request moves scores:
//!   - access class: a delete/remove/erase verb (or a GDPR/CCPA/deletion request anywhere)
//!     prefers destructive actions; a request for numbers ("how many", rate, total, revenue,
//!     report, performance) prefers reads, and the reporting actions (`query_*_values`,
//!     `query_*_series`, `query_metric_aggregates`) most; otherwise the first verb decides
//!     (show/list/which → reads, create/change → writes), and a request without a verb is a
//!     lookup;
//!   - the head noun ("which *lists* is this person on", "the *steps* of a flow"): actions
//!     whose name's head noun is the same (`get_lists_for_profile`), better when number and
//!     modifiers agree too (`get_custom_metrics` for "custom metrics");
//!   - the verb: actions whose name's verb is the request's (`edit` → `update_*`);
//!   - coverage: an action whose name the request does not explain (`get_profiles_for_list`
//!     when no list is spoken of) keeps less of its score;
//!   - find/search/look up prefers actions with a filter; client-side (public key) actions
//!     are preferred only when the request speaks of a browser, website or public key.
//! - A request with no searchable word (empty, blank, punctuation only) returns nothing. Only
//!   its first [`MAX_QUERY_WORDS`] words are read, so any input returns promptly.
//! - The index is built once, lazily, from the catalog (no I/O). [`tags`] counts actions per
//!   tag. [`evaluate`] measures recall over an intent file (`query<TAB>tool,names`), shared by
//!   the tests and benchmarks.

use klaviyo_catalog::generated::NAMES;
use klaviyo_catalog::tools::{self, Tool};
use klaviyo_catalog::{Access, Kind, Operation};
use serde_json::{Map, Value};
use std::collections::{HashMap as StdHashMap, HashSet as StdHashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// A small, fast, non-cryptographic hash (FxHash): the keys are the catalog's own words and
/// a query's few terms, so flooding is not a concern, and building the index is twice as fast.
#[derive(Clone, Copy, Default)]
struct Fx(u64);

impl Hasher for Fx {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
}

type HashMap<K, V> = StdHashMap<K, V, BuildHasherDefault<Fx>>;
type HashSet<K> = StdHashSet<K, BuildHasherDefault<Fx>>;
use std::sync::OnceLock;

/// One search result.
#[derive(Clone, Copy, Debug)]
pub struct Hit {
    pub tool: Tool,
    /// Relevance; only comparable within one answer.
    pub score: f32,
}

/// Best matches first; `keep` filters tools (e.g. read-only mode, toolsets) before ranking; at
/// most `limit`.
pub fn search(query: &str, limit: usize, keep: &dyn Fn(&Tool) -> bool) -> Vec<Hit> {
    if limit == 0 {
        return Vec::new();
    }
    let index = index();
    let mut scores = index.score(query);
    let mut hits: Vec<(usize, f32)> = scores
        .drain(..)
        .enumerate()
        .filter(|(i, s)| *s > 0.0 && keep(&index.tools[*i]))
        .collect();
    hits.sort_by(|a, b| {
        b.1.total_cmp(&a.1)
            .then_with(|| index.tools[a.0].name().cmp(index.tools[b.0].name()))
    });
    hits.truncate(limit);
    hits.into_iter()
        .map(|(i, score)| Hit {
            tool: index.tools[i],
            score,
        })
        .collect()
}

/// The Klaviyo tags with how many actions each has (for `tools --tags`), sorted by tag.
pub fn tags() -> Vec<(&'static str, usize)> {
    let mut counts: Vec<(&'static str, usize)> = Vec::new();
    for t in Tool::all() {
        match counts.iter_mut().find(|(tag, _)| *tag == t.tag()) {
            Some((_, n)) => *n += 1,
            None => counts.push((t.tag(), 1)),
        }
    }
    counts.sort();
    counts
}

/// Recall of [`search`] over an intent file.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// Number of intents (non-blank, non-`#` lines).
    pub intents: usize,
    /// Share of intents whose first hit is an acceptable action.
    pub recall_at_1: f64,
    /// Share of intents with an acceptable action among the first five hits.
    pub recall_at_5: f64,
    /// Intents whose first hit is not acceptable: the query and the names of the first five hits.
    pub misses: Vec<(String, Vec<String>)>,
}

/// Runs every intent of `tsv` through [`search`] (no filter). Each line is
/// `query<TAB>acceptable actions, comma-separated`; `#` lines and blank lines are skipped; a
/// name is compared after [`Tool::resolve`], so any accepted name works.
pub fn evaluate(tsv: &str) -> Evaluation {
    let (mut intents, mut at1, mut at5) = (0usize, 0usize, 0usize);
    let mut misses = Vec::new();
    for line in tsv.lines() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let (query, names) = line.split_once('\t').unwrap_or((line, ""));
        let wanted: Vec<&str> = names
            .split(',')
            .filter_map(|n| Tool::resolve(n.trim()).ok().map(|t| t.name()))
            .collect();
        intents += 1;
        let found: Vec<&str> = search(query, 5, &|_| true)
            .iter()
            .map(|h| h.tool.name())
            .collect();
        if found.first().is_some_and(|n| wanted.contains(n)) {
            at1 += 1;
        } else {
            misses.push((
                query.to_string(),
                found.iter().map(|n| n.to_string()).collect(),
            ));
        }
        if found.iter().any(|n| wanted.contains(n)) {
            at5 += 1;
        }
    }
    let share = |n: usize| {
        if intents == 0 {
            0.0
        } else {
            n as f64 / intents as f64
        }
    };
    Evaluation {
        intents,
        recall_at_1: share(at1),
        recall_at_5: share(at5),
        misses,
    }
}

/// Words of a query beyond this many are ignored (a query is a request, not a document).
pub const MAX_QUERY_WORDS: usize = 64;

/// Klaviyo vocabulary: (what people say, what the catalog says). Both sides are stemmed when
/// the index is built; the left side matches consecutive query words (the query's stop words
/// may come between them), longest phrase first. The right side's words are added to the query
/// with [`SYNONYM_WEIGHT`]; its last word is the head noun ("catalog *item*").
#[rustfmt::skip]
pub const SYNONYMS: &[(&str, &str)] = &[
    // Klaviyo calls every person it knows a "profile".
    ("contact", "profile"), ("customer", "profile"), ("person", "profile"),
    ("people", "profile"), ("user", "profile"), ("shopper", "profile"), ("visitor", "profile"),
    ("someone", "profile"), ("somebody", "profile"), ("everyone", "profile"),
    ("who", "profile"), ("member", "profile"), ("subscriber", "subscribe profile"),
    ("email address", "email profile"), ("phone number", "phone_number profile"),
    // Channels: people say "text" where the API says SMS; a device is known by its push token.
    ("text message", "sms"), ("text", "sms"), ("texting", "sms"),
    ("push notification", "push token"), ("device", "push token"),
    ("mobile app", "push token"),
    // Flows are Klaviyo's automations; a "welcome series" or a "journey" is a flow, and a
    // step of it is a flow action.
    ("automation", "flow"), ("automated", "flow"), ("autoresponder", "flow"),
    ("series", "flow"), ("journey", "flow"), ("drip", "flow"), ("step", "flow action"),
    // Klaviyo's standard flows, by the names marketers use.
    ("welcome series", "flow"), ("abandoned cart", "flow"), ("browse abandonment", "flow"),
    ("winback", "flow"), ("win back", "flow"), ("post purchase", "flow"),
    // A flow starts on its trigger.
    ("start", "trigger"), ("starts", "trigger"),
    // A campaign is a one-off send: a blast, a newsletter, a broadcast; its audience is made
    // of lists and segments; the subject line and preview text belong to its message.
    ("email blast", "campaign"), ("blast", "campaign"), ("newsletter", "campaign"),
    ("broadcast", "campaign"), ("mailing", "campaign"), ("audience", "list segment"),
    ("subject line", "campaign message"), ("preview text", "campaign message"),
    // Consent: opting in is subscribing, opting out is unsubscribing; a blocked address is
    // suppressed.
    ("opt in", "subscribe"), ("sign up", "subscribe"), ("consent", "subscribe"),
    ("opt out", "unsubscribe"), ("stop receiving", "unsubscribe"),
    ("stop sending", "unsubscribe"), ("stop emailing", "unsubscribe"),
    ("stop texting", "unsubscribe"),
    ("blocklist", "suppress"), ("unblock", "unsuppress"),
    ("remove suppression", "unsuppress"), ("lift suppression", "unsuppress"),
    // Data privacy: a GDPR/CCPA "right to be forgotten" request is a profile deletion request.
    ("gdpr", "request deletion privacy"), ("ccpa", "request deletion privacy"),
    ("forget", "request deletion"), ("forgotten", "request deletion"),
    ("personal data", "deletion privacy"),
    // Reporting: rates, revenue and conversions are the reporting API's analytics values;
    // in Klaviyo's reports "revenue" is the conversion value.
    ("open rate", "analytics"), ("click rate", "analytics"), ("bounce rate", "analytics"),
    ("click through", "click analytics"), ("ctr", "click rate analytics"),
    ("unsubscribe rate", "analytics"), ("spam complaint", "analytics"),
    ("perform", "analytics"),
    ("revenue", "analytics conversion_value"), ("conversion", "analytics"),
    ("performance", "analytics"), ("report", "analytics"), ("stats", "analytics statistics"),
    ("kpi", "analytics statistics"), ("average order value", "analytics average_order_value"),
    // Reports cover a timeframe ("this quarter", "last week").
    ("week", "timeframe"), ("month", "timeframe"), ("quarter", "timeframe"),
    ("year", "timeframe"), ("yesterday", "timeframe"), ("today", "timeframe"),
    ("last day", "timeframe"), ("last week", "timeframe"), ("last month", "timeframe"),
    ("last quarter", "timeframe"), ("last year", "timeframe"),
    // Predicted lifetime value, churn risk and next order date are predictive analytics.
    ("lifetime value", "predictive_analytics"), ("clv", "predictive_analytics"),
    ("churn", "predictive_analytics"), ("predicted", "predictive_analytics"),
    // A series is values over time, per interval.
    ("over time", "series interval"), ("trend", "series interval"), ("growth", "series"),
    ("per day", "interval daily day"), ("daily", "interval day"),
    ("each week", "interval weekly week"), ("weekly", "interval week"),
    ("monthly", "interval month"),
    // Totals and counts of events are metric aggregates; "how many" asks for a count.
    ("how many", "count"), ("total", "aggregate count sum_value"), ("count", "aggregate"),
    ("sum", "aggregate sum_value"), ("activity", "event"),
    // Orders, purchases and product views are events of a metric ("Placed Order").
    ("order", "metric event"), ("purchase", "metric event"),
    // Coupons are Klaviyo's discounts.
    ("discount", "coupon"), ("promo code", "coupon code"), ("voucher", "coupon code"),
    // Products live in the catalog as items, variants and categories.
    ("product", "catalog item"), ("sku", "catalog variant"),
    ("inventory", "catalog variant"), ("collection", "catalog category"),
    ("restock", "back stock"),
    // Many at once is a bulk job; a job has a status.
    ("in bulk", "bulk"), ("at once", "bulk"), ("one go", "bulk"), ("many", "bulk"),
    ("batch", "bulk"), ("multiple", "bulk"), ("hundreds", "bulk"), ("thousands", "bulk"),
    ("mass", "bulk"), ("status", "job"),
    // What failed is reported as errors (import jobs) or ingestion logs (custom objects).
    ("fail", "error"), ("failure", "error"),
    // Files of people to bring in are bulk imports.
    ("csv", "bulk import"), ("spreadsheet", "bulk import"),
    // Other names Klaviyo gives things.
    ("content block", "universal content"), ("reusable", "universal content"),
    ("snippet", "universal content"), ("popup", "form"), ("pop up", "form"),
    ("flyout", "form"), ("exit intent", "form"),
    ("utm", "tracking setting"), ("link tracking", "tracking setting"),
    ("star rating", "review"), ("rating", "review"),
    // Client-side (public key) actions are for browsers, storefronts and mobile apps.
    ("public key", "client"), ("public api key", "client"), ("browser", "client"),
    ("storefront", "client"), ("website", "client"),
    ("reply", "conversation message"),
    ("custom object", "object type record"),
    ("api key", "account"),
];

/// Verbs people use → the verbs of the action names, added with [`VERB_WEIGHT`] (a verb says
/// less about the action than a noun, but these are near-exact).
#[rustfmt::skip]
pub const VERBS: &[(&str, &str)] = &[
    ("add", "create"), ("new", "create"), ("make", "create"), ("build", "create"),
    ("generate", "create"), ("set up", "create"), ("record", "create"),
    ("track", "create event"), ("register", "create"),
    ("upsert", "create update"),
    ("rename", "update name"), ("edit", "update"), ("change", "update"),
    ("modify", "update"), ("set", "update"), ("enable", "update"), ("disable", "update"),
    ("turn", "update"), ("turn on", "update"), ("turn off", "update"), ("hide", "update hidden"),
    // Pausing, resuming or turning on a flow changes its status; "stop" a sending campaign is
    // a cancel.
    ("pause", "update status"), ("resume", "update status"), ("activate", "update status"),
    ("stop", "update status cancel"),
    ("remove", "delete"), ("erase", "delete"), ("wipe", "delete"), ("purge", "delete"),
    ("destroy", "delete"), ("drop", "delete"),
    ("copy", "clone"), ("duplicate", "clone"), ("make copy", "clone"),
    // Sending and cancelling a campaign.
    ("launch", "send"), ("kick off", "send"), ("blast out", "send"),
    ("abort", "cancel"), ("halt", "cancel"), ("unschedule", "cancel"),
    // Merging duplicates.
    ("combine", "merge"), ("dedupe", "merge"), ("deduplicate", "merge"),
    // Taking something off or out of a list or category is removing it.
    ("take off", "remove"), ("take out", "remove"), ("untag", "remove tag"),
    // Switching a flow on or off, and publishing or rejecting a review, change a status.
    ("switch", "update"), ("switch on", "update status"), ("switch off", "update status"),
    ("publish", "update status"), ("unpublish", "update status"),
    ("approve", "update status"), ("reject", "update status"),
    ("log", "create"), ("fix", "update"), ("correct", "update"),
    ("undo", "cancel"), ("fire off", "send"), ("block", "suppress"),
    ("pull", "get"), ("grab", "get"),
    ("preview", "render"),
    ("import", "bulk create"),
    // A campaign is scheduled by its send job (its send strategy says when).
    ("schedule", "send"),
    ("relate", "create relationship"), ("link", "create relationship"),
];

/// Weight of a synonym's words relative to the words of the query.
pub const SYNONYM_WEIGHT: f32 = 0.6;
/// Weight of a verb's translation relative to the words of the query.
pub const VERB_WEIGHT: f32 = 0.8;

/// Words that carry no meaning for the search, sorted (`get` is in nearly every read's name;
/// `id` in a request means "this one", not the relationship endpoints that return ids).
#[rustfmt::skip]
const STOP_WORDS: &[&str] = &[
    "a", "about", "after", "again", "all", "also", "am", "an", "and", "any", "are", "as", "at",
    "be", "been", "being", "both", "but", "by", "can", "could", "d", "did", "do", "does", "doing",
    "done", "e", "each", "every", "for", "from", "g", "get", "go", "going", "had", "has", "have",
    "having", "he", "her", "here", "his", "how", "i", "id", "ids", "if", "in", "into", "is", "it",
    "its", "just", "klaviyo", "let", "like", "ll", "m", "may", "me", "might", "more", "most",
    "must", "my", "need", "new", "no", "nor", "not", "now", "of", "off", "on", "once", "one",
    "only", "onto", "or", "other", "our", "out", "over", "own", "per", "permanently", "please",
    "re", "right", "s", "same", "she", "should", "so", "some", "such", "t", "than", "that", "the",
    "their", "them", "then", "there", "these", "they", "this", "those", "to", "too", "up", "us",
    "use", "using", "ve", "very", "via", "want", "was", "we", "were", "what", "when", "where",
    "whether", "which", "while", "why", "will", "with", "would", "yet", "you", "your",
];

/// Words that say the request reads or looks something up: prefer `read` actions.
#[rustfmt::skip]
const READ_WORDS: &[&str] = &[
    "list", "show", "get", "find", "look", "lookup", "see", "view", "which", "what", "who",
    "whose", "check", "fetch", "retrieve", "search", "display", "is", "are", "does", "why",
    "where", "export", "preview", "download", "pull", "grab",
];
/// Words that say the request changes something: prefer `write` actions.
#[rustfmt::skip]
const WRITE_WORDS: &[&str] = &[
    "create", "add", "update", "change", "edit", "rename", "set", "make", "new", "build",
    "turn", "pause", "upload", "import", "send", "subscribe", "track", "record", "register",
    "assign", "tag", "merge", "clone", "copy", "duplicate", "generate", "schedule", "put",
    "reply", "submit", "identify", "notify", "expire", "hide", "approve", "reject", "relate",
    "upsert", "give", "move", "recalculate", "swap", "modify", "resume", "enable", "disable",
    "activate", "opt", "unregister", "suppress", "unsuppress", "stop", "use", "launch",
    "kick", "combine", "dedupe", "deduplicate", "switch", "publish", "unpublish", "log",
    "sign", "link", "take", "fix", "correct", "fire", "block", "unblock",
];
/// Words that ask to delete: as the request's verb, or as a privacy request anywhere
/// ([`ANYWHERE_DESTRUCTIVE`]), they prefer `destructive` actions.
#[rustfmt::skip]
const DESTRUCTIVE_WORDS: &[&str] = &[
    "delete", "deletion", "remove", "erase", "wipe", "purge", "destroy", "forget", "gdpr",
    "ccpa", "unsubscribe", "cancel", "drop", "clear", "abort", "halt", "unschedule", "untag",
    "undo",
];
/// Words that ask for a deletion wherever they appear ("handle a CCPA *deletion* request").
const ANYWHERE_DESTRUCTIVE: &[&str] = &["gdpr", "ccpa", "forget", "delete", "deletion"];
/// Words that ask for numbers: prefer reads, and reporting actions most.
#[rustfmt::skip]
const REPORTING_WORDS: &[&str] = &[
    "report", "reporting", "rate", "total", "count", "sum", "average", "performance",
    "analytics", "stats", "statistics", "revenue", "conversion", "trend", "growth", "kpi", "roi",
    "perform", "ctr", "daily", "weekly", "monthly",
];
/// Words that qualify rather than name what a request is about ("the *recent* events").
#[rustfmt::skip]
const NOT_HEAD: &[&str] = &[
    "recent", "old", "new", "single", "specific", "given", "existing", "current", "last",
    "next", "first", "latest", "few", "whole", "entire", "detail", "details", "info",
    "information", "vip", "test", "draft", "saved",
];
/// Verbs that say little about which action is meant: they weigh [`GENERIC_WEIGHT`] as
/// themselves (their translations in [`VERBS`] and the verb agreement say more).
#[rustfmt::skip]
const GENERIC_WORDS: &[&str] = &[
    "add", "build", "create", "update", "change", "edit", "set", "modify",
    "delete", "remove", "show", "find", "view", "see", "look", "check", "fetch", "retrieve",
    "display", "turn", "give", "put", "take", "let", "help", "pull", "grab", "switch", "kick",
    "make",
];
/// Words that are nouns as well as verbs: a verb only in the bare form at the start of a
/// request ("tag campaigns" but "tags on a flow"; "import products" but "the profile import").
#[rustfmt::skip]
const DUAL_WORDS: &[&str] = &[
    "list", "tag", "record", "import", "export", "send", "track", "set", "view", "search",
    "check", "copy", "stop", "turn", "opt", "log", "link", "switch",
];
/// Words that, before "of", only introduce what the request is about ("the list of segments").
const QUANTIFIERS: &[&str] = &["list", "number", "count", "set", "bunch", "kind"];
/// Words that ask to find something by its fields: prefer actions that take a filter.
const FIND_WORDS: &[&str] = &[
    "find", "search", "lookup", "look", "locate", "filter", "where",
];
/// Words that end the head noun phrase of an action name (`get_lists_for_profile`: `lists`).
const NAME_PREPOSITIONS: &[&str] = &["for", "from", "to", "in", "by", "of", "on", "with", "into"];

/// Per-field weight and length normalisation (BM25F).
#[derive(Clone, Copy)]
enum Field {
    /// Words of the tool name (operation id or composite id), each counted once.
    Name,
    /// Unstemmed words of the tool name, so `metrics` prefers `get_metrics` to `get_metric`.
    Surface,
    /// Title, promised titles, Klaviyo aliases.
    Title,
    Tag,
    /// First sentence of the description.
    Summary,
    /// The rest of the description.
    Description,
    /// Argument names, body attribute names, filter fields, additional fields.
    Params,
    /// Enum values of body attributes (e.g. `open_rate`, `live`, `daily`).
    Values,
}

const FIELDS: usize = 8;
/// (weight, b) per [`Field`], in declaration order.
const FIELD_PARAMS: [(f32, f32); FIELDS] = [
    (3.0, 0.75),  // Name
    (0.8, 0.75),  // Surface
    (2.0, 0.5),   // Title
    (1.0, 0.0),   // Tag
    (1.5, 0.5),   // Summary
    (0.35, 0.75), // Description
    (0.7, 0.0),   // Params: a set of names, not prose: more names do not dilute one
    (0.5, 0.3),   // Values
];
const K1: f32 = 1.2;

/// Multipliers of the access preference: (read, write, destructive).
const PREFER_READ: [f32; 3] = [1.2, 0.85, 0.8];
const PREFER_WRITE: [f32; 3] = [0.8, 1.2, 0.9];
const PREFER_DESTRUCTIVE: [f32; 3] = [0.7, 0.95, 1.35];
/// Multiplier of the reporting actions when the request asks for numbers.
const REPORTING_BOOST: f32 = 1.5;
/// Multiplier of the actions whose name's head noun is the request's head noun.
const HEAD_BOOST: f32 = 1.3;
/// Multiplier when the head's modifiers qualify the action's head too.
const PHRASE_BOOST: f32 = 1.15;
/// Weight of a query word's unstemmed form (matches the tool name's own words).
const SURFACE_WEIGHT: f32 = 0.3;
/// Weight of a word of an idiom ("opt *out*", "welcome *series*") as itself.
const IDIOM_WEIGHT: f32 = 0.5;
/// Weight of a generic verb ("add", "show"), or of a verb's participle ("profiles *created*
/// last week"), as itself.
const GENERIC_WEIGHT: f32 = 0.5;
/// Multiplier when the head nouns agree in number too (`get_metrics` for "all metrics").
const NUMBER_BOOST: f32 = 1.1;
/// Multiplier of actions whose name's verb is the request's (`edit` → `update_*`).
const VERB_BOOST: f32 = 1.2;
/// Multiplier of client-side (public key) actions unless the request speaks of client use:
/// with a private key, the server-side action is nearly always the one meant.
const CLIENT_PRIOR: f32 = 0.85;
/// Multiplier of server-side actions when the request speaks of client use (a browser, a
/// storefront, the public key): then only a client-side action will do.
const SERVER_PRIOR: f32 = 0.7;
/// Share of the score an action keeps when the request explains none of its name's words
/// (it keeps all of it when the request explains them all).
const COVER_BASE: f32 = 0.7;
/// Weight of two consecutive words (`flow+action` prefers `get_flow_action`).
const BIGRAM_WEIGHT: f32 = 0.5;
/// Multiplier of actions that take a filter when the request asks to find something.
const FIND_BOOST: f32 = 1.15;
/// Score added to a tool named exactly by the query (ranks it first).
const EXACT_BONUS: f32 = 1000.0;

struct Index {
    tools: Vec<Tool>,
    /// Term → (idf, postings of (tool index, pseudo term frequency)).
    terms: HashMap<String, (f32, Vec<(u16, f32)>)>,
    /// Normalised names, aliases, promised and operation titles → tool index.
    exact: HashMap<String, u16>,
    /// [`SYNONYMS`] and [`VERBS`], stemmed.
    synonyms: Vec<Synonym>,
    /// Stemmed head noun of each tool's name, and whether it is plural (a collection).
    heads: Vec<Option<(String, bool)>>,
    /// Stemmed words of each tool name's noun phrase (`get_custom_metrics`: custom, metric).
    phrases: Vec<Vec<String>>,
    /// Whether each tool takes a `filter` argument (can find things by their fields).
    filters: Vec<bool>,
    /// The stemmed verb of each tool's name (`get`, `creat`, `updat`, `subscrib`, …).
    verbs: Vec<String>,
    /// Whether each tool is a client-side (public key) action.
    client: Vec<bool>,
    /// The stemmed words of each tool's name but its verb.
    name_words: Vec<Vec<String>>,
    /// Whether each tool is a reporting action (a read named `query_*` or tagged Reporting).
    reporting: Vec<bool>,
    // The word lists above, stemmed.
    read: HashSet<String>,
    write: HashSet<String>,
    destructive: HashSet<String>,
    numbers: HashSet<String>,
    not_head: HashSet<String>,
    generic: HashSet<String>,
    find: HashSet<String>,
    dual: HashSet<String>,
    anywhere: HashSet<String>,
}

fn index() -> &'static Index {
    static INDEX: OnceLock<Index> = OnceLock::new();
    INDEX.get_or_init(Index::build)
}

/// One entry of [`SYNONYMS`] or [`VERBS`], stemmed.
struct Synonym {
    phrase: Vec<String>,
    expansion: Vec<String>,
    weight: f32,
    /// From [`VERBS`]: a single word applies only where it is the request's verb.
    verb: bool,
}

/// One word of a query.
struct Word {
    raw: String,
    stem: String,
    stop: bool,
}

impl Index {
    fn build() -> Index {
        debug_assert!(
            STOP_WORDS.windows(2).all(|w| w[0] < w[1]),
            "STOP_WORDS is sorted"
        );
        let tools: Vec<Tool> = Tool::all().collect();
        let defs = tools::schema_defs();
        // Per tool, per field: term → count.
        let mut docs: Vec<[HashMap<String, u32>; FIELDS]> = Vec::with_capacity(tools.len());
        let mut exact = HashMap::default();
        // Word → term, as words repeat across the catalog.
        let mut memo: HashMap<String, Option<String>> = HashMap::default();
        for (i, tool) in tools.iter().enumerate() {
            let mut f: [HashMap<String, u32>; FIELDS] = Default::default();
            let mut add = |f: &mut [HashMap<String, u32>; FIELDS], field: Field, text: &str| {
                let f = &mut f[field as usize];
                for w in words(text) {
                    let t = match field {
                        Field::Surface if !is_stop(&w) => format!("={w}"),
                        Field::Surface => continue,
                        _ => match memo.get(&w) {
                            Some(Some(t)) => t.clone(),
                            Some(None) => continue,
                            None => {
                                let t = term(&w);
                                memo.insert(w, t.clone());
                                match t {
                                    Some(t) => t,
                                    None => continue,
                                }
                            }
                        },
                    };
                    let n = f.entry(t).or_default();
                    if matches!(field, Field::Name | Field::Surface | Field::Params) {
                        *n = 1;
                    } else {
                        *n += 1;
                    }
                }
                // Identifiers (`phone_number`, `open_rate`) also as pairs of words.
                if matches!(field, Field::Params | Field::Values) {
                    for t in text.split_whitespace().flat_map(identifier_pairs) {
                        let n = f.entry(t).or_default();
                        *n = if matches!(field, Field::Params) {
                            1
                        } else {
                            *n + 1
                        };
                    }
                }
            };
            add(&mut f, Field::Name, tool.name());
            // Adjacent words of the name, as `a+b`, in the name field too.
            for p in tool.name().split('_').collect::<Vec<_>>().windows(2) {
                if let (Some(a), Some(b)) = (term(p[0]), term(p[1])) {
                    f[Field::Name as usize].insert(format!("{a}+{b}"), 1);
                }
            }
            add(&mut f, Field::Surface, tool.name());
            add(&mut f, Field::Title, tool.title());
            // Promised titles and Klaviyo aliases (both in `NAMES`, normalised).
            let title = tools::normalize(tool.title());
            for alias in tool.aliases() {
                if alias != title {
                    add(&mut f, Field::Title, alias);
                }
            }
            add(&mut f, Field::Tag, tool.tag());
            let description = tool.description();
            let (summary, rest) = split_summary(&description);
            add(&mut f, Field::Summary, summary);
            add(&mut f, Field::Description, rest);
            let mut params = String::new();
            let mut values = String::new();
            for op in tool.operations() {
                describe_params(op, defs, &mut params, &mut values);
            }
            add(&mut f, Field::Params, &params);
            add(&mut f, Field::Values, &values);
            docs.push(f);

            exact.insert(tool.name().to_string(), i as u16);
            exact.entry(title).or_insert(i as u16);
        }
        for (name, i) in NAMES {
            exact.insert(name.to_string(), *i);
        }
        let n = docs.len() as f32;
        let mut avg = [0f32; FIELDS];
        for d in &docs {
            for (k, field) in d.iter().enumerate() {
                avg[k] += field.values().sum::<u32>() as f32;
            }
        }
        for a in &mut avg {
            *a = (*a / n).max(1.0);
        }
        let mut terms: HashMap<String, (f32, Vec<(u16, f32)>)> = HashMap::default();
        for (i, d) in docs.iter().enumerate() {
            let mut tf: HashMap<&str, f32> = HashMap::default();
            for (k, field) in d.iter().enumerate() {
                let (w, b) = FIELD_PARAMS[k];
                let len = field.values().sum::<u32>() as f32;
                let norm = 1.0 - b + b * len / avg[k];
                for (t, c) in field {
                    *tf.entry(t.as_str()).or_default() += w * *c as f32 / norm;
                }
            }
            for (t, v) in tf {
                terms
                    .entry(t.to_string())
                    .or_insert_with(|| (0.0, Vec::new()))
                    .1
                    .push((i as u16, v));
            }
        }
        for (idf, postings) in terms.values_mut() {
            let df = postings.len() as f32;
            *idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
            postings.sort_by_key(|p| p.0);
        }
        let table = |t: &[(&str, &str)], weight: f32, verb: bool| -> Vec<Synonym> {
            t.iter()
                .map(|(from, to)| {
                    let phrase = words(from).iter().map(|w| stem(w)).collect();
                    // An identifier (`conversion_value`) stands for its pairs of words.
                    let expansion = to
                        .split_whitespace()
                        .flat_map(|w| match w.contains('_') {
                            true => identifier_pairs(w),
                            false => term(w).into_iter().collect(),
                        })
                        .collect();
                    Synonym {
                        phrase,
                        expansion,
                        weight,
                        verb,
                    }
                })
                .collect()
        };
        let mut synonyms = table(SYNONYMS, SYNONYM_WEIGHT, false);
        synonyms.extend(table(VERBS, VERB_WEIGHT, true));
        let heads = tools
            .iter()
            .map(|t| name_head(t.name()).map(|h| (stem(h), plural(h))))
            .collect();
        let phrases = tools
            .iter()
            .map(|t| name_phrase(t.name()).iter().map(|w| stem(w)).collect())
            .collect();
        let verbs: Vec<String> = tools
            .iter()
            .map(|t| {
                let mut parts = t.name().split('_');
                let first = parts.next().unwrap_or("");
                let verb = if first == "bulk" {
                    parts.next().unwrap_or("")
                } else {
                    first
                };
                stem(verb)
            })
            .collect();
        let name_words = tools
            .iter()
            .zip(&verbs)
            .map(|(t, v): (&Tool, &String)| {
                let mut w: Vec<String> = words(t.name()).iter().filter_map(|w| term(w)).collect();
                if let Some(k) = w.iter().position(|x| x == v) {
                    w.remove(k);
                }
                w
            })
            .collect();
        let client = tools
            .iter()
            .map(|t| t.operations().iter().all(|o| o.client))
            .collect();
        let filters = tools
            .iter()
            .map(|t| {
                t.operations()
                    .iter()
                    .any(|o| o.params.iter().any(|p| p.arg == "filter"))
            })
            .collect();
        let reporting = tools
            .iter()
            .map(|t| {
                t.access() == Access::Read
                    && (t.tag() == "Reporting" || t.name().starts_with("query_"))
            })
            .collect();
        let set = |l: &[&str]| l.iter().map(|w| stem(w)).collect();
        Index {
            tools,
            terms,
            exact,
            synonyms,
            heads,
            phrases,
            filters,
            verbs,
            client,
            name_words,
            reporting,
            read: set(READ_WORDS),
            write: set(WRITE_WORDS),
            destructive: set(DESTRUCTIVE_WORDS),
            numbers: set(REPORTING_WORDS),
            not_head: set(NOT_HEAD),
            generic: set(GENERIC_WORDS),
            find: set(FIND_WORDS),
            dual: set(DUAL_WORDS),
            anywhere: set(ANYWHERE_DESTRUCTIVE),
        }
    }

    fn is_verb(&self, stem: &str) -> bool {
        self.read.contains(stem) || self.write.contains(stem) || self.destructive.contains(stem)
    }

    /// One score per tool (0 when nothing matched).
    fn score(&self, query: &str) -> Vec<f32> {
        let mut scores = vec![0f32; self.tools.len()];
        let r = self.read_query(query);
        // (No early return when no term is left: the exact-name check below still applies —
        // "get list" reads as a verb and a quantifier, but it is also `get_list`'s name.)
        for (t, w) in &r.terms {
            if let Some((idf, postings)) = self.terms.get(t) {
                for (doc, tf) in postings {
                    scores[*doc as usize] += w * idf * tf * (K1 + 1.0) / (tf + K1);
                }
            }
        }
        let asked: HashSet<&str> = r.terms.iter().map(|(t, _)| t.as_str()).collect();
        for (i, s) in scores.iter_mut().enumerate() {
            if *s == 0.0 {
                continue;
            }
            let tool = &self.tools[i];
            *s *= r.prefer[match tool.access() {
                Access::Read => 0,
                Access::Write => 1,
                Access::Destructive => 2,
            }];
            if r.numbers && self.reporting[i] {
                *s *= REPORTING_BOOST;
            }
            if let Some((head, many)) = &self.heads[i] {
                if r.head.iter().any(|h| h == head) {
                    *s *= HEAD_BOOST;
                    if r.plural == *many {
                        *s *= NUMBER_BOOST;
                    }
                    // The request's modifiers of its head qualify the action's head too
                    // ("*custom* metrics": `get_custom_metrics`, not `get_metrics_for_…`).
                    let phrase = &self.phrases[i];
                    if !r.modifiers.is_empty()
                        && r.modifiers
                            .iter()
                            .all(|m| m.iter().any(|w| phrase.contains(w)))
                    {
                        *s *= PHRASE_BOOST;
                    }
                }
            }
            if r.verbs.contains(&self.verbs[i]) {
                *s *= VERB_BOOST;
            }
            if r.find && self.filters[i] {
                *s *= FIND_BOOST;
            }
            if r.client && !self.client[i] {
                *s *= SERVER_PRIOR;
            } else if !r.client && self.client[i] {
                *s *= CLIENT_PRIOR;
            }
            // How much of the action's name the request explains: `get_profiles_for_list`
            // needs a list the request may not speak of.
            let name = &self.name_words[i];
            if !name.is_empty() {
                let covered = name.iter().filter(|w| asked.contains(w.as_str()));
                let share = covered.count() as f32 / name.len() as f32;
                *s *= COVER_BASE + (1.0 - COVER_BASE) * share;
            }
        }
        // Exact names: the whole query, or one identifier-looking chunk of it.
        let start = query
            .char_indices()
            .nth(200)
            .map_or(query, |(i, _)| &query[..i]);
        if let Some(&i) = self.exact.get(&tools::normalize(start)) {
            scores[i as usize] += EXACT_BONUS;
        } else {
            for chunk in query.split_whitespace().take(MAX_QUERY_WORDS) {
                if chunk.contains(['_', '-']) {
                    if let Some(&i) = self.exact.get(&tools::normalize(chunk)) {
                        scores[i as usize] += EXACT_BONUS / 10.0;
                    }
                }
            }
        }
        scores
    }

    /// Reads a request: its weighted terms, head noun, verb, and what it prefers.
    fn read_query(&self, query: &str) -> Reading {
        let q: Vec<Word> = words_up_to(query, MAX_QUERY_WORDS)
            .into_iter()
            .map(|raw| Word {
                stem: stem(&raw),
                stop: is_stop(&raw) || raw.chars().all(|c| c.is_ascii_digit()),
                raw,
            })
            .collect();
        // At the start of the request: after nothing but stop words ("bulk import …" too).
        let initial = |k: usize| q[..k].iter().all(|w| w.stop || w.raw == "bulk");
        // Which words are verbs: a word that is also a noun ("list", "tag", "import") is a
        // verb only in its bare form at the start of the request ("tag campaigns", not "tags
        // on a flow" or "the profile import").
        let mut verb: Vec<bool> = (0..q.len())
            .map(|k| {
                let w = &q[k];
                self.is_verb(&w.stem)
                    && (!self.dual.contains(&w.stem) || (!w.raw.ends_with('s') && initial(k)))
            })
            .collect();
        // Words that only introduce others: a leading verb "list" ("list all metrics"), "the
        // list of", "the number of".
        let skip: Vec<bool> = (0..q.len())
            .map(|k| {
                (q[k].stem == "list" && verb[k])
                    || (QUANTIFIERS.contains(&q[k].stem.as_str())
                        && q.get(k + 1).is_some_and(|w| w.raw == "of"))
            })
            .collect();

        // Whether the request is about many things whatever its head's form ("every segment",
        // "the list of …", "find …").
        let all_words = skip.iter().any(|s| *s)
            || q.iter()
                .any(|w| w.raw == "all" || w.raw == "every" || self.find.contains(&w.stem));

        // The head noun: the last word of the first noun phrase ("show the *steps* of the
        // flow", "which *lists* is this person on", "*who* is on the list"). The request's
        // verbs come before it; after it, a verb qualifies a noun ("status of the bulk *update*
        // job", "performance by *send* channel").
        let mut head_at = None;
        let mut head_start = q.len();
        let mut k = 0;
        while k < q.len() && head_at.is_none() {
            // ("bulk" qualifies the verb that follows it: "bulk import customers").
            let noun = |k: usize| {
                !q[k].stop
                    && !skip[k]
                    && (q[k].raw == "who" || !verb[k])
                    && !(q[k].raw == "bulk" && verb.get(k + 1) == Some(&true))
            };
            while k < q.len() && !noun(k) {
                k += 1;
            }
            head_start = k;
            while k < q.len() && noun(k) {
                if !self.not_head.contains(&q[k].stem) && !participle(&q[k].raw) {
                    head_at = Some(k);
                }
                k += 1;
            }
        }
        for (k, v) in verb.iter_mut().enumerate() {
            *v &= k < head_start;
        }

        // Synonyms, longest phrase first at each position (a verb's translation only where the
        // word is a verb: "track an event", not "the metrics we track"). `meaning` is the
        // request with each idiom (a phrase of several words) replaced by its expansion, with
        // whether each word is a verb and where it came from ("opt out" is an unsubscribe);
        // `heads` holds, per word, the nouns it stands for; `idiom` marks the words of idioms,
        // which weigh less as themselves.
        let mut meaning: Vec<(String, bool, usize)> = Vec::new();
        let mut heads: Vec<Vec<String>> = q.iter().map(|w| vec![w.stem.clone()]).collect();
        let mut idiom = vec![false; q.len()];
        let mut expansions: Vec<(String, f32)> = Vec::new();
        let mut k = 0;
        while k < q.len() {
            let mut best: Option<(usize, usize)> = None;
            for (n, s) in self.synonyms.iter().enumerate() {
                if s.verb && s.phrase.len() == 1 && !verb[k] {
                    continue;
                }
                if let Some(end) = match_phrase(&q, k, &s.phrase) {
                    if best.is_none_or(|(e, _)| end > e) {
                        best = Some((end, n));
                    }
                }
            }
            let Some((end, n)) = best else {
                meaning.push((q[k].stem.clone(), verb[k], k));
                k += 1;
                continue;
            };
            let s = &self.synonyms[n];
            // A modifier stands for the expansion's modifiers only: a "product category" is a
            // catalog category, not a catalog item.
            let modifier = s.phrase.len() == 1
                && s.expansion.len() > 1
                && q.get(end).is_some_and(|w| !w.stop && !verb[end]);
            let expansion = match modifier {
                true => &s.expansion[..s.expansion.len() - 1],
                false => &s.expansion[..],
            };
            expansions.extend(expansion.iter().map(|t| (t.clone(), s.weight)));
            if s.phrase.len() > 1 {
                let verb_phrase = (s.verb || verb[k]) && k < head_start;
                meaning.extend(
                    expansion
                        .iter()
                        .map(|t| (t.clone(), verb_phrase && self.is_verb(t), k)),
                );
                idiom[k..end].iter_mut().for_each(|i| *i = true);
                heads[end - 1].clear();
            } else {
                meaning.push((q[k].stem.clone(), verb[k], k));
            }
            if let Some(last) = expansion.last() {
                heads[end - 1].push(last.clone());
            }
            k = end;
        }

        // Weighted terms, in first-seen order (deterministic float sums).
        let mut terms: Vec<(String, f32)> = Vec::new();
        let mut put = |t: String, w: f32| match terms.iter_mut().find(|(x, _)| *x == t) {
            Some((_, old)) => *old = old.max(w),
            None => terms.push((t, w)),
        };
        let content: Vec<usize> = (0..q.len()).filter(|&k| !q[k].stop && !skip[k]).collect();
        for &k in &content {
            let w = &q[k];
            let weight = if idiom[k] {
                IDIOM_WEIGHT
            } else if self.generic.contains(&w.stem)
                || (participle(&w.raw) && self.is_verb(&w.stem))
            {
                GENERIC_WEIGHT
            } else {
                1.0
            };
            put(w.stem.clone(), weight);
            // The word as typed, which prefers names with the same form (`metrics` →
            // `get_metrics`), but not the head's when the request is about many things.
            if !(all_words && Some(k) == head_at) {
                put(format!("={}", w.raw), SURFACE_WEIGHT * weight);
            }
        }
        for pair in content.windows(2).filter(|p| p[1] == p[0] + 1) {
            let (a, b) = (&q[pair[0]].stem, &q[pair[1]].stem);
            put(format!("{a}+{b}"), BIGRAM_WEIGHT);
        }
        for (t, w) in expansions {
            put(t, w);
        }

        // Access preference: a delete verb, or a privacy request anywhere, prefers destructive
        // actions; otherwise the first verb decides, and a request without one is a lookup. A
        // request for numbers (unless it first asks to change something) prefers reads, and
        // reporting actions most. "Find" prefers actions with filters, over many things.
        let how_many = q
            .windows(2)
            .any(|w| w[0].raw == "how" && (w[1].raw == "many" || w[1].raw == "much"));
        let first_verb = meaning.iter().position(|m| m.1);
        let first_number = meaning.iter().position(|m| self.numbers.contains(&m.0));
        let numbers = how_many
            || first_number.is_some_and(|n| {
                !first_verb.is_some_and(|v| v < n && self.write.contains(&meaning[v].0))
            });
        let destructive = meaning
            .iter()
            .any(|(s, v, _)| self.destructive.contains(s) && (*v || self.anywhere.contains(s)));
        let prefer = if destructive {
            PREFER_DESTRUCTIVE
        } else if numbers {
            PREFER_READ
        } else {
            match first_verb {
                Some(v) if self.write.contains(&meaning[v].0) => PREFER_WRITE,
                _ => PREFER_READ,
            }
        };
        // The verbs of action names the request's first verb stands for.
        let mut verbs: Vec<String> = Vec::new();
        if let Some(v) = first_verb {
            let v = &meaning[v].0;
            verbs.push(v.clone());
            for s in &self.synonyms {
                if s.phrase.len() == 1 && s.phrase[0] == *v {
                    verbs.extend(s.expansion.iter().cloned());
                }
            }
            if self.read.contains(v) {
                verbs.push("get".into());
            }
        } else if !numbers {
            verbs.push("get".into());
        }
        if numbers {
            verbs.push("query".into());
        }
        let find = q.iter().any(|w| self.find.contains(&w.stem));
        let client = terms.iter().any(|(t, _)| t == "client");
        let modifiers: Vec<Vec<String>> = match head_at {
            Some(l) => (head_start..l)
                .filter(|&k| !q[k].stop && !self.not_head.contains(&q[k].stem))
                .map(|k| heads[k].clone())
                .collect(),
            None => Vec::new(),
        };
        let (head, plural_head) = match head_at {
            Some(l) => (heads[l].clone(), plural(&q[l].raw) || q[l].raw == "who"),
            None => (Vec::new(), false),
        };
        Reading {
            terms,
            head,
            modifiers,
            plural: plural_head || all_words,
            verbs,
            prefer,
            numbers,
            find,
            client,
        }
    }
}

/// What a request says, as [`Index::read_query`] reads it.
struct Reading {
    /// Weighted terms: stems, `=surface` forms, `a+b` bigrams, synonyms.
    terms: Vec<(String, f32)>,
    /// The head noun and what it stands for (stems).
    head: Vec<String>,
    /// The words qualifying the head in its noun phrase, each with what it stands for.
    modifiers: Vec<Vec<String>>,
    /// Whether the request is about many things (a plural head, "all", "list", "find").
    plural: bool,
    /// Name verbs the request's first verb stands for (`edit` → `update`; a lookup → `get`).
    verbs: Vec<String>,
    /// Multipliers per access class.
    prefer: [f32; 3],
    /// Whether the request asks for numbers.
    numbers: bool,
    /// Whether it asks to find something by its fields.
    find: bool,
    /// Whether it speaks of client-side use (public key, browser, mobile app).
    client: bool,
}

/// The head noun of an action name: the last word of the phrase after its verb (and `bulk`)
/// and before the first preposition (`get_lists_for_profile` → `lists`, `update_tag_group` →
/// `group`, `bulk_subscribe_profiles` → `profiles`). `None` when that phrase is empty.
fn name_head(name: &str) -> Option<&str> {
    name_phrase(name).into_iter().rev().find(|w| !participle(w))
}

/// The noun phrase of an action name: the words after its verb (and `bulk`), before the first
/// preposition, but stop words (`get_mapped_metrics` → `mapped`, `metrics`).
fn name_phrase(name: &str) -> Vec<&str> {
    let parts: Vec<&str> = name.split('_').collect();
    let skip = if parts.first() == Some(&"bulk") { 2 } else { 1 };
    parts
        .into_iter()
        .skip(skip)
        .take_while(|w| !NAME_PREPOSITIONS.contains(w))
        .filter(|w| !is_stop(w))
        .collect()
}

/// Whether a word looks like a past participle, which qualifies a noun rather than being
/// one ("orders *placed*", "flows *triggered* by").
fn participle(word: &str) -> bool {
    word.len() > 4 && word.ends_with("ed")
}

/// Whether an English word looks plural (`lists`, `categories`; not `status`, `sms`).
fn plural(word: &str) -> bool {
    word.len() > 3 && word.ends_with('s') && !["ss", "us", "is"].iter().any(|e| word.ends_with(e))
}

/// Where `phrase` matches the query from word `start` (the query's stop words may come between
/// the phrase's words): the index after the match.
fn match_phrase(q: &[Word], start: usize, phrase: &[String]) -> Option<usize> {
    if phrase.is_empty() || q.get(start).map(|w| &w.stem) != Some(&phrase[0]) {
        return None;
    }
    let mut j = start + 1;
    for (n, p) in phrase.iter().enumerate().skip(1) {
        // A phrasal verb's particle may come after its object ("opt a customer in").
        let particle = n == phrase.len() - 1 && PARTICLES.contains(&p.as_str());
        let mut skipped = 0;
        while j < q.len() && q[j].stem != *p && (q[j].stop || (particle && skipped < 2)) {
            skipped += usize::from(!q[j].stop);
            j += 1;
        }
        if j >= q.len() || q[j].stem != *p {
            return None;
        }
        j += 1;
    }
    Some(j)
}

/// Particles of phrasal verbs, which may follow the verb's object.
const PARTICLES: &[&str] = &["in", "out", "up", "on", "off"];

/// The first sentence of a description, and the rest.
fn split_summary(d: &str) -> (&str, &str) {
    let end = [". ", ".\n", "\n"]
        .iter()
        .filter_map(|p| d.find(p))
        .min()
        .unwrap_or(d.len());
    d.split_at(end)
}

/// Appends the searchable names of an operation's arguments and body to `params`, and the
/// enum values of its body attributes to `values`.
fn describe_params(
    op: &Operation,
    defs: &Map<String, Value>,
    params: &mut String,
    values: &mut String,
) {
    for p in op.params {
        if p.arg.starts_with("fields_") || p.arg.starts_with("page_") || p.arg == "include" {
            continue;
        }
        if p.arg != "id" && p.arg != "filter" && p.arg != "sort" {
            params.push_str(p.arg);
            params.push(' ');
        }
        if p.arg.starts_with("additional_fields") {
            if let Kind::List(vs) = p.kind {
                for v in vs {
                    params.push_str(v);
                    params.push(' ');
                }
            }
        }
        if p.arg == "filter" {
            // "Allowed field(s)/operator(s):\n`email`: `any`, `equals`\n…"
            if let Some((_, fields)) = p.description.split_once("Allowed field(s)/operator(s):") {
                for line in fields.lines() {
                    if let Some(f) = line.strip_prefix('`').and_then(|l| l.split('`').next()) {
                        params.push_str(f);
                        params.push(' ');
                    }
                }
            }
        }
    }
    let Some(body) = &op.body else { return };
    let Some(root) = defs.get(body.schema) else {
        return;
    };
    let mut data = deref(defs, root.pointer("/properties/data"));
    if let Some(items) = data.and_then(|d| d.get("items")) {
        data = deref(defs, Some(items));
    }
    let attrs = deref(defs, data.and_then(|d| d.pointer("/properties/attributes")));
    let Some(props) = attrs
        .and_then(|a| a.get("properties"))
        .and_then(Value::as_object)
    else {
        return;
    };
    for (name, schema) in props {
        params.push_str(name);
        params.push(' ');
        if let Some(d) = schema.get("description").and_then(Value::as_str) {
            values.push_str(d);
            values.push(' ');
        }
        let schema = deref(defs, Some(schema));
        let items = schema.and_then(|s| s.get("items"));
        for s in [schema, deref(defs, items)].into_iter().flatten() {
            if let Some(vs) = s.get("enum").and_then(Value::as_array) {
                if vs.len() <= 64 {
                    for v in vs.iter().filter_map(Value::as_str) {
                        values.push_str(v);
                        values.push(' ');
                    }
                }
            }
        }
    }
}

/// Follows `$ref`s into the body definitions.
fn deref<'a>(defs: &'a Map<String, Value>, mut v: Option<&'a Value>) -> Option<&'a Value> {
    for _ in 0..8 {
        match v?.get("$ref").and_then(Value::as_str) {
            Some(r) => v = defs.get(r.strip_prefix("#/$defs/")?),
            None => return v,
        }
    }
    v
}

/// Lower-case words of `text`: runs of ASCII letters and digits; links' addresses are skipped.
fn words(text: &str) -> Vec<String> {
    words_up_to(text, usize::MAX)
}

/// The first `max` of [`words`], reading no further.
fn words_up_to(text: &str, max: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() && out.len() < max {
        // Skip addresses: `(https://…)` and bare `https://…`.
        if rest.starts_with("http://") || rest.starts_with("https://") {
            let end = rest
                .find(|c: char| c.is_whitespace() || c == ')')
                .unwrap_or(rest.len());
            rest = &rest[end..];
            continue;
        }
        let c = rest.chars().next().unwrap_or(' ');
        if c.is_ascii_alphanumeric() {
            let end = rest
                .find(|c: char| !c.is_ascii_alphanumeric())
                .unwrap_or(rest.len());
            out.push(rest[..end].to_ascii_lowercase());
            rest = &rest[end..];
        } else {
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// A word's index term: its stem, or `None` for stop words and numbers.
/// The pairs of consecutive words of an identifier (`subscriptions.email.marketing` →
/// `subscrib+email`, `email+marketing`), stemmed, as `a+b` terms.
fn identifier_pairs(ident: &str) -> Vec<String> {
    let parts: Vec<String> = ident
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter_map(|w| term(&w.to_ascii_lowercase()))
        .collect();
    parts
        .windows(2)
        .map(|p| format!("{}+{}", p[0], p[1]))
        .collect()
}

fn term(word: &str) -> Option<String> {
    if is_stop(word) || word.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some(stem(word))
}

fn is_stop(w: &str) -> bool {
    STOP_WORDS.binary_search(&w).is_ok()
}

/// A light English suffix stripper (Porter-like, for the words of this API): plurals,
/// `-scription` → `-scrib`, `-tion`/`-sion`, `-ive`, `-ing`, `-ed`, a final `e`. Not a
/// dictionary: it only has to map the forms people type and the catalog's forms to one stem.
fn stem(word: &str) -> String {
    // A rating is not a rate.
    if word == "rating" || word == "ratings" {
        return "rating".into();
    }
    let mut w = word.to_string();
    let len = |w: &str| w.len();
    // Plurals.
    if w.ends_with("ies") && len(&w) > 4 {
        w.truncate(w.len() - 3);
        w.push('y');
    } else if w.ends_with("sses") {
        w.truncate(w.len() - 2);
    } else if (w.ends_with("xes")
        || w.ends_with("ches")
        || w.ends_with("shes")
        || w.ends_with("ses"))
        && len(&w) > 4
        && !w.ends_with("ases")
    {
        w.truncate(w.len() - 2);
    } else if w.ends_with('s')
        && !w.ends_with("ss")
        && !w.ends_with("us")
        && !w.ends_with("is")
        && len(&w) > 3
    {
        w.truncate(w.len() - 1);
    }
    // -scription(s) → -scrib (subscription ≡ subscribe).
    if w.ends_with("scription") {
        w.truncate(w.len() - "scription".len());
        w.push_str("scrib");
        return w;
    }
    // -tion / -sion → drop "ion" (deletion ≡ delete).
    if (w.ends_with("tion") || w.ends_with("sion")) && len(&w) >= 7 {
        w.truncate(w.len() - 3);
        return undouble(w);
    }
    // -ive (predictive ≡ predicted).
    if w.ends_with("ive") && len(&w) >= 8 {
        w.truncate(w.len() - 3);
        return w;
    }
    // -ing / -ed.
    for suffix in ["ing", "ed"] {
        if w.ends_with(suffix) && len(&w) - suffix.len() >= 3 {
            let stem = &w[..w.len() - suffix.len()];
            if stem.chars().any(|c| "aeiouy".contains(c)) {
                w.truncate(stem.len());
                return undouble(w);
            }
        }
    }
    // Final e (create ≡ creat-ed).
    if w.ends_with('e') && len(&w) >= 4 {
        w.truncate(w.len() - 1);
    }
    w
}

/// `mapp` → `map` (after `-ing`/`-ed`), but `suppress`, `call` stay.
fn undouble(mut w: String) -> String {
    let b = w.as_bytes();
    let n = b.len();
    if n >= 3 && b[n - 1] == b[n - 2] && !b"aeiouslz".contains(&b[n - 1]) {
        w.truncate(n - 1);
    }
    w
}
