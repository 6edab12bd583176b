//! The fault tests of `faults.rs` (written against nft's listing) for the iptables backend in
//! both variants and the eBPF backend: SIGKILL at the CLI's step boundaries and at the
//! backend's own, at random moments, and a kernel that refuses the change. What the kernel
//! holds is judged by each backend's own `verify` (exact: a missing, extra or changed rule or
//! map entry is drift), called from this test's namespace with the options the CLI gets.
//!
//! Neither backend changes the kernel in one transaction: iptables runs one restore per
//! family, eBPF fills a map generation and then flips the active index. A kill between the two
//! restores leaves IPv4 new and IPv6 old until the next zt command, whose recovery puts the
//! snapshot taken before the apply back; these tests count how often that happens and check
//! that recovery ends it.

#![cfg(feature = "fault-injection")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ALLOW_4001, ALLOW_4002, EbpfTarget, Zt};
use std::os::unix::process::ExitStatusExt;
use std::time::Duration;
use zt_backend_ebpf::EbpfBackend;
use zt_backend_iptables::{IptablesBackend, Variant};
use zt_core::{Backend, Ruleset};
use zt_testkit::scenarios::ruleset;
use zt_testkit::{Prerequisite, require};

/// A backend under test: the CLI options that select it and how to open it here.
struct Target {
    label: &'static str,
    options: Vec<String>,
    /// The backend's own step boundary, between its first kernel write and its last.
    step: &'static str,
    /// Whether a kill at `step` may leave a mix of the two policies (until recovery).
    step_mixes: bool,
    kind: Kind,
}

enum Kind {
    Iptables(Variant),
    Ebpf(EbpfTarget),
}

impl Target {
    fn iptables(variant: Variant) -> Target {
        let name = match variant {
            Variant::Legacy => "legacy",
            Variant::Nft => "nft",
        };
        Target {
            label: if name == "legacy" {
                "iptables-legacy"
            } else {
                "iptables-nft"
            },
            options: ["--backend", "iptables", "--iptables-variant", name]
                .map(String::from)
                .to_vec(),
            step: "ipv4-restored",
            step_mixes: true,
            kind: Kind::Iptables(variant),
        }
    }

    fn ebpf(test: &str) -> Target {
        let ebpf = EbpfTarget::new(test);
        Target {
            label: "ebpf",
            options: ebpf.options(),
            step: "generation-filled",
            step_mixes: false,
            kind: Kind::Ebpf(ebpf),
        }
    }

    /// Every target whose prerequisites this machine has (all of them under CI=true).
    fn all(test: &str) -> Vec<Target> {
        let mut out = Vec::new();
        for (variant, tool) in [
            (Variant::Legacy, "ip6tables-legacy-restore"),
            (Variant::Nft, "ip6tables-nft-restore"),
        ] {
            if require(&[Prerequisite::Binary(tool)]) {
                out.push(Target::iptables(variant));
            }
        }
        if require(&[Prerequisite::CgroupV2, Prerequisite::BpfFs]) {
            out.push(Target::ebpf(test));
        }
        out
    }

    fn name(&self) -> &'static str {
        match self.kind {
            Kind::Iptables(_) => "iptables",
            Kind::Ebpf(_) => "ebpf",
        }
    }

    fn open(&self) -> Box<dyn Backend> {
        match &self.kind {
            Kind::Iptables(variant) => Box::new(
                IptablesBackend::new(zt_backend_iptables::Options {
                    variant: Some(*variant),
                    ..zt_backend_iptables::Options::default()
                })
                .unwrap(),
            ),
            Kind::Ebpf(ebpf) => Box::new(EbpfBackend::new(
                zt_backend_ebpf::Options::detect()
                    .unwrap()
                    .pin_dir(&ebpf.pins)
                    .attach_to(ebpf.cgroup.path()),
            )),
        }
    }

    /// `zt <options> <args>`.
    fn args<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        self.options
            .iter()
            .map(String::as_str)
            .chain(args.iter().copied())
            .collect()
    }

    /// Which of `a` and `b` the kernel enforces exactly, or the drift against both.
    fn holds(&self, a: &Ruleset, b: &Ruleset) -> Result<char, String> {
        let mut backend = self.open();
        let against_a = backend.verify(a).unwrap();
        if against_a.is_empty() {
            return Ok('a');
        }
        let against_b = backend.verify(b).unwrap();
        if against_b.is_empty() {
            return Ok('b');
        }
        Err(format!("against a:\n{against_a}\nagainst b:\n{against_b}"))
    }

    fn owns_nothing(&self) -> bool {
        self.open().snapshot().unwrap().content.is_none()
    }

    fn reset(&self, zt: &Zt) {
        zt.expect(0, &self.args(&["flush"]));
        let _ = std::fs::remove_dir_all(&zt.state);
    }

    fn intent_left(&self, zt: &Zt) -> bool {
        zt.state.join(self.name()).join("intent.json").exists()
    }
}

/// What every backend's `ZT_FAULT=kernel-reject` error names (the injected rule's comment,
/// or for iptables-nft, which reports the failure at COMMIT, the chain it jumps to).
const CULPRIT: &str = "injected-fault";

fn killed(out: &std::process::Output) -> bool {
    out.status.signal() == Some(libc::SIGKILL)
}

#[test]
fn other_backends_killed_at_every_step_hold_one_policy_after_recovery() {
    let Some(zt) = Zt::new("backend-steps") else {
        return;
    };
    let a = zt.policy("a.yaml", ALLOW_4001);
    let b = zt.policy("b.yaml", ALLOW_4002);
    let (ra, rb) = (ruleset(ALLOW_4001), ruleset(ALLOW_4002));
    for target in Target::all("backend-steps") {
        let label = target.label;
        let steps = [
            ("validated", Some('a')),
            ("intent-recorded", Some('a')),
            (
                target.step,
                if target.step_mixes { None } else { Some('a') },
            ),
            ("committed", Some('b')),
            ("recorded", Some('b')),
        ];
        for (step, expected) in steps {
            target.reset(&zt);
            zt.expect(0, &target.args(&["apply", "-c", &a]));
            let out = zt
                .command(&target.args(&["apply", "-c", &b]))
                .env("ZT_FAULT", step)
                .output()
                .unwrap();
            assert!(killed(&out), "{label} {step}: not killed: {out:?}");
            let held = target.holds(&ra, &rb);
            match expected {
                Some(policy) => assert_eq!(held, Ok(policy), "{label} {step}"),
                // A mix: IPv4 took b, IPv6 still has a.
                None => assert!(
                    held.is_err(),
                    "{label} {step}: expected a mix, got {held:?}"
                ),
            }
            zt.expect(0, &target.args(&["status"]));
            zt.expect(0, &target.args(&["rollback"]));
            if expected == Some('b') {
                assert_eq!(target.holds(&ra, &rb), Ok('a'), "{label} {step}: back to a");
            } else {
                // Recovery found a (or restored it from the mix); rollback undid a.
                assert!(target.owns_nothing(), "{label} {step}: a undone");
            }
            assert!(!target.intent_left(&zt), "{label} {step}");
            if expected.is_none() {
                let trail = zt.trail();
                let recovery = trail.iter().find(|l| l["command"] == "recover").unwrap();
                assert!(
                    recovery["error"]
                        .as_str()
                        .unwrap()
                        .contains("the state before it was restored"),
                    "{label} {step}: {recovery}"
                );
            }
            zt.expect(0, &target.args(&["apply", "-c", &b]));
            zt.expect(0, &target.args(&["verify", "-c", &b]));
        }
    }
}

#[test]
fn other_backends_killed_at_random_moments_recover_to_exactly_one_policy() {
    let Some(zt) = Zt::new("backend-random") else {
        return;
    };
    let a = zt.policy("a.yaml", ALLOW_4001);
    let b = zt.policy("b.yaml", ALLOW_4002);
    let (ra, rb) = (ruleset(ALLOW_4001), ruleset(ALLOW_4002));
    let runs = std::env::var("ZT_KILL_RUNS_PER_BACKEND")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(70u32);
    for target in Target::all("backend-random") {
        let label = target.label;
        target.reset(&zt);
        zt.expect(0, &target.args(&["apply", "-c", &a]));
        // The time one apply of b takes here bounds the random delays.
        let start = std::time::Instant::now();
        zt.expect(0, &target.args(&["apply", "-c", &b]));
        let span = u64::try_from(start.elapsed().as_micros())
            .unwrap()
            .max(1000)
            * 3
            / 2;
        zt.expect(0, &target.args(&["apply", "-c", &a]));
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let (mut old, mut new, mut mixed) = (0u32, 0u32, 0u32);
        for run in 0..runs {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let delay = Duration::from_micros(seed % span);
            let mut child = zt.spawn(&target.args(&["apply", "-c", &b]));
            std::thread::sleep(delay);
            let _ = child.kill();
            let _ = child.wait();
            match target.holds(&ra, &rb) {
                Ok('a') => old += 1,
                Ok(_) => new += 1,
                Err(drift) => {
                    assert!(
                        target.step_mixes,
                        "{label} run {run} (killed after {delay:?}): neither policy:\n{drift}"
                    );
                    mixed += 1;
                }
            }
            let (code, doc) = zt.json(&target.args(&["apply", "-c", &a]));
            assert_eq!(code, 0, "{label} run {run}: {doc}");
            assert_eq!(target.holds(&ra, &rb), Ok('a'), "{label} run {run}");
        }
        eprintln!(
            "{label}: {runs} runs killed within {span} µs: {old} left the old policy, {new} the new one, {mixed} a mix that recovery undid"
        );
        assert_eq!(old + new + mixed, runs);
    }
}

#[test]
fn other_backends_refused_by_the_kernel_change_nothing_and_exit_3() {
    let Some(zt) = Zt::new("backend-reject") else {
        return;
    };
    let a = zt.policy("a.yaml", ALLOW_4001);
    let b = zt.policy("b.yaml", ALLOW_4002);
    let (ra, rb) = (ruleset(ALLOW_4001), ruleset(ALLOW_4002));
    for target in Target::all("backend-reject") {
        let label = target.label;
        target.reset(&zt);
        zt.expect(0, &target.args(&["apply", "-c", &a]));
        let out = zt
            .command(&target.args(&["apply", "-c", &b]))
            .env("ZT_FAULT", "kernel-reject")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(3), "{label}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(CULPRIT), "{label}: {stderr}");
        assert_eq!(target.holds(&ra, &rb), Ok('a'), "{label}: {stderr}");
        assert!(!target.intent_left(&zt), "{label}");
        let last = zt.trail().pop().unwrap();
        assert_ne!(last["result"], "applied", "{label}: {last}");
        assert!(
            last["error"].as_str().unwrap().contains(CULPRIT),
            "{label}: {last}"
        );
    }
}
