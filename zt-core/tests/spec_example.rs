//! The specification's example policy (examples/rules.yaml) compiled to a ruleset.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic on a broken fixture

use zt_core::{Policy, Probe, ProbeProtocol, StaticResolver, Verdict};

fn resolver() -> StaticResolver {
    StaticResolver::new()
        .user("web-user", 1001)
        .user("postgres", 1002)
}

fn example() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/rules.yaml");
    std::fs::read_to_string(path).expect("examples/rules.yaml is readable")
}

#[test]
fn spec_example_compiles_to_the_expected_ruleset_without_warnings() {
    let loaded = Policy::from_yaml(&example(), "examples/rules.yaml", &resolver())
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(loaded.warnings.is_empty(), "{}", loaded.warnings);
    insta::assert_snapshot!(loaded.policy.ruleset().to_string());
}

#[test]
fn spec_example_decides_the_specification_scenarios() {
    let ruleset = Policy::from_yaml(&example(), "examples/rules.yaml", &resolver())
        .unwrap_or_else(|e| panic!("{e}"))
        .policy
        .ruleset();
    let decide = |uid: u32, proto: ProbeProtocol, dst: &str| {
        let probe = Probe::connect(proto, uid, uid, dst.parse().expect("socket address"));
        let d = ruleset.evaluate(&probe);
        (d.verdict, d.name)
    };
    let tcp = ProbeProtocol::Tcp;
    // Test case 1: web-user reaches Redis, over IPv4 and IPv6.
    assert_eq!(
        decide(1001, tcp, "127.0.0.1:6379"),
        (Verdict::Accept, "web-to-redis".into())
    );
    assert_eq!(
        decide(1001, tcp, "[::1]:6379"),
        (Verdict::Accept, "web-to-redis-v6".into())
    );
    // Test case 2: another user does not.
    assert_eq!(
        decide(1003, tcp, "127.0.0.1:6379"),
        (Verdict::Drop, "zt:default".into())
    );
    // web-user to an unlisted port, and root, fall to the default deny.
    assert_eq!(
        decide(1001, tcp, "127.0.0.1:8080"),
        (Verdict::Drop, "zt:default".into())
    );
    assert_eq!(
        decide(0, tcp, "127.0.0.1:6379"),
        (Verdict::Drop, "zt:default".into())
    );
    // postgres is isolated, even for DNS (its deny comes first); everyone else gets DNS.
    let udp = ProbeProtocol::Udp;
    assert_eq!(
        decide(1002, udp, "192.0.2.53:53"),
        (Verdict::Drop, "db-no-egress".into())
    );
    assert_eq!(
        decide(1003, udp, "192.0.2.53:53"),
        (Verdict::Accept, "allow-dns".into())
    );
    // Inbound: SSH always, HTTPS from the office only.
    let inbound = |src: &str, dst: &str| {
        let p = Probe::inbound(
            tcp,
            src.parse().expect("ip"),
            dst.parse().expect("socket address"),
        );
        ruleset.evaluate(&p).name
    };
    assert_eq!(inbound("203.0.113.9", "198.51.100.1:22"), "zt:ssh");
    assert_eq!(
        inbound("192.0.2.7", "198.51.100.1:443"),
        "https-from-office"
    );
    assert_eq!(
        inbound("2001:db8:100::7", "[2001:db8::1]:443"),
        "https-from-office"
    );
    assert_eq!(inbound("203.0.113.9", "198.51.100.1:443"), "zt:default");
}
