//! `apply --confirm`, the watchdog, and the state lock.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ALLOW_4001, ALLOW_4002, Zt, eventually};
use std::fs::File;
use std::time::Duration;

#[test]
fn a_confirmed_change_is_kept() {
    let Some(zt) = Zt::new("confirmed") else {
        return;
    };
    let first = zt.policy("first.yaml", ALLOW_4001);
    let second = zt.policy("second.yaml", ALLOW_4002);
    zt.expect(0, &["apply", "-c", &first]);
    let apply = zt.spawn(&["apply", "-c", &second, "--confirm", "3"]);
    assert!(eventually(Duration::from_secs(10), || zt
        .state_file("pending.json")
        .is_some()));
    // Another apply must wait for the decision.
    assert_eq!(zt.run(&["apply", "-c", &first]).status.code(), Some(1));
    zt.expect(0, &["confirm"]);
    let out = apply.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("confirmed"));
    std::thread::sleep(Duration::from_secs(4));
    zt.expect(0, &["verify", "-c", &second]);
    assert_eq!(zt.applied_config().as_deref(), Some(second.as_str()));
    zt.expect(1, &["confirm"]);
    let results: Vec<String> = zt
        .trail()
        .iter()
        .map(|l| l["result"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        results,
        ["applied", "applied-pending-confirmation", "confirmed"]
    );
}

#[test]
fn an_unconfirmed_change_is_rolled_back() {
    let Some(zt) = Zt::new("unconfirmed") else {
        return;
    };
    let first = zt.policy("first.yaml", ALLOW_4001);
    let second = zt.policy("second.yaml", ALLOW_4002);
    zt.expect(0, &["apply", "-c", &first]);
    let (code, doc) = zt.json(&["apply", "-c", &second, "--confirm", "1"]);
    assert_eq!(code, 1, "{doc}");
    assert_eq!(doc["confirmed"], false);
    zt.expect(0, &["verify", "-c", &first]);
    assert_eq!(zt.applied_config().as_deref(), Some(first.as_str()));
    let last = zt.trail().pop().unwrap();
    assert_eq!(last["result"], "rolled-back");
    assert!(
        last["error"].as_str().unwrap().contains("the watchdog"),
        "{last}"
    );
}

#[test]
fn the_watchdog_rolls_back_after_the_apply_process_is_killed() {
    let Some(zt) = Zt::new("killed") else { return };
    let policy = zt.policy("p.yaml", ALLOW_4001);
    let mut apply = zt.spawn(&["apply", "-c", &policy, "--confirm", "2"]);
    assert!(eventually(Duration::from_secs(10), || {
        zt.state_file("pending.json")
            .is_some_and(|p| p["watchdog"].as_str().unwrap().starts_with("process"))
    }));
    assert!(zt.table_exists());
    apply.kill().unwrap(); // SIGKILL
    apply.wait().unwrap();
    assert!(
        eventually(Duration::from_secs(20), || !zt.table_exists()),
        "the watchdog removed the unconfirmed table"
    );
    assert!(eventually(Duration::from_secs(5), || zt
        .state_file("pending.json")
        .is_none()));
    assert_eq!(zt.applied_config(), None);
    assert_eq!(zt.trail().last().unwrap()["result"], "rolled-back");
}

#[test]
fn the_lock_serializes_invocations() {
    let Some(zt) = Zt::new("lock") else { return };
    let policy = zt.policy("p.yaml", ALLOW_4001);
    zt.expect(0, &["status"]); // creates the state directory
    let lock = File::options()
        .read(true)
        .write(true)
        .open(zt.state.join("lock"))
        .unwrap();
    lock.lock().unwrap();

    let out = zt.run(&["--no-wait", "apply", "-c", &policy]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--no-wait"));
    assert!(!zt.table_exists());

    let mut waiting = zt.spawn(&["apply", "-c", &policy]);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        waiting.try_wait().unwrap().is_none(),
        "the second apply waits"
    );
    assert!(!zt.table_exists());
    drop(lock);
    assert!(waiting.wait().unwrap().success());
    assert!(zt.table_exists());

    // Two applies at once: both finish, one after the other, and the trail stays whole.
    let other = zt.policy("q.yaml", ALLOW_4002);
    let a = zt.spawn(&["apply", "-c", &policy]);
    let b = zt.spawn(&["apply", "-c", &other]);
    assert!(a.wait_with_output().unwrap().status.success());
    assert!(b.wait_with_output().unwrap().status.success());
    let trail = zt.trail();
    assert_eq!(trail.len(), 3);
    assert!(trail.iter().all(|l| l["command"] == "apply"));
}
