//! zt-core's error type.

use crate::diagnostic::Diagnostics;
use std::path::PathBuf;

/// Everything that can go wrong in zt-core or behind the [`crate::Backend`] trait.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is invalid: every problem, with rule, field and position.
    #[error("{0}")]
    Invalid(Diagnostics),
    /// The configuration file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A backend cannot express a rule; it is refused, never weakened.
    #[error("the {backend} backend cannot express rule '{rule}': {reason}")]
    Unsupported {
        /// The backend.
        backend: &'static str,
        /// The policy rule.
        rule: String,
        /// Why not.
        reason: String,
    },
    /// A backend failed talking to the kernel (or to a tool), with its own error as source.
    #[error("{backend} backend: {message}")]
    Backend {
        /// The backend.
        backend: &'static str,
        /// What failed, naming the rule where one is involved.
        message: String,
        /// The backend's typed error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// A snapshot taken by one backend was handed to another.
    #[error(
        "the snapshot was taken by the {found} backend; the {expected} backend cannot restore it"
    )]
    SnapshotMismatch {
        /// The backend asked to restore.
        expected: &'static str,
        /// The backend that took it.
        found: String,
    },
    /// A plan made by one backend was handed to another.
    #[error(
        "the plan was made by the {made_by} backend; the {backend} backend cannot apply it \
         (plan again with the {backend} backend)"
    )]
    ForeignPlan {
        /// The backend asked to apply it.
        backend: &'static str,
        /// The backend that made it.
        made_by: String,
    },
    /// A start time for a kernel-log summary in none of the accepted forms.
    #[error(
        "cannot use '{text}' as a start time: {reason}; give a duration back from now \
         (90s, 30m, 2h, 1h30m, 1d, 1w), a local date or time (2026-11-23, 2026-11-23 19:00, \
         2026-11-23 19:00:00), an RFC 3339 timestamp (2026-11-23T19:00:00Z, \
         2026-11-23T19:00:00+01:00), today or yesterday"
    )]
    Since {
        /// What was given.
        text: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A configuration could not be written as YAML.
    #[error("cannot write the configuration as YAML: {0}")]
    Serialize(String),
}
