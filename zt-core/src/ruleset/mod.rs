//! The ruleset: the exact first-match list every backend implements.
//!
//! A [`Ruleset`] is the policy in evaluation order, with zt's own prologue and epilogue as
//! explicit entries so that nothing a backend installs is implicit:
//!
//! | # | entry | hook | match | verdict |
//! |---|-------|------|-------|---------|
//! | 1 | `zt:invalid` | both | conntrack state invalid | drop |
//! | 2 | `zt:established` | both | conntrack state established or related (if `preserve_established`) | accept |
//! | 3 | `zt:loopback` | ingress | arrived on `lo` | accept |
//! | 4 | `zt:icmpv6-link` | both | ICMPv6 neighbour discovery and MLD | accept |
//! | 5 | `zt:ssh` | ingress | TCP to an SSH port, from anywhere (if `preserve_ssh`) | accept |
//! | 6 | `zt:ssh-replies` | egress | TCP from an SSH port, established (if `preserve_ssh` without `preserve_established`) | accept |
//! | … | policy rules | their direction | by priority, then file order | their action |
//! | n-1 | `zt:log` | both | everything (if `log_blocked` under default deny) | log, continue |
//! | n | `zt:default` | both | everything | the default policy |
//!
//! zt's entries that a policy rule could express — `zt:ssh`, `zt:log`, `zt:default` — hold an
//! ordinary [`RuleMatch`] ([`Matcher::Rule`]), so every backend compiles them, and the
//! evaluator decides them, exactly as it does policy rules. The others need what no rule can
//! say: conntrack state, the input interface, ICMPv6 types.
//!
//! Loopback traffic is filtered on egress, where the sending process is known; filtering it
//! again on ingress could only break it. `zt:icmpv6-link` goes beyond the architecture's list
//! of entries: IPv6 neighbour discovery is untracked by conntrack, so without it a default-deny
//! host loses IPv6 on every real interface — SSH over IPv6 included. MLD reports ride along
//! because switches that snoop MLD stop forwarding neighbour solicitations to hosts that never
//! send them.

mod display;
mod evaluate;
mod rule_ref;

pub use evaluate::{CtState, Decision, Probe, ProbeProtocol};
pub use rule_ref::RuleRef;

pub use crate::policy::RuleMatch;
use crate::policy::shadow::Order;
use crate::policy::{
    ALLOWED_LOG_PREFIX, Action, AddressSet, DefaultPolicy, Direction, Identity, LogPrefix, LogRate,
    Policy, PortSet, Protocol, Rule, Settings,
};
use crate::short_str::ShortStr;
use serde::Serialize;
use std::sync::Arc;

/// ICMPv6 types `zt:icmpv6-link` accepts: MLD query/report/done (130–132), router and
/// neighbour solicitation and advertisement (133–136), MLDv2 report (143).
pub const ICMPV6_LINK_TYPES: [u8; 8] = [130, 131, 132, 133, 134, 135, 136, 143];

/// Names of zt's own entries. Policy rule names cannot contain `:`, so these never collide.
pub mod names {
    /// Drop packets conntrack considers invalid.
    pub const INVALID: &str = "zt:invalid";
    /// Accept established and related traffic.
    pub const ESTABLISHED: &str = "zt:established";
    /// Accept what arrives on loopback.
    pub const LOOPBACK: &str = "zt:loopback";
    /// Accept ICMPv6 neighbour discovery and MLD.
    pub const ICMPV6_LINK: &str = "zt:icmpv6-link";
    /// Accept inbound SSH.
    pub const SSH: &str = "zt:ssh";
    /// Accept outbound replies from SSH ports.
    pub const SSH_REPLIES: &str = "zt:ssh-replies";
    /// Log what falls through.
    pub const LOG: &str = "zt:log";
    /// The default verdict.
    pub const DEFAULT: &str = "zt:default";
}

/// Which netfilter hooks (or cgroup hooks) an entry is installed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Hook {
    /// Outgoing traffic only.
    Egress,
    /// Incoming traffic only.
    Ingress,
    /// Both.
    Both,
}

impl Hook {
    /// Whether traffic in `direction` passes this hook.
    pub fn applies(self, direction: Direction) -> bool {
        matches!(
            (self, direction),
            (Hook::Both, _)
                | (Hook::Egress, Direction::Egress)
                | (Hook::Ingress, Direction::Ingress)
        )
    }
}

impl From<Direction> for Hook {
    fn from(d: Direction) -> Self {
        match d {
            Direction::Egress => Hook::Egress,
            Direction::Ingress => Hook::Ingress,
        }
    }
}

/// What a packet's fate is when an entry matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Let it through.
    Accept,
    /// Drop it silently.
    Drop,
    /// Drop it and tell the sender: TCP reset, or ICMP/ICMPv6 port unreachable.
    Reject,
}

impl From<Action> for Verdict {
    fn from(a: Action) -> Self {
        match a {
            Action::Allow => Verdict::Accept,
            Action::Deny => Verdict::Drop,
            Action::Reject => Verdict::Reject,
        }
    }
}

/// What an entry matches.
///
/// Exhaustive on purpose: a backend's `match` fails to compile on a new matcher.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Matcher {
    /// Conntrack state invalid.
    CtInvalid,
    /// Conntrack state established or related.
    CtEstablished,
    /// Arrived on the loopback interface.
    Loopback,
    /// ICMPv6 of the types in [`ICMPV6_LINK_TYPES`].
    Icmpv6Link,
    /// Established TCP from one of these (local) ports.
    SshReplies(PortSet),
    /// A rule match: a policy rule's (shared with the policy's [`crate::Rule`]), or one of
    /// zt's own entries a rule could express (see [`ssh_failsafe`] and [`everything`]).
    Rule(RuleRef),
}

/// What `zt:ssh` matches: TCP to one of `ports` (local), from any source — the match of an
/// ingress rule that names those ports.
pub fn ssh_failsafe(ports: &PortSet) -> RuleMatch {
    RuleMatch {
        identity: Identity::Any,
        peers: AddressSet::any(),
        ports: ports.clone(),
        protocol: Protocol::Tcp,
    }
}

/// What `zt:log` and `zt:default` match: every packet.
pub fn everything() -> RuleMatch {
    RuleMatch {
        identity: Identity::Any,
        peers: AddressSet::any(),
        ports: PortSet::any(),
        protocol: Protocol::Any,
    }
}

/// A log action: prefix and rate limit.
///
/// Closed (see [the policy module](crate::policy#a-new-field-cannot-go-unnoticed)):
/// backends read it through [`LogSpec::parts`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[non_exhaustive]
pub struct LogSpec {
    /// The log line prefix (validated: ≤ 29 bytes, no quotes or control characters).
    pub prefix: LogPrefix,
    /// The rate limit.
    pub rate: LogRate,
}

/// Every field of a [`LogSpec`], borrowed: how code outside zt-core reads a log action. Not
/// `#[non_exhaustive]`, so that a field added here fails to compile in every backend that
/// renders a log action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogSpecParts<'a> {
    /// The log line prefix.
    pub prefix: &'a LogPrefix,
    /// The rate limit.
    pub rate: LogRate,
}

impl LogSpec {
    /// Every field, for a destructuring that names them all.
    pub fn parts(&self) -> LogSpecParts<'_> {
        // No `..`: a new field must be added to the view.
        let LogSpec { prefix, rate } = self;
        LogSpecParts {
            prefix,
            rate: *rate,
        }
    }
}

/// Where an entry comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "rule")]
pub enum Origin {
    /// zt's prologue.
    Prologue,
    /// A policy rule (its index in the policy's file order).
    Rule(usize),
    /// zt's epilogue.
    Epilogue,
}

/// One entry of the first-match list.
///
/// Closed: its fields are private; backends read it through [`Entry::parts`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Entry {
    name: ShortStr,
    origin: Origin,
    hook: Hook,
    matcher: Matcher,
    /// Shared: a ruleset has at most two log actions (allowed and blocked), and a copy in every
    /// entry would make a 10 000-entry list almost a fifth larger.
    log: Option<Arc<LogSpec>>,
    verdict: Option<Verdict>,
}

impl Entry {
    /// The policy rule's name, or zt's name for its own entries (`zt:…`).
    pub fn name(&self) -> &str {
        self.name.as_str()
    }
    /// Prologue, policy rule, or epilogue.
    pub fn origin(&self) -> Origin {
        self.origin
    }
    /// The hooks it is installed on.
    pub fn hook(&self) -> Hook {
        self.hook
    }
    /// What it matches.
    pub fn matcher(&self) -> &Matcher {
        &self.matcher
    }
    /// Whether (and how) matching packets are logged.
    pub fn log(&self) -> Option<&LogSpec> {
        self.log.as_deref()
    }
    /// The verdict; `None` for a log-only entry, after which evaluation continues.
    pub fn verdict(&self) -> Option<Verdict> {
        self.verdict
    }

    /// Every field, for a destructuring that names them all.
    pub fn parts(&self) -> EntryParts<'_> {
        // No `..`: a new field must be added to the view.
        let Entry {
            name,
            origin,
            hook,
            matcher,
            log,
            verdict,
        } = self;
        EntryParts {
            name: name.as_str(),
            origin: *origin,
            hook: *hook,
            matcher,
            log: log.as_deref(),
            verdict: *verdict,
        }
    }
}

/// Every field of an [`Entry`], borrowed: how a backend's compiler reads an entry. Not
/// `#[non_exhaustive]`, so that a field added here fails to compile in every compiler until
/// it handles it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryParts<'a> {
    /// The policy rule's name, or zt's name for its own entries (`zt:…`).
    pub name: &'a str,
    /// Prologue, policy rule, or epilogue.
    pub origin: Origin,
    /// The hooks it is installed on.
    pub hook: Hook,
    /// What it matches.
    pub matcher: &'a Matcher,
    /// Whether (and how) matching packets are logged.
    pub log: Option<&'a LogSpec>,
    /// The verdict; `None` for a log-only entry, after which evaluation continues.
    pub verdict: Option<Verdict>,
}

/// The ordered first-match list for a policy. Built only from a validated [`Policy`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Ruleset {
    entries: Vec<Entry>,
}

fn own(
    name: &str,
    origin: Origin,
    hook: Hook,
    matcher: Matcher,
    verdict: Option<Verdict>,
) -> Entry {
    Entry {
        name: ShortStr::new(name),
        origin,
        hook,
        matcher,
        log: None,
        verdict,
    }
}

impl Ruleset {
    /// The ruleset of a policy: prologue, rules by priority then file order, epilogue.
    pub fn from_policy(policy: &Policy) -> Self {
        // Every setting shapes the ruleset: none may be left out.
        let Settings {
            default_policy,
            log_blocked,
            log_prefix,
            log_rate,
            preserve_ssh,
            ssh_ports,
            preserve_established,
        } = policy.settings();
        let rules = policy.rules();
        let mut entries = Vec::with_capacity(rules.len() + 8);
        let pro = Origin::Prologue;
        entries.push(own(
            names::INVALID,
            pro,
            Hook::Both,
            Matcher::CtInvalid,
            Some(Verdict::Drop),
        ));
        if *preserve_established {
            let m = Matcher::CtEstablished;
            entries.push(own(
                names::ESTABLISHED,
                pro,
                Hook::Both,
                m,
                Some(Verdict::Accept),
            ));
        }
        entries.push(own(
            names::LOOPBACK,
            pro,
            Hook::Ingress,
            Matcher::Loopback,
            Some(Verdict::Accept),
        ));
        let m = Matcher::Icmpv6Link;
        entries.push(own(
            names::ICMPV6_LINK,
            pro,
            Hook::Both,
            m,
            Some(Verdict::Accept),
        ));
        if *preserve_ssh {
            let m = Matcher::Rule(RuleRef::own(ssh_failsafe(ssh_ports)));
            entries.push(own(
                names::SSH,
                pro,
                Hook::Ingress,
                m,
                Some(Verdict::Accept),
            ));
            if !*preserve_established {
                let m = Matcher::SshReplies(ssh_ports.clone());
                entries.push(own(
                    names::SSH_REPLIES,
                    pro,
                    Hook::Egress,
                    m,
                    Some(Verdict::Accept),
                ));
            }
        }
        let allowed = Arc::new(LogSpec {
            prefix: LogPrefix::trusted(ALLOWED_LOG_PREFIX),
            rate: *log_rate,
        });
        let blocked = Arc::new(LogSpec {
            prefix: log_prefix.clone(),
            rate: *log_rate,
        });
        let shared = policy.shared_rules();
        for i in Order::of(policy).iter() {
            let Rule {
                name,
                description: _,
                direction,
                // Read through the policy's shared rules (`RuleRef`), not copied.
                matches: _,
                action,
                // Already applied: `Order` is the evaluation order.
                priority: _,
                log,
                provenance: _,
            } = &rules[i];
            let log = log.then(|| match action {
                Action::Allow => Arc::clone(&allowed),
                Action::Deny | Action::Reject => Arc::clone(&blocked),
            });
            entries.push(Entry {
                name: name.0.clone(),
                origin: Origin::Rule(i),
                hook: (*direction).into(),
                matcher: Matcher::Rule(RuleRef::new(shared, i)),
                log,
                verdict: Some((*action).into()),
            });
        }
        let epi = Origin::Epilogue;
        let all = RuleRef::own(everything());
        let deny = *default_policy == DefaultPolicy::Deny;
        if deny && *log_blocked {
            let m = Matcher::Rule(all.clone());
            let mut log = own(names::LOG, epi, Hook::Both, m, None);
            log.log = Some(blocked);
            entries.push(log);
        }
        let default = if deny { Verdict::Drop } else { Verdict::Accept };
        entries.push(own(
            names::DEFAULT,
            epi,
            Hook::Both,
            Matcher::Rule(all),
            Some(default),
        ));
        Self { entries }
    }

    /// The entries in evaluation order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The entries installed on the hook of `direction`, in order.
    pub fn entries_for(&self, direction: Direction) -> impl Iterator<Item = (usize, &Entry)> {
        self.entries
            .iter()
            .enumerate()
            .filter(move |(_, e)| e.hook.applies(direction))
    }

    /// The default verdict (the last entry's).
    pub fn default_verdict(&self) -> Verdict {
        self.entries
            .last()
            .and_then(Entry::verdict)
            .unwrap_or(Verdict::Drop)
    }
}
