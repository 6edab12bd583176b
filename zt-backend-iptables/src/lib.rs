//! # zt-backend-iptables — zt's policy as iptables chains, applied atomically
//!
//! For hosts that still run iptables (legacy or nft-based). A [`zt_core::Ruleset`] becomes
//! `iptables-restore` input (IPv4) and `ip6tables-restore` input (IPv6) for zt's own chains,
//! `ZT-OUTPUT` (egress) and `ZT-INPUT` (ingress), each reached by one jump at the top of the
//! built-in chain it hooks. Nothing else in the tables is touched: other tools' chains and rules
//! (Docker, kube-proxy, firewalld) stay byte-identical.
//!
//! ```text
//! Ruleset ─render─▶ Owned (per family: chains, rules, jumps) ─transition─▶ restore input
//! iptables-save ─save::parse─▶ Dump ─owned─▶ Owned (what the kernel holds)
//! ```
//!
//! * [`render`] (pure): the rules, written as `iptables-save` prints them, one comment with the
//!   entry name on every rule, so plan, verify and status read names back from the kernel.
//! * [`restore`] (pure): the `--noflush` input that takes zt's state from one value to another —
//!   apply, rollback, flush and the artifact are all transitions.
//! * [`save`]: the small parser of `iptables-save [-c]` output; [`plan`]: differences by entry
//!   name through [`zt_core::compare`], and counters by entry name.
//! * [`variant`]: legacy or nft, detected as kube-proxy does, or forced.
//! * [`kernel`]: the seam — [`Kernel`] reads with `iptables-save` and writes with one
//!   `iptables-restore --noflush` per family; tests substitute it.
//!
//! Apply is one restore per family. Inside it zt's chains are declared (which empties them)
//! and refilled, so no moment exists with half a chain; if the IPv6 restore fails after IPv4
//! succeeded, IPv4 is restored to its previous state, so a failed apply never leaves the
//! families disagreeing. iptables has no transaction across families, though: a process
//! killed between the two restores leaves IPv4 new and IPv6 old until a caller puts the
//! snapshot back (the `zt` command does so in the next command that takes its lock).
//! zt never changes a built-in chain's policy (its default verdict is the last rule of its own
//! chains), so flush has no policy to restore. Rules an apply keeps keep their counters.
//!
//! Plan reads both families (`iptables-save -c`, the two tools at once) and its artifact is the
//! exact restore input apply runs; apply of that plan reuses what the plan read instead of
//! reading again, and the input itself refuses (with `-N`) to create a chain that has appeared
//! since, so a stale plan fails whole instead of doubling a jump.
//!
//! Known tool limits (iptables 1.8.9): `ip6tables-nft-restore` ignores `--counters`, so IPv6
//! counters restart at zero on each apply with the nft variant; iptables-legacy's limit match
//! cannot hold a log rate of `1/day` (refused at plan time with that variant).
//!
//! The `iptables` crate (one process per call) is deliberately not used here: every read of
//! this backend is one `iptables-save` per family, which returns chains, jumps and counters at
//! once, and `iptables -L`/`-S` would create the legacy `filter` table in a namespace that has
//! none. The kernel tests use it to build other tools' rules rule by rule.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod error;
pub mod kernel;
pub mod owned;
pub mod plan;
pub mod render;
pub mod restore;
pub mod save;
pub mod snapshot;
pub mod variant;

pub use error::IptablesError;
pub use kernel::{Kernel, Tools};
pub use owned::ChainPrefix;
pub use variant::Variant;

use owned::Owned;
use render::Rendered;
use snapshot::Record;
use zt_core::{
    Artifact, Backend, Diff, Drift, DriftItem, DriftKind, Error, Family, Identity, Matcher, Plan,
    Ruleset, Snapshot, Status,
};

/// The backend's name, as plans and snapshots record it.
pub const NAME: &str = "iptables";

/// How to build an [`IptablesBackend`].
#[derive(Clone, Debug)]
pub struct Options {
    /// Use this variant instead of detecting one.
    pub variant: Option<Variant>,
    /// The prefix of zt's chains (`ZT` → `ZT-OUTPUT`, `ZT-INPUT`).
    pub prefix: String,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            variant: None,
            prefix: "ZT".to_owned(),
        }
    }
}

/// What the last plan read from the kernel, with the artifact it made from it: apply of that
/// same plan uses it instead of reading the kernel a second time.
struct Planned {
    artifact: Artifact,
    before: [Owned; 2],
}

/// The iptables backend.
pub struct IptablesBackend {
    variant: Variant,
    prefix: ChainPrefix,
    kernel: Box<dyn Kernel>,
    planned: Option<Planned>,
}

impl std::fmt::Debug for IptablesBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IptablesBackend")
            .field("variant", &self.variant)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl IptablesBackend {
    /// A backend for this host: the forced variant, or the one detected.
    pub fn new(options: Options) -> Result<Self, Error> {
        let prefix = ChainPrefix::new(&options.prefix)
            .ok_or_else(|| IptablesError::Prefix(options.prefix.clone()))?;
        let variant = match options.variant {
            Some(v) => v,
            None => variant::detect()?,
        };
        Ok(Self::with_kernel(
            variant,
            prefix,
            Box::new(Tools::new(variant)),
        ))
    }

    /// A backend over any [`Kernel`] (unit tests use a recorded one).
    pub fn with_kernel(variant: Variant, prefix: ChainPrefix, kernel: Box<dyn Kernel>) -> Self {
        Self {
            variant,
            prefix,
            kernel,
            planned: None,
        }
    }

    /// The variant in use.
    pub fn variant(&self) -> Variant {
        self.variant
    }

    /// Render, refusing what this variant cannot hold.
    fn desired(&self, ruleset: &Ruleset) -> Result<Rendered, Error> {
        if self.variant == Variant::Legacy {
            for entry in ruleset.entries() {
                if entry
                    .log()
                    .is_some_and(|l| render::overflows_legacy_limit(l.rate))
                {
                    return Err(Error::Unsupported {
                        backend: NAME,
                        rule: entry.name().to_owned(),
                        reason: "iptables-legacy's limit match cannot hold a log rate of 1/day (its interval times the burst of 5 overflows 32 bits); use 2/day or more, or the nft variant".to_owned(),
                    });
                }
            }
        }
        render::render(ruleset, &self.prefix)
    }

    /// Refuse cgroup rules whose cgroup does not exist: `-m cgroup --path` resolves the path
    /// when the rule is installed, and the restore would fail.
    fn check_cgroups(&self, ruleset: &Ruleset) -> Result<(), IptablesError> {
        let mut root = None;
        for entry in ruleset.entries() {
            let Matcher::Rule(m) = entry.matcher() else {
                continue;
            };
            let Identity::Cgroup(path) = &m.identity else {
                continue;
            };
            let root = match &root {
                Some(r) => r,
                None => root.insert(self.kernel.cgroup_root().ok_or_else(|| {
                    IptablesError::NoCgroupV2 {
                        rule: entry.name().to_owned(),
                    }
                })?),
            };
            if !root.join(path.as_str()).is_dir() {
                return Err(IptablesError::MissingCgroup {
                    rule: entry.name().to_owned(),
                    path: path.as_str().to_owned(),
                    root: root.clone(),
                });
            }
        }
        Ok(())
    }

    /// What zt owns now, IPv4 and IPv6.
    fn observe(&self) -> Result<[Owned; 2], IptablesError> {
        let [v4, v6] = self.kernel.save_both()?;
        Ok([
            save::parse(&v4)?.owned(&self.prefix),
            save::parse(&v6)?.owned(&self.prefix),
        ])
    }

    /// One restore, its failure explained in terms of the policy where possible.
    fn restore(&self, family: Family, input: &str) -> Result<(), IptablesError> {
        self.kernel
            .restore(family, input)
            .map_err(|e| explain(e, family, input, self.kernel.cgroup_root()))
    }

    /// Run the restores (IPv4 first). If IPv6 fails after IPv4 succeeded, IPv4 is taken back
    /// to `before`.
    fn install(&self, inputs: [Option<String>; 2], before: &[Owned; 2]) -> Result<(), Error> {
        let [v4, v6] = inputs;
        if let Some(input) = &v4 {
            self.restore(Family::V4, input)?;
            zt_core::fault::kill_at("ipv4-restored");
        }
        let Some(input) = &v6 else { return Ok(()) };
        #[cfg(feature = "fault-injection")]
        let faulty = refused_by_the_kernel(input);
        #[cfg(feature = "fault-injection")]
        let input = faulty.as_ref().unwrap_or(input);
        let Err(ipv6) = self.restore(Family::V6, input) else {
            return Ok(());
        };
        if v4.is_none() {
            return Err(ipv6.into());
        }
        let undo = self
            .kernel
            .save(Family::V4)
            .and_then(|text| save::parse(&text))
            .map(|dump| restore::transition(Family::V4, &dump.owned(&self.prefix), &before[0]))
            .and_then(|input| self.restore(Family::V4, &input));
        let ipv6 = Box::new(ipv6);
        Err(match undo {
            Ok(()) => IptablesError::Ipv6Failed { ipv6 },
            Err(ipv4) => IptablesError::FamiliesDisagree {
                ipv6,
                ipv4: Box::new(ipv4),
            },
        }
        .into())
    }

    fn snapshot_of(&self, before: &[Owned; 2]) -> Result<Snapshot, Error> {
        let content = Record::of(self.variant, self.prefix.as_str(), before)
            .map(|r| serde_json::to_string(&r).map_err(IptablesError::from))
            .transpose()?;
        Ok(Snapshot {
            backend: NAME.to_owned(),
            content,
        })
    }

    fn diff(before: &[Owned; 2], desired: &Rendered) -> Diff {
        let changes = [Family::V4, Family::V6]
            .into_iter()
            .flat_map(|f| plan::family_changes(f, &before[slot(f)], desired.family(f)));
        Diff {
            changes: plan::merge(changes),
        }
    }
}

/// With `ZT_FAULT=kernel-reject` (feature `fault-injection`, test builds only), `input` with a
/// rule the restore refuses — a jump to a chain that does not exist
/// (`ZT-injected-fault`), commented `zt:injected-fault` — before its last COMMIT.
#[cfg(feature = "fault-injection")]
fn refused_by_the_kernel(input: &str) -> Option<String> {
    if !zt_core::fault::active("kernel-reject") {
        return None;
    }
    let at = input.rfind("COMMIT")?;
    Some(format!(
        "{}-A OUTPUT -m comment --comment zt:injected-fault -j ZT-injected-fault\n{}",
        &input[..at],
        &input[at..]
    ))
}

/// Index of a family in `[IPv4, IPv6]` arrays.
fn slot(family: Family) -> usize {
    match family {
        Family::V4 => 0,
        Family::V6 => 1,
    }
}

/// Name the rule behind a failed restore: a missing cgroup first (iptables-legacy reports it
/// only as a failed `COMMIT`), then the line the tool points at.
fn explain(
    e: IptablesError,
    family: Family,
    input: &str,
    cgroup_root: Option<std::path::PathBuf>,
) -> IptablesError {
    let IptablesError::Tool { binary, stderr, .. } = &e else {
        return e;
    };
    if let Some(root) = cgroup_root {
        for (rule, path) in restore::cgroup_paths(input) {
            if !root.join(path.trim_start_matches('/')).exists() {
                return IptablesError::MissingCgroup {
                    rule,
                    path: path.trim_start_matches('/').to_owned(),
                    root,
                };
            }
        }
    }
    let line = restore::failed_line(stderr);
    let text = line.and_then(|n| input.lines().nth(n.checked_sub(1)?));
    if let Some(chain) = text.and_then(|t| t.strip_prefix("-N ")) {
        return IptablesError::StalePlan {
            chain: chain.trim().to_owned(),
            family: restore::label(family),
        };
    }
    if let Some(line) = line
        && let Some((rule, text)) = restore::line_owner(input, line)
    {
        return IptablesError::RuleRefused {
            binary: binary.clone(),
            rule,
            family: restore::label(family),
            line,
            text,
            stderr: stderr.clone(),
        };
    }
    e
}

impl Backend for IptablesBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    /// The restore files that install `ruleset` where zt owns nothing yet.
    fn render(&self, ruleset: &Ruleset) -> Result<Artifact, Error> {
        let desired = self.desired(ruleset)?;
        let none = Owned::default();
        Ok(restore::artifact(
            [&none, &none],
            [&desired.v4, &desired.v6],
        ))
    }

    /// Reads both families, diffs by entry name, and returns as artifact the exact restore
    /// inputs apply will run (jumps inserted only where absent, stale chains removed).
    fn plan(&mut self, ruleset: &Ruleset) -> Result<Plan, Error> {
        let desired = self.desired(ruleset)?;
        self.check_cgroups(ruleset)?;
        let before = self.observe()?;
        let diff = Self::diff(&before, &desired);
        let artifact = restore::artifact([&before[0], &before[1]], [&desired.v4, &desired.v6]);
        self.planned = Some(Planned {
            artifact: artifact.clone(),
            before,
        });
        Ok(Plan {
            backend: NAME.to_owned(),
            ruleset: ruleset.clone(),
            artifact,
            diff,
        })
    }

    /// One `iptables-restore --noflush` and one `ip6tables-restore --noflush`.
    ///
    /// Applying the plan this backend made last uses the state that plan read (as a snapshot
    /// and to decide which jumps to insert) instead of reading the kernel again; the CLI holds
    /// its lock from plan to apply, so only zt could have changed zt's chains in between.
    /// Any other plan is re-rendered against a fresh read.
    fn apply(&mut self, plan: &Plan) -> Result<Snapshot, Error> {
        if plan.backend != NAME {
            return Err(Error::Backend {
                backend: NAME,
                message: format!(
                    "this plan was made by the {} backend and cannot be applied with iptables",
                    plan.backend
                ),
                source: None,
            });
        }
        let planned = self.planned.take().filter(|p| p.artifact == plan.artifact);
        let (artifact, before) = match planned {
            Some(p) => (p.artifact, p.before),
            None => {
                let desired = self.desired(&plan.ruleset)?;
                let before = self.observe()?;
                let artifact =
                    restore::artifact([&before[0], &before[1]], [&desired.v4, &desired.v6]);
                (artifact, before)
            }
        };
        let snapshot = self.snapshot_of(&before)?;
        if plan.is_empty() {
            return Ok(snapshot);
        }
        let mut files = artifact.files.into_iter().map(|f| Some(f.contents));
        let inputs = [files.next().flatten(), files.next().flatten()];
        self.install(inputs, &before)?;
        Ok(snapshot)
    }

    fn snapshot(&mut self) -> Result<Snapshot, Error> {
        let now = self.observe()?;
        self.snapshot_of(&now)
    }

    fn verify(&mut self, ruleset: &Ruleset) -> Result<Drift, Error> {
        let desired = self.desired(ruleset)?;
        let now = self.observe()?;
        if now.iter().all(Owned::is_empty) {
            return Ok(Drift {
                items: vec![DriftItem {
                    kind: DriftKind::Gone,
                    subject: format!("{}-* chains", self.prefix.as_str()),
                    detail: format!(
                        "iptables-{}: no zt chain and no jump rule in the IPv4 or IPv6 filter table",
                        self.variant
                    ),
                }],
            });
        }
        Ok(Drift::from_changes(Self::diff(&now, &desired).changes))
    }

    /// Restores the snapshot's chains and jumps (one restore per family that differs); a
    /// snapshot of nothing is a flush.
    fn rollback(&mut self, snapshot: &Snapshot) -> Result<(), Error> {
        snapshot.check_backend(NAME)?;
        self.planned = None;
        let Some(content) = &snapshot.content else {
            return self.flush();
        };
        let record: Record = serde_json::from_str(content).map_err(IptablesError::from)?;
        if record.variant != self.variant || record.prefix != self.prefix.as_str() {
            return Err(IptablesError::SnapshotOwner {
                taken: format!(
                    "iptables-{}, chain prefix {}",
                    record.variant, record.prefix
                ),
                current: format!(
                    "iptables-{}, chain prefix {}",
                    self.variant,
                    self.prefix.as_str()
                ),
            }
            .into());
        }
        let target = record.targets();
        let now = self.observe()?;
        let inputs = [Family::V4, Family::V6].map(|f| {
            let (n, t) = (&now[slot(f)], &target[slot(f)]);
            (n != t).then(|| restore::transition(f, n, t))
        });
        self.install(inputs, &now)
    }

    fn status(&mut self) -> Result<Status, Error> {
        let [v4, v6] = self.kernel.save_both()?;
        let dumps = [save::parse(&v4)?, save::parse(&v6)?];
        let installed = dumps.iter().any(|d| !d.owned(&self.prefix).is_empty());
        Ok(Status {
            backend: NAME.to_owned(),
            installed,
            counters: plan::counters([&dumps[0], &dumps[1]], &self.prefix),
        })
    }

    /// Deletes the jumps, empties and deletes zt's chains; families where zt owns nothing are
    /// not written at all.
    fn flush(&mut self) -> Result<(), Error> {
        self.planned = None;
        let now = self.observe()?;
        let none = Owned::default();
        let inputs = [Family::V4, Family::V6].map(|f| {
            let n = &now[slot(f)];
            (!n.is_empty()).then(|| restore::transition(f, n, &none))
        });
        self.install(inputs, &now)
    }
}

#[cfg(test)]
mod tests {
    //! The backend's flows over a small in-memory iptables that applies restore inputs
    //! atomically and prints `iptables-save` output.

    use super::*;
    use save::tokenize;
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};
    use zt_core::{ChangeKind, Policy, RuleBuilder, StaticResolver};

    /// One family's filter table: chains in save order (built-ins first) with their rules.
    #[derive(Clone, Debug, Default, PartialEq)]
    struct Table {
        builtin: BTreeMap<String, Vec<Vec<String>>>,
        user: BTreeMap<String, Vec<Vec<String>>>,
    }

    impl Table {
        fn new() -> Self {
            let mut t = Self::default();
            for c in ["INPUT", "FORWARD", "OUTPUT"] {
                t.builtin.insert(c.to_owned(), Vec::new());
            }
            t
        }

        fn chain(&mut self, name: &str) -> Result<&mut Vec<Vec<String>>, String> {
            match self.builtin.get_mut(name) {
                Some(c) => Ok(c),
                None => self.user.get_mut(name).ok_or(format!("no chain {name}")),
            }
        }

        fn save(&self) -> String {
            let mut s = String::from("# Generated by fake\n*filter\n");
            for c in ["INPUT", "FORWARD", "OUTPUT"] {
                s.push_str(&format!(":{c} ACCEPT [0:0]\n"));
            }
            for c in self.user.keys() {
                s.push_str(&format!(":{c} - [0:0]\n"));
            }
            let builtin = ["INPUT", "FORWARD", "OUTPUT"].map(|c| (c, &self.builtin[c]));
            let user = self.user.iter().map(|(c, r)| (c.as_str(), r));
            for (chain, rules) in builtin.into_iter().chain(user) {
                for r in rules {
                    let rule = owned::Rule::new(r.clone());
                    s.push_str(&format!("[1:60] -A {chain} {}\n", rule.line()));
                }
            }
            s.push_str("COMMIT\n");
            s
        }

        /// Apply a restore input in `--noflush` mode, all or nothing.
        fn restore(&mut self, input: &str) -> Result<(), String> {
            let mut t = self.clone();
            for (n, line) in input.lines().enumerate() {
                t.command(line.trim())
                    .map_err(|e| format!("line {}: {e}", n + 1))?;
            }
            *self = t;
            Ok(())
        }

        fn command(&mut self, line: &str) -> Result<(), String> {
            if line.is_empty() || line.starts_with('#') || line == "*filter" || line == "COMMIT" {
                return Ok(());
            }
            if let Some(decl) = line.strip_prefix(':') {
                let name = decl.split_whitespace().next().unwrap_or_default();
                self.user.insert(name.to_owned(), Vec::new());
                return Ok(());
            }
            let mut tok = tokenize(line)?;
            if tok.first().is_some_and(|t| t.starts_with('[')) {
                tok.remove(0);
            }
            let verb = tok.remove(0);
            let chain = tok.remove(0);
            match verb.as_str() {
                "-A" => self.chain(&chain)?.push(tok),
                "-N" if self.user.contains_key(&chain) => {
                    return Err("Chain already exists.".to_owned());
                }
                "-N" => {
                    self.user.insert(chain, Vec::new());
                }
                "-I" => {
                    tok.remove(0);
                    self.chain(&chain)?.insert(0, tok);
                }
                "-D" => {
                    let rules = self.chain(&chain)?;
                    let i = rules.iter().position(|r| *r == tok).ok_or("no such rule")?;
                    rules.remove(i);
                }
                "-X" => {
                    let referenced = self
                        .builtin
                        .values()
                        .chain(self.user.values())
                        .flatten()
                        .any(|r| r.last() == Some(&chain));
                    if referenced || self.user.remove(&chain).is_none_or(|r| !r.is_empty()) {
                        return Err(format!("cannot delete {chain}"));
                    }
                }
                _ => return Err(format!("unknown {verb}")),
            }
            Ok(())
        }
    }

    #[derive(Debug, Default)]
    struct State {
        tables: [Table; 2],
        restores: usize,
        fail_v6: bool,
        cgroup_root: Option<std::path::PathBuf>,
    }

    #[derive(Clone)]
    struct Fake(Arc<Mutex<State>>);

    impl Kernel for Fake {
        fn save_both(&self) -> Result<[String; 2], IptablesError> {
            let s = self.0.lock().unwrap();
            Ok([s.tables[0].save(), s.tables[1].save()])
        }

        fn restore(&self, family: Family, input: &str) -> Result<(), IptablesError> {
            let mut s = self.0.lock().unwrap();
            s.restores += 1;
            let fail = s.fail_v6 && family == Family::V6;
            let result = if fail {
                Err("line 4: RULE_APPEND failed".to_owned())
            } else {
                s.tables[slot(family)].restore(input)
            };
            result.map_err(|stderr| IptablesError::Tool {
                binary: "fake-restore".to_owned(),
                status: "exit status: 4".to_owned(),
                stderr,
            })
        }

        fn cgroup_root(&self) -> Option<std::path::PathBuf> {
            self.0.lock().unwrap().cgroup_root.clone()
        }
    }

    /// A host where another tool already has a chain, a jump to it and a rule in OUTPUT.
    fn host() -> (IptablesBackend, Fake) {
        let mut t = Table::new();
        t.user.insert(
            "DOCKER-USER".to_owned(),
            vec![vec!["-j".into(), "RETURN".into()]],
        );
        t.builtin
            .get_mut("FORWARD")
            .unwrap()
            .push(vec!["-j".into(), "DOCKER-USER".into()]);
        t.builtin.get_mut("OUTPUT").unwrap().push(vec![
            "-o".into(),
            "eth0".into(),
            "-j".into(),
            "ACCEPT".into(),
        ]);
        let fake = Fake(Arc::new(Mutex::new(State {
            tables: [t.clone(), t],
            ..State::default()
        })));
        let backend = IptablesBackend::with_kernel(
            Variant::Nft,
            ChainPrefix::default(),
            Box::new(fake.clone()),
        );
        (backend, fake)
    }

    fn ruleset(port: u16) -> Ruleset {
        Policy::builder()
            .rule(
                RuleBuilder::egress("web")
                    .uid(1001)
                    .to_host("127.0.0.1")
                    .to_host("::1")
                    .port(port)
                    .protocol(zt_core::Protocol::Tcp)
                    .allow(),
            )
            .build(&StaticResolver::new())
            .unwrap()
            .policy
            .ruleset()
    }

    fn install(b: &mut IptablesBackend, port: u16) -> Snapshot {
        let plan = b.plan(&ruleset(port)).unwrap();
        b.apply(&plan).unwrap()
    }

    /// The IPv4 OUTPUT chain (cloned: no lock is held after this returns).
    fn output_v4(fake: &Fake) -> Vec<Vec<String>> {
        fake.0.lock().unwrap().tables[0].builtin["OUTPUT"].clone()
    }

    fn foreign(fake: &Fake) -> Vec<String> {
        let s = fake.0.lock().unwrap();
        s.tables
            .iter()
            .flat_map(|t| {
                t.save()
                    .lines()
                    .filter(|l| !l.contains("ZT-"))
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn apply_installs_both_families_and_a_second_plan_is_empty() {
        let (mut b, fake) = host();
        let others = foreign(&fake);
        let plan = b.plan(&ruleset(6379)).unwrap();
        assert!(plan.diff.changes.iter().all(|c| c.kind == ChangeKind::Add));
        let snapshot = b.apply(&plan).unwrap();
        assert_eq!(snapshot.content, None, "zt owned nothing before");
        assert_eq!(fake.0.lock().unwrap().restores, 2);
        assert_eq!(foreign(&fake), others, "other tools' rules are untouched");
        let output = output_v4(&fake);
        assert_eq!(output[0].last().map(String::as_str), Some("ZT-OUTPUT"));
        assert_eq!(output.len(), 2);

        let again = b.plan(&ruleset(6379)).unwrap();
        assert!(again.is_empty(), "{}", again.diff);
        b.apply(&again).unwrap();
        assert_eq!(
            fake.0.lock().unwrap().restores,
            2,
            "an empty plan writes nothing"
        );
        assert!(b.verify(&ruleset(6379)).unwrap().is_empty());
    }

    #[test]
    fn an_update_names_the_changed_rule_and_rollback_restores_the_snapshot() {
        let (mut b, fake) = host();
        let first = b.plan(&ruleset(6379)).unwrap();
        b.apply(&first).unwrap();
        let installed = fake.0.lock().unwrap().tables.clone();

        let update = b.plan(&ruleset(6380)).unwrap();
        let subjects: Vec<&str> = update
            .diff
            .changes
            .iter()
            .map(|c| c.subject.as_str())
            .collect();
        assert_eq!(subjects, vec!["web"]);
        assert!(
            !update.artifact.files[0].contents.contains("-I OUTPUT"),
            "jump present: not inserted again"
        );
        let snapshot = b.apply(&update).unwrap();
        let drift = b.verify(&ruleset(6379)).unwrap();
        assert_eq!(drift.items.len(), 1);
        assert_eq!(drift.items[0].subject, "web");

        b.rollback(&snapshot).unwrap();
        assert_eq!(fake.0.lock().unwrap().tables, installed);
    }

    #[test]
    fn a_failed_ipv6_restore_puts_ipv4_back() {
        let (mut b, fake) = host();
        install(&mut b, 6379);
        let before = fake.0.lock().unwrap().tables.clone();
        fake.0.lock().unwrap().fail_v6 = true;
        let plan = b.plan(&ruleset(6380)).unwrap();
        let err = b.apply(&plan).unwrap_err().to_string();
        assert!(err.contains("IPv4 rules were restored"), "{err}");
        assert!(
            err.contains("rule 'web'") || err.contains("line 4"),
            "{err}"
        );
        assert_eq!(
            fake.0.lock().unwrap().tables,
            before,
            "both families as before"
        );
    }

    #[test]
    fn flush_removes_zt_and_nothing_else_and_status_sums_counters() {
        let (mut b, fake) = host();
        let pristine = fake.0.lock().unwrap().tables.clone();
        install(&mut b, 6379);
        let status = b.status().unwrap();
        assert!(status.installed);
        let web = status.counter("web").unwrap();
        assert_eq!((web.packets, web.bytes), (2, 120), "one rule per family");
        b.flush().unwrap();
        assert_eq!(fake.0.lock().unwrap().tables, pristine);
        assert!(!b.status().unwrap().installed);
        assert_eq!(
            b.verify(&ruleset(6379)).unwrap().items[0].kind,
            DriftKind::Gone
        );
        let restores = fake.0.lock().unwrap().restores;
        b.flush().unwrap();
        assert_eq!(
            fake.0.lock().unwrap().restores,
            restores,
            "nothing to flush, nothing written"
        );
    }

    #[test]
    fn a_jump_pushed_down_by_another_tool_is_drift_and_is_moved_back_to_the_top() {
        let (mut b, fake) = host();
        install(&mut b, 6379);
        fake.0.lock().unwrap().tables[0]
            .builtin
            .get_mut("OUTPUT")
            .unwrap()
            .insert(
                0,
                vec!["-o".into(), "docker0".into(), "-j".into(), "ACCEPT".into()],
            );
        let drift = b.verify(&ruleset(6379)).unwrap();
        assert_eq!(drift.items.len(), 1);
        assert_eq!(drift.items[0].subject, "zt:jump");
        install(&mut b, 6379);
        let output = output_v4(&fake);
        assert_eq!(output[0].last().map(String::as_str), Some("ZT-OUTPUT"));
        assert_eq!(output.len(), 3);
    }

    #[test]
    fn a_plan_whose_state_changed_before_apply_is_refused_whole() {
        let (mut b, fake) = host();
        let plan = b.plan(&ruleset(6379)).unwrap();
        let mut other = IptablesBackend::with_kernel(
            Variant::Nft,
            ChainPrefix::default(),
            Box::new(fake.clone()),
        );
        other.apply(&plan).unwrap();
        let installed = fake.0.lock().unwrap().tables.clone();
        let err = b.apply(&plan).unwrap_err().to_string();
        assert!(err.contains("plan again"), "{err}");
        assert_eq!(
            fake.0.lock().unwrap().tables,
            installed,
            "nothing written, no second jump"
        );
    }

    #[test]
    fn snapshots_from_another_variant_are_refused() {
        let (mut b, _) = host();
        let record = Record::of(
            Variant::Legacy,
            "ZT",
            &[Owned::default(), {
                let mut o = Owned::default();
                o.chains.insert("ZT-OUTPUT".into(), vec![]);
                o
            }],
        );
        let snapshot = Snapshot {
            backend: NAME.to_owned(),
            content: Some(serde_json::to_string(&record).unwrap()),
        };
        let err = b.rollback(&snapshot).unwrap_err().to_string();
        assert!(err.contains("iptables-legacy"), "{err}");
    }

    #[test]
    fn a_cgroup_rule_needs_its_cgroup_to_exist_at_plan_time() {
        let (mut b, fake) = host();
        let policy = Policy::builder()
            .rule(RuleBuilder::egress("svc").cgroup("zt.slice/svc").allow())
            .build(&StaticResolver::new())
            .unwrap()
            .policy;
        let err = b.plan(&policy.ruleset()).unwrap_err().to_string();
        assert!(
            err.contains("rule 'svc'") && err.contains("no cgroup v2"),
            "{err}"
        );
        let root = std::env::temp_dir().join(format!("zt-iptables-cg-{}", std::process::id()));
        fake.0.lock().unwrap().cgroup_root = Some(root.clone());
        let err = b.plan(&policy.ruleset()).unwrap_err().to_string();
        assert!(
            err.contains("rule 'svc'") && err.contains("zt.slice/svc"),
            "{err}"
        );
        std::fs::create_dir_all(root.join("zt.slice/svc")).unwrap();
        let plan = b.plan(&policy.ruleset());
        std::fs::remove_dir_all(&root).unwrap();
        assert!(
            plan.unwrap().artifact.files[0]
                .contents
                .contains("--path /zt.slice/svc")
        );
    }

    #[test]
    fn legacy_refuses_a_log_rate_it_cannot_hold() {
        let policy = Policy::builder()
            .log_rate("1/day")
            .build(&StaticResolver::new())
            .unwrap()
            .policy;
        let legacy = IptablesBackend::with_kernel(
            Variant::Legacy,
            ChainPrefix::default(),
            Box::new(host().1),
        );
        let err = legacy.render(&policy.ruleset()).unwrap_err().to_string();
        assert!(err.contains("zt:log") && err.contains("1/day"), "{err}");
        assert!(host().0.render(&policy.ruleset()).is_ok());
    }
}
