//! Every command's success and failure paths, driven through the built binary in a fresh
//! network namespace, with real connections as real uids.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ALLOW_4001, ALLOW_4002, Zt, tcp};
use zt_testkit::{Listeners, Outcome, Proto};

#[test]
fn check_prints_the_ordered_ruleset_and_lists_every_problem_of_an_invalid_file() {
    let Some(zt) = Zt::new("check") else { return };
    let good = zt.policy("good.yaml", ALLOW_4001);
    let out = zt.expect(0, &["check", "-c", &good]);
    assert!(out.contains("app-to-cache"), "{out}");
    assert!(out.contains("uid 4001"), "{out}");

    let (code, doc) = zt.json(&["check", "-c", &good]);
    assert_eq!(code, 0);
    assert_eq!(doc["ok"], true);
    assert_eq!(doc["rules"], 1);
    let names: Vec<&str> = doc["ruleset"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    let at = |n: &str| names.iter().position(|x| *x == n).unwrap();
    assert!(at("zt:established") < at("app-to-cache") && at("app-to-cache") < at("zt:default"));

    let bad = zt.policy(
        "bad.yaml",
        "version: \"1.0\"\nrules:\n  - name: a\n    from: { uid: 1 }\n    to: { port: 70000 }\n    action: allow\n  - name: b\n    from: { user: no-such-user-zt }\n    action: permit\n",
    );
    let out = zt.run(&["check", "-c", &bad]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.yaml:5:"),
        "positions are printed: {stderr}"
    );
    assert!(
        stderr.contains("rule 'b'"),
        "every problem is listed: {stderr}"
    );
    assert!(
        stderr.contains("unknown-user") && stderr.contains("unknown-value"),
        "{stderr}"
    );

    let (code, doc) = zt.json(&["check", "-c", &bad]);
    assert_eq!(code, 1);
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["exit_code"], 1);
    let codes: Vec<&str> = doc["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["code"].as_str().unwrap())
        .collect();
    assert!(
        codes.contains(&"port-out-of-range") && codes.contains(&"unknown-user"),
        "{codes:?}"
    );

    let missing = zt.run(&["check", "-c", "/nonexistent/zt.yaml"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/zt.yaml"));
}

#[test]
fn usage_errors_exit_2() {
    let Some(zt) = Zt::new("usage") else { return };
    assert_eq!(zt.run(&["apply"]).status.code(), Some(2), "apply needs -c");
    assert_eq!(zt.run(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(
        zt.run(&["apply", "-c", "x", "--confirm", "0"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn apply_enforces_the_policy_for_real_uids_over_ipv4_and_ipv6() {
    let Some(zt) = Zt::new("apply") else { return };
    let _listeners = Listeners::start(&[
        (Proto::Tcp, "127.0.0.1:7001".parse().unwrap()),
        (Proto::Tcp, "[::1]:7001".parse().unwrap()),
    ]);
    let policy = zt.policy("p.yaml", ALLOW_4001);

    let (code, doc) = zt.json(&["plan", "-c", &policy, "--detailed-exitcode"]);
    assert_eq!(code, 2, "changes pending");
    assert!(doc["diff"]["summary"]["add"].as_u64().unwrap() > 0);
    let out = zt.expect(
        2,
        &[
            "plan",
            "-c",
            &policy,
            "--detailed-exitcode",
            "--show-artifact",
        ],
    );
    assert!(
        out.contains("table inet zt {"),
        "the artifact is the nft script: {out}"
    );
    assert!(
        out.contains("+ app-to-cache"),
        "the diff names the rule: {out}"
    );

    zt.expect(0, &["apply", "-c", &policy, "--dry-run"]);
    assert!(!zt.table_exists(), "a dry run changes nothing");

    let (code, doc) = zt.json(&["apply", "-c", &policy]);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(doc["changed"], true);
    for addr in ["127.0.0.1:7001", "[::1]:7001"] {
        assert_eq!(tcp(4001, addr), Outcome::Connected, "uid 4001 to {addr}");
        let other = tcp(4002, addr);
        assert!(
            matches!(other, Outcome::TimedOut | Outcome::NotPermitted),
            "uid 4002 to {addr}: {other:?}"
        );
    }
    zt.expect(0, &["plan", "-c", &policy, "--detailed-exitcode"]);

    // Unchanged: nothing is written, and the trail says so.
    let (code, doc) = zt.json(&["apply", "-c", &policy]);
    assert_eq!((code, &doc["changed"]), (0, &serde_json::json!(false)));
    let trail = zt.trail();
    let results: Vec<&str> = trail
        .iter()
        .map(|l| l["result"].as_str().unwrap())
        .collect();
    assert_eq!(results, ["applied", "unchanged"]);
    for line in &trail {
        assert_eq!(line["command"], "apply");
        assert_eq!(line["backend"], "nft");
        assert_eq!(line["config"].as_str().unwrap(), policy);
        assert_eq!(line["sha256"].as_str().unwrap().len(), 64);
        assert_eq!(line["uid"], 0);
        assert!(line["time"].as_str().unwrap().ends_with('Z'));
    }
    assert_eq!(trail[0]["changes"]["remove"], 0);

    // Status counts the connections by rule name.
    let (code, doc) = zt.json(&["status"]);
    assert_eq!(code, 0);
    assert_eq!(doc["installed"], true);
    let packets = |name: &str| {
        doc["counters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .map(|c| c["packets"].as_u64().unwrap())
            .unwrap_or(0)
    };
    assert!(packets("app-to-cache") >= 2, "{doc}");
    assert!(packets("zt:default") >= 1, "{doc}");
    assert_eq!(doc["drift"], serde_json::json!([]));
    assert_eq!(doc["applied"]["config"].as_str().unwrap(), policy);
}

#[test]
fn an_invalid_policy_reaches_neither_the_kernel_nor_the_state() {
    let Some(zt) = Zt::new("invalid") else { return };
    let good = zt.policy("good.yaml", ALLOW_4001);
    zt.expect(0, &["apply", "-c", &good]);
    let before = zt.netns.run_ok("nft", &["list", "table", "inet", "zt"]);
    let bad = zt.policy("bad.yaml", "version: \"1.0\"\nrules:\n  - name: x\n    from: { uid: 1 }\n    to: { host: 10.0.0.300 }\n    action: allow\n");
    let (code, doc) = zt.json(&["apply", "-c", &bad]);
    assert_eq!(code, 1);
    assert_eq!(doc["diagnostics"][0]["code"], "invalid-address");
    assert_eq!(
        zt.netns.run_ok("nft", &["list", "table", "inet", "zt"]),
        before
    );
    assert_eq!(zt.applied_config().as_deref(), Some(good.as_str()));
    let last = zt.trail().pop().unwrap();
    assert_eq!(last["result"], "invalid");
    assert_eq!(last["config"].as_str().unwrap(), bad);
}

#[test]
fn verify_and_status_report_drift_by_rule_name() {
    let Some(zt) = Zt::new("verify") else { return };
    let policy = zt.policy("p.yaml", ALLOW_4001);
    let other = zt.policy("other.yaml", ALLOW_4002);
    assert_eq!(
        zt.json(&["verify", "-c", &policy]).0,
        1,
        "nothing applied yet"
    );
    zt.expect(0, &["apply", "-c", &policy]);
    let (code, doc) = zt.json(&["verify", "-c", &policy]);
    assert_eq!((code, doc["ok"].clone()), (0, serde_json::json!(true)));

    let (code, doc) = zt.json(&["verify", "-c", &other]);
    assert_eq!(code, 1);
    let drift = doc["drift"].as_array().unwrap();
    assert!(
        drift
            .iter()
            .any(|d| d["subject"] == "app-to-cache" && d["kind"] == "changed"),
        "{doc}"
    );

    // Someone edits zt's table by hand.
    zt.netns.run_ok(
        "nft",
        &[
            "insert", "rule", "inet", "zt", "output", "meta", "skuid", "5", "accept",
        ],
    );
    let out = zt.run(&["verify", "-c", &policy]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("extra") && text.contains("meta skuid 5 accept"),
        "{text}"
    );
    let (_, doc) = zt.json(&["status"]);
    assert_eq!(doc["drift"][0]["kind"], "extra", "{doc}");
}

#[test]
fn rollback_restores_the_previous_policy_once() {
    let Some(zt) = Zt::new("rollback") else {
        return;
    };
    let first = zt.policy("first.yaml", ALLOW_4001);
    let second = zt.policy("second.yaml", ALLOW_4002);
    zt.expect(1, &["rollback"]);
    zt.expect(0, &["apply", "-c", &first]);
    zt.expect(0, &["apply", "-c", &second]);
    let (code, doc) = zt.json(&["rollback"]);
    assert_eq!(code, 0);
    assert_eq!(doc["restored"]["config"].as_str().unwrap(), first);
    zt.expect(0, &["verify", "-c", &first]);
    assert_eq!(zt.applied_config().as_deref(), Some(first.as_str()));
    let out = zt.run(&["rollback"]);
    assert_eq!(out.status.code(), Some(1), "one level of undo");
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing to roll back"));

    // Rolling back the first apply removes zt's table altogether.
    let fresh = Zt::new("rollback-first").unwrap();
    let p = fresh.policy("p.yaml", ALLOW_4001);
    fresh.expect(0, &["apply", "-c", &p]);
    fresh.expect(0, &["rollback"]);
    assert!(!fresh.table_exists());
    assert_eq!(fresh.applied_config(), None);
}

#[test]
fn flush_removes_only_what_zt_owns() {
    let Some(zt) = Zt::new("flush") else { return };
    zt.netns.run_ok("nft", &["add", "table", "inet", "other"]);
    zt.netns.run_ok(
        "nft",
        &[
            "add",
            "chain",
            "inet",
            "other",
            "out",
            "{ type filter hook output priority 10; }",
        ],
    );
    zt.netns.run_ok(
        "nft",
        &[
            "add", "rule", "inet", "other", "out", "tcp", "dport", "9", "drop",
        ],
    );
    let foreign = || zt.netns.run_ok("nft", &["list", "table", "inet", "other"]);
    let before = foreign();
    let policy = zt.policy("p.yaml", ALLOW_4001);
    zt.expect(0, &["apply", "-c", &policy]);
    let (code, doc) = zt.json(&["flush"]);
    assert_eq!((code, doc["ok"].clone()), (0, serde_json::json!(true)));
    assert!(!zt.table_exists());
    assert_eq!(foreign(), before, "the other table is untouched");
    assert_eq!(zt.applied_config(), None);
    assert_eq!(zt.trail().last().unwrap()["result"], "flushed");
    let (_, doc) = zt.json(&["status"]);
    assert_eq!(doc["installed"], false);
}

#[test]
fn fleet_keys_are_validated_by_check_and_ignored_by_apply() {
    let Some(zt) = Zt::new("fleet-keys") else {
        return;
    };
    let _listeners = Listeners::start(&[(Proto::Tcp, "127.0.0.1:7001".parse().unwrap())]);
    let scoped = zt.policy(
        "scoped.yaml",
        &ALLOW_4001.replacen(
            "rules:",
            "selector: {role: cache, tier: \"1\"}\norder: 20\nrules:",
            1,
        ),
    );
    let out = zt.expect(0, &["check", "-c", &scoped]);
    assert!(
        out.contains("selector {role=cache, tier=1}, order 20")
            && out.contains("matter only to zt-agent"),
        "{out}"
    );
    let (_, doc) = zt.json(&["check", "-c", &scoped]);
    assert_eq!(doc["fleet"]["order"], 20);
    assert_eq!(doc["fleet"]["selector"]["role"], "cache");

    // A single host applies the rules whatever the selector says.
    zt.expect(0, &["apply", "-c", &scoped]);
    assert_eq!(tcp(4001, "127.0.0.1:7001"), Outcome::Connected);
    let other = tcp(4002, "127.0.0.1:7001");
    assert!(
        matches!(other, Outcome::TimedOut | Outcome::NotPermitted),
        "{other:?}"
    );

    let bad = zt.policy(
        "bad-scope.yaml",
        &ALLOW_4001.replacen(
            "rules:",
            "selector: {\"ro le\": x}\norder: 3000000000\nrules:",
            1,
        ),
    );
    let out = zt.run(&["check", "-c", &bad]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("invalid-label") && stderr.contains("order-out-of-range"),
        "{stderr}"
    );
    assert!(stderr.contains("bad-scope.yaml:"), "positions: {stderr}");
}
