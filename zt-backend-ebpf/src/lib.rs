//! # zt-backend-ebpf — enforce a zt Ruleset with cgroup socket programs and maps
//!
//! The backend that goes where netfilter cannot: a per-process decision at the moment a process
//! calls `connect()` or `sendmsg()`, O(1) in the number of rules of a group, and policy changes
//! that rewrite maps without reloading any program. It implements [`zt_core::Backend`] like the
//! nft and iptables backends, and is picked at run time the same way (`Box<dyn Backend>`).
//!
//! ```text
//! Ruleset ─render (pure)─▶ Rendered map entries ─Pinned (aya, bpffs)─▶ kernel
//! ```
//!
//! * **Kernel side** (`bpf/zt.bpf.c`, compiled with clang by `build.rs`, embedded with
//!   `aya::include_bytes_aligned!`): four `cgroup/sock_addr` programs — `connect4`,
//!   `connect6` (TCP, and UDP sockets that connect), `sendmsg4`, `sendmsg6` (unconnected UDP)
//!   — attached with `bpf_link`s to a cgroup v2 directory (default: the cgroup v2 root, so
//!   every process on the host). They decide from the caller's uid and primary gid
//!   (`bpf_get_current_uid_gid`), its cgroup (`bpf_get_current_ancestor_cgroup_id`), the
//!   destination address and port and the transport. A refused call fails with `EPERM`.
//! * **Rendering** ([`mod@render`]): the ruleset's egress entries become groups, member
//!   entries and LPM address lists that keep first-match semantics with CIDRs and port
//!   ranges; the module documentation explains the layout and why. [`Rendered::dump`] is the
//!   artifact `zt plan` shows.
//! * **Atomic updates** ([`layout`]): every entry is keyed by a generation (0/1). Apply fills
//!   the inactive generation and flips the one-element `zt_active` array; a program run reads
//!   the index once, so it sees one whole policy. The previous generation stays intact until
//!   the next apply clears it, so a program that read the old index just before the flip
//!   finishes on a consistent old policy. Apply on an unchanged policy writes nothing.
//! * **Pinning** ([`loader`]): programs, links and maps are pinned under zt's own bpffs
//!   directory (default `/sys/fs/bpf/zt`), so they outlive the process that applied them;
//!   flush detaches the links and removes exactly the pins zt created.
//! * **Observability**: per-rule call counters (a per-CPU array indexed by ruleset entry,
//!   named through the pinned rule table) for `status`, and a ring buffer of refused calls
//!   (uid, gid, pid, command, cgroup, destination, port, rule) that [`EbpfBackend::drain_audit`]
//!   drains for `audit`.
//!
//! ## What this backend enforces, and what it cannot
//!
//! It enforces the **egress** policy rules (`allow`, `deny`, `reject`; uid, gid, cgroup or any
//! sender; IPv4 and IPv6 CIDRs; ports and ranges; `tcp`, `udp`, `both`, `any`) and the egress
//! half of `zt:default`, for processes in the attached cgroup and below. Differences from the
//! reference semantics ([`zt_core::Ruleset::evaluate`]), all by construction of the hooks:
//!
//! * **`deny` and `reject` both refuse with `EPERM`.** A socket hook can only allow or refuse
//!   the call: there is no TCP reset and no ICMP unreachable, and nothing times out — the
//!   caller learns at once.
//! * **Ingress rules are refused at plan time** ([`zt_core::Error::Unsupported`]: "it enforces
//!   egress at connect/sendmsg only; use the nft or iptables backend for inbound rules").
//!   Inbound traffic — zt's ingress prologue (`zt:loopback`, `zt:ssh`) and the ingress half of
//!   `zt:default` — is left to the host firewall.
//! * **ICMP is not enforced; ICMP rules are refused at plan time.** Raw sockets and the
//!   `sendto()` of an unconnected ping socket (`SOCK_DGRAM`, `IPPROTO_ICMP`) never reach these
//!   hooks. A ping socket's `connect()` does (checked on 6.18): it is decided as protocol
//!   "other", by `any` rules and the default. Protocol `any` therefore covers TCP, UDP and the
//!   connect of other socket types, never raw packets.
//! * **No conntrack.** A connect is always a new flow, so `zt:invalid`, `zt:established` and
//!   `zt:ssh-replies` never apply. For unconnected UDP, every `sendmsg()` is decided on its
//!   own: the replies of a UDP *server* (sent with `sendto()`) are new sends here, decided by
//!   the server's egress rules, where netfilter would accept them as established.
//! * **Only socket calls are seen**: packets no process sends through connect/sendmsg —
//!   forwarded traffic, kernel-generated packets, raw sockets, a connected UDP socket's
//!   `send()` after its (decided) `connect()` — are not filtered. An established connection
//!   survives a policy change, as it does under netfilter with `preserve_established`.
//! * **Identity is the caller's, at call time**: the *real* uid and primary gid of the thread
//!   calling connect/sendmsg and its cgroup now, where netfilter matches the socket's owner
//!   (the effective uid at socket creation) and the socket's cgroup. They differ only for
//!   set-uid programs and for sockets passed between processes or created before a cgroup
//!   move. Cgroup levels count from the cgroup v2 root (processes inside a cgroup namespace
//!   included). A cgroup rule matches by cgroup *id*: the cgroup must exist at plan time, and a
//!   cgroup removed and re-created gets a new id (`verify` reports it).
//! * **IPv4-mapped IPv6 destinations** (`::ffff:a.b.c.d` on an IPv6 socket) are decided as
//!   the IPv4 address they leave as.
//! * **Logging**: no kernel log line. Every refusal, and every allowed call decided by a rule
//!   with `log: true`, is a record in the `zt_audit` ring buffer (not rate-limited; when the
//!   ring is full, records are counted in `zt_audit_lost`). Counters count calls, not packets;
//!   byte counts are 0.
//! * **Scope**: the programs run for processes in the attached cgroup and below; cgroup BPF
//!   is not scoped to network namespaces.
//!
//! ## Limits
//!
//! A policy may use at most [`layout::MAX_GROUPS`] groups, ruleset entry indexes below
//! [`layout::MAX_RULES`], and half of [`layout::MAX_MEMBERS`] member entries and of
//! [`layout::MAX_PREFIXES`] prefixes (the other half holds the previous generation during an
//! apply); a larger policy is refused at plan time with the count it needs.
//!
//! ## Building
//!
//! `build.rs` runs `clang -O2 -g -target bpf` on `bpf/zt.bpf.c`; Debian: `apt-get install clang
//! libbpf-dev`. A missing clang fails the build with that instruction.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod audit;
mod error;
pub mod kernel;
pub mod layout;
pub mod loader;
#[cfg(test)]
mod model;
pub mod render;
mod sys;

pub use audit::AuditRecord;
pub use error::EbpfError;
pub use kernel::{Attachment, Kernel, SocketHook, State};
pub use loader::Pinned;
pub use render::{CgroupIds, Effect, Rendered, render};

use std::path::PathBuf;
use zt_core::{
    Artifact, ArtifactFile, AuditEvent, AuditSource, Boot, Capabilities, Change, ChangeKind,
    Counter, Drift, Driver, Persistence, Ruleset, Status, Unit,
};

/// The backend's name, as `zt --backend ebpf` and snapshots spell it.
pub const NAME: &str = "ebpf";

/// zt's default bpffs pin directory.
pub const DEFAULT_PIN_DIR: &str = "/sys/fs/bpf/zt";

/// The name of the rendered artifact file.
pub const ARTIFACT_NAME: &str = "zt-ebpf-maps.txt";

/// The header of the rendered artifact: what the maps enforce and what they cannot.
pub const ARTIFACT_HEADER: &str = "\
# zt eBPF backend: map entries read by the cgroup programs connect4, connect6, sendmsg4, sendmsg6
#
# Enforced: egress connect() (TCP, connected UDP) and unconnected UDP sendmsg() of processes in
# the attached cgroup and below, by the caller's uid, primary gid and cgroup, the destination
# address and port, and the transport. A refused call fails with EPERM: deny and reject both
# refuse (no TCP reset, no ICMP unreachable).
#
# Not enforced here (left to the host firewall; use the nft or iptables backend for them):
#  - ingress: ingress rules are refused; zt:loopback, zt:ssh and the ingress half of
#    zt:default are not installed;
#  - ICMP: icmp rules are refused; raw sockets and unconnected ping sockets never reach these
#    hooks (a ping socket's connect() is decided as protocol \"other\": by `any` rules and the
#    default); `any` covers TCP, UDP and the connect of other socket types;
#  - conntrack: zt:invalid, zt:established, zt:ssh-replies never apply to a connect or send;
#    a UDP server's replies sent with sendto() are decided as new sends;
#  - traffic without a connect/sendmsg call (forwarded, kernel-generated, raw sockets);
#  - kernel log lines: refusals (and allowed calls of log: true rules) go to the zt_audit ring
#    buffer instead.
#
# Decision: walk the groups in order; in a group, look up (identity, transport, port) in the
# members; \"any address\" decides at once, \"list N\" looks the destination up in list N (the
# longest prefix wins; each prefix carries the first rule containing it). The first group that
# matches decides; if none does, the default.
";

/// Where the backend pins its objects and which cgroup it attaches to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// bpffs directory holding zt's pins (default [`DEFAULT_PIN_DIR`]).
    pub pin_dir: PathBuf,
    /// The cgroup v2 mount point; cgroup rules are paths below it.
    pub cgroup_root: PathBuf,
    /// The cgroup the programs attach to (default: `cgroup_root`, i.e. every process).
    pub attach_cgroup: PathBuf,
}

impl Options {
    /// Defaults for `cgroup_root`: pins under [`DEFAULT_PIN_DIR`], attached to the root.
    pub fn new(cgroup_root: impl Into<PathBuf>) -> Self {
        let cgroup_root = cgroup_root.into();
        Self {
            pin_dir: PathBuf::from(DEFAULT_PIN_DIR),
            attach_cgroup: cgroup_root.clone(),
            cgroup_root,
        }
    }

    /// Defaults for this host: the cgroup v2 mount [`cgroup_v2_root`] finds.
    pub fn detect() -> Result<Self, EbpfError> {
        cgroup_v2_root().map(Self::new).ok_or(EbpfError::NoCgroupV2)
    }

    /// Pin under `dir` instead (tests use one directory each).
    pub fn pin_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.pin_dir = dir.into();
        self
    }

    /// Attach to `cgroup` (an absolute path of a cgroup v2 directory) instead of the root.
    pub fn attach_to(mut self, cgroup: impl Into<PathBuf>) -> Self {
        self.attach_cgroup = cgroup.into();
        self
    }
}

/// The cgroup v2 mount point, where cgroup rules' paths and the attach cgroup live.
pub use zt_core::host::cgroup_v2_root;

/// The eBPF backend: a [`Kernel`] (normally [`Pinned`]) driven by pure rendering. It
/// implements [`zt_core::Backend`] through [`Driver`]: its kernel state is the active
/// generation of the pinned maps and where the four programs are attached.
pub struct EbpfBackend {
    kernel: Box<dyn Kernel>,
    /// Where it pins and attaches, when it runs on this host (boot units repeat them).
    options: Option<Options>,
}

/// The subject of the program units in plans and drift reports.
const PROGRAMS: &str = "cgroup programs";

impl EbpfBackend {
    /// The backend for `options`, talking to the kernel through bpffs pins.
    pub fn new(options: Options) -> Self {
        let kernel = Box::new(Pinned::new(
            options.pin_dir.clone(),
            options.cgroup_root.clone(),
            options.attach_cgroup.clone(),
        ));
        Self {
            kernel,
            options: Some(options),
        }
    }

    /// The backend for this host's defaults ([`Options::detect`]).
    pub fn detect() -> Result<Self, zt_core::Error> {
        Ok(Self::new(Options::detect()?))
    }

    /// The backend over any [`Kernel`] (unit tests pass an in-memory one).
    pub fn with_kernel(kernel: Box<dyn Kernel>) -> Self {
        Self {
            kernel,
            options: None,
        }
    }

    /// The map entries `ruleset` renders to (cgroup ids resolved on this host).
    pub fn render_maps(&self, ruleset: &Ruleset) -> Result<Rendered, EbpfError> {
        render(ruleset, &*self.kernel)
    }

    /// Take the records waiting in the audit ring buffer: refused calls, and allowed calls of
    /// rules with `log: true`, oldest first.
    pub fn drain_audit(&mut self) -> Result<Vec<AuditRecord>, zt_core::Error> {
        Ok(self.kernel.drain_audit()?)
    }
}

fn program_unit(hook: SocketHook) -> Unit {
    (PROGRAMS.to_owned(), format!("{hook} attached"))
}

/// Every hook attached where the backend attaches it (`Attached`), or none (`Missing`).
fn hooks(attachment: Attachment) -> Vec<(SocketHook, Attachment)> {
    SocketHook::ALL
        .into_iter()
        .map(|h| (h, attachment))
        .collect()
}

/// The artifact of rendered maps.
fn artifact(rendered: &Rendered) -> Artifact {
    Artifact {
        files: vec![ArtifactFile {
            name: ARTIFACT_NAME.to_owned(),
            contents: rendered.dump(),
        }],
    }
}

impl Driver for EbpfBackend {
    const NAME: &'static str = NAME;
    type State = State;

    fn supports(&self) -> Capabilities {
        render::CAPABILITIES
    }

    fn read(&mut self) -> Result<State, zt_core::Error> {
        Ok(self.kernel.read()?)
    }

    fn desired(&self, ruleset: &Ruleset) -> Result<State, zt_core::Error> {
        Ok(State {
            maps: Some(self.render_maps(ruleset)?),
            hooks: hooks(Attachment::Attached),
        })
    }

    fn nothing(&self) -> State {
        State {
            maps: None,
            hooks: hooks(Attachment::Missing),
        }
    }

    fn owns_nothing(&self, state: &State) -> bool {
        state.is_absent()
    }

    /// The maps' entries by rule, and each program's attachment.
    fn diff(&self, current: &State, desired: &State) -> Vec<Change> {
        let units = |state: &State| {
            let mut units = state.maps.as_ref().map(Rendered::units).unwrap_or_default();
            for (hook, attachment) in &state.hooks {
                match attachment {
                    Attachment::Attached => units.push(program_unit(*hook)),
                    Attachment::Elsewhere => units.push((
                        PROGRAMS.to_owned(),
                        format!("{hook} attached to another cgroup, or detached"),
                    )),
                    Attachment::Missing => {}
                }
            }
            units
        };
        let mut changes = zt_core::compare(&units(current), &units(desired));
        if changes.is_empty() && current.maps != desired.maps {
            changes.push(Change {
                kind: ChangeKind::Modify,
                subject: "ebpf maps".to_owned(),
                detail: "the same rules with a different layout (rule indexes or groups)"
                    .to_owned(),
            });
        }
        changes
    }

    fn drift(&self, current: &State, desired: &State) -> Drift {
        if current.is_absent() {
            return Drift::gone("ebpf", "no zt programs or maps are pinned");
        }
        Drift::from_changes(self.diff(current, desired))
    }

    /// Fill the inactive generation and flip the active index (loading, pinning and attaching
    /// the programs first where they are missing), or remove every pin.
    fn write(&mut self, _: &State, to: &State) -> Result<(), zt_core::Error> {
        match &to.maps {
            Some(maps) => self.kernel.install(maps)?,
            None => self.kernel.remove()?,
        }
        Ok(())
    }

    fn describe(&self, _: &Ruleset, _: &State, to: &State) -> Result<Artifact, zt_core::Error> {
        Ok(to.maps.as_ref().map(artifact).unwrap_or_default())
    }

    fn encode(&self, state: &State) -> Result<String, zt_core::Error> {
        Ok(serde_json::to_string(&state.maps).map_err(EbpfError::from)?)
    }

    fn decode(&self, content: &str) -> Result<State, zt_core::Error> {
        let maps: Rendered = serde_json::from_str(content).map_err(EbpfError::from)?;
        Ok(State {
            maps: Some(maps),
            hooks: hooks(Attachment::Attached),
        })
    }

    fn inspect(&mut self) -> Result<Status, zt_core::Error> {
        let state = self.kernel.read()?;
        let Some(maps) = &state.maps else {
            return Ok(Status {
                backend: NAME.to_owned(),
                installed: false,
                counters: Vec::new(),
            });
        };
        let indexes: Vec<u32> = maps.rules.iter().map(|r| r.index).collect();
        let counts = self.kernel.counters(&indexes)?;
        Ok(Status {
            backend: NAME.to_owned(),
            installed: state.attached(),
            counters: maps
                .rules
                .iter()
                .zip(counts)
                .map(|(rule, packets)| Counter {
                    name: rule.name.clone(),
                    packets,
                    bytes: 0,
                })
                .collect(),
        })
    }

    /// The policy itself and a unit that runs `zt apply` on it at boot: bpffs starts empty,
    /// and nothing but zt can load the programs and fill the maps.
    fn boot(&self, ruleset: &Ruleset, boot: &Boot) -> Result<Persistence, zt_core::Error> {
        // Refuse now what the backend would refuse at boot.
        self.render_maps(ruleset)?;
        let mut args = vec!["--backend".to_owned(), NAME.to_owned()];
        if let Some(options) = &self.options {
            args.push("--ebpf-pin-dir".to_owned());
            args.push(options.pin_dir.display().to_string());
            if options.attach_cgroup != options.cgroup_root {
                args.push("--ebpf-cgroup".to_owned());
                args.push(options.attach_cgroup.display().to_string());
            }
        }
        Ok(zt_core::persist::reapply_at_boot(
            NAME,
            &boot.zt,
            &args,
            &boot.policy_yaml,
        ))
    }

    /// The audit ring buffer: it writes no kernel log line.
    fn records(&mut self) -> Result<AuditSource, zt_core::Error> {
        let records = self.kernel.drain_audit()?;
        Ok(AuditSource::Records(
            records
                .iter()
                .map(|r| AuditEvent {
                    time: r.time.and_then(|t| jiff::Timestamp::try_from(t).ok()),
                    refused: r.effect == Effect::Refuse,
                    rule: r.rule.clone(),
                    uid: r.uid,
                    gid: r.gid,
                    pid: r.pid,
                    comm: r.comm.clone(),
                    protocol: r.protocol,
                    destination: r.destination,
                })
                .collect(),
        ))
    }
}

#[cfg(test)]
mod tests;
