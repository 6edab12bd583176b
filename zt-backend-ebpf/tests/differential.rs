//! The kernel against the reference evaluator on generated policies (zt-testkit's
//! `differential::cases`), under this backend's semantics.
//!
//! `differential::check` cannot be used as is: it expects netfilter's outcomes (reject →
//! Refused; ingress probes from the peer) and runs its egress probes outside any test cgroup,
//! where this backend's programs — attached only to the test's cgroup — never run. So the loop
//! is written here: each case keeps its egress rules (ingress and ICMP rules, which this
//! backend refuses at plan time and which never decide a TCP/UDP egress probe, are dropped),
//! is applied on top of the previous case (a generation flip each time), and every egress probe
//! runs inside the test cgroup, expecting Connected for accept and NotPermitted (EPERM) for
//! drop and reject.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Fixture, ebpf_outcome, prerequisites};
use std::net::SocketAddr;
use std::time::Duration;
use zt_core::{
    Addresses, Direction, Identity as Sender, Policy, PolicyBuilder, Protocol, RuleBuilder,
    StaticResolver,
};
use zt_testkit::differential::{self, Case, Environment};

/// The egress, non-ICMP rules of `policy`, with its settings.
fn egress_only(policy: &Policy) -> Policy {
    let s = policy.settings();
    let mut b = PolicyBuilder::new()
        .default_policy(s.default_policy())
        .log_blocked(s.log_blocked())
        .log_prefix(s.log_prefix().as_str())
        .log_rate(&s.log_rate().to_string())
        .preserve_ssh(s.preserve_ssh())
        .preserve_established(s.preserve_established());
    if let Some(ranges) = s.ssh_ports().ranges() {
        b = b.ssh_ports(ranges.iter().flat_map(|r| r.first()..=r.last()));
    }
    for rule in policy.rules() {
        if rule.direction() != Direction::Egress || rule.protocol() == Protocol::Icmp {
            continue;
        }
        let mut r = RuleBuilder::egress(rule.name().as_str());
        r = match rule.identity() {
            Sender::Any => r.any_user(),
            Sender::User { uid, .. } => r.uid(*uid),
            Sender::Group { gid, .. } => r.gid(*gid),
            Sender::Cgroup(path) => r.cgroup(path.as_str()),
        };
        if !rule.peers().is_any() {
            if rule.peers().v4() == &Addresses::All {
                r = r.to_host("0.0.0.0/0");
            }
            if rule.peers().v6() == &Addresses::All {
                r = r.to_host("::/0");
            }
            for net in rule.peers().nets() {
                r = r.to_host(&net.to_string());
            }
        }
        if let Some(ranges) = rule.ports().ranges() {
            for range in ranges {
                r = r.port_range(range.first(), range.last());
            }
        }
        r = r
            .protocol(rule.protocol())
            .action(rule.action())
            .priority(rule.priority())
            .log(rule.log());
        b = b.rule(r);
    }
    b.build(&StaticResolver::new())
        .unwrap_or_else(|e| panic!("rebuilding the egress rules failed: {e}"))
        .policy
}

/// Apply one case and realize its egress probes inside the test cgroup; how many it realized.
fn check(f: &mut Fixture, case: &Case) -> Result<usize, String> {
    let policy = egress_only(&case.policy);
    let rs = policy.ruleset();
    f.apply(&rs);
    let mut disagreements = Vec::new();
    let mut realized = 0;
    for spec in case
        .probes
        .iter()
        .filter(|s| s.probe.direction == Direction::Egress)
    {
        realized += 1;
        let mut probe = spec.probe.clone();
        probe.cgroup = Some(f.cgroup.relative());
        let decision = rs.evaluate(&probe);
        let expected = ebpf_outcome(decision.verdict);
        let dst = SocketAddr::new(probe.dst, probe.dst_port.expect("a port"));
        let mut outcome = f.connect(spec.id, spec.proto, dst);
        if outcome != expected {
            // Two noisy cores can delay an echo; a refusal is never late.
            outcome = f
                .cgroup
                .connect_as(spec.id, spec.proto, dst, Duration::from_secs(3));
        }
        if outcome != expected {
            disagreements.push(format!(
                "  {spec}: evaluator {} ({:?}) expects {expected}, the kernel gave {outcome}",
                decision.name, decision.verdict
            ));
        }
    }
    if disagreements.is_empty() {
        return Ok(realized);
    }
    Err(format!(
        "{} probes disagree with the reference evaluator under the ebpf backend:\n{}\npolicy:\n{}",
        disagreements.len(),
        disagreements.join("\n"),
        policy
            .to_yaml()
            .unwrap_or_else(|e| format!("<not writable as YAML: {e}>"))
    ))
}

fn run(cases: u32, pairs: usize) {
    if !prerequisites() {
        return;
    }
    let mut fixture = Fixture::new("differential");
    let _env = Environment::new(&fixture.netns);
    differential::assert_agrees("ebpf", cases, pairs, |case| check(&mut fixture, case));
}

#[test]
fn generated_policies_are_decided_as_the_reference_evaluator_says() {
    run(8, 1_000);
}

#[test]
#[ignore = "long: 500 generated policies (run with --ignored)"]
fn many_generated_policies_are_decided_as_the_reference_evaluator_says() {
    run(500, 20_000);
}
