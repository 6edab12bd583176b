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
use crate::state::{Applied, Intent, StateDir};
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

/// Complete or drop an interrupted apply (the caller holds the exclusive lock), and record
/// what was found in the audit trail.
pub fn recover(backend: &mut dyn Backend, state: &StateDir) -> Outcome<Recovered> {
    let Some(intent) = state.intent()? else {
        return Ok(Recovered::Nothing);
    };
    let found = settle(backend, state, &intent)?;
    let (result, note) = match found {
        Recovered::Completed => (
            "applied",
            "an interrupted apply had taken effect; its records were completed",
        ),
        Recovered::Restored => (
            "not-applied",
            "an interrupted apply had taken effect in part; the state before it was restored",
        ),
        Recovered::Nothing | Recovered::Dropped => (
            "not-applied",
            "an interrupted apply had not taken effect; nothing changed",
        ),
    };
    let record = &intent.record;
    let entry = Entry::new("recover", state.backend(), "").config(&record.config, &record.sha256);
    trail::append(state.root(), &entry.result(result).error(note))?;
    Ok(found)
}

/// Make the kernel and the records agree on `intent`, an apply that did not finish: keep its
/// change and complete its records if the kernel enforces it, else put the kernel back as it
/// was before it (when it is not already) and drop the intent.
pub fn settle(backend: &mut dyn Backend, state: &StateDir, intent: &Intent) -> Outcome<Recovered> {
    // A policy that no longer validates (a user deleted since) cannot be verified; it cannot
    // have been applied by a later command either, so the kernel is compared with it only if
    // it does.
    if enforces(backend, Some(&intent.record))? {
        state.set_rollback_point(Some(&intent.point))?;
        state.set_applied(Some(&intent.record))?;
        state.set_intent(None)?;
        return Ok(Recovered::Completed);
    }
    let untouched = backend.snapshot()? == intent.point.snapshot
        || enforces(backend, intent.point.previous.as_ref())?;
    if !untouched {
        backend.rollback(&intent.point.snapshot)?;
    }
    state.set_intent(None)?;
    Ok(if untouched {
        Recovered::Dropped
    } else {
        Recovered::Restored
    })
}

/// Whether the kernel enforces exactly the policy `record` describes (false without one, or
/// when it no longer validates).
fn enforces(backend: &mut dyn Backend, record: Option<&Applied>) -> Outcome<bool> {
    match record.map(PolicyFile::from_record) {
        Some(Ok(file)) => Ok(backend.verify(&file.policy.ruleset())?.is_empty()),
        _ => Ok(false),
    }
}
