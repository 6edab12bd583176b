//! Rules: what each one matches and does, and its name.

use super::{AddressSet, Identity, PortSet};
use crate::short_str::ShortStr;
use crate::source::Provenance;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// Which way a rule looks at traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Traffic a local process sends: matched by the sender's identity and the destination.
    Egress,
    /// Traffic arriving for this host: matched by source address and local port (netfilter
    /// cannot see the receiving process).
    Ingress,
}

/// What a rule does with the traffic it matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Let it through.
    Allow,
    /// Drop it silently (the sender times out).
    Deny,
    /// Refuse it fast: TCP reset, ICMP/ICMPv6 port unreachable otherwise.
    Reject,
}

/// The transport protocols a rule matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// TCP and UDP.
    Both,
    /// ICMP for IPv4, ICMPv6 for IPv6.
    Icmp,
    /// Every protocol.
    Any,
}

impl Protocol {
    /// Whether the protocol has ports (ports may only be given with these).
    pub fn has_ports(self) -> bool {
        matches!(self, Protocol::Tcp | Protocol::Udp | Protocol::Both)
    }

    /// Whether it includes TCP.
    pub fn includes_tcp(self) -> bool {
        matches!(self, Protocol::Tcp | Protocol::Both | Protocol::Any)
    }

    /// Whether it includes UDP.
    pub fn includes_udp(self) -> bool {
        matches!(self, Protocol::Udp | Protocol::Both | Protocol::Any)
    }

    /// Whether every packet `other` matches, `self` matches.
    pub fn covers(self, other: Protocol) -> bool {
        self == other
            || self == Protocol::Any
            || (self == Protocol::Both && matches!(other, Protocol::Tcp | Protocol::Udp))
    }

    /// The word used in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Both => "both",
            Protocol::Icmp => "icmp",
            Protocol::Any => "any",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Egress => "egress",
            Direction::Ingress => "ingress",
        })
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Allow => "allow",
            Action::Deny => "deny",
            Action::Reject => "reject",
        })
    }
}

/// A validated rule name: 1–63 characters of `[A-Za-z0-9._-]`, starting with a letter or digit.
///
/// Names travel into nft comments, iptables `--comment`s, eBPF rule tables, log lines and JSON;
/// this alphabet is safe in all of them, needs no quoting, and cannot collide with zt's own
/// entries, whose names start with `zt:`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct RuleName(pub(crate) ShortStr);

/// Longest rule name accepted.
pub const MAX_RULE_NAME: usize = 63;

/// The bytes a rule name may contain, as a table: every rule's name is checked.
static NAME_CHARS: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-');
        c += 1;
    }
    t
};

impl RuleName {
    /// A name, if it is valid; otherwise why not.
    pub fn new(name: &str) -> Result<Self, &'static str> {
        let first_ok = name
            .bytes()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric());
        if name.is_empty() {
            Err("a rule name cannot be empty")
        } else if name.len() > MAX_RULE_NAME {
            Err("a rule name is at most 63 characters")
        } else if !first_ok || !name.bytes().all(|c| NAME_CHARS[usize::from(c)]) {
            Err(
                "a rule name uses letters, digits, '.', '_' and '-', and starts with a letter or digit",
            )
        } else {
            Ok(Self(ShortStr::new(name)))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The name as a shared string. A name is stored in place (it is short), so this copies
    /// it: clone the `RuleName` instead where a copy of the name is all that is needed.
    pub fn shared(&self) -> Arc<str> {
        Arc::from(self.as_str())
    }
}

impl fmt::Display for RuleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a rule matches. Its ruleset entry reads it from the rule (see [`crate::RuleRef`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct RuleMatch {
    /// The sender (always `Any` for ingress).
    pub identity: Identity,
    /// Destination addresses (egress) or source addresses (ingress).
    pub peers: AddressSet,
    /// Destination ports (egress) or local ports (ingress).
    pub ports: PortSet,
    /// Transport protocol.
    pub protocol: Protocol,
}

/// One resolved rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Rule {
    pub(super) name: RuleName,
    /// Stored in place when short (most are a few words), like the name.
    pub(super) description: Option<ShortStr>,
    pub(super) direction: Direction,
    #[serde(flatten)]
    pub(super) matches: RuleMatch,
    pub(super) action: Action,
    pub(super) priority: i32,
    pub(super) log: bool,
    #[serde(skip)]
    pub(super) provenance: Provenance,
}

impl Rule {
    /// The rule's unique name.
    pub fn name(&self) -> &RuleName {
        &self.name
    }
    /// Its description, if any.
    pub fn description(&self) -> Option<&str> {
        self.description.as_ref().map(ShortStr::as_str)
    }
    /// Egress or ingress.
    pub fn direction(&self) -> Direction {
        self.direction
    }
    /// Who sends (egress); always [`Identity::Any`] for ingress.
    pub fn identity(&self) -> &Identity {
        &self.matches.identity
    }
    /// Destination addresses (egress) or source addresses (ingress).
    pub fn peers(&self) -> &AddressSet {
        &self.matches.peers
    }
    /// Destination ports (egress) or local ports (ingress).
    pub fn ports(&self) -> &PortSet {
        &self.matches.ports
    }
    /// Transport protocol.
    pub fn protocol(&self) -> Protocol {
        self.matches.protocol
    }
    /// Everything it matches.
    pub fn matches(&self) -> &RuleMatch {
        &self.matches
    }
    /// What it does.
    pub fn action(&self) -> Action {
        self.action
    }
    /// Ordering priority (lower first).
    pub fn priority(&self) -> i32 {
        self.priority
    }
    /// Whether matches are logged.
    pub fn log(&self) -> bool {
        self.log
    }
    /// Where it was written.
    pub fn provenance(&self) -> Provenance {
        self.provenance
    }
}
