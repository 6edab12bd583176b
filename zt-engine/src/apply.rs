//! The apply transaction: validate, plan, apply in one kernel transaction, verify, record.
//!
//! Order matters for an operator's safety:
//! 1. nothing reaches the kernel before the whole policy validated (the caller holds a
//!    [`PolicyFile`], which only validation makes) and the state directory proved writable;
//! 2. before the kernel is touched, `intent.json` records what this apply will record and the
//!    snapshot that undoes it, and with a confirmation deadline the watchdog is already armed
//!    — so an apply that dies at any later moment is completed or dropped by the next command
//!    ([`crate::recovery`]), and an unconfirmed one is still rolled back;
//! 3. the backend applies the plan; if it fails, the kernel is checked and the snapshot put
//!    back where the backend could not leave it as it was; verification that finds drift
//!    restores the snapshot at once;
//! 4. the change is recorded: the trail line first, then how to undo it, then what is in
//!    force, and the intent goes last; if that fails (a full disk), the kernel is restored
//!    too, so the kernel never enforces a policy the state directory does not know.

use crate::error::{Aftermath, EngineError};
use crate::lock::Access;
use crate::policy_file::PolicyFile;
use crate::records::{Applied, Intent, Pending, RollbackPoint};
use crate::recovery::Recovered;
use crate::trail::{self, Entry};
use crate::{Engine, Event};
use std::time::{Duration, Instant};
use zt_core::{Plan, Snapshot, fault};

/// How to apply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApplyOptions {
    /// Plan and report, change nothing (no lock, no record, no trail line).
    pub dry_run: bool,
    /// Roll the change back unless confirmed within this long (needs a [`crate::Watchdog`]).
    pub confirm: Option<Duration>,
}

impl ApplyOptions {
    /// Plan only.
    pub fn dry_run() -> Self {
        Self {
            dry_run: true,
            confirm: None,
        }
    }

    /// Apply, rolled back unless confirmed within `deadline`.
    pub fn confirm_within(deadline: Duration) -> Self {
        Self {
            dry_run: false,
            confirm: Some(deadline),
        }
    }
}

/// What an apply did.
#[derive(Debug)]
#[non_exhaustive]
pub struct ApplyOutcome {
    /// The plan: the diff against what the kernel held, and the artifact.
    pub plan: Plan,
    /// Whether the kernel was changed (false for a dry run and for a policy already in force).
    pub changed: bool,
    /// The record now in force (`None` for a dry run).
    pub record: Option<Applied>,
    /// The change awaiting confirmation, when a deadline was asked for and something changed.
    pub pending: Option<Pending>,
    /// What was found of an earlier apply that had been interrupted.
    pub recovered: Recovered,
}

impl Engine {
    /// Apply `policy`: the whole transaction, under the lock (see the module documentation).
    pub fn apply(
        &mut self,
        policy: &PolicyFile,
        options: ApplyOptions,
    ) -> Result<ApplyOutcome, EngineError> {
        let ruleset = policy.policy.ruleset();
        if options.dry_run {
            let plan = self.plan_ruleset(&ruleset)?;
            return Ok(ApplyOutcome {
                plan,
                changed: false,
                record: None,
                pending: None,
                recovered: Recovered::Nothing,
            });
        }
        let lock = self.state.lock(Access::Exclusive, self.no_wait)?;
        fault::kill_at("locked");
        let recovered = self.recover()?;
        if let Some(pending) = self.state.pending()? {
            return Err(EngineError::Pending {
                config: pending.config,
                deadline: pending.deadline,
            });
        }
        let entry = Entry::new("apply", self.state.backend(), "applied")
            .config(&policy.path, &policy.sha256);
        let plan = self
            .plan_ruleset(&ruleset)
            .inspect_err(|e| self.failed(&entry, e))?;
        fault::kill_at("planned");
        let entry = entry.diff(&plan.diff);

        if plan.is_empty() {
            // Nothing is written to the kernel; the record follows the file now in force.
            let record = match self.state.applied_at()? {
                Some((config, sha256, applied_at))
                    if sha256 == policy.sha256 && config == policy.path =>
                {
                    Applied {
                        applied_at,
                        ..policy.record()
                    }
                }
                _ => {
                    let record = policy.record();
                    self.state.set_applied(Some(&record))?;
                    record
                }
            };
            trail::append(self.state.root(), &entry.result("unchanged"))?;
            return Ok(ApplyOutcome {
                plan,
                changed: false,
                record: Some(record),
                pending: None,
                recovered,
            });
        }

        // Everything the kernel change needs afterwards is prepared and recorded first.
        let snapshot = self
            .backend
            .snapshot_before(&plan)
            .map_err(EngineError::from)
            .inspect_err(|e| self.failed(&entry, e))?;
        let intent = Intent {
            record: policy.record(),
            point: RollbackPoint {
                snapshot,
                previous: self.state.applied()?,
            },
        };
        let older = self.state.rollback_point()?;
        self.state
            .begin(&intent)
            .inspect_err(|e| self.failed(&entry, e))?;
        fault::kill_at("intent-recorded");
        let pending = match options.confirm {
            None => None,
            Some(deadline) => match self.arm(deadline, &intent.record) {
                Ok(p) => Some(p),
                Err(e) => {
                    self.state.set_intent(None)?;
                    self.failed(&entry, &e);
                    return Err(e);
                }
            },
        };
        fault::kill_at("armed");

        let started = Instant::now();
        if let Err(e) = self.backend.apply(&plan) {
            // A failing backend leaves the kernel as it was (nft: one transaction; iptables:
            // IPv4 is put back when IPv6 fails; eBPF: the generation never flipped). Settling
            // checks that, and puts the snapshot back where a backend could not.
            if pending.is_some() {
                let _ = self.state.set_pending(None);
            }
            let e = EngineError::from(e);
            self.failed(&entry, &e);
            let aftermath = match self.settle(&intent) {
                Ok(Recovered::Completed) => Aftermath::Kept,
                Ok(Recovered::Restored) => Aftermath::Restored,
                Ok(Recovered::Nothing | Recovered::Dropped) => Aftermath::NothingChanged,
                Err(also) => Aftermath::RestoreFailed(Box::new(also)),
            };
            return Err(e.after(aftermath));
        }
        fault::kill_at("committed");
        self.emit(Event::Applied {
            took: started.elapsed(),
        });

        // From here on a failure puts the snapshot back.
        let started = Instant::now();
        let drift = match self.backend.verify_applied(&plan) {
            Ok(drift) => drift,
            Err(e) => return Err(self.undo(e.into(), &intent, older.as_ref(), &entry)),
        };
        self.emit(Event::Verified {
            drift: &drift,
            took: started.elapsed(),
        });
        if !drift.is_empty() {
            return Err(self.undo(
                EngineError::Drift { drift },
                &intent,
                older.as_ref(),
                &entry,
            ));
        }
        fault::kill_at("verified");

        let result = if pending.is_some() {
            "applied-pending-confirmation"
        } else {
            "applied"
        };
        if let Err(e) = self.record(&intent, &entry.clone().result(result)) {
            return Err(self.undo(e, &intent, older.as_ref(), &entry));
        }
        drop(lock);
        Ok(ApplyOutcome {
            plan,
            changed: true,
            record: Some(intent.record),
            pending,
            recovered,
        })
    }

    /// Plan `ruleset` with the backend, reporting the plan before anything is written.
    pub(crate) fn plan_ruleset(&mut self, ruleset: &zt_core::Ruleset) -> Result<Plan, EngineError> {
        let started = Instant::now();
        let plan = self.backend.plan(ruleset)?;
        self.emit(Event::Planned {
            plan: &plan,
            took: started.elapsed(),
        });
        Ok(plan)
    }

    /// Record a change the kernel now enforces: the trail line, how to undo it, what is in
    /// force; the intent goes last, so a death anywhere before leaves it for recovery.
    fn record(&mut self, intent: &Intent, entry: &Entry) -> Result<(), EngineError> {
        if fault::active("record-fails") {
            return Err(EngineError::state(
                "write",
                self.state.dir(),
                std::io::Error::other("injected fault"),
            ));
        }
        trail::append(self.state.root(), entry)?;
        self.state.finish(&intent.point, &intent.record, || {
            fault::kill_at("rollback-point-recorded")
        })?;
        fault::kill_at("recorded");
        self.state.set_intent(None)
    }

    /// Put the snapshot back after an apply that cannot stand, take back its records (the
    /// rollback point before it was `older`), note it in the trail, and return the error to
    /// report (worse if the restore failed too).
    fn undo(
        &mut self,
        error: EngineError,
        intent: &Intent,
        older: Option<&RollbackPoint>,
        entry: &Entry,
    ) -> EngineError {
        let snapshot: &Snapshot = &intent.point.snapshot;
        let error = match self.backend.rollback(snapshot) {
            Ok(()) => {
                let _ = self.unrecord(intent);
                if older.is_some() && self.state.rollback_point().ok().flatten().is_none() {
                    let _ = self.state.set_rollback_point(older);
                }
                let _ = self.state.set_pending(None);
                let _ = self.state.set_intent(None);
                error.after(Aftermath::Restored)
            }
            Err(also) => error.after(Aftermath::RestoreFailed(Box::new(also.into()))),
        };
        let _ = trail::append(
            self.state.root(),
            &entry.clone().result("rolled-back").error(&error),
        );
        error
    }

    /// Note a failed apply in the trail (best effort: the failure is what gets reported).
    fn failed(&self, entry: &Entry, error: &EngineError) {
        let _ = trail::append(
            self.state.root(),
            &entry.clone().result("failed").error(error),
        );
    }
}
