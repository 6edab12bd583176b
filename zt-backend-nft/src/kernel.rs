//! The narrow seam between the backend and the kernel: read zt's table, replace it, and find
//! cgroup ids. Unit tests substitute an in-memory kernel; everything else goes through
//! [`Netlink`].

use crate::error::NftError;
use crate::low::LowTable;
use crate::{ffi, netlink};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

/// What the backend needs from the kernel.
pub trait Kernel {
    /// Table `name` as the kernel holds it, or `None` when it does not exist.
    fn read(&mut self, name: &str) -> Result<Option<LowTable>, NftError>;
    /// Make table `name` hold exactly `table`, or remove it (`None`), in one transaction;
    /// `present` says whether the table exists now.
    fn replace(
        &mut self,
        name: &str,
        present: bool,
        table: Option<&LowTable>,
    ) -> Result<(), NftError>;
    /// The id of the cgroup v2 directory `path` (relative to the cgroup v2 root), or `None`
    /// when it does not exist; `Err` when there is no cgroup v2 hierarchy.
    fn cgroup_id(&self, path: &str) -> Result<Option<u64>, PathBuf>;
}

/// The kernel of a network namespace, over netlink: the namespace of the thread that first
/// uses it.
///
/// One socket serves every read and transaction. Closing a `NETLINK_NETFILTER` socket after a
/// transaction that replaced objects waits for the kernel to free them (nf_tables flushes its
/// destroy work, an RCU grace period: 10–15 ms measured here), so a socket per operation would
/// add that wait to every apply. After any error the socket is dropped, so no stale answer can
/// reach the next request.
#[derive(Debug, Default)]
pub struct Netlink {
    socket: Option<netlink::Socket>,
}

impl Netlink {
    /// Run `op` on the open socket (opening it first), dropping the socket if `op` fails.
    fn with_socket<T>(
        &mut self,
        op: impl FnOnce(&mut netlink::Socket) -> Result<T, NftError>,
    ) -> Result<T, NftError> {
        let socket = match &mut self.socket {
            Some(s) => s,
            None => self.socket.insert(netlink::Socket::open()?),
        };
        let result = op(socket);
        if result.is_err() {
            self.socket = None;
        }
        result
    }
}

impl Kernel for Netlink {
    fn read(&mut self, name: &str) -> Result<Option<LowTable>, NftError> {
        self.with_socket(|s| s.dump(name))
    }

    fn replace(
        &mut self,
        name: &str,
        present: bool,
        table: Option<&LowTable>,
    ) -> Result<(), NftError> {
        if !present && table.is_none() {
            return Ok(());
        }
        #[cfg(feature = "fault-injection")]
        let faulty = fault::refused_by_the_kernel(table);
        #[cfg(feature = "fault-injection")]
        let table = faulty.as_ref().or(table);
        let batch = ffi::encode_batch(name, present, table)?;
        zt_core::fault::kill_at("batch-built");
        self.with_socket(|s| s.transact(&batch))
    }

    fn cgroup_id(&self, path: &str) -> Result<Option<u64>, PathBuf> {
        let root = zt_core::host::cgroup_v2_root().ok_or_else(PathBuf::new)?;
        // A cgroup v2 directory's inode number is its cgroup id, the value `socket cgroupv2`
        // compares against.
        match std::fs::metadata(root.join(path)) {
            Ok(m) if m.is_dir() => Ok(Some(m.ino())),
            _ => Ok(None),
        }
    }
}

/// Fault injection for the reliability tests (feature `fault-injection`, test builds only).
#[cfg(feature = "fault-injection")]
mod fault {
    use crate::low::{LowExpr, LowRule, LowTable};

    /// With `ZT_FAULT=kernel-reject`, the table plus a rule the kernel refuses (a meta key
    /// it does not have), named `zt:injected-fault`.
    pub(super) fn refused_by_the_kernel(table: Option<&LowTable>) -> Option<LowTable> {
        if !zt_core::fault::active("kernel-reject") {
            return None;
        }
        let mut t = table?.clone();
        if let Some(chain) = t.chains.iter_mut().find(|c| c.base.is_some()) {
            chain.rules.insert(
                0,
                LowRule {
                    exprs: vec![LowExpr::Meta { key: 255, dreg: 1 }],
                    comment: Some("zt:injected-fault".into()),
                },
            );
        }
        Some(t)
    }
}
