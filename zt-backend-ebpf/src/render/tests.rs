use super::*;
use crate::layout::{decode, encode};
use crate::model::{self, Call};
use proptest::prelude::*;
use std::collections::HashMap;
use std::net::IpAddr;
use zt_core::{
    Action, CtState, DefaultPolicy, Direction, Policy, PolicyBuilder, Probe, ProbeProtocol,
    RuleBuilder, StaticResolver,
};

/// Cgroup ids of the test hierarchy: the root is 1.
struct TestCgroups(HashMap<&'static str, u64>);

impl TestCgroups {
    fn new() -> Self {
        Self(HashMap::from([
            ("a", 100),
            ("a/b", 101),
            ("a/b/c", 102),
            ("c", 103),
            ("d", 104),
        ]))
    }

    /// Ancestor ids by level of a process in `path`.
    fn ancestors(&self, path: &str) -> Vec<u64> {
        let mut ids = vec![1];
        let mut prefix = String::new();
        for part in path.split('/') {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
            ids.push(self.0.get(prefix.as_str()).copied().unwrap_or(9999));
        }
        ids
    }
}

impl CgroupIds for TestCgroups {
    fn cgroup_id(&self, path: &CgroupPath) -> Option<u64> {
        self.0.get(path.as_str()).copied()
    }
}

fn resolver() -> StaticResolver {
    StaticResolver::new()
        .user("web-user", 1001)
        .user("postgres", 1002)
}

/// The specification's example (`examples/rules.yaml`) without its ingress rules.
fn spec_example() -> Ruleset {
    let text = include_str!("../../../examples/rules.yaml");
    let mut kept = Vec::new();
    let mut block: Vec<&str> = Vec::new();
    let flush = |block: &mut Vec<&str>, kept: &mut Vec<String>| {
        if !block.iter().any(|l| l.contains("direction: ingress")) {
            kept.extend(block.iter().map(|l| (*l).to_owned()));
        }
        block.clear();
    };
    for line in text.lines() {
        if line.starts_with("  - name:") || line.starts_with("  #") {
            flush(&mut block, &mut kept);
        }
        block.push(line);
    }
    flush(&mut block, &mut kept);
    let yaml = kept.join("\n");
    assert!(!yaml.contains("direction: ingress"), "{yaml}");
    Policy::from_yaml(&yaml, "rules.yaml", &resolver())
        .unwrap()
        .policy
        .ruleset()
}

#[test]
fn the_spec_example_renders_to_one_allow_group_for_web_user() {
    let r = render(&spec_example(), &TestCgroups::new()).unwrap();
    insta::assert_snapshot!("spec_example", r.dump());
}

/// Priorities reorder rules; overlapping CIDRs of one verdict collapse into one list whose
/// prefixes carry the first rule containing them; a small port range is expanded, a large one
/// gets a range group.
fn overlap_policy() -> Ruleset {
    let uid = |name: &str, prio: i32| RuleBuilder::egress(name).uid(1001).priority(prio);
    PolicyBuilder::new()
        .rule(
            uid("block-db-subnet", 10)
                .to_host("10.1.0.0/16")
                .port(5432)
                .deny(),
        )
        .rule(
            uid("allow-db-host", 5)
                .to_host("10.1.2.3")
                .port(5432)
                .allow(),
        )
        .rule(
            uid("allow-private", 20)
                .to_host("10.0.0.0/8")
                .to_host("fd00::/8")
                .port(5432)
                .allow(),
        )
        .rule(uid("https-lan", 30).to_host("10.0.0.0/8").port(443).allow())
        .rule(
            uid("https-office", 31)
                .to_host("10.1.0.0/16")
                .port(443)
                .allow(),
        )
        .rule(
            uid("https-printer", 29)
                .to_host("10.1.2.0/24")
                .port(443)
                .allow(),
        )
        .rule(uid("dev-ports", 40).port_range(8000, 8003).allow())
        .rule(
            uid("high-ports", 41)
                .to_host("10.0.0.0/8")
                .port_range(1024, 65535)
                .protocol(Protocol::Both)
                .allow(),
        )
        .rule(
            RuleBuilder::egress("dns")
                .any_user()
                .to_host("10.0.0.53")
                .to_host("fd00::53")
                .port(53)
                .protocol(Protocol::Udp)
                .priority(50)
                .allow(),
        )
        .rule(
            RuleBuilder::egress("reject-smtp")
                .any_user()
                .port(25)
                .priority(60)
                .reject(),
        )
        .build(&resolver())
        .unwrap()
        .policy
        .ruleset()
}

#[test]
fn overlapping_cidrs_and_priorities_keep_first_match() {
    let r = render(&overlap_policy(), &TestCgroups::new()).unwrap();
    insta::assert_snapshot!("cidr_priority_overlap", r.dump());
}

#[test]
fn ingress_rules_are_refused_naming_the_rule() {
    let ruleset = PolicyBuilder::new()
        .rule(RuleBuilder::ingress("https-in").port(443).allow())
        .build(&resolver())
        .unwrap()
        .policy
        .ruleset();
    let err = render(&ruleset, &TestCgroups::new()).unwrap_err();
    assert!(
        matches!(&err, EbpfError::Unsupported { rule, reason } if rule == "https-in" && reason == INGRESS_REASON),
        "{err}"
    );
    let core: zt_core::Error = err.into();
    assert_eq!(
        core.to_string(),
        format!("the ebpf backend cannot express rule 'https-in': {INGRESS_REASON}")
    );
}

#[test]
fn icmp_rules_are_refused_naming_the_rule() {
    let ruleset = PolicyBuilder::new()
        .rule(
            RuleBuilder::egress("ping")
                .any_user()
                .protocol(Protocol::Icmp)
                .allow(),
        )
        .build(&resolver())
        .unwrap()
        .policy
        .ruleset();
    let err = render(&ruleset, &TestCgroups::new()).unwrap_err();
    assert!(
        matches!(&err, EbpfError::Unsupported { rule, .. } if rule == "ping"),
        "{err}"
    );
}

#[test]
fn a_missing_cgroup_is_an_error_naming_the_rule() {
    let ruleset = PolicyBuilder::new()
        .rule(
            RuleBuilder::egress("nginx")
                .cgroup("system.slice/nginx.service")
                .allow(),
        )
        .build(&resolver())
        .unwrap()
        .policy
        .ruleset();
    let err = render(&ruleset, &TestCgroups::new()).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("rule 'nginx': cgroup 'system.slice/nginx.service' does not exist"),
        "{err}"
    );
}

#[test]
fn ranges_up_to_the_threshold_expand_and_larger_ones_get_a_range_group() {
    let ruleset = |last: u16| {
        PolicyBuilder::new()
            .rule(
                RuleBuilder::egress("r")
                    .uid(5)
                    .port_range(1000, last)
                    .allow(),
            )
            .build(&resolver())
            .unwrap()
            .policy
            .ruleset()
    };
    let small = render(&ruleset(1063), &TestCgroups::new()).unwrap();
    assert_eq!(small.groups[0].ports, PortMatch::Exact);
    assert_eq!(small.members.len(), EXPAND_PORTS_MAX as usize);
    let large = render(&ruleset(1064), &TestCgroups::new()).unwrap();
    assert_eq!(
        large.groups[0].ports,
        PortMatch::Range {
            first: 1000,
            last: 1064
        }
    );
    assert_eq!(large.members.len(), 1);
}

#[test]
fn ten_thousand_uid_port_rules_are_one_group() {
    let mut policy = PolicyBuilder::new();
    for i in 0..10_000u32 {
        let port = u16::try_from(10_000 + i % 50_000).unwrap();
        policy = policy.rule(
            RuleBuilder::egress(&format!("r{i}"))
                .uid(100_000 + i)
                .port(port)
                .allow(),
        );
    }
    let ruleset = policy.build(&resolver()).unwrap().policy.ruleset();
    let r = render(&ruleset, &TestCgroups::new()).unwrap();
    assert_eq!(r.groups.len(), 1);
    assert_eq!(r.members.len(), 10_000);
    assert!(r.prefixes.is_empty());
}

#[test]
fn too_many_groups_are_refused_with_the_count() {
    let mut policy = PolicyBuilder::new();
    for i in 0..=layout::MAX_GROUPS {
        let rule = RuleBuilder::egress(&format!("r{i}")).uid(i).port(80);
        policy = policy.rule(if i % 2 == 0 {
            rule.allow()
        } else {
            rule.deny()
        });
    }
    let ruleset = policy.build(&resolver()).unwrap().policy.ruleset();
    let err = render(&ruleset, &TestCgroups::new()).unwrap_err();
    assert!(
        err.to_string().starts_with(&format!(
            "the policy needs {} groups",
            layout::MAX_GROUPS + 1
        )),
        "{err}"
    );
}

#[test]
fn rendered_maps_survive_encoding_into_either_generation() {
    let r = render(&overlap_policy(), &TestCgroups::new()).unwrap();
    for generation in [0, 1] {
        assert_eq!(decode(&encode(&r, generation)).unwrap(), Some(r.clone()));
    }
}

#[test]
fn identical_renderings_compare_without_changes() {
    let r = render(&overlap_policy(), &TestCgroups::new()).unwrap();
    assert!(zt_core::compare(&r.units(), &r.units()).is_empty());
}

// ---------------------------------------------------------------------------------------------
// Generated policies: the model of the program over the rendered maps decides every probe as
// the reference evaluator does — the same effect, and the same deciding entry.

const HOSTS: [&str; 12] = [
    "127.0.0.1",
    "127.0.0.0/8",
    "10.0.0.0/8",
    "10.1.0.0/16",
    "10.1.2.3",
    "10.1.2.0/24",
    "0.0.0.0/0",
    "::1",
    "fd00::/8",
    "fd00:1::/32",
    "fd00:1::5",
    "::/0",
];
const CGROUPS: [&str; 5] = ["a", "a/b", "a/b/c", "c", "d"];
const PORTS: [(u16, u16); 6] = [
    (53, 53),
    (80, 80),
    (80, 90),
    (443, 443),
    (1000, 2000),
    (6379, 6379),
];

/// A generated rule: identity kind and value, hosts, ports, protocol, action, priority, log.
type GenRule = (u8, u8, Vec<usize>, Vec<usize>, u8, u8, i32, bool);

fn rule_strategy() -> impl Strategy<Value = GenRule> {
    (
        0u8..5,                                          // identity kind
        0u8..5,                                          // identity value
        proptest::collection::vec(0..HOSTS.len(), 0..3), // hosts (empty = any)
        proptest::collection::vec(0..PORTS.len(), 0..3), // ports (empty = any)
        0u8..4,                                          // protocol
        0u8..3,                                          // action
        0i32..4,                                         // priority
        any::<bool>(),                                   // log
    )
}

fn build_policy(rules: &[GenRule], deny: bool) -> Option<Ruleset> {
    let mut policy = PolicyBuilder::new().default_policy(if deny {
        DefaultPolicy::Deny
    } else {
        DefaultPolicy::Allow
    });
    for (i, (kind, value, hosts, ports, protocol, action, priority, log)) in
        rules.iter().enumerate()
    {
        let mut r = RuleBuilder::egress(&format!("r{i}"));
        r = match kind {
            0 | 4 => r.any_user(),
            1 => r.uid(1000 + u32::from(*value % 2)),
            2 => r.gid(2000 + u32::from(*value % 2)),
            _ => r.cgroup(CGROUPS[usize::from(*value) % CGROUPS.len()]),
        };
        for &h in hosts {
            r = r.to_host(HOSTS[h]);
        }
        for &p in ports {
            r = r.port_range(PORTS[p].0, PORTS[p].1);
        }
        let protocol = match (protocol, ports.is_empty()) {
            (0, _) | (3, false) => Protocol::Tcp,
            (1, _) => Protocol::Udp,
            (2, _) => Protocol::Both,
            _ => Protocol::Any,
        };
        r = r.protocol(protocol);
        let action = match action {
            0 => Action::Allow,
            1 => Action::Deny,
            _ => Action::Reject,
        };
        policy = policy.rule(r.action(action).priority(*priority).log(*log));
    }
    policy.build(&resolver()).ok().map(|l| l.policy.ruleset())
}

fn probe_strategy() -> impl Strategy<Value = (u32, u32, usize, u8, usize, u16)> {
    (
        prop_oneof![Just(0u32), 1000u32..1002],
        prop_oneof![Just(0u32), 2000u32..2002],
        0..=CGROUPS.len(),
        0u8..3,
        0..12usize,
        prop_oneof![
            Just(53u16),
            Just(80),
            Just(85),
            Just(91),
            Just(443),
            Just(1500),
            Just(6379),
            Just(9999)
        ],
    )
}

const DESTINATIONS: [&str; 12] = [
    "127.0.0.1",
    "127.0.0.2",
    "10.1.2.3",
    "10.1.2.9",
    "10.1.9.9",
    "10.2.0.1",
    "192.0.2.1",
    "::1",
    "fd00:1::5",
    "fd00:1::6",
    "fd00:2::1",
    "2001:db8::1",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn the_program_model_decides_as_the_reference_evaluator(
        rules in proptest::collection::vec(rule_strategy(), 0..10),
        deny in any::<bool>(),
        probes in proptest::collection::vec(probe_strategy(), 1..48),
    ) {
        let Some(ruleset) = build_policy(&rules, deny) else {
            return Err(TestCaseError::reject("invalid policy"));
        };
        let cgroups = TestCgroups::new();
        let rendered = render(&ruleset, &cgroups).unwrap();
        prop_assert_eq!(decode(&encode(&rendered, 1)).unwrap(), Some(rendered.clone()));
        for (uid, gid, cg, proto, dst, port) in probes {
            let dst: IpAddr = DESTINATIONS[dst].parse().unwrap();
            let cgroup = CGROUPS.get(cg).map(|c| (*c).to_owned()).unwrap_or_else(|| "e/f".to_owned());
            let (protocol, transport) = match proto {
                0 => (ProbeProtocol::Tcp, Transport::Tcp),
                1 => (ProbeProtocol::Udp, Transport::Udp),
                _ => (ProbeProtocol::Other(132), Transport::Other),
            };
            let mut probe = Probe::connect(protocol, uid, gid, std::net::SocketAddr::new(dst, port));
            probe.cgroup = Some(cgroup.clone());
            if transport == Transport::Other {
                probe.dst_port = None;
                probe.src_port = None;
            }
            assert_eq!(probe.direction, Direction::Egress);
            assert_eq!(probe.ct_state, CtState::New);
            let expected = ruleset.evaluate(&probe);
            let call = Call { uid, gid, cgroups: cgroups.ancestors(&cgroup), transport, port, dst };
            let (effect, index) = model::decide(&rendered, &call);
            prop_assert_eq!(
                (effect, index as usize),
                (Effect::from(expected.verdict), expected.entry),
                "probe {:?} decided by {} in\n{}\n{}", probe, expected.name, ruleset, rendered.dump()
            );
        }
    }
}

/// A policy needing one group more than the map holds is refused before anything is written,
/// with the limit named; one at the limit renders.
#[test]
fn a_policy_past_the_group_limit_is_refused_naming_the_limit() {
    // Alternating verdicts: every rule starts a new group.
    let policy = |rules: u32| {
        (0..rules)
            .fold(PolicyBuilder::new(), |b, i| {
                let r = RuleBuilder::egress(&format!("r{i}")).uid(2000 + i).port(80);
                b.rule(if i % 2 == 0 { r.allow() } else { r.deny() })
            })
            .build(&resolver())
            .unwrap()
            .policy
            .ruleset()
    };
    let at_limit = render(&policy(layout::MAX_GROUPS), &TestCgroups::new());
    assert!(at_limit.is_ok(), "{:?}", at_limit.err());
    match render(&policy(layout::MAX_GROUPS + 1), &TestCgroups::new()) {
        Err(EbpfError::TooLarge {
            what,
            needed,
            capacity,
            rule: None,
        }) => {
            assert!(what.starts_with("groups"), "{what}");
            assert_eq!(
                (needed, capacity),
                (u64::from(layout::MAX_GROUPS) + 1, 4096)
            );
        }
        Err(e) => panic!("expected TooLarge for groups, got {e:?}"),
        Ok(_) => panic!("a policy past the group limit was rendered"),
    }
}
