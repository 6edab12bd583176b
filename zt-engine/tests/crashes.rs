//! A process killed at every step of the transaction (SIGKILL: no destructor, no handler, as
//! a crash, an OOM kill or a power cut end it), then recovery by the next command. The apply
//! runs in a child process — this test binary again, running only `the_child_applies` — whose
//! kernel is a file, so it survives the child exactly as the kernel would.
//!
//! Needs the `fault-injection` feature (`cargo test --all-features`, as `tests/run.sh` does).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Host, policy};
use std::path::PathBuf;
use std::time::Duration;
use zt_engine::state::StateDir;
use zt_engine::{ApplyOptions, Watchdog};

/// Where the child finds its host, and whether it asks for a confirmation deadline.
const DIR: &str = "ZT_ENGINE_CRASH_DIR";
const CONFIRM: &str = "ZT_ENGINE_CRASH_CONFIRM";

/// A watchdog that starts nothing (the test plays it).
struct Nobody;

impl Watchdog for Nobody {
    fn arm(&self, _: &StateDir, _: &str) -> Result<String, String> {
        Ok("nobody".into())
    }
}

/// The child's part: apply policy b over whatever the host holds. Does nothing unless the
/// parent started it.
#[test]
fn the_child_applies() {
    let Some(dir) = std::env::var_os(DIR) else {
        return;
    };
    let host = Host {
        dir: PathBuf::from(dir),
    };
    let options = match std::env::var_os(CONFIRM) {
        Some(_) => ApplyOptions::confirm_within(Duration::from_secs(600)),
        None => ApplyOptions::default(),
    };
    let result = host
        .engine()
        .with_watchdog(Box::new(Nobody))
        .apply(&policy("b"), options);
    // Reaching this line means the fault did not fire; the parent reports it.
    std::mem::forget(host);
    eprintln!("the child finished: {:?}", result.map(|o| o.changed));
}

#[cfg(not(feature = "fault-injection"))]
#[test]
fn fault_injection_is_built_in() {
    assert!(
        std::env::var("CI").is_err(),
        "CI runs the crash tests: build with --all-features (or --features zt-engine/fault-injection)"
    );
    eprintln!("skipping the crash tests: built without `fault-injection`");
}

#[cfg(feature = "fault-injection")]
mod killed {
    use super::*;
    use common::{kernel, text};
    use std::os::unix::process::ExitStatusExt;
    use std::process::Command;

    /// Every step boundary of the transaction, whether the kernel holds b after a death there,
    /// whether an intent is left for recovery, and whether the trail already has the apply's
    /// line: it is appended before the records and before the intent is removed, so a death
    /// after the kernel change never leaves a change the trail does not show.
    const STEPS: [(&str, Kernel, bool, bool); 10] = [
        ("locked", Kernel::A, false, false),
        ("planned", Kernel::A, false, false),
        ("intent-recorded", Kernel::A, true, false),
        ("armed", Kernel::A, true, false),
        ("mock-half-written", Kernel::Mix, true, false),
        ("committed", Kernel::B, true, false),
        ("verified", Kernel::B, true, false),
        ("rollback-point-recorded", Kernel::B, true, true),
        ("recorded", Kernel::B, true, true),
        ("no-such-step", Kernel::B, false, true),
    ];

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Kernel {
        A,
        B,
        Mix,
    }

    #[test]
    fn an_apply_killed_at_every_step_is_completed_or_undone_by_the_next_command() {
        for (step, holds, intent_left, line_written) in STEPS {
            let host = Host::new(&format!("crash-{step}"));
            let (a, b) = (policy("a"), policy("b"));
            host.engine().apply(&a, ApplyOptions::default()).unwrap();

            let mut child = Command::new(std::env::current_exe().unwrap());
            child
                .args([
                    "the_child_applies",
                    "--exact",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(DIR, &host.dir)
                .env("ZT_FAULT", step);
            if step == "armed" {
                child.env(CONFIRM, "1");
            }
            let out = child.output().unwrap();
            let killed = out.status.signal() == Some(libc::SIGKILL);
            assert_eq!(
                killed,
                step != "no-such-step",
                "{step}: {}",
                String::from_utf8_lossy(&out.stderr)
            );

            let now = kernel(&host.kernel());
            let expected = match holds {
                Kernel::A => Some(text(&a.policy.ruleset())),
                Kernel::B => Some(text(&b.policy.ruleset())),
                Kernel::Mix => now.clone().filter(|k| k.ends_with("half-written\n")),
            };
            assert_eq!(
                now, expected,
                "{step}: what the kernel holds after the death"
            );
            assert_eq!(host.record("intent.json").is_some(), intent_left, "{step}");
            let lines = host
                .trail()
                .into_iter()
                .filter(|l| {
                    l["command"] == "apply" && l["result"] == "applied" && l["sha256"] == *b.sha256
                })
                .count();
            assert_eq!(
                lines,
                usize::from(line_written),
                "{step}: the trail line of b"
            );

            // The next command that changes anything recovers first; this one is a rollback, so
            // it then undoes whichever apply stands: b's (back to a), or a's (back to nothing).
            let mut engine = host.engine();
            let restored = engine.rollback().unwrap();
            assert!(host.record("intent.json").is_none(), "{step}");
            let trail = host.trail();
            let recovered = trail.iter().find(|l| l["command"] == "recover");
            if holds == Kernel::B {
                assert_eq!(restored.map(|r| r.sha256), Some(a.sha256.clone()), "{step}");
                assert_eq!(
                    kernel(&host.kernel()),
                    Some(text(&a.policy.ruleset())),
                    "{step}"
                );
            } else {
                assert_eq!(restored, None, "{step}: a's apply undone");
                assert_eq!(kernel(&host.kernel()), None, "{step}");
            }
            match (intent_left, holds) {
                (false, _) => assert!(recovered.is_none(), "{step}"),
                (true, Kernel::B) => assert_eq!(recovered.unwrap()["result"], "applied", "{step}"),
                (true, Kernel::A) => assert_eq!(recovered.unwrap()["result"], "not-applied"),
                (true, Kernel::Mix) => {
                    let line = recovered.unwrap();
                    assert_eq!(line["result"], "not-applied", "{step}");
                    assert!(
                        line["error"].as_str().unwrap().contains("in part"),
                        "{step}"
                    );
                }
            }
            assert!(host.record("pending.json").is_none(), "{step}");
        }
    }
}
