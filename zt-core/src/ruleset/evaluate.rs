//! The reference evaluator: the executable definition of zt's semantics.
//!
//! Every backend must give the kernel's packets the decisions [`Ruleset::evaluate`] gives
//! the corresponding probes; the differential tests of each backend hold it to that.

use super::{Entry, Hook, ICMPV6_LINK_TYPES, Matcher, RuleMatch, Ruleset, Verdict};
use crate::policy::{Direction, Family, Identity, Protocol};
use serde::Serialize;
use std::net::{IpAddr, SocketAddr};

/// Conntrack's view of a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CtState {
    /// The first packet of a connection.
    New,
    /// A packet of a connection that has seen traffic both ways (the first reply included).
    Established,
    /// A packet related to a known connection (an ICMP error, an FTP data channel).
    Related,
    /// A packet conntrack cannot place (a stray ACK, a malformed header).
    Invalid,
    /// A packet conntrack does not track (IPv6 neighbour discovery, `notrack` traffic).
    Untracked,
}

/// The transport protocol of a probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProbeProtocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// ICMP (IPv4) or ICMPv6 (IPv6), by the probe's family.
    Icmp,
    /// Any other IP protocol, by number.
    Other(u8),
}

/// A packet, as the firewall sees it at one hook.
///
/// Not `#[non_exhaustive]`, unlike the policy's structs: probes are written as struct
/// literals by the tests that hold backends to the evaluator, and a literal fails to compile
/// when a field is added, which is what those tests need. The evaluator destructures a probe
/// naming every field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Probe {
    /// Leaving (egress, OUTPUT) or arriving (ingress, INPUT).
    pub direction: Direction,
    /// The uid owning the sending socket (egress), if a socket owns the packet.
    pub uid: Option<u32>,
    /// The primary (effective) gid of the sending socket's owner. Supplementary groups are not
    /// part of zt's semantics: see [`Identity::Group`].
    pub gid: Option<u32>,
    /// The sending process's cgroup v2 path (relative to the root), if known.
    pub cgroup: Option<String>,
    /// Transport protocol.
    pub protocol: ProbeProtocol,
    /// Source address. Its family is the probe's family.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Source port (TCP/UDP).
    pub src_port: Option<u16>,
    /// Destination port (TCP/UDP).
    pub dst_port: Option<u16>,
    /// ICMP or ICMPv6 type.
    pub icmp_type: Option<u8>,
    /// Conntrack state.
    pub ct_state: CtState,
    /// Whether an ingress packet arrived on the loopback interface.
    pub loopback: bool,
}

impl Probe {
    /// The first packet of a TCP connection from a process running as `uid` (primary group
    /// `gid`) to `dst`, leaving through loopback when `dst` is a loopback address.
    pub fn connect(protocol: ProbeProtocol, uid: u32, gid: u32, dst: SocketAddr) -> Self {
        let src = match dst.ip() {
            IpAddr::V4(a) if a.is_loopback() => IpAddr::from([127, 0, 0, 1]),
            IpAddr::V4(_) => IpAddr::from([192, 0, 2, 1]),
            IpAddr::V6(a) if a.is_loopback() => IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]),
            IpAddr::V6(_) => IpAddr::from([0x2001u16, 0xdb8, 0, 0, 0, 0, 0, 1]),
        };
        Self {
            direction: Direction::Egress,
            uid: Some(uid),
            gid: Some(gid),
            cgroup: None,
            protocol,
            src,
            dst: dst.ip(),
            src_port: Some(40000),
            dst_port: Some(dst.port()),
            icmp_type: None,
            ct_state: CtState::New,
            loopback: false,
        }
    }

    /// The first packet of a connection arriving from `src` for local `dst` on a real interface.
    pub fn inbound(protocol: ProbeProtocol, src: IpAddr, dst: SocketAddr) -> Self {
        Self {
            direction: Direction::Ingress,
            uid: None,
            gid: None,
            cgroup: None,
            protocol,
            src,
            dst: dst.ip(),
            src_port: Some(40000),
            dst_port: Some(dst.port()),
            icmp_type: None,
            ct_state: CtState::New,
            loopback: false,
        }
    }

    /// The probe's address family (that of its destination).
    pub fn family(&self) -> Family {
        Family::of(self.dst)
    }
}

/// What the ruleset decides for a probe.
///
/// Not `#[non_exhaustive]`: only the evaluator builds one, with a literal that names every
/// field, and code outside zt-core that compares decisions may destructure it without `..`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// The verdict.
    pub verdict: Verdict,
    /// Index of the deciding entry in [`Ruleset::entries`].
    pub entry: usize,
    /// Its name (a policy rule name, or `zt:…`).
    pub name: String,
    /// Names of the entries that logged the packet on the way (rate limits aside).
    pub logged: Vec<String>,
}

impl RuleMatch {
    /// Whether a probe travelling in `direction` matches this rule.
    pub fn matches(&self, probe: &Probe, direction: Direction) -> bool {
        let RuleMatch {
            identity,
            peers,
            ports,
            protocol,
        } = self;
        // What a rule match does not look at is named too, so that a new field of the probe
        // is a decision here rather than an oversight.
        let Probe {
            direction: _,
            uid,
            gid,
            cgroup,
            protocol: probe_protocol,
            src,
            dst,
            src_port: _,
            dst_port,
            icmp_type: _,
            ct_state: _,
            loopback: _,
        } = probe;
        let identity = match identity {
            Identity::Any => true,
            Identity::User { uid: want, name: _ } => *uid == Some(*want),
            Identity::Group { gid: want, name: _ } => *gid == Some(*want),
            Identity::Cgroup(path) => cgroup.as_deref().is_some_and(|c| path.contains(c)),
        };
        let peer = match direction {
            Direction::Egress => *dst,
            Direction::Ingress => *src,
        };
        let protocol = matches!(
            (protocol, probe_protocol),
            (Protocol::Any, _)
                | (Protocol::Tcp, ProbeProtocol::Tcp)
                | (Protocol::Udp, ProbeProtocol::Udp)
                | (Protocol::Both, ProbeProtocol::Tcp | ProbeProtocol::Udp)
                | (Protocol::Icmp, ProbeProtocol::Icmp)
        );
        identity && protocol && peers.contains(peer) && ports.contains(*dst_port)
    }
}

impl Matcher {
    /// Whether a probe travelling in `direction` matches.
    pub fn matches(&self, probe: &Probe, direction: Direction) -> bool {
        // The fields left to `RuleMatch::matches` are `_` here.
        let Probe {
            direction: _,
            uid: _,
            gid: _,
            cgroup: _,
            protocol,
            src: _,
            dst: _,
            src_port,
            dst_port: _,
            icmp_type,
            ct_state,
            loopback,
        } = probe;
        match self {
            Matcher::CtInvalid => *ct_state == CtState::Invalid,
            Matcher::CtEstablished => matches!(ct_state, CtState::Established | CtState::Related),
            Matcher::Loopback => *loopback,
            Matcher::Icmpv6Link => {
                probe.family() == Family::V6
                    && *protocol == ProbeProtocol::Icmp
                    && icmp_type.is_some_and(|t| ICMPV6_LINK_TYPES.contains(&t))
            }
            Matcher::SshReplies(ports) => {
                *protocol == ProbeProtocol::Tcp
                    && *ct_state == CtState::Established
                    && ports.contains(*src_port)
            }
            Matcher::Rule(m) => m.matches(probe, direction),
        }
    }
}

impl Ruleset {
    /// Decide a probe: the first entry on the probe's hook that matches and has a verdict wins.
    pub fn evaluate(&self, probe: &Probe) -> Decision {
        let mut logged = Vec::new();
        for (i, e) in self.entries_for(probe.direction) {
            let Entry {
                name,
                // Applied by `entries_for`.
                hook: _,
                // Where an entry comes from does not change what it decides.
                origin: _,
                matcher,
                log,
                verdict,
            } = e;
            if !matcher.matches(probe, probe.direction) {
                continue;
            }
            if log.is_some() {
                logged.push(name.to_string());
            }
            if let Some(verdict) = *verdict {
                return Decision {
                    verdict,
                    entry: i,
                    name: name.to_string(),
                    logged,
                };
            }
        }
        // Unreachable: the last entry (`zt:default`) is on both hooks, matches everything and
        // has a verdict. Kept total rather than panicking.
        let last = self.entries.len().saturating_sub(1);
        Decision {
            verdict: self.default_verdict(),
            entry: last,
            name: super::names::DEFAULT.to_owned(),
            logged,
        }
    }
}

impl Hook {
    /// The directions this hook sees.
    pub fn directions(self) -> &'static [Direction] {
        match self {
            Hook::Egress => &[Direction::Egress],
            Hook::Ingress => &[Direction::Ingress],
            Hook::Both => &[Direction::Egress, Direction::Ingress],
        }
    }
}
