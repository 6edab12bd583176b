//! The read-only commands: plan, verify, status.

use crate::Engine;
use crate::error::EngineError;
use crate::lock::Access;
use crate::policy_file::PolicyFile;
use crate::records::{Applied, Intent, Pending};
use zt_core::{Drift, Plan, Status};

/// What `status` finds: what is installed, what was applied, and whether the kernel still
/// enforces it.
#[derive(Debug)]
#[non_exhaustive]
pub struct StatusReport {
    /// The backend's objects as installed, with counters per policy rule.
    pub status: Status,
    /// The last applied policy, if this state directory knows one.
    pub applied: Option<Applied>,
    /// A change awaiting confirmation.
    pub pending: Option<Pending>,
    /// An apply that was interrupted and not yet recovered (the next command that changes
    /// anything completes or drops it).
    pub interrupted: Option<Intent>,
    /// What differs between the kernel and the last applied policy (`None` when there is
    /// none, or it no longer validates).
    pub drift: Option<Drift>,
    /// Why the last applied policy could not be checked, when it no longer validates.
    pub stale: Option<EngineError>,
}

impl Engine {
    /// What applying `policy` would change. Reads the kernel; takes no lock and writes
    /// nothing.
    pub fn plan(&mut self, policy: &PolicyFile) -> Result<Plan, EngineError> {
        self.plan_ruleset(&policy.policy.ruleset())
    }

    /// Every difference between the kernel and `policy` (empty: the kernel enforces it).
    pub fn verify(&mut self, policy: &PolicyFile) -> Result<Drift, EngineError> {
        Ok(self.backend.verify(&policy.policy.ruleset())?)
    }

    /// What is installed, with counters, and drift against the last applied policy.
    pub fn status(&mut self) -> Result<StatusReport, EngineError> {
        let _lock = self.state.lock(Access::Shared, self.no_wait)?;
        let status = self.backend.status()?;
        let applied = self.state.applied()?;
        let (drift, stale) = match &applied {
            None => (None, None),
            Some(a) => match PolicyFile::from_record(a, self.resolver.as_ref()) {
                Ok(file) => (Some(self.backend.verify(&file.policy.ruleset())?), None),
                Err(e) => (None, Some(e)),
            },
        };
        Ok(StatusReport {
            status,
            applied,
            pending: self.state.pending()?,
            interrupted: self.state.intent()?,
            drift,
            stale,
        })
    }
}
