//! Unit tests over an in-memory kernel: the Backend contract's logic, the rendered scripts,
//! and the compiled model interpreted against the reference evaluator.

use super::*;
use crate::model::{Chain, CtStates, Dir, Family, Field, Hook, L4, Value};
use proptest::prelude::*;
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use zt_core::{
    Action, Backend, CtState, Direction, DriftKind, Policy, PolicyBuilder, Probe, ProbeProtocol,
    Protocol, RuleBuilder, Snapshot, StaticResolver, Verdict,
};

/// A kernel that keeps tables in memory and counts writes.
#[derive(Default)]
struct Memory {
    tables: HashMap<String, LowTable>,
    writes: usize,
}

impl Kernel for Memory {
    fn read(&mut self, name: &str) -> Result<Option<LowTable>, NftError> {
        Ok(self.tables.get(name).cloned())
    }
    fn replace(&mut self, name: &str, _: bool, table: Option<&LowTable>) -> Result<(), NftError> {
        self.writes += 1;
        match table {
            Some(t) => self.tables.insert(name.to_owned(), t.clone()),
            None => self.tables.remove(name),
        };
        Ok(())
    }
    fn cgroup_id(&self, path: &str) -> Result<Option<u64>, PathBuf> {
        Ok((path == "system.slice/nginx.service").then_some(4242))
    }
}

fn resolver() -> StaticResolver {
    StaticResolver::new()
        .user("web-user", 1001)
        .user("postgres", 1002)
}

fn spec_ruleset() -> Ruleset {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/rules.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    Policy::from_yaml(&text, "rules.yaml", &resolver())
        .unwrap()
        .policy
        .ruleset()
}

/// 40 rules: uids 2000.. to ports 10000.., so consecutive allows form a set.
fn large_ruleset() -> Ruleset {
    let mut b = PolicyBuilder::new();
    for i in 0..40u16 {
        let mut r = RuleBuilder::egress(&format!("svc-{i}"))
            .uid(2000 + u32::from(i % 5))
            .port(10000 + i);
        if i % 3 == 0 {
            r = r.to_host(&format!("10.0.{i}.0/24")).to_host("fd00::/64");
        }
        b = b.rule(r.allow());
    }
    b = b.rule(RuleBuilder::egress("deny-rest").uid(2000).deny().log(true));
    b.build(&resolver()).unwrap().policy.ruleset()
}

#[test]
fn the_spec_example_renders_as_plain_rules() {
    let backend = NftBackend::with_kernel(Memory::default());
    insta::assert_snapshot!(backend.script(&spec_ruleset()));
}

#[test]
fn a_large_policy_renders_as_set_lookups() {
    let backend = NftBackend::with_kernel(Memory::default());
    insta::assert_snapshot!(backend.script(&large_ruleset()));
}

#[test]
fn an_unchanged_policy_plans_nothing_and_apply_then_writes_nothing() {
    let mut b = NftBackend::with_kernel(Memory::default());
    let rs = spec_ruleset();
    let plan = b.plan(&rs).unwrap();
    assert!(!plan.is_empty());
    let snapshot = b.apply(&plan).unwrap();
    assert_eq!(snapshot.content, None, "nothing was there before");
    assert_eq!(b.kernel.writes, 1);
    let again = b.plan(&rs).unwrap();
    assert!(again.is_empty(), "{}", again.diff);
    b.apply(&again).unwrap();
    assert_eq!(b.kernel.writes, 1, "an empty plan must not write");
    assert!(b.verify(&rs).unwrap().is_empty());
}

#[test]
fn verify_names_the_rule_that_drifted() {
    let mut b = NftBackend::with_kernel(Memory::default());
    let rs = large_ruleset();
    {
        let plan = b.plan(&rs).unwrap();
        b.apply(&plan).unwrap()
    };
    let table = b.kernel.tables.get_mut("zt").unwrap();
    // Lose one element of svc-7 and the zt:default rule of the input chain, change a chain.
    let set = table
        .sets
        .iter_mut()
        .find(|s| {
            s.elements
                .iter()
                .any(|e| e.comment.as_deref() == Some("svc-7"))
        })
        .unwrap();
    set.elements
        .retain(|e| e.comment.as_deref() != Some("svc-7"));
    let input = table.chains.iter_mut().find(|c| c.name == "input").unwrap();
    input
        .rules
        .retain(|r| r.comment.as_deref() != Some("zt:default"));
    let output = table
        .chains
        .iter_mut()
        .find(|c| c.name == "output")
        .unwrap();
    if let Some(base) = &mut output.base {
        base.policy = 0;
    }
    let drift = b.verify(&rs).unwrap();
    let has = |kind: DriftKind, subject: &str| {
        drift
            .items
            .iter()
            .any(|i| i.kind == kind && i.subject == subject)
    };
    assert!(has(DriftKind::ElementsMissing, "svc-7"), "{drift}");
    assert!(has(DriftKind::Changed, "zt:default"), "{drift}");
    assert!(has(DriftKind::ChainChanged, "chain output"), "{drift}");
    b.kernel.tables.clear();
    assert_eq!(b.verify(&rs).unwrap().items[0].kind, DriftKind::Gone);
}

#[test]
fn rollback_restores_what_was_there_and_flush_removes_it() {
    let mut b = NftBackend::with_kernel(Memory::default());
    {
        let plan = b.plan(&spec_ruleset()).unwrap();
        b.apply(&plan).unwrap()
    };
    let first = b.kernel.tables["zt"].clone();
    let snapshot = {
        let plan = b.plan(&large_ruleset()).unwrap();
        b.apply(&plan).unwrap()
    };
    assert_ne!(b.kernel.tables["zt"], first);
    b.rollback(&snapshot).unwrap();
    assert_eq!(b.kernel.tables["zt"], first);
    let foreign = Snapshot {
        backend: "iptables".into(),
        content: None,
    };
    assert!(b.rollback(&foreign).is_err());
    b.flush().unwrap();
    assert!(b.kernel.tables.is_empty());
    assert!(!b.status().unwrap().installed);
}

#[test]
fn status_sums_counters_per_policy_rule_across_set_elements() {
    let mut b = NftBackend::with_kernel(Memory::default());
    {
        let plan = b.plan(&large_ruleset()).unwrap();
        b.apply(&plan).unwrap()
    };
    for set in &mut b.kernel.tables.get_mut("zt").unwrap().sets {
        for e in &mut set.elements {
            if e.comment.as_deref() == Some("svc-3") {
                e.exprs = vec![low::LowExpr::Counter {
                    packets: 2,
                    bytes: 100,
                }];
            }
        }
    }
    let status = b.status().unwrap();
    let svc3 = status.counter("svc-3").unwrap();
    // svc-3 has two addresses (IPv4 and IPv6 sets): both elements count.
    assert_eq!((svc3.packets, svc3.bytes), (4, 200));
}

#[test]
fn an_apply_keeps_the_counters_of_what_it_keeps_and_a_rollback_puts_the_old_ones_back() {
    let mut b = NftBackend::with_kernel(Memory::default());
    let first = b.plan(&large_ruleset()).unwrap();
    b.apply(&first).unwrap();
    let count = |b: &NftBackend<Memory>, name: &str| {
        b.kernel.tables["zt"]
            .sets
            .iter()
            .flat_map(|s| &s.elements)
            .filter(|e| e.comment.as_deref() == Some(name))
            .flat_map(|e| &e.exprs)
            .map(|x| match x {
                low::LowExpr::Counter { packets, .. } => *packets,
                _ => 0,
            })
            .sum::<u64>()
    };
    for set in &mut b.kernel.tables.get_mut("zt").unwrap().sets {
        for e in &mut set.elements {
            e.exprs = vec![low::LowExpr::Counter {
                packets: 5,
                bytes: 300,
            }];
        }
    }
    // svc-4 moves to another port; svc-3 stays as it is.
    let mut changed = PolicyBuilder::new();
    for i in 0..40u16 {
        let port = if i == 4 { 20000 } else { 10000 + i };
        let mut r = RuleBuilder::egress(&format!("svc-{i}"))
            .uid(2000 + u32::from(i % 5))
            .port(port);
        if i % 3 == 0 {
            r = r.to_host(&format!("10.0.{i}.0/24")).to_host("fd00::/64");
        }
        changed = changed.rule(r.allow());
    }
    changed = changed.rule(RuleBuilder::egress("deny-rest").uid(2000).deny().log(true));
    let changed = changed.build(&resolver()).unwrap().policy.ruleset();
    let plan = b.plan(&changed).unwrap();
    let snapshot = b.apply(&plan).unwrap();
    assert_eq!(
        count(&b, "svc-3"),
        10,
        "kept (an IPv4 and an IPv6 element), with its counters"
    );
    assert_eq!(count(&b, "svc-4"), 0, "replaced, counted afresh");
    b.rollback(&snapshot).unwrap();
    assert_eq!(count(&b, "svc-4"), 5, "the snapshot's counters are back");
}

#[test]
fn a_missing_cgroup_is_refused_naming_the_rule() {
    let rs = PolicyBuilder::new()
        .rule(
            RuleBuilder::egress("ok")
                .cgroup("system.slice/nginx.service")
                .allow(),
        )
        .rule(
            RuleBuilder::egress("gone")
                .cgroup("system.slice/ghost.service")
                .allow(),
        )
        .build(&resolver())
        .unwrap()
        .policy
        .ruleset();
    let mut b = NftBackend::with_kernel(Memory::default());
    let err = b.plan(&rs).unwrap_err().to_string();
    assert!(
        err.contains("rule 'gone'") && err.contains("ghost.service"),
        "{err}"
    );
}

#[test]
fn table_names_are_checked() {
    assert!(
        NftBackend::with_kernel(Memory::default())
            .with_table("zt_test")
            .is_ok()
    );
    assert!(
        NftBackend::with_kernel(Memory::default())
            .with_table("1bad")
            .is_err()
    );
    assert!(
        NftBackend::with_kernel(Memory::default())
            .with_table("x; flush ruleset")
            .is_err()
    );
}

// ---- The compiled model, interpreted, decides like the reference evaluator. ----

/// What one statement of the model sees of a probe.
fn stmt_matches(t: &Table, s: &Stmt, p: &Probe) -> bool {
    let v6 = p.dst.is_ipv6();
    let l4 = match p.protocol {
        ProbeProtocol::Tcp => Some(L4::Tcp),
        ProbeProtocol::Udp => Some(L4::Udp),
        ProbeProtocol::Icmp if v6 => Some(L4::Icmpv6),
        ProbeProtocol::Icmp => Some(L4::Icmp),
        ProbeProtocol::Other(_) => None,
    };
    let addr = |d: Dir| if d == Dir::Src { p.src } else { p.dst };
    let port = |d: Dir| {
        if d == Dir::Src {
            p.src_port
        } else {
            p.dst_port
        }
    };
    match s {
        Stmt::CtState(CtStates::Invalid) => p.ct_state == CtState::Invalid,
        Stmt::CtState(CtStates::EstablishedRelated) => {
            matches!(p.ct_state, CtState::Established | CtState::Related)
        }
        Stmt::CtState(CtStates::Established) => p.ct_state == CtState::Established,
        Stmt::IifLoopback => p.loopback,
        Stmt::NfProto(Family::V4) => !v6,
        Stmt::NfProto(Family::V6) => v6,
        Stmt::L4Proto(x) => l4 == Some(*x),
        Stmt::SkUid(u) => p.uid == Some(*u),
        Stmt::SkGid(g) => p.gid == Some(*g),
        Stmt::Cgroup { path, .. } => p
            .cgroup
            .as_deref()
            .is_some_and(|c| c == path || c.starts_with(&format!("{path}/"))),
        Stmt::Addr(d, n) => n.contains(&addr(*d)),
        Stmt::Port(x, d, a, b) => l4 == Some(*x) && port(*d).is_some_and(|q| *a <= q && q <= *b),
        Stmt::Icmpv6Type(a, b) => {
            v6 && l4 == Some(L4::Icmpv6) && p.icmp_type.is_some_and(|q| *a <= q && q <= *b)
        }
        Stmt::Lookup(fields, name) => {
            let Some(set) = t.sets.iter().find(|s| &s.name == name) else {
                return false;
            };
            set.elements.iter().any(|e| {
                fields.iter().zip(&e.values).all(|(f, v)| match (f, v) {
                    (Field::SkUid, Value::Id(u)) => p.uid == Some(*u),
                    (Field::SkGid, Value::Id(g)) => p.gid == Some(*g),
                    (Field::Addr(_, d) | Field::Net(_, d, _), Value::Net(n)) => {
                        n.contains(&addr(*d))
                    }
                    (Field::L4Proto, Value::Proto(x)) => l4 == Some(*x),
                    (Field::Port(d), Value::Ports(a, b)) => {
                        port(*d).is_some_and(|q| *a <= q && q <= *b)
                    }
                    _ => false,
                })
            })
        }
        _ => true,
    }
}

/// Run a chain: `Some(verdict)` when a rule decides.
fn run(t: &Table, chain: &Chain, p: &Probe) -> Option<Verdict> {
    for r in &chain.rules {
        if !r.stmts.iter().all(|s| stmt_matches(t, s, p)) {
            continue;
        }
        for s in &r.stmts {
            match s {
                Stmt::Accept => return Some(Verdict::Accept),
                Stmt::Drop => return Some(Verdict::Drop),
                Stmt::Reject(_) => return Some(Verdict::Reject),
                Stmt::Jump(target) => {
                    let helper = t.chains.iter().find(|c| &c.name == target)?;
                    if let Some(v) = run(t, helper, p) {
                        return Some(v);
                    }
                }
                _ => {}
            }
        }
    }
    None
}

fn model_verdict(t: &Table, p: &Probe) -> Verdict {
    let hook = if p.direction == Direction::Egress {
        Hook::Output
    } else {
        Hook::Input
    };
    let chain = t.chains.iter().find(|c| c.hook == Some(hook));
    // Base chains have policy accept: the last rule decides otherwise.
    chain.and_then(|c| run(t, c, p)).unwrap_or(Verdict::Accept)
}

fn arb_rule(i: usize) -> impl Strategy<Value = RuleBuilder> {
    let hosts = prop::sample::subsequence(
        vec![
            "10.0.0.0/8",
            "10.1.0.0/16",
            "10.1.2.3",
            "192.0.2.0/24",
            "0.0.0.0/0",
            "fd00::/8",
            "fd00::1",
            "::/0",
        ],
        0..=3,
    );
    let ports = prop::collection::vec(
        prop_oneof![
            (1u16..6).prop_map(|p| (p * 100, p * 100)),
            Just((150u16, 350u16))
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
        0u32..4,
        hosts,
        ports,
        protocol,
        action,
        any::<bool>(),
        0..4u8,
    )
        .prop_map(
            move |(ingress, id, hosts, ports, protocol, action, log, who)| {
                let name = format!("r{i}");
                let mut b = if ingress {
                    RuleBuilder::ingress(&name)
                } else {
                    match who {
                        0 => RuleBuilder::egress(&name).any_user(),
                        1 => RuleBuilder::egress(&name).gid(id),
                        2 => RuleBuilder::egress(&name).cgroup("system.slice/nginx.service"),
                        _ => RuleBuilder::egress(&name).uid(id),
                    }
                };
                for h in hosts {
                    b = if ingress {
                        b.from_host(h)
                    } else {
                        b.to_host(h)
                    };
                }
                let protocol = if ports.is_empty() || protocol.has_ports() {
                    protocol
                } else {
                    Protocol::Tcp
                };
                for (a, z) in ports {
                    b = if a == z {
                        b.port(a)
                    } else {
                        b.port_range(a, z)
                    };
                }
                // Long runs of one verdict exercise the set compilation.
                let action = if i.is_multiple_of(4) {
                    action
                } else {
                    Action::Allow
                };
                b.protocol(protocol)
                    .action(action)
                    .log(log && i.is_multiple_of(7))
            },
        )
}

fn arb_probe() -> impl Strategy<Value = Probe> {
    let v4 = prop::sample::select(vec!["10.1.2.3", "10.9.9.9", "192.0.2.1", "127.0.0.1"]);
    let v6 = prop::sample::select(vec!["fd00::1", "fd00::9", "2001:db8::1", "::1"]);
    let addrs = prop_oneof![(v4.clone(), v4), (v6.clone(), v6)];
    let proto = prop::sample::select(vec![
        ProbeProtocol::Tcp,
        ProbeProtocol::Udp,
        ProbeProtocol::Icmp,
        ProbeProtocol::Other(132),
    ]);
    let ct = prop::sample::select(vec![
        CtState::New,
        CtState::Established,
        CtState::Invalid,
        CtState::Untracked,
    ]);
    (
        any::<bool>(),
        0u32..4,
        0u32..4,
        any::<bool>(),
        proto,
        addrs,
        0u16..7,
        ct,
        any::<bool>(),
        prop::sample::select(vec![8u8, 128, 135, 143]),
    )
        .prop_map(
            |(ingress, uid, gid, in_cgroup, protocol, (src, dst), port, ct, lo, icmp)| {
                let ip = |s: &str| s.parse::<IpAddr>().unwrap();
                let ports = matches!(protocol, ProbeProtocol::Tcp | ProbeProtocol::Udp);
                Probe {
                    direction: if ingress {
                        Direction::Ingress
                    } else {
                        Direction::Egress
                    },
                    uid: (!ingress).then_some(uid),
                    gid: (!ingress).then_some(gid),
                    cgroup: (!ingress && in_cgroup)
                        .then(|| "system.slice/nginx.service/w".to_owned()),
                    protocol,
                    src: ip(src),
                    dst: ip(dst),
                    src_port: ports.then_some(22),
                    dst_port: ports.then_some(if port == 6 {
                        22
                    } else {
                        port * 100 + 50 * (port % 2)
                    }),
                    icmp_type: (protocol == ProbeProtocol::Icmp).then_some(icmp),
                    ct_state: ct,
                    loopback: ingress && lo,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn the_compiled_table_decides_like_the_reference_evaluator(
        rules in (1usize..24).prop_flat_map(|n| (0..n).map(arb_rule).collect::<Vec<_>>()),
        probes in prop::collection::vec(arb_probe(), 24),
        deny in any::<bool>(),
    ) {
        let policy = rules
            .into_iter()
            .fold(PolicyBuilder::new().default_policy(if deny { zt_core::DefaultPolicy::Deny } else { zt_core::DefaultPolicy::Allow }), PolicyBuilder::rule)
            .build(&resolver())
            .map_err(|e| TestCaseError::fail(e.to_string()))?
            .policy;
        let ruleset = policy.ruleset();
        let table = compile::compile(&ruleset, "zt");
        for p in &probes {
            let want = ruleset.evaluate(p);
            prop_assert_eq!(model_verdict(&table, p), want.verdict, "probe {:?}\nentry {}\n{}", p, want.name, text::script(&table));
        }
    }
}

#[test]
fn plans_read_as_nft_syntax_by_policy_rule() {
    let mut b = NftBackend::with_kernel(Memory::default());
    let plan = b.plan(&large_ruleset()).unwrap();
    insta::assert_snapshot!(plan.diff.to_string());
}

#[test]
fn a_modified_rule_shows_the_lines_that_differ() {
    let mut b = NftBackend::with_kernel(Memory::default());
    let before = spec_ruleset();
    let plan = b.plan(&before).unwrap();
    b.apply(&plan).unwrap();
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/rules.yaml"
    ))
    .unwrap()
    .replace("port: 6379", "port: 6380");
    let after = Policy::from_yaml(&text, "rules.yaml", &resolver())
        .unwrap()
        .policy
        .ruleset();
    let diff = b.plan(&after).unwrap().diff.to_string();
    assert_eq!(
        diff,
        "~ web-to-redis\n    \
         - output: meta skuid 1001 meta nfproto ipv4 ip daddr 127.0.0.1 meta l4proto tcp th dport 6379 counter accept\n    \
         + output: meta skuid 1001 meta nfproto ipv4 ip daddr 127.0.0.1 meta l4proto tcp th dport 6380 counter accept\n\
         ~ web-to-redis-v6\n    \
         - output: meta skuid 1001 meta nfproto ipv6 ip6 daddr ::1 meta l4proto tcp th dport 6379 counter accept\n    \
         + output: meta skuid 1001 meta nfproto ipv6 ip6 daddr ::1 meta l4proto tcp th dport 6380 counter accept\n\
         0 to add, 2 to modify, 0 to remove\n"
    );
}

#[test]
fn byte_aligned_prefixes_read_back_as_networks() {
    let mut b = NftBackend::with_kernel(Memory::default());
    let diff = b.plan(&spec_ruleset()).unwrap().diff.to_string();
    assert!(
        diff.contains(
            "input: meta nfproto ipv4 ip saddr 192.0.2.0/24 meta l4proto tcp th dport 443"
        ),
        "{diff}"
    );
    assert!(diff.contains("ip6 saddr 2001:db8:100::/48"), "{diff}");
}

#[test]
fn a_plan_from_nothing_lists_the_same_subjects_as_a_full_comparison() {
    // The fast path for an empty kernel must agree with compare() against an empty table.
    let b = NftBackend::with_kernel(Memory::default());
    let rs = large_ruleset();
    let desired = b.table_for(&rs).unwrap();
    let fast = compare::diff(None, &desired);
    let empty = LowTable {
        name: "zt".into(),
        ..LowTable::default()
    };
    let full = compare::diff(Some(&empty), &desired);
    assert_eq!(fast, full);
}
