//! Plans and snapshots: what an apply will do, and what undoes it.

use super::report::Diff;
use crate::{Error, Ruleset};
use serde::{Deserialize, Serialize};
use std::any::Any;
use std::sync::Arc;

/// What apply would do: the ruleset, the diff against the kernel, and (for backends built on
/// [`super::Driver`]) the two kernel states the diff was taken between.
///
/// Carrying the states is what lets `apply` write exactly what `plan` showed, without a hidden
/// cache in the backend and without reading or compiling a second time. They are opaque here:
/// only the backend that made the plan can read them ([`Plan::transition`]). The artifact an
/// operator reads is written on request ([`super::Backend::artifact`]): an apply never needs it.
#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    /// The backend that made it (only that backend applies it).
    pub backend: String,
    /// The ruleset to install.
    pub ruleset: Ruleset,
    /// The changes against the kernel's current state.
    pub diff: Diff,
    #[serde(skip)]
    states: Option<Arc<dyn Any + Send + Sync>>,
}

/// The kernel state a plan was made against and the state it installs, in the terms of the
/// backend that made it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition<S> {
    /// What zt owned in the kernel when the plan was made.
    pub current: S,
    /// What apply makes it own.
    pub desired: S,
}

impl Plan {
    /// A plan of `backend` for `ruleset`, carrying no kernel states: applying it makes the
    /// backend read and compile again (what a hand-written [`super::Backend`] does).
    pub fn new(backend: impl Into<String>, ruleset: Ruleset, diff: Diff) -> Self {
        Self {
            backend: backend.into(),
            ruleset,
            diff,
            states: None,
        }
    }

    /// This plan, carrying the states its diff was taken between.
    pub fn carrying<S: Send + Sync + 'static>(mut self, current: S, desired: S) -> Self {
        self.states = Some(Arc::new(Transition { current, desired }));
        self
    }

    /// The states the plan carries, if it carries states of type `S` (a plan made by another
    /// backend, or by [`Plan::new`], carries none of this type).
    pub fn transition<S: 'static>(&self) -> Option<&Transition<S>> {
        self.states.as_deref()?.downcast_ref()
    }

    /// True when the kernel already holds the ruleset and apply will write nothing.
    pub fn is_empty(&self) -> bool {
        self.diff.is_empty()
    }

    /// Fail unless `backend` made this plan: the error every backend gives for a plan made by
    /// another one.
    pub fn check_backend(&self, backend: &'static str) -> Result<(), Error> {
        if self.backend == backend {
            Ok(())
        } else {
            Err(Error::ForeignPlan {
                backend,
                made_by: self.backend.clone(),
            })
        }
    }
}

/// What zt owned before an apply, enough for the same backend to restore it atomically.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The backend that took it.
    pub backend: String,
    /// The backend's record of its objects; `None` when zt owned nothing.
    pub content: Option<String>,
}

impl Snapshot {
    /// Check that `backend` took this snapshot.
    pub fn check_backend(&self, backend: &'static str) -> Result<(), Error> {
        if self.backend == backend {
            Ok(())
        } else {
            Err(Error::SnapshotMismatch {
                expected: backend,
                found: self.backend.clone(),
            })
        }
    }
}
