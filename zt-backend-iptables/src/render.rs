//! Pure rendering: a [`Ruleset`] as the rules of zt's chains, per family.
//!
//! Every entry becomes rules in `ZT-OUTPUT` (egress hook), `ZT-INPUT` (ingress hook) or both,
//! in ruleset order, so iptables' first match is the ruleset's first match:
//!
//! * a rule's address set is split by family; a family with no address (`Only([])`) gets no
//!   rule, and each network becomes its own rule;
//! * `both` becomes a TCP and a UDP rule; `icmp` is `-p icmp` (IPv4) or `-p ipv6-icmp` (IPv6);
//!   `any` has no `-p`;
//! * one port or range is `-m tcp --dport A[:B]`; several become `-m multiport --dports`
//!   rules of at most 15 ports each (a range counts twice);
//! * `reject` is `REJECT --reject-with tcp-reset` for TCP and ICMP/ICMPv6 port unreachable
//!   otherwise — a rule for any protocol becomes a TCP rule followed by one for the rest;
//! * a logged entry becomes a rate-limited `LOG` rule with the same match, then its verdict;
//! * every rule carries `-m comment --comment <entry name>`.
//!
//! The pieces a rule splits into are disjoint (networks are aggregated, port groups and
//! protocols do not overlap), so splitting changes neither which packets match nor which
//! entry decides them. Rules are written exactly as `iptables-save` prints them back (match
//! order, `/32` masks, `RELATED,ESTABLISHED`, `10/sec`), so what zt renders and what the kernel
//! holds compare token by token.
//!
//! There are no helper chains and no ipsets: a policy rule stays a handful of adjacent rules a
//! reader can find by its comment, and an ipset would live outside the one `iptables-restore`
//! transaction that makes an apply atomic.

use crate::NAME;
use crate::owned::{ChainPrefix, JUMP_COMMENT, Jump, Owned, Rule};
use zt_core::policy::{
    AddressSetParts, LogRate, LogRateParts, PortRangeParts, RateUnit, RuleMatchParts,
};
use zt_core::ruleset::{EntryParts, LogSpecParts};
use zt_core::{
    Addresses, Direction, Entry, Error, Family, Hook, Identity, Matcher, PortSet, Protocol,
    Ruleset, Verdict,
};

/// The desired state of both families.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rendered {
    /// IPv4.
    pub v4: Owned,
    /// IPv6.
    pub v6: Owned,
}

impl Rendered {
    /// One family's state.
    pub fn family(&self, family: Family) -> &Owned {
        match family {
            Family::V4 => &self.v4,
            Family::V6 => &self.v6,
        }
    }
}

/// At most this many ports in one `multiport` match (a range counts as two).
const MULTIPORT_SLOTS: usize = 15;

/// Render `ruleset` into zt's chains, reached by one jump at the top of `OUTPUT` and `INPUT`.
pub fn render(ruleset: &Ruleset, prefix: &ChainPrefix) -> Result<Rendered, Error> {
    Ok(Rendered {
        v4: render_family(ruleset, prefix, Family::V4)?,
        v6: render_family(ruleset, prefix, Family::V6)?,
    })
}

fn render_family(ruleset: &Ruleset, prefix: &ChainPrefix, family: Family) -> Result<Owned, Error> {
    let (output, input) = (prefix.output(), prefix.input());
    let mut egress = Vec::new();
    let mut ingress = Vec::new();
    for entry in ruleset.entries() {
        if matches!(entry.hook(), Hook::Egress | Hook::Both) {
            entry_rules(entry, family, Direction::Egress, &mut egress)?;
        }
        if matches!(entry.hook(), Hook::Ingress | Hook::Both) {
            entry_rules(entry, family, Direction::Ingress, &mut ingress)?;
        }
    }
    let jump = |builtin: &str, chain: &str| Jump {
        chain: builtin.to_owned(),
        position: 1,
        rule: Rule::new(strings(&[
            "-m",
            "comment",
            "--comment",
            JUMP_COMMENT,
            "-j",
            chain,
        ])),
    };
    Ok(Owned {
        jumps: vec![jump("INPUT", &input), jump("OUTPUT", &output)],
        chains: [(input, ingress), (output, egress)].into_iter().collect(),
    })
}

fn strings(tokens: &[&str]) -> Vec<String> {
    tokens.iter().map(|t| (*t).to_owned()).collect()
}

/// What one rule matches, before the comment and the target.
#[derive(Clone, Debug, Default)]
struct Piece {
    /// `-s NET` or `-d NET`.
    address: Option<(&'static str, String)>,
    /// `-i lo`.
    loopback: bool,
    /// `-p PROTO`.
    protocol: Option<&'static str>,
    /// Match modules, in order.
    matches: Vec<String>,
}

impl Piece {
    fn tokens(&self) -> Vec<String> {
        let mut t = Vec::with_capacity(8 + self.matches.len());
        if let Some((flag, net)) = &self.address {
            t.push((*flag).to_owned());
            t.push(net.clone());
        }
        if self.loopback {
            t.extend(strings(&["-i", "lo"]));
        }
        if let Some(p) = self.protocol {
            t.extend(strings(&["-p", p]));
        }
        t.extend(self.matches.iter().cloned());
        t
    }
}

fn unsupported(name: &str, reason: &str) -> Error {
    Error::Unsupported {
        backend: NAME,
        rule: name.to_owned(),
        reason: reason.to_owned(),
    }
}

/// The rules of one entry on one hook, appended to `out`.
fn entry_rules(
    entry: &Entry,
    family: Family,
    direction: Direction,
    out: &mut Vec<Rule>,
) -> Result<(), Error> {
    let EntryParts {
        name,
        // zt's own entries are rendered like policy rules.
        origin: _,
        // The caller renders the entry on each hook it applies to.
        hook: _,
        matcher,
        log,
        verdict,
    } = entry.parts();
    for piece in pieces(name, matcher, family, direction)? {
        let base = piece.tokens();
        let finish = |mut args: Vec<String>, target: &[&str]| {
            args.extend(strings(&["-m", "comment", "--comment", name]));
            args.push("-j".to_owned());
            args.extend(strings(target));
            Rule::new(args)
        };
        if let Some(log) = log {
            let LogSpecParts { prefix, rate } = log.parts();
            let mut args = base.clone();
            args.extend(strings(&["-m", "limit", "--limit", &limit(rate)]));
            out.push(finish(
                args,
                &["LOG", "--log-prefix", prefix.as_str(), "--log-uid"],
            ));
        }
        match verdict {
            None => {}
            Some(Verdict::Accept) => out.push(finish(base, &["ACCEPT"])),
            Some(Verdict::Drop) => out.push(finish(base, &["DROP"])),
            Some(Verdict::Reject) => {
                let unreachable = match family {
                    Family::V4 => "icmp-port-unreachable",
                    Family::V6 => "icmp6-port-unreachable",
                };
                if piece.protocol.is_none() {
                    let mut tcp = piece.clone();
                    tcp.protocol = Some("tcp");
                    out.push(finish(
                        tcp.tokens(),
                        &["REJECT", "--reject-with", "tcp-reset"],
                    ));
                }
                let with = if piece.protocol == Some("tcp") {
                    "tcp-reset"
                } else {
                    unreachable
                };
                out.push(finish(base, &["REJECT", "--reject-with", with]));
            }
        }
    }
    Ok(())
}

/// The disjoint matches an entry (named `name`) splits into on one hook and family.
fn pieces(
    name: &str,
    matcher: &Matcher,
    family: Family,
    direction: Direction,
) -> Result<Vec<Piece>, Error> {
    let conntrack = |states: &str| strings(&["-m", "conntrack", "--ctstate", states]);
    Ok(match matcher {
        Matcher::CtInvalid => vec![Piece {
            matches: conntrack("INVALID"),
            ..Piece::default()
        }],
        Matcher::CtEstablished => vec![Piece {
            matches: conntrack("RELATED,ESTABLISHED"),
            ..Piece::default()
        }],
        // Only arriving packets have an input interface.
        Matcher::Loopback if direction == Direction::Ingress => vec![Piece {
            loopback: true,
            ..Piece::default()
        }],
        Matcher::Loopback => Vec::new(),
        Matcher::Icmpv6Link if family == Family::V6 => zt_core::ruleset::ICMPV6_LINK_TYPES
            .iter()
            .map(|t| Piece {
                protocol: Some("ipv6-icmp"),
                matches: strings(&["-m", "icmp6", "--icmpv6-type", &t.to_string()]),
                ..Piece::default()
            })
            .collect(),
        Matcher::Icmpv6Link => Vec::new(),
        Matcher::SshReplies(ports) => port_matches("tcp", "sport", ports)
            .into_iter()
            .map(|mut matches| {
                matches.extend(conntrack("ESTABLISHED"));
                Piece {
                    protocol: Some("tcp"),
                    matches,
                    ..Piece::default()
                }
            })
            .collect(),
        // Policy rules, and zt's entries a rule could express (the SSH failsafe, the log and
        // the default).
        Matcher::Rule(m) => {
            let RuleMatchParts {
                identity,
                peers,
                ports,
                protocol,
            } = m.parts();
            let identity = match (identity, direction) {
                (Identity::Any, _) => Vec::new(),
                (_, Direction::Ingress) => {
                    return Err(unsupported(
                        name,
                        "netfilter cannot see the receiving process of inbound traffic; an ingress rule matches any identity",
                    ));
                }
                (Identity::User { uid, name: _ }, _) => {
                    strings(&["-m", "owner", "--uid-owner", &uid.to_string()])
                }
                (Identity::Group { gid, name: _ }, _) => {
                    strings(&["-m", "owner", "--gid-owner", &gid.to_string()])
                }
                (Identity::Cgroup(path), _) => {
                    strings(&["-m", "cgroup", "--path", &format!("/{path}")])
                }
            };
            let flag = match direction {
                Direction::Egress => "-d",
                Direction::Ingress => "-s",
            };
            let AddressSetParts { v4, v6 } = peers.parts();
            let nets: Vec<Option<String>> = match family {
                Family::V4 => networks(v4),
                Family::V6 => networks(v6),
            };
            let protocols: &[Option<&'static str>] = match (protocol, family) {
                (Protocol::Tcp, _) => &[Some("tcp")],
                (Protocol::Udp, _) => &[Some("udp")],
                (Protocol::Both, _) => &[Some("tcp"), Some("udp")],
                (Protocol::Icmp, Family::V4) => &[Some("icmp")],
                (Protocol::Icmp, Family::V6) => &[Some("ipv6-icmp")],
                (Protocol::Any, _) => &[None],
            };
            if !ports.is_any() && !protocol.has_ports() {
                return Err(unsupported(
                    name,
                    "ports are only meaningful with tcp, udp or both",
                ));
            }
            let mut out = Vec::new();
            for net in &nets {
                for protocol in protocols {
                    let groups = match protocol {
                        Some(p @ ("tcp" | "udp")) => port_matches(p, "dport", ports),
                        _ => vec![Vec::new()],
                    };
                    for ports in groups {
                        let mut matches = identity.clone();
                        matches.extend(ports);
                        out.push(Piece {
                            address: net.as_ref().map(|n| (flag, n.clone())),
                            loopback: false,
                            protocol: *protocol,
                            matches,
                        });
                    }
                }
            }
            out
        }
    })
}

/// `None` for every address of the family, each network otherwise (none at all: no rule).
fn networks<N: std::fmt::Display>(addresses: &Addresses<N>) -> Vec<Option<String>> {
    match addresses {
        Addresses::All => vec![None],
        Addresses::Only(nets) => nets.iter().map(|n| Some(n.to_string())).collect(),
    }
}

/// Port matches for `protocol` (`tcp`/`udp`), one per rule: none for any port, `-m tcp
/// --dport A[:B]` for one range, `-m multiport --dports …` groups of at most 15 ports otherwise.
fn port_matches(protocol: &str, which: &str, ports: &PortSet) -> Vec<Vec<String>> {
    let Some(ranges) = ports.ranges() else {
        return vec![Vec::new()];
    };
    let text = |r: &zt_core::PortRange| {
        let PortRangeParts { first, last } = r.parts();
        if first == last {
            first.to_string()
        } else {
            format!("{first}:{last}")
        }
    };
    if let [only] = ranges {
        return vec![strings(&[
            "-m",
            protocol,
            &format!("--{which}"),
            &text(only),
        ])];
    }
    let mut groups: Vec<Vec<String>> = Vec::new();
    let mut current: Vec<String> = Vec::new();
    let mut slots = 0;
    for r in ranges {
        let need = if r.is_single() { 1 } else { 2 };
        if slots + need > MULTIPORT_SLOTS {
            groups.push(std::mem::take(&mut current));
            slots = 0;
        }
        current.push(text(r));
        slots += need;
    }
    groups.push(current);
    groups
        .into_iter()
        .map(|g| strings(&["-m", "multiport", &format!("--{which}s"), &g.join(",")]))
        .collect()
}

/// `XT_LIMIT_SCALE`: the limit match counts time in 1/10 000 s.
const LIMIT_SCALE: u32 = 10_000;

/// Units as libxt_limit prints them, longest first, with their length in limit ticks.
const LIMIT_UNITS: [(&str, u32); 4] = [
    ("day", LIMIT_SCALE * 24 * 60 * 60),
    ("hour", LIMIT_SCALE * 60 * 60),
    ("min", LIMIT_SCALE * 60),
    ("sec", LIMIT_SCALE),
];

/// The kernel's average interval between log lines, in limit ticks, as libxt_limit parses it.
fn limit_period(rate: LogRate) -> u32 {
    let LogRateParts { count, unit } = rate.parts();
    let per = match unit {
        RateUnit::Second => 1,
        RateUnit::Minute => 60,
        RateUnit::Hour => 3600,
        RateUnit::Day => 86_400,
    };
    (LIMIT_SCALE * per) / count.max(1)
}

/// A rate as `iptables-save` prints it back (libxt_limit's `print_rate`): `60/minute` is
/// `1/sec`, `10/second` is `10/sec`.
pub fn limit(rate: LogRate) -> String {
    let period = limit_period(rate).max(1);
    let mut chosen = 0;
    for (i, (_, mult)) in LIMIT_UNITS.iter().enumerate().skip(1) {
        if period > *mult || mult / period < mult % period {
            break;
        }
        chosen = i;
    }
    let (name, mult) = LIMIT_UNITS[chosen];
    format!("{}/{name}", mult / period)
}

/// Whether the legacy `xt_limit` match refuses this rate: it multiplies the interval by the
/// burst (5) in 32 bits, which overflows for `1/day`.
pub fn overflows_legacy_limit(rate: LogRate) -> bool {
    limit_period(rate).checked_mul(5).is_none()
}

#[cfg(test)]
mod tests {
    use super::*;
    use zt_core::{Policy, PortRange, RuleBuilder, StaticResolver};

    fn rate(count: u32, unit: RateUnit) -> LogRate {
        let unit = match unit {
            RateUnit::Second => "second",
            RateUnit::Minute => "minute",
            RateUnit::Hour => "hour",
            RateUnit::Day => "day",
        };
        LogRate::parse(&format!("{count}/{unit}")).unwrap()
    }

    #[test]
    fn rates_are_written_as_iptables_save_prints_them() {
        assert_eq!(limit(rate(10, RateUnit::Second)), "10/sec");
        assert_eq!(limit(rate(60, RateUnit::Minute)), "1/sec");
        assert_eq!(limit(rate(13, RateUnit::Minute)), "13/min");
        assert_eq!(limit(rate(3, RateUnit::Hour)), "3/hour");
        assert_eq!(limit(rate(7, RateUnit::Day)), "7/day");
        assert_eq!(limit(rate(9999, RateUnit::Day)), "9999/day");
        assert_eq!(limit(rate(10_000, RateUnit::Second)), "10000/sec");
    }

    #[test]
    fn every_printed_rate_prints_back_unchanged() {
        let units = [
            RateUnit::Second,
            RateUnit::Minute,
            RateUnit::Hour,
            RateUnit::Day,
        ];
        for unit in units {
            for count in 1..=10_000 {
                let printed = limit(rate(count, unit));
                let reparsed = LogRate::parse(&printed).unwrap();
                assert_eq!(limit(reparsed), printed, "{count} per {unit:?}");
            }
        }
    }

    #[test]
    fn only_one_per_day_overflows_the_legacy_limit_match() {
        assert!(overflows_legacy_limit(rate(1, RateUnit::Day)));
        assert!(!overflows_legacy_limit(rate(2, RateUnit::Day)));
        assert!(!overflows_legacy_limit(rate(1, RateUnit::Hour)));
    }

    #[test]
    fn multiport_groups_hold_at_most_fifteen_ports() {
        let ranges = (1..=20u16)
            .map(|i| PortRange::single(i * 10))
            .chain([PortRange::new(1000, 1010)]);
        let set = PortSet::from_ranges(ranges.flatten()).unwrap();
        let groups = port_matches("tcp", "dport", &set);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0][3].split(',').count(), 15);
        assert_eq!(groups[1][3], "160,170,180,190,200,1000:1010");
        let one = PortSet::from_ranges(PortRange::new(1000, 2000)).unwrap();
        assert_eq!(
            port_matches("udp", "dport", &one),
            vec![strings(&["-m", "udp", "--dport", "1000:2000"])]
        );
        assert_eq!(
            port_matches("tcp", "dport", &PortSet::any()),
            vec![Vec::<String>::new()]
        );
    }

    fn rules_of(builder: RuleBuilder, family: Family) -> Vec<String> {
        let policy = Policy::builder()
            .rule(builder)
            .build(&StaticResolver::new())
            .unwrap()
            .policy;
        let rendered = render(&policy.ruleset(), &ChainPrefix::default()).unwrap();
        let owned = rendered.family(family);
        owned
            .chains
            .values()
            .flatten()
            .filter(|r| r.comment() == Some("r"))
            .map(|r| r.canonical())
            .collect()
    }

    #[test]
    fn reject_of_any_protocol_resets_tcp_before_refusing_the_rest() {
        let rules = rules_of(
            RuleBuilder::egress("r")
                .uid(7)
                .to_host("10.0.0.0/8")
                .reject(),
            Family::V4,
        );
        assert_eq!(
            rules,
            vec![
                "-d 10.0.0.0/8 -p tcp -m owner --uid-owner 7 -j REJECT --reject-with tcp-reset",
                "-d 10.0.0.0/8 -m owner --uid-owner 7 -j REJECT --reject-with icmp-port-unreachable",
            ]
        );
        assert!(
            rules_of(
                RuleBuilder::egress("r")
                    .uid(7)
                    .to_host("10.0.0.0/8")
                    .reject(),
                Family::V6
            )
            .is_empty(),
            "an IPv4-only rule has no IPv6 rule"
        );
    }

    #[test]
    fn both_protocols_and_several_networks_become_one_rule_each() {
        let rules = rules_of(
            RuleBuilder::ingress("r")
                .from_host("2001:db8::/32")
                .from_host("fd00::/8")
                .port(443)
                .port(8443)
                .protocol(Protocol::Both)
                .reject()
                .log(true),
            Family::V6,
        );
        assert_eq!(rules.len(), 8, "{rules:#?}");
        assert_eq!(
            rules[0],
            "-s 2001:db8::/32 -p tcp -m multiport --dports 443,8443 -m limit --limit 10/sec -j LOG --log-prefix \"ZT-BLOCKED: \" --log-uid"
        );
        assert_eq!(
            rules[1],
            "-s 2001:db8::/32 -p tcp -m multiport --dports 443,8443 -j REJECT --reject-with tcp-reset"
        );
        assert_eq!(
            rules[3],
            "-s 2001:db8::/32 -p udp -m multiport --dports 443,8443 -j REJECT --reject-with icmp6-port-unreachable"
        );
        assert!(rules[7].starts_with("-s fd00::/8 -p udp"));
    }

    #[test]
    fn cgroups_groups_and_icmp_render_per_family() {
        assert_eq!(
            rules_of(
                RuleBuilder::egress("r")
                    .cgroup("system.slice/nginx.service")
                    .allow(),
                Family::V4
            ),
            vec!["-m cgroup --path /system.slice/nginx.service -j ACCEPT"]
        );
        assert_eq!(
            rules_of(
                RuleBuilder::egress("r")
                    .gid(50)
                    .protocol(Protocol::Icmp)
                    .deny(),
                Family::V6
            ),
            vec!["-p ipv6-icmp -m owner --gid-owner 50 -j DROP"]
        );
    }
}
