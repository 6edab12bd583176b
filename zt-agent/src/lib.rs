//! # zt-agent — one policy store for a fleet of hosts, on etcd v3
//!
//! Every host runs an agent. The agent watches the store's policies, composes those whose
//! selector matches the host's labels into one effective policy, enforces it through
//! [`zt_engine`] (the same transaction `zt apply` runs: lock, intent, rollback point,
//! verification, audit trail), and writes its status back. The contract — keys, JSON, how
//! policies compose — is in [`contract`] and docs/FLEET.md.
//!
//! The async runtime (tokio) lives here only: zt-core, zt-engine and the backends stay
//! synchronous, and the engine runs on a thread of its own ([`enforcer`]).
//!
//! Library parts other tools may use: [`contract`] (the keys and JSON types) and
//! [`compose`] (a host's effective policy from the store's policies, pure).

pub mod agent;
pub mod backends;
pub mod cli;
pub mod compose;
pub mod contract;
pub mod enforcer;
pub mod operator;
pub mod store;
