//! A ruleset entry's view of the policy rule it came from.

use crate::policy::{Rule, RuleMatch};
use serde::{Serialize, Serializer};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

/// A policy rule's [`RuleMatch`], shared with the [`crate::Policy`] it came from: it reads as
/// the match itself (through `Deref`, and in `Debug`, `Display`, comparison, hashing and serde).
///
/// Entries hold the policy's rule list and an index rather than a reference-counted copy of
/// each match. With one allocation per rule, a 10 000-rule policy spent a large share of its
/// load allocating matches and a large share of its drop freeing them again.
#[derive(Clone)]
pub struct RuleRef {
    rules: Arc<Vec<Rule>>,
    /// An index into `rules`, which is never changed while shared.
    index: usize,
}

impl RuleRef {
    /// The match of `rules[index]`, for an index of the ruleset's evaluation order (a
    /// permutation of the rules' indices).
    pub(crate) fn new(rules: &Arc<Vec<Rule>>, index: usize) -> Self {
        debug_assert!(index < rules.len());
        Self {
            rules: Arc::clone(rules),
            index,
        }
    }
}

impl Deref for RuleRef {
    type Target = RuleMatch;

    fn deref(&self) -> &RuleMatch {
        self.rules[self.index].matches()
    }
}

impl fmt::Debug for RuleRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl fmt::Display for RuleRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

impl PartialEq for RuleRef {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for RuleRef {}

impl Hash for RuleRef {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (**self).hash(state);
    }
}

impl Serialize for RuleRef {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (**self).serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use crate::ruleset::Origin;
    use crate::{Matcher, Policy, Protocol, RuleBuilder, StaticResolver};
    use std::hash::{BuildHasher, RandomState};

    /// Every rule entry reads as its own rule's match, in every form, also when priorities
    /// put the rules out of file order, and after the policy is gone.
    #[test]
    fn an_entry_reads_as_the_match_of_its_own_rule() -> Result<(), crate::Error> {
        let resolver = StaticResolver::new().user("web", 1001);
        let loaded = Policy::builder()
            .rule(RuleBuilder::egress("web").user("web").port(443).allow())
            .rule(
                RuleBuilder::egress("dns")
                    .any_user()
                    .port(53)
                    .protocol(Protocol::Udp)
                    .allow(),
            )
            .rule(
                RuleBuilder::ingress("https")
                    .from_host("192.0.2.0/24")
                    .port(443)
                    .allow(),
            )
            .rule(
                RuleBuilder::egress("first")
                    .uid(7)
                    .to_host("::1")
                    .deny()
                    .priority(-1),
            )
            .build(&resolver)?;
        let ruleset = loaded.policy.ruleset();
        let rules = loaded.policy.rules().to_vec();
        drop(loaded);
        let hash = RandomState::new();
        let mut seen = Vec::new();
        for e in ruleset.entries() {
            let (Origin::Rule(i), Matcher::Rule(m)) = (e.origin(), e.matcher()) else {
                continue;
            };
            let own = rules[i].matches();
            assert_eq!(e.name(), rules[i].name().as_str());
            assert_eq!(&**m, own);
            assert_eq!(format!("{m:?}"), format!("{own:?}"));
            assert_eq!(m.to_string(), own.to_string());
            assert_eq!(serde_json::to_value(m).ok(), serde_json::to_value(own).ok());
            assert_eq!(hash.hash_one(m), hash.hash_one(own));
            seen.push(i);
        }
        assert_eq!(seen, [3, 0, 1, 2]);
        Ok(())
    }
}
