//! The nft backend's errors.

use std::io;

/// What can go wrong between zt's table model and the kernel.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NftError {
    /// The netlink socket could not be opened, configured or used.
    #[error("netlink {op}: {source}")]
    Netlink {
        /// What was being done.
        op: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The kernel refused a message of the transaction; nothing was committed.
    #[error("the kernel refused {subject}: {source}; nothing was changed")]
    Refused {
        /// The rule, set or chain the refused message carried.
        subject: String,
        /// The errno the kernel returned.
        #[source]
        source: io::Error,
    },
    /// The kernel did not answer in time.
    #[error("no answer from the kernel after {0} seconds")]
    Timeout(u64),
    /// Something could not be encoded into netlink.
    #[error("cannot encode {0}")]
    Encode(String),
    /// A dump message could not be decoded.
    #[error("cannot decode a {0} from the kernel")]
    Decode(String),
    /// A snapshot could not be read back.
    #[error("the snapshot is unreadable: {0}")]
    Snapshot(String),
    /// A cgroup a rule names does not exist (nftables resolves cgroup paths when rules load).
    #[error("rule '{rule}': cgroup '{path}' does not exist under {root}")]
    CgroupMissing {
        /// The policy rule.
        rule: String,
        /// The cgroup path in the rule.
        path: String,
        /// The cgroup v2 mount searched.
        root: String,
    },
    /// There is no cgroup v2 hierarchy to resolve cgroup rules against.
    #[error("rule '{rule}' matches a cgroup, but no cgroup v2 hierarchy is mounted")]
    NoCgroupV2 {
        /// The policy rule.
        rule: String,
    },
}

impl From<NftError> for zt_core::Error {
    fn from(e: NftError) -> Self {
        zt_core::Error::Backend {
            backend: "nft",
            message: e.to_string(),
            source: Some(Box::new(e)),
        }
    }
}
