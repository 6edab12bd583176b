//! Faults during apply: SIGKILL at every step boundary and at random moments, a kernel that
//! refuses the transaction, a state directory that cannot be written, concurrent applies, and
//! the end of the invoking session under `--confirm`. After each, the kernel holds exactly the
//! old or exactly the new policy and the next command recovers.
//!
//! Needs the binary built with the `fault-injection` feature (`cargo test --all-features`, as
//! `tests/run.sh` does).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ALLOW_4001, ALLOW_4002, Zt, eventually};
use std::time::Duration;

#[cfg(not(feature = "fault-injection"))]
#[test]
fn fault_injection_is_built_in() {
    assert!(
        std::env::var("CI").is_err(),
        "CI runs the fault tests: build with --all-features (or --features zt-cli/fault-injection)"
    );
    eprintln!("skipping the fault tests: the zt binary was built without `fault-injection`");
}

/// `nft -s list table inet zt` (rules without counter values), or "" when there is none.
fn listing(zt: &Zt) -> String {
    let out = zt.netns.run("nft", &["-s", "list", "table", "inet", "zt"]);
    if out.status.success() {
        String::from_utf8_lossy(&out.stdout).into_owned()
    } else {
        String::new()
    }
}

#[cfg(feature = "fault-injection")]
fn with_fault(zt: &Zt, fault: &str, args: &[&str]) -> std::process::Output {
    zt.command(args).env("ZT_FAULT", fault).output().unwrap()
}

#[cfg(feature = "fault-injection")]
fn killed(out: &std::process::Output) -> bool {
    use std::os::unix::process::ExitStatusExt;
    out.status.signal() == Some(libc::SIGKILL)
}

/// The listings of policies a and b, from applying each in turn; leaves zt's table and state
/// empty.
#[cfg(feature = "fault-injection")]
fn references(zt: &Zt, a: &str, b: &str) -> (String, String) {
    zt.expect(0, &["apply", "-c", a]);
    let la = listing(zt);
    zt.expect(0, &["apply", "-c", b]);
    let lb = listing(zt);
    reset(zt);
    assert!(!la.is_empty() && la != lb);
    (la, lb)
}

fn reset(zt: &Zt) {
    zt.expect(0, &["flush"]);
    let _ = std::fs::remove_dir_all(&zt.state);
}

#[cfg(feature = "fault-injection")]
#[test]
fn an_apply_killed_at_every_step_leaves_one_policy_and_recovers() {
    let Some(zt) = Zt::new("kill-steps") else {
        return;
    };
    let a = zt.policy("a.yaml", ALLOW_4001);
    let b = zt.policy("b.yaml", ALLOW_4002);
    let (la, lb) = references(&zt, &a, &b);
    let steps = [
        ("validated", false),
        ("locked", false),
        ("planned", false),
        ("intent-recorded", false),
        ("batch-built", false),
        ("committed", true),
        ("verified", true),
        ("rollback-point-recorded", true),
        ("recorded", true),
    ];
    for (i, (step, takes_effect)) in steps.into_iter().enumerate() {
        // From "intent-recorded" on, the next command finds an interrupted apply.
        let leaves_intent = i >= 3;
        reset(&zt);
        zt.expect(0, &["apply", "-c", &a]);
        let out = with_fault(&zt, step, &["apply", "-c", &b]);
        assert!(killed(&out), "{step}: the apply was not killed: {out:?}");
        let now = listing(&zt);
        assert_eq!(&now, if takes_effect { &lb } else { &la }, "{step}");

        // status works and says what happened; the next command settles the records.
        zt.expect(0, &["status"]);
        let (code, doc) = zt.json(&["rollback"]);
        assert_eq!(code, 0, "{step}: {doc}");
        if takes_effect {
            // Recovery completed the interrupted apply's records: rollback undoes it.
            assert_eq!(listing(&zt), la, "{step}: rollback restores a");
            assert_eq!(zt.applied_config().as_deref(), Some(a.as_str()), "{step}");
        } else {
            // The interrupted apply never happened: rollback undoes the apply of a.
            assert_eq!(listing(&zt), "", "{step}: rollback undoes a");
            assert_eq!(zt.applied_config(), None, "{step}");
        }
        assert!(zt.state_file("intent.json").is_none(), "{step}");
        zt.expect(0, &["apply", "-c", &b]);
        zt.expect(0, &["verify", "-c", &b]);
        let recovered = zt.trail().iter().any(|l| l["command"] == "recover");
        assert_eq!(
            recovered, leaves_intent,
            "{step}: the trail records a recovery"
        );
    }
}

#[cfg(feature = "fault-injection")]
#[test]
fn an_apply_killed_at_random_moments_never_leaves_a_mix_or_nothing() {
    let Some(zt) = Zt::new("kill-random") else {
        return;
    };
    let a = zt.policy("a.yaml", ALLOW_4001);
    let b = zt.policy("b.yaml", ALLOW_4002);
    let (la, lb) = references(&zt, &a, &b);
    zt.expect(0, &["apply", "-c", &a]);
    let runs = std::env::var("ZT_KILL_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200u32);
    // A fixed-seed generator: a failure names the run, and the run is reproducible.
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let (mut old, mut new) = (0, 0);
    for run in 0..runs {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = Duration::from_micros(seed % 40_000);
        let mut child = zt.spawn(&["apply", "-c", &b]);
        std::thread::sleep(delay);
        let _ = child.kill();
        let _ = child.wait();
        let now = listing(&zt);
        if now == la {
            old += 1;
        } else if now == lb {
            new += 1;
        } else {
            panic!("run {run} (killed after {delay:?}): the kernel holds neither policy:\n{now}");
        }
        // Back to a for the next run, through whatever state the kill left.
        let (code, doc) = zt.json(&["apply", "-c", &a]);
        assert_eq!(code, 0, "run {run} (killed after {delay:?}): {doc}");
        assert_eq!(listing(&zt), la, "run {run}");
    }
    eprintln!("{runs} runs: {old} left the old policy, {new} the new one");
    assert_eq!(old + new, runs);
    zt.expect(0, &["verify", "-c", &a]);
}

#[cfg(feature = "fault-injection")]
#[test]
fn a_kernel_refusal_changes_nothing_and_exits_3() {
    let Some(zt) = Zt::new("kernel-reject") else {
        return;
    };
    let a = zt.policy("a.yaml", ALLOW_4001);
    let b = zt.policy("b.yaml", ALLOW_4002);
    zt.expect(0, &["apply", "-c", &a]);
    let before = listing(&zt);
    let out = with_fault(&zt, "kernel-reject", &["apply", "-c", &b]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("zt:injected-fault"),
        "the error names the culprit: {stderr}"
    );
    assert!(stderr.contains("nothing was changed"), "{stderr}");
    assert_eq!(listing(&zt), before);
    assert_eq!(zt.applied_config().as_deref(), Some(a.as_str()));
    assert!(zt.state_file("intent.json").is_none());
    let last = zt.trail().pop().unwrap();
    assert_eq!(last["result"], "failed");
    assert!(
        last["error"]
            .as_str()
            .unwrap()
            .contains("zt:injected-fault")
    );
}

#[cfg(feature = "fault-injection")]
#[test]
fn a_change_that_cannot_be_recorded_is_rolled_back() {
    let Some(zt) = Zt::new("record-fails") else {
        return;
    };
    let a = zt.policy("a.yaml", ALLOW_4001);
    let b = zt.policy("b.yaml", ALLOW_4002);
    zt.expect(0, &["apply", "-c", &a]);
    let before = listing(&zt);
    let out = with_fault(&zt, "record-fails", &["apply", "-c", &b]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("previous state was restored"), "{stderr}");
    assert_eq!(listing(&zt), before);
    assert_eq!(zt.trail().pop().unwrap()["result"], "rolled-back");
}

#[test]
fn a_full_or_read_only_state_directory_stops_the_apply_before_the_kernel() {
    let Some(zt) = Zt::new("state-full") else {
        return;
    };
    let a = zt.policy("a.yaml", ALLOW_4001);
    let b = zt.policy("b.yaml", ALLOW_4002);
    let bin = env!("CARGO_BIN_EXE_zt");
    let state = zt.dir.join("small-state");
    std::fs::create_dir_all(&state).unwrap();
    // A private mount namespace: a 256 KiB tmpfs as the state directory (mode 0700: a tmpfs
    // is 1777 by default, which zt refuses as a state directory), a policy applied, then the
    // file system filled (then made read-only), and another apply attempted.
    let script = format!(
        r#"set -e
mount -t tmpfs -o size=256k,mode=0700 zt-state {state}
{bin} --state-dir {state} apply -c {a} >/dev/null
nft -s list table inet zt > {state}/../before.txt
dd if=/dev/zero of={state}/fill bs=4k 2>/dev/null || true
set +e
{bin} --state-dir {state} apply -c {b} 2>{state}/../full.err; echo $? > {state}/../full.code
rm -f {state}/fill
mount -o remount,ro {state}
{bin} --state-dir {state} apply -c {b} 2>{state}/../ro.err; echo $? > {state}/../ro.code
nft -s list table inet zt > {state}/../after.txt
"#,
        state = state.display(),
    );
    let out = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let read = |name: &str| std::fs::read_to_string(zt.dir.join(name)).unwrap();
    assert_eq!(read("full.code").trim(), "3", "{}", read("full.err"));
    assert!(
        read("full.err").contains("No space left on device"),
        "{}",
        read("full.err")
    );
    assert!(
        read("full.err").contains("nothing was changed"),
        "{}",
        read("full.err")
    );
    assert_eq!(read("ro.code").trim(), "3", "{}", read("ro.err"));
    assert!(
        read("ro.err").contains("Read-only file system"),
        "{}",
        read("ro.err")
    );
    assert_eq!(
        read("before.txt"),
        read("after.txt"),
        "the kernel still holds policy a"
    );
}

#[test]
fn eight_concurrent_applies_are_serialized_and_one_policy_wins_whole() {
    let Some(zt) = Zt::new("eight") else { return };
    let policies: Vec<String> = (0..8)
        .map(|i| {
            zt.policy(
                &format!("p{i}.yaml"),
                &ALLOW_4001.replace("4001", &(5000 + i).to_string()),
            )
        })
        .collect();
    let mut listings = Vec::new();
    for p in &policies {
        zt.expect(0, &["apply", "-c", p]);
        listings.push(listing(&zt));
    }
    reset(&zt);
    let children: Vec<_> = policies
        .iter()
        .map(|p| zt.spawn(&["apply", "-c", p]))
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    let now = listing(&zt);
    let winner = listings.iter().position(|l| *l == now);
    assert!(
        winner.is_some(),
        "the kernel holds one policy exactly:\n{now}"
    );
    let trail = zt.trail();
    assert_eq!(trail.len(), 8, "one line per apply");
    assert!(
        trail
            .iter()
            .all(|l| l["command"] == "apply" && l["result"] == "applied")
    );
    let config = zt.applied_config().unwrap();
    assert_eq!(
        Some(&config),
        winner.map(|w| &policies[w]),
        "the record names the winner"
    );
}

#[test]
fn an_unconfirmed_change_is_rolled_back_when_the_invoking_session_ends() {
    use std::os::unix::process::CommandExt;
    let Some(zt) = Zt::new("hangup") else { return };
    let a = zt.policy("a.yaml", ALLOW_4001);
    let b = zt.policy("b.yaml", ALLOW_4002);
    zt.expect(0, &["apply", "-c", &a]);
    let before = listing(&zt);
    let mut command = zt.command(&["apply", "-c", &b, "--confirm", "2"]);
    // A session of its own, as a login shell's: its end hangs up every process in it.
    // SAFETY: setsid(2) only, between fork and exec.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut apply = command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert!(eventually(Duration::from_secs(10), || {
        zt.state_file("pending.json")
            .is_some_and(|p| p["watchdog"].as_str().unwrap().starts_with("process"))
    }));
    assert!(eventually(Duration::from_secs(10), || listing(&zt) != before));
    // The session ends: SIGHUP to its process group (the apply), as the terminal's hangup.
    let pgid = i32::try_from(apply.id()).unwrap();
    // SAFETY: kill(2) of the test's own child's process group.
    unsafe { libc::kill(-pgid, libc::SIGHUP) };
    apply.wait().unwrap();
    assert!(
        eventually(Duration::from_secs(20), || listing(&zt) == before),
        "the watchdog restored policy a"
    );
    assert!(eventually(Duration::from_secs(5), || zt
        .state_file("pending.json")
        .is_none()));
    assert_eq!(zt.applied_config().as_deref(), Some(a.as_str()));
}

#[cfg(feature = "fault-injection")]
#[test]
fn a_confirm_apply_killed_before_its_kernel_change_is_not_rolled_back_by_its_watchdog() {
    let Some(zt) = Zt::new("armed-kill") else {
        return;
    };
    let a = zt.policy("a.yaml", ALLOW_4001);
    let b = zt.policy("b.yaml", ALLOW_4002);
    zt.expect(0, &["apply", "-c", &a]);
    let la = listing(&zt);
    let out = with_fault(&zt, "armed", &["apply", "-c", &b, "--confirm", "1"]);
    assert!(killed(&out));
    assert!(
        eventually(Duration::from_secs(15), || zt
            .state_file("pending.json")
            .is_none()),
        "the watchdog settles the pending change"
    );
    assert_eq!(
        listing(&zt),
        la,
        "policy a stays: the apply of b never happened"
    );
    assert_eq!(zt.applied_config().as_deref(), Some(a.as_str()));

    // Killed right after its kernel change: the watchdog completes the records, then rolls
    // the unconfirmed change back.
    let out = with_fault(&zt, "committed", &["apply", "-c", &b, "--confirm", "1"]);
    assert!(killed(&out));
    assert_ne!(listing(&zt), la);
    assert!(eventually(Duration::from_secs(15), || listing(&zt) == la));
    assert!(eventually(Duration::from_secs(5), || zt
        .state_file("pending.json")
        .is_none()));
    assert_eq!(zt.applied_config().as_deref(), Some(a.as_str()));
}
