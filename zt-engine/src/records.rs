//! What the state directory records, as JSON an operator (or another tool) can read.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use zt_core::Snapshot;

/// The last applied policy, as it was read: enough to rebuild its ruleset for drift reports
/// and to tell which file (and which version of it) is in force.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    /// The policy file, as an absolute path.
    pub config: PathBuf,
    /// SHA-256 of its contents, hex.
    pub sha256: String,
    /// When it was applied.
    pub applied_at: Timestamp,
    /// Its contents (names are resolved again when the record is used).
    pub source: String,
}

/// How to undo the last apply: the backend's snapshot of what zt owned before, and the
/// record that was current before it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackPoint {
    /// What zt owned in the kernel before the apply.
    pub snapshot: Snapshot,
    /// The policy in force before the apply, if zt knew one.
    pub previous: Option<Applied>,
}

/// An apply in progress: what it will record once the kernel holds the new policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    /// The policy being applied.
    pub record: Applied,
    /// How to undo it: the snapshot taken just before, and the record before it.
    pub point: RollbackPoint,
}

/// A change made with a confirmation deadline, rolled back at `deadline` unless confirmed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    /// Names this change; the watchdog acts only on the change it was started for.
    pub token: String,
    /// When the watchdog rolls it back.
    pub deadline: Timestamp,
    /// The policy file applied.
    pub config: PathBuf,
    /// How the watchdog runs (`process <pid>` or `systemd unit <name>`).
    pub watchdog: String,
    /// The `applied_at` of the record the guarded apply writes: the watchdog rolls back only
    /// if that apply took effect.
    pub applies: Timestamp,
}
