//! Output that cannot be written: a reader that left before zt wrote (`zt apply | head -c0`),
//! a closed standard error, a full disk (`> /dev/full`). zt must never panic, must finish the
//! work it was asked to do and record it in the audit trail, must stay quiet about a departed
//! reader (exit code as it was) and must say so when output is lost otherwise (exit 3 unless
//! the command already failed).
//!
//! The pipes here are closed before the command starts, so the first write fails every time:
//! no timing decides what is tested.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ALLOW_4001, ALLOW_4002, Zt, eventually, s};
use std::fs::OpenOptions;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::Duration;

/// Where a stream of the command goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum To {
    /// A pipe whose read end is closed before the command runs: every write gets EPIPE.
    Closed,
    /// `/dev/full`: every write gets ENOSPC.
    Full,
    /// A pipe the test reads.
    Read,
}

fn sink(to: To) -> Stdio {
    match to {
        To::Closed => {
            let (reader, writer) = std::io::pipe().unwrap();
            drop(reader);
            Stdio::from(writer)
        }
        To::Full => Stdio::from(OpenOptions::new().write(true).open("/dev/full").unwrap()),
        To::Read => Stdio::piped(),
    }
}

/// What a command did.
#[derive(Debug)]
struct Ran {
    what: String,
    pid: u32,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn start(zt: &Zt, args: &[&str], stdout: To, stderr: To) -> Child {
    zt.command(args)
        .stdin(Stdio::null())
        .stdout(sink(stdout))
        .stderr(sink(stderr))
        .spawn()
        .unwrap()
}

fn finish(child: Child, what: String) -> Ran {
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let ran = Ran {
        what,
        pid,
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    // Never a panic, never killed by a signal (SIGPIPE included).
    assert!(ran.code.is_some(), "{ran:#?}");
    assert_ne!(ran.code, Some(101), "{ran:#?}");
    assert!(!ran.stderr.contains("panicked"), "{ran:#?}");
    ran
}

/// Run `zt args` with its standard output and error sent where `stdout` and `stderr` say.
fn run(zt: &Zt, args: &[&str], stdout: To, stderr: To) -> Ran {
    let what = format!("zt {args:?} (stdout {stdout:?}, stderr {stderr:?})");
    finish(start(zt, args, stdout, stderr), what)
}

/// The audit trail's line written by `ran`'s process (its pid), which must be the last one.
fn trail_line(zt: &Zt, ran: &Ran) -> serde_json::Value {
    let trail = zt.trail();
    let last = trail
        .last()
        .unwrap_or_else(|| panic!("{}: the audit trail is empty", ran.what))
        .clone();
    assert_eq!(
        last["pid"], ran.pid,
        "{}: the last audit line is not this command's: {last}",
        ran.what
    );
    last
}

/// Exactly one line on standard error says that standard output could not be written, and why.
fn reports_full_stdout(ran: &Ran) {
    let reports: Vec<&str> = ran
        .stderr
        .lines()
        .filter(|l| l.contains("cannot write to standard output"))
        .collect();
    assert_eq!(reports.len(), 1, "{ran:#?}");
    assert!(
        reports[0].starts_with("zt: error: ") && reports[0].contains("No space left on device"),
        "{ran:#?}"
    );
}

/// Every command that changes something — apply, apply of a second policy, rollback, persist,
/// flush — with standard output and error sent as given, `-v` when `verbose` (so that
/// standard error is written to). Each must do its work, record it, and exit `code`; `check`
/// looks at the standard error of each run.
fn every_changing_command(
    zt: &Zt,
    stdout: To,
    stderr: To,
    verbose: bool,
    code: i32,
    check: impl Fn(&Ran),
) {
    let a = zt.policy("a.yaml", ALLOW_4001);
    let b = zt.policy("b.yaml", ALLOW_4002);
    let root = s(&zt.dir.join("root"));
    let zt_run = |args: &[&str]| {
        let mut all = Vec::new();
        if verbose {
            all.push("-v");
        }
        all.extend_from_slice(args);
        let ran = run(zt, &all, stdout, stderr);
        assert_eq!(ran.code, Some(code), "{ran:#?}");
        check(&ran);
        ran
    };

    let ran = zt_run(&["apply", "-c", &a]);
    zt.expect(0, &["verify", "-c", &a]);
    let line = trail_line(zt, &ran);
    assert_eq!(
        (&line["command"], &line["result"], &line["config"]),
        (&"apply".into(), &"applied".into(), &a.as_str().into()),
        "{}",
        ran.what
    );

    let ran = zt_run(&["apply", "-c", &b]);
    zt.expect(0, &["verify", "-c", &b]);
    assert_eq!(zt.applied_config().as_deref(), Some(b.as_str()));
    let line = trail_line(zt, &ran);
    assert_eq!(
        (&line["command"], &line["result"], &line["config"]),
        (&"apply".into(), &"applied".into(), &b.as_str().into()),
        "{}",
        ran.what
    );

    let ran = zt_run(&["rollback"]);
    zt.expect(0, &["verify", "-c", &a]);
    let line = trail_line(zt, &ran);
    assert_eq!(
        (&line["command"], &line["result"]),
        (&"rollback".into(), &"rolled-back".into()),
        "{}",
        ran.what
    );

    let ran = zt_run(&["persist", "-c", &a, "--root", &root]);
    assert!(zt.dir.join("root/etc/zt/zt.nft").is_file(), "{}", ran.what);
    let line = trail_line(zt, &ran);
    assert_eq!(
        (&line["command"], &line["result"]),
        (&"persist".into(), &"persisted".into()),
        "{}",
        ran.what
    );

    let ran = zt_run(&["flush"]);
    assert!(!zt.table_exists(), "{}", ran.what);
    let line = trail_line(zt, &ran);
    assert_eq!(
        (&line["command"], &line["result"]),
        (&"flush".into(), &"flushed".into()),
        "{}",
        ran.what
    );
}

#[test]
fn a_reader_gone_before_any_output_ends_it_quietly_and_the_work_is_done_and_recorded() {
    let Some(zt) = Zt::new("out-stdout-closed") else {
        return;
    };
    every_changing_command(&zt, To::Closed, To::Read, false, 0, |ran| {
        assert_eq!(ran.stderr, "", "quiet: {ran:#?}");
    });
}

#[test]
fn a_closed_standard_error_does_not_stop_verbose_commands() {
    let Some(zt) = Zt::new("out-stderr-closed") else {
        return;
    };
    every_changing_command(&zt, To::Read, To::Closed, true, 0, |ran| {
        assert!(!ran.stdout.is_empty(), "stdout still written: {ran:#?}");
    });
}

#[test]
fn a_full_standard_output_is_reported_once_with_exit_3_and_the_work_is_done_and_recorded() {
    let Some(zt) = Zt::new("out-stdout-full") else {
        return;
    };
    every_changing_command(&zt, To::Full, To::Read, false, 3, reports_full_stdout);
}

#[test]
fn both_streams_closed_or_full_still_do_the_work() {
    let Some(zt) = Zt::new("out-both") else {
        return;
    };
    every_changing_command(&zt, To::Closed, To::Closed, true, 0, |_| {});
    every_changing_command(&zt, To::Full, To::Full, true, 3, |_| {});
}

/// `zt -v apply 2>&1 >/dev/full`: the progress lines reach standard error, the lost output is
/// reported there, the change is made and recorded.
#[test]
fn a_verbose_apply_with_standard_output_full_reports_it_and_records_the_change() {
    let Some(zt) = Zt::new("out-verbose-full") else {
        return;
    };
    let a = zt.policy("a.yaml", ALLOW_4001);
    let ran = run(&zt, &["-v", "apply", "-c", &a], To::Full, To::Read);
    assert_eq!(ran.code, Some(3), "{ran:#?}");
    assert!(ran.stderr.contains("zt: planned in"), "{ran:#?}");
    assert!(ran.stderr.contains("zt: verified in"), "{ran:#?}");
    reports_full_stdout(&ran);
    zt.expect(0, &["verify", "-c", &a]);
    assert_eq!(trail_line(&zt, &ran)["result"], "applied");
}

/// A command that already failed keeps its exit code when its output is lost too: `verify`
/// with drift (1), `--json rollback` with nothing to roll back (1, its JSON document lost).
#[test]
fn a_command_that_failed_keeps_its_exit_code_when_its_output_is_lost() {
    let Some(zt) = Zt::new("out-failed") else {
        return;
    };
    let a = zt.policy("a.yaml", ALLOW_4001);
    let b = zt.policy("b.yaml", ALLOW_4002);
    zt.expect(0, &["apply", "-c", &a]);
    for to in [To::Full, To::Closed] {
        let ran = run(&zt, &["verify", "-c", &b], to, To::Read);
        assert_eq!(ran.code, Some(1), "{ran:#?}");
        if to == To::Full {
            reports_full_stdout(&ran);
        }
    }
    zt.expect(0, &["flush"]);
    let ran = run(&zt, &["--json", "rollback"], To::Full, To::Read);
    assert_eq!(ran.code, Some(1), "{ran:#?}");
    reports_full_stdout(&ran);
}

/// `zt status | head -1` and `zt check -c big.yaml | head -1`: the reader leaves after one
/// line (the check prints far more than a pipe holds, so zt is still writing), or before the
/// first (status); zt ends quietly with exit 0.
#[test]
fn readers_that_leave_early_end_status_and_check_quietly() {
    let Some(zt) = Zt::new("out-head") else {
        return;
    };
    let a = zt.policy("a.yaml", ALLOW_4001);
    zt.expect(0, &["apply", "-c", &a]);
    let ran = run(&zt, &["status"], To::Closed, To::Read);
    assert_eq!((ran.code, ran.stderr.as_str()), (Some(0), ""), "{ran:#?}");

    let mut big = String::from("version: \"1.0\"\nrules:\n");
    for i in 0..5000 {
        big.push_str(&format!(
            "  - name: rule-{i}\n    from: {{ uid: {} }}\n    to: {{ host: 10.{}.{}.0/24, port: {} }}\n    action: allow\n",
            5000 + i,
            i / 250,
            i % 250,
            1000 + i
        ));
    }
    let big = zt.policy("big.yaml", &big);
    let whole = zt.expect(0, &["check", "-c", &big]);
    assert!(
        whole.len() > 4 * 65536,
        "the output is four times what a pipe holds by default: {}",
        whole.len()
    );
    let mut child = start(&zt, &["check", "-c", &big], To::Read, To::Read);
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    // The reader is gone (`head -1` exits); zt has far more to write than the pipe holds.
    assert!(first.contains("valid: 5000 rules"), "{first}");
    let ran = finish(child, "zt check -c big.yaml | head -1".into());
    assert_eq!((ran.code, ran.stderr.as_str()), (Some(0), ""), "{ran:#?}");
}

/// `zt apply --confirm` whose reader is gone still waits for the decision, and `zt confirm`
/// with a full output still confirms: both recorded.
#[test]
fn the_confirm_flow_survives_lost_output() {
    let Some(zt) = Zt::new("out-confirm") else {
        return;
    };
    let a = zt.policy("a.yaml", ALLOW_4001);
    let b = zt.policy("b.yaml", ALLOW_4002);
    zt.expect(0, &["apply", "-c", &a]);
    let apply = start(
        &zt,
        &["apply", "-c", &b, "--confirm", "3"],
        To::Closed,
        To::Read,
    );
    let armed = || {
        zt.state_file("pending.json")
            .filter(|p| p["watchdog"] != "starting")
    };
    assert!(eventually(Duration::from_secs(10), || armed().is_some()));
    let watchdog = armed().unwrap()["watchdog"].as_str().unwrap().to_owned();
    let confirm = run(&zt, &["confirm"], To::Full, To::Read);
    assert_eq!(confirm.code, Some(3), "{confirm:#?}");
    reports_full_stdout(&confirm);
    assert_eq!(trail_line(&zt, &confirm)["result"], "confirmed");
    let applied = finish(apply, "zt apply --confirm 3 | head -c0".into());
    assert_eq!(applied.code, Some(0), "{applied:#?}");
    assert_eq!(applied.stderr, "", "{applied:#?}");
    zt.expect(0, &["verify", "-c", &b]);
    let results: Vec<String> = zt
        .trail()
        .iter()
        .map(|l| l["result"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        results,
        ["applied", "applied-pending-confirmation", "confirmed"]
    );
    // The watchdog finds nothing to roll back at the deadline and leaves; wait for it, so it
    // cannot touch the test directory after it is removed.
    if let Some(pid) = watchdog.strip_prefix("process ") {
        let proc = format!("/proc/{pid}");
        assert!(eventually(Duration::from_secs(15), || {
            !std::path::Path::new(&proc).exists()
        }));
    }
    zt.expect(0, &["verify", "-c", &b]);
}
