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
//! exact restore input apply runs: the plan carries what it read, apply writes from that, and
//! the input itself refuses (with `-N`) to create a chain that has appeared since, so a stale
//! plan fails whole instead of doubling a jump. A family whose state does not change is not
//! written at all.
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
use snapshot::Record;
use zt_core::{
    Artifact, Boot, Capabilities, Change, Drift, Driver, Error, Family, Identity, Matcher,
    PersistFile, Persistence, Ruleset, Status,
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

/// The iptables backend. It implements [`zt_core::Backend`] through [`Driver`]: its kernel
/// state is zt's chains and jumps in the IPv4 and the IPv6 `filter` table.
pub struct IptablesBackend {
    variant: Variant,
    prefix: ChainPrefix,
    kernel: Box<dyn Kernel>,
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
        }
    }

    /// The variant in use.
    pub fn variant(&self) -> Variant {
        self.variant
    }

    /// Refuse what this variant cannot hold: iptables-legacy's limit match overflows on a log
    /// rate of 1/day.
    fn check_variant(&self, ruleset: &Ruleset) -> Result<(), Error> {
        if self.variant != Variant::Legacy {
            return Ok(());
        }
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
        Ok(())
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
}

impl Driver for IptablesBackend {
    const NAME: &'static str = NAME;
    /// IPv4, IPv6.
    type State = [Owned; 2];

    fn supports(&self) -> Capabilities {
        Capabilities::all()
    }

    /// Both families' `filter` tables (`iptables-save -c`, the two tools at once).
    fn read(&mut self) -> Result<[Owned; 2], Error> {
        let [v4, v6] = self.kernel.save_both()?;
        Ok([
            save::parse(&v4)?.owned(&self.prefix),
            save::parse(&v6)?.owned(&self.prefix),
        ])
    }

    fn desired(&self, ruleset: &Ruleset) -> Result<[Owned; 2], Error> {
        self.check_variant(ruleset)?;
        let rendered = render::render(ruleset, &self.prefix)?;
        self.check_cgroups(ruleset)?;
        Ok([rendered.v4, rendered.v6])
    }

    fn nothing(&self) -> [Owned; 2] {
        [Owned::default(), Owned::default()]
    }

    fn owns_nothing(&self, state: &[Owned; 2]) -> bool {
        state.iter().all(Owned::is_empty)
    }

    fn diff(&self, current: &[Owned; 2], desired: &[Owned; 2]) -> Vec<Change> {
        let changes = [Family::V4, Family::V6]
            .into_iter()
            .flat_map(|f| plan::family_changes(f, &current[slot(f)], &desired[slot(f)]));
        plan::merge(changes)
    }

    fn drift(&self, current: &[Owned; 2], desired: &[Owned; 2]) -> Drift {
        if self.owns_nothing(current) {
            return Drift::gone(
                format!("{}-* chains", self.prefix.as_str()),
                format!(
                    "iptables-{}: no zt chain and no jump rule in the IPv4 or IPv6 filter table",
                    self.variant
                ),
            );
        }
        Drift::from_changes(self.diff(current, desired))
    }

    /// One `iptables-restore --noflush` per family that changes (IPv4 first); inside it zt's
    /// chains are declared (which empties them) and refilled. A failed IPv6 restore puts IPv4
    /// back.
    fn write(&mut self, from: &[Owned; 2], to: &[Owned; 2]) -> Result<(), Error> {
        let inputs = [Family::V4, Family::V6].map(|f| {
            let (now, want) = (&from[slot(f)], &to[slot(f)]);
            (now != want).then(|| restore::transition(f, now, want))
        });
        self.install(inputs, from)
    }

    /// The restore inputs apply runs: jumps inserted only where absent, stale chains removed.
    fn describe(&self, _: &Ruleset, from: &[Owned; 2], to: &[Owned; 2]) -> Result<Artifact, Error> {
        Ok(restore::artifact([&from[0], &from[1]], [&to[0], &to[1]]))
    }

    fn encode(&self, state: &[Owned; 2]) -> Result<String, Error> {
        let record = Record::of(self.variant, self.prefix.as_str(), state);
        Ok(serde_json::to_string(&record).map_err(IptablesError::from)?)
    }

    /// Refuses a snapshot another variant or chain prefix took: restoring it here would
    /// install chains the other variant cannot see.
    fn decode(&self, content: &str) -> Result<[Owned; 2], Error> {
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
        Ok(record.targets())
    }

    fn inspect(&mut self) -> Result<Status, Error> {
        let [v4, v6] = self.kernel.save_both()?;
        let dumps = [save::parse(&v4)?, save::parse(&v6)?];
        let installed = dumps.iter().any(|d| !d.owned(&self.prefix).is_empty());
        Ok(Status {
            backend: NAME.to_owned(),
            installed,
            counters: plan::counters([&dumps[0], &dumps[1]], &self.prefix),
        })
    }

    /// The restore files under `/etc/zt` (IPv4 and IPv6: zt's chains, the jumps to them and
    /// the rules), and a unit that loads them with this variant's `iptables-restore
    /// --noflush`, so other tools' rules stay.
    fn boot(&self, ruleset: &Ruleset, _: &Boot) -> Result<Persistence, Error> {
        let desired = self.desired(ruleset)?;
        let artifact = self.describe(ruleset, &self.nothing(), &desired)?;
        let mut files = Vec::new();
        let mut commands = Vec::new();
        for (file, family) in artifact.files.iter().zip([Family::V4, Family::V6]) {
            let path = std::path::PathBuf::from(zt_core::persist::PERSIST_DIR)
                .join(format!("iptables-{}", file.name));
            commands.push(format!(
                "/usr/sbin/{} --noflush {}",
                self.variant.restore(family),
                path.display()
            ));
            files.push(PersistFile {
                path,
                mode: 0o600,
                contents: file.contents.clone(),
            });
        }
        let (unit, link) = zt_core::persist::systemd_unit(
            "zt-iptables.service",
            "zt: restore the iptables policy (zt's ZT-* chains)",
            &commands,
        );
        files.push(unit);
        Ok(Persistence {
            files,
            links: vec![link],
        })
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

#[cfg(test)]
mod tests;
