//! # zt — host-level micro-segmentation
//!
//! This facade re-exports [`zt_core`] (the policy pipeline: YAML → `Config` → `Policy` →
//! `Ruleset`, the reference evaluator and the `Backend` contract), [`zt_engine`] (the safe
//! apply transaction: lock, state directory, crash recovery, confirmation deadlines, audit
//! trail) and, behind the cargo features `nft`, `iptables` and `ebpf` (all on by default), the
//! backends. An embedder who only needs to
//! validate and reason about policies depends on `zt-core` alone and pulls in no C library.

pub use zt_core as core;
pub use zt_core::*;

/// The safe apply transaction over any backend.
pub use zt_engine as engine;

/// The nftables backend (feature `nft`; links libnftnl, GPL-2.0-or-later).
#[cfg(feature = "nft")]
pub use zt_backend_nft as nft;

/// The iptables backend (feature `iptables`).
#[cfg(feature = "iptables")]
pub use zt_backend_iptables as iptables;

/// The eBPF backend (feature `ebpf`).
#[cfg(feature = "ebpf")]
pub use zt_backend_ebpf as ebpf;
