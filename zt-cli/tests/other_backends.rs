//! The same commands with `--backend iptables` and `--backend ebpf`: the CLI is written once
//! against the Backend trait, so these check the wiring and each backend's options.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ALLOW_4001, ALLOW_4002, EbpfTarget, TIMEOUT, Zt, s, tcp};
use zt_testkit::{Identity, Listeners, Outcome, Prerequisite, Proto, require};

#[test]
fn the_iptables_backend_applies_verifies_rolls_back_and_flushes() {
    if !require(&[
        Prerequisite::Binary("iptables-legacy-restore"),
        Prerequisite::Binary("ip6tables-legacy-restore"),
    ]) {
        return;
    }
    let Some(zt) = Zt::new("iptables") else {
        return;
    };
    let _listeners = Listeners::start(&[
        (Proto::Tcp, "127.0.0.1:7001".parse().unwrap()),
        (Proto::Tcp, "[::1]:7001".parse().unwrap()),
    ]);
    let ipt = ["--backend", "iptables", "--iptables-variant", "legacy"];
    let with = |args: &[&str]| -> Vec<String> {
        ipt.iter().chain(args).map(|a| (*a).to_owned()).collect()
    };
    let run = |args: &[&str]| {
        let all = with(args);
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        zt.json(&refs)
    };
    let first = zt.policy("first.yaml", ALLOW_4001);
    let second = zt.policy("second.yaml", ALLOW_4002);

    let (code, doc) = run(&["apply", "-c", &first]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(doc["backend"], "iptables");
    for addr in ["127.0.0.1:7001", "[::1]:7001"] {
        assert_eq!(tcp(4001, addr), Outcome::Connected, "4001 to {addr}");
        assert_ne!(tcp(4002, addr), Outcome::Connected, "4002 to {addr}");
    }
    assert_eq!(run(&["apply", "-c", &first]).1["changed"], false);
    assert_eq!(run(&["verify", "-c", &first]).0, 0);
    assert_eq!(run(&["verify", "-c", &second]).0, 1);
    let (_, status) = run(&["status"]);
    assert_eq!(status["installed"], true);
    assert!(
        status["counters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "app-to-cache" && c["packets"].as_u64().unwrap() >= 2),
        "{status}"
    );

    assert_eq!(run(&["apply", "-c", &second]).0, 0);
    assert_eq!(run(&["rollback"]).0, 0);
    assert_eq!(run(&["verify", "-c", &first]).0, 0);

    let root = zt.dir.join("root");
    assert_eq!(run(&["persist", "-c", &first, "--root", &s(&root)]).0, 0);
    let unit =
        std::fs::read_to_string(root.join("etc/systemd/system/zt-iptables.service")).unwrap();
    assert!(
        unit.contains(
            "ExecStart=/usr/sbin/iptables-legacy-restore --noflush /etc/zt/iptables-rules.v4"
        ),
        "{unit}"
    );
    assert!(unit.contains("ip6tables-legacy-restore --noflush /etc/zt/iptables-rules.v6"));

    assert_eq!(run(&["flush"]).0, 0);
    let saved = zt.netns.run_ok("iptables-legacy-save", &[]);
    assert!(!saved.contains("ZT-"), "{saved}");

    // What boot would do: load the persisted files, then verify.
    for (restore, file) in [
        ("iptables-legacy-restore", "rules.v4"),
        ("ip6tables-legacy-restore", "rules.v6"),
    ] {
        let path = s(&root.join("etc/zt").join(format!("iptables-{file}")));
        zt.netns.run_ok(restore, &["--noflush", &path]);
    }
    assert_eq!(run(&["verify", "-c", &first]).0, 0);
}

#[test]
fn the_ebpf_backend_refuses_with_eperm_inside_its_cgroup_and_audits_refusals() {
    if !require(&[Prerequisite::CgroupV2, Prerequisite::BpfFs]) {
        return;
    }
    let Some(zt) = Zt::new("ebpf") else { return };
    let ebpf = EbpfTarget::new("ebpf");
    let (cgroup, pins) = (&ebpf.cgroup, &ebpf.pins);
    let _listeners = Listeners::start(&[
        (Proto::Tcp, "127.0.0.1:7001".parse().unwrap()),
        (Proto::Tcp, "[::1]:7001".parse().unwrap()),
    ]);
    let opts = ebpf.options();
    let run = |args: &[&str]| {
        let all: Vec<&str> = opts
            .iter()
            .map(String::as_str)
            .chain(args.iter().copied())
            .collect();
        zt.json(&all)
    };
    let policy = zt.policy("p.yaml", ALLOW_4001);

    let (code, doc) = run(&["apply", "-c", &policy]);
    assert_eq!(code, 0, "{doc}");
    let probe = |uid: u32, addr: &str| {
        cgroup.connect_as(
            Identity::new(uid, uid),
            Proto::Tcp,
            addr.parse().unwrap(),
            TIMEOUT,
        )
    };
    for addr in ["127.0.0.1:7001", "[::1]:7001"] {
        assert_eq!(probe(4001, addr), Outcome::Connected, "4001 to {addr}");
        assert_eq!(probe(4002, addr), Outcome::NotPermitted, "4002 to {addr}");
    }
    // Outside the cgroup nothing is enforced.
    assert_eq!(tcp(4002, "127.0.0.1:7001"), Outcome::Connected);
    assert_eq!(run(&["verify", "-c", &policy]).0, 0);

    let (code, doc) = run(&["audit"]);
    assert_eq!(code, 0, "{doc}");
    let groups = doc["summary"]["groups"].as_array().unwrap();
    assert_eq!(doc["summary"]["records"], 2, "{doc}");
    assert!(
        groups
            .iter()
            .all(|g| g["uid"] == 4002 && g["dst_port"] == 7001)
    );
    assert!(
        groups.iter().all(|g| g["first_seen"].is_string()),
        "records are dated"
    );
    // Drained records are kept: a second audit still counts them.
    assert_eq!(run(&["audit"]).1["summary"]["records"], 2);

    // Ingress rules are refused at plan time, naming the rule; nothing changes.
    let ingress = zt.policy(
        "ingress.yaml",
        "version: \"1.0\"\nrules:\n  - name: https-in\n    direction: ingress\n    from: { hosts: [192.0.2.0/24] }\n    to: { port: 443 }\n    action: allow\n",
    );
    let (code, doc) = run(&["apply", "-c", &ingress]);
    assert_eq!(code, 1, "{doc}");
    assert!(doc["error"].as_str().unwrap().contains("https-in"), "{doc}");
    assert_eq!(run(&["verify", "-c", &policy]).0, 0);

    let root = zt.dir.join("root");
    assert_eq!(run(&["persist", "-c", &policy, "--root", &s(&root)]).0, 0);
    let unit = std::fs::read_to_string(root.join("etc/systemd/system/zt-ebpf.service")).unwrap();
    assert!(unit.contains("--backend ebpf"), "{unit}");
    assert!(unit.contains("apply -c /etc/zt/ebpf-policy.yaml"), "{unit}");

    assert_eq!(run(&["flush"]).0, 0);
    assert_eq!(probe(4002, "127.0.0.1:7001"), Outcome::Connected);
    assert!(
        !std::path::Path::new(pins).exists() || std::fs::read_dir(pins).unwrap().next().is_none()
    );
}
