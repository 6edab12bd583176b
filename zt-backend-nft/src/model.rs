//! zt's nftables table as a typed model: the one description both encoders start from.
//!
//! [`crate::text`] prints it as an `nft -f` script (what `plan --show-artifact` shows and what
//! persistence writes); the crate's `lower` module turns it into the low-level expressions
//! netlink carries. Statements are the nft statements zt uses, no more, so each has one text
//! form and one bytecode form — the same bytecode `nft` generates for that text, which a
//! kernel test checks.

use ipnet::IpNet;
use zt_core::policy::LogRate;

/// An address family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

/// Which address or port of a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dir {
    /// Source.
    Src,
    /// Destination.
    Dst,
}

/// A layer-4 protocol zt matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum L4 {
    /// TCP (6).
    Tcp,
    /// UDP (17).
    Udp,
    /// ICMP (1).
    Icmp,
    /// ICMPv6 (58).
    Icmpv6,
}

impl L4 {
    /// The IP protocol number.
    pub fn number(self) -> u8 {
        match self {
            L4::Tcp => 6,
            L4::Udp => 17,
            L4::Icmp => 1,
            L4::Icmpv6 => 58,
        }
    }

    /// The name nft prints.
    pub fn name(self) -> &'static str {
        match self {
            L4::Tcp => "tcp",
            L4::Udp => "udp",
            L4::Icmp => "icmp",
            L4::Icmpv6 => "ipv6-icmp",
        }
    }
}

/// Conntrack states zt matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CtStates {
    /// `invalid`.
    Invalid,
    /// `established,related`.
    EstablishedRelated,
    /// `established`.
    Established,
}

/// How a reject answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RejectWith {
    /// A TCP reset.
    TcpReset,
    /// ICMP or ICMPv6 port unreachable, by the packet's family.
    IcmpxPortUnreachable,
}

/// One field of a concatenated set key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    /// `meta skuid`.
    SkUid,
    /// `meta skgid`.
    SkGid,
    /// `ip|ip6 saddr|daddr`.
    Addr(Family, Dir),
    /// `ip|ip6 saddr|daddr & MASK`: the address's first `.2` bits. A set whose networks all
    /// have that one prefix length holds them as exact keys (a hash set), where an interval
    /// set (`pipapo`) would cost the kernel a table resize for every element loaded.
    Net(Family, Dir, u8),
    /// `meta l4proto`.
    L4Proto,
    /// `th sport|dport`.
    Port(Dir),
}

/// One statement of a rule, in evaluation order.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Stmt {
    /// `ct state …`.
    CtState(CtStates),
    /// `iif "lo"`.
    IifLoopback,
    /// `meta nfproto ipv4|ipv6` (only where no address match implies it).
    NfProto(Family),
    /// `meta l4proto …` (only where no port match implies it).
    L4Proto(L4),
    /// `meta skuid N`.
    SkUid(u32),
    /// `meta skgid N`.
    SkGid(u32),
    /// `socket cgroupv2 level N "path"`; the id is resolved on the host before netlink
    /// encoding (nft resolves the path itself when it reads text).
    Cgroup {
        /// Ancestor level (number of path components).
        level: u32,
        /// Path relative to the cgroup v2 root.
        path: String,
        /// The cgroup's id (its inode number), once resolved.
        id: Option<u64>,
    },
    /// `ip|ip6 saddr|daddr NET`.
    Addr(Dir, IpNet),
    /// `tcp|udp sport|dport A[-B]`.
    Port(L4, Dir, u16, u16),
    /// `icmpv6 type A[-B]`.
    Icmpv6Type(u8, u8),
    /// `FIELD . FIELD … @set`, on packets of `family` when the key holds an address.
    Lookup(Vec<Field>, String),
    /// `counter`.
    Counter,
    /// `limit rate N/unit`.
    Limit(LogRate),
    /// `log prefix "…" flags skuid`.
    Log(String),
    /// `accept`.
    Accept,
    /// `drop`.
    Drop,
    /// `jump CHAIN`.
    Jump(String),
    /// `reject with …`.
    Reject(RejectWith),
}

/// A value of one key field in a set element.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Value {
    /// A uid or gid.
    Id(u32),
    /// A network (an interval of addresses).
    Net(IpNet),
    /// A protocol.
    Proto(L4),
    /// A port range (a single port when equal).
    Ports(u16, u16),
}

/// A set element: one value per key field, and the policy rule it belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Element {
    /// The values, in key-field order.
    pub values: Vec<Value>,
    /// The policy rule's name.
    pub comment: String,
}

/// A named set with a concatenated key and per-element counters.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Set {
    /// Its name.
    pub name: String,
    /// The key fields (at least two: single-field lookups are plain rules).
    pub fields: Vec<Field>,
    /// Whether elements hold ranges or prefixes (an interval set, `pipapo` in the kernel);
    /// sets of exact keys are hash sets, several times cheaper to load.
    pub interval: bool,
    /// The elements.
    pub elements: Vec<Element>,
}

/// A rule: statements and the entry it implements.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Rule {
    /// The statements.
    pub stmts: Vec<Stmt>,
    /// The policy rule or zt entry name (or, for set lookups, the set).
    pub comment: String,
}

/// A base chain's hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Hook {
    /// The output hook.
    Output,
    /// The input hook.
    Input,
}

/// A chain: a base chain on a hook (priority `filter`, policy `accept` — the last rule
/// decides), or a helper chain reached by `jump`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Chain {
    /// Its name.
    pub name: String,
    /// The hook of a base chain.
    pub hook: Option<Hook>,
    /// Its rules.
    pub rules: Vec<Rule>,
}

/// zt's table: one `inet` table covering IPv4 and IPv6.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Table {
    /// Its name (default `zt`).
    pub name: String,
    /// Sets, declared before the chains that look them up.
    pub sets: Vec<Set>,
    /// Helper chains first, then the base chains.
    pub chains: Vec<Chain>,
}
