//! What a backend can enforce, declared by the backend and checked in one place.
//!
//! A backend that cannot express a rule must refuse it at plan time, naming it; it must never
//! install a weaker rule. Each backend used to check this inside its own compiler, with its
//! own wording; now it declares what it lacks (and why), and [`Capabilities::check`] refuses
//! every such rule the same way for all of them before anything is compiled.

use crate::ruleset::Origin;
use crate::{Error, Hook, Matcher, Protocol, Ruleset};

/// What a backend can enforce. Each field is `None` when the backend enforces that kind of
/// rule, or the reason it cannot, written for the operator whose rule is refused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// Why rules with `direction: ingress` cannot be enforced.
    pub ingress: Option<&'static str>,
    /// Why rules with `protocol: icmp` cannot be enforced.
    pub icmp: Option<&'static str>,
}

impl Capabilities {
    /// Everything zt's policy format can say.
    pub const fn all() -> Self {
        Self {
            ingress: None,
            icmp: None,
        }
    }

    /// Without ingress rules, for `reason`.
    pub const fn without_ingress(mut self, reason: &'static str) -> Self {
        self.ingress = Some(reason);
        self
    }

    /// Without ICMP rules, for `reason`.
    pub const fn without_icmp(mut self, reason: &'static str) -> Self {
        self.icmp = Some(reason);
        self
    }

    /// Refuse the first policy rule of `ruleset` that `backend` cannot enforce, with
    /// [`Error::Unsupported`] naming the rule and the reason. zt's own entries are the
    /// backend's to install or leave out (the eBPF backend leaves the ingress prologue to the
    /// host firewall, as its documentation says); only the operator's rules are checked here.
    pub fn check(&self, backend: &'static str, ruleset: &Ruleset) -> Result<(), Error> {
        match self.refusal(ruleset) {
            Some((rule, reason)) => Err(Error::Unsupported {
                backend,
                rule: rule.to_owned(),
                reason: reason.to_owned(),
            }),
            None => Ok(()),
        }
    }

    /// The first policy rule of `ruleset` this backend cannot enforce, and why.
    pub fn refusal<'r>(&self, ruleset: &'r Ruleset) -> Option<(&'r str, &'static str)> {
        ruleset.entries().iter().find_map(|entry| {
            let (Origin::Rule(_), Matcher::Rule(m)) = (entry.origin(), entry.matcher()) else {
                return None;
            };
            let reason = match (self.ingress, self.icmp) {
                (Some(reason), _) if entry.hook() == Hook::Ingress => reason,
                (_, Some(reason)) if m.protocol == Protocol::Icmp => reason,
                _ => return None,
            };
            Some((entry.name(), reason))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Policy, RuleBuilder, StaticResolver};

    fn ruleset(rule: RuleBuilder) -> Ruleset {
        Policy::builder()
            .rule(RuleBuilder::egress("web").uid(1).port(80).allow())
            .rule(rule)
            .build(&StaticResolver::new())
            .unwrap()
            .policy
            .ruleset()
    }

    #[test]
    fn a_rule_the_backend_lacks_is_refused_by_name_and_zt_entries_are_not_checked() {
        let egress_only = Capabilities::all().without_ingress("egress only");
        let inbound = ruleset(RuleBuilder::ingress("https-in").port(443).allow());
        let err = egress_only.check("test", &inbound).unwrap_err();
        assert!(
            matches!(&err, Error::Unsupported { backend: "test", rule, reason }
                if rule == "https-in" && reason == "egress only"),
            "{err}"
        );
        assert!(Capabilities::all().check("test", &inbound).is_ok());
        // The ruleset has zt's own ingress entries (zt:ssh, zt:loopback) either way.
        let outbound = ruleset(RuleBuilder::egress("dns").any_user().port(53).allow());
        assert!(egress_only.check("test", &outbound).is_ok());

        let no_icmp = Capabilities::all().without_icmp("no icmp here");
        let ping = ruleset(
            RuleBuilder::egress("ping")
                .any_user()
                .protocol(Protocol::Icmp)
                .allow(),
        );
        assert!(
            matches!(no_icmp.check("test", &ping), Err(Error::Unsupported { rule, .. }) if rule == "ping")
        );
        assert!(egress_only.check("test", &ping).is_ok());
    }
}
