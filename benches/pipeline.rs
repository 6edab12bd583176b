//! Parse + validate + resolve + order, for 100, 1 000 and 10 000 rules (target: 10 000 < 10 ms),
//! for two generated policies: shaped like the specification's example, and heavier.
//!
//! Both are block-style YAML as in the specification, with 50 service users and 50 groups by
//! name (resolved through an in-memory resolver, so NSS is not what is measured), numeric uids,
//! IPv4 and IPv6 destinations, and ingress rules.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use std::fmt::Write;
use zt::{Policy, StaticResolver};

fn resolver() -> StaticResolver {
    (0..50).fold(StaticResolver::new(), |r, i| {
        r.user(&format!("svc-{i}"), 2000 + i)
            .group(&format!("team-{i}"), 3000 + i)
    })
}

/// A policy of `n` rules shaped like the specification's example: its five kinds of rule in
/// turn (user to host and port, user to port, a logged deny of a network, any user to a UDP
/// port, an ingress allow from networks), each with its own sender, destination and port.
/// About 115 bytes of YAML per rule.
pub fn spec_shaped(n: usize) -> String {
    let mut s = String::with_capacity(n * 128);
    s.push_str("version: \"1.0\"\nsettings:\n  default_policy: deny\n  log_blocked: true\n  log_prefix: \"ZT-BLOCKED: \"\n  preserve_ssh: true\nrules:\n");
    for i in 0..n {
        let (a, b) = (i / 256 % 256, i % 256);
        let user = format!("svc-{}", i % 50);
        let port = 1024 + i;
        let _ = writeln!(s, "  - name: rule-{i:05}");
        let _ = match i % 5 {
            0 => write!(
                s,
                "    description: \"web app to its cache\"\n    from:\n      user: {user}\n    to:\n      host: 10.{a}.{b}.1\n      port: {port}\n      protocol: tcp\n    action: allow\n"
            ),
            1 => write!(
                s,
                "    from:\n      user: {user}\n    to:\n      port: {port}\n      protocol: tcp\n    action: allow\n"
            ),
            2 => write!(
                s,
                "    from:\n      uid: {}\n    to:\n      host: \"fd00:{a:x}:{b:x}::/48\"\n    action: deny\n    log: true\n",
                5000 + i
            ),
            3 => write!(
                s,
                "    from:\n      group: team-{}\n    to:\n      port: {port}\n      protocol: udp\n    action: allow\n",
                i % 50
            ),
            _ => write!(
                s,
                "    direction: ingress\n    from:\n      hosts: [10.{a}.{b}.0/24, \"fd01:{a:x}:{b:x}::/48\"]\n    to:\n      port: {port}\n    action: allow\n"
            ),
        };
    }
    s
}

/// A heavier policy: every rule described, destinations in both families, port lists with
/// ranges. About 170 bytes of YAML per rule.
pub fn heavy(n: usize) -> String {
    let mut s = String::with_capacity(n * 176);
    s.push_str("version: \"1.0\"\nsettings:\n  default_policy: deny\nrules:\n");
    for i in 0..n {
        let (a, b) = (i / 256 % 256, i % 256);
        let _ = writeln!(s, "  - name: rule-{i:05}");
        if i % 10 == 9 {
            let _ = write!(
                s,
                "    direction: ingress\n    from:\n      hosts: [10.{a}.{b}.0/24, \"fd00:{a:x}:{b:x}::/48\"]\n    to:\n      port: {}\n",
                1024 + i
            );
        } else {
            let from = match i % 7 {
                0 => format!("uid: {}", 5000 + i % 100),
                1 => format!("group: team-{}", i % 50),
                _ => format!("user: svc-{}", i % 50),
            };
            let _ = write!(
                s,
                "    description: generated rule {i}\n    from:\n      {from}\n    to:\n"
            );
            let _ = match i % 3 {
                0 => writeln!(
                    s,
                    "      host: 10.{a}.{b}.1\n      port: {}\n      protocol: tcp",
                    1024 + i
                ),
                1 => writeln!(
                    s,
                    "      hosts: [\"fd00::{a:x}:{b:x}\", 192.168.{a}.{b}]\n      ports: [{}, \"{}-{}\"]\n      protocol: both",
                    1024 + i,
                    30000 + i,
                    30010 + i
                ),
                _ => writeln!(s, "      ports: [{}]", 1024 + i),
            };
        }
        let _ = writeln!(
            s,
            "    action: {}",
            if i % 5 == 4 { "deny" } else { "allow" }
        );
    }
    s
}

fn bench(c: &mut Criterion) {
    let resolver = resolver();
    for (name, generate) in [
        ("spec_shaped", spec_shaped as fn(usize) -> String),
        ("heavy", heavy),
    ] {
        let mut group = c.benchmark_group(format!("parse_validate_resolve_order/{name}"));
        for n in [100usize, 1_000, 10_000] {
            let yaml = generate(n);
            // Fail loudly (rather than measure nonsense) if the generated policy stops validating.
            match Policy::from_yaml(&yaml, "bench.yaml", &resolver) {
                Ok(loaded) if loaded.policy.rules().len() == n => {}
                Ok(_) => panic!("generated policy lost rules"),
                Err(e) => panic!("generated policy is invalid: {e}"),
            }
            eprintln!("{name}/{n}: {} bytes of YAML", yaml.len());
            group.bench_with_input(BenchmarkId::from_parameter(n), &yaml, |b, yaml| {
                b.iter(|| {
                    let loaded = Policy::from_yaml(yaml, "bench.yaml", &resolver);
                    loaded
                        .map(|l| l.policy.ruleset().entries().len())
                        .unwrap_or(0)
                });
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
