//! The iptables backend's error type, converted into [`zt_core::Error::Backend`] at the trait.

use std::path::PathBuf;

/// Everything that can go wrong between zt and the iptables tools.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IptablesError {
    /// Neither iptables variant could be used, or the forced one is not installed.
    #[error("cannot pick an iptables variant: {0}")]
    Variant(String),
    /// A tool could not be started (usually: not installed, or not in PATH).
    #[error("cannot run {binary}: {source} (is the iptables package installed?)")]
    Spawn {
        /// The binary.
        binary: String,
        /// Why it could not run.
        #[source]
        source: std::io::Error,
    },
    /// A tool ran and failed.
    #[error("{binary} failed ({status}): {stderr}")]
    Tool {
        /// The binary.
        binary: String,
        /// Its exit status.
        status: String,
        /// What it printed on stderr, trimmed.
        stderr: String,
    },
    /// A restore was refused by the kernel or the tool at a line that belongs to a rule.
    #[error("{binary} refused rule '{rule}' ({family}, line {line}: {text}): {stderr}")]
    RuleRefused {
        /// The binary.
        binary: String,
        /// The policy rule (or `zt:` entry) the line belongs to.
        rule: String,
        /// Its family: `IPv4` or `IPv6`.
        family: &'static str,
        /// The line number in the restore input.
        line: usize,
        /// The line itself.
        text: String,
        /// What the tool printed on stderr, trimmed.
        stderr: String,
    },
    /// A cgroup rule names a cgroup that does not exist; `-m cgroup --path` resolves the path
    /// when the rule is installed, so the whole restore fails.
    #[error(
        "rule '{rule}' matches cgroup '{path}', which does not exist under {}: create the cgroup (or start its service) before applying, or remove the rule",
        root.display()
    )]
    MissingCgroup {
        /// The policy rule.
        rule: String,
        /// The cgroup path as written in the policy.
        path: String,
        /// The cgroup v2 mount point that was searched.
        root: PathBuf,
    },
    /// One of zt's chains appeared between plan and apply.
    #[error(
        "{family} chain {chain} exists now but did not when the plan was made (another zt run in between?); nothing was changed: plan again"
    )]
    StalePlan {
        /// The chain.
        chain: String,
        /// `IPv4` or `IPv6`.
        family: &'static str,
    },
    /// A cgroup rule on a host without a cgroup v2 hierarchy.
    #[error(
        "rule '{rule}' matches a cgroup, but no cgroup v2 hierarchy is mounted (-m cgroup --path needs one)"
    )]
    NoCgroupV2 {
        /// The policy rule.
        rule: String,
    },
    /// `iptables-save` printed something the parser does not understand.
    #[error("cannot read iptables-save output, line {line}: {reason}: {text:?}")]
    Parse {
        /// The line number (1-based).
        line: usize,
        /// What was expected.
        reason: &'static str,
        /// The line.
        text: String,
    },
    /// The IPv6 restore failed after the IPv4 one succeeded; IPv4 was put back as it was.
    #[error(
        "the IPv6 rules could not be installed, so the IPv4 rules were restored to their previous state: {ipv6}"
    )]
    Ipv6Failed {
        /// Why IPv6 failed.
        #[source]
        ipv6: Box<IptablesError>,
    },
    /// The IPv6 restore failed, and putting IPv4 back failed too: the families now disagree.
    #[error(
        "the IPv6 rules could not be installed ({ipv6}) AND restoring the previous IPv4 rules failed ({ipv4}): IPv4 enforces the new policy, IPv6 the old one; run `zt rollback` or `zt flush`"
    )]
    FamiliesDisagree {
        /// Why IPv6 failed.
        ipv6: Box<IptablesError>,
        /// Why putting IPv4 back failed.
        ipv4: Box<IptablesError>,
    },
    /// A snapshot's content is not one this backend wrote.
    #[error("the snapshot is not an iptables backend record: {0}")]
    Snapshot(#[from] serde_json::Error),
    /// A snapshot was taken with another variant or chain prefix than this backend uses.
    #[error(
        "the snapshot was taken with {taken}, but this backend uses {current}; configure the backend as it was to roll back"
    )]
    SnapshotOwner {
        /// Variant and prefix the snapshot was taken with.
        taken: String,
        /// Variant and prefix in use.
        current: String,
    },
    /// The chain prefix cannot name iptables chains.
    #[error(
        "chain prefix {0:?} is not usable: use 1 to 21 letters, digits, '_' or '-' (iptables chain names are at most 28 characters)"
    )]
    Prefix(String),
}

impl From<IptablesError> for zt_core::Error {
    fn from(e: IptablesError) -> Self {
        zt_core::Error::Backend {
            backend: crate::NAME,
            message: e.to_string(),
            source: Some(Box::new(e)),
        }
    }
}
