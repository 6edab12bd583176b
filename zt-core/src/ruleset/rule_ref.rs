//! A ruleset entry's rule match: a policy rule's, or one of zt's own.

use crate::policy::{Rule, RuleMatch};
use serde::{Serialize, Serializer};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

/// The [`RuleMatch`] of a ruleset entry: it reads as the match itself (through `Deref`, and in
/// `Debug`, `Display`, comparison, hashing and serde), wherever the match is kept.
///
/// A policy rule's match stays in the [`crate::Policy`]'s rule list, which entries share with
/// an index into it: an allocation per rule would cost a 10 000-rule policy a large share of
/// its load time, and as much again to free. zt's own entries that a rule could express (the
/// SSH failsafe, the log and the default) hold a match of their own, so backends compile them
/// like policy rules.
#[derive(Clone)]
pub struct RuleRef(Source);

#[derive(Clone)]
enum Source {
    /// `rules[index]`'s match; the list is never changed while shared.
    Policy { rules: Arc<Vec<Rule>>, index: usize },
    /// The match of one of zt's own entries.
    Own(Arc<RuleMatch>),
}

impl RuleRef {
    /// The match of `rules[index]`, for an index of the ruleset's evaluation order (a
    /// permutation of the rules' indices).
    pub(crate) fn new(rules: &Arc<Vec<Rule>>, index: usize) -> Self {
        debug_assert!(index < rules.len());
        Self(Source::Policy {
            rules: Arc::clone(rules),
            index,
        })
    }

    /// A match of zt's own.
    pub(crate) fn own(m: RuleMatch) -> Self {
        Self(Source::Own(Arc::new(m)))
    }
}

impl Deref for RuleRef {
    type Target = RuleMatch;

    fn deref(&self) -> &RuleMatch {
        match &self.0 {
            Source::Policy { rules, index } => rules[*index].matches(),
            Source::Own(m) => m,
        }
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
