//! A host's effective policy from the store's policies: which ones match its labels, whether
//! each is valid, and their composition (zt-core's [`zt_core::fleet::compose`]) behind the
//! agent's own rule that keeps the store reachable. Pure: no store, no kernel.

use crate::contract::{Labels, Outcome, PolicyRef, RESERVED_POLICY, policy_key};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use zt_core::fleet::{ComposeError, Part, Scope, compose};
use zt_core::{Loaded, NameResolver, Policy};

/// A policy as the store holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    /// Its YAML.
    pub text: String,
    /// The revision it was last modified at.
    pub mod_revision: i64,
}

/// The store's policies, by name.
pub type Policies = BTreeMap<String, Stored>;

/// What the agent needs for its own connections: the store's addresses, and its uid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreAccess {
    /// The etcd endpoints, resolved.
    pub endpoints: Vec<SocketAddr>,
    /// The uid the agent runs as.
    pub uid: u32,
}

/// A host's effective policy, or why there is none to apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Effective {
    /// The policies that match the host (those whose scope could not be read included), in
    /// composition order.
    pub policies: Vec<PolicyRef>,
    /// The composed policy's YAML (`None`: no policy matches, zt enforces nothing), or the
    /// refusal.
    pub text: Result<Option<String>, Refused>,
}

/// Why the matching policies cannot be applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    /// `Invalid` or `Conflict`.
    pub outcome: Outcome,
    /// Every problem: the policy's key, the rule, the line and column.
    pub error: String,
}

/// The first line of every effective policy, followed by the JSON list of its policies; the
/// agent reads it back from the engine's record when it starts without the store.
const HEADER: &str = "# zt-agent effective policy from: ";

/// Compute the effective policy of a host labelled `labels`.
pub fn effective(
    policies: &Policies,
    labels: &Labels,
    access: &StoreAccess,
    resolver: &dyn NameResolver,
) -> Effective {
    let mut matching: Vec<(&str, &Stored, Loaded)> = Vec::new();
    let mut problems = String::new();
    let mut unknown: Vec<(Scope, PolicyRef)> = Vec::new();
    for (name, stored) in policies {
        let key = policy_key(name);
        // A policy whose own selector says it is for other hosts is not this host's concern,
        // valid or not.
        let scope = Scope::read(&stored.text, &key).ok();
        if scope.as_ref().is_some_and(|s| !s.matches(labels)) {
            continue;
        }
        let reference = PolicyRef {
            name: name.clone(),
            mod_revision: stored.mod_revision,
        };
        if let Some(problem) = crate::contract::policy_name_problem(name) {
            let _ = writeln!(problems, "{key}: policy name '{name}': {problem}");
            unknown.push((scope.unwrap_or_default(), reference));
            continue;
        }
        match Policy::from_yaml(&stored.text, &key, resolver) {
            Ok(loaded) => matching.push((name, stored, loaded)),
            Err(e) => {
                let _ = writeln!(problems, "{}", e.to_string().trim_end());
                unknown.push((scope.unwrap_or_default(), reference));
            }
        }
    }
    let mut refs: Vec<(i32, PolicyRef)> = matching
        .iter()
        .map(|(name, stored, loaded)| {
            let r = PolicyRef {
                name: (*name).to_owned(),
                mod_revision: stored.mod_revision,
            };
            (loaded.scope.order(), r)
        })
        .chain(unknown.into_iter().map(|(s, r)| (s.order(), r)))
        .collect();
    refs.sort();
    let policies_used: Vec<PolicyRef> = refs.into_iter().map(|(_, r)| r).collect();
    let refused = |outcome, error: String| Refused {
        outcome,
        error: error.trim_end().to_owned(),
    };
    if !problems.is_empty() {
        return Effective {
            policies: policies_used,
            text: Err(refused(Outcome::Invalid, problems)),
        };
    }
    if matching.is_empty() {
        return Effective {
            policies: policies_used,
            text: Ok(None),
        };
    }
    let own = match own_rules(access, resolver) {
        Ok(own) => own,
        Err(e) => {
            return Effective {
                policies: policies_used,
                text: Err(refused(Outcome::Failed, e)),
            };
        }
    };
    let mut parts: Vec<Part<'_>> = matching
        .iter()
        .map(|(name, _, loaded)| Part { name, loaded })
        .collect();
    if let Some(own) = &own {
        parts.push(Part {
            name: RESERVED_POLICY,
            loaded: own,
        });
    }
    let text = match compose(&parts).map(|c| c.to_yaml()) {
        Ok(Ok(yaml)) => Ok(Some(format!(
            "{HEADER}{}\n{yaml}",
            serde_json::to_string(&policies_used).unwrap_or_default()
        ))),
        Ok(Err(e)) => Err(refused(Outcome::Failed, e.to_string())),
        Err(ComposeError::Conflict(c)) => Err(refused(Outcome::Conflict, c.to_string())),
        Err(e) => Err(refused(Outcome::Invalid, e.to_string())),
    };
    Effective {
        policies: policies_used,
        text,
    }
}

/// The policies an effective policy was composed from, read from its first line.
pub fn policies_of(text: &str) -> Vec<PolicyRef> {
    text.lines()
        .next()
        .and_then(|l| l.strip_prefix(HEADER))
        .and_then(|json| serde_json::from_str(json).ok())
        .unwrap_or_default()
}

/// The agent's own rules, first in every effective policy: its uid may open TCP connections
/// to the store's endpoints, so a default-deny policy never cuts the agent off from the
/// store that could lift it. `None` when there are no endpoint addresses to allow.
fn own_rules(access: &StoreAccess, resolver: &dyn NameResolver) -> Result<Option<Loaded>, String> {
    if access.endpoints.is_empty() {
        return Ok(None);
    }
    let mut hosts: Vec<String> = access
        .endpoints
        .iter()
        .map(|a| a.ip().to_string())
        .collect();
    hosts.sort();
    hosts.dedup();
    let mut ports: Vec<u16> = access.endpoints.iter().map(SocketAddr::port).collect();
    ports.sort_unstable();
    ports.dedup();
    let text = format!(
        "version: \"1.0\"\norder: {}\nrules:\n  - name: store\n    description: the agent reaches its policy store\n    from: {{ uid: {} }}\n    to: {{ hosts: [{}], ports: [{}], protocol: tcp }}\n    action: allow\n",
        i32::MIN,
        access.uid,
        hosts
            .iter()
            .map(|h| format!("\"{h}\""))
            .collect::<Vec<_>>()
            .join(", "),
        ports
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(", "),
    );
    Policy::from_yaml(&text, "zt-agent's own rules", resolver)
        .map(Some)
        .map_err(|e| format!("the agent's own rule for the store is invalid: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use zt_core::StaticResolver;

    fn stored(text: &str, rev: i64) -> Stored {
        Stored {
            text: text.to_owned(),
            mod_revision: rev,
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn access() -> StoreAccess {
        StoreAccess {
            endpoints: vec!["10.99.0.1:2379".parse().unwrap_or_else(|_| unreachable!())],
            uid: 0,
        }
    }

    const WEB: &str = "version: \"1.0\"\nselector: {role: web}\norder: 20\nrules:\n  - name: redis\n    from: {uid: 20001}\n    to: {host: 127.0.0.1, port: 6379}\n    action: allow\n";
    const BASE: &str = "version: \"1.0\"\norder: 10\nsettings: {default_policy: deny}\nrules:\n  - name: dns\n    from: {user: \"*\"}\n    to: {host: 127.0.0.53, port: 53, protocol: udp}\n    action: allow\n";

    #[test]
    fn rules_come_in_order_then_name_and_carry_their_policy() {
        let mut p = Policies::new();
        p.insert("web".into(), stored(WEB, 12));
        p.insert("base".into(), stored(BASE, 7));
        let e = effective(
            &p,
            &labels(&[("role", "web")]),
            &access(),
            &StaticResolver::new(),
        );
        let text = e
            .text
            .unwrap_or_else(|r| panic!("{r:?}"))
            .unwrap_or_default();
        let store = text.find("zt-agent/store").unwrap_or(usize::MAX);
        let dns = text.find("base/dns").unwrap_or(usize::MAX);
        let redis = text.find("web/redis").unwrap_or(usize::MAX);
        assert!(store < dns && dns < redis, "{text}");
        assert_eq!(
            policies_of(&text),
            vec![
                PolicyRef {
                    name: "base".into(),
                    mod_revision: 7
                },
                PolicyRef {
                    name: "web".into(),
                    mod_revision: 12
                }
            ]
        );
        let loaded = Policy::from_yaml(&text, "effective", &StaticResolver::new());
        assert!(loaded.is_ok(), "{loaded:?}");
    }

    #[test]
    fn a_policy_for_other_hosts_is_left_out_even_when_invalid() {
        let mut p = Policies::new();
        p.insert("web".into(), stored(WEB, 12));
        p.insert(
            "broken".into(),
            stored(
                "version: \"1.0\"\nselector: {role: db}\nrules: [ {name: x} ]\n",
                3,
            ),
        );
        let e = effective(
            &p,
            &labels(&[("role", "db2")]),
            &access(),
            &StaticResolver::new(),
        );
        assert_eq!(e.text, Ok(None));
        assert!(e.policies.is_empty());
    }

    #[test]
    fn an_invalid_matching_policy_is_refused_naming_key_rule_and_position() {
        let mut p = Policies::new();
        p.insert(
            "web".into(),
            stored(&WEB.replace("port: 6379", "port: 70000"), 5),
        );
        let e = effective(
            &p,
            &labels(&[("role", "web")]),
            &access(),
            &StaticResolver::new(),
        );
        let r = e.text.err().unwrap_or_else(|| panic!("accepted"));
        assert_eq!(r.outcome, Outcome::Invalid);
        assert!(
            r.error.contains("/zt/v1/policies/web:7:") && r.error.contains("redis"),
            "{}",
            r.error
        );
    }

    #[test]
    fn settings_that_disagree_are_a_conflict_naming_both_policies() {
        let mut p = Policies::new();
        p.insert("base".into(), stored(BASE, 7));
        p.insert(
            "open".into(),
            stored(
                "version: \"1.0\"\nsettings: {default_policy: allow}\nrules: []\n",
                9,
            ),
        );
        let e = effective(&p, &Labels::new(), &access(), &StaticResolver::new());
        let r = e.text.err().unwrap_or_else(|| panic!("accepted"));
        assert_eq!(r.outcome, Outcome::Conflict);
        assert!(
            r.error.contains("'base'") && r.error.contains("'open'"),
            "{}",
            r.error
        );
    }
}
