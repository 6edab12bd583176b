//! The differential harness itself: the generator's policies are valid and varied, and
//! `check` agrees with a kernel that enforces a policy and reports one that does not.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use std::collections::HashSet;
use std::io::Write;
use std::process::{Command, Stdio};
use zt_core::{
    Artifact, ArtifactFile, AuditSource, Backend, Boot, Capabilities, DefaultPolicy, Diff,
    Direction, Drift, Error, Persistence, Plan, Policy, Protocol, RuleBuilder, Ruleset, Snapshot,
    StaticResolver, Status, Verdict,
};
use zt_testkit::differential::{self, ADDRESSES, Case, Environment, PORTS};
use zt_testkit::{Netns, Prerequisite, require};

#[test]
fn generated_policies_build_round_trip_and_reach_every_verdict() {
    let strategy = differential::cases();
    let mut runner = TestRunner::deterministic();
    let mut seen = HashSet::new();
    let mut deciding_rules = 0;
    for _ in 0..300 {
        let mut tree = strategy.new_tree(&mut runner).unwrap();
        // Shrunk cases are built by the same code: a few steps must stay valid too.
        for _ in 0..5 {
            tree.simplify();
        }
        for case in [tree.current()] {
            let yaml = case.policy.to_yaml().unwrap();
            let reread = Policy::from_yaml(&yaml, "generated.yaml", &StaticResolver::new())
                .unwrap_or_else(|e| panic!("{e}\n{yaml}"));
            assert_eq!(reread.policy, case.policy, "{yaml}");
            assert!(case.policy.settings().preserve_established());
            assert!(!case.probes.is_empty());
            let ruleset = case.policy.ruleset();
            for spec in &case.probes {
                assert!(ADDRESSES.contains(&spec.probe.dst), "{spec}");
                assert!(PORTS.contains(&spec.probe.dst_port.unwrap()), "{spec}");
                let decision = ruleset.evaluate(&spec.probe);
                if !decision.name.starts_with("zt:") {
                    deciding_rules += 1;
                }
                seen.insert((spec.probe.direction, decision.verdict));
            }
        }
    }
    for direction in [Direction::Egress, Direction::Ingress] {
        for verdict in [Verdict::Accept, Verdict::Drop, Verdict::Reject] {
            assert!(
                seen.contains(&(direction, verdict)),
                "no {direction} {verdict:?} in 300 cases"
            );
        }
    }
    assert!(
        deciding_rules > 1000,
        "policy rules decided only {deciding_rules} probes"
    );
}

/// A backend that installs a fixed nft script (or nothing), to test the harness alone.
struct Script(Option<&'static str>);

impl Backend for Script {
    fn name(&self) -> &'static str {
        "script"
    }
    fn render(&self, _: &Ruleset) -> Result<Artifact, Error> {
        let files = self.0.iter().map(|s| ArtifactFile {
            name: "script.nft".into(),
            contents: (*s).into(),
        });
        Ok(Artifact {
            files: files.collect(),
        })
    }
    fn plan(&mut self, ruleset: &Ruleset) -> Result<Plan, Error> {
        Ok(Plan::new("script", ruleset.clone(), Diff::default()))
    }
    fn snapshot(&mut self) -> Result<Snapshot, Error> {
        Ok(Snapshot {
            backend: "script".into(),
            content: None,
        })
    }
    fn apply(&mut self, plan: &Plan) -> Result<Snapshot, Error> {
        for file in &self.render(&plan.ruleset)?.files {
            let mut nft = Command::new("nft")
                .args(["-f", "-"])
                .stdin(Stdio::piped())
                .spawn()
                .unwrap();
            nft.stdin
                .take()
                .unwrap()
                .write_all(file.contents.as_bytes())
                .unwrap();
            assert!(nft.wait().unwrap().success(), "nft refused the script");
        }
        Ok(Snapshot {
            backend: "script".into(),
            content: None,
        })
    }
    fn verify(&mut self, _: &Ruleset) -> Result<Drift, Error> {
        Ok(Drift::default())
    }
    fn rollback(&mut self, _: &Snapshot) -> Result<(), Error> {
        Ok(())
    }
    fn status(&mut self) -> Result<Status, Error> {
        Ok(Status::default())
    }
    fn flush(&mut self) -> Result<(), Error> {
        Ok(())
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::all()
    }
    fn persistence(&self, _: &Ruleset, _: &Boot) -> Result<Persistence, Error> {
        Ok(Persistence::default())
    }
    fn audit(&mut self) -> Result<AuditSource, Error> {
        Ok(AuditSource::KernelLog)
    }
}

/// A policy exercising every outcome, and the nft ruleset that implements it by hand.
fn policy() -> Policy {
    Policy::builder()
        .default_policy(DefaultPolicy::Deny)
        .log_blocked(false)
        .rule(
            RuleBuilder::egress("web")
                .uid(4001)
                .to_host("127.0.0.1")
                .to_host("::1")
                .port(7001)
                .protocol(Protocol::Tcp)
                .allow(),
        )
        .rule(
            RuleBuilder::egress("veth-reject")
                .gid(4001)
                .to_host("10.77.0.0/24")
                .port(7002)
                .protocol(Protocol::Both)
                .reject(),
        )
        .rule(
            RuleBuilder::egress("udp-any")
                .any_user()
                .port(7010)
                .protocol(Protocol::Udp)
                .allow(),
        )
        .rule(
            RuleBuilder::ingress("in-web")
                .from_host("10.77.0.2")
                .from_host("fd77::2")
                .port(7001)
                .protocol(Protocol::Tcp)
                .allow(),
        )
        .rule(
            RuleBuilder::ingress("in-reject")
                .port(7002)
                .protocol(Protocol::Udp)
                .reject(),
        )
        .build(&StaticResolver::new())
        .unwrap()
        .policy
}

const SCRIPT: &str = r#"
flush ruleset
table inet zs {
    chain input {
        type filter hook input priority 0; policy accept;
        ct state invalid drop
        ct state established,related accept
        iif lo accept
        icmpv6 type { 130, 131, 132, 133, 134, 135, 136, 143 } accept
        tcp dport 22 accept
        ip saddr 10.77.0.2 tcp dport 7001 accept
        ip6 saddr fd77::2 tcp dport 7001 accept
        udp dport 7002 reject
        drop
    }
    chain output {
        type filter hook output priority 0; policy accept;
        ct state invalid drop
        ct state established,related accept
        icmpv6 type { 130, 131, 132, 133, 134, 135, 136, 143 } accept
        meta skuid 4001 ip daddr 127.0.0.1 tcp dport 7001 accept
        meta skuid 4001 ip6 daddr ::1 tcp dport 7001 accept
        meta skgid 4001 ip daddr 10.77.0.0/24 tcp dport 7002 reject with tcp reset
        meta skgid 4001 ip daddr 10.77.0.0/24 udp dport 7002 reject
        udp dport 7010 accept
        drop
    }
}
"#;

fn grid_case(policy: Policy) -> Case {
    Case {
        policy,
        probes: differential::probe_grid(),
    }
}

#[test]
fn check_agrees_with_a_kernel_that_enforces_the_policy() {
    if !require(&[
        Prerequisite::Root,
        Prerequisite::Binary("nft"),
        Prerequisite::Binary("ip"),
    ]) {
        return;
    }
    let netns = Netns::new();
    let env = Environment::new(&netns);
    // Nothing installed and everything allowed: every probe of the grid connects.
    let open = Policy::builder()
        .default_policy(DefaultPolicy::Allow)
        .build(&StaticResolver::new())
        .unwrap()
        .policy;
    differential::check(&grid_case(open), &mut Script(None), &env).unwrap();
    // The hand-written ruleset gives every probe the evaluator's decision.
    differential::check(&grid_case(policy()), &mut Script(Some(SCRIPT)), &env).unwrap();
}

#[test]
fn check_reports_each_disagreement_with_a_reproducer() {
    if !require(&[Prerequisite::Root, Prerequisite::Binary("ip")]) {
        return;
    }
    let netns = Netns::new();
    let env = Environment::new(&netns);
    let report = differential::check(&grid_case(policy()), &mut Script(None), &env).unwrap_err();
    let lines: Vec<&str> = report.lines().filter(|l| l.starts_with("  ")).collect();
    assert!(
        lines.iter().any(|l| l.contains("egress tcp to 127.0.0.1:7001 as uid 65534 gid 65534: evaluator zt:default (Drop) expects NotPermitted or TimedOut, the kernel gave Connected")),
        "{report}"
    );
    assert!(
        lines.iter().any(|l| l.contains("ingress udp from fd77::2 to [fd77::1]:7002: evaluator in-reject (Reject) expects Refused, the kernel gave Connected")),
        "{report}"
    );
    // Probes the policy accepts agree with an open kernel and are not reported.
    assert!(
        !lines.iter().any(|l| l.contains("evaluator web ")),
        "{report}"
    );
    assert!(
        report.contains("policy:\n") && report.contains("name: veth-reject"),
        "{report}"
    );
}
