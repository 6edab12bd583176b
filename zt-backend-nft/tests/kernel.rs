//! The nft backend against the real kernel. Every test runs in a network namespace it creates
//! (zt-testkit's `Netns`), with real processes as real uids making real connections.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic on a broken fixture

use zt_backend_nft::NftBackend;
use zt_core::{Backend, DriftKind, Driver, Ruleset};
use zt_testkit::scenarios::{
    self, EMPTY, OTHER, SHORT, SPEC, addr, apply, blocked, ruleset, tcp_outcome,
};
use zt_testkit::{Listeners, Netns, Outcome, Prerequisite, Proto, TestCgroup, require};

fn ready() -> bool {
    require(&[
        Prerequisite::Root,
        Prerequisite::Binary("nft"),
        Prerequisite::Binary("ip"),
    ])
}

#[test]
fn only_the_allowed_uid_reaches_the_allowed_port_over_ipv4_and_ipv6() {
    if !ready() {
        return;
    }
    let _ns = Netns::new();
    let status = scenarios::spec_scenario(&mut NftBackend::new());
    // Counters name the rules that matched, and survive the apply that added root's rule.
    let count = |n: &str| status.counter(n).map_or(0, |c| c.packets);
    assert!(
        count("web-to-redis") > 0 && count("root-to-redis") > 0,
        "{:?}",
        status.counters
    );
    assert!(count("web-dns") > 0, "{:?}", status.counters);
}

#[test]
fn a_reject_rule_fails_fast_with_connection_refused() {
    if !ready() {
        return;
    }
    let _ns = Netns::new();
    scenarios::reject_scenario(&mut NftBackend::new());
}

#[test]
fn inbound_ssh_from_another_host_is_accepted_and_other_ports_are_not() {
    if !ready() {
        return;
    }
    let ns = Netns::new();
    scenarios::inbound_ssh_scenario(&ns, &mut NftBackend::new());
}

#[test]
fn an_established_connection_survives_an_apply_that_removes_its_rule() {
    if !ready() {
        return;
    }
    let _ns = Netns::new();
    scenarios::established_scenario(&mut NftBackend::new());
}

fn list(ns: &Netns, args: &[&str]) -> String {
    ns.run_ok("nft", args)
}

#[test]
fn a_foreign_table_is_byte_identical_after_apply_reapply_rollback_and_flush() {
    if !ready() {
        return;
    }
    let ns = Netns::new();
    ns.run_ok("nft", &["add", "table", "inet", "other"]);
    ns.run_ok(
        "nft",
        &[
            "add",
            "chain",
            "inet",
            "other",
            "out",
            "{ type filter hook output priority 10; policy accept; }",
        ],
    );
    ns.run_ok(
        "nft",
        &[
            "add", "rule", "inet", "other", "out", "tcp", "dport", "9999", "counter", "drop",
        ],
    );
    let before = list(&ns, &["-a", "list", "table", "inet", "other"]);
    let mut b = NftBackend::new();
    let first = apply(&mut b, &ruleset(SPEC));
    assert_eq!(list(&ns, &["-a", "list", "table", "inet", "other"]), before);
    apply(&mut b, &ruleset(SPEC));
    assert_eq!(list(&ns, &["-a", "list", "table", "inet", "other"]), before);
    b.rollback(&first).unwrap();
    assert_eq!(list(&ns, &["-a", "list", "table", "inet", "other"]), before);
    assert!(
        b.read().unwrap().is_none(),
        "rollback to 'nothing' removed zt's table"
    );
    apply(&mut b, &ruleset(SPEC));
    b.flush().unwrap();
    assert_eq!(list(&ns, &["-a", "list", "table", "inet", "other"]), before);
    assert!(!list(&ns, &["list", "ruleset"]).contains("table inet zt"));
}

#[test]
fn reapplying_the_same_policy_sends_nothing() {
    if !ready() {
        return;
    }
    let ns = Netns::new();
    let mut b = NftBackend::new();
    apply(&mut b, &ruleset(SPEC));
    // Handles change whenever the table is rebuilt: identical handles prove nothing was sent.
    let before = list(&ns, &["-a", "-s", "list", "ruleset"]);
    let plan = b.plan(&ruleset(SPEC)).unwrap();
    assert!(plan.is_empty(), "{}", plan.diff);
    b.apply(&plan).unwrap();
    assert_eq!(list(&ns, &["-a", "-s", "list", "ruleset"]), before);
    assert!(b.verify(&ruleset(SPEC)).unwrap().is_empty());
}

#[test]
fn rollback_restores_the_previous_policy_in_one_transaction() {
    if !ready() {
        return;
    }
    let ns = Netns::new();
    let mut b = NftBackend::new();
    apply(&mut b, &ruleset(SPEC));
    let old = list(&ns, &["-s", "list", "table", "inet", "zt"]);
    let snapshot = apply(&mut b, &ruleset(EMPTY));
    assert_ne!(list(&ns, &["-s", "list", "table", "inet", "zt"]), old);
    b.rollback(&snapshot).unwrap();
    assert_eq!(list(&ns, &["-s", "list", "table", "inet", "zt"]), old);
}

#[test]
fn verify_reports_drift_per_policy_rule() {
    if !ready() {
        return;
    }
    let ns = Netns::new();
    let mut b = NftBackend::new();
    // Two plain rules (fewer tuples than a set needs), so one can be deleted by handle.
    let rs = ruleset(
        "version: \"1.0\"\nrules:\n  - name: web-to-redis\n    from: {uid: 1001}\n    to: {port: 6379}\n    action: allow\n  - name: web-dns\n    from: {uid: 1001}\n    to: {port: 5353, protocol: udp}\n    action: allow\n",
    );
    apply(&mut b, &rs);
    assert!(b.verify(&rs).unwrap().is_empty());
    // Someone deletes the rule that implements web-dns.
    let listing = list(&ns, &["-a", "list", "chain", "inet", "zt", "output"]);
    let handle = listing
        .lines()
        .find(|l| l.contains("comment \"web-dns\""))
        .and_then(|l| l.rsplit("# handle ").next())
        .unwrap()
        .trim()
        .to_owned();
    ns.run_ok(
        "nft",
        &["delete", "rule", "inet", "zt", "output", "handle", &handle],
    );
    let drift = b.verify(&rs).unwrap();
    assert!(
        drift
            .items
            .iter()
            .any(|i| i.subject == "web-dns"
                && matches!(i.kind, DriftKind::Missing | DriftKind::Changed)),
        "{drift}"
    );
    ns.run_ok("nft", &["delete", "table", "inet", "zt"]);
    assert_eq!(b.verify(&rs).unwrap().items[0].kind, DriftKind::Gone);
}

/// A policy that compiles to every construct: sets of both families, port ranges, partial
/// prefixes, logging, reject, ICMP, ingress.
fn complex() -> Ruleset {
    let mut y = String::from("version: \"1.0\"\nsettings:\n  log_rate: 5/minute\nrules:\n");
    for i in 0..24u16 {
        y += &format!(
            "  - name: svc-{i}\n    from: {{uid: {}}}\n    to: {{hosts: [10.{i}.0.0/16, \"fd00:{i:x}::/64\"], ports: [{}, \"{}-{}\"], protocol: both}}\n    action: allow\n",
            2000 + i % 5,
            10000 + i,
            20000 + i * 20,
            20010 + i * 20
        );
    }
    y += "  - name: g\n    from: {gid: 7}\n    to: {host: 10.16.0.0/12}\n    action: reject\n";
    y += "  - name: ping\n    from: {user: \"*\"}\n    to: {protocol: icmp}\n    action: deny\n    log: true\n";
    y += "  - name: in\n    direction: ingress\n    from: {hosts: [192.0.2.0/25, \"2001:db8::/33\"]}\n    to: {port: 443}\n    action: reject\n    log: true\n";
    ruleset(&y)
}

/// Runs of rules whose networks share one prefix length and name single ports: sets of
/// masked addresses (hash sets), one per family.
fn same_prefixes() -> Ruleset {
    let mut y = String::from("version: \"1.0\"\nrules:\n");
    for i in 0..8u16 {
        y += &format!(
            "  - name: app-{i}\n    from: {{uid: {}}}\n    to: {{hosts: [127.0.0.0/8, \"fd00:{i:x}::/64\"], port: {}}}\n    action: allow\n",
            1001 + u32::from(i % 2),
            7001 + i
        );
    }
    ruleset(&y)
}

#[test]
fn networks_of_one_prefix_length_are_matched_by_their_masked_address() {
    if !ready() {
        return;
    }
    let _ns = Netns::new();
    let mut b = NftBackend::new();
    let rs = same_prefixes();
    let script = b.script(&rs);
    assert!(
        script.contains("ip daddr & 255.0.0.0") && !script.contains("flags interval"),
        "{script}"
    );
    let _l = Listeners::start(&[
        (Proto::Tcp, addr("127.0.0.1:7001")),
        (Proto::Tcp, addr("127.0.0.2:7003")),
        (Proto::Tcp, addr("127.0.0.3:7002")),
    ]);
    apply(&mut b, &rs);
    let web = zt_testkit::Identity::new(1001, 1001);
    // app-0 and app-2: uid 1001 to 127.0.0.0/8 on 7001 and 7003, any address in the /8.
    assert_eq!(tcp_outcome(web, "127.0.0.1:7001"), Outcome::Connected);
    assert_eq!(tcp_outcome(web, "127.0.0.2:7003"), Outcome::Connected);
    // Port 7002 is app-1's, for uid 1002.
    assert!(blocked(tcp_outcome(web, "127.0.0.3:7002")));
    assert!(blocked(tcp_outcome(OTHER, "127.0.0.1:7001")));
    assert!(b.verify(&rs).unwrap().is_empty());
    let status = b.status().unwrap();
    assert!(
        status.counter("app-0").is_some_and(|c| c.packets > 0),
        "{:?}",
        status.counters
    );
}

#[test]
fn the_netlink_table_and_the_nft_script_build_the_same_kernel_state() {
    if !ready() {
        return;
    }
    let ns = Netns::new();
    let mut b = NftBackend::new();
    for rs in [ruleset(SPEC), complex(), same_prefixes()] {
        apply(&mut b, &rs);
        let desired = b.table_for(&rs).unwrap().normalized();
        let via_netlink = b.read().unwrap().unwrap();
        assert_eq!(
            via_netlink, desired,
            "the kernel holds exactly what was sent"
        );
        let json_netlink = list(&ns, &["-j", "list", "table", "inet", "zt"]);
        let script = b.script(&rs);
        let path = std::env::temp_dir().join(format!("zt-nft-test-{}.nft", std::process::id()));
        std::fs::write(&path, &script).unwrap();
        let p = path.to_str().unwrap();
        ns.run_ok("nft", &["-c", "-f", p]);
        b.flush().unwrap();
        ns.run_ok("nft", &["-f", p]);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(
            b.read().unwrap().unwrap(),
            desired,
            "nft built the same expressions"
        );
        let json_text = list(&ns, &["-j", "list", "table", "inet", "zt"]);
        assert_eq!(without_handles(&json_netlink), without_handles(&json_text));
    }
}

/// `nft -j` output without the handles (which number objects in creation order).
fn without_handles(json: &str) -> serde_json::Value {
    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                m.remove("handle");
                m.values_mut().for_each(strip);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut v: serde_json::Value = serde_json::from_str(json).unwrap();
    strip(&mut v);
    v
}

#[test]
fn a_cgroup_rule_matches_processes_in_that_cgroup_only() {
    if !require(&[
        Prerequisite::Root,
        Prerequisite::Binary("nft"),
        Prerequisite::CgroupV2,
    ]) {
        return;
    }
    let _ns = Netns::new();
    let _l = Listeners::start(&[(Proto::Tcp, addr("127.0.0.1:6379"))]);
    let cg = TestCgroup::new("web");
    let mut b = NftBackend::new();
    let y = format!(
        "version: \"1.0\"\nrules:\n  - name: web-cgroup\n    from: {{cgroup: \"{}\"}}\n    to: {{port: 6379}}\n    action: allow\n",
        cg.relative()
    );
    apply(&mut b, &ruleset(&y));
    assert_eq!(
        cg.connect_as(OTHER, Proto::Tcp, addr("127.0.0.1:6379"), SHORT),
        Outcome::Connected
    );
    assert!(blocked(tcp_outcome(OTHER, "127.0.0.1:6379")));
}

#[test]
fn a_cgroup_that_does_not_exist_is_refused_before_anything_is_sent() {
    if !ready() {
        return;
    }
    let _ns = Netns::new();
    let mut b = NftBackend::new();
    let y = "version: \"1.0\"\nrules:\n  - name: ghost\n    from: {cgroup: zt-no-such-cgroup/x}\n    action: allow\n";
    let err = b.plan(&ruleset(y)).unwrap_err().to_string();
    assert!(
        err.contains("rule 'ghost'") && err.contains("zt-no-such-cgroup/x"),
        "{err}"
    );
    assert!(b.read().unwrap().is_none());
}

#[test]
fn the_kernel_refusing_a_transaction_leaves_the_previous_table_and_names_the_culprit() {
    if !ready() {
        return;
    }
    let ns = Netns::new();
    let mut b = NftBackend::new();
    apply(&mut b, &ruleset(SPEC));
    let before = list(&ns, &["-a", "-s", "list", "ruleset"]);
    // A set lookup naming a set that does not exist: the kernel refuses the whole batch.
    let mut broken = b.table_for(&ruleset(SPEC)).unwrap();
    broken.chains.last_mut().unwrap().rules.insert(
        0,
        zt_backend_nft::low::LowRule {
            exprs: vec![zt_backend_nft::low::LowExpr::Lookup {
                sreg: 1,
                set: "missing".into(),
            }],
            comment: Some("broken-rule".into()),
        },
    );
    let mut kernel = zt_backend_nft::Netlink::default();
    let err = zt_backend_nft::Kernel::replace(&mut kernel, "zt", true, Some(&broken))
        .unwrap_err()
        .to_string();
    assert!(err.contains("broken-rule"), "{err}");
    assert_eq!(
        list(&ns, &["-a", "-s", "list", "ruleset"]),
        before,
        "nothing changed"
    );
    // A transaction built for a kernel without zt's table, sent where the table has appeared
    // since, is refused whole too: its chains exist already.
    let fresh = b.table_for(&ruleset(SPEC)).unwrap();
    let err = zt_backend_nft::Kernel::replace(&mut kernel, "zt", false, Some(&fresh))
        .expect_err("building over an existing table must fail")
        .to_string();
    assert!(
        err.contains("table inet zt") && err.contains("exists"),
        "{err}"
    );
    assert_eq!(list(&ns, &["-a", "-s", "list", "ruleset"]), before);
}

#[test]
fn the_kernel_decides_generated_policies_like_the_reference_evaluator() {
    if !ready() {
        return;
    }
    let ns = Netns::new();
    let env = zt_testkit::differential::Environment::new(&ns);
    let mut backend = NftBackend::new();
    // At least 1 000 (policy, probe) pairs; ZT_DIFFERENTIAL_PAIRS asks for more.
    zt_testkit::differential::assert_agrees("nft", 8, 1_000, |case| {
        zt_testkit::differential::check(case, &mut backend, &env)
    });
}

/// Lockout protection: with `preserve_ssh` on, no generated policy blocks inbound SSH on the
/// configured ports, checked from a second namespace.
#[test]
fn no_generated_policy_cuts_off_inbound_ssh() {
    if !ready() {
        return;
    }
    let ns = Netns::new();
    let env = zt_testkit::differential::Environment::new(&ns);
    let mut backend = NftBackend::new();
    zt_testkit::differential::assert_ssh_never_cut_off("nft", &mut backend, &env);
}
