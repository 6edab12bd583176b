//! From the egress rules' items to groups, members and address lists (see the [module
//! documentation](super) for the layout and why).

use super::within;
use super::{Effect, IdentityKind};
use super::{Group, Member, PortMatch, Prefix, RuleRef, Target, Transport};
use crate::EbpfError;
use crate::layout;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::collections::BTreeMap;
use zt_core::Addresses;
use zt_core::policy::AddressSetParts;

/// One rule's contribution before grouping.
pub(super) struct Item<'a> {
    pub(super) rule: RuleRef,
    pub(super) effect: Effect,
    pub(super) kind: IdentityKind,
    pub(super) identity: u64,
    pub(super) transports: &'static [Transport],
    pub(super) ports: PortPart,
    pub(super) peers: &'a zt_core::AddressSet,
}

#[derive(Debug)]
pub(super) enum PortPart {
    Exact(Vec<u16>),
    Range(u16, u16),
}

type MemberKey = (u32, u64, Transport, u16);

/// Groups, members and prefixes, as [`Rendered`] holds them.
type Tables = (Vec<Group>, Vec<Member>, Vec<Prefix>);

/// Cut items into groups, then build members and address lists.
pub(super) fn assemble(items: &[Item<'_>]) -> Result<Tables, EbpfError> {
    let mut groups: Vec<Group> = Vec::new();
    // Contributions per member key, in rule order (items come in rule order).
    let mut keys: BTreeMap<MemberKey, Vec<(RuleRef, &zt_core::AddressSet)>> = BTreeMap::new();
    for item in items {
        let ports = match item.ports {
            PortPart::Exact(_) => PortMatch::Exact,
            PortPart::Range(first, last) => PortMatch::Range { first, last },
        };
        let shape = Group {
            effect: item.effect,
            identity: item.kind,
            ports,
        };
        if groups.last() != Some(&shape) {
            within(
                "groups (runs of rules with one verdict and shape)",
                groups.len() as u64 + 1,
                layout::MAX_GROUPS,
                None,
            )?;
            groups.push(shape);
        }
        let group = u32::try_from(groups.len() - 1).unwrap_or(u32::MAX);
        for &transport in item.transports {
            match &item.ports {
                PortPart::Exact(list) => {
                    // Transports without ports never match exact ports.
                    if transport == Transport::Other {
                        continue;
                    }
                    for &port in list {
                        keys.entry((group, item.identity, transport, port))
                            .or_default()
                            .push((item.rule, item.peers));
                    }
                }
                PortPart::Range(..) => keys
                    .entry((group, item.identity, transport, 0))
                    .or_default()
                    .push((item.rule, item.peers)),
            }
        }
    }
    let mut lists: BTreeMap<Vec<(IpNet, RuleRef)>, u32> = BTreeMap::new();
    let mut members = Vec::with_capacity(keys.len());
    let mut prefixes = Vec::new();
    for ((group, identity, transport, port), contributions) in keys {
        let Some(target) = target(&contributions, &mut lists, &mut prefixes) else {
            continue;
        };
        members.push(Member {
            group,
            identity,
            transport,
            port,
            target,
        });
    }
    within(
        "member entries (identity, transport, port)",
        members.len() as u64,
        layout::MAX_MEMBERS / 2,
        None,
    )?;
    within(
        "address prefixes",
        prefixes.len() as u64,
        layout::MAX_PREFIXES / 2,
        None,
    )?;
    Ok((groups, members, prefixes))
}

/// The target of one member key: every address (one rule), or a (shared) address list.
fn target(
    contributions: &[(RuleRef, &zt_core::AddressSet)],
    lists: &mut BTreeMap<Vec<(IpNet, RuleRef)>, u32>,
    prefixes: &mut Vec<Prefix>,
) -> Option<Target> {
    // The first contribution has the lowest rule index; if it covers every address, it wins.
    if let Some((rule, peers)) = contributions.first()
        && peers.is_any()
    {
        return Some(Target::Every(*rule));
    }
    let mut first: BTreeMap<(u8, IpNet), RuleRef> = BTreeMap::new();
    for (rule, peers) in contributions {
        let AddressSetParts { v4, v6 } = peers.parts();
        let v4 = match v4 {
            Addresses::All => vec![IpNet::V4(Ipv4Net::default())],
            Addresses::Only(nets) => nets.iter().map(|&n| IpNet::V4(n)).collect(),
        };
        let v6 = match v6 {
            Addresses::All => vec![IpNet::V6(Ipv6Net::default())],
            Addresses::Only(nets) => nets.iter().map(|&n| IpNet::V6(n)).collect(),
        };
        for net in v4.into_iter().chain(v6) {
            first.entry(sort_key(net)).or_insert(*rule);
        }
    }
    let list = push_down(first);
    if list.is_empty() {
        return None;
    }
    if let [(IpNet::V4(a), ra), (IpNet::V6(b), rb)] = list.as_slice()
        && a.prefix_len() == 0
        && b.prefix_len() == 0
        && ra == rb
    {
        return Some(Target::Every(*ra));
    }
    let next = u32::try_from(lists.len() + 1).unwrap_or(u32::MAX);
    let id = *lists.entry(list.clone()).or_insert_with(|| {
        prefixes.extend(list.iter().map(|&(net, rule)| Prefix {
            list: next,
            net,
            rule,
        }));
        next
    });
    Some(Target::List(id))
}

/// Sort key of a prefix: family, then the network as a 128-bit number, then length — so a
/// prefix comes right before the prefixes it contains.
fn sort_key(net: IpNet) -> (u8, IpNet) {
    (
        match net {
            IpNet::V4(_) => 4,
            IpNet::V6(_) => 6,
        },
        net.trunc(),
    )
}

/// Give every prefix the lowest rule among the prefixes containing it (itself included), and
/// drop prefixes whose answer equals their closest container's (the LPM falls back to it).
fn push_down(first: BTreeMap<(u8, IpNet), RuleRef>) -> Vec<(IpNet, RuleRef)> {
    let mut sorted: Vec<(IpNet, RuleRef)> = first.into_iter().map(|((_, n), r)| (n, r)).collect();
    sorted.sort_by_key(|(n, _)| layout::prefix_order(n));
    let mut out = Vec::with_capacity(sorted.len());
    // Enclosing prefixes of the current one, with their pushed-down answers.
    let mut stack: Vec<(IpNet, RuleRef)> = Vec::new();
    for (net, rule) in sorted {
        while let Some((top, _)) = stack.last() {
            if top.contains(&net) {
                break;
            }
            stack.pop();
        }
        let answer = match stack.last() {
            Some((_, parent)) if parent.index <= rule.index => *parent,
            _ => rule,
        };
        if stack.last().map(|(_, p)| *p) != Some(answer) {
            out.push((net, answer));
        }
        stack.push((net, answer));
    }
    out.sort_by_key(|(n, _)| layout::prefix_order(n));
    out
}
