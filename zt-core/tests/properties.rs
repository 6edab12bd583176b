//! Properties of the pipeline over generated policies and probes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic on a broken fixture

mod common;
use common::cases;

use proptest::prelude::*;
use std::net::IpAddr;
use std::ops::RangeInclusive;
use zt_core::ruleset::{Origin, names};
use zt_core::{
    Action, AddressSetParts, Addresses, Code, CtState, DefaultPolicy, Direction, Entry, Identity,
    Loaded, Matcher, Policy, PolicyBuilder, Probe, ProbeProtocol, Protocol, RuleBuilder,
    RuleMatchParts, Ruleset, Settings, StaticResolver, Verdict,
};

fn resolver() -> StaticResolver {
    StaticResolver::new()
        .user("web-user", 1001)
        .user("postgres", 1002)
        .group("web", 1001)
}

const HOSTS: &[&str] = &[
    "127.0.0.1",
    "10.0.0.0/8",
    "10.1.0.0/16",
    "192.0.2.0/24",
    "0.0.0.0/0",
    "::1",
    "fd00::/8",
    "2001:db8::/32",
    "::/0",
];
const PORTS: &[u16] = &[22, 53, 80, 443, 5432, 6379, 8080, 40000, 65535];
const CGROUPS: &[&str] = &["system.slice", "system.slice/nginx.service", "user.slice"];

#[derive(Clone, Debug)]
enum Sender {
    Any,
    User(&'static str),
    Uid(u32),
    Group(&'static str),
    Gid(u32),
    Cgroup(&'static str),
}

fn sender() -> impl Strategy<Value = Sender> {
    prop_oneof![
        Just(Sender::Any),
        prop::sample::select(vec!["web-user", "postgres"]).prop_map(Sender::User),
        prop::sample::select(vec![0u32, 1, 1001, 1003]).prop_map(Sender::Uid),
        Just(Sender::Group("web")),
        prop::sample::select(vec![0u32, 1001, 2000]).prop_map(Sender::Gid),
        prop::sample::select(CGROUPS.to_vec()).prop_map(Sender::Cgroup),
    ]
}

/// A rule that is valid by construction (the generator is checked by `build` succeeding).
fn rule(index: usize, priorities: RangeInclusive<i32>) -> impl Strategy<Value = RuleBuilder> {
    let hosts = prop::sample::subsequence(HOSTS.to_vec(), 0..=3);
    let ports = prop::collection::vec(
        prop_oneof![
            prop::sample::select(PORTS.to_vec()).prop_map(|p| (p, p)),
            Just((8000u16, 8100u16)),
            Just((1u16, 1024u16)),
            // Ranges across and far above the shadow search's port bands.
            Just((4000u16, 9000u16)),
            Just((30000u16, 30010u16))
        ],
        0..=2,
    );
    let protocol = prop::sample::select(vec![
        Protocol::Tcp,
        Protocol::Udp,
        Protocol::Both,
        Protocol::Icmp,
        Protocol::Any,
    ]);
    let action = prop::sample::select(vec![Action::Allow, Action::Deny, Action::Reject]);
    (
        any::<bool>(),
        sender(),
        hosts,
        ports,
        protocol,
        action,
        priorities,
        any::<bool>(),
    )
        .prop_map(
            move |(ingress, sender, hosts, ports, protocol, action, priority, log)| {
                let name = format!("rule-{index}");
                let mut b = if ingress {
                    RuleBuilder::ingress(&name)
                } else {
                    let b = RuleBuilder::egress(&name);
                    match sender {
                        Sender::Any => b.any_user(),
                        Sender::User(u) => b.user(u),
                        Sender::Uid(u) => b.uid(u),
                        Sender::Group(g) => b.group(g),
                        Sender::Gid(g) => b.gid(g),
                        Sender::Cgroup(c) => b.cgroup(c),
                    }
                };
                for h in hosts {
                    b = if ingress {
                        b.from_host(h)
                    } else {
                        b.to_host(h)
                    };
                }
                // Ports only with a protocol that has them.
                let protocol = if ports.is_empty() || protocol.has_ports() {
                    protocol
                } else {
                    Protocol::Tcp
                };
                for (first, last) in ports {
                    b = if first == last {
                        b.port(first)
                    } else {
                        b.port_range(first, last)
                    };
                }
                b.protocol(protocol)
                    .action(action)
                    .priority(priority)
                    .log(log)
            },
        )
}

fn policy() -> impl Strategy<Value = Loaded> {
    policy_with(|_| -2..=2)
}

/// Policies whose rule `i` has a priority drawn from `priorities(i)`.
fn policy_with(
    priorities: impl Fn(usize) -> RangeInclusive<i32> + Clone + 'static,
) -> impl Strategy<Value = Loaded> {
    let rules = (0usize..12)
        .prop_flat_map(move |n| (0..n).map(|i| rule(i, priorities(i))).collect::<Vec<_>>());
    let settings = (
        prop::sample::select(vec![DefaultPolicy::Deny, DefaultPolicy::Allow]),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        prop::sample::subsequence(vec![22u16, 2222], 1..=2),
    );
    (settings, rules).prop_map(|((default, log, ssh, established, ssh_ports), rules)| {
        let builder = rules.into_iter().fold(
            PolicyBuilder::new()
                .default_policy(default)
                .log_blocked(log)
                .log_prefix("ZT-TEST: ")
                .log_rate("5/minute")
                .preserve_ssh(ssh)
                .ssh_ports(ssh_ports)
                .preserve_established(established),
            PolicyBuilder::rule,
        );
        builder
            .build(&resolver())
            .unwrap_or_else(|e| panic!("the generator made an invalid policy:\n{e}"))
    })
}

const ADDRS_V4: &[&str] = &[
    "127.0.0.1",
    "10.1.2.3",
    "10.200.0.1",
    "192.0.2.9",
    "198.51.100.1",
];
const ADDRS_V6: &[&str] = &["::1", "fd00::5", "2001:db8::9", "2001:db9::1"];

fn probe() -> impl Strategy<Value = Probe> {
    let ct = prop::sample::select(vec![
        CtState::New,
        CtState::Established,
        CtState::Related,
        CtState::Invalid,
        CtState::Untracked,
    ]);
    let protocol = prop::sample::select(vec![
        ProbeProtocol::Tcp,
        ProbeProtocol::Udp,
        ProbeProtocol::Icmp,
        ProbeProtocol::Other(132),
    ]);
    let family = any::<bool>().prop_flat_map(|v6| {
        let pool = if v6 { ADDRS_V6 } else { ADDRS_V4 };
        (
            prop::sample::select(pool.to_vec()),
            prop::sample::select(pool.to_vec()),
        )
    });
    let port = prop::option::of(prop::sample::select(vec![
        22u16, 53, 443, 2222, 6379, 8050, 40000,
    ]));
    (
        any::<bool>(),
        prop::option::of(prop::sample::select(vec![0u32, 1, 1001, 1002, 1003])),
        prop::option::of(prop::sample::select(vec![0u32, 1001, 2000])),
        prop::option::of(prop::sample::select(vec![
            "system.slice/nginx.service",
            "system.slice/nginx.service/worker",
            "user.slice/user-1000.slice",
        ])),
        protocol,
        family,
        (port.clone(), port),
        prop::option::of(prop::sample::select(vec![8u8, 128, 135, 136, 143])),
        ct,
        any::<bool>(),
    )
        .prop_map(
            |(ingress, uid, gid, cgroup, protocol, (src, dst), (sport, dport), icmp, ct, lo)| {
                let ip = |s: &str| s.parse::<IpAddr>().unwrap_or(IpAddr::from([0, 0, 0, 0]));
                let ports = matches!(protocol, ProbeProtocol::Tcp | ProbeProtocol::Udp);
                Probe {
                    direction: if ingress {
                        Direction::Ingress
                    } else {
                        Direction::Egress
                    },
                    uid: if ingress { None } else { uid },
                    gid: if ingress { None } else { gid },
                    cgroup: if ingress {
                        None
                    } else {
                        cgroup.map(str::to_owned)
                    },
                    protocol,
                    src: ip(src),
                    dst: ip(dst),
                    src_port: if ports { sport } else { None },
                    dst_port: if ports { dport } else { None },
                    icmp_type: if protocol == ProbeProtocol::Icmp {
                        icmp
                    } else {
                        None
                    },
                    ct_state: ct,
                    loopback: ingress && lo,
                }
            },
        )
}

/// An independent statement of when an entry matches a probe, written from the documented
/// semantics rather than from the evaluator's code.
fn spec_matches(settings: &Settings, entry: &Entry, p: &Probe) -> bool {
    if !entry.hook().applies(p.direction) {
        return false;
    }
    // zt's entries that hold a rule match, stated from the documentation rather than from it.
    match entry.name() {
        names::SSH => {
            return p.protocol == ProbeProtocol::Tcp
                && p.dst_port.is_some_and(|d| {
                    let ports = settings.ssh_ports().ranges().unwrap_or(&[]);
                    ports.iter().any(|r| r.contains(d))
                });
        }
        names::LOG | names::DEFAULT => return true,
        _ => {}
    }
    let v6 = p.dst.is_ipv6();
    match entry.matcher() {
        Matcher::CtInvalid => p.ct_state == CtState::Invalid,
        Matcher::CtEstablished => {
            p.ct_state == CtState::Established || p.ct_state == CtState::Related
        }
        Matcher::Loopback => p.loopback,
        Matcher::Icmpv6Link => {
            v6 && p.protocol == ProbeProtocol::Icmp && matches!(p.icmp_type, Some(130..=136 | 143))
        }
        Matcher::SshReplies(ports) => {
            p.protocol == ProbeProtocol::Tcp
                && p.ct_state == CtState::Established
                && p.src_port
                    .is_some_and(|s| ports.ranges().unwrap_or(&[]).iter().any(|r| r.contains(s)))
        }
        Matcher::Rule(m) => {
            let RuleMatchParts {
                identity,
                peers,
                ports,
                protocol,
            } = m.parts();
            let who = match identity {
                Identity::Any => true,
                Identity::User { uid, name: _ } => p.uid == Some(*uid),
                Identity::Group { gid, name: _ } => p.gid == Some(*gid),
                Identity::Cgroup(path) => p.cgroup.as_deref().is_some_and(|c| {
                    c == path.as_str() || c.starts_with(&format!("{}/", path.as_str()))
                }),
            };
            let peer = if p.direction == Direction::Egress {
                p.dst
            } else {
                p.src
            };
            let AddressSetParts { v4, v6 } = peers.parts();
            let addr = match peer {
                IpAddr::V4(a) => match v4 {
                    Addresses::All => true,
                    Addresses::Only(nets) => nets.iter().any(|n| n.contains(&a)),
                },
                IpAddr::V6(a) => match v6 {
                    Addresses::All => true,
                    Addresses::Only(nets) => nets.iter().any(|n| n.contains(&a)),
                },
            };
            let proto = match protocol {
                Protocol::Any => true,
                Protocol::Tcp => p.protocol == ProbeProtocol::Tcp,
                Protocol::Udp => p.protocol == ProbeProtocol::Udp,
                Protocol::Both => matches!(p.protocol, ProbeProtocol::Tcp | ProbeProtocol::Udp),
                Protocol::Icmp => p.protocol == ProbeProtocol::Icmp,
            };
            let port = match ports.ranges() {
                None => true,
                Some(r) => p.dst_port.is_some_and(|d| r.iter().any(|x| x.contains(d))),
            };
            who && addr && proto && port
        }
    }
}

/// Every shadowed rule with what hides it (a rule's name, or "ssh" for the failsafe), found by
/// comparing each rule with every entry before it: the quadratic search the validator's index
/// must agree with.
fn shadowed_by_brute_force(policy: &Policy) -> Vec<(String, String)> {
    let s = policy.settings();
    let rules = policy.rules();
    let mut order: Vec<usize> = (0..rules.len()).collect();
    order.sort_by_key(|&i| rules[i].priority());
    let mut out = Vec::new();
    for (pos, &i) in order.iter().enumerate() {
        let r = &rules[i];
        if r.direction() == Direction::Ingress
            && s.preserve_ssh()
            && r.protocol() == Protocol::Tcp
            && s.ssh_ports().covers(r.ports())
        {
            out.push((r.name().to_string(), "ssh".to_owned()));
            continue;
        }
        let cover = order[..pos].iter().map(|&a| &rules[a]).find(|a| {
            a.direction() == r.direction()
                && a.identity().covers(r.identity())
                && a.protocol().covers(r.protocol())
                && a.ports().covers(r.ports())
                && a.peers().covers(r.peers())
        });
        if let Some(a) = cover {
            out.push((r.name().to_string(), a.name().to_string()));
        }
    }
    out
}

/// The shadowed-rule warnings of a load, as (rule, what hides it).
fn shadow_warnings(loaded: &Loaded) -> Vec<(String, String)> {
    loaded
        .warnings
        .warnings()
        .filter(|d| d.code == Code::ShadowedRule)
        .map(|d| {
            let by = match d.message.split_once("rule '") {
                Some((_, rest)) => rest.split('\'').next().unwrap_or_default().to_owned(),
                None => "ssh".to_owned(),
            };
            (d.rule.clone().unwrap_or_default(), by)
        })
        .collect()
}

fn default_verdict(policy: &Policy) -> Verdict {
    match policy.settings().default_policy() {
        DefaultPolicy::Deny => Verdict::Drop,
        DefaultPolicy::Allow => Verdict::Accept,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(512), ..ProptestConfig::default() })]

    #[test]
    fn policies_serialize_and_parse_back_to_the_same_policy(loaded in policy()) {
        let yaml = loaded.policy.to_yaml().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let again = Policy::from_yaml(&yaml, "roundtrip.yaml", &resolver())
            .map_err(|e| TestCaseError::fail(format!("{e}\n{yaml}")))?;
        prop_assert_eq!(&again.policy, &loaded.policy, "{}", yaml);
        // What was written is read by the fast reader, and both readers agree on it.
        prop_assert_eq!(zt_core::yaml::fast_reader_agrees(&yaml), Ok(true), "{}", yaml);
    }

    #[test]
    fn compiling_is_deterministic(loaded in policy()) {
        prop_assert_eq!(loaded.policy.ruleset(), loaded.policy.ruleset());
    }

    #[test]
    fn rules_are_ordered_by_priority_then_file_order(loaded in policy()) {
        check_order(&loaded)?;
    }

    #[test]
    fn rules_are_in_file_order_when_priorities_ascend(loaded in policy_with(ascending)) {
        check_order(&loaded)?;
    }
}

/// Priorities that never fall, with ties: 0, 0, 0, 1, 1, 1, …
fn ascending(i: usize) -> RangeInclusive<i32> {
    let p = i32::try_from(i / 3).unwrap_or(i32::MAX);
    p..=p
}

/// Every rule has one ruleset entry, in the order of (priority, file index).
fn check_order(loaded: &Loaded) -> Result<(), TestCaseError> {
    let ruleset = loaded.policy.ruleset();
    let keys: Vec<(i32, usize)> = ruleset
        .entries()
        .iter()
        .filter_map(|e| match e.origin() {
            zt_core::ruleset::Origin::Rule(i) => Some((loaded.policy.rules()[i].priority(), i)),
            _ => None,
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    let mut each: Vec<usize> = keys.iter().map(|&(_, i)| i).collect();
    each.sort_unstable();
    prop_assert_eq!(keys, sorted);
    prop_assert_eq!(each, (0..loaded.policy.rules().len()).collect::<Vec<_>>());
    Ok(())
}

proptest! {

    #[test]
    fn the_winning_entry_is_always_the_first_that_matches(loaded in policy(), probe in probe()) {
        let ruleset: Ruleset = loaded.policy.ruleset();
        let decision = ruleset.evaluate(&probe);
        let first = ruleset
            .entries()
            .iter()
            .position(|e| e.verdict().is_some() && spec_matches(loaded.policy.settings(), e, &probe));
        prop_assert_eq!(Some(decision.entry), first);
        let entry = &ruleset.entries()[decision.entry];
        prop_assert_eq!(Some(decision.verdict), entry.verdict());
        prop_assert_eq!(decision.name.as_str(), entry.name());
    }

    #[test]
    fn a_probe_no_rule_matches_gets_the_default_verdict(loaded in policy(), mut probe in probe()) {
        // Keep the probe clear of the prologue: a new, non-loopback, non-SSH, non-ICMPv6 packet.
        probe.ct_state = CtState::New;
        probe.loopback = false;
        if probe.protocol == ProbeProtocol::Icmp { probe.protocol = ProbeProtocol::Other(132); }
        probe.icmp_type = None;
        if probe.dst_port == Some(22) || probe.dst_port == Some(2222) { probe.dst_port = Some(40000); }
        let ruleset = loaded.policy.ruleset();
        let any_rule = ruleset
            .entries()
            .iter()
            .any(|e| {
                matches!(e.origin(), Origin::Rule(_))
                    && spec_matches(loaded.policy.settings(), e, &probe)
            });
        prop_assume!(!any_rule);
        let decision = ruleset.evaluate(&probe);
        prop_assert_eq!(decision.name.as_str(), "zt:default");
        prop_assert_eq!(decision.verdict, default_verdict(&loaded.policy));
    }

    #[test]
    fn shadow_warnings_agree_with_comparing_every_pair_of_rules(loaded in policy()) {
        prop_assert_eq!(shadow_warnings(&loaded), shadowed_by_brute_force(&loaded.policy));
    }

    /// The same when every priority is equal, where the search skips rules nothing before
    /// them reaches.
    #[test]
    fn shadow_warnings_agree_with_comparing_every_pair_when_file_order_decides(loaded in policy_with(|_| 0..=0)) {
        prop_assert_eq!(shadow_warnings(&loaded), shadowed_by_brute_force(&loaded.policy));
    }

    /// The same when priorities never fall in file order, which is then evaluation order too.
    #[test]
    fn shadow_warnings_agree_with_comparing_every_pair_when_priorities_ascend(loaded in policy_with(ascending)) {
        prop_assert_eq!(shadow_warnings(&loaded), shadowed_by_brute_force(&loaded.policy));
    }

    #[test]
    fn established_traffic_is_accepted_whenever_preserved(loaded in policy(), mut probe in probe()) {
        prop_assume!(loaded.policy.settings().preserve_established());
        probe.ct_state = CtState::Established;
        let decision = loaded.policy.ruleset().evaluate(&probe);
        prop_assert_eq!(decision.verdict, Verdict::Accept);
        prop_assert_eq!(decision.name.as_str(), "zt:established");
    }

    #[test]
    fn inbound_ssh_is_accepted_whenever_preserved(loaded in policy(), mut probe in probe()) {
        let settings = loaded.policy.settings();
        let Some(port) = settings.ssh_ports().ranges().and_then(|r| r.first()).map(|r| r.first()) else {
            return Ok(());
        };
        probe.direction = Direction::Ingress;
        probe.protocol = ProbeProtocol::Tcp;
        probe.dst_port = Some(port);
        if probe.ct_state == CtState::Invalid {
            probe.ct_state = CtState::New;
        }
        let verdict = loaded.policy.ruleset().evaluate(&probe).verdict;
        if settings.preserve_ssh() {
            prop_assert_eq!(verdict, Verdict::Accept);
        }
    }
}
