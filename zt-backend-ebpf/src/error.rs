//! The eBPF backend's error type.

use std::path::PathBuf;

/// Everything that can go wrong in the eBPF backend. Converted into [`zt_core::Error`] at the
/// [`zt_core::Backend`] boundary: [`EbpfError::Unsupported`] becomes
/// [`zt_core::Error::Unsupported`], everything else [`zt_core::Error::Backend`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EbpfError {
    /// A rule the socket hooks cannot enforce; refused, never weakened.
    #[error("rule '{rule}': {reason}")]
    Unsupported {
        /// The policy rule.
        rule: String,
        /// Why.
        reason: String,
    },
    /// A rule names a cgroup that does not exist, so it has no id to match.
    #[error(
        "rule '{rule}': cgroup '{path}' does not exist under the cgroup v2 root; create it (or start the service) before applying, because the eBPF backend matches cgroups by id"
    )]
    MissingCgroup {
        /// The policy rule.
        rule: String,
        /// The cgroup path as written.
        path: String,
    },
    /// The policy does not fit the maps.
    #[error(
        "the policy needs {needed} {what}, more than the eBPF maps hold ({capacity}){}",
        rule.as_ref().map(|r| format!(" (at rule '{r}')")).unwrap_or_default()
    )]
    TooLarge {
        /// What ran out.
        what: &'static str,
        /// How many the policy needs.
        needed: u64,
        /// How many fit.
        capacity: u64,
        /// The rule where it ran out, if one.
        rule: Option<String>,
    },
    /// No cgroup v2 hierarchy is mounted where zt looks.
    #[error(
        "no cgroup v2 hierarchy found at /sys/fs/cgroup or /sys/fs/cgroup/unified; the eBPF backend attaches to a cgroup v2 directory (mount one: `mount -t cgroup2 none /sys/fs/cgroup/unified`)"
    )]
    NoCgroupV2,
    /// The pin directory is not on a BPF filesystem.
    #[error(
        "{} is not on a BPF filesystem, so zt cannot pin its programs and maps there; mount one with `mount -t bpf bpf /sys/fs/bpf`",
        path.display()
    )]
    NotBpfFs {
        /// The pin directory.
        path: PathBuf,
    },
    /// Pinned objects that this version of zt cannot use.
    #[error(
        "the objects pinned under the pin directory are not zt's current layout ({detail}); remove them with `zt flush` and apply again"
    )]
    Incompatible {
        /// What differs.
        detail: String,
    },
    /// Map contents that this version of zt did not write.
    #[error(
        "zt's pinned maps hold an entry it cannot read ({detail}); something else wrote to them — `zt flush` and apply again"
    )]
    Corrupt {
        /// What was unreadable.
        detail: String,
    },
    /// A snapshot this backend cannot read.
    #[error("the eBPF snapshot cannot be read: {0}")]
    Snapshot(#[from] serde_json::Error),
    /// A kernel or file system operation failed.
    #[error("{action}: {source}")]
    Kernel {
        /// What zt was doing, naming the object.
        action: String,
        /// The kernel's (or aya's) error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl EbpfError {
    /// A kernel error while doing `action`.
    pub fn kernel(
        action: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        EbpfError::Kernel {
            action: action.into(),
            source: source.into(),
        }
    }
}

impl From<EbpfError> for zt_core::Error {
    fn from(e: EbpfError) -> Self {
        match e {
            EbpfError::Unsupported { rule, reason } => zt_core::Error::Unsupported {
                backend: crate::NAME,
                rule,
                reason,
            },
            other => zt_core::Error::Backend {
                backend: crate::NAME,
                message: other.to_string(),
                source: Some(Box::new(other)),
            },
        }
    }
}
