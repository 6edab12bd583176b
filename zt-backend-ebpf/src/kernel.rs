//! The narrow seam between the backend's logic and the kernel.
//!
//! [`Kernel`] is everything the backend reads or writes on the host: cgroup ids, the pinned
//! maps' active generation, the four program links, counters, the audit ring buffer, and
//! removal. [`crate::loader::Pinned`] implements it with aya and bpffs pins; unit tests
//! implement it in memory.

use crate::EbpfError;
use crate::audit::AuditRecord;
use crate::render::{CgroupIds, Rendered};
use std::fmt;

/// The four socket hooks, one program each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SocketHook {
    /// `cgroup/connect4`: IPv4 connect (TCP, and UDP sockets that connect).
    Connect4,
    /// `cgroup/connect6`: IPv6 connect.
    Connect6,
    /// `cgroup/sendmsg4`: IPv4 sendmsg with a destination (unconnected UDP).
    Sendmsg4,
    /// `cgroup/sendmsg6`: IPv6 sendmsg with a destination.
    Sendmsg6,
}

impl SocketHook {
    /// Every hook, in the order they are installed.
    pub const ALL: [SocketHook; 4] = [
        SocketHook::Connect4,
        SocketHook::Connect6,
        SocketHook::Sendmsg4,
        SocketHook::Sendmsg6,
    ];

    /// The program's (and its pin's) name.
    pub fn name(self) -> &'static str {
        match self {
            SocketHook::Connect4 => "connect4",
            SocketHook::Connect6 => "connect6",
            SocketHook::Sendmsg4 => "sendmsg4",
            SocketHook::Sendmsg6 => "sendmsg6",
        }
    }

    /// The hook number in audit records.
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.get(usize::from(code)).copied()
    }
}

impl fmt::Display for SocketHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether one hook's program is attached where the backend attaches it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attachment {
    /// No link pinned.
    Missing,
    /// A link is pinned and attached to the configured cgroup.
    Attached,
    /// A link is pinned but attached to another cgroup, or detached by someone else.
    Elsewhere,
}

/// What zt's pinned objects hold now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct State {
    /// The active generation of the maps; `None` when the maps are absent or never written.
    pub maps: Option<Rendered>,
    /// Each hook's attachment, in [`SocketHook::ALL`] order.
    pub hooks: Vec<(SocketHook, Attachment)>,
}

impl State {
    /// Nothing of zt's is pinned (or what is pinned holds no policy and runs nowhere).
    pub fn is_absent(&self) -> bool {
        self.maps.is_none() && self.hooks.iter().all(|(_, a)| *a == Attachment::Missing)
    }

    /// Every hook is attached where it should be.
    pub fn attached(&self) -> bool {
        self.hooks.iter().all(|(_, a)| *a == Attachment::Attached)
    }
}

/// Kernel I/O of the eBPF backend.
pub trait Kernel: CgroupIds {
    /// Read the pinned maps' active generation and the hooks' attachments.
    fn read(&mut self) -> Result<State, EbpfError>;
    /// Make `rendered` the active generation — fill the inactive generation, then flip the
    /// index — loading, pinning and attaching the programs first where they are missing.
    fn install(&mut self, rendered: &Rendered) -> Result<(), EbpfError>;
    /// Calls decided by each of `indexes` (ruleset entry indexes) in the active generation,
    /// summed over CPUs.
    fn counters(&mut self, indexes: &[u32]) -> Result<Vec<u64>, EbpfError>;
    /// Take every record waiting in the audit ring buffer.
    fn drain_audit(&mut self) -> Result<Vec<AuditRecord>, EbpfError>;
    /// Detach the programs and remove every pin zt created, and nothing else.
    fn remove(&mut self) -> Result<(), EbpfError>;
}
