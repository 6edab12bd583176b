//! The apply transaction against a mocked backend whose kernel is a file: the records, the
//! trail, a failed kernel write, a change that cannot be recorded, pending confirmations.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Host, NAME, backend, kernel, policy, reading, text};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;
use zt_core::MockBackend;
use zt_engine::state::StateDir;
use zt_engine::{Aftermath, ApplyOptions, Engine, EngineError, ErrorClass, Watchdog};

/// A watchdog that only remembers the tokens it was given; the test plays its part.
#[derive(Clone, Default)]
struct Tokens(Rc<RefCell<Vec<String>>>);

impl Watchdog for Tokens {
    fn arm(&self, _: &StateDir, token: &str) -> Result<String, String> {
        self.0.borrow_mut().push(token.to_owned());
        Ok("in the test".into())
    }
}

#[test]
fn an_apply_records_the_change_and_the_same_policy_again_writes_nothing() {
    let host = Host::new("records");
    let a = policy("a");
    let outcome = host.engine().apply(&a, ApplyOptions::default()).unwrap();
    assert!(outcome.changed);
    assert_eq!(kernel(&host.kernel()), Some(text(&a.policy.ruleset())));
    assert_eq!(host.applied(), Some(a.sha256.clone()));
    assert_eq!(
        host.record("rollback.json").unwrap()["snapshot"]["content"],
        serde_json::Value::Null,
        "zt owned nothing before"
    );
    assert!(host.record("intent.json").is_none());

    // The same policy: planned, not written (a backend that must not be written to).
    let mut mock = MockBackend::new();
    reading(&mut mock, &host.kernel());
    mock.expect_apply().times(0);
    let mut engine = Engine::open(host.state(), Box::new(mock)).unwrap();
    let again = engine.apply(&a, ApplyOptions::default()).unwrap();
    assert!(!again.changed);
    let trail = host.trail();
    let results: Vec<&str> = trail
        .iter()
        .map(|l| l["result"].as_str().unwrap())
        .collect();
    assert_eq!(results, ["applied", "unchanged"]);
    assert_eq!(trail[0]["changes"]["add"], 8);
    assert_eq!(trail[0]["backend"], NAME);
}

#[test]
fn a_failed_kernel_write_changes_nothing_and_says_so() {
    let host = Host::new("kernel-fails");
    let (a, b) = (policy("a"), policy("b"));
    host.engine().apply(&a, ApplyOptions::default()).unwrap();

    let mut mock = MockBackend::new();
    reading(&mut mock, &host.kernel());
    mock.expect_apply().times(1).returning(|_| {
        Err(zt_core::Error::Backend {
            backend: NAME,
            message: "the kernel refused rule 'b'".into(),
            source: None,
        })
    });
    mock.expect_rollback().times(0);
    let mut engine = Engine::open(host.state(), Box::new(mock))
        .unwrap()
        .with_resolver(Box::new(zt_core::StaticResolver::new()));
    let err = engine.apply(&b, ApplyOptions::default()).unwrap_err();
    assert_eq!(err.class(), ErrorClass::Failed);
    assert!(
        matches!(
            &err,
            EngineError::Apply {
                aftermath: Aftermath::NothingChanged,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("rule 'b'") && err.to_string().contains("nothing was changed")
    );
    assert_eq!(kernel(&host.kernel()), Some(text(&a.policy.ruleset())));
    assert_eq!(host.applied(), Some(a.sha256.clone()));
    assert!(host.record("intent.json").is_none());
    let last = host.trail().pop().unwrap();
    assert_eq!(last["result"], "failed");
    assert_eq!(last["sha256"].as_str(), Some(b.sha256.as_str()));
}

#[test]
fn a_change_that_cannot_be_recorded_is_rolled_back_in_the_kernel() {
    let host = Host::new("record-fails");
    let (a, b) = (policy("a"), policy("b"));
    host.engine().apply(&a, ApplyOptions::default()).unwrap();
    // The rollback record is written beside itself first; where a directory stands in the
    // way, that write fails after the kernel changed.
    let blocker = host
        .state()
        .join(NAME)
        .join(format!(".rollback.json.tmp-{}", std::process::id()));
    std::fs::create_dir(&blocker).unwrap();
    std::fs::write(blocker.join("occupied"), "").unwrap();

    let err = host
        .engine()
        .apply(&b, ApplyOptions::default())
        .unwrap_err();
    assert!(
        matches!(
            &err,
            EngineError::Apply {
                aftermath: Aftermath::Restored,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.class(), ErrorClass::Failed);
    assert_eq!(
        kernel(&host.kernel()),
        Some(text(&a.policy.ruleset())),
        "the kernel holds the recorded policy again"
    );
    assert_eq!(host.applied(), Some(a.sha256.clone()));
    assert!(host.record("intent.json").is_none());
    let results: Vec<String> = host
        .trail()
        .iter()
        .map(|l| l["result"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(results.last().map(String::as_str), Some("rolled-back"));

    // With the directory gone, the one level of undo is still A's.
    std::fs::remove_dir_all(&blocker).unwrap();
    host.engine().rollback().unwrap();
    assert_eq!(kernel(&host.kernel()), None);
}

#[test]
fn drift_after_the_write_puts_the_snapshot_back() {
    let host = Host::new("drift");
    let (a, b) = (policy("a"), policy("b"));
    host.engine().apply(&a, ApplyOptions::default()).unwrap();
    // A backend whose write silently does nothing.
    let mut mock = MockBackend::new();
    reading(&mut mock, &host.kernel());
    let k = host.kernel();
    mock.expect_apply().returning(move |_| {
        Ok(zt_core::Snapshot {
            backend: NAME.into(),
            content: kernel(&k),
        })
    });
    let k = host.kernel();
    mock.expect_rollback().times(1).returning(move |s| {
        common::restore(&k, s);
        Ok(())
    });
    let mut engine = Engine::open(host.state(), Box::new(mock)).unwrap();
    let err = engine.apply(&b, ApplyOptions::default()).unwrap_err();
    assert_eq!(err.class(), ErrorClass::Refused);
    assert!(err.drift().is_some_and(|d| !d.is_empty()));
    assert_eq!(host.applied(), Some(a.sha256.clone()));
}

#[test]
fn a_pending_change_refuses_another_apply_until_confirmed() {
    let host = Host::new("pending");
    let (a, b, c) = (policy("a"), policy("b"), policy("c"));
    let tokens = Tokens::default();
    let mut engine = host.engine().with_watchdog(Box::new(tokens.clone()));
    engine.apply(&a, ApplyOptions::default()).unwrap();
    let outcome = engine
        .apply(&b, ApplyOptions::confirm_within(Duration::from_secs(600)))
        .unwrap();
    let pending = outcome.pending.unwrap();
    assert_eq!(pending.watchdog, "in the test");
    assert_eq!(*tokens.0.borrow(), vec![pending.token.clone()]);

    let err = engine.apply(&c, ApplyOptions::default()).unwrap_err();
    assert!(matches!(err, EngineError::Pending { .. }), "{err}");
    assert_eq!(err.class(), ErrorClass::Refused);
    assert_eq!(kernel(&host.kernel()), Some(text(&b.policy.ruleset())));

    engine.confirm().unwrap();
    assert!(host.record("pending.json").is_none());
    assert!(
        !engine.expire(&pending.token, "the test").unwrap(),
        "confirmed: kept"
    );
    engine.apply(&c, ApplyOptions::default()).unwrap();
    assert_eq!(host.applied(), Some(c.sha256.clone()));
    assert!(matches!(
        engine.confirm(),
        Err(EngineError::NothingPending { .. })
    ));
}

#[test]
fn a_confirm_deadline_that_passes_rolls_the_change_back() {
    let host = Host::new("deadline");
    let (a, b) = (policy("a"), policy("b"));
    let tokens = Tokens::default();
    let mut engine = host.engine().with_watchdog(Box::new(tokens.clone()));
    engine.apply(&a, ApplyOptions::default()).unwrap();
    let outcome = engine
        .apply(&b, ApplyOptions::confirm_within(Duration::from_secs(1)))
        .unwrap();
    assert_eq!(kernel(&host.kernel()), Some(text(&b.policy.ruleset())));
    let token = tokens.0.borrow()[0].clone();

    // What the watchdog process does: sleep until the deadline, then roll back.
    let started = std::time::Instant::now();
    let mut watchdog = host.engine();
    assert!(watchdog.watch(&token).unwrap(), "rolled back");
    assert!(started.elapsed() >= Duration::from_millis(500));
    assert_eq!(kernel(&host.kernel()), Some(text(&a.policy.ruleset())));
    assert_eq!(host.applied(), Some(a.sha256.clone()));
    assert!(host.record("pending.json").is_none());
    let last = host.trail().pop().unwrap();
    assert_eq!(last["result"], "rolled-back");
    assert!(last["error"].as_str().unwrap().contains("not confirmed"));

    // The waiting apply learns the change was not kept.
    let (pending, record) = (outcome.pending.unwrap(), outcome.record.unwrap());
    let kept = engine
        .await_decision(&pending, &record, &mut |_| false)
        .unwrap();
    assert!(!kept);
}

#[test]
fn a_yes_while_waiting_keeps_the_change() {
    let host = Host::new("yes");
    let b = policy("b");
    let mut engine = host.engine().with_watchdog(Box::new(Tokens::default()));
    let outcome = engine
        .apply(&b, ApplyOptions::confirm_within(Duration::from_secs(600)))
        .unwrap();
    let (pending, record) = (outcome.pending.unwrap(), outcome.record.unwrap());
    let kept = engine
        .await_decision(&pending, &record, &mut |_| true)
        .unwrap();
    assert!(kept);
    assert!(host.record("pending.json").is_none());
    assert_eq!(host.trail().pop().unwrap()["result"], "confirmed");
}

#[test]
fn a_deadline_without_a_watchdog_is_refused_before_the_kernel_is_touched() {
    let host = Host::new("no-watchdog");
    let err = host
        .engine()
        .apply(
            &policy("b"),
            ApplyOptions::confirm_within(Duration::from_secs(5)),
        )
        .unwrap_err();
    assert!(matches!(err, EngineError::NoWatchdog), "{err}");
    assert_eq!(kernel(&host.kernel()), None);
    assert!(host.record("intent.json").is_none());
    assert!(host.record("pending.json").is_none());
}

#[test]
fn rollback_restores_once_and_flush_forgets() {
    let host = Host::new("rollback");
    let (a, b) = (policy("a"), policy("b"));
    let mut engine = host.engine();
    engine.apply(&a, ApplyOptions::default()).unwrap();
    engine.apply(&b, ApplyOptions::default()).unwrap();
    let restored = engine.rollback().unwrap().unwrap();
    assert_eq!(restored.sha256, a.sha256);
    assert_eq!(kernel(&host.kernel()), Some(text(&a.policy.ruleset())));
    let err = engine.rollback().unwrap_err();
    assert!(matches!(err, EngineError::NothingToRollBack { .. }));
    engine.flush().unwrap();
    assert_eq!(kernel(&host.kernel()), None);
    assert!(host.record("applied.json").is_none());
    let report = engine.status().unwrap();
    assert!(report.applied.is_none() && report.drift.is_none());
}

#[test]
fn another_engine_holding_the_lock_makes_a_no_wait_apply_fail_at_once() {
    let host = Host::new("busy");
    let state = StateDir::new(&host.state(), NAME);
    let _held = state
        .lock(zt_engine::lock::Access::Exclusive, false)
        .unwrap();
    let err = Engine::open(host.state(), backend(&host.kernel()))
        .unwrap()
        .no_wait(true)
        .apply(&policy("a"), ApplyOptions::default())
        .unwrap_err();
    assert!(matches!(err, EngineError::Busy { .. }), "{err}");
    assert_eq!(kernel(&host.kernel()), None);
}
