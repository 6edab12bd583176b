//! Addresses and host lists: text to networks, lists to address sets, with a warning for a
//! network listed twice or inside another of the same list.

use super::{Problem, Text, Validator, problem};
use crate::config::text::{printable, trimmed};
use crate::config::{OneOrMany, Spanned};
use crate::diagnostic::Code;
use crate::policy::AddressSet;
use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `address/prefix` (split at the slash by the caller), parsed with std's address parser:
/// `ipnet`'s `FromStr` builds its alternatives as boxed closures, an allocation per address in
/// a 10 000-rule file.
fn cidr(addr: &str, prefix: &str) -> Option<IpNet> {
    if prefix.is_empty() || prefix.len() > 3 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let addr = parse_ip(addr)?;
    IpNet::new(addr, prefix.parse().ok()?).ok()
}

/// An IPv4 or IPv6 address, as std parses it.
fn parse_ip(text: &str) -> Option<IpAddr> {
    dotted_quad(text)
        .map(IpAddr::V4)
        .or_else(|| hex_groups(text).map(IpAddr::V6))
        .or_else(|| text.parse().ok())
}

/// An IPv6 address written as hexadecimal groups with at most one `::` (no embedded IPv4
/// address, no zone), read by hand in one pass for the reason [`dotted_quad`] is. `None` means
/// only "not in this form": the text then goes to std.
fn hex_groups(text: &str) -> Option<Ipv6Addr> {
    let b = text.as_bytes();
    let mut head = [0u16; 8];
    let mut n = 0;
    let mut at = 0;
    if !b.starts_with(b"::") {
        hex_run(b, &mut at, &mut head, &mut n)?;
        if at == b.len() {
            return (n == 8).then(|| Ipv6Addr::from(head));
        }
    }
    // At a `::`, which stands for one zero group or more.
    at += 2;
    let mut tail = [0u16; 8];
    let mut m = 0;
    if at < b.len() {
        if b[at] == b':' {
            return None;
        }
        hex_run(b, &mut at, &mut tail, &mut m)?;
    }
    if at != b.len() || n + m > 7 {
        return None;
    }
    head[8 - m..].copy_from_slice(&tail[..m]);
    Some(Ipv6Addr::from(head))
}

/// Groups of one to four hex digits separated by single colons, from `b[*at..]` into `out`
/// after `*n` earlier ones; stops at the end of `b` or with `*at` on a `::`. `None` on
/// anything else.
fn hex_run(b: &[u8], at: &mut usize, out: &mut [u16; 8], n: &mut usize) -> Option<()> {
    loop {
        let start = *at;
        let mut value = 0u16;
        while let Some(digit) = b.get(*at).and_then(|&c| char::from(c).to_digit(16)) {
            if *at - start == 4 {
                return None;
            }
            value = value << 4 | u16::try_from(digit).ok()?;
            *at += 1;
        }
        if *at == start || *n == 8 {
            return None;
        }
        out[*n] = value;
        *n += 1;
        match (b.get(*at), b.get(*at + 1)) {
            (None, _) | (Some(b':'), Some(b':')) => return Some(()),
            (Some(b':'), Some(_)) => *at += 1,
            _ => return None,
        }
    }
}

/// An IPv4 address in the canonical dotted-quad form (no leading zeros), read by hand: std's
/// parser tries both families through a general-purpose parser, which shows in the profile of
/// large policies. `None` means only "not in this form": the text then goes to std, so the
/// addresses accepted are exactly std's.
fn dotted_quad(text: &str) -> Option<Ipv4Addr> {
    let b = text.as_bytes();
    let mut octets = [0u8; 4];
    let mut i = 0;
    for (n, octet) in octets.iter_mut().enumerate() {
        if n > 0 {
            if b.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
        let start = i;
        let mut value = 0u16;
        while i < b.len() && i - start < 3 && b[i].is_ascii_digit() {
            value = value * 10 + u16::from(b[i] - b'0');
            i += 1;
        }
        if i == start || (i - start > 1 && b[start] == b'0') {
            return None;
        }
        *octet = u8::try_from(value).ok()?;
    }
    (i == b.len()).then(|| Ipv4Addr::from(octets))
}

/// An address or CIDR, checked.
fn host(text: &str) -> Result<IpNet, Problem> {
    let t = trimmed(text);
    // Found by hand: `contains` and `split_once` each set up a `memchr` for a 15-byte text.
    let net = if let Some(slash) = t.bytes().position(|c| c == b'/') {
        let net = cidr(&t[..slash], &t[slash + 1..]).ok_or_else(|| {
            problem(
                Code::InvalidAddress,
                format!("'{}' is not a valid CIDR", printable(t)),
                "write an address and a prefix length, e.g. 10.0.0.0/8 or fd00::/8",
            )
        })?;
        if net.trunc() != net {
            return Err(problem(
                Code::HostBitsSet,
                format!("'{t}' has bits set after the /{} prefix", net.prefix_len()),
                format!("did you mean {}?", net.trunc()),
            ));
        }
        net
    } else {
        let ip = parse_ip(t).ok_or_else(|| {
            let looks_like_name = !t.is_empty()
                && t.chars().any(|c| c.is_ascii_alphabetic())
                && t.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'));
            if looks_like_name {
                problem(
                    Code::HostnameNotAllowed,
                    format!("'{t}' is a host name; zt accepts addresses only"),
                    "a firewall rule must not change meaning when DNS does: give the address(es) it resolves to",
                )
            } else {
                problem(
                    Code::InvalidAddress,
                    format!("'{}' is not an IPv4 or IPv6 address or CIDR", printable(t)),
                    "e.g. 127.0.0.1, 10.0.0.0/8, ::1, fd00::/8",
                )
            }
        })?;
        IpNet::from(ip)
    };
    if let IpNet::V6(n) = net
        && let Some(v4) = n.network().to_ipv4_mapped()
    {
        return Err(problem(
            Code::MappedAddress,
            format!(
                "'{t}' is an IPv4-mapped IPv6 address; such traffic travels as IPv4 and this would never match"
            ),
            format!("write the IPv4 form: {v4}"),
        ));
    }
    Ok(net)
}

impl Validator<'_> {
    /// A host list, checked, with overlap warnings.
    fn address_set<S: Text>(
        &mut self,
        hosts: &Spanned<OneOrMany<Spanned<S>>>,
        field: &str,
    ) -> Option<AddressSet> {
        let items = hosts.value.as_slice();
        if items.is_empty() {
            self.error(
                problem(
                    Code::EmptyList,
                    "an empty host list matches nothing",
                    "omit the key to mean every address (IPv4 and IPv6), or list at least one",
                ),
                field,
                hosts.position,
            );
            return None;
        }
        if let [one] = items {
            // The common case needs neither the list nor the overlap check.
            return match host(&one.value) {
                Ok(n) => Some(AddressSet::from_nets([n])),
                Err(p) => {
                    self.error(p, field, one.position);
                    None
                }
            };
        }
        if let [x, y] = items {
            // Two (an address of each family, usually) need no list either.
            return match (host(&x.value), host(&y.value)) {
                (Ok(a), Ok(b)) => {
                    // An IPv4 and an IPv6 network (the usual pair) cannot overlap.
                    if matches!(
                        (a, b),
                        (IpNet::V4(_), IpNet::V4(_)) | (IpNet::V6(_), IpNet::V6(_))
                    ) {
                        self.overlaps(&mut [(a, x), (b, y)], field);
                    }
                    Some(AddressSet::from_nets([a, b]))
                }
                (a, b) => {
                    for (item, result) in [(x, a), (y, b)] {
                        if let Err(p) = result {
                            self.error(p, field, item.position);
                        }
                    }
                    None
                }
            };
        }
        let mut nets: Vec<(IpNet, &Spanned<S>)> = Vec::with_capacity(items.len());
        let mut ok = true;
        for item in items {
            match host(&item.value) {
                Ok(n) => nets.push((n, item)),
                Err(p) => {
                    ok = false;
                    self.error(p, field, item.position);
                }
            }
        }
        if !ok {
            return None;
        }
        self.overlaps(&mut nets, field);
        Some(AddressSet::from_nets(nets.iter().map(|(n, _)| *n)))
    }

    /// Warn about a network listed twice or inside another one of the same list.
    fn overlaps<S: Text>(&mut self, nets: &mut [(IpNet, &Spanned<S>)], field: &str) {
        if nets.len() < 2 {
            return;
        }
        // CIDRs are nested or disjoint: sorted by (family, network, prefix), every net inside
        // another comes right after its container or after another net inside it.
        nets.sort_by_key(|(n, _)| (n.network(), n.prefix_len()));
        let mut container: Option<(IpNet, &str)> = None;
        let mut found = Vec::new();
        for (net, item) in nets.iter() {
            match &container {
                Some((c, text)) if c.contains(net) => {
                    found.push((&*item.value, *text, item.position));
                }
                _ => container = Some((*net, &*item.value)),
            }
        }
        for (inner, outer, at) in found {
            let message = if inner == outer {
                format!("'{}' is listed twice", printable(inner))
            } else {
                format!(
                    "'{}' is already covered by '{}' in the same list",
                    printable(inner),
                    printable(outer)
                )
            };
            self.warn(
                problem(
                    Code::OverlappingHosts,
                    message,
                    "remove the redundant entry",
                ),
                field,
                at,
            );
        }
    }

    /// `host`/`hosts` of a mapping (`from` or `to`): any address when both are absent.
    pub(super) fn hosts_field<S: Text>(
        &mut self,
        host: Option<&Spanned<S>>,
        hosts: Option<&Spanned<OneOrMany<Spanned<S>>>>,
        [host_field, hosts_field]: [&str; 2],
    ) -> Option<AddressSet> {
        match (host, hosts) {
            (None, None) => Some(AddressSet::any()),
            (Some(_), Some(h)) => {
                self.error(
                    problem(
                        Code::ConflictingFields,
                        format!("both {host_field} and {hosts_field} are given"),
                        format!("use {hosts_field} with a list"),
                    ),
                    hosts_field,
                    h.position,
                );
                None
            }
            (Some(h), None) => {
                let one = Spanned::new(OneOrMany::One(h.clone()), h.position);
                self.address_set(&one, host_field)
            }
            (None, Some(h)) => self.address_set(h, hosts_field),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{cidr, dotted_quad, hex_groups, parse_ip};
    use ipnet::IpNet;
    use proptest::prelude::*;

    /// `address/prefix` split at its slash, as `host` splits it, then read by `cidr`.
    fn parse_cidr(text: &str) -> Option<IpNet> {
        text.split_once('/')
            .and_then(|(addr, prefix)| cidr(addr, prefix))
    }

    proptest! {
        /// Whatever the hand-written IPv4 reader accepts, std accepts as the same address; and
        /// the address parser as a whole agrees with std everywhere.
        #[test]
        fn the_dotted_quad_reader_agrees_with_std(text in "[0-9.]{0,17}|[0-9a-f:.]{0,12}") {
            let std_ip = text.parse::<std::net::IpAddr>().ok();
            if let Some(v4) = dotted_quad(&text) {
                prop_assert_eq!(std_ip, Some(std::net::IpAddr::V4(v4)));
            }
            prop_assert_eq!(parse_ip(&text), std_ip);
        }
    }

    proptest! {
        /// The same for the hand-written IPv6 reader, on texts made of hex groups, colons and
        /// the occasional dot.
        #[test]
        fn the_hex_group_reader_agrees_with_std(
            groups in prop::collection::vec("[0-9a-fA-F]{0,5}", 0..10),
            gaps in prop::collection::vec(prop::sample::select(vec![":", "::", ":::", "."]), 0..10),
        ) {
            let mut text = String::new();
            for (i, g) in groups.iter().enumerate() {
                if i > 0 {
                    text += gaps.get(i).copied().unwrap_or(":");
                }
                text += g;
            }
            let std_ip = text.parse::<std::net::IpAddr>().ok();
            if let Some(v6) = hex_groups(&text) {
                prop_assert_eq!(std_ip, Some(std::net::IpAddr::V6(v6)), "{}", text);
            }
            prop_assert_eq!(parse_ip(&text), std_ip, "{}", text);
        }
    }

    #[test]
    fn the_hex_group_reader_takes_plain_ipv6_and_leaves_the_rest_to_std() {
        for t in [
            "::",
            "::1",
            "fd00::",
            "fd00:1:2::",
            "2001:DB8::9:a",
            "1:2:3:4:5:6:7:8",
            "1::8",
            "1:2:3:4:5:6:7::",
        ] {
            assert_eq!(
                hex_groups(t).map(std::net::IpAddr::V6),
                t.parse().ok(),
                "{t}"
            );
        }
        for t in [
            "::ffff:1.2.3.4",
            "fe80::1%eth0",
            "1:2:3:4:5:6:7:8:9",
            "1::2::3",
            ":1::",
            "12345::",
            "1:2:3:4:5:6:7:8::",
            "",
        ] {
            assert_eq!(hex_groups(t), None, "{t}");
        }
    }

    #[test]
    fn the_dotted_quad_reader_takes_canonical_addresses_and_leaves_the_rest_to_std() {
        for t in ["0.0.0.0", "10.0.0.1", "255.255.255.255", "192.168.100.9"] {
            assert_eq!(dotted_quad(t), t.parse().ok(), "{t}");
        }
        for t in [
            "256.0.0.1",
            "01.0.0.1",
            "1.2.3",
            "1.2.3.4.",
            "1.2.3.4 ",
            "1..2.3",
            "1000.0.0.1",
            "::1",
        ] {
            assert_eq!(dotted_quad(t), None, "{t}");
        }
    }

    /// The std-based CIDR parser accepts what `ipnet`'s does, except IPv4 octets with leading
    /// zeros: std refuses them (some tools read `010` as octal 8), as it does for a plain
    /// address, so `010.0.0.0/8` and `010.0.0.1` are refused alike.
    #[test]
    fn cidr_parsing_agrees_with_ipnet_but_refuses_leading_zero_octets() {
        for t in ["010.0.0.0/8", "10.00.0.0/16"] {
            assert!(t.parse::<IpNet>().is_ok() && parse_cidr(t).is_none(), "{t}");
            let plain = t.split('/').next().unwrap_or_default();
            assert!(plain.parse::<std::net::IpAddr>().is_err(), "{plain}");
        }
        let inputs = [
            "10.0.0.0/8",
            "10.0.0.1/32",
            "0.0.0.0/0",
            "fd00::/8",
            "::/0",
            "::1/128",
            "::ffff:1.2.3.4/96",
            "10.0.0.0/33",
            "fd00::/129",
            "10.0.0.0/",
            "/8",
            "10.0.0.0/+8",
            "10.0.0.0/-8",
            "10.0.0.0/08",
            "10.0.0.0/0008",
            "10.0.0.0/8/8",
            "10.0.0.0 /8",
            "10.0.0.0/ 8",
            "10.0.0/8",
            "fe80::1%eth0/64",
            "1.2.3.4.5/8",
            "[::1]/128",
            "10.0.0.0/255",
            "10.0.0.0/256",
        ];
        for t in inputs {
            assert_eq!(parse_cidr(t), t.parse::<IpNet>().ok(), "{t}");
        }
    }
}
