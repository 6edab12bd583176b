//! A catalogue of hostile configurations, each with the exact error an operator sees from
//! `zt check` (insta snapshots; the test directory reads `<dir>`), plus the proof that
//! shell metacharacters in string fields never reach a shell.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Zt, s};
use std::os::unix::fs::PermissionsExt;

/// `zt check` of `contents` written to `name`: the exit code and what it printed.
fn check(zt: &Zt, name: &str, contents: &[u8]) -> String {
    let path = zt.dir.join(name);
    std::fs::write(&path, contents).unwrap();
    let out = zt.run(&["check", "-c", &s(&path)]);
    let dir = s(&zt.dir);
    format!(
        "exit {}\n{}{}",
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).replace(&dir, "<dir>"),
        if out.status.success() {
            "(accepted)\n".to_owned()
        } else {
            String::new()
        }
    )
}

fn rule(body: &str) -> String {
    format!("version: \"1.0\"\nrules:\n  - name: r\n{body}")
}

#[test]
fn hostile_configurations_get_exact_errors() {
    let Some(zt) = Zt::new("hostile") else { return };
    let mut report = String::new();
    let mut case = |title: &str, name: &str, contents: &[u8]| {
        report.push_str(&format!("== {title}\n{}\n", check(&zt, name, contents)));
    };

    // Resource exhaustion.
    let mut bomb = String::from("version: \"1.0\"\na: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for (name, prev) in [
        ("b", "a"),
        ("c", "b"),
        ("d", "c"),
        ("e", "d"),
        ("f", "e"),
        ("g", "f"),
        ("h", "g"),
        ("i", "h"),
    ] {
        bomb.push_str(&format!(
            "{name}: &{name} [{}]\n",
            vec![format!("*{prev}"); 10].join(", ")
        ));
    }
    bomb.push_str("rules: []\n");
    case("alias bomb (10^9 nodes)", "bomb.yaml", bomb.as_bytes());
    let deep = format!(
        "version: \"1.0\"\nrules: {}{}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    case("100 000 nested sequences", "deep.yaml", deep.as_bytes());
    let mut big = String::from("version: \"1.0\"\nrules:\n");
    while big.len() < 50 * 1024 * 1024 {
        big.push_str("  # padding padding padding padding padding padding padding padding\n");
    }
    case("a 50 MB file", "big.yaml", big.as_bytes());

    // Bytes and characters that could corrupt output, logs or kernel objects.
    case(
        "not UTF-8",
        "latin1.yaml",
        b"version: \"1.0\"\nrules:\n  - name: caf\xe9\n    from: {uid: 1}\n    action: allow\n",
    );
    case(
        "NUL in a rule name",
        "nul-name.yaml",
        rule("    from: {uid: 1}\n    action: allow\n")
            .replace("name: r", "name: \"a\\0b\"")
            .as_bytes(),
    );
    case(
        "newline in a rule name",
        "newline-name.yaml",
        format!(
            "{}    from: {{uid: 1}}\n    action: allow\n",
            rule("").replace("name: r", "name: \"a\\nb\"")
        )
        .as_bytes(),
    );
    case(
        "NUL in the log prefix",
        "nul-prefix.yaml",
        b"version: \"1.0\"\nsettings:\n  log_prefix: \"ZT\\0\"\nrules: []\n",
    );
    case(
        "newline in the log prefix",
        "newline-prefix.yaml",
        b"version: \"1.0\"\nsettings:\n  log_prefix: \"ZT\\nroot: \"\nrules: []\n",
    );

    // Shell metacharacters in every string field.
    case(
        "shell metacharacters in a name",
        "meta-name.yaml",
        rule("    from: {uid: 1}\n    action: allow\n")
            .replace("name: r", "name: \"a;reboot\"")
            .as_bytes(),
    );
    case(
        "shell metacharacters in user, group, cgroup, host, port",
        "meta-fields.yaml",
        b"version: \"1.0\"\nrules:\n  - name: u\n    from: {user: \"$(reboot)\"}\n    action: allow\n  - name: g\n    from: {group: \"`reboot`\"}\n    action: allow\n  - name: c\n    from: {cgroup: \"a;reboot\"}\n    action: allow\n  - name: h\n    from: {uid: 1}\n    to: {host: \"10.0.0.1;reboot\"}\n    action: allow\n  - name: p\n    from: {uid: 1}\n    to: {port: \"80|reboot\"}\n    action: allow\n",
    );
    case(
        "shell metacharacters in a description (free text, accepted, never executed)",
        "meta-description.yaml",
        b"version: \"1.0\"\nrules:\n  - name: d\n    description: \"$(reboot) `reboot`; reboot | reboot\"\n    from: {uid: 1}\n    action: allow\n",
    );

    // Paths and addresses that would mean something else than they say.
    case(
        "a cgroup path with ..",
        "cgroup-dotdot.yaml",
        rule("    from: {cgroup: \"system.slice/../../etc\"}\n    action: allow\n").as_bytes(),
    );
    case(
        "an IPv4-mapped IPv6 address",
        "mapped.yaml",
        rule("    from: {uid: 1}\n    to: {host: \"::ffff:10.0.0.1\"}\n    action: allow\n")
            .as_bytes(),
    );
    case(
        "overlapping and duplicate CIDRs (warnings)",
        "overlap.yaml",
        rule("    from: {uid: 1}\n    to: {hosts: [10.0.0.0/8, 10.1.0.0/16, 10.0.0.0/8, \"fd00::/8\", \"fd00::/8\"]}\n    action: allow\n").as_bytes(),
    );
    insta::assert_snapshot!(report);
}

#[test]
fn a_policy_file_others_can_write_is_refused_for_apply_and_flagged_for_check() {
    let Some(zt) = Zt::new("writable") else {
        return;
    };
    let path = zt.file("open.yaml", common::ALLOW_4001);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = zt.run(&["apply", "-c", &s(&path)]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("writable by every user"), "{stderr}");
    assert!(!zt.table_exists(), "nothing was applied");
    let out = zt.run(&[
        "persist",
        "-c",
        &s(&path),
        "--root",
        &s(&zt.dir.join("root")),
    ]);
    assert_eq!(out.status.code(), Some(1));

    let out = zt.run(&["check", "-c", &s(&path)]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("zt: warning:"));

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o664)).unwrap();
    std::os::unix::fs::chown(&path, None, Some(100)).unwrap();
    let out = zt.run(&["apply", "-c", &s(&path)]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "group-writable: applied, with a warning"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("writable by group 100"));
}

/// Strings reach the kernel through netlink and through iptables-restore's input, never a
/// shell: a log prefix and a description full of shell syntax are applied with both backends,
/// reach the kernel verbatim, and nothing runs.
#[test]
fn shell_syntax_in_strings_is_never_executed() {
    let Some(zt) = Zt::new("no-shell") else {
        return;
    };
    let marker = format!("/tmp/z{}", std::process::id());
    let _ = std::fs::remove_file(&marker);
    let prefix = format!("$(touch {marker})");
    let policy = zt.policy(
        "shell.yaml",
        &format!(
            "version: \"1.0\"\nsettings:\n  log_prefix: \"{prefix}\"\nrules:\n  - name: r\n    description: \"`touch {marker}`; touch {marker} | touch {marker}\"\n    from: {{uid: 1}}\n    to: {{port: 7001}}\n    action: deny\n    log: true\n"
        ),
    );
    for backend in ["nft", "iptables"] {
        zt.expect(0, &["--backend", backend, "apply", "-c", &policy]);
        let listing = match backend {
            "nft" => zt.netns.run_ok("nft", &["list", "table", "inet", "zt"]),
            _ => zt.netns.run_ok("iptables-save", &[]),
        };
        assert!(
            listing.contains(&prefix),
            "{backend}: the prefix is in the kernel verbatim:\n{listing}"
        );
        zt.expect(0, &["--backend", backend, "flush"]);
    }
    assert!(
        !std::path::Path::new(&marker).exists(),
        "a string was executed"
    );
}
