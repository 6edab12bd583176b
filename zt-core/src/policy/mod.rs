//! The resolved policy: what a configuration means, checked and normalized.
//!
//! A [`Policy`] only comes out of validation (from YAML, or from [`PolicyBuilder`] in code),
//! so every value in it is one every backend can render: names are safe in comments and
//! logs, ports and addresses are normalized, users and groups are numeric. Its fields are
//! therefore read-only.

mod address;
mod builder;
mod export;
mod identity;
mod parallel;
mod port;
pub(crate) mod shadow;
mod short_list;
mod unique;
mod validate;

pub use address::{AddressSet, Addresses, Family};
pub use builder::{PolicyBuilder, RuleBuilder};
pub use identity::{CgroupPath, Identity};
pub use port::{PortRange, PortSet};
pub use short_list::ShortList;

use crate::diagnostic::Diagnostics;
use crate::resolve::NameResolver;
use crate::short_str::ShortStr;
use crate::source::Provenance;
use crate::{Error, Ruleset};
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

/// The verdict for traffic that no rule matches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DefaultPolicy {
    /// Default deny: the zero-trust default.
    #[default]
    Deny,
    /// Default allow: rules carve out denials.
    Allow,
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

/// A validated log prefix: at most 29 bytes (iptables' `--log-prefix` limit, the tightest
/// backend) of printable ASCII other than quotes and backslash, so no log line can be forged
/// or broken by it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct LogPrefix(Arc<str>);

/// Longest log prefix accepted, in bytes.
pub const MAX_LOG_PREFIX: usize = 29;

impl LogPrefix {
    /// A prefix, if it is valid; otherwise why not.
    pub fn new(prefix: &str) -> Result<Self, LogPrefixError> {
        if prefix.len() > MAX_LOG_PREFIX {
            return Err(LogPrefixError::TooLong(prefix.len()));
        }
        if let Some(c) = prefix
            .chars()
            .find(|&c| !(' '..='~').contains(&c) || matches!(c, '"' | '\'' | '\\'))
        {
            return Err(LogPrefixError::Character(c));
        }
        Ok(Self(Arc::from(prefix)))
    }

    /// The prefix.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// One of zt's own constant prefixes (valid by construction; checked by a unit test).
    pub(crate) fn trusted(prefix: &'static str) -> Self {
        Self(Arc::from(prefix))
    }
}

/// Why a log prefix was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogPrefixError {
    /// Longer than [`MAX_LOG_PREFIX`] bytes.
    TooLong(usize),
    /// Holds a character that could corrupt a log line.
    Character(char),
}

/// Unit of a log rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RateUnit {
    /// Per second.
    Second,
    /// Per minute.
    Minute,
    /// Per hour.
    Hour,
    /// Per day.
    Day,
}

/// A log rate limit: at most `count` lines per `unit` (with the kernel's default burst of 5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LogRate {
    /// Lines per unit, 1..=10000.
    pub count: u32,
    /// The unit.
    pub unit: RateUnit,
}

impl LogRate {
    /// Parse `N/second|minute|hour|day` (also `/s`, `/min`, `/h`, `/d`); `None` when malformed.
    pub fn parse(text: &str) -> Option<Self> {
        let (n, unit) = text.trim().split_once('/')?;
        let count: u32 = n.trim().parse().ok()?;
        let unit = match unit.trim() {
            "second" | "s" | "sec" => RateUnit::Second,
            "minute" | "min" | "m" => RateUnit::Minute,
            "hour" | "h" => RateUnit::Hour,
            "day" | "d" => RateUnit::Day,
            _ => return None,
        };
        (1..=10_000)
            .contains(&count)
            .then_some(Self { count, unit })
    }
}

impl fmt::Display for LogRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.unit {
            RateUnit::Second => "second",
            RateUnit::Minute => "minute",
            RateUnit::Hour => "hour",
            RateUnit::Day => "day",
        };
        write!(f, "{}/{unit}", self.count)
    }
}

/// Global settings, every one resolved to a value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Settings {
    default_policy: DefaultPolicy,
    log_blocked: bool,
    log_prefix: LogPrefix,
    log_rate: LogRate,
    preserve_ssh: bool,
    ssh_ports: PortSet,
    preserve_established: bool,
}

/// The log prefix used when the configuration sets none.
pub const DEFAULT_LOG_PREFIX: &str = "ZT-BLOCKED: ";

/// The prefix of log lines written by `log: true` on an `allow` rule (blocked traffic uses the
/// configured prefix, so audit tools see every refusal under one prefix).
pub const ALLOWED_LOG_PREFIX: &str = "ZT-ALLOWED: ";

impl Default for Settings {
    fn default() -> Self {
        Self {
            default_policy: DefaultPolicy::Deny,
            log_blocked: true,
            log_prefix: LogPrefix::trusted(DEFAULT_LOG_PREFIX),
            log_rate: LogRate {
                count: 10,
                unit: RateUnit::Second,
            },
            preserve_ssh: true,
            ssh_ports: PortSet::from_ranges(PortRange::single(22)).unwrap_or_else(PortSet::any),
            preserve_established: true,
        }
    }
}

impl Settings {
    /// Verdict for traffic no rule matches.
    pub fn default_policy(&self) -> DefaultPolicy {
        self.default_policy
    }
    /// Whether fall-through denials are logged.
    pub fn log_blocked(&self) -> bool {
        self.log_blocked
    }
    /// Prefix of denial log lines.
    pub fn log_prefix(&self) -> &LogPrefix {
        &self.log_prefix
    }
    /// Rate limit of every log entry.
    pub fn log_rate(&self) -> LogRate {
        self.log_rate
    }
    /// Whether inbound SSH is kept open before any rule.
    pub fn preserve_ssh(&self) -> bool {
        self.preserve_ssh
    }
    /// The SSH ports of the failsafe.
    pub fn ssh_ports(&self) -> &PortSet {
        &self.ssh_ports
    }
    /// Whether established and related traffic is accepted before any rule.
    pub fn preserve_established(&self) -> bool {
        self.preserve_established
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
    name: RuleName,
    /// Stored in place when short (most are a few words), like the name.
    description: Option<ShortStr>,
    direction: Direction,
    #[serde(flatten)]
    matches: RuleMatch,
    action: Action,
    priority: i32,
    log: bool,
    #[serde(skip)]
    provenance: Provenance,
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

/// A validated, resolved policy: settings and rules in file order.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct Policy {
    settings: Settings,
    /// Shared with the policy's rulesets, whose entries read each rule's match from here.
    rules: Arc<Vec<Rule>>,
    /// No rule has a lower priority than one before it: file order is evaluation order.
    #[serde(skip)]
    in_file_order: bool,
}

impl fmt::Debug for Policy {
    /// Settings and rules; what is derived from them is left out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Policy")
            .field("settings", &self.settings)
            .field("rules", &self.rules)
            .finish()
    }
}

/// A policy that passed validation, with the warnings validation raised.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The policy.
    pub policy: Policy,
    /// Warnings (never errors): shadowed rules, unprotected SSH, overlapping hosts.
    pub warnings: Diagnostics,
}

impl Policy {
    /// Start building a policy in code.
    pub fn builder() -> PolicyBuilder {
        PolicyBuilder::new()
    }

    /// Parse, validate and resolve a YAML configuration. `source` names the file in diagnostics.
    ///
    /// Every problem is reported at once, as [`Error::Invalid`]; on success the warnings come
    /// with the policy.
    ///
    /// A large text (512 KiB or more, about 4 000 rules) on a machine with more than one CPU is
    /// read on a second, scoped thread while the calling thread decodes and validates the rules
    /// read so far; the thread has ended when this returns. The result is the same either way.
    pub fn from_yaml(
        text: &str,
        source: &str,
        resolver: &dyn NameResolver,
    ) -> Result<Loaded, Error> {
        validate::load_str(text, source, resolver)
    }

    /// Read a configuration file and load it as [`Policy::from_yaml`] does.
    pub fn from_file(path: &std::path::Path, resolver: &dyn NameResolver) -> Result<Loaded, Error> {
        let bytes = std::fs::read(path).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_bytes(bytes, &path.display().to_string(), resolver)
    }

    /// Read a policy from raw bytes named `source` (a file's contents): bytes that are not
    /// UTF-8 are reported with the line and column of the first bad byte.
    pub fn from_bytes(
        bytes: Vec<u8>,
        source: &str,
        resolver: &dyn NameResolver,
    ) -> Result<Loaded, Error> {
        match String::from_utf8(bytes) {
            Ok(text) => Self::from_yaml(&text, source, resolver),
            Err(e) => Err(validate::not_utf8(source, &e)),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The rules, in file order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Whether file order is evaluation order (see [`shadow::Order`]).
    pub(crate) fn in_file_order(&self) -> bool {
        self.in_file_order
    }

    /// The rules as the ruleset's entries share them.
    pub(crate) fn shared_rules(&self) -> &Arc<Vec<Rule>> {
        &self.rules
    }

    /// The ordered first-match ruleset every backend implements.
    pub fn ruleset(&self) -> Ruleset {
        Ruleset::from_policy(self)
    }
}
