//! zt killed while the iptables backend's `iptables-restore` runs: the tool dies with it
//! (issue 18: it used to outlive zt, holding the xtables lock and possibly committing a
//! change after the next command had already recovered).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Zt;
use std::fmt::Write;
use std::time::{Duration, Instant};
use zt_testkit::{Prerequisite, require};

/// The children of `pid` whose command line contains `restore`.
fn restore_children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.split_once(") ") else {
            continue;
        };
        let ppid = rest
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok());
        // The command line, not the 15-character command name ("iptables-nft-re").
        let cmdline = std::fs::read(format!("/proc/{child}/cmdline")).unwrap_or_default();
        if ppid == Some(pid) && String::from_utf8_lossy(&cmdline).contains("restore") {
            out.push(child);
        }
    }
    out
}

/// Alive (running or stopped) and not a zombie.
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.split_once(") ").map(|(_, rest)| !rest.starts_with('Z')))
        .unwrap_or(false)
}

#[test]
fn a_restore_in_progress_dies_with_zt() {
    if !require(&[Prerequisite::Binary("iptables-nft-restore")]) {
        return;
    }
    let Some(zt) = Zt::new("iptables-child") else {
        return;
    };
    // Enough rules that the restore takes a while (seconds on a loaded machine).
    let mut yaml = String::from("version: \"1.0\"\nrules:\n");
    for i in 0..20_000 {
        let _ = write!(
            yaml,
            "  - name: r{i}\n    from: {{uid: {}}}\n    to: {{host: 10.{}.{}.0/24, port: {}}}\n    action: allow\n",
            20_000 + i,
            i / 256 % 256,
            i % 256,
            1024 + i % 60_000
        );
    }
    let policy = zt.policy("big.yaml", &yaml);
    let mut child = zt.spawn(&[
        "--backend",
        "iptables",
        "--iptables-variant",
        "nft",
        "apply",
        "-c",
        &policy,
    ]);
    let zt_pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(60);
    let restore = loop {
        if let Some(&pid) = restore_children(zt_pid).first() {
            break pid;
        }
        assert!(
            Instant::now() < deadline && child.try_wait().unwrap().is_none(),
            "zt never ran iptables-nft-restore"
        );
        std::thread::sleep(Duration::from_millis(2));
    };
    // Held where it is, so it cannot finish (or fail on its closed input) by itself: only
    // being killed with zt ends it.
    // SAFETY: kill(2) on a pid this test found; it touches no memory.
    unsafe { libc::kill(restore as i32, libc::SIGSTOP) };
    child.kill().unwrap();
    child.wait().unwrap();
    let gone = Instant::now();
    while running(restore) && gone.elapsed() < Duration::from_millis(500) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let outlived = running(restore);
    if outlived {
        // Do not leave it running for the next test.
        // SAFETY: as above.
        unsafe { libc::kill(restore as i32, libc::SIGKILL) };
    }
    assert!(
        !outlived,
        "iptables-nft-restore (pid {restore}) outlived the killed zt by 500 ms"
    );
}
