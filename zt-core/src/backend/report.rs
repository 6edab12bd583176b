//! What backends report: artifacts, diffs, drift, status and counters. Plain data, so a plan or
//! a drift report reads the same whichever backend made it.

use serde::{Deserialize, Serialize};
use std::fmt;

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

impl Diff {
    /// True when apply has nothing to do.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// How many subjects each kind of change concerns.
    pub fn counts(&self) -> ChangeCounts {
        let mut counts = ChangeCounts::default();
        for c in &self.changes {
            match c.kind {
                ChangeKind::Add => counts.add += 1,
                ChangeKind::Modify => counts.modify += 1,
                ChangeKind::Remove => counts.remove += 1,
            }
        }
        counts
    }

    /// `2 to add, 1 to modify, 0 to remove`.
    pub fn summary(&self) -> String {
        self.counts().to_string()
    }

    /// The diff as text, with at most `per_kind` changes of each kind written out; the rest
    /// of each kind is counted in one line. A first apply of 10 000 rules is 10 000 changes:
    /// written out whole they bury the one line an operator reads, and cost more to print
    /// than the kernel takes to apply them. [`Diff`]'s own `Display` writes everything.
    pub fn bounded(&self, per_kind: usize) -> Bounded<'_> {
        Bounded {
            diff: self,
            per_kind,
        }
    }

    fn write(&self, f: &mut fmt::Formatter<'_>, per_kind: usize) -> fmt::Result {
        if self.changes.is_empty() {
            return writeln!(f, "no changes");
        }
        let mut shown = ChangeCounts::default();
        for c in &self.changes {
            let (sign, seen) = match c.kind {
                ChangeKind::Add => ("+", &mut shown.add),
                ChangeKind::Remove => ("-", &mut shown.remove),
                ChangeKind::Modify => ("~", &mut shown.modify),
            };
            *seen += 1;
            if *seen > per_kind {
                continue;
            }
            writeln!(f, "{sign} {}", c.subject)?;
            for line in c.detail.lines() {
                writeln!(f, "    {line}")?;
            }
        }
        let all = self.counts();
        for (kind, n) in [
            ("to add", all.add),
            ("to modify", all.modify),
            ("to remove", all.remove),
        ] {
            if n > per_kind {
                writeln!(
                    f,
                    "… and {} more {kind} (--full-diff, or --json, shows every change)",
                    n - per_kind
                )?;
            }
        }
        writeln!(f, "{all}")
    }
}

impl fmt::Display for Diff {
    /// Every change, then the summary line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, usize::MAX)
    }
}

/// A [`Diff`] written with a bound per kind of change (see [`Diff::bounded`]).
#[derive(Clone, Copy, Debug)]
pub struct Bounded<'a> {
    diff: &'a Diff,
    per_kind: usize,
}

impl fmt::Display for Bounded<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.diff.write(f, self.per_kind)
    }
}

/// Counts of a diff's changes by kind: how an audit trail line and a JSON summary give it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeCounts {
    /// Subjects added.
    pub add: usize,
    /// Subjects modified.
    pub modify: usize,
    /// Subjects removed.
    pub remove: usize,
}

impl fmt::Display for ChangeCounts {
    /// `2 to add, 1 to modify, 0 to remove`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} to add, {} to modify, {} to remove",
            self.add, self.modify, self.remove
        )
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

    /// zt's objects are gone altogether: one [`DriftKind::Gone`] item about `subject`.
    pub fn gone(subject: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            items: vec![DriftItem {
                kind: DriftKind::Gone,
                subject: subject.into(),
                detail: detail.into(),
            }],
        }
    }

    /// Drift from a [`super::compare`] of the kernel (`current`) against the ruleset (`desired`).
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
