//! Other tools' rules survive every zt operation, for every backend: a Docker-like setup
//! (iptables chains with jumps, in both iptables variants and both families) and a
//! firewalld-like nft table on the same hooks as zt's.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ALLOW_4001, ALLOW_4002, EbpfTarget, Zt, s};
use zt_testkit::{Prerequisite, require};

/// Docker's and firewalld's kind of rules, in this namespace.
fn install_foreign_rules(zt: &Zt) {
    for tool in [
        "iptables-legacy",
        "ip6tables-legacy",
        "iptables-nft",
        "ip6tables-nft",
    ] {
        for args in [
            &["-N", "DOCKER-USER"][..],
            &["-A", "DOCKER-USER", "-j", "RETURN"],
            &["-I", "FORWARD", "-j", "DOCKER-USER"],
            &["-N", "DOCKER"],
            &["-A", "DOCKER", "-p", "tcp", "--dport", "9999", "-j", "DROP"],
            &["-A", "OUTPUT", "-j", "DOCKER"],
            &[
                "-A", "INPUT", "-p", "tcp", "--dport", "9998", "-j", "ACCEPT",
            ],
        ] {
            zt.netns.run_ok(tool, args);
        }
    }
    zt.netns.run_ok(
        "nft",
        &[
            "-f",
            &s(&zt.file(
                "firewalld.nft",
                "table inet firewalld {\n\
                 \tchain filter_OUTPUT {\n\
                 \t\ttype filter hook output priority filter + 10; policy accept;\n\
                 \t\ttcp dport 9997 counter drop\n\
                 \t}\n\
                 \tchain filter_INPUT {\n\
                 \t\ttype filter hook input priority filter + 10; policy accept;\n\
                 \t\tct state established,related accept\n\
                 \t\tiif \"lo\" accept\n\
                 \t}\n\
                 }\n",
            )),
        ],
    );
}

/// Everything that is not zt's, as text: the four iptables dumps without zt's chains and
/// jumps (and without the date line and counters, which change by themselves), and the
/// firewalld table without counter values.
fn foreign_state(zt: &Zt) -> String {
    let mut out = String::new();
    for tool in [
        "iptables-legacy-save",
        "ip6tables-legacy-save",
        "iptables-nft-save",
        "ip6tables-nft-save",
    ] {
        let dump = zt.netns.run_ok(tool, &[]);
        out.push_str(&format!("== {tool}\n"));
        for line in dump.lines() {
            if line.starts_with('#') || line.contains("ZT-") {
                continue;
            }
            let line = line.split(" [").next().unwrap_or(line);
            out.push_str(line);
            out.push('\n');
        }
    }
    out.push_str(
        &zt.netns
            .run_ok("nft", &["-s", "list", "table", "inet", "firewalld"]),
    );
    out
}

/// Apply, re-apply, change, verify, status, rollback, persist and flush with `backend`
/// options; after each, the foreign rules are what they were.
fn every_operation_leaves_foreign_rules(zt: &Zt, backend: &[String]) {
    let before = foreign_state(zt);
    assert_eq!(
        before.matches("-A DOCKER -p tcp").count(),
        4,
        "the foreign rules are in all four dumps:\n{before}"
    );
    assert!(before.contains("tcp dport 9997 counter drop"), "{before}");
    let a = zt.policy("a.yaml", ALLOW_4001);
    let b = zt.policy("b.yaml", ALLOW_4002);
    let root = s(&zt.dir.join("root"));
    let steps: [&[&str]; 8] = [
        &["apply", "-c", &a],
        &["apply", "-c", &a],
        &["apply", "-c", &b],
        &["verify", "-c", &b],
        &["status"],
        &["rollback"],
        &["persist", "-c", &a, "--root", &root],
        &["flush"],
    ];
    for step in steps {
        let args: Vec<&str> = backend
            .iter()
            .map(String::as_str)
            .chain(step.iter().copied())
            .collect();
        zt.expect(0, &args);
        assert_eq!(
            foreign_state(zt),
            before,
            "{backend:?} {step:?} changed other tools' rules"
        );
    }
}

fn ready() -> bool {
    require(&[
        Prerequisite::Binary("iptables-legacy"),
        Prerequisite::Binary("iptables-nft"),
        Prerequisite::Binary("ip6tables-legacy-save"),
        Prerequisite::Binary("ip6tables-nft-save"),
    ])
}

#[test]
fn the_nft_backend_leaves_other_tools_rules_alone() {
    if !ready() {
        return;
    }
    let Some(zt) = Zt::new("coexist-nft") else {
        return;
    };
    install_foreign_rules(&zt);
    every_operation_leaves_foreign_rules(&zt, &["--backend".into(), "nft".into()]);
}

#[test]
fn the_iptables_backend_leaves_other_tools_rules_alone_in_both_variants() {
    if !ready() {
        return;
    }
    for variant in ["legacy", "nft"] {
        let Some(zt) = Zt::new(&format!("coexist-iptables-{variant}")) else {
            return;
        };
        install_foreign_rules(&zt);
        every_operation_leaves_foreign_rules(
            &zt,
            &[
                "--backend".into(),
                "iptables".into(),
                "--iptables-variant".into(),
                variant.into(),
            ],
        );
    }
}

#[test]
fn the_ebpf_backend_leaves_other_tools_rules_alone() {
    if !ready() || !require(&[Prerequisite::CgroupV2, Prerequisite::BpfFs]) {
        return;
    }
    let Some(zt) = Zt::new("coexist-ebpf") else {
        return;
    };
    let ebpf = EbpfTarget::new("coexist");
    install_foreign_rules(&zt);
    every_operation_leaves_foreign_rules(&zt, &ebpf.options());
}
