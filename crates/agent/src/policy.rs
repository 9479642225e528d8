//! The user's policy and its one decision function, shared by the host harness (which loads
//! the file and asks the user) and the HTTP build (which takes the TOML text from config), so
//! both decide identically.
//!
//! Contract:
//! - A decision is made for an **operation** (what the host classified a request as, from its
//!   method and path), never for the name an agent called: [`Policy::decide`] takes only the
//!   operation.
//! - A rule's `tools` is matched at load time against every name the CLI accepts (operationId
//!   in snake or kebab case, Klaviyo alias, title; `*` and `?` globs over those forms). A rule
//!   naming a composite action covers its operations. A rule matching no action is refused
//!   when the policy loads, with the nearest names: a typo never silently matches nothing.
//! - **Destructive is a floor.** A rule allows or asks for a destructive operation only when
//!   it says `access = "destructive"` or names that action exactly (no glob). A glob like
//!   `*_list` never lowers `delete_list` below the `destructive` default. Deny rules always
//!   apply.
//! - When several rules apply, the strictest wins (deny > ask > allow); when none applies, the
//!   default of the operation's access class.
//!
//! ```toml
//! [defaults]            # these are the defaults: read-only
//! read = "allow"
//! write = "deny"
//! destructive = "deny"
//!
//! [[rules]]
//! tools = "create_list"         # or "Create list", "create-list", a glob "*_list", …
//! decision = "allow"
//!
//! [[rules]]
//! tools = "delete_list"         # named exactly: may lower a destructive action
//! decision = "ask"
//! ```

use crate::suggest::{did_you_mean, nearest};
use klaviyo_catalog::generated::{NAMES, OPERATIONS};
use klaviyo_catalog::tools::{normalize, Tool};
use klaviyo_catalog::{Access, Operation};
use serde::Deserialize;

/// What happens to a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Allow,
    Ask,
    Deny,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Ask => "ask",
            Decision::Deny => "deny",
        }
    }
}

/// Outcome per access class when no rule applies.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    #[serde(default = "allow")]
    pub read: Decision,
    #[serde(default = "deny")]
    pub write: Decision,
    #[serde(default = "deny")]
    pub destructive: Decision,
}

fn allow() -> Decision {
    Decision::Allow
}
fn deny() -> Decision {
    Decision::Deny
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            read: Decision::Allow,
            write: Decision::Deny,
            destructive: Decision::Deny,
        }
    }
}

impl Defaults {
    pub fn for_access(&self, a: Access) -> Decision {
        match a {
            Access::Read => self.read,
            Access::Write => self.write,
            Access::Destructive => self.destructive,
        }
    }
}

/// A rule as written in the file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleText {
    tools: Option<String>,
    access: Option<String>,
    decision: Decision,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyText {
    #[serde(default)]
    defaults: Defaults,
    #[serde(default)]
    rules: Vec<RuleText>,
}

/// One rule, with the operations it covers resolved at load time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// The `tools` pattern as written.
    pub tools: Option<String>,
    pub access: Option<Access>,
    pub decision: Decision,
    /// Per operation (index into `OPERATIONS`): covered by `tools` (all when `tools` is absent).
    covers: Vec<bool>,
    /// Whether `tools` names one action exactly (no glob).
    exact: bool,
}

impl Rule {
    /// Whether this rule applies to `op` (index `i`), destructive floor included.
    fn applies(&self, i: usize, op: &Operation) -> bool {
        if !self.covers[i] || self.access.is_some_and(|a| a != op.access) {
            return false;
        }
        op.access != Access::Destructive
            || self.decision == Decision::Deny
            || self.access == Some(Access::Destructive)
            || self.exact
    }

    /// Whether the rule covers `op` but the destructive floor keeps it from applying.
    fn held_by_floor(&self, i: usize, op: &Operation) -> bool {
        self.covers[i] && self.access.is_none_or(|a| a == op.access) && !self.applies(i, op)
    }

    /// `tools=… access=… decision=…`, for messages.
    pub fn text(&self) -> String {
        let mut parts = Vec::new();
        if let Some(t) = &self.tools {
            parts.push(format!("tools={t}"));
        }
        if let Some(a) = self.access {
            parts.push(format!("access={}", a.as_str()));
        }
        parts.push(format!("decision={}", self.decision.as_str()));
        parts.join(" ")
    }
}

/// The policy: defaults per access class and rules.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    pub defaults: Defaults,
    pub rules: Vec<Rule>,
}

/// A decision, why, and which rule made it (1-based, as users count), for messages and audit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub decision: Decision,
    pub reason: String,
    pub rule: Option<usize>,
}

/// Something worth a warning in a policy that loads (for `check`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lint {
    /// 1-based rule number.
    pub rule: usize,
    pub message: String,
}

fn index_of(op: &Operation) -> usize {
    OPERATIONS
        .iter()
        .position(|o| std::ptr::eq(o, op))
        .expect("operations come from the catalog")
}

impl Policy {
    /// Reads allowed, writes and destructive actions denied.
    pub fn read_only() -> Policy {
        Policy::default()
    }

    /// Everything allowed (tests, validators).
    pub fn allow_all() -> Policy {
        Policy {
            defaults: Defaults {
                read: Decision::Allow,
                write: Decision::Allow,
                destructive: Decision::Allow,
            },
            rules: vec![],
        }
    }

    /// Parses and checks a policy; every error names the rule and the fix.
    pub fn from_toml(text: &str) -> Result<Policy, String> {
        let p: PolicyText = toml::from_str(text).map_err(|e| format!("policy: {e}"))?;
        let mut rules = Vec::with_capacity(p.rules.len());
        for (i, r) in p.rules.into_iter().enumerate() {
            let at = format!("policy: rules[{i}] (rule #{})", i + 1);
            if r.tools.is_none() && r.access.is_none() {
                return Err(format!("{at} needs `tools` or `access` (or both)"));
            }
            let access = match &r.access {
                None => None,
                Some(a) => Some(Access::parse(a).ok_or_else(|| {
                    format!("{at}: access `{a}` must be read, write or destructive")
                })?),
            };
            let (covers, exact) = match &r.tools {
                None => (vec![true; OPERATIONS.len()], false),
                Some(pattern) => resolve_pattern(pattern).map_err(|e| format!("{at}: {e}"))?,
            };
            if let Some(a) = access {
                if !OPERATIONS
                    .iter()
                    .enumerate()
                    .any(|(i, o)| covers[i] && o.access == a)
                {
                    return Err(format!(
                        "{at}: `{}` has no {} actions, so this rule matches nothing; drop `access` or change `tools`",
                        r.tools.as_deref().unwrap_or("*"),
                        a.as_str()
                    ));
                }
            }
            rules.push(Rule {
                tools: r.tools,
                access,
                decision: r.decision,
                covers,
                exact,
            });
        }
        Ok(Policy {
            defaults: p.defaults,
            rules,
        })
    }

    /// The decision for one operation, as the host classified a request.
    pub fn decide(&self, op: &Operation) -> Verdict {
        let i = index_of(op);
        let mut best: Option<(Decision, usize)> = None;
        for (n, r) in self.rules.iter().enumerate() {
            if r.applies(i, op) && best.is_none_or(|(d, _)| r.decision > d) {
                best = Some((r.decision, n));
            }
        }
        match best {
            Some((decision, n)) => Verdict {
                decision,
                reason: format!("policy rule #{} ({})", n + 1, self.rules[n].text()),
                rule: Some(n + 1),
            },
            None => Verdict {
                decision: self.defaults.for_access(op.access),
                reason: format!("the default for {} actions", op.access.as_str()),
                rule: None,
            },
        }
    }

    /// The strictest decision over a tool's operations (a composite may reach several).
    pub fn decide_tool(&self, tool: Tool) -> Decision {
        tool.operations()
            .iter()
            .map(|op| self.decide(op).decision)
            .max()
            .unwrap_or(Decision::Deny)
    }

    /// Whether any destructive operation can run (allowed or asked) under this policy.
    pub fn destructive_possible(&self) -> bool {
        OPERATIONS.iter().any(|op| {
            op.access == Access::Destructive && self.decide(op).decision != Decision::Deny
        })
    }

    /// Whether any write or destructive operation can run under this policy.
    pub fn writes_possible(&self) -> bool {
        OPERATIONS
            .iter()
            .any(|op| op.access != Access::Read && self.decide(op).decision != Decision::Deny)
    }

    /// The read the API key is checked with (`check`, `/readyz`): the first of a few reads
    /// that need no arguments which this policy allows; `None` when it allows none of them.
    pub fn key_check_action(&self) -> Option<&'static str> {
        [
            "get_accounts",
            "get_lists",
            "get_metrics",
            "get_segments",
            "get_tags",
        ]
        .into_iter()
        .find(|n| {
            klaviyo_catalog::tools::operation(n)
                .is_some_and(|op| self.decide(op).decision == Decision::Allow)
        })
    }

    /// Rules that load but do not do what they seem to say.
    pub fn lints(&self) -> Vec<Lint> {
        let mut out = Vec::new();
        for (n, r) in self.rules.iter().enumerate() {
            let held: Vec<&str> = OPERATIONS
                .iter()
                .enumerate()
                .filter(|(i, op)| r.held_by_floor(*i, op))
                .map(|(_, op)| op.id)
                .collect();
            if !held.is_empty() {
                let shown: Vec<&str> = held.iter().take(5).copied().collect();
                out.push(Lint {
                    rule: n + 1,
                    message: format!(
                        "rule #{} ({}) matches {} destructive action(s) ({}{}) but does not apply to them: a glob never lowers a destructive action. Add `access = \"destructive\"` or name each action exactly",
                        n + 1,
                        r.text(),
                        held.len(),
                        shown.join(", "),
                        if held.len() > shown.len() { ", …" } else { "" }
                    ),
                });
            }
            if r.decision != Decision::Deny
                && OPERATIONS
                    .iter()
                    .enumerate()
                    .any(|(i, op)| op.access == Access::Destructive && r.applies(i, op))
            {
                out.push(Lint {
                    rule: n + 1,
                    message: format!(
                        "rule #{} ({}) lets destructive actions run{}",
                        n + 1,
                        r.text(),
                        if r.decision == Decision::Ask {
                            " after confirmation"
                        } else {
                            " without asking"
                        }
                    ),
                });
            }
        }
        out
    }

    /// One line for the defaults and one per rule, for `check`.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "defaults: read={}, write={}, destructive={}",
            self.defaults.read.as_str(),
            self.defaults.write.as_str(),
            self.defaults.destructive.as_str()
        );
        for (i, r) in self.rules.iter().enumerate() {
            s.push_str(&format!("\nrule #{}: {}", i + 1, r.text()));
        }
        s
    }
}

/// The operations a `tools` pattern covers, and whether it names one action exactly.
fn resolve_pattern(pattern: &str) -> Result<(Vec<bool>, bool), String> {
    let mut covers = vec![false; OPERATIONS.len()];
    let mark = |covers: &mut Vec<bool>, t: Tool| {
        for op in t.operations() {
            covers[index_of(op)] = true;
        }
    };
    if !pattern.contains(['*', '?']) {
        return match Tool::resolve(pattern) {
            Ok(t) => {
                mark(&mut covers, t);
                Ok((covers, true))
            }
            Err(_) => Err(no_match(pattern)),
        };
    }
    let glob = normalize_glob(pattern);
    let mut any = false;
    // Every accepted name: operationIds, composite ids, titles and aliases (normalised).
    for (name, index) in NAMES {
        if glob_match(&glob, name) {
            mark(
                &mut covers,
                Tool::by_index(*index as usize).expect("generated index"),
            );
            any = true;
        }
    }
    if any {
        Ok((covers, false))
    } else {
        Err(no_match(pattern))
    }
}

fn no_match(pattern: &str) -> String {
    let near = nearest(pattern, NAMES.iter().map(|(n, _)| *n), 3);
    format!(
        "tools `{pattern}` matches no action{}",
        if near.is_empty() {
            "; `klaviyo-harness tools` lists the names".to_string()
        } else {
            format!("; {}", did_you_mean(&near))
        }
    )
}

/// A glob in the names' normal form: lower case, each run of other characters (spaces, `-`)
/// one `_`, wildcards kept: `Delete *` → `delete_*`, `*-list` → `*_list`.
pub fn normalize_glob(pattern: &str) -> String {
    let mut out = String::new();
    for part in pattern.split_inclusive(['*', '?']) {
        let (lit, wild) = match part.chars().last() {
            Some(c @ ('*' | '?')) => (&part[..part.len() - 1], Some(c)),
            _ => (part, None),
        };
        // Keep a separator next to a wildcard: `delete *` is `delete_*`, not `delete*`.
        let lead = lit.starts_with(|c: char| !c.is_ascii_alphanumeric()) && !out.is_empty();
        let trail = lit.ends_with(|c: char| !c.is_ascii_alphanumeric()) && wild.is_some();
        let n = normalize(lit);
        if lead && !out.ends_with('_') {
            out.push('_');
        }
        out.push_str(&n);
        if trail && !n.is_empty() {
            out.push('_');
        }
        if let Some(w) = wild {
            out.push(w);
        }
    }
    out
}

/// `*` matches any run of characters, `?` one character.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let (p, n) = (pattern.as_bytes(), name.as_bytes());
    let (mut pi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use klaviyo_catalog::tools::operation;

    fn d(p: &Policy, id: &str) -> Decision {
        p.decide(operation(id).unwrap()).decision
    }

    #[test]
    fn globs_keep_separators_next_to_wildcards() {
        assert_eq!(normalize_glob("Delete *"), "delete_*");
        assert_eq!(normalize_glob("*-list"), "*_list");
        assert_eq!(normalize_glob("get_*"), "get_*");
        assert_eq!(normalize_glob("*Campaign*"), "*campaign*");
        assert_eq!(normalize_glob("get_list?"), "get_list?");
        assert!(glob_match("get_*", "get_lists"));
        assert!(glob_match("*list*", "add_profiles_to_list"));
        assert!(!glob_match("get_*", "create_list"));
    }

    #[test]
    fn read_only_by_default() {
        let p = Policy::read_only();
        assert_eq!(d(&p, "get_lists"), Decision::Allow);
        assert_eq!(d(&p, "query_campaign_values"), Decision::Allow);
        assert_eq!(d(&p, "create_list"), Decision::Deny);
        assert_eq!(d(&p, "delete_list"), Decision::Deny);
        assert!(!p.writes_possible());
    }
}
