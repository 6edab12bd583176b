//! # zt-backend-nft — zt's policies as one nftables table, applied in one netlink transaction
//!
//! The backend the `zt` command uses by default. A [`zt_core::Ruleset`] compiles
//! ([`compile`]) into a typed model of zt's own table ([`model`]): one `inet` table (default
//! name `zt`, so IPv4 and IPv6 are always covered together) with an `output` and an `input`
//! base chain at filter priority, the ruleset's prologue, the policy rules, the
//! log-and-default epilogue, helper chains for logging and reject, and named sets.
//!
//! Two encoders start from that one model, so they cannot drift apart:
//! * [`text::script`] — an `nft -f` script (what `zt plan --show-artifact` prints and `zt
//!   persist` writes);
//! * netlink — the model is lowered ([`low`]) to exactly the expressions `nft` generates for
//!   that script, and sent through the `nftnl` crate as **one** batch: the table is created if
//!   missing, deleted and rebuilt within the transaction, so no moment exists with it missing,
//!   half-built or empty, and any refusal leaves the previous table in place.
//!
//! Reading is netlink too: plan, verify, status and snapshots dump zt's table and decode it to
//! the same low-level form (set elements, most of a large table, in safe Rust: `elements`), so
//! an unchanged policy compares equal (and apply sends nothing), drift is reported per policy
//! rule (rules by their comment, set elements by theirs), and a snapshot restores byte for
//! byte, counters included.
//!
//! The backend implements [`zt_core::Driver`] — its state is the table as netlink expressions,
//! or `None` — and gets plan, apply, verify, rollback and flush from zt-core's skeleton: a plan
//! carries the table it compiled, so apply sends exactly that, with the counters of what it
//! keeps.
//!
//! Scale: runs of consecutive rules with the same verdict become lookups in concatenated
//! interval sets, so a new connection costs one lookup instead of a walk over thousands of
//! rules (see [`compile`] for how first-match order is kept exact).
//!
//! ## Licence of what this links
//! This crate is MIT OR Apache-2.0, but it links `libnftnl`, which is **GPL-2.0-or-later**:
//! binaries that include this backend are bound by the GPL's terms when distributed. Embedders
//! who need to avoid that depend on `zt-core` alone (or the iptables or eBPF backends).
//! `nftnl`'s safe API lacks log, limit, reject, byteorder, socket and bitwise expressions,
//! concatenated interval sets, element counters and comments, and reading objects back; the
//! additions live in one module with `unsafe` code (`ffi`), behind safe functions.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod compare;
pub mod compile;
mod describe;
mod elements;
mod error;
mod ffi;
pub mod kernel;
pub mod low;
mod lower;
pub mod model;
mod netlink;
mod same;
pub mod text;

pub use error::NftError;
pub use kernel::{Kernel, Netlink};

use low::LowTable;
use model::{Stmt, Table};
use zt_core::{
    Artifact, ArtifactFile, Boot, Capabilities, Change, Drift, Driver, Error, PersistFile,
    Persistence, Ruleset, Status,
};

/// The backend's name, as `--backend nft` spells it.
pub const NAME: &str = "nft";

/// The default table name.
pub const DEFAULT_TABLE: &str = "zt";

/// zt's nftables backend, over a [`Kernel`] (netlink by default). It implements
/// [`zt_core::Backend`] through [`Driver`]: its kernel state is zt's table as netlink
/// expressions, or `None` when the table does not exist.
pub struct NftBackend<K: Kernel = Netlink> {
    table: String,
    kernel: K,
}

impl NftBackend<Netlink> {
    /// The backend for table `inet zt` in the calling thread's network namespace.
    pub fn new() -> Self {
        Self::with_kernel(Netlink::default())
    }
}

impl Default for NftBackend<Netlink> {
    fn default() -> Self {
        Self::new()
    }
}

/// Whether `name` can name an nftables table: a letter, then letters, digits and `_`, at most
/// 31 characters (what the `nft` parser accepts without quoting).
fn valid_table_name(name: &str) -> bool {
    name.len() <= 31
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl<K: Kernel> NftBackend<K> {
    /// The backend over another kernel seam (an in-memory one in unit tests).
    pub fn with_kernel(kernel: K) -> Self {
        Self {
            table: DEFAULT_TABLE.to_owned(),
            kernel,
        }
    }

    /// Use table `inet <name>` instead of `inet zt`.
    pub fn with_table(mut self, name: &str) -> Result<Self, Error> {
        if !valid_table_name(name) {
            return Err(NftError::Encode(format!(
                "table name {name:?}: use a letter, then letters, digits and '_', at most 31 characters"
            ))
            .into());
        }
        self.table = name.to_owned();
        Ok(self)
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The model of zt's table for a ruleset (pure).
    pub fn model(&self, ruleset: &Ruleset) -> Table {
        compile::compile(ruleset, &self.table)
    }

    /// The `nft -f` script for a ruleset (pure).
    pub fn script(&self, ruleset: &Ruleset) -> String {
        text::script(&self.model(ruleset))
    }

    /// The table the kernel must hold for `ruleset`: the model with cgroup paths resolved to
    /// ids on this host, lowered to netlink expressions.
    pub fn table_for(&self, ruleset: &Ruleset) -> Result<LowTable, Error> {
        let mut model = self.model(ruleset);
        self.resolve_cgroups(&mut model)?;
        lower::table(&model).map_err(|e| NftError::Encode(e).into())
    }

    fn resolve_cgroups(&self, model: &mut Table) -> Result<(), NftError> {
        for chain in &mut model.chains {
            for rule in &mut chain.rules {
                for stmt in &mut rule.stmts {
                    if let Stmt::Cgroup { path, id, .. } = stmt {
                        match self.kernel.cgroup_id(path) {
                            Ok(Some(found)) => *id = Some(found),
                            Ok(None) => {
                                return Err(NftError::CgroupMissing {
                                    rule: rule.comment.clone(),
                                    path: path.clone(),
                                    root: zt_core::host::cgroup_v2_root().map_or_else(
                                        || "the cgroup v2 root".into(),
                                        |p| p.display().to_string(),
                                    ),
                                });
                            }
                            Err(_) => {
                                return Err(NftError::NoCgroupV2 {
                                    rule: rule.comment.clone(),
                                });
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

impl<K: Kernel> Driver for NftBackend<K> {
    const NAME: &'static str = NAME;
    type State = Option<LowTable>;

    fn supports(&self) -> Capabilities {
        Capabilities::all()
    }

    fn read(&mut self) -> Result<Option<LowTable>, Error> {
        Ok(self.kernel.read(&self.table)?)
    }

    fn desired(&self, ruleset: &Ruleset) -> Result<Option<LowTable>, Error> {
        self.table_for(ruleset).map(Some)
    }

    fn nothing(&self) -> Option<LowTable> {
        None
    }

    fn owns_nothing(&self, state: &Option<LowTable>) -> bool {
        state.is_none()
    }

    fn diff(&self, current: &Option<LowTable>, desired: &Option<LowTable>) -> Vec<Change> {
        match (current, desired) {
            (Some(current), Some(desired)) if same::same(current, desired) => Vec::new(),
            (current, Some(desired)) => compare::diff(current.as_ref(), desired),
            (current, None) => compare::removal(current.as_ref()),
        }
    }

    fn drift(&self, current: &Option<LowTable>, desired: &Option<LowTable>) -> Drift {
        match (current, desired) {
            (Some(current), Some(desired)) if same::same(current, desired) => Drift::default(),
            (current, Some(desired)) => Drift {
                items: compare::drift(current.as_ref(), desired),
            },
            (current, None) => Drift::from_changes(compare::removal(current.as_ref())),
        }
    }

    /// Rules and set elements the new table keeps keep their counters.
    fn carry(&self, current: &Option<LowTable>, desired: &mut Option<LowTable>) {
        if let (Some(current), Some(desired)) = (current, desired) {
            compare::carry_counters(current, desired);
        }
    }

    /// One transaction that replaces the table, builds it where there was none, or deletes
    /// it.
    fn write(&mut self, from: &Option<LowTable>, to: &Option<LowTable>) -> Result<(), Error> {
        Ok(self
            .kernel
            .replace(&self.table, from.is_some(), to.as_ref())?)
    }

    /// The `nft -f` script of the table `ruleset` compiles to (it replaces the whole table,
    /// whatever the kernel holds).
    fn describe(
        &self,
        ruleset: &Ruleset,
        _: &Self::State,
        _: &Self::State,
    ) -> Result<Artifact, Error> {
        Ok(Artifact {
            files: vec![ArtifactFile {
                name: format!("{}.nft", self.table),
                contents: self.script(ruleset),
            }],
        })
    }

    fn encode(&self, state: &Option<LowTable>) -> Result<String, Error> {
        Ok(serde_json::to_string(state).map_err(|e| NftError::Snapshot(e.to_string()))?)
    }

    fn decode(&self, content: &str) -> Result<Option<LowTable>, Error> {
        let table: LowTable =
            serde_json::from_str(content).map_err(|e| NftError::Snapshot(e.to_string()))?;
        if table.name != self.table {
            return Err(NftError::Snapshot(format!(
                "it holds table {}, not {}",
                table.name, self.table
            ))
            .into());
        }
        Ok(Some(table))
    }

    fn inspect(&mut self) -> Result<Status, Error> {
        let current = self.kernel.read(&self.table)?;
        Ok(Status {
            backend: NAME.to_owned(),
            installed: current.is_some(),
            counters: current.as_ref().map(compare::counters).unwrap_or_default(),
        })
    }

    /// The `nft -f` script under `/etc/zt` and a systemd unit that loads it before the network
    /// comes up. The script replaces zt's table in one transaction and touches nothing else. A
    /// cgroup rule's path is resolved when the script loads, so the cgroup must exist by then
    /// (a unit started later than this one creates it too late, and the whole script is
    /// refused: fail closed is nft's only choice).
    fn boot(&self, ruleset: &Ruleset, _: &Boot) -> Result<Persistence, Error> {
        let (script, unit) = if self.table == DEFAULT_TABLE {
            ("zt.nft".to_owned(), "zt-nft.service".to_owned())
        } else {
            (
                format!("{}.nft", self.table),
                format!("zt-nft-{}.service", self.table),
            )
        };
        let script = std::path::PathBuf::from(zt_core::persist::PERSIST_DIR).join(script);
        let (unit, link) = zt_core::persist::systemd_unit(
            &unit,
            &format!(
                "zt: restore the nftables policy (table inet {})",
                self.table
            ),
            &[format!("/usr/sbin/nft -f {}", script.display())],
        );
        Ok(Persistence {
            files: vec![
                PersistFile {
                    path: script,
                    mode: 0o600,
                    contents: self.script(ruleset),
                },
                unit,
            ],
            links: vec![link],
        })
    }
}

#[cfg(test)]
mod tests;
