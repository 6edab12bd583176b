//! A rule's match as tuples, and a tuple as the statements of a plain rule or as the key of a
//! set element.

use crate::model::{Dir, Family, Field, L4, Stmt, Value};
use ipnet::IpNet;
use zt_core::RuleMatch;
use zt_core::policy::{AddressSetParts, Identity, PortRangeParts, Protocol, RuleMatchParts};

/// One point of a rule's match: a sender, at most one network, protocol and port range.
/// It borrows the rule's identity: a large run holds thousands of tuples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Tuple<'a> {
    identity: &'a Identity,
    /// A family restriction without a network (`0.0.0.0/0`, or ICMP of one family).
    family: Option<Family>,
    net: Option<IpNet>,
    l4: Option<L4>,
    ports: Option<(u16, u16)>,
}

fn family(n: &IpNet) -> Family {
    match n {
        IpNet::V4(_) => Family::V4,
        IpNet::V6(_) => Family::V6,
    }
}

/// Every tuple of a rule's match.
pub(super) fn tuples(m: &RuleMatch) -> Vec<Tuple<'_>> {
    let RuleMatchParts {
        identity,
        peers,
        ports,
        protocol,
    } = m.parts();
    let AddressSetParts { v4, v6 } = peers.parts();
    // (family restriction, network) pairs.
    let mut places: Vec<(Option<Family>, Option<IpNet>)> = Vec::new();
    if peers.is_any() {
        if protocol == Protocol::Icmp {
            places.extend([(Some(Family::V4), None), (Some(Family::V6), None)]);
        } else {
            places.push((None, None));
        }
    } else {
        match v4.nets() {
            None => places.push((Some(Family::V4), None)),
            Some(nets) => places.extend(nets.iter().map(|&n| (Some(Family::V4), Some(n.into())))),
        }
        match v6.nets() {
            None => places.push((Some(Family::V6), None)),
            Some(nets) => places.extend(nets.iter().map(|&n| (Some(Family::V6), Some(n.into())))),
        }
    }
    let protos = |fam: Option<Family>| -> &'static [Option<L4>] {
        match protocol {
            Protocol::Any => &[None],
            Protocol::Tcp => &[Some(L4::Tcp)],
            Protocol::Udp => &[Some(L4::Udp)],
            Protocol::Both => &[Some(L4::Tcp), Some(L4::Udp)],
            Protocol::Icmp => match fam {
                Some(Family::V6) => &[Some(L4::Icmpv6)],
                _ => &[Some(L4::Icmp)],
            },
        }
    };
    let ranges = ports.ranges();
    let mut out = Vec::with_capacity(places.len() * ranges.map_or(1, <[_]>::len));
    for (fam, net) in places {
        let fam_of_place = fam.or(net.as_ref().map(family));
        for &l4 in protos(fam_of_place) {
            let mut push = |ports| {
                out.push(Tuple {
                    identity,
                    family: if net.is_some() { None } else { fam },
                    net,
                    l4,
                    ports,
                });
            };
            match ranges {
                None => push(None),
                Some(r) => r.iter().for_each(|x| {
                    let PortRangeParts { first, last } = x.parts();
                    push(Some((first, last)));
                }),
            }
        }
    }
    out
}

/// The statements matching one tuple, in nft's order.
pub(super) fn tuple_stmts(t: &Tuple, dir: Dir) -> Vec<Stmt> {
    let mut s = Vec::with_capacity(4);
    match t.identity {
        Identity::Any => {}
        Identity::User { uid, name: _ } => s.push(Stmt::SkUid(*uid)),
        Identity::Group { gid, name: _ } => s.push(Stmt::SkGid(*gid)),
        Identity::Cgroup(p) => s.push(Stmt::Cgroup {
            level: u32::try_from(p.level()).unwrap_or(u32::MAX),
            path: p.as_str().to_owned(),
            id: None,
        }),
    }
    match (t.net, t.family) {
        (Some(n), _) => s.push(Stmt::Addr(dir, n)),
        (None, Some(f)) => s.push(Stmt::NfProto(f)),
        (None, None) => {}
    }
    match (t.l4, t.ports) {
        (Some(l4), Some((a, b))) => s.push(Stmt::Port(l4, Dir::Dst, a, b)),
        (Some(l4), None) => s.push(Stmt::L4Proto(l4)),
        (None, _) => {}
    }
    s
}

/// The key shape of a tuple in a set: its fields (at most four: identity, network, protocol,
/// port; held inline, as every tuple of a run has one) and any family restriction outside the
/// key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Shape {
    fields: [Option<Field>; 4],
    pub(super) family: Option<Family>,
}

impl Shape {
    pub(super) fn fields(&self) -> Vec<Field> {
        self.fields.iter().flatten().copied().collect()
    }
}

/// The shape and key values of a tuple, when it can live in a set (two fields or more, and
/// no cgroup: nftables cannot key a set by a cgroup at an ancestor level).
pub(super) fn keyed(t: &Tuple, dir: Dir) -> Option<(Shape, Vec<Value>)> {
    let mut fields = [None; 4];
    let mut values = Vec::with_capacity(4);
    let mut push = |field: Field, value: Value| {
        fields[values.len()] = Some(field);
        values.push(value);
    };
    match t.identity {
        Identity::Any => {}
        Identity::User { uid, name: _ } => push(Field::SkUid, Value::Id(*uid)),
        Identity::Group { gid, name: _ } => push(Field::SkGid, Value::Id(*gid)),
        Identity::Cgroup(_) => return None,
    }
    if let Some(n) = t.net {
        push(Field::Addr(family(&n), dir), Value::Net(n));
    }
    if let Some(l4) = t.l4 {
        push(Field::L4Proto, Value::Proto(l4));
    }
    if let Some((a, b)) = t.ports {
        push(Field::Port(Dir::Dst), Value::Ports(a, b));
    }
    (values.len() >= 2).then_some((
        Shape {
            fields,
            family: t.family,
        },
        values,
    ))
}
