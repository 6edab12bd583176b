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
//! the same low-level form, so an unchanged policy compares equal (and apply sends nothing),
//! drift is reported per policy rule (rules by their comment, set elements by theirs), and a
//! snapshot restores byte for byte, counters included.
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
mod error;
mod ffi;
pub mod kernel;
pub mod low;
mod lower;
pub mod model;
mod netlink;
pub mod text;

pub use error::NftError;
pub use kernel::{Kernel, Netlink};

use low::LowTable;
use model::{Stmt, Table};
use zt_core::{
    Artifact, ArtifactFile, Backend, Diff, Drift, Error, PersistFile, Persistence, Plan, Ruleset,
    Snapshot, Status,
};

/// The backend's name, as `--backend nft` spells it.
pub const NAME: &str = "nft";

/// The default table name.
pub const DEFAULT_TABLE: &str = "zt";

/// zt's nftables backend, over a [`Kernel`] (netlink by default).
pub struct NftBackend<K: Kernel = Netlink> {
    table: String,
    kernel: K,
    /// The table the last `plan` computed, for the `apply` that follows it (compiling a large
    /// policy costs more than the rest of an apply).
    planned: Option<(Ruleset, LowTable)>,
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
            planned: None,
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

    /// What restores `ruleset` at boot: the `nft -f` script under `/etc/zt` and a systemd unit
    /// that loads it before the network comes up. The script replaces zt's table in one
    /// transaction and touches nothing else. A cgroup rule's path is resolved when the script
    /// loads, so the cgroup must exist by then (a unit started later than this one creates it
    /// too late, and the whole script is refused: fail closed is nft's only choice).
    pub fn persistence(&self, ruleset: &Ruleset) -> Persistence {
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
        Persistence {
            files: vec![
                PersistFile {
                    path: script,
                    mode: 0o600,
                    contents: self.script(ruleset),
                },
                unit,
            ],
            links: vec![link],
        }
    }

    /// What the kernel holds in zt's table now.
    pub fn read(&mut self) -> Result<Option<LowTable>, Error> {
        Ok(self.kernel.read(&self.table)?)
    }

    /// The table the kernel must hold for `ruleset`: the model with cgroup paths resolved to
    /// ids on this host, lowered to netlink expressions.
    pub fn desired(&mut self, ruleset: &Ruleset) -> Result<LowTable, Error> {
        self.lower(self.model(ruleset))
    }

    /// A model lowered, cgroup paths resolved on this host.
    fn lower(&self, mut model: Table) -> Result<LowTable, Error> {
        self.resolve_cgroups(&mut model)?;
        lower::table(&model).map_err(|e| NftError::Encode(e).into())
    }

    fn artifact(&self, model: &Table) -> Artifact {
        Artifact {
            files: vec![ArtifactFile {
                name: format!("{}.nft", self.table),
                contents: text::script(model),
            }],
        }
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
                                    root: kernel::cgroup_v2_root().map_or_else(
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

/// A snapshot of zt's table as read (`None`: there was none).
fn snapshot_of(table: Option<&LowTable>) -> Result<Snapshot, NftError> {
    Ok(Snapshot {
        backend: NAME.to_owned(),
        content: table
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| NftError::Snapshot(e.to_string()))?,
    })
}

impl<K: Kernel> Backend for NftBackend<K> {
    fn name(&self) -> &'static str {
        NAME
    }

    fn render(&self, ruleset: &Ruleset) -> Result<Artifact, Error> {
        Ok(self.artifact(&self.model(ruleset)))
    }

    fn plan(&mut self, ruleset: &Ruleset) -> Result<Plan, Error> {
        // One compilation serves the artifact and the kernel form.
        let model = self.model(ruleset);
        let artifact = self.artifact(&model);
        let desired = self.lower(model)?;
        let current = self.kernel.read(&self.table)?;
        let plan = Plan {
            backend: NAME.to_owned(),
            ruleset: ruleset.clone(),
            artifact,
            diff: Diff {
                changes: compare::diff(current.as_ref(), &desired),
            },
        };
        self.planned = Some((plan.ruleset.clone(), desired));
        Ok(plan)
    }

    fn apply(&mut self, plan: &Plan) -> Result<Snapshot, Error> {
        if plan.backend != NAME {
            return Err(Error::SnapshotMismatch {
                expected: NAME,
                found: plan.backend.clone(),
            });
        }
        // Reuse what `plan` compiled for this ruleset (comparing rulesets is cheap: their
        // rule matches are shared, and equal pointers compare equal at once).
        let mut desired = match self.planned.take() {
            Some((ruleset, desired)) if ruleset == plan.ruleset => desired,
            _ => self.desired(&plan.ruleset)?,
        };
        let current = self.kernel.read(&self.table)?;
        if let Some(current) = &current {
            compare::carry_counters(current, &mut desired);
        }
        let snapshot = snapshot_of(current.as_ref())?;
        if !plan.is_empty() {
            self.kernel.replace(&self.table, Some(&desired))?;
        }
        Ok(snapshot)
    }

    fn snapshot(&mut self) -> Result<Snapshot, Error> {
        let current = self.kernel.read(&self.table)?;
        Ok(snapshot_of(current.as_ref())?)
    }

    fn verify(&mut self, ruleset: &Ruleset) -> Result<Drift, Error> {
        let desired = self.desired(ruleset)?;
        let current = self.kernel.read(&self.table)?;
        Ok(Drift {
            items: compare::drift(current.as_ref(), &desired),
        })
    }

    fn rollback(&mut self, snapshot: &Snapshot) -> Result<(), Error> {
        snapshot.check_backend(NAME)?;
        match &snapshot.content {
            None => self.kernel.replace(&self.table, None)?,
            Some(json) => {
                let table: LowTable =
                    serde_json::from_str(json).map_err(|e| NftError::Snapshot(e.to_string()))?;
                if table.name != self.table {
                    return Err(NftError::Snapshot(format!(
                        "it holds table {}, not {}",
                        table.name, self.table
                    ))
                    .into());
                }
                self.kernel.replace(&self.table, Some(&table))?;
            }
        }
        Ok(())
    }

    fn status(&mut self) -> Result<Status, Error> {
        let current = self.kernel.read(&self.table)?;
        Ok(Status {
            backend: NAME.to_owned(),
            installed: current.is_some(),
            counters: current.as_ref().map(compare::counters).unwrap_or_default(),
        })
    }

    fn flush(&mut self) -> Result<(), Error> {
        Ok(self.kernel.replace(&self.table, None)?)
    }
}

#[cfg(test)]
mod tests;
