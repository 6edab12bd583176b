//! The store contract: the keys under `/zt/v1/` and the JSON written there. Tools other than
//! zt read and write these keys, so every field here is documented in docs/FLEET.md, and a
//! field is only ever added, never renamed.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The prefix of every policy: `/zt/v1/policies/<name>` holds its YAML.
pub const POLICIES: &str = "/zt/v1/policies/";
/// The prefix of the live hosts: `/zt/v1/hosts/<host>`, on a lease.
pub const HOSTS: &str = "/zt/v1/hosts/";
/// The prefix of the hosts' status: `/zt/v1/status/<host>`.
pub const STATUS: &str = "/zt/v1/status/";

/// The policy name the agent's own rules are composed under (`zt-agent/store`); no stored
/// policy may use it.
pub const RESERVED_POLICY: &str = "zt-agent";

/// Labels of a host, by key.
pub type Labels = BTreeMap<String, String>;

/// The key of policy `name`.
pub fn policy_key(name: &str) -> String {
    format!("{POLICIES}{name}")
}

/// The key of host `host`'s live record.
pub fn host_key(host: &str) -> String {
    format!("{HOSTS}{host}")
}

/// The key of host `host`'s status.
pub fn status_key(host: &str) -> String {
    format!("{STATUS}{host}")
}

/// Why a policy name cannot be used, if it cannot: it is the last part of a key and prefixes
/// its rules' names (`<policy>/<rule>`).
pub fn policy_name_problem(name: &str) -> Option<&'static str> {
    if name == RESERVED_POLICY {
        return Some("'zt-agent' is reserved for the agent's own rules");
    }
    zt_core::fleet::policy_name_problem(name)
}

/// Why a host name cannot be used, if it cannot: it is the last part of two keys.
pub fn host_name_problem(host: &str) -> Option<&'static str> {
    (zt_core::fleet::label_problem(host).is_some() || host.contains('/')).then_some(
        "a host name is 1 to 63 letters, digits, '.', '_' and '-' (it is the last part of a key)",
    )
}

/// `/zt/v1/hosts/<host>`: a live agent, on a lease (gone when the agent stops renewing it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRecord {
    /// The host's name.
    pub host: String,
    /// Its labels.
    pub labels: Labels,
    /// The backend it enforces with (`nft`, `iptables`, `ebpf`).
    pub backend: String,
    /// The agent's version.
    pub agent_version: String,
    /// When the agent started.
    pub started_at: Timestamp,
}

/// A policy as a host used it: its name and the store revision it was last modified at.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PolicyRef {
    /// The policy's name.
    pub name: String,
    /// Its `mod_revision` in the store.
    pub mod_revision: i64,
}

/// What became of the host's last computation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The effective policy changed the kernel and is enforced.
    Applied,
    /// The effective policy was already enforced.
    Unchanged,
    /// A matching policy is invalid; the last good policy stays enforced.
    Invalid,
    /// Two matching policies disagree on a setting; the last good policy stays enforced.
    Conflict,
    /// The backend failed to apply; the last good policy stays enforced.
    Failed,
}

impl Outcome {
    /// Whether the host enforces what the store says.
    pub fn is_good(self) -> bool {
        matches!(self, Outcome::Applied | Outcome::Unchanged)
    }

    /// The word used in the JSON and in tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::Unchanged => "unchanged",
            Outcome::Invalid => "invalid",
            Outcome::Conflict => "conflict",
            Outcome::Failed => "failed",
        }
    }
}

/// `/zt/v1/status/<host>`: what the host enforces and how its last computation went. Written
/// only when it changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The host's name.
    pub host: String,
    /// Its labels (also here, so a host that is no longer live can still be judged).
    #[serde(default)]
    pub labels: Labels,
    /// The matching policies the host last computed from.
    pub policies: Vec<PolicyRef>,
    /// SHA-256 of the effective policy enforced now (`None`: zt enforces nothing).
    pub sha256: Option<String>,
    /// How the last computation went.
    pub result: Outcome,
    /// Why it was not applied: the policy, rule, line and column.
    pub error: Option<String>,
    /// The kernel differs from the effective policy and could not be repaired.
    pub drift: bool,
    /// The last drift found (repaired or not), with when.
    pub drift_detail: Option<String>,
    /// How many times drift was repaired since the agent started.
    #[serde(default)]
    pub repairs: u64,
    /// When the kernel last took a change.
    pub applied_at: Option<Timestamp>,
    /// The store revision the host's computation saw last.
    pub store_revision: i64,
}
