//! `klaviyo-harness report`: what the agent did, read from the audit log, for the person who
//! watches the work land. One [`Report`] (figures), three renderings: text, JSON (the same
//! figures, serialised) and one self-contained HTML page with inline SVG charts.
//!
//! Contract:
//! - Every figure comes from the audit records: a request *outcome* is a `done`, `denied`,
//!   `not-configured` or `dry-run` record (`sending`, `retry` and `start` are not outcomes);
//!   its class is the host's (`access`), its action the host's classification (`operation`).
//! - Outcomes: `ok` (2xx), `http-NNN` (Klaviyo answered an error), `throttled` (429, or the
//!   host's pacing / daily cap held it back), `transport`, `timeout`, `outcome-unknown` (a
//!   write whose answer was lost), `denied`, `declined` / `unconfirmed` (an `ask` the user
//!   declined or could not answer), `not-configured`, `dry-run`.
//! - A line that is not a record (truncated, corrupt) is reported with its line number and
//!   skipped, never fatal.
//! - Deterministic: the same log and options give the same report (days and tools sorted).

use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// A day whose error share is above this (with at least [`MIN_CALLS_FOR_RATE`] answered
/// requests) needs a look.
pub const ERROR_RATE_THRESHOLD: f64 = 0.10;
pub const MIN_CALLS_FOR_RATE: usize = 5;
/// The same action denied this many times in a day: the agent keeps retrying it.
pub const DENIED_RETRIES: usize = 3;

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub log: String,
    /// Only this named connection's records (`--connection`), or the sandbox account's
    /// (`sandbox:SEED`, with `--sandbox`).
    pub connection: Option<String>,
    /// Records of the sandbox account left out of a report on real accounts.
    pub sandbox_records_left_out: usize,
    /// Records read (outcomes and others), after `since`.
    pub records: usize,
    /// Lines that are not records: (line number, why).
    pub skipped: Vec<Skipped>,
    pub since: Option<String>,
    pub totals: Counts,
    pub days: Vec<Day>,
    pub tools: Vec<ToolFigures>,
    pub asked: Asked,
    pub throttling: Throttling,
    /// Writes Klaviyo accepted, oldest first.
    pub writes: Vec<Write>,
    pub needs_attention: Vec<Attention>,
    /// The first seven days from the log's first record, one line each.
    pub first_week: Vec<Day>,
}

#[derive(Debug, Serialize)]
pub struct Skipped {
    pub file: String,
    pub line: usize,
    pub why: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Counts {
    /// Request outcomes.
    pub calls: usize,
    pub by_access: BTreeMap<String, usize>,
    pub by_outcome: BTreeMap<String, usize>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Day {
    pub day: String,
    #[serde(flatten)]
    pub counts: Counts,
    /// Writes (write or destructive) Klaviyo accepted that day.
    pub writes_ok: usize,
}

#[derive(Debug, Default, Serialize)]
pub struct ToolFigures {
    pub action: String,
    pub calls: usize,
    pub errors: usize,
    /// Over the requests that got to Klaviyo (a `done` record), in milliseconds.
    pub p50_ms: Option<u64>,
    pub p95_ms: Option<u64>,
}

#[derive(Debug, Default, Serialize)]
pub struct Asked {
    pub approved: usize,
    pub declined: usize,
    pub unconfirmed: usize,
}

#[derive(Debug, Default, Serialize)]
pub struct Throttling {
    /// 429 answers from Klaviyo (retried or not).
    pub klaviyo_429s: usize,
    pub retries: usize,
    /// Held back by the host (pacing beyond the call's time limit, or a daily cap).
    pub held_back: usize,
    /// Time requests waited for Klaviyo's pace before going out.
    pub paced_ms: u64,
}

#[derive(Debug, Serialize)]
pub struct Write {
    pub time: String,
    pub operation: String,
    pub access: String,
    pub method: String,
    pub path: String,
    /// The resource ids the path names.
    pub ids: Vec<String>,
    pub status: u16,
}

#[derive(Debug, Serialize)]
pub struct Attention {
    /// `error-rate`, `denied-retries`, `outcome-unknown`, `key`.
    pub kind: &'static str,
    pub day: String,
    pub what: String,
}

/// `--since`: `7d` (the last 7 days, today included) or a date `YYYY-MM-DD`; the first day
/// included. `today` is `YYYY-MM-DD`.
pub fn since_day(spec: &str, today: &str) -> Result<String, String> {
    if let Some(n) = spec.strip_suffix('d') {
        let n: i64 = n.parse().map_err(|_| {
            format!("`--since {spec}`: expected a number of days such as 7d, or a date YYYY-MM-DD")
        })?;
        if n < 1 {
            return Err(format!(
                "`--since {spec}`: the number of days must be 1 or more"
            ));
        }
        let d = days_from_civil(today).ok_or("bad date")?;
        return Ok(civil_from_days(d - (n - 1)));
    }
    days_from_civil(spec)
        .map(|_| spec.to_string())
        .ok_or_else(|| {
            format!("`--since {spec}`: expected a date YYYY-MM-DD or a number of days such as 7d")
        })
}

fn days_from_civil(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if s.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let y: i64 = s[..4].parse().ok()?;
    let m: i64 = s[5..7].parse().ok()?;
    let d: i64 = s[8..].parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    Some(klaviyo_catalog::dates::days_from_civil(y, m, d))
}

fn civil_from_days(days: i64) -> String {
    let (year, month, day) = klaviyo_catalog::dates::civil_from_days(days);
    format!("{year:04}-{month:02}-{day:02}")
}

/// The outcome class of a record, if it is a request outcome.
pub fn outcome(r: &Value) -> Option<String> {
    let s = |k: &str| r[k].as_str();
    Some(match s("event")? {
        "done" => match (s("outcome"), r["status"].as_u64()) {
            (Some(o), _) => o.to_string(),
            (None, Some(200..=299)) => "ok".into(),
            (None, Some(429)) => "throttled".into(),
            (None, Some(n)) => format!("http-{n}"),
            (None, None) => "transport".into(),
        },
        "denied" => match s("outcome") {
            Some(o @ ("declined" | "unconfirmed")) => o.to_string(),
            _ => "denied".into(),
        },
        "not-configured" => "not-configured".into(),
        "dry-run" => "dry-run".into(),
        _ => return None,
    })
}

fn is_error(outcome: &str) -> bool {
    outcome.starts_with("http-")
        || matches!(
            outcome,
            "transport" | "timeout" | "outcome-unknown" | "throttled"
        )
}

/// The ids in a Klaviyo path: the segments after a resource name that are not names
/// themselves (`/api/lists/Y6nRLr/relationships/profiles` → `Y6nRLr`).
pub fn path_ids(path: &str) -> Vec<String> {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    segs.iter()
        .enumerate()
        .skip(2)
        .filter(|(i, s)| *s != &"relationships" && segs[i - 1] != "relationships")
        .map(|(_, s)| s.to_string())
        .collect()
}

fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    // Nearest rank.
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

impl Counts {
    fn add(&mut self, access: &str, outcome: &str) {
        self.calls += 1;
        *self.by_access.entry(access.to_string()).or_default() += 1;
        *self.by_outcome.entry(outcome.to_string()).or_default() += 1;
    }
}

/// Reads the log files (rotated ones first, oldest first). `progress` is told the share read
/// so far (for a terminal line).
pub fn read(
    paths: &[std::path::PathBuf],
    since: Option<&str>,
    connection: Option<&str>,
    progress: &mut dyn FnMut(f64),
) -> Result<Report, String> {
    let mut texts = Vec::new();
    for path in paths {
        texts.push(std::fs::read(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                format!(
                    "no audit log at {}: turn auditing on with --audit-log PATH (or KLAVIYO_AUDIT_LOG, or `audit_log` in the config file), then run some calls",
                    path.display()
                )
            } else {
                format!("audit log {}: {e}", path.display())
            }
        })?);
    }
    let mut records = Vec::new();
    let mut skipped = Vec::new();
    let total = texts.iter().map(Vec::len).sum::<usize>().max(1);
    let mut done = 0;
    for (path, text) in paths.iter().zip(&texts) {
        for (i, line) in text.split(|b| *b == b'\n').enumerate() {
            done += line.len() + 1;
            if i % 4096 == 0 {
                progress(done as f64 / total as f64);
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let skip = |why: String| Skipped {
                file: path.display().to_string(),
                line: i + 1,
                why,
            };
            match serde_json::from_slice::<Value>(line) {
                Ok(v) if v["event"].is_string() && v["time"].is_string() => records.push(v),
                Ok(_) => skipped.push(skip(
                    "a JSON value without `event` and `time`: not an audit record".into(),
                )),
                Err(e) => skipped.push(skip(format!("not JSON ({e}): truncated or corrupt"))),
            }
        }
    }
    progress(1.0);
    // One connection's records, when several write one log. The sandbox account's records
    // (`connection: sandbox:SEED`) are never counted with a real account's.
    let before = records.len();
    if !connection.is_some_and(klaviyo_sandbox::is_account_name) {
        records.retain(|r| {
            !r["connection"]
                .as_str()
                .is_some_and(klaviyo_sandbox::is_account_name)
        });
    }
    let left_out = before - records.len();
    if let Some(c) = connection {
        records.retain(|r| r["connection"] == c);
    }
    let mut r = build(&records, since);
    r.sandbox_records_left_out = left_out;
    r.connection = connection.map(String::from);
    r.log = paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    r.skipped = skipped;
    Ok(r)
}

/// The figures over `records` (in log order), from the day `since` on.
pub fn build(records: &[Value], since: Option<&str>) -> Report {
    let day_of = |r: &Value| {
        r["time"]
            .as_str()
            .unwrap_or("")
            .get(..10)
            .unwrap_or("")
            .to_string()
    };
    // The first week counts from the log's first record, whatever `since` says.
    let first_day = records
        .first()
        .map(day_of)
        .and_then(|d| days_from_civil(&d));
    let mut report = Report {
        since: since.map(String::from),
        ..Report::default()
    };
    let mut days: BTreeMap<String, Day> = BTreeMap::new();
    let mut week: BTreeMap<String, Day> = BTreeMap::new();
    let mut durations: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut tools: BTreeMap<String, ToolFigures> = BTreeMap::new();
    let mut denied: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut unknown: Vec<&Value> = Vec::new();
    let mut reconciled: Vec<u64> = Vec::new();
    for r in records {
        let day = day_of(r);
        let s = |k: &str| r[k].as_str().unwrap_or("").to_string();
        if r["event"] == "reconciled" && r["outcome"] != "could-not-check" {
            reconciled.extend(r["request"].as_u64());
        }
        let in_week = first_day
            .zip(days_from_civil(&day))
            .is_some_and(|(f, d)| (0..7).contains(&(d - f)));
        let Some(out) = outcome(r) else {
            if since.is_none_or(|s| day.as_str() >= s) {
                report.records += 1;
                if r["event"] == "retry" {
                    report.throttling.retries += 1;
                    if r["status"] == 429 {
                        report.throttling.klaviyo_429s += 1;
                    }
                }
                if r["event"] == "sending" && r["outcome"] == "approved" {
                    report.asked.approved += 1;
                }
            }
            continue;
        };
        let access = match s("access").as_str() {
            "" | "-" => "unclassified".to_string(),
            a => a.to_string(),
        };
        let action = match s("operation").as_str() {
            "" | "-" => format!("{} (unclassified)", s("tool")),
            o => o.to_string(),
        };
        let write_ok = out == "ok" && access != "read";
        if in_week {
            let w = week.entry(day.clone()).or_insert_with(|| Day {
                day: day.clone(),
                ..Day::default()
            });
            w.counts.add(&access, &out);
            w.writes_ok += usize::from(write_ok);
        }
        if since.is_some_and(|s| day.as_str() < s) {
            continue;
        }
        report.records += 1;
        report.totals.add(&access, &out);
        let d = days.entry(day.clone()).or_insert_with(|| Day {
            day: day.clone(),
            ..Day::default()
        });
        d.counts.add(&access, &out);
        d.writes_ok += usize::from(write_ok);
        let t = tools.entry(action.clone()).or_insert_with(|| ToolFigures {
            action: action.clone(),
            ..ToolFigures::default()
        });
        t.calls += 1;
        t.errors += usize::from(is_error(&out));
        if r["event"] == "done" {
            if let Some(ms) = r["duration_ms"].as_u64() {
                durations.entry(action.clone()).or_default().push(ms);
            }
            report.throttling.paced_ms += r["paced_ms"].as_u64().unwrap_or(0);
        }
        match out.as_str() {
            "throttled" if r["status"] == 429 => report.throttling.klaviyo_429s += 1,
            "throttled" => report.throttling.held_back += 1,
            "declined" => report.asked.declined += 1,
            "unconfirmed" => report.asked.unconfirmed += 1,
            "denied" => *denied.entry((day.clone(), action.clone())).or_default() += 1,
            "outcome-unknown" => unknown.push(r),
            "not-configured" => report.needs_attention.push(Attention {
                kind: "key",
                day: day.clone(),
                what: format!("{action}: no usable key ({})", s("detail")),
            }),
            "http-401" => report.needs_attention.push(Attention {
                kind: "key",
                day: day.clone(),
                what: format!("{action}: Klaviyo refused the key (401)"),
            }),
            _ => {}
        }
        if write_ok {
            report.writes.push(Write {
                time: s("time"),
                operation: action.clone(),
                access: access.clone(),
                method: s("method"),
                path: s("path"),
                ids: path_ids(&s("path")),
                status: r["status"].as_u64().unwrap_or(0) as u16,
            });
        }
    }
    for (action, mut ds) in durations {
        ds.sort_unstable();
        if let Some(t) = tools.get_mut(&action) {
            t.p50_ms = percentile(&ds, 0.50);
            t.p95_ms = percentile(&ds, 0.95);
        }
    }
    for d in days.values() {
        let answered: usize = d
            .counts
            .by_outcome
            .iter()
            .filter(|(o, _)| *o == "ok" || is_error(o))
            .map(|(_, n)| n)
            .sum();
        let errors: usize = d
            .counts
            .by_outcome
            .iter()
            .filter(|(o, _)| is_error(o))
            .map(|(_, n)| n)
            .sum();
        if answered >= MIN_CALLS_FOR_RATE && errors as f64 > ERROR_RATE_THRESHOLD * answered as f64
        {
            report.needs_attention.push(Attention {
                kind: "error-rate",
                day: d.day.clone(),
                what: format!(
                    "{errors} of {answered} requests failed ({:.0}%, above {:.0}%)",
                    100.0 * errors as f64 / answered as f64,
                    100.0 * ERROR_RATE_THRESHOLD
                ),
            });
        }
    }
    for ((day, action), n) in denied {
        if n >= DENIED_RETRIES {
            report.needs_attention.push(Attention {
                kind: "denied-retries",
                day,
                what: format!("{action} was denied {n} times: the agent keeps retrying an action the policy refuses"),
            });
        }
    }
    for r in unknown {
        if r["request"]
            .as_u64()
            .is_some_and(|n| reconciled.contains(&n))
        {
            continue;
        }
        report.needs_attention.push(Attention {
            kind: "outcome-unknown",
            day: day_of(r),
            what: format!(
                "{} {} may or may not have happened; {}",
                r["method"].as_str().unwrap_or(""),
                r["path"].as_str().unwrap_or(""),
                r["check"]
                    .as_str()
                    .unwrap_or("check with a read of the resource before retrying")
            ),
        });
    }
    report
        .needs_attention
        .sort_by(|a, b| (&a.day, a.kind).cmp(&(&b.day, b.kind)));
    report.days = days.into_values().collect();
    report.first_week = week.into_values().collect();
    let mut tools: Vec<ToolFigures> = tools.into_values().collect();
    tools.sort_by(|a, b| b.calls.cmp(&a.calls).then(a.action.cmp(&b.action)));
    report.tools = tools;
    report
}

fn counts_line(c: &Counts) -> String {
    let mut s = format!("{} calls", c.calls);
    if !c.by_access.is_empty() {
        let a: Vec<String> = c
            .by_access
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let _ = write!(s, " ({})", a.join(", "));
    }
    let o: Vec<String> = c
        .by_outcome
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    if !o.is_empty() {
        let _ = write!(s, ": {}", o.join(", "));
    }
    s
}

/// The report for a terminal or a file.
pub fn text(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "Audit report: {}", r.log);
    if let Some(c) = &r.connection {
        let _ = writeln!(s, "Connection: {c}");
    }
    if let Some(since) = &r.since {
        let _ = writeln!(s, "Since {since}");
    }
    let _ = writeln!(s, "Records: {}", r.records);
    if r.sandbox_records_left_out > 0 {
        let _ = writeln!(
            s,
            "Left out: {} records of the sandbox account (`--sandbox report` shows them)",
            r.sandbox_records_left_out
        );
    }
    for k in &r.skipped {
        let _ = writeln!(s, "Skipped {}:{}: {}", k.file, k.line, k.why);
    }
    let _ = writeln!(s, "\nTotal: {}", counts_line(&r.totals));
    let a = &r.asked;
    let _ = writeln!(
        s,
        "Asked: {} approved, {} declined, {} could not be asked",
        a.approved, a.declined, a.unconfirmed
    );
    let t = &r.throttling;
    let _ = writeln!(
        s,
        "Throttling: 429 answers from Klaviyo {}, retries {}, held back by the host {}, waiting for pace {} ms",
        t.klaviyo_429s, t.retries, t.held_back, t.paced_ms
    );
    let _ = writeln!(s, "\nPer day:");
    for d in &r.days {
        let _ = writeln!(
            s,
            "  {}  {}; writes ok {}",
            d.day,
            counts_line(&d.counts),
            d.writes_ok
        );
    }
    let _ = writeln!(s, "\nActions (calls, errors, p50 / p95 ms):");
    for t in r.tools.iter().take(15) {
        let ms = |v: Option<u64>| v.map_or("-".into(), |v| v.to_string());
        let _ = writeln!(
            s,
            "  {:<44} {:>5} {:>5}  {} / {}",
            t.action,
            t.calls,
            t.errors,
            ms(t.p50_ms),
            ms(t.p95_ms)
        );
    }
    if !r.writes.is_empty() {
        let _ = writeln!(s, "\nWrites that landed:");
        for w in &r.writes {
            let _ = writeln!(
                s,
                "  {}  {} ({}) {} {} → {}{}",
                w.time,
                w.operation,
                w.access,
                w.method,
                w.path,
                w.status,
                if w.ids.is_empty() {
                    String::new()
                } else {
                    format!("  ids: {}", w.ids.join(", "))
                }
            );
        }
    }
    let _ = writeln!(s, "\nFirst week (from the log's first record):");
    for (i, d) in r.first_week.iter().enumerate() {
        let _ = writeln!(
            s,
            "  day {} {}  {}; writes ok {}",
            i + 1,
            d.day,
            counts_line(&d.counts),
            d.writes_ok
        );
    }
    if r.needs_attention.is_empty() {
        let _ = writeln!(s, "\nNeeds a look: nothing");
    } else {
        let _ = writeln!(s, "\nNeeds a look:");
        for n in &r.needs_attention {
            let _ = writeln!(s, "  {} [{}] {}", n.day, n.kind, n.what);
        }
    }
    s
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The outcome groups of the daily chart, with their colours.
const GROUPS: &[(&str, &str)] = &[
    ("ok", "#2e7d32"),
    ("Klaviyo error", "#c62828"),
    ("throttled", "#ef6c00"),
    ("no answer", "#6a1b9a"),
    ("refused", "#546e7a"),
];

fn group(outcome: &str) -> usize {
    match outcome {
        "ok" | "dry-run" => 0,
        o if o.starts_with("http-") => 1,
        "throttled" => 2,
        "transport" | "timeout" | "outcome-unknown" => 3,
        _ => 4,
    }
}

fn day_chart(days: &[Day]) -> String {
    let (w, h, pad) = (640.0, 220.0, 30.0);
    let max = days
        .iter()
        .map(|d| d.counts.calls)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let n = days.len().max(1) as f64;
    let bw = ((w - 2.0 * pad) / n).min(60.0);
    let mut s = format!(
        r#"<svg id="calls-per-day" xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="Calls per day by outcome">"#
    );
    for (i, d) in days.iter().enumerate() {
        let mut by = [0usize; 5];
        for (o, c) in &d.counts.by_outcome {
            by[group(o)] += c;
        }
        let x = pad + i as f64 * bw;
        let mut y = h - pad;
        for (g, c) in by.iter().enumerate() {
            if *c == 0 {
                continue;
            }
            let bh = (h - 2.0 * pad) * *c as f64 / max;
            y -= bh;
            let _ = write!(
                s,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{bh:.1}" fill="{}"><title>{} {}: {c}</title></rect>"#,
                bw * 0.8,
                GROUPS[g].1,
                esc(&d.day),
                GROUPS[g].0
            );
        }
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="middle">{}</text>"#,
            x + bw * 0.4,
            h - pad + 14.0,
            esc(d.day.get(5..).unwrap_or(&d.day))
        );
    }
    let _ = write!(
        s,
        r#"<text x="{pad}" y="14" font-size="11">max {max} calls a day</text></svg>"#
    );
    s
}

fn latency_chart(tools: &[ToolFigures]) -> String {
    let shown: Vec<&ToolFigures> = tools
        .iter()
        .filter(|t| t.p95_ms.is_some())
        .take(10)
        .collect();
    let (w, row, label) = (640.0, 22.0, 260.0);
    let h = row * shown.len().max(1) as f64 + 20.0;
    let max = shown
        .iter()
        .filter_map(|t| t.p95_ms)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let mut s = format!(
        r#"<svg id="latency-per-action" xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="p50 and p95 latency per action">"#
    );
    for (i, t) in shown.iter().enumerate() {
        let y = 10.0 + i as f64 * row;
        let scale = |v: u64| (w - label - 110.0) * v as f64 / max;
        let (p50, p95) = (t.p50_ms.unwrap_or(0), t.p95_ms.unwrap_or(0));
        let _ = write!(
            s,
            r##"<text x="0" y="{:.1}" font-size="11">{}</text><rect x="{label}" y="{y:.1}" width="{:.1}" height="8" fill="#90caf9"><title>p95 {p95} ms</title></rect><rect x="{label}" y="{:.1}" width="{:.1}" height="8" fill="#1565c0"><title>p50 {p50} ms</title></rect><text x="{:.1}" y="{:.1}" font-size="10">{p50} / {p95} ms</text>"##,
            y + 12.0,
            esc(&t.action),
            scale(p95).max(1.0),
            y + 8.0,
            scale(p50).max(1.0),
            label + scale(p95) + 6.0,
            y + 14.0
        );
    }
    s.push_str("</svg>");
    s
}

/// One self-contained page: inline CSS and SVG, no script, no network.
pub fn html(r: &Report) -> String {
    let mut s = String::from("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Klaviyo connector: audit report</title><style>body{font:14px system-ui,sans-serif;margin:2em;max-width:980px;color:#222}table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border-bottom:1px solid #ddd;padding:3px 10px;text-align:left}th{background:#f5f5f5}.n{text-align:right}.legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 12px}pre{background:#f7f7f7;padding:1em;white-space:pre-wrap}</style></head><body>");
    let _ = write!(
        s,
        "<h1>Audit report</h1><p>Log <code>{}</code>; {} records{}.</p>",
        esc(&r.log),
        r.records,
        r.since
            .as_ref()
            .map_or(String::new(), |d| format!(", since {}", esc(d)))
    );
    if !r.skipped.is_empty() {
        s.push_str("<p><b>Skipped lines:</b></p><ul>");
        for k in &r.skipped {
            let _ = write!(s, "<li>{}:{}: {}</li>", esc(&k.file), k.line, esc(&k.why));
        }
        s.push_str("</ul>");
    }
    let _ = write!(s, "<p><b>Total:</b> {}</p>", esc(&counts_line(&r.totals)));
    s.push_str("<h2>Calls per day, by outcome</h2><div class=\"legend\">");
    for (name, colour) in GROUPS {
        let _ = write!(s, "<span style=\"background:{colour}\"></span>{name}");
    }
    s.push_str("</div>");
    s.push_str(&day_chart(&r.days));
    s.push_str("<h2>Latency per action (p50 / p95)</h2>");
    s.push_str(&latency_chart(&r.tools));
    s.push_str("<h2>Actions</h2><table><tr><th>action</th><th class=n>calls</th><th class=n>errors</th><th class=n>p50 ms</th><th class=n>p95 ms</th></tr>");
    for t in &r.tools {
        let ms = |v: Option<u64>| v.map_or("-".into(), |v| v.to_string());
        let _ = write!(
            s,
            "<tr><td>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td></tr>",
            esc(&t.action),
            t.calls,
            t.errors,
            ms(t.p50_ms),
            ms(t.p95_ms)
        );
    }
    s.push_str("</table><h2>Needs a look</h2>");
    if r.needs_attention.is_empty() {
        s.push_str("<p>Nothing.</p>");
    } else {
        s.push_str("<ul>");
        for n in &r.needs_attention {
            let _ = write!(s, "<li>{} [{}] {}</li>", esc(&n.day), n.kind, esc(&n.what));
        }
        s.push_str("</ul>");
    }
    s.push_str("<h2>Writes that landed</h2><table><tr><th>time</th><th>action</th><th>request</th><th>ids</th></tr>");
    for w in &r.writes {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{} ({})</td><td>{} {} → {}</td><td>{}</td></tr>",
            esc(&w.time),
            esc(&w.operation),
            esc(&w.access),
            esc(&w.method),
            esc(&w.path),
            w.status,
            esc(&w.ids.join(", "))
        );
    }
    let _ = write!(
        s,
        "</table><h2>The whole report as text</h2><pre>{}</pre></body></html>\n",
        esc(&text(r))
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn since_takes_days_or_a_date() {
        assert_eq!(since_day("7d", "2026-11-26").unwrap(), "2026-11-20");
        assert_eq!(since_day("1d", "2026-03-01").unwrap(), "2026-03-01");
        assert_eq!(since_day("2d", "2024-03-01").unwrap(), "2024-02-29");
        assert_eq!(since_day("2026-11-01", "2026-11-26").unwrap(), "2026-11-01");
        assert!(since_day("0d", "2026-11-26")
            .unwrap_err()
            .contains("1 or more"));
        assert!(since_day("last week", "2026-11-26")
            .unwrap_err()
            .contains("YYYY-MM-DD"));
    }

    #[test]
    fn ids_come_from_the_path() {
        assert_eq!(
            path_ids("/api/lists/Y6nRLr/relationships/profiles"),
            ["Y6nRLr"]
        );
        assert_eq!(path_ids("/api/lists"), Vec::<String>::new());
        assert_eq!(path_ids("/api/flows/F1"), ["F1"]);
        assert_eq!(
            path_ids("/api/profile-subscription-bulk-create-jobs"),
            Vec::<String>::new()
        );
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let v: Vec<u64> = (1..=20).collect();
        assert_eq!(
            (percentile(&v, 0.5), percentile(&v, 0.95)),
            (Some(10), Some(19))
        );
        assert_eq!(percentile(&[7], 0.95), Some(7));
        assert_eq!(percentile(&[], 0.5), None);
    }

    #[test]
    fn every_record_kind_has_its_outcome() {
        let o = |v: Value| outcome(&v);
        assert_eq!(
            o(json!({"event": "done", "status": 201})).as_deref(),
            Some("ok")
        );
        assert_eq!(
            o(json!({"event": "done", "status": 404})).as_deref(),
            Some("http-404")
        );
        assert_eq!(
            o(json!({"event": "done", "status": 429})).as_deref(),
            Some("throttled")
        );
        assert_eq!(
            o(json!({"event": "done", "outcome": "outcome-unknown"})).as_deref(),
            Some("outcome-unknown")
        );
        assert_eq!(
            o(json!({"event": "denied", "outcome": "declined"})).as_deref(),
            Some("declined")
        );
        assert_eq!(o(json!({"event": "denied"})).as_deref(), Some("denied"));
        assert_eq!(o(json!({"event": "sending"})), None);
        assert_eq!(o(json!({"event": "start"})), None);
    }
}
