//! Address sets per family: IPv4 and IPv6 are always decided together.

use super::ShortList;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;

/// The addresses of one family that a rule matches.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Addresses<N> {
    /// Every address of the family.
    All,
    /// These networks (sorted, aggregated); empty means no address of this family.
    Only(ShortList<N>),
}

impl<N> Addresses<N> {
    /// Whether the family is matched at all.
    pub fn is_empty(&self) -> bool {
        matches!(self, Addresses::Only(v) if v.is_empty())
    }

    /// The networks, or `None` for all addresses.
    pub fn nets(&self) -> Option<&[N]> {
        match self {
            Addresses::All => None,
            Addresses::Only(v) => Some(v),
        }
    }
}

/// Peer addresses of a rule: destinations for egress, sources for ingress.
///
/// "No hosts" means every address of *both* families: a default-deny host that forgets IPv6 is
/// open through `::1`. A list that names only IPv4 networks matches no IPv6 packet.
///
/// Closed (see [the policy module](super#a-new-field-cannot-go-unnoticed)): backends read it
/// through [`AddressSet::parts`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AddressSet {
    v4: Addresses<Ipv4Net>,
    v6: Addresses<Ipv6Net>,
}

/// Every field of an [`AddressSet`], borrowed: how code outside zt-core reads one. Not
/// `#[non_exhaustive]`, so that a field added here fails to compile in every backend that
/// renders addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddressSetParts<'a> {
    /// IPv4 networks.
    pub v4: &'a Addresses<Ipv4Net>,
    /// IPv6 networks.
    pub v6: &'a Addresses<Ipv6Net>,
}

/// An address family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl Family {
    /// The family of an address.
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }
}

impl AddressSet {
    /// Every address of both families.
    pub fn any() -> Self {
        Self {
            v4: Addresses::All,
            v6: Addresses::All,
        }
    }

    /// The union of `nets`, per family, aggregated; a `/0` becomes "all of that family".
    pub fn from_nets(nets: impl IntoIterator<Item = IpNet>) -> Self {
        let (mut v4, mut v6) = (ShortList::default(), ShortList::default());
        for net in nets {
            match net {
                IpNet::V4(n) => v4.push(n.trunc()),
                IpNet::V6(n) => v6.push(n.trunc()),
            }
        }
        // `aggregate` allocates several vectors; a list of one network needs none of that.
        if v4.len() > 1 {
            v4 = Ipv4Net::aggregate(&v4.into_vec()).into();
        }
        if v6.len() > 1 {
            v6 = Ipv6Net::aggregate(&v6.into_vec()).into();
        }
        Self {
            v4: if v4.iter().any(|n| n.prefix_len() == 0) {
                Addresses::All
            } else {
                Addresses::Only(v4)
            },
            v6: if v6.iter().any(|n| n.prefix_len() == 0) {
                Addresses::All
            } else {
                Addresses::Only(v6)
            },
        }
    }

    /// Every field, for a destructuring that names them all.
    pub fn parts(&self) -> AddressSetParts<'_> {
        // No `..`: a new field must be added to the view.
        let AddressSet { v4, v6 } = self;
        AddressSetParts { v4, v6 }
    }

    /// IPv4 networks.
    pub fn v4(&self) -> &Addresses<Ipv4Net> {
        &self.v4
    }

    /// IPv6 networks.
    pub fn v6(&self) -> &Addresses<Ipv6Net> {
        &self.v6
    }

    /// Whether every address of both families is in the set.
    pub fn is_any(&self) -> bool {
        let AddressSet { v4, v6 } = self;
        matches!((v4, v6), (Addresses::All, Addresses::All))
    }

    /// Whether the set holds any address of `family`.
    pub fn has_family(&self, family: Family) -> bool {
        let AddressSet { v4, v6 } = self;
        match family {
            Family::V4 => !v4.is_empty(),
            Family::V6 => !v6.is_empty(),
        }
    }

    /// Whether `ip` is in the set.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let AddressSet { v4, v6 } = self;
        match ip {
            IpAddr::V4(a) => match v4 {
                Addresses::All => true,
                Addresses::Only(nets) => nets.iter().any(|n| n.contains(&a)),
            },
            IpAddr::V6(a) => match v6 {
                Addresses::All => true,
                Addresses::Only(nets) => nets.iter().any(|n| n.contains(&a)),
            },
        }
    }

    /// Whether every address of `other` is in `self`.
    pub fn covers(&self, other: &AddressSet) -> bool {
        fn family<N: Copy>(
            mine: &Addresses<N>,
            theirs: &Addresses<N>,
            inside: impl Fn(&N, &N) -> bool,
        ) -> bool {
            match (mine, theirs) {
                (Addresses::All, _) => true,
                (Addresses::Only(_), Addresses::All) => false,
                (Addresses::Only(m), Addresses::Only(t)) => {
                    t.iter().all(|tn| m.iter().any(|mn| inside(mn, tn)))
                }
            }
        }
        let AddressSet { v4, v6 } = self;
        let AddressSet {
            v4: their_v4,
            v6: their_v6,
        } = other;
        family(v4, their_v4, |m, t| m.contains(t)) && family(v6, their_v6, |m, t| m.contains(t))
    }

    /// All networks, IPv4 first (`None` for a family that is "all").
    pub fn nets(&self) -> impl Iterator<Item = IpNet> + '_ {
        let AddressSet { v4, v6 } = self;
        let v4 = v4.nets().unwrap_or(&[]).iter().map(|&n| IpNet::V4(n));
        let v6 = v6.nets().unwrap_or(&[]).iter().map(|&n| IpNet::V6(n));
        v4.chain(v6)
    }
}

impl fmt::Display for AddressSet {
    /// `any` for every address of both families; otherwise the networks, a whole family
    /// written as `0.0.0.0/0` or `::/0`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_any() {
            return f.write_str("any");
        }
        let AddressSet { v4, v6 } = self;
        let mut parts: Vec<String> = Vec::new();
        match v4 {
            Addresses::All => parts.push("0.0.0.0/0".into()),
            Addresses::Only(v) => parts.extend(v.iter().map(ToString::to_string)),
        }
        match v6 {
            Addresses::All => parts.push("::/0".into()),
            Addresses::Only(v) => parts.extend(v.iter().map(ToString::to_string)),
        }
        f.write_str(&parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(nets: &[&str]) -> AddressSet {
        AddressSet::from_nets(nets.iter().map(|n| n.parse().unwrap()))
    }

    #[test]
    fn a_list_of_ipv4_networks_matches_no_ipv6_address() {
        let s = set(&["127.0.0.1/32"]);
        assert!(s.contains("127.0.0.1".parse().unwrap()));
        assert!(!s.has_family(Family::V6));
        assert!(!s.contains("::1".parse().unwrap()));
    }

    #[test]
    fn networks_are_aggregated_and_slash_zero_means_the_whole_family() {
        assert_eq!(
            set(&["10.0.0.0/25", "10.0.0.128/25"]).to_string(),
            "10.0.0.0/24"
        );
        let all_v4 = set(&["0.0.0.0/0"]);
        assert_eq!(all_v4.v4(), &Addresses::All);
        assert!(all_v4.v6().is_empty());
    }

    #[test]
    fn covers_is_per_family() {
        assert!(set(&["10.0.0.0/8"]).covers(&set(&["10.1.0.0/16"])));
        assert!(!set(&["10.0.0.0/8"]).covers(&set(&["10.1.0.0/16", "::1/128"])));
        assert!(AddressSet::any().covers(&set(&["::1/128"])));
        assert!(!set(&["::/0"]).covers(&AddressSet::any()));
    }
}
