//! The eBPF backend in a real kernel: each test has its own network namespace, its own child
//! cgroup (the only place programs attach) and its own pin directory, and makes real
//! connections as real uids from inside that cgroup.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Fixture, ebpf_outcome, prerequisites, ruleset, sendto_as};
use std::net::SocketAddr;
use zt_backend_ebpf::{Effect, SocketHook};
use zt_core::{Backend, Probe, ProbeProtocol};
use zt_testkit::{Identity, Listeners, Outcome, Proto};

const WEB: Identity = Identity::new(4001, 4001);
const DB: Identity = Identity::new(4002, 4002);
const OTHER: Identity = Identity::new(4003, 4003);

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Listeners for TCP and UDP on both loopbacks, ports 7001-7003.
fn listeners() -> Listeners {
    let mut endpoints = Vec::new();
    for ip in ["127.0.0.1", "[::1]"] {
        for port in [7001, 7002, 7003] {
            for proto in [Proto::Tcp, Proto::Udp] {
                endpoints.push((proto, addr(&format!("{ip}:{port}"))));
            }
        }
    }
    Listeners::start(&endpoints)
}

/// The spec's shape: web may reach the cache on both loopbacks over TCP, everyone may use
/// "DNS" over UDP, db may reach nothing over IPv4 (reject for TCP 7003 first), default deny.
const SCENARIO: &str = r#"
version: "1.0"
rules:
  - name: web-to-cache
    from: { user: web }
    to: { hosts: ["127.0.0.1", "::1"], port: 7001, protocol: tcp }
    action: allow
  - name: db-reject
    from: { user: db }
    to: { port: 7003, protocol: tcp }
    action: reject
  - name: db-no-egress
    from: { user: db }
    to: { host: "0.0.0.0/0" }
    action: deny
    log: true
  - name: dns-for-all
    from: { user: "*" }
    to: { port: 7002, protocol: udp }
    action: allow
"#;

#[test]
fn uids_families_and_transports_are_decided_as_the_evaluator_says_with_eperm() {
    if !prerequisites() {
        return;
    }
    let mut f = Fixture::new("scenarios");
    let _listeners = listeners();
    let rs = ruleset(SCENARIO);
    f.apply(&rs);
    let mut seen = std::collections::HashSet::new();
    for id in [Identity::ROOT, WEB, DB, OTHER] {
        for ip in ["127.0.0.1", "[::1]"] {
            for port in [7001, 7002, 7003] {
                for proto in [Proto::Tcp, Proto::Udp] {
                    let dst = addr(&format!("{ip}:{port}"));
                    let pp = match proto {
                        Proto::Tcp => ProbeProtocol::Tcp,
                        Proto::Udp => ProbeProtocol::Udp,
                    };
                    let decision = rs.evaluate(&Probe::connect(pp, id.uid, id.gid, dst));
                    let outcome = f.connect(id, proto, dst);
                    assert_eq!(
                        outcome,
                        ebpf_outcome(decision.verdict),
                        "{proto} to {dst} as {id}: the evaluator says {} ({:?})",
                        decision.name,
                        decision.verdict
                    );
                    seen.insert((decision.name, outcome));
                }
            }
        }
    }
    // The grid exercised every rule, allowing and refusing.
    for name in [
        "web-to-cache",
        "db-reject",
        "db-no-egress",
        "dns-for-all",
        "zt:default",
    ] {
        assert!(
            seen.iter().any(|(n, _)| n == name),
            "{name} decided nothing"
        );
    }
    assert!(seen.contains(&("dns-for-all".to_owned(), Outcome::Connected)));
    assert!(seen.contains(&("db-reject".to_owned(), Outcome::NotPermitted)));
}

#[test]
fn unconnected_udp_sends_are_decided_by_the_sendmsg_hooks() {
    if !prerequisites() {
        return;
    }
    let mut f = Fixture::new("sendto");
    let _listeners = listeners();
    f.apply(&ruleset(SCENARIO));
    for ip in ["127.0.0.1", "[::1]"] {
        let dns = addr(&format!("{ip}:7002"));
        let other = addr(&format!("{ip}:7001"));
        assert_eq!(
            sendto_as(&f.cgroup, OTHER, dns),
            Outcome::Connected,
            "{dns}"
        );
        assert_eq!(
            sendto_as(&f.cgroup, OTHER, other),
            Outcome::NotPermitted,
            "{other}"
        );
        assert_eq!(
            sendto_as(&f.cgroup, WEB, other),
            Outcome::NotPermitted,
            "{other}"
        );
    }
    // db's IPv4 is refused by db-no-egress before dns-for-all; its IPv6 is not in 0.0.0.0/0.
    assert_eq!(
        sendto_as(&f.cgroup, DB, addr("127.0.0.1:7002")),
        Outcome::NotPermitted
    );
    assert_eq!(
        sendto_as(&f.cgroup, DB, addr("[::1]:7002")),
        Outcome::Connected
    );
}

#[test]
fn an_ipv4_mapped_destination_is_decided_as_ipv4() {
    if !prerequisites() {
        return;
    }
    let mut f = Fixture::new("mapped");
    let _listeners = listeners();
    f.apply(&ruleset(SCENARIO));
    let mapped = addr("[::ffff:127.0.0.1]:7001");
    assert_eq!(f.connect(WEB, Proto::Tcp, mapped), Outcome::Connected);
    assert_eq!(f.connect(DB, Proto::Tcp, mapped), Outcome::NotPermitted);
}

fn program_ids(f: &Fixture) -> Vec<u32> {
    SocketHook::ALL
        .iter()
        .map(|h| {
            aya::programs::ProgramInfo::from_pin(f.pin_dir.join("programs").join(h.name()))
                .unwrap()
                .id()
        })
        .collect()
}

#[test]
fn a_policy_update_changes_the_verdict_without_reloading_any_program() {
    if !prerequisites() {
        return;
    }
    let mut f = Fixture::new("update");
    let _listeners = listeners();
    let cache = addr("127.0.0.1:7001");
    f.apply(&ruleset(SCENARIO));
    assert_eq!(f.connect(OTHER, Proto::Tcp, cache), Outcome::NotPermitted);
    let before = program_ids(&f);

    let opened = SCENARIO.replace("from: { user: web }", "from: { user: \"*\" }");
    let snapshot = f.apply(&ruleset(&opened));
    assert!(snapshot.content.is_some());
    assert_eq!(f.connect(OTHER, Proto::Tcp, cache), Outcome::Connected);
    assert_eq!(program_ids(&f), before, "the programs were reloaded");

    // An unchanged policy plans nothing; rollback restores the first policy, again by maps.
    assert!(f.backend.plan(&ruleset(&opened)).unwrap().is_empty());
    f.backend.rollback(&snapshot).unwrap();
    assert_eq!(f.connect(OTHER, Proto::Tcp, cache), Outcome::NotPermitted);
    assert_eq!(program_ids(&f), before);
    assert!(f.backend.verify(&ruleset(SCENARIO)).unwrap().is_empty());
}

#[test]
fn flush_detaches_and_removes_only_what_zt_pinned() {
    if !prerequisites() {
        return;
    }
    let mut f = Fixture::new("flush");
    let _listeners = listeners();
    let cache = addr("[::1]:7001");
    // Something else's directory in zt's pin directory must survive the flush.
    std::fs::create_dir_all(f.pin_dir.join("someone-else")).unwrap();
    f.apply(&ruleset(SCENARIO));
    assert_eq!(f.connect(OTHER, Proto::Tcp, cache), Outcome::NotPermitted);
    assert!(f.backend.status().unwrap().installed);

    f.backend.flush().unwrap();
    assert_eq!(f.connect(OTHER, Proto::Tcp, cache), Outcome::Connected);
    assert_eq!(
        f.pins(),
        [f.pin_dir.join("someone-else").display().to_string()]
    );
    let status = f.backend.status().unwrap();
    assert!(!status.installed && status.counters.is_empty());
    let drift = f.backend.verify(&ruleset(SCENARIO)).unwrap();
    assert_eq!(drift.items[0].kind, zt_core::DriftKind::Gone);
}

#[test]
fn status_counts_calls_per_rule_and_audit_names_the_refusing_rule() {
    if !prerequisites() {
        return;
    }
    let mut f = Fixture::new("status");
    let _listeners = listeners();
    f.apply(&ruleset(SCENARIO));
    f.backend.drain_audit().unwrap();
    assert_eq!(
        f.connect(WEB, Proto::Tcp, addr("127.0.0.1:7001")),
        Outcome::Connected
    );
    assert_eq!(
        f.connect(WEB, Proto::Tcp, addr("[::1]:7001")),
        Outcome::Connected
    );
    assert_eq!(
        f.connect(DB, Proto::Tcp, addr("127.0.0.1:7002")),
        Outcome::NotPermitted
    );

    let status = f.backend.status().unwrap();
    let count = |name: &str| status.counter(name).map(|c| c.packets);
    assert_eq!(count("web-to-cache"), Some(2));
    assert_eq!(count("db-no-egress"), Some(1));
    assert_eq!(count("dns-for-all"), Some(0));

    let records = f.backend.drain_audit().unwrap();
    let refusal = records
        .iter()
        .find(|r| r.effect == Effect::Refuse)
        .expect("a refusal record");
    assert_eq!(refusal.rule, "db-no-egress");
    assert_eq!((refusal.uid, refusal.gid), (DB.uid, DB.gid));
    assert_eq!(refusal.destination, addr("127.0.0.1:7002"));
    assert_eq!(refusal.protocol, 6);
    assert_eq!(refusal.hook, Some(SocketHook::Connect4));
    assert!(!refusal.comm.is_empty() && refusal.pid > 0);
    assert_eq!(
        records.len(),
        1,
        "allowed calls of rules without log are not recorded"
    );
    assert!(
        f.backend.drain_audit().unwrap().is_empty(),
        "audit drains the ring"
    );
}

#[test]
fn cgroup_rules_match_the_callers_cgroup() {
    if !prerequisites() {
        return;
    }
    let mut f = Fixture::new("cgroup");
    let elsewhere = zt_testkit::TestCgroup::new("elsewhere");
    let _listeners = listeners();
    let yaml = format!(
        r#"
version: "1.0"
rules:
  - name: other-cgroup
    from: {{ cgroup: "{}" }}
    to: {{ port: 7001 }}
    action: allow
  - name: this-cgroup
    from: {{ cgroup: "{}" }}
    to: {{ port: 7002 }}
    action: allow
"#,
        elsewhere.relative(),
        f.cgroup.relative()
    );
    f.apply(&ruleset(&yaml));
    assert_eq!(
        f.connect(OTHER, Proto::Tcp, addr("127.0.0.1:7002")),
        Outcome::Connected
    );
    assert_eq!(
        f.connect(OTHER, Proto::Tcp, addr("[::1]:7002")),
        Outcome::Connected
    );
    assert_eq!(
        f.connect(OTHER, Proto::Tcp, addr("127.0.0.1:7001")),
        Outcome::NotPermitted
    );

    let missing = yaml.replace(&elsewhere.relative(), "zt-no-such-cgroup");
    let err = f.backend.plan(&ruleset(&missing)).unwrap_err();
    assert!(
        err.to_string()
            .contains("rule 'other-cgroup': cgroup 'zt-no-such-cgroup' does not exist"),
        "{err}"
    );
}

#[test]
fn ingress_and_icmp_rules_are_refused_at_plan_time_and_nothing_is_installed() {
    if !prerequisites() {
        return;
    }
    let mut f = Fixture::new("refused");
    for yaml in [
        "version: \"1.0\"\nrules:\n  - name: https-in\n    direction: ingress\n    to: { port: 443 }\n    action: allow\n",
        "version: \"1.0\"\nrules:\n  - name: ping\n    from: { user: \"*\" }\n    to: { protocol: icmp }\n    action: allow\n",
    ] {
        let err = f.backend.plan(&ruleset(yaml)).unwrap_err();
        assert!(
            matches!(
                err,
                zt_core::Error::Unsupported {
                    backend: "ebpf",
                    ..
                }
            ),
            "{err}"
        );
    }
    assert!(f.pins().is_empty(), "{:?}", f.pins());
}
