//! # zt-engine — the safe apply transaction, for any zt backend
//!
//! A backend ([`zt_core::Backend`]) writes a ruleset into the kernel in one transaction. What
//! makes a change *safe* on a host an operator cannot afford to lose is everything around that
//! write, and this crate is it:
//!
//! * **one change at a time**: a lock on the state directory serializes every command that
//!   changes the kernel or the records, across processes;
//! * **crash safety**: before the kernel is touched, `intent.json` records what the apply will
//!   record and the snapshot that undoes it; whatever moment the process dies at (a crash,
//!   `kill -9`), the next command finds the intent, asks the kernel which policy it holds, and
//!   completes, drops or undoes the apply ([`Recovered`]);
//! * **verification**: after the write the kernel is read back; drift puts the snapshot back;
//! * **records**: the last applied policy (`applied.json`) and one level of undo
//!   (`rollback.json`), each file replaced atomically; a change that cannot be recorded is
//!   undone in the kernel, so the kernel never enforces a policy the records do not know;
//! * **confirm deadlines**: an apply can be made conditional; unconfirmed by its deadline, a
//!   watchdog that outlives the process rolls it back ([`Watchdog`]);
//! * **the audit trail**: one JSON line per change in `audit.log` (who, what, which file,
//!   what changed, how it ended).
//!
//! It depends on zt-core only: the backend is any `Box<dyn Backend>`, picked by the caller.
//! The `zt` command is a shell over it; so is the fleet agent. Its state directory is the
//! `zt` command's (`/var/lib/zt` by default), so both see the same records, lock and trail.
//!
//! ```
//! use zt_core::{Backend, SystemResolver};
//! use zt_engine::{ApplyOptions, Engine, EngineError, PolicyFile};
//!
//! /// Apply the host's policy file with `backend` (`Box::new(NftBackend::new())`, say).
//! fn apply(backend: Box<dyn Backend>) -> Result<(), EngineError> {
//!     let policy = PolicyFile::read_for_change("/etc/zt/rules.yaml".as_ref(), &SystemResolver::new())?;
//!     let outcome = Engine::open("/var/lib/zt", backend)?.apply(&policy, ApplyOptions::default())?;
//!     println!("{}", outcome.plan.diff.summary());
//!     Ok(())
//! }
//! ```
//!
//! Every command returns a typed outcome, and every failure an [`EngineError`] whose
//! [`EngineError::class`] says whether the request was refused or the system failed. Progress
//! (the plan before it is applied, timings, drift found) is reported as it happens to an
//! observer ([`Engine::observe`]), so a shell can show the diff before the kernel is touched.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod apply;
mod confirm;
mod dir;
mod error;
mod inspect;
pub mod lock;
mod policy_file;
pub mod records;
pub mod recovery;
pub mod state;
pub mod trail;
mod trust;
mod upkeep;

pub use apply::{ApplyOptions, ApplyOutcome};
pub use confirm::Watchdog;
pub use error::{Aftermath, EngineError, ErrorClass};
pub use inspect::StatusReport;
pub use policy_file::{PolicyFile, sha256_hex};
pub use records::{Applied, Intent, Pending, RollbackPoint};
pub use recovery::Recovered;
pub use trust::Trust;
pub use upkeep::{Flushed, Kept, Persisted};

use state::StateDir;
use std::path::Path;
use std::time::Duration;
use zt_core::{Backend, Drift, NameResolver, Plan, SystemResolver};

/// Something that happened during a command, reported as it happens.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event<'a> {
    /// An apply interrupted earlier was found and settled.
    Recovered(Recovered),
    /// The plan is made; the kernel has not been touched yet.
    Planned {
        /// The plan.
        plan: &'a Plan,
        /// How long planning took.
        took: Duration,
    },
    /// The confirmation watchdog runs (`process 1234`, `systemd unit …`).
    Armed {
        /// How it runs.
        watchdog: &'a str,
    },
    /// The kernel took the change.
    Applied {
        /// How long the write took.
        took: Duration,
    },
    /// The kernel was read back after the change.
    Verified {
        /// What differs (empty: it holds what was applied).
        drift: &'a Drift,
        /// How long verification took.
        took: Duration,
    },
    /// An unconfirmed change was rolled back at its deadline.
    Expired {
        /// Why, and by whom.
        reason: &'a str,
    },
}

/// What progress is reported to ([`Engine::observe`]).
type Observer = Box<dyn FnMut(Event<'_>)>;

/// The safe apply transaction over one backend and one state directory.
pub struct Engine {
    state: StateDir,
    backend: Box<dyn Backend>,
    resolver: Box<dyn NameResolver>,
    watchdog: Option<Box<dyn Watchdog>>,
    observer: Option<Observer>,
    no_wait: bool,
}

impl Engine {
    /// The engine for `backend`, keeping its records under `dir` (in `dir/<backend name>`,
    /// beside the shared lock and trail). Nothing is created until a command writes.
    pub fn open(dir: impl AsRef<Path>, backend: Box<dyn Backend>) -> Result<Engine, EngineError> {
        Ok(Engine {
            state: StateDir::new(dir.as_ref(), backend.name()),
            backend,
            resolver: Box::new(SystemResolver::new()),
            watchdog: None,
            observer: None,
            no_wait: false,
        })
    }

    /// Fail at once with [`EngineError::Busy`] instead of waiting when another command holds
    /// the lock.
    pub fn no_wait(mut self, no_wait: bool) -> Self {
        self.no_wait = no_wait;
        self
    }

    /// Resolve user and group names in recorded policies with `resolver` (default: the host's
    /// databases). Records are validated again whenever they are used (recovery, drift).
    pub fn with_resolver(mut self, resolver: Box<dyn NameResolver>) -> Self {
        self.resolver = resolver;
        self
    }

    /// Enforce confirmation deadlines with `watchdog` (needed by [`ApplyOptions::confirm`]).
    pub fn with_watchdog(mut self, watchdog: Box<dyn Watchdog>) -> Self {
        self.watchdog = Some(watchdog);
        self
    }

    /// Report progress to `observer` as it happens.
    pub fn observe(mut self, observer: impl FnMut(Event<'_>) + 'static) -> Self {
        self.observer = Some(Box::new(observer));
        self
    }

    /// The backend.
    pub fn backend(&mut self) -> &mut dyn Backend {
        self.backend.as_mut()
    }

    /// The state directory.
    pub fn state(&self) -> &StateDir {
        &self.state
    }

    /// The resolver records are validated with.
    pub fn resolver(&self) -> &dyn NameResolver {
        self.resolver.as_ref()
    }

    fn emit(&mut self, event: Event<'_>) {
        if let Some(observer) = &mut self.observer {
            observer(event);
        }
    }
}
