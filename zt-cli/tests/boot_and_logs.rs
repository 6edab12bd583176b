//! `zt persist`, `zt audit`, and the generated completions and man page.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ALLOW_4001, Zt, s};

#[test]
fn persisted_boot_files_loaded_with_nft_reproduce_the_ruleset() {
    let Some(zt) = Zt::new("persist") else { return };
    let policy = zt.policy("p.yaml", ALLOW_4001);
    let root = zt.dir.join("root");
    let (code, doc) = zt.json(&["persist", "-c", &policy, "--root", &s(&root)]);
    assert_eq!(code, 0, "{doc}");
    assert!(!zt.table_exists(), "persist does not touch the kernel");

    let script = root.join("etc/zt/zt.nft");
    let unit = std::fs::read_to_string(root.join("etc/systemd/system/zt-nft.service")).unwrap();
    assert!(
        unit.contains("ExecStart=/usr/sbin/nft -f /etc/zt/zt.nft"),
        "{unit}"
    );
    assert!(unit.contains("Before=network-pre.target"), "{unit}");
    let link = root.join("etc/systemd/system/sysinit.target.wants/zt-nft.service");
    assert_eq!(
        std::fs::read_link(&link).unwrap(),
        std::path::Path::new("/etc/systemd/system/zt-nft.service")
    );
    // Again: the same files, no error on the existing link.
    let before = std::fs::read_to_string(&script).unwrap();
    zt.expect(0, &["persist", "-c", &policy, "--root", &s(&root)]);
    assert_eq!(std::fs::read_to_string(&script).unwrap(), before);

    // What boot would do, in this fresh namespace: load the script, then verify.
    zt.netns.run_ok("nft", &["-f", &s(&script)]);
    zt.expect(0, &["verify", "-c", &policy]);
    assert_eq!(zt.trail().last().unwrap()["result"], "persisted");
}

#[test]
fn audit_summarizes_a_captured_kernel_log_per_user_destination_and_port() {
    let Some(zt) = Zt::new("audit") else { return };
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/dmesg-capture.log");
    let (code, doc) = zt.json(&["audit", "--file", sample]);
    assert_eq!(code, 0, "{doc}");
    let summary = &doc["summary"];
    assert_eq!(summary["records"], 8);
    let groups = summary["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 8, "2 uids x 2 families x (tcp/6379, udp/53)");
    let nobody: Vec<_> = groups.iter().filter(|g| g["uid"] == 65534).collect();
    assert_eq!(nobody.len(), 4);
    assert!(nobody.iter().all(|g| g["user"] == "nobody"), "{doc}");
    assert!(groups.iter().any(|g| g["dst"] == "::1"
        && g["dst_port"] == 6379
        && g["protocol"] == "TCP"
        && g["uid"] == 4002));
    assert!(
        groups
            .iter()
            .all(|g| g["count"] == 1 && g["direction"] == "egress")
    );
    assert_eq!(summary["first_seen"], "2026-11-23T20:15:08.551157Z");

    let text = zt.expect(0, &["audit", "--file", sample]);
    assert!(text.starts_with("8 blocked packets logged in"), "{text}");
    assert!(text.contains("nobody (65534)"), "{text}");

    let (_, doc) = zt.json(&["audit", "--file", sample, "--since", "2026-11-23T20:15:09Z"]);
    assert_eq!(doc["summary"]["records"], 5);
    let (_, doc) = zt.json(&["audit", "--file", sample, "--prefix", "OTHER: "]);
    assert_eq!(doc["summary"]["records"], 0);
    // The calendar's last second is a date, past every record (and past the last moment a
    // timestamp holds, which it is taken as); the first one precedes them all.
    for (since, records) in [
        ("9999-12-31T23:59:59Z", 0),
        ("9999-12-31", 0),
        ("-009999-01-01T00:00:00Z", 8),
    ] {
        let option = format!("--since={since}");
        let (code, doc) = zt.json(&["audit", "--file", sample, &option]);
        assert_eq!(
            (code, &doc["summary"]["records"]),
            (0, &records.into()),
            "{since}: {doc}"
        );
    }
    assert_eq!(
        zt.run(&["audit", "--since", "last tuesday"]).status.code(),
        Some(2)
    );
    assert_eq!(
        zt.run(&["audit", "--file", "/nonexistent"]).status.code(),
        Some(1)
    );
}

#[test]
fn completions_and_the_man_page_cover_every_command() {
    let Some(zt) = Zt::new("generate") else {
        return;
    };
    let bash = zt.expect(0, &["completions", "bash"]);
    let man = zt.expect(0, &["man"]);
    assert!(man.starts_with(".ie") || man.contains(".TH zt"), "{man}");
    for command in [
        "check", "plan", "apply", "confirm", "rollback", "status", "verify", "flush", "persist",
        "audit",
    ] {
        assert!(bash.contains(command), "bash completion lacks {command}");
        assert!(man.contains(command), "man page lacks {command}");
    }
    assert!(!man.contains("watchdog"), "internal commands stay hidden");
    let pages = zt.dir.join("man");
    zt.expect(0, &["man", "--dir", &s(&pages)]);
    for page in ["zt.1", "zt-apply.1", "zt-audit.1", "zt-persist.1"] {
        let text = std::fs::read_to_string(pages.join(page)).unwrap();
        assert!(text.contains(".TH"), "{page}");
    }
    assert!(
        std::fs::read_to_string(pages.join("zt-apply.1"))
            .unwrap()
            .contains("confirm"),
        "per-command pages carry the options"
    );
    assert!(!pages.join("zt-watchdog.1").exists());
    let (_, doc) = zt.json(&["completions", "zsh"]);
    assert!(doc["text"].as_str().unwrap().contains("#compdef zt"));
}
