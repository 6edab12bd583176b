//! A model of the program's decision in Rust, over [`Rendered`] map entries: the same walk,
//! the same keys, the same longest-prefix lookup. Unit tests hold it against
//! `Ruleset::evaluate` on generated policies, which catches layout bugs without a kernel; the
//! kernel tests then hold the real program against the same evaluator.

use crate::render::{Effect, IdentityKind, PortMatch, Rendered, Target, Transport};
use std::net::IpAddr;

/// A connect or sendmsg call as the program sees it.
pub struct Call {
    /// Caller's uid.
    pub uid: u32,
    /// Caller's primary gid.
    pub gid: u32,
    /// Ids of the caller's cgroup and its ancestors, by level (index 0 is the root).
    pub cgroups: Vec<u64>,
    /// The socket's transport.
    pub transport: Transport,
    /// Destination port (ignored for [`Transport::Other`]).
    pub port: u16,
    /// Destination address.
    pub dst: IpAddr,
}

/// What the program decides: the effect and the deciding ruleset entry index.
pub fn decide(r: &Rendered, call: &Call) -> (Effect, u32) {
    let port = if call.transport == Transport::Other {
        0
    } else {
        call.port
    };
    // IPv4-mapped IPv6 destinations are decided as IPv4, as the program does.
    let dst = match call.dst {
        IpAddr::V6(a) => a.to_ipv4_mapped().map_or(IpAddr::V6(a), IpAddr::V4),
        v4 => v4,
    };
    for (i, g) in (0u32..).zip(&r.groups) {
        let key_port = match g.ports {
            PortMatch::Exact => port,
            PortMatch::Range { first, last } if (first..=last).contains(&port) => 0,
            PortMatch::Range { .. } => continue,
        };
        let identity = match g.identity {
            IdentityKind::Any => 0,
            IdentityKind::Uid => u64::from(call.uid),
            IdentityKind::Gid => u64::from(call.gid),
            IdentityKind::Cgroup { level } => match call.cgroups.get(usize::from(level)) {
                Some(&id) => id,
                None => continue,
            },
        };
        let Some(member) = r.members.iter().find(|m| {
            m.group == i
                && m.identity == identity
                && m.transport == call.transport
                && m.port == key_port
        }) else {
            continue;
        };
        let rule = match member.target {
            Target::Every(rule) => rule,
            Target::List(list) => {
                let longest = r
                    .prefixes
                    .iter()
                    .filter(|p| p.list == list && p.net.contains(&dst))
                    .max_by_key(|p| p.net.prefix_len());
                match longest {
                    Some(p) => p.rule,
                    None => continue,
                }
            }
        };
        return (g.effect, rule.index);
    }
    (r.default_effect, r.default_rule.index)
}
