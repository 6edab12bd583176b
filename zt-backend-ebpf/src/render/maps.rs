//! What a rendering produces: the contents of the maps the program reads, in Rust types.

use crate::layout;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use zt_core::Verdict;

///
/// Socket-address hooks can only allow or refuse, so zt's `deny` (drop) and `reject` both
/// refuse under this backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    /// The call proceeds.
    Allow,
    /// The call fails with EPERM.
    Refuse,
}

impl From<Verdict> for Effect {
    fn from(v: Verdict) -> Self {
        match v {
            Verdict::Accept => Effect::Allow,
            Verdict::Drop | Verdict::Reject => Effect::Refuse,
        }
    }
}

/// Which identity value a group's member keys hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdentityKind {
    /// Every caller (key value 0).
    Any,
    /// The caller's uid.
    Uid,
    /// The caller's primary gid.
    Gid,
    /// The id of the caller's cgroup ancestor at `level` (the root is level 0).
    Cgroup {
        /// Depth of the rule's cgroup below the cgroup v2 root.
        level: u8,
    },
}

/// How a group matches destination ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PortMatch {
    /// The member key holds the destination port.
    Exact,
    /// The member key holds port 0 and the destination port must lie in this range (port 0
    /// stands for "no port": only `0-65535`, i.e. any port, matches transports without ports).
    Range {
        /// First port, inclusive.
        first: u16,
        /// Last port, inclusive.
        last: u16,
    },
}

/// One group: a run of consecutive rules with one verdict and one shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// What the group decides when it matches.
    pub effect: Effect,
    /// Which identity its member keys hold.
    pub identity: IdentityKind,
    /// How it matches ports.
    pub ports: PortMatch,
}

/// The transport of a member key: TCP, UDP, or any other protocol a socket hook sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// TCP (IP protocol 6).
    Tcp,
    /// UDP (IP protocol 17).
    Udp,
    /// Anything else (SCTP, ping sockets): matched only by protocol `any`, port 0.
    Other,
}

impl Transport {
    /// The key byte the program compares (`ZT_PROTO_*`).
    pub fn code(self) -> u8 {
        match self {
            Transport::Tcp => layout::PROTO_TCP,
            Transport::Udp => layout::PROTO_UDP,
            Transport::Other => layout::PROTO_OTHER,
        }
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
            Transport::Other => "other",
        }
    }
}

/// A reference to the ruleset entry that decides: its index (also its counter index) and
/// whether it logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RuleRef {
    /// Index in [`Ruleset::entries`](zt_core::Ruleset::entries).
    pub index: u32,
    /// Whether allowed calls it decides are recorded in the audit ring buffer (refusals always
    /// are).
    pub log: bool,
}

/// What a member entry points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// Every destination address matches; this rule decides.
    Every(RuleRef),
    /// Look the destination up in this address list (ids start at 1).
    List(u32),
}

/// One entry of the members hash map (generation left out).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Index of the group.
    pub group: u32,
    /// uid, gid, cgroup id, or 0 for any.
    pub identity: u64,
    /// The transport.
    pub transport: Transport,
    /// The destination port (0 in range groups).
    pub port: u16,
    /// Every address, or an address list.
    pub target: Target,
}

/// One entry of the LPM trie of address lists (generation left out).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prefix {
    /// The list it belongs to.
    pub list: u32,
    /// The prefix.
    pub net: IpNet,
    /// The first rule whose prefixes contain it.
    pub rule: RuleRef,
}

/// One entry of the rule table: names counters and audit records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleInfo {
    /// Index in [`Ruleset::entries`](zt_core::Ruleset::entries).
    pub index: u32,
    /// The policy rule name or `zt:default`.
    pub name: String,
    /// Its effect.
    pub effect: Effect,
    /// Whether it logs.
    pub log: bool,
}

/// The map contents of one generation: everything the programs read, plus the rule table.
///
/// Entries are kept in a canonical order, so two renderings of the same state compare equal,
/// and what [`crate::kernel::Kernel::read`] reads back from the pinned maps compares equal to
/// what was written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rendered {
    /// The rule deciding when no group matches (`zt:default`).
    pub default_rule: RuleRef,
    /// The default's effect.
    pub default_effect: Effect,
    /// Groups, walked in this order.
    pub groups: Vec<Group>,
    /// Members, sorted by (group, identity, transport, port).
    pub members: Vec<Member>,
    /// Address lists, sorted by (list, family, address, prefix length).
    pub prefixes: Vec<Prefix>,
    /// The rule table, sorted by index: every egress policy rule and `zt:default`.
    pub rules: Vec<RuleInfo>,
}
