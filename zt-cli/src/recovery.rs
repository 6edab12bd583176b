//! Finishing an apply that died half-way (a crash, `kill -9`, a power cut).
//!
//! Apply writes `intent.json` — the record it will write and the snapshot to undo it — before
//! touching the kernel, and removes it last. The next command that takes the lock calls
//! [`recover`], which asks the kernel what it holds:
//! - the intended policy: the records the apply did not get to write are written now (so
//!   `rollback` restores the state before it);
//! - what it held before the apply: the intent is dropped, the records still describe it;
//! - anything else — an apply that is not one kernel transaction, killed half-way (the
//!   iptables backend between its IPv4 and IPv6 restores; the eBPF backend's first install
//!   between loading and attaching): the snapshot taken before the apply is restored, so the
//!   kernel is back to exactly the old policy.
//!
//! Either way the audit trail says so.

use crate::exit::Outcome;
use crate::policy_file::PolicyFile;
use crate::state::{Applied, StateDir};
use crate::trail::{self, Entry};
use zt_core::Backend;

/// What recovery found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recovered {
    /// No apply was interrupted.
    Nothing,
    /// The interrupted apply had taken effect; its records are now written.
    Completed,
    /// It had not; its intent was dropped.
    Dropped,
    /// It had in part; the state before it was restored and its intent dropped.
    Restored,
}

/// Complete or drop an interrupted apply (the caller holds the exclusive lock).
pub fn recover(backend: &mut dyn Backend, state: &StateDir) -> Outcome<Recovered> {
    let Some(intent) = state.intent()? else {
        return Ok(Recovered::Nothing);
    };
    let record = &intent.record;
    // A policy that no longer validates (a user deleted since) cannot be verified; it cannot
    // have been applied by a later command either, so the kernel is compared with it only if
    // it does.
    let in_force = enforces(backend, Some(record))?;
    let entry = Entry::new("recover", state.backend(), "").config(&record.config, &record.sha256);
    if in_force {
        state.set_rollback_point(Some(&intent.point))?;
        state.set_applied(Some(record))?;
        state.set_intent(None)?;
        trail::append(
            state.root(),
            &entry
                .result("applied")
                .error("an interrupted apply had taken effect; its records were completed"),
        )?;
        Ok(Recovered::Completed)
    } else {
        let untouched = backend.snapshot()? == intent.point.snapshot
            || enforces(backend, intent.point.previous.as_ref())?;
        let note = if untouched {
            "an interrupted apply had not taken effect; nothing changed"
        } else {
            backend.rollback(&intent.point.snapshot)?;
            "an interrupted apply had taken effect in part; the state before it was restored"
        };
        state.set_intent(None)?;
        trail::append(state.root(), &entry.result("not-applied").error(note))?;
        Ok(if untouched {
            Recovered::Dropped
        } else {
            Recovered::Restored
        })
    }
}

/// Whether the kernel enforces exactly the policy `record` describes (false without one, or
/// when it no longer validates).
fn enforces(backend: &mut dyn Backend, record: Option<&Applied>) -> Outcome<bool> {
    match record.map(PolicyFile::from_record) {
        Some(Ok(file)) => Ok(backend.verify(&file.policy.ruleset())?.is_empty()),
        _ => Ok(false),
    }
}
