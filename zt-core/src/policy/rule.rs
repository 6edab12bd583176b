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

/// A validated rule name: 1–63 characters of `[A-Za-z0-9._-]`, starting with a letter or digit,
/// or two of those joined by `/` (`<policy>/<rule>`, see [`RuleName::new`]).
///
/// Names travel into nft comments, iptables `--comment`s, eBPF rule tables, log lines and JSON;
/// this alphabet is safe in all of them, needs no quoting, and cannot collide with zt's own
/// entries, whose names start with `zt:`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct RuleName(pub(crate) ShortStr);

/// Longest rule name accepted.
pub const MAX_RULE_NAME: usize = 63;

/// Longest qualified rule name (`<policy>/<rule>`) accepted: nftables keeps a rule's comment
/// in 128 bytes of user data, 2 of them its header and 1 the terminating NUL.
pub const MAX_QUALIFIED_RULE_NAME: usize = 125;

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
    ///
    /// Besides a plain name, two plain names joined by one `/` are valid: `<policy>/<rule>`,
    /// how a fleet host's composed policy ([`crate::fleet::compose`]) names each rule after
    /// the policy it came from (at most [`MAX_QUALIFIED_RULE_NAME`] characters then).
    pub fn new(name: &str) -> Result<Self, &'static str> {
        if let Some((policy, rule)) = name.split_once('/') {
            return match (Self::plain(policy), Self::plain(rule)) {
                _ if name.len() > MAX_QUALIFIED_RULE_NAME => {
                    Err("a qualified rule name <policy>/<rule> is at most 125 characters")
                }
                (Ok(_), Ok(_)) => Ok(Self(ShortStr::new(name))),
                _ => Err(
                    "a qualified rule name is <policy>/<rule>, each part 1-63 letters, digits, '.', '_' and '-', starting with a letter or digit",
                ),
            };
        }
        Self::plain(name)
    }

    /// A name without a policy part.
    fn plain(name: &str) -> Result<Self, &'static str> {
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
///
/// Closed (see [the policy module](super#a-new-field-cannot-go-unnoticed)): outside
/// zt-core it is read through [`RuleMatch::parts`]. The fields stay public to read one of them
/// where only that one matters (a check for cgroup rules, say); a compiler destructures the
/// parts.
///
/// Only validation makes one, so its values are normalized; a literal does not compile:
///
/// ```compile_fail
/// use zt_core::{AddressSet, Identity, PortSet, Protocol, RuleMatch};
///
/// let m = RuleMatch {
///     identity: Identity::Any,
///     peers: AddressSet::any(),
///     ports: PortSet::any(),
///     protocol: Protocol::Tcp,
/// };
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[non_exhaustive]
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

/// Every field of a [`RuleMatch`], borrowed: how code outside zt-core reads a match.
///
/// Deliberately not `#[non_exhaustive]`: a backend's compiler writes
/// `let RuleMatchParts { identity, peers, ports, protocol } = m.parts();`, so a field added
/// here fails to compile in every compiler until it handles it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RuleMatchParts<'a> {
    /// The sender (always `Any` for ingress).
    pub identity: &'a Identity,
    /// Destination addresses (egress) or source addresses (ingress).
    pub peers: &'a AddressSet,
    /// Destination ports (egress) or local ports (ingress).
    pub ports: &'a PortSet,
    /// Transport protocol.
    pub protocol: Protocol,
}

impl RuleMatch {
    /// Every field, for a destructuring that names them all.
    ///
    /// ```
    /// use zt_core::{Identity, Policy, Protocol, RuleBuilder, RuleMatchParts, StaticResolver};
    ///
    /// let rule = RuleBuilder::egress("dns").any_user().port(53).protocol(Protocol::Udp).allow();
    /// let loaded = Policy::builder().rule(rule).build(&StaticResolver::new())?;
    /// let RuleMatchParts { identity, peers, ports, protocol } =
    ///     loaded.policy.rules()[0].matches().parts();
    /// assert_eq!(
    ///     (identity, peers.is_any(), ports.to_string(), protocol),
    ///     (&Identity::Any, true, "53".to_owned(), Protocol::Udp)
    /// );
    /// # Ok::<(), zt_core::Error>(())
    /// ```
    pub fn parts(&self) -> RuleMatchParts<'_> {
        // No `..`: a new field must be added to the view.
        let RuleMatch {
            identity,
            peers,
            ports,
            protocol,
        } = self;
        RuleMatchParts {
            identity,
            peers,
            ports,
            protocol: *protocol,
        }
    }

    /// Whether every packet `other` matches, `self` matches too (on the same hook).
    pub fn covers(&self, other: &RuleMatch) -> bool {
        let RuleMatch {
            identity,
            peers,
            ports,
            protocol,
        } = self;
        identity.covers(&other.identity)
            && protocol.covers(other.protocol)
            && ports.covers(&other.ports)
            && peers.covers(&other.peers)
    }

    /// Whether it matches every packet on its hook: any sender, peer, port and protocol.
    pub fn matches_everything(&self) -> bool {
        let RuleMatch {
            identity,
            peers,
            ports,
            protocol,
        } = self;
        *identity == Identity::Any && peers.is_any() && ports.is_any() && *protocol == Protocol::Any
    }
}

/// One resolved rule.
///
/// Closed: its fields are private, and zt-core's readers of a whole rule (the ruleset, the
/// export, the shadow search) destructure it naming every field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Rule {
    pub(crate) name: RuleName,
    /// Stored in place when short (most are a few words), like the name.
    pub(crate) description: Option<ShortStr>,
    pub(crate) direction: Direction,
    #[serde(flatten)]
    pub(crate) matches: RuleMatch,
    pub(crate) action: Action,
    pub(crate) priority: i32,
    pub(crate) log: bool,
    #[serde(skip)]
    pub(crate) provenance: Provenance,
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
