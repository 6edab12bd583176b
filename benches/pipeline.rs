//! Parse + validate + resolve + order, for 100, 1 000 and 10 000 rules (target: 10 000 < 10 ms).
//!
//! The generated policy looks like a real one grown large: block-style YAML as in the spec,
//! 50 service users (by name, through an in-memory resolver, so NSS is not what is measured),
//! a few numeric uids and groups, IPv4 and IPv6 destinations, single ports, lists and ranges,
//! and one ingress rule in ten.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use std::fmt::Write;
use zt::{Policy, StaticResolver};

fn resolver() -> StaticResolver {
    (0..50).fold(StaticResolver::new(), |r, i| {
        r.user(&format!("svc-{i}"), 2000 + i)
            .group(&format!("team-{i}"), 3000 + i)
    })
}

/// A policy of `n` rules in the configuration format.
pub fn policy_yaml(n: usize) -> String {
    let mut s = String::with_capacity(n * 160);
    s.push_str("version: \"1.0\"\nsettings:\n  default_policy: deny\n  log_blocked: true\n  log_prefix: \"ZT-BLOCKED: \"\n  preserve_ssh: true\nrules:\n");
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
            match i % 3 {
                0 => {
                    let _ = writeln!(
                        s,
                        "      host: 10.{a}.{b}.1\n      port: {}\n      protocol: tcp",
                        1024 + i
                    );
                }
                1 => {
                    let _ = writeln!(
                        s,
                        "      hosts: [\"fd00::{a:x}:{b:x}\", 192.168.{a}.{b}]\n      ports: [{}, \"{}-{}\"]\n      protocol: both",
                        1024 + i,
                        30000 + i,
                        30010 + i
                    );
                }
                _ => {
                    let _ = writeln!(s, "      ports: [{}]", 1024 + i);
                }
            }
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
    let mut group = c.benchmark_group("parse_validate_resolve_order");
    for n in [100usize, 1_000, 10_000] {
        let yaml = policy_yaml(n);
        // Fail loudly (not measure nonsense) if the generated policy stops validating.
        if let Err(e) = Policy::from_yaml(&yaml, "bench.yaml", &resolver) {
            panic!("generated policy is invalid: {e}");
        }
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

criterion_group!(benches, bench);
criterion_main!(benches);
