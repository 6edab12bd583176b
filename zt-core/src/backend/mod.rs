//! The Backend contract: how a [`Ruleset`] becomes kernel state, and how zt reads it back.
//!
//! ```text
//! render(&Ruleset)      -> Artifact   pure: the exact kernel artifact, no I/O
//! plan(&Ruleset)        -> Plan       reads current state; an identical state gives an empty diff
//! artifact(&Plan)       -> Artifact   what apply of that plan will write, for an operator to read
//! snapshot()            -> Snapshot   what zt owns now, as rollback would restore it
//! apply(&Plan)          -> Snapshot   one atomic kernel transaction; an empty plan writes nothing
//! verify(&Ruleset)      -> Drift      what differs between the kernel and the ruleset
//! verify_applied(&Plan) -> Drift      the same, right after applying the plan
//! rollback(&Snapshot)                 atomically restore what zt owned before
//! status()              -> Status     rules as installed, packet/byte counters per policy rule
//! flush()                             remove everything zt owns, nothing else
//! persistence(..)       -> Persistence  what restores the ruleset at boot
//! audit()               -> AuditSource  where refusals are recorded
//! ```
//!
//! The trait is object-safe, so a caller picks a backend at run time (`Box<dyn Backend>`).
//! Backends own only what they create (an nftables table, `ZT-*` iptables chains reached by one
//! jump per hooked chain, eBPF objects pinned under zt's bpffs directory) and leave other
//! tools' rules byte-identical. A rule a backend cannot express is refused at `plan` time with
//! [`Error::Unsupported`] naming it; it is never dropped or weakened.
//!
//! zt's backends implement [`Driver`] — read, desired, diff, write, describe — and get this
//! trait from one shared skeleton ([`driver`]), so they agree on foreign plans, empty plans and
//! refusals by construction.

mod audit;
mod capabilities;
mod compare;
pub mod driver;
mod plan;
mod report;

pub use audit::{AuditEvent, AuditSource};
pub use capabilities::Capabilities;
pub use compare::{Unit, compare};
pub use driver::Driver;
pub use plan::{Plan, Snapshot, Transition};
pub use report::{
    Artifact, ArtifactFile, Bounded, Change, ChangeCounts, ChangeKind, Counter, Diff, Drift,
    DriftItem, DriftKind, Status,
};

use crate::persist::{Boot, Persistence};
use crate::{Error, Ruleset};

/// A firewall backend.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
pub trait Backend {
    /// Short name: `nft`, `iptables`, `ebpf`.
    fn name(&self) -> &'static str;
    /// What it can enforce; a plan of a rule it cannot is refused, naming the rule.
    fn capabilities(&self) -> Capabilities;
    /// The exact kernel artifact for `ruleset`, without touching the kernel.
    fn render(&self, ruleset: &Ruleset) -> Result<Artifact, Error>;
    /// Read what zt owns in the kernel now and diff it against `ruleset`.
    fn plan(&mut self, ruleset: &Ruleset) -> Result<Plan, Error>;
    /// The exact artifact applying `plan` writes (for a backend whose writes depend on what
    /// the kernel holds, the transition from it), for an operator to read.
    fn artifact(&self, plan: &Plan) -> Result<Artifact, Error> {
        self.render(&plan.ruleset)
    }
    /// What zt owns in the kernel now, in the form [`Backend::rollback`] restores. A caller
    /// that must be able to undo an apply even if it dies during it records this first.
    fn snapshot(&mut self) -> Result<Snapshot, Error>;
    /// The snapshot [`Backend::apply`] of `plan` will return: what zt owned when the plan was
    /// made (a backend whose plans carry it needs no second read).
    fn snapshot_before(&mut self, plan: &Plan) -> Result<Snapshot, Error> {
        plan.check_backend(self.name())?;
        self.snapshot()
    }
    /// Apply a plan in one atomic transaction and return a snapshot of what zt owned before.
    /// An empty plan writes nothing. On failure the kernel is left as it was. A backend whose
    /// kernel interface has no single transaction (iptables: one restore per family) says so
    /// in its docs; a caller that may die mid-apply records [`Backend::snapshot_before`] first.
    fn apply(&mut self, plan: &Plan) -> Result<Snapshot, Error>;
    /// Report every difference between the kernel and `ruleset`.
    fn verify(&mut self, ruleset: &Ruleset) -> Result<Drift, Error>;
    /// [`Backend::verify`] of the plan's ruleset, just after [`Backend::apply`] of `plan` (a
    /// backend whose plans carry the desired state compares with it instead of compiling the
    /// ruleset again).
    fn verify_applied(&mut self, plan: &Plan) -> Result<Drift, Error> {
        self.verify(&plan.ruleset)
    }
    /// Restore, atomically, what a snapshot recorded.
    fn rollback(&mut self, snapshot: &Snapshot) -> Result<(), Error>;
    /// The rules as installed, with counters per policy rule.
    fn status(&mut self) -> Result<Status, Error>;
    /// Remove everything zt owns, and nothing else.
    fn flush(&mut self) -> Result<(), Error>;
    /// The files (and the unit that loads them) that restore `ruleset` at boot.
    fn persistence(&self, ruleset: &Ruleset, boot: &Boot) -> Result<Persistence, Error>;
    /// Where this backend's refusals are recorded. A backend that keeps its own records hands
    /// over the ones waiting (each once).
    fn audit(&mut self) -> Result<AuditSource, Error>;
}
