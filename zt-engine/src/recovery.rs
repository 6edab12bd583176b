//! Finishing an apply that died half-way (a crash, `kill -9`, a power cut).
//!
//! Apply writes `intent.json` — the record it will write and the snapshot to undo it — before
//! touching the kernel, and removes it last. The next command that takes the lock recovers
//! it, asking the kernel what it holds:
//! - the intended policy: the records the apply did not get to write are written now (so
//!   `rollback` restores the state before it);
//! - what it held before the apply: the intent is dropped, and records the apply had already
//!   written are taken back;
//! - anything else — an apply that is not one kernel transaction, killed half-way (the
//!   iptables backend between its IPv4 and IPv6 restores; the eBPF backend's first install
//!   between loading and attaching): the snapshot taken before the apply is restored, so the
//!   kernel is back to exactly the old policy.
//!
//! Either way the audit trail says so.

use crate::error::EngineError;
use crate::policy_file::PolicyFile;
use crate::records::{Applied, Intent};
use crate::trail::{self, Entry};
use crate::{Engine, Event};

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

impl Engine {
    /// Complete or drop an interrupted apply (the caller holds the exclusive lock), and record
    /// what was found in the audit trail.
    pub(crate) fn recover(&mut self) -> Result<Recovered, EngineError> {
        let Some(intent) = self.state.intent()? else {
            return Ok(Recovered::Nothing);
        };
        let found = self.settle(&intent)?;
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
        let entry = Entry::new("recover", self.state.backend(), result)
            .config(&record.config, &record.sha256)
            .error(note);
        trail::append(self.state.root(), &entry)?;
        self.emit(Event::Recovered(found));
        Ok(found)
    }

    /// Make the kernel and the records agree on `intent`, an apply that did not finish: keep
    /// its change and complete its records if the kernel enforces it, else put the kernel
    /// back as it was before it (when it is not already), take back the records it wrote,
    /// and drop the intent.
    pub(crate) fn settle(&mut self, intent: &Intent) -> Result<Recovered, EngineError> {
        // A policy that no longer validates (a user deleted since) cannot be verified; it
        // cannot have been applied by a later command either, so the kernel is compared with
        // it only if it does.
        if self.enforces(Some(&intent.record))? {
            self.state.set_rollback_point(Some(&intent.point))?;
            self.state.set_applied(Some(&intent.record))?;
            self.state.set_intent(None)?;
            return Ok(Recovered::Completed);
        }
        let untouched = self.backend.snapshot()? == intent.point.snapshot
            || self.enforces(intent.point.previous.as_ref())?;
        if !untouched {
            self.backend
                .rollback(&intent.point.snapshot)
                .map_err(|source| EngineError::Snapshot {
                    path: self.state.dir().join("intent.json"),
                    source,
                })?;
        }
        self.unrecord(intent)?;
        self.state.set_intent(None)?;
        Ok(if untouched {
            Recovered::Dropped
        } else {
            Recovered::Restored
        })
    }

    /// Take back what an apply that did not stand had recorded: its record becomes the one
    /// before it again, and its rollback point (whose predecessor is not known here) goes.
    pub(crate) fn unrecord(&mut self, intent: &Intent) -> Result<(), EngineError> {
        if self.state.applied()?.as_ref() == Some(&intent.record) {
            self.state.set_applied(intent.point.previous.as_ref())?;
        }
        if self.state.rollback_point()?.as_ref() == Some(&intent.point) {
            self.state.set_rollback_point(None)?;
        }
        Ok(())
    }

    /// Whether the kernel enforces exactly the policy `record` describes (false without one,
    /// or when it no longer validates).
    pub(crate) fn enforces(&mut self, record: Option<&Applied>) -> Result<bool, EngineError> {
        match record.map(|r| PolicyFile::from_record(r, self.resolver.as_ref())) {
            Some(Ok(file)) => Ok(self.backend.verify(&file.policy.ruleset())?.is_empty()),
            _ => Ok(false),
        }
    }
}
