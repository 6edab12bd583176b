//! The engine's errors: what went wrong, and whether the request or the system is to blame.

use jiff::Timestamp;
use std::fmt;
use std::io;
use std::path::PathBuf;
use zt_core::{Diagnostics, Drift};

/// Who is to blame for a failure, as a shell's exit code tells scripts (the `zt` command
/// exits 1 for [`ErrorClass::Refused`] and 3 for [`ErrorClass::Failed`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// The request cannot be honoured as asked: an invalid policy, a rule the backend cannot
    /// express, a kernel that does not hold what it should, a change not kept, nothing to
    /// confirm or roll back.
    Refused,
    /// The kernel, a backend, the state directory or the system failed.
    Failed,
}

/// What happened to the kernel after an apply failed part-way.
#[derive(Debug)]
pub enum Aftermath {
    /// Nothing was written, or what was written was undone by the backend itself.
    NothingChanged,
    /// The snapshot taken before the apply was put back.
    Restored,
    /// The kernel took the change after all, and it is recorded.
    Kept,
    /// Putting the snapshot back failed too; the next command that takes the lock settles it.
    RestoreFailed(Box<EngineError>),
}

impl fmt::Display for Aftermath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Aftermath::NothingChanged => f.write_str("nothing was changed"),
            Aftermath::Restored => f.write_str("the previous state was restored"),
            Aftermath::Kept => {
                f.write_str("the kernel took the change nonetheless, and it is recorded")
            }
            Aftermath::RestoreFailed(e) => write!(
                f,
                "restoring the previous state failed as well ({e}); the next zt command that \
                 changes anything reconciles the records with the kernel"
            ),
        }
    }
}

/// Everything the engine can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The policy, the backend or the kernel, as zt-core reports it (an invalid policy carries
    /// every problem, with positions).
    #[error(transparent)]
    Core(#[from] zt_core::Error),
    /// The policy file cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A policy file that someone other than root may change, refused for a change to the
    /// kernel: whoever can write it decides what zt enforces as root.
    #[error(
        "{}: {problem}: whoever can write it decides what zt enforces as root; make it \
         writable by root only (chmod go-w, chown root)", path.display()
    )]
    Writable {
        /// The file.
        path: PathBuf,
        /// Who else can write it.
        problem: String,
    },
    /// A policy file that someone other than root and the caller may replace or rewrite,
    /// through a directory or link on its path or by owning it, refused for a change to the
    /// kernel (see [`crate::Trust`]).
    #[error(
        "{}: {problem}: whoever can change it decides what zt enforces as root ({remedy})",
        path.display()
    )]
    Untrusted {
        /// The policy file, as named.
        path: PathBuf,
        /// The element of its path at fault: the file, a directory or a link.
        element: PathBuf,
        /// What is wrong with it, naming it.
        problem: String,
        /// What would make it safe.
        remedy: String,
    },
    /// Another zt command holds the lock, and the engine was told not to wait.
    #[error(
        "another zt command{} holds {}; retry, or leave out --no-wait to wait for it",
        if holder.is_empty() { String::new() } else { format!(" ({holder})") },
        lock.display()
    )]
    Busy {
        /// The lock file.
        lock: PathBuf,
        /// Who holds it (`pid 1234`), if it says.
        holder: String,
    },
    /// A file of the state directory cannot be read, written or synced.
    #[error("cannot {action} {}: {source}", path.display())]
    State {
        /// What was being done (`write`, `read`, `lock`, …).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The state directory, or a file in it, could be changed by someone other than root and
    /// the user zt runs as, or a link stands where zt keeps a file: refused before anything
    /// is read from it or written to it. Whoever controls the directory could otherwise plant
    /// a link zt would write through as root (the lock, the trail), or a record zt would act
    /// on (a rollback point whose snapshot deletes the firewall).
    #[error(
        "{} is {problem}: whoever controls the state directory could make zt write through \
         links or act on records planted there, so zt neither reads nor writes it; make it \
         root's alone (chown root, chmod go-w, remove the links) or use another state \
         directory",
        path.display()
    )]
    UntrustedState {
        /// The directory or file.
        path: PathBuf,
        /// What is wrong with it (`owned by uid 65534 (nobody), not by root`, `writable by
        /// its group (mode 0770)`, `a symbolic link`).
        problem: String,
    },
    /// The state directory cannot be written, found before anything was changed.
    #[error("the state directory is not writable; nothing was changed: {0}")]
    NotWritable(Box<EngineError>),
    /// A state file is not what zt writes.
    #[error(
        "{} is not a zt state file (edited by hand?): {source}; move it away to start afresh",
        path.display()
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Why it does not parse.
        #[source]
        source: serde_json::Error,
    },
    /// A snapshot kept in a state file could not be put back: the backend cannot read it (the
    /// file was edited by hand?) or the kernel refused it. Names the file, since the backend's
    /// own error cannot.
    #[error("cannot restore the snapshot recorded in {}: {source}", path.display())]
    Snapshot {
        /// The state file the snapshot was read from (`intent.json`, `rollback.json`).
        path: PathBuf,
        /// What the backend said.
        #[source]
        source: zt_core::Error,
    },
    /// A change awaits confirmation, so another apply is refused.
    #[error(
        "the change applied from {} awaits confirmation until {deadline}; run `zt confirm` to \
         keep it or `zt rollback` to undo it before applying another",
        config.display()
    )]
    Pending {
        /// The policy file of the pending change.
        config: PathBuf,
        /// When it is rolled back unless confirmed.
        deadline: Timestamp,
    },
    /// `confirm` with no change awaiting confirmation.
    #[error(
        "no change awaits confirmation (the {backend} backend's last apply was either \
         confirmed, rolled back, or made without --confirm)"
    )]
    NothingPending {
        /// The backend.
        backend: String,
    },
    /// `rollback` with nothing recorded to roll back to.
    #[error(
        "nothing to roll back: no apply with the {backend} backend is recorded in {} (zt keeps \
         one level of undo)", root.display()
    )]
    NothingToRollBack {
        /// The backend.
        backend: String,
        /// The state directory.
        root: PathBuf,
    },
    /// Verification after an apply found the kernel holding something else.
    #[error(
        "the kernel does not hold what was applied ({} difference{})",
        drift.items.len(),
        if drift.items.len() == 1 { "" } else { "s" }
    )]
    Drift {
        /// What differs.
        drift: Drift,
    },
    /// An apply with a confirmation deadline, on an engine without a watchdog to enforce it.
    #[error(
        "a confirmation deadline needs a watchdog that outlives this process; none was given \
         (Engine::with_watchdog)"
    )]
    NoWatchdog,
    /// The watchdog could not be started.
    #[error("cannot start the confirmation watchdog: {0}")]
    Watchdog(String),
    /// The policy could not be turned into the text the state directory records.
    #[error("cannot encode {what}: {source}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// An apply failed after it started changing things; `aftermath` says where that left the
    /// kernel.
    #[error("{error}; {aftermath}")]
    Apply {
        /// What failed.
        error: Box<EngineError>,
        /// What was done about it.
        aftermath: Aftermath,
    },
    /// The last applied policy, re-read from its record, no longer validates (a user it names
    /// was deleted since, say).
    #[error("the last applied policy no longer validates on this host: {0}")]
    Stale(Box<EngineError>),
}

impl EngineError {
    /// Who is to blame.
    ///
    /// An untrusted state directory ([`EngineError::UntrustedState`]) is [`ErrorClass::Failed`],
    /// like every other state-directory problem (unreadable, not writable, corrupt): the
    /// request is fine, the host it runs on is not, and scripts that tell a bad policy (the
    /// `zt` command's exit 1) from a broken host (exit 3) should see the host.
    pub fn class(&self) -> ErrorClass {
        match self {
            EngineError::Core(zt_core::Error::Invalid(_) | zt_core::Error::Unsupported { .. })
            | EngineError::Snapshot {
                source: zt_core::Error::Invalid(_) | zt_core::Error::Unsupported { .. },
                ..
            }
            | EngineError::Unreadable { .. }
            | EngineError::Writable { .. }
            | EngineError::Untrusted { .. }
            | EngineError::Pending { .. }
            | EngineError::NothingPending { .. }
            | EngineError::NothingToRollBack { .. }
            | EngineError::Drift { .. } => ErrorClass::Refused,
            EngineError::Apply { error, aftermath } => match aftermath {
                Aftermath::RestoreFailed(_) => ErrorClass::Failed,
                _ => error.class(),
            },
            EngineError::Stale(inner) => inner.class(),
            _ => ErrorClass::Failed,
        }
    }

    /// Every problem of an invalid policy, if that is what this is.
    pub fn diagnostics(&self) -> Option<&Diagnostics> {
        match self {
            EngineError::Core(zt_core::Error::Invalid(d)) => Some(d),
            EngineError::Apply { error, .. } | EngineError::Stale(error) => error.diagnostics(),
            _ => None,
        }
    }

    /// The drift found, if verification failed.
    pub fn drift(&self) -> Option<&Drift> {
        match self {
            EngineError::Drift { drift } => Some(drift),
            EngineError::Apply { error, .. } => error.drift(),
            _ => None,
        }
    }

    /// A state-directory error for `action` on `path`.
    pub(crate) fn state(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        EngineError::State {
            action,
            path: path.into(),
            source,
        }
    }

    /// Whether this is a state directory that cannot be written (a read-only mount, no write
    /// permission, an immutable directory): what lets the commands that only read go on
    /// without the lock file, and `flush` go on without its records.
    pub fn is_read_only(&self) -> bool {
        match self {
            EngineError::State { source, .. } => matches!(
                source.raw_os_error(),
                Some(libc::EROFS | libc::EACCES | libc::EPERM)
            ),
            EngineError::NotWritable(inner) => inner.is_read_only(),
            _ => false,
        }
    }

    /// This error, with what became of the kernel after it.
    pub(crate) fn after(self, aftermath: Aftermath) -> Self {
        EngineError::Apply {
            error: Box::new(self),
            aftermath,
        }
    }
}
