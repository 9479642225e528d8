//! JSON:API query parameters as Klaviyo reads them: `filter` expressions (`equals`, `any`,
//! `greater-than`, `less-than`, `greater-or-equal`, `less-or-equal`, `contains`,
//! `starts-with`, `ends-with`, `has`, `and`, `or`, `not`, and comma-joined terms meaning
//! `and`), value comparison (dates by instant, numbers by value), and keyset cursors.
//!
//! Contract: a filter that does not parse, or names an unknown operator, is an error with the
//! position and what was expected — never a filter that silently matches everything.

use serde_json::Value;
use std::cmp::Ordering;

#[derive(Clone, Debug, PartialEq)]
pub enum Arg {
    /// A bare word in field position (`email`, `messages.channel`) or a literal.
    Word(String),
    Str(String),
    List(Vec<Value>),
    Call(Expr),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub op: String,
    pub args: Vec<Arg>,
}

const OPS: &[&str] = &[
    "equals",
    "any",
    "greater-than",
    "less-than",
    "greater-or-equal",
    "less-or-equal",
    "contains",
    "contains-any",
    "contains-all",
    "starts-with",
    "ends-with",
    "has",
    "and",
    "or",
    "not",
];

/// Parses a `filter` value: one or more comma-joined expressions (all must hold).
pub fn parse(text: &str) -> Result<Expr, String> {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
    };
    let mut terms = vec![p.call()?];
    loop {
        p.ws();
        if p.i == p.s.len() {
            break;
        }
        p.expect(b',')?;
        terms.push(p.call()?);
    }
    Ok(if terms.len() == 1 {
        terms.pop().unwrap()
    } else {
        Expr {
            op: "and".into(),
            args: terms.into_iter().map(Arg::Call).collect(),
        }
    })
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i] == b' ' {
            self.i += 1;
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        self.ws();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!(
                "expected `{}` at character {}",
                c as char,
                self.i + 1
            ))
        }
    }

    fn word(&mut self) -> String {
        self.ws();
        let start = self.i;
        while self.i < self.s.len() && !b",()[]' \"".contains(&self.s[self.i]) {
            self.i += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
    }

    fn call(&mut self) -> Result<Expr, String> {
        let at = self.i + 1;
        let op = self.word();
        if op.is_empty() {
            return Err(format!(
                "expected an operator such as equals(...) at character {at}"
            ));
        }
        if !OPS.contains(&op.as_str()) {
            return Err(format!(
                "unknown filter operator `{op}` at character {at}; use one of {}",
                OPS.join(", ")
            ));
        }
        self.expect(b'(')?;
        let mut args = Vec::new();
        loop {
            args.push(self.arg()?);
            self.ws();
            match self.s.get(self.i) {
                Some(b',') => self.i += 1,
                Some(b')') => {
                    self.i += 1;
                    break;
                }
                _ => return Err(format!("expected `,` or `)` at character {}", self.i + 1)),
            }
        }
        Ok(Expr { op, args })
    }

    fn string(&mut self) -> Result<String, String> {
        let q = self.s[self.i];
        let start = self.i;
        self.i += 1;
        let mut out = Vec::new();
        while self.i < self.s.len() {
            let c = self.s[self.i];
            if c == b'\\' && self.i + 1 < self.s.len() {
                out.push(self.s[self.i + 1]);
                self.i += 2;
                continue;
            }
            self.i += 1;
            if c == q {
                return Ok(String::from_utf8_lossy(&out).into_owned());
            }
            out.push(c);
        }
        Err(format!(
            "the string starting at character {} is not closed",
            start + 1
        ))
    }

    fn arg(&mut self) -> Result<Arg, String> {
        self.ws();
        match self.s.get(self.i) {
            Some(b'\'') | Some(b'"') => Ok(Arg::Str(self.string()?)),
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                loop {
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b']') => {
                            self.i += 1;
                            break;
                        }
                        Some(b',') => self.i += 1,
                        Some(b'\'') | Some(b'"') => items.push(Value::String(self.string()?)),
                        Some(_) => {
                            let w = self.word();
                            if w.is_empty() {
                                return Err(format!("unexpected character at {}", self.i + 1));
                            }
                            items.push(literal(&w));
                        }
                        None => return Err("a list `[` is not closed".into()),
                    }
                }
                Ok(Arg::List(items))
            }
            Some(_) => {
                let save = self.i;
                let w = self.word();
                self.ws();
                if self.s.get(self.i) == Some(&b'(') {
                    self.i = save;
                    return Ok(Arg::Call(self.call()?));
                }
                if w.is_empty() {
                    return Err(format!("expected a value at character {}", self.i + 1));
                }
                Ok(Arg::Word(w))
            }
            None => Err("the filter ends too early".into()),
        }
    }
}

/// A bare literal: a number, `true`/`false`/`null`, else text (dates stay text and compare as
/// instants).
pub fn literal(w: &str) -> Value {
    match w {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        "null" => Value::Null,
        _ => w
            .parse::<i64>()
            .map(Value::from)
            .or_else(|_| w.parse::<f64>().map(Value::from))
            .unwrap_or_else(|_| Value::String(w.to_string())),
    }
}

fn arg_value(a: &Arg) -> Value {
    match a {
        Arg::Word(w) => literal(w),
        Arg::Str(s) => Value::String(s.clone()),
        Arg::List(l) => Value::Array(l.clone()),
        Arg::Call(_) => Value::Null,
    }
}

/// Whether `e` holds, with `field` giving a field's value (`Err`: no such field here).
pub fn eval(e: &Expr, field: &dyn Fn(&str) -> Result<Value, String>) -> Result<bool, String> {
    let fld = |i: usize| -> Result<Value, String> {
        match e.args.get(i) {
            Some(Arg::Word(w)) => field(w),
            _ => Err(format!("{}(...) needs a field name first", e.op)),
        }
    };
    let val = |i: usize| -> Result<Value, String> {
        e.args
            .get(i)
            .map(arg_value)
            .ok_or(format!("{}(...) needs a value", e.op))
    };
    let sub = |a: &Arg| -> Result<bool, String> {
        match a {
            Arg::Call(c) => eval(c, field),
            _ => Err(format!("{}(...) takes expressions", e.op)),
        }
    };
    Ok(match e.op.as_str() {
        "and" => {
            for a in &e.args {
                if !sub(a)? {
                    return Ok(false);
                }
            }
            true
        }
        "or" => {
            for a in &e.args {
                if sub(a)? {
                    return Ok(true);
                }
            }
            false
        }
        "not" => !sub(e.args.first().ok_or("not(...) needs an expression")?)?,
        "has" => !fld(0)?.is_null(),
        op => {
            let f = fld(0)?;
            let v = val(1)?;
            match op {
                "equals" => match (&f, &v) {
                    (Value::Array(items), _) if !v.is_array() => items.iter().any(|x| same(x, &v)),
                    _ => same(&f, &v),
                },
                "any" => match &v {
                    Value::Array(opts) => match &f {
                        Value::Array(items) => {
                            items.iter().any(|x| opts.iter().any(|o| same(x, o)))
                        }
                        _ => opts.iter().any(|o| same(&f, o)),
                    },
                    _ => return Err("any(field,[...]) needs a list".into()),
                },
                "greater-than" => compare(&f, &v) == Some(Ordering::Greater),
                "less-than" => compare(&f, &v) == Some(Ordering::Less),
                "greater-or-equal" => {
                    matches!(compare(&f, &v), Some(Ordering::Greater | Ordering::Equal))
                }
                "less-or-equal" => {
                    matches!(compare(&f, &v), Some(Ordering::Less | Ordering::Equal))
                }
                "contains" => match (&f, &v) {
                    (Value::String(s), Value::String(p)) => {
                        s.to_lowercase().contains(&p.to_lowercase())
                    }
                    (Value::Array(items), _) => items.iter().any(|x| same(x, &v)),
                    _ => false,
                },
                "contains-any" | "contains-all" => {
                    let (Value::Array(items), Value::Array(want)) = (&f, &v) else {
                        return Ok(false);
                    };
                    let has = |w: &Value| items.iter().any(|x| same(x, w));
                    if op == "contains-any" {
                        want.iter().any(has)
                    } else {
                        want.iter().all(has)
                    }
                }
                "starts-with" | "ends-with" => match (&f, &v) {
                    (Value::String(s), Value::String(p)) => {
                        if op == "starts-with" {
                            s.starts_with(p.as_str())
                        } else {
                            s.ends_with(p.as_str())
                        }
                    }
                    _ => false,
                },
                _ => unreachable!("the parser admits only known operators"),
            }
        }
    })
}

fn same(a: &Value, b: &Value) -> bool {
    compare(a, b) == Some(Ordering::Equal)
}

/// Orders two values: numbers by value, dates by instant, text by text (case-sensitive), null
/// first; `None` when they cannot be compared.
pub fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Null, Value::Null) => Some(Ordering::Equal),
        (Value::Null, _) => Some(Ordering::Less),
        (_, Value::Null) => Some(Ordering::Greater),
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::String(x), Value::String(y)) => match (instant(x), instant(y)) {
            (Some(p), Some(q)) => p.partial_cmp(&q),
            _ => Some(x.cmp(y)),
        },
        (Value::String(x), Value::Number(_)) => {
            compare(&literal(x), b).filter(|_| !literal(x).is_string())
        }
        (Value::Number(_), Value::String(y)) => {
            compare(a, &literal(y)).filter(|_| !literal(y).is_string())
        }
        (Value::Bool(x), Value::String(y)) => Some(x.to_string().as_str().cmp(y.as_str())),
        _ => None,
    }
}

/// Seconds since the epoch of `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM[:SS[.fff]][Z|±HH:MM]`.
pub fn instant(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let days = days_from_civil(y, m, d);
    let mut secs = days as f64 * 86400.0;
    if b.len() == 10 {
        return Some(secs);
    }
    if b[10] != b'T' && b[10] != b' ' {
        return None;
    }
    let (hh, mm) = (num(11..13)?, num(14..16)?);
    let mut i = 16;
    let mut ss = 0.0;
    if b.get(16) == Some(&b':') {
        let end = s[17..]
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .map_or(s.len(), |p| p + 17);
        ss = s[17..end].parse().ok()?;
        i = end;
    }
    secs += (hh * 3600 + mm * 60) as f64 + ss;
    let tz = &s[i..];
    if tz.is_empty() || tz == "Z" || tz == "z" {
        return Some(secs);
    }
    let sign = match tz.as_bytes()[0] {
        b'+' => 1.0,
        b'-' => -1.0,
        _ => return None,
    };
    let oh: f64 = tz.get(1..3)?.parse().ok()?;
    let om: f64 = tz.get(4..6).and_then(|x| x.parse().ok()).unwrap_or(0.0);
    Some(secs - sign * (oh * 3600.0 + om * 60.0))
}

pub use klaviyo_catalog::dates::{civil_from_days, days_from_civil};

/// RFC 3339 text of a time in seconds since the epoch, as Klaviyo writes it.
pub fn rfc3339(secs: i64) -> String {
    let (y, m, d) = civil_from_days(secs.div_euclid(86400));
    let s = secs.rem_euclid(86400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}+00:00",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// A keyset cursor: the sort key and id of the last item of a page, as hex text (opaque to
/// clients, and URL-safe).
pub fn encode_cursor(key: &Value, id: &str) -> String {
    let text = serde_json::json!([key, id]).to_string();
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

pub fn decode_cursor(c: &str) -> Option<(Value, String)> {
    if c.len() % 2 != 0 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..c.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(c.get(i..i + 2)?, 16).ok())
        .collect();
    let v: Value = serde_json::from_slice(&bytes?).ok()?;
    let id = v.get(1)?.as_str()?.to_string();
    Some((v.get(0)?.clone(), id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn holds(filter: &str, rec: Value) -> Result<bool, String> {
        let e = parse(filter)?;
        eval(&e, &|f: &str| {
            rec.get(f).cloned().ok_or(format!("no field {f}"))
        })
    }

    #[test]
    fn klaviyo_filter_operators_hold_as_documented() {
        let r = json!({"email": "ann@example.com", "n": 5, "created": "2026-03-01T10:00:00+00:00",
                       "tags": ["vip", "wholesale"], "name": "VIP Customers", "x": null});
        let table: &[(&str, bool)] = &[
            ("equals(email,'ann@example.com')", true),
            ("equals(email,\"bob@example.com\")", false),
            ("any(email,['x','ann@example.com'])", true),
            ("greater-than(n,4)", true),
            ("less-than(n,5)", false),
            ("greater-or-equal(n,5)", true),
            ("less-or-equal(n,4)", false),
            ("greater-than(created,2026-03-01T09:59:59Z)", true),
            ("less-than(created,2026-03-01T11:00:00+02:00)", false),
            ("greater-or-equal(created,2026-03-01)", true),
            ("contains(name,'vip')", true),
            ("contains(tags,'vip')", true),
            ("contains-all(tags,['vip','wholesale'])", true),
            ("contains-any(tags,['none'])", false),
            ("starts-with(name,'VIP')", true),
            ("ends-with(email,'.org')", false),
            ("has(x)", false),
            ("and(equals(n,5),contains(name,'VIP'))", true),
            ("equals(n,5),equals(email,'no')", false),
            ("or(equals(n,1),equals(n,5))", true),
            ("not(equals(n,5))", false),
        ];
        for (f, want) in table {
            assert_eq!(holds(f, r.clone()), Ok(*want), "{f}");
        }
    }

    #[test]
    fn a_bad_filter_is_an_error_naming_where() {
        for (f, says) in [
            ("equal(email,'a')", "unknown filter operator `equal`"),
            ("equals(email,'a'", "expected `,` or `)`"),
            ("equals(email,'a)", "not closed"),
            ("equals(email,'a') junk", "expected `,`"),
        ] {
            let e = parse(f).unwrap_err();
            assert!(e.contains(says), "{f}: {e}");
        }
        assert!(holds("equals(nope,'a')", json!({}))
            .unwrap_err()
            .contains("no field nope"));
    }

    #[test]
    fn dates_round_trip_and_cursors_are_opaque_but_exact() {
        for s in [
            "1970-01-01T00:00:00+00:00",
            "2026-02-28T23:59:59+00:00",
            "2024-02-29T12:00:00+00:00",
        ] {
            assert_eq!(rfc3339(instant(s).unwrap() as i64), s);
        }
        let c = encode_cursor(&json!("2026-01-01"), "P1");
        assert!(c.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(decode_cursor(&c), Some((json!("2026-01-01"), "P1".into())));
        assert_eq!(decode_cursor("zz"), None);
    }
}
