//! The user's policy: what the host lets through, decided per request from the catalog's own
//! classification (method + path → operation → access class), never from what the guest says.
//!
//! ```toml
//! # Outcome per access class when no rule matches (these are the defaults: read-only).
//! [defaults]
//! read = "allow"
//! write = "deny"
//! destructive = "deny"
//!
//! # Rules by tool name glob (`*`, `?`) and/or access class. When several rules match a request,
//! # the strictest outcome wins: deny > ask > allow.
//! [[rules]]
//! tools = "create_list"
//! decision = "allow"
//!
//! [[rules]]
//! access = "destructive"
//! decision = "deny"
//! ```

use klaviyo_catalog::{Access, Operation};
use serde::Deserialize;
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
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

#[derive(Clone, Debug, Deserialize)]
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

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Glob over tool names (operationId, or the composite's name), e.g. `get_*`.
    pub tools: Option<String>,
    /// `read`, `write` or `destructive`.
    pub access: Option<String>,
    pub decision: Decision,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    #[serde(default)]
    pub defaults: Defaults,
    #[serde(default)]
    pub rules: Vec<Rule>,
}

/// A decision and the reason, for messages and the audit log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub decision: Decision,
    pub reason: String,
}

impl Policy {
    /// The read-only default: reads allowed, writes and destructive actions denied.
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

    pub fn from_toml(text: &str) -> Result<Policy, String> {
        let p: Policy = toml::from_str(text).map_err(|e| format!("policy: {e}"))?;
        for (i, r) in p.rules.iter().enumerate() {
            if r.tools.is_none() && r.access.is_none() {
                return Err(format!("policy: rules[{i}] needs `tools` or `access`"));
            }
            if let Some(a) = &r.access {
                if Access::parse(a).is_none() {
                    return Err(format!(
                        "policy: rules[{i}].access `{a}` must be read, write or destructive"
                    ));
                }
            }
        }
        Ok(p)
    }

    pub fn load(path: &Path) -> Result<Policy, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("policy file {}: {e}", path.display()))?;
        Policy::from_toml(&text).map_err(|e| format!("{} ({})", e, path.display()))
    }

    /// Decides for an operation, reached through tool `called` (the same name, or a composite).
    pub fn decide(&self, op: &Operation, called: &str) -> Verdict {
        let mut best: Option<(Decision, String)> = None;
        for (i, r) in self.rules.iter().enumerate() {
            let tool_ok = r
                .tools
                .as_deref()
                .is_none_or(|g| glob(g, op.id) || glob(g, called));
            let access_ok = r.access.as_deref().is_none_or(|a| a == op.access.as_str());
            if tool_ok && access_ok && best.as_ref().is_none_or(|(d, _)| r.decision > *d) {
                best = Some((
                    r.decision,
                    format!("policy rule #{} ({})", i + 1, rule_text(r)),
                ));
            }
        }
        let (decision, reason) = best.unwrap_or_else(|| {
            let d = match op.access {
                Access::Read => self.defaults.read,
                Access::Write => self.defaults.write,
                Access::Destructive => self.defaults.destructive,
            };
            (d, format!("default for {} actions", op.access.as_str()))
        });
        Verdict { decision, reason }
    }

    /// One line per class and rule, for `check`.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "defaults: read={}, write={}, destructive={}",
            self.defaults.read.as_str(),
            self.defaults.write.as_str(),
            self.defaults.destructive.as_str()
        );
        for (i, r) in self.rules.iter().enumerate() {
            s.push_str(&format!("\nrule #{}: {}", i + 1, rule_text(r)));
        }
        s
    }
}

fn rule_text(r: &Rule) -> String {
    let mut parts = Vec::new();
    if let Some(t) = &r.tools {
        parts.push(format!("tools={t}"));
    }
    if let Some(a) = &r.access {
        parts.push(format!("access={a}"));
    }
    parts.push(format!("decision={}", r.decision.as_str()));
    parts.join(" ")
}

/// `*` matches any run of characters, `?` one character; case-insensitive.
pub fn glob(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.to_ascii_lowercase().chars().collect();
    let n: Vec<char> = name.to_ascii_lowercase().chars().collect();
    let (mut pi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
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
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use klaviyo_catalog::tools::operation;

    #[test]
    fn read_only_by_default() {
        let p = Policy::read_only();
        assert_eq!(
            p.decide(operation("get_lists").unwrap(), "get_lists")
                .decision,
            Decision::Allow
        );
        assert_eq!(
            p.decide(operation("create_list").unwrap(), "create_list")
                .decision,
            Decision::Deny
        );
        assert_eq!(
            p.decide(operation("delete_list").unwrap(), "delete_list")
                .decision,
            Decision::Deny
        );
        assert_eq!(
            p.decide(operation("query_campaign_values").unwrap(), "x")
                .decision,
            Decision::Allow
        );
    }

    #[test]
    fn strictest_matching_rule_wins() {
        let p = Policy::from_toml(
            r#"
            [[rules]]
            tools = "*_list"
            decision = "allow"
            [[rules]]
            tools = "delete_*"
            decision = "deny"
            [[rules]]
            access = "write"
            tools = "update_*"
            decision = "ask"
            "#,
        )
        .unwrap();
        assert_eq!(
            p.decide(operation("create_list").unwrap(), "create_list")
                .decision,
            Decision::Allow
        );
        let v = p.decide(operation("delete_list").unwrap(), "delete_list");
        assert_eq!(v.decision, Decision::Deny, "deny wins over allow");
        assert!(v.reason.contains("rule #2"));
        assert_eq!(
            p.decide(operation("update_list").unwrap(), "update_list")
                .decision,
            Decision::Ask
        );
        assert_eq!(
            p.decide(operation("create_tag").unwrap(), "create_tag")
                .decision,
            Decision::Deny
        );
    }

    #[test]
    fn bad_policies_are_refused() {
        assert!(Policy::from_toml("[[rules]]\ndecision = \"allow\"")
            .unwrap_err()
            .contains("tools"));
        assert!(
            Policy::from_toml("[[rules]]\naccess = \"writes\"\ndecision = \"allow\"")
                .unwrap_err()
                .contains("writes")
        );
        assert!(Policy::from_toml("[[rules]]\ntools = \"x\"\ndecision = \"maybe\"").is_err());
        assert!(Policy::from_toml("[defaults]\nread = \"allow\"\nwrit = \"allow\"").is_err());
    }

    #[test]
    fn globs() {
        assert!(glob("get_*", "get_lists"));
        assert!(glob("*list*", "add_profiles_to_list"));
        assert!(glob("get_list?", "get_lists"));
        assert!(!glob("get_*", "create_list"));
        assert!(glob("*", ""));
    }
}
