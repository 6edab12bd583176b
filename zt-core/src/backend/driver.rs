//! The backend skeleton: plan → apply → verify → snapshot → rollback, written once.
//!
//! Every backend does the same thing with different kernel objects: read what zt owns,
//! compute what it should own for a ruleset, compare the two, and write one into the other.
//! A backend implements [`Driver`] — those steps, in its own terms — and gets [`Backend`] from
//! the blanket implementation below, so the rules every backend must keep are kept in one
//! place:
//!
//! * a plan carries the states it compared ([`Plan::transition`]), so apply writes exactly
//!   what plan showed, with no hidden cache and no second read;
//! * a plan made by another backend is refused with [`Error::ForeignPlan`];
//! * an empty plan writes nothing; nor does a flush of nothing or a rollback to what is there;
//! * a rule the backend cannot express is refused with [`Error::Unsupported`] before anything
//!   is compiled ([`Capabilities::check`]).

use super::{
    Artifact, AuditSource, Backend, Capabilities, Change, Diff, Drift, Plan, Snapshot, Status,
};
use crate::persist::{Boot, Persistence};
use crate::{Error, Ruleset};
use std::fmt;

/// What differs between backends: their kernel state and how to read, compute, compare and
/// write it. Implementing this is implementing [`Backend`].
pub trait Driver {
    /// The backend's name (`nft`, `iptables`, `ebpf`): plans and snapshots record it, and the
    /// state directory is named after it.
    const NAME: &'static str;

    /// Everything zt owns in the kernel, in the backend's terms: what is read, what a ruleset
    /// compiles to, what a snapshot restores.
    type State: Clone + PartialEq + fmt::Debug + Send + Sync + 'static;

    /// What this backend can enforce.
    fn supports(&self) -> Capabilities;

    /// What zt owns in the kernel now.
    fn read(&mut self) -> Result<Self::State, Error>;

    /// What zt must own for `ruleset`. Names and paths are resolved on this host (cgroup ids),
    /// so this may read the host, never the objects zt owns.
    fn desired(&self, ruleset: &Ruleset) -> Result<Self::State, Error>;

    /// Give `desired` what it keeps of `current` when it replaces it (the counters of rules
    /// and set elements that stay, say), before the plan is made: then a write carries them
    /// without a copy of the table. By default nothing.
    fn carry(&self, current: &Self::State, desired: &mut Self::State) {
        let _ = (current, desired);
    }

    /// The state of owning nothing (what a flush leaves).
    fn nothing(&self) -> Self::State;

    /// Whether `state` owns nothing at all.
    fn owns_nothing(&self, state: &Self::State) -> bool;

    /// The changes that turn `current` into `desired`, by policy rule name. Empty exactly when
    /// writing `desired` over `current` would change nothing that enforces the policy.
    fn diff(&self, current: &Self::State, desired: &Self::State) -> Vec<Change>;

    /// What differs between the kernel (`current`) and what a ruleset needs (`desired`), as
    /// verify reports it.
    fn drift(&self, current: &Self::State, desired: &Self::State) -> Drift;

    /// Make the kernel hold `to` where it holds `from`, in one transaction where the kernel
    /// offers one. On failure the kernel is left holding `from`.
    fn write(&mut self, from: &Self::State, to: &Self::State) -> Result<(), Error>;

    /// The artifact an operator reads for the change `from` → `to` of `ruleset` (an nft
    /// script, restore files, map entries).
    fn describe(
        &self,
        ruleset: &Ruleset,
        from: &Self::State,
        to: &Self::State,
    ) -> Result<Artifact, Error>;

    /// A state that owns something, as a snapshot's content.
    fn encode(&self, state: &Self::State) -> Result<String, Error>;

    /// A snapshot's content read back (what [`Driver::encode`] wrote, possibly by an older zt).
    fn decode(&self, content: &str) -> Result<Self::State, Error>;

    /// The objects as installed, with packet and byte counters per policy rule.
    fn inspect(&mut self) -> Result<Status, Error>;

    /// What restores `ruleset` at boot.
    fn boot(&self, ruleset: &Ruleset, boot: &Boot) -> Result<Persistence, Error>;

    /// Where refusals are recorded; by default the kernel log.
    fn records(&mut self) -> Result<AuditSource, Error> {
        Ok(AuditSource::KernelLog)
    }
}

/// What `ruleset` needs against what the kernel holds now: the two states a plan compares,
/// with what the desired state keeps of the current one already given to it.
fn transition<D: Driver>(driver: &mut D, ruleset: &Ruleset) -> Result<(D::State, D::State), Error> {
    driver.supports().check(D::NAME, ruleset)?;
    let mut desired = driver.desired(ruleset)?;
    let current = driver.read()?;
    driver.carry(&current, &mut desired);
    Ok((current, desired))
}

/// The snapshot of `state`: `None` content when it owns nothing.
fn snapshot_of<D: Driver>(driver: &D, state: &D::State) -> Result<Snapshot, Error> {
    let content = if driver.owns_nothing(state) {
        None
    } else {
        Some(driver.encode(state)?)
    };
    Ok(Snapshot {
        backend: D::NAME.to_owned(),
        content,
    })
}

impl<D: Driver> Backend for D {
    fn name(&self) -> &'static str {
        D::NAME
    }

    fn capabilities(&self) -> Capabilities {
        self.supports()
    }

    fn render(&self, ruleset: &Ruleset) -> Result<Artifact, Error> {
        self.supports().check(D::NAME, ruleset)?;
        let desired = self.desired(ruleset)?;
        self.describe(ruleset, &self.nothing(), &desired)
    }

    fn plan(&mut self, ruleset: &Ruleset) -> Result<Plan, Error> {
        let (current, desired) = transition(self, ruleset)?;
        let diff = Diff {
            changes: self.diff(&current, &desired),
        };
        Ok(Plan::new(D::NAME, ruleset.clone(), diff).carrying(current, desired))
    }

    fn artifact(&self, plan: &Plan) -> Result<Artifact, Error> {
        plan.check_backend(D::NAME)?;
        match plan.transition::<D::State>() {
            Some(t) => self.describe(&plan.ruleset, &t.current, &t.desired),
            None => self.render(&plan.ruleset),
        }
    }

    fn snapshot(&mut self) -> Result<Snapshot, Error> {
        let current = self.read()?;
        snapshot_of(self, &current)
    }

    fn snapshot_before(&mut self, plan: &Plan) -> Result<Snapshot, Error> {
        plan.check_backend(D::NAME)?;
        match plan.transition::<D::State>() {
            Some(t) => snapshot_of(self, &t.current),
            None => self.snapshot(),
        }
    }

    fn apply(&mut self, plan: &Plan) -> Result<Snapshot, Error> {
        plan.check_backend(D::NAME)?;
        let fresh;
        let (current, desired) = match plan.transition::<D::State>() {
            Some(t) => (&t.current, &t.desired),
            None => {
                fresh = transition(self, &plan.ruleset)?;
                (&fresh.0, &fresh.1)
            }
        };
        let snapshot = snapshot_of(self, current)?;
        if !plan.is_empty() {
            self.write(current, desired)?;
        }
        Ok(snapshot)
    }

    fn verify(&mut self, ruleset: &Ruleset) -> Result<Drift, Error> {
        self.supports().check(D::NAME, ruleset)?;
        let desired = self.desired(ruleset)?;
        let current = self.read()?;
        Ok(self.drift(&current, &desired))
    }

    fn verify_applied(&mut self, plan: &Plan) -> Result<Drift, Error> {
        plan.check_backend(D::NAME)?;
        match plan.transition::<D::State>() {
            Some(t) => {
                let current = self.read()?;
                Ok(self.drift(&current, &t.desired))
            }
            None => self.verify(&plan.ruleset),
        }
    }

    fn rollback(&mut self, snapshot: &Snapshot) -> Result<(), Error> {
        snapshot.check_backend(D::NAME)?;
        let target = match &snapshot.content {
            None => self.nothing(),
            Some(content) => self.decode(content)?,
        };
        let current = self.read()?;
        if current != target {
            self.write(&current, &target)?;
        }
        Ok(())
    }

    fn status(&mut self) -> Result<Status, Error> {
        self.inspect()
    }

    fn flush(&mut self) -> Result<(), Error> {
        let current = self.read()?;
        if !self.owns_nothing(&current) {
            let nothing = self.nothing();
            self.write(&current, &nothing)?;
        }
        Ok(())
    }

    fn persistence(&self, ruleset: &Ruleset, boot: &Boot) -> Result<Persistence, Error> {
        self.supports().check(D::NAME, ruleset)?;
        self.boot(ruleset, boot)
    }

    fn audit(&mut self) -> Result<AuditSource, Error> {
        self.records()
    }
}

#[cfg(test)]
mod tests;
