//! # zt — host-level micro-segmentation
//!
//! This facade re-exports [`zt_core`] (the policy pipeline: YAML → `Config` → `Policy` →
//! `Ruleset`, the reference evaluator and the `Backend` contract). Firewall backends are
//! separate crates that plug in behind cargo features as they land, so an embedder who only
//! needs to validate and reason about policies pulls in no C library at all.

pub use zt_core as core;
pub use zt_core::*;
