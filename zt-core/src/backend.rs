//! The Backend contract: how a [`Ruleset`] becomes kernel state, and how zt reads it back.
//!
//! ```text
//! render(&Ruleset)    -> Artifact   pure: the exact kernel artifact, no I/O
//! plan(&Ruleset)      -> Plan       reads current state; an identical state gives an empty diff
//! snapshot()          -> Snapshot   what zt owns now, as rollback would restore it
//! apply(&Plan)        -> Snapshot   one atomic kernel transaction; an empty plan writes nothing
//! verify(&Ruleset)    -> Drift      what differs between the kernel and the ruleset
//! rollback(&Snapshot)               atomically restore what zt owned before
//! status()            -> Status     rules as installed, packet/byte counters per policy rule
//! flush()                           remove everything zt owns, nothing else
//! ```
//!
//! The trait is object-safe, so a caller picks a backend at run time (`Box<dyn Backend>`).
//! Backends own only what they create (an nftables table, `ZT-*` iptables chains reached by one
//! jump per hooked chain, eBPF objects pinned under zt's bpffs directory) and leave other
//! tools' rules byte-identical. A rule a backend cannot express is refused at `plan` time with
//! [`Error::Unsupported`] naming it; it is never dropped or weakened.

use crate::{Error, Ruleset};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A firewall backend.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
pub trait Backend {
    /// Short name: `nft`, `iptables`, `ebpf`.
    fn name(&self) -> &'static str;
    /// The exact kernel artifact for `ruleset`, without touching the kernel.
    fn render(&self, ruleset: &Ruleset) -> Result<Artifact, Error>;
    /// Read what zt owns in the kernel now and diff it against `ruleset`.
    fn plan(&mut self, ruleset: &Ruleset) -> Result<Plan, Error>;
    /// What zt owns in the kernel now, in the form [`Backend::rollback`] restores. A caller
    /// that must be able to undo an apply even if it dies during it records this first.
    fn snapshot(&mut self) -> Result<Snapshot, Error>;
    /// Apply a plan in one atomic transaction and return a snapshot of what zt owned before.
    /// An empty plan writes nothing. On failure the kernel is left as it was. A backend whose
    /// kernel interface has no single transaction (iptables: one restore per family) says so
    /// in its docs; a caller that may die mid-apply records [`Backend::snapshot`] first.
    fn apply(&mut self, plan: &Plan) -> Result<Snapshot, Error>;
    /// Report every difference between the kernel and `ruleset`.
    fn verify(&mut self, ruleset: &Ruleset) -> Result<Drift, Error>;
    /// Restore, atomically, what a snapshot recorded.
    fn rollback(&mut self, snapshot: &Snapshot) -> Result<(), Error>;
    /// The rules as installed, with counters per policy rule.
    fn status(&mut self) -> Result<Status, Error>;
    /// Remove everything zt owns, and nothing else.
    fn flush(&mut self) -> Result<(), Error>;
}

/// One file of a rendered artifact (an nft script, an iptables-restore file, map entries).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactFile {
    /// A name for it (`zt.nft`, `rules.v4`).
    pub name: String,
    /// Its exact contents.
    pub contents: String,
}

/// What a backend would install for a ruleset, as text an operator can read and a tool can load.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    /// The files, in the order they are applied.
    pub files: Vec<ArtifactFile>,
}

impl fmt::Display for Artifact {
    /// A single file as is; several, each under a `# ==> name <==` line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let [only] = self.files.as_slice() {
            return f.write_str(&only.contents);
        }
        for file in &self.files {
            writeln!(f, "# ==> {} <==", file.name)?;
            f.write_str(&file.contents)?;
            if !file.contents.ends_with('\n') {
                writeln!(f)?;
            }
        }
        Ok(())
    }
}

/// What kind of change a plan makes to one subject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    /// Installed where it was absent.
    Add,
    /// Removed.
    Remove,
    /// Replaced by a different form, or moved.
    Modify,
}

/// One change, named by the policy rule (or zt entry, or kernel object) it concerns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// Add, remove or modify.
    pub kind: ChangeKind,
    /// The policy rule name, `zt:…` entry, or backend object (`table inet zt`).
    pub subject: String,
    /// What exactly, in the backend's terms.
    pub detail: String,
}

/// The changes apply would make. Empty means the kernel already holds the ruleset.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diff {
    /// The changes, in ruleset order.
    pub changes: Vec<Change>,
}

/// One comparable unit of kernel state: the subject it belongs to and its canonical text.
/// A subject may own several units (one rule per family, a log rule and a verdict rule).
pub type Unit = (String, String);

/// Group units by subject, keeping the order subjects first appear in.
fn group(units: &[Unit]) -> Vec<(&str, Vec<&str>)> {
    let mut out: Vec<(&str, Vec<&str>)> = Vec::new();
    let mut index = std::collections::HashMap::new();
    for (subject, text) in units {
        let i = *index.entry(subject.as_str()).or_insert_with(|| {
            out.push((subject.as_str(), Vec::new()));
            out.len() - 1
        });
        out[i].1.push(text.as_str());
    }
    out
}

/// Each subject's position in a grouped list.
fn index<'a>(list: &[(&'a str, Vec<&'a str>)]) -> std::collections::HashMap<&'a str, usize> {
    list.iter().enumerate().map(|(i, (n, _))| (*n, i)).collect()
}

/// The differences between what is (`current`) and what should be (`desired`), by subject:
/// `Add` for desired subjects absent now, `Remove` for current subjects not desired,
/// `Modify` for subjects whose units differ — and one `Modify` of subject `order` when the
/// same subjects appear in a different order (first match makes order part of the meaning).
pub fn compare(current: &[Unit], desired: &[Unit]) -> Vec<Change> {
    let now = group(current);
    let want = group(desired);
    // Indexed by subject: a plan where thousands of subjects change stays linear.
    let (now_at, want_at) = (index(&now), index(&want));
    let mut changes = Vec::new();
    for (subject, texts) in &want {
        match now_at.get(subject).copied() {
            None => changes.push(Change {
                kind: ChangeKind::Add,
                subject: (*subject).to_owned(),
                detail: texts.join("\n"),
            }),
            Some(i) if now[i].1 != *texts => changes.push(Change {
                kind: ChangeKind::Modify,
                subject: (*subject).to_owned(),
                detail: format!(
                    "{}\n{}",
                    now[i]
                        .1
                        .iter()
                        .map(|t| format!("- {t}"))
                        .collect::<Vec<_>>()
                        .join("\n"),
                    texts
                        .iter()
                        .map(|t| format!("+ {t}"))
                        .collect::<Vec<_>>()
                        .join("\n")
                ),
            }),
            Some(_) => {}
        }
    }
    for (subject, texts) in &now {
        if !want_at.contains_key(subject) {
            changes.push(Change {
                kind: ChangeKind::Remove,
                subject: (*subject).to_owned(),
                detail: texts.join("\n"),
            });
        }
    }
    if changes.is_empty() {
        let order_now: Vec<&str> = now.iter().map(|(s, _)| *s).collect();
        let order_want: Vec<&str> = want.iter().map(|(s, _)| *s).collect();
        if order_now != order_want {
            changes.push(Change {
                kind: ChangeKind::Modify,
                subject: "order".to_owned(),
                detail: format!("- {}\n+ {}", order_now.join(", "), order_want.join(", ")),
            });
        }
    }
    changes
}

impl Diff {
    /// True when apply has nothing to do.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// `2 to add, 1 to modify, 0 to remove`.
    pub fn summary(&self) -> String {
        let count = |k| self.changes.iter().filter(|c| c.kind == k).count();
        format!(
            "{} to add, {} to modify, {} to remove",
            count(ChangeKind::Add),
            count(ChangeKind::Modify),
            count(ChangeKind::Remove)
        )
    }
}

impl fmt::Display for Diff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.changes.is_empty() {
            return writeln!(f, "no changes");
        }
        for c in &self.changes {
            let sign = match c.kind {
                ChangeKind::Add => "+",
                ChangeKind::Remove => "-",
                ChangeKind::Modify => "~",
            };
            writeln!(f, "{sign} {}", c.subject)?;
            for line in c.detail.lines() {
                writeln!(f, "    {line}")?;
            }
        }
        writeln!(f, "{}", self.summary())
    }
}

/// What apply would do: the ruleset, its artifact, and the diff against the kernel.
#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    /// The backend that made it (only that backend applies it).
    pub backend: String,
    /// The ruleset to install.
    pub ruleset: Ruleset,
    /// The exact artifact that would be installed.
    pub artifact: Artifact,
    /// The changes against the kernel's current state.
    pub diff: Diff,
}

impl Plan {
    /// True when the kernel already holds the ruleset and apply will write nothing.
    pub fn is_empty(&self) -> bool {
        self.diff.is_empty()
    }
}

/// What zt owned before an apply, enough for the same backend to restore it atomically.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The backend that took it.
    pub backend: String,
    /// The backend's record of its objects; `None` when zt owned nothing.
    pub content: Option<String>,
}

impl Snapshot {
    /// Check that `backend` took this snapshot.
    pub fn check_backend(&self, backend: &'static str) -> Result<(), Error> {
        if self.backend == backend {
            Ok(())
        } else {
            Err(Error::SnapshotMismatch {
                expected: backend,
                found: self.backend.clone(),
            })
        }
    }
}

/// What kind of difference verify found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DriftKind {
    /// In the ruleset, not in the kernel.
    Missing,
    /// In the kernel, not in the ruleset.
    Extra,
    /// In both, different.
    Changed,
    /// Set or map elements the ruleset has and the kernel lacks.
    ElementsMissing,
    /// Set or map elements the kernel has and the ruleset lacks.
    ElementsExtra,
    /// A chain's hook, priority or policy differs.
    ChainChanged,
    /// zt's objects are gone altogether.
    Gone,
}

/// One difference between the kernel and the ruleset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftItem {
    /// The kind of difference.
    pub kind: DriftKind,
    /// The policy rule name, `zt:…` entry, or kernel object concerned.
    pub subject: String,
    /// Details in the backend's terms.
    pub detail: String,
}

/// Every difference verify found; empty means the kernel enforces the ruleset.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drift {
    /// The differences.
    pub items: Vec<DriftItem>,
}

impl Drift {
    /// True when the kernel matches the ruleset.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Drift from a [`compare`] of the kernel (`current`) against the ruleset (`desired`).
    pub fn from_changes(changes: Vec<Change>) -> Self {
        let items = changes
            .into_iter()
            .map(|c| DriftItem {
                kind: match c.kind {
                    ChangeKind::Add => DriftKind::Missing,
                    ChangeKind::Remove => DriftKind::Extra,
                    ChangeKind::Modify => DriftKind::Changed,
                },
                subject: c.subject,
                detail: c.detail,
            })
            .collect();
        Self { items }
    }
}

impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.items.is_empty() {
            return writeln!(f, "no drift: the kernel enforces the policy");
        }
        for item in &self.items {
            let kind = serde_json_kind(item.kind);
            writeln!(f, "{kind}: {}", item.subject)?;
            for line in item.detail.lines() {
                writeln!(f, "    {line}")?;
            }
        }
        Ok(())
    }
}

fn serde_json_kind(kind: DriftKind) -> &'static str {
    match kind {
        DriftKind::Missing => "missing",
        DriftKind::Extra => "extra",
        DriftKind::Changed => "changed",
        DriftKind::ElementsMissing => "elements-missing",
        DriftKind::ElementsExtra => "elements-extra",
        DriftKind::ChainChanged => "chain-changed",
        DriftKind::Gone => "gone",
    }
}

/// Packet and byte counters of one policy rule (or zt entry), summed over its kernel objects.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counter {
    /// The policy rule name or `zt:…` entry.
    pub name: String,
    /// Packets matched.
    pub packets: u64,
    /// Bytes matched.
    pub bytes: u64,
}

/// What is installed, with counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The backend.
    pub backend: String,
    /// Whether zt's objects exist.
    pub installed: bool,
    /// Counters per policy rule and zt entry, in installed order.
    pub counters: Vec<Counter>,
}

impl Status {
    /// The counter of the policy rule or zt entry `name`, if it is installed.
    pub fn counter(&self, name: &str) -> Option<&Counter> {
        self.counters.iter().find(|c| c.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units(list: &[(&str, &str)]) -> Vec<Unit> {
        list.iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    }

    #[test]
    fn identical_states_compare_empty() {
        let a = units(&[("x", "1"), ("y", "2"), ("y", "3")]);
        assert!(compare(&a, &a).is_empty());
    }

    #[test]
    fn compare_reports_adds_removes_modifies_and_reordering() {
        let now = units(&[("a", "1"), ("b", "2"), ("c", "3")]);
        let want = units(&[("a", "1"), ("b", "9"), ("d", "4")]);
        let kinds: Vec<(ChangeKind, String)> = compare(&now, &want)
            .into_iter()
            .map(|c| (c.kind, c.subject))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (ChangeKind::Modify, "b".to_owned()),
                (ChangeKind::Add, "d".to_owned()),
                (ChangeKind::Remove, "c".to_owned())
            ]
        );
        let swapped = units(&[("b", "2"), ("a", "1"), ("c", "3")]);
        let order = compare(&now, &swapped);
        assert_eq!(order.len(), 1);
        assert_eq!(order[0].subject, "order");
    }
}
