//! The command line, as clap definitions: the single source of `--help`, the shell completions
//! and the man page (`zt completions`, `zt man`).

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// zt: identity-based host firewall policy, applied atomically, verified, reversible.
///
/// zt reads a YAML policy ("only web-user may reach redis on 127.0.0.1:6379; everything else
/// is denied, IPv4 and IPv6; SSH is never cut off"), checks it, and installs it into the
/// kernel through a backend (nftables by default) in one transaction. It owns only its own
/// objects: other tools' rules are left untouched.
///
/// Exit codes: 0 success; 1 invalid policy, failed verification, or a change not kept
/// (unconfirmed, nothing to confirm or roll back); 2 usage error; 3 kernel, backend or
/// system error.
#[derive(Debug, Parser)]
#[command(name = "zt", version, max_term_width = 100)]
pub struct Cli {
    /// Options every command takes.
    #[command(flatten)]
    pub global: Global,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct Global {
    /// The firewall backend.
    #[arg(long, global = true, value_enum, default_value_t = BackendName::Nft, env = "ZT_BACKEND")]
    pub backend: BackendName,
    /// Where zt keeps the last applied policy, the rollback snapshot, the lock and the audit
    /// trail.
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        env = "ZT_STATE_DIR",
        default_value = "/var/lib/zt"
    )]
    pub state_dir: PathBuf,
    /// Print one JSON document on standard output instead of text (errors included).
    #[arg(long, global = true)]
    pub json: bool,
    /// Say what is being done, with timings, on standard error.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// Fail at once instead of waiting when another zt command holds the lock.
    #[arg(long, global = true)]
    pub no_wait: bool,
    /// iptables: the variant to drive (default: the one the host uses).
    #[arg(long, global = true, value_enum, value_name = "VARIANT")]
    pub iptables_variant: Option<IptablesVariant>,
    /// eBPF: the cgroup v2 directory whose processes the programs govern (default: the cgroup
    /// v2 root, i.e. every process on the host).
    #[arg(long, global = true, value_name = "DIR")]
    pub ebpf_cgroup: Option<PathBuf>,
    /// eBPF: the bpffs directory holding zt's pinned programs and maps.
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        default_value = "/sys/fs/bpf/zt"
    )]
    pub ebpf_pin_dir: PathBuf,
}

/// The iptables variants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum IptablesVariant {
    /// `iptables-legacy` (x_tables).
    Legacy,
    /// `iptables-nft` (nf_tables behind the iptables command line).
    Nft,
}

/// The backends zt can drive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BackendName {
    /// nftables: one `inet zt` table, replaced in one netlink transaction.
    Nft,
    /// iptables: zt's own `ZT-*` chains, one `iptables-restore` per family.
    Iptables,
    /// eBPF: cgroup connect/sendmsg programs deciding from maps (egress only).
    Ebpf,
}

impl BackendName {
    /// The name the backend reports (and the state directory uses).
    pub fn as_str(self) -> &'static str {
        match self {
            BackendName::Nft => "nft",
            BackendName::Iptables => "iptables",
            BackendName::Ebpf => "ebpf",
        }
    }
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate a policy and resolve its names; print the ordered ruleset.
    Check(PolicyFile),
    /// Show what `apply` would change, by policy rule name.
    Plan(PlanArgs),
    /// Validate, plan, apply atomically and verify; keep a snapshot for rollback.
    Apply(ApplyArgs),
    /// Keep the change that `apply --confirm` made.
    Confirm,
    /// Undo the last apply (or the change awaiting confirmation).
    Rollback,
    /// The rules as installed, counters per policy rule, drift against the last apply.
    Status,
    /// Exit 0 when the kernel enforces the policy, 1 with a drift report otherwise.
    Verify(PolicyFile),
    /// Remove everything zt owns; other tools' rules are untouched.
    Flush,
    /// Write what restores the policy at boot (the rendered rules and a systemd unit).
    Persist(PersistArgs),
    /// Summarize blocked attempts from the kernel log per user, destination and port.
    Audit(AuditArgs),
    /// Print a shell completion script.
    Completions(CompletionArgs),
    /// Print the man page (roff), or write one page per command into a directory.
    Man(ManArgs),
    /// Internal: the watchdog that rolls an unconfirmed change back.
    #[command(hide = true)]
    Watchdog(WatchdogArgs),
}

/// A policy file.
#[derive(Debug, Args)]
pub struct PolicyFile {
    /// The policy (YAML).
    #[arg(short, long, value_name = "FILE")]
    pub config: PathBuf,
}

/// `zt plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The policy.
    #[command(flatten)]
    pub policy: PolicyFile,
    /// Also print the exact kernel artifact (the nft script, restore files or map entries).
    #[arg(long)]
    pub show_artifact: bool,
    /// Exit 0 when nothing would change and 2 when something would.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Write every change of the diff (past 50 of a kind, the text diff is summarized).
    #[arg(long)]
    pub full_diff: bool,
}

/// `zt apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The policy.
    #[command(flatten)]
    pub policy: PolicyFile,
    /// Plan and print, change nothing.
    #[arg(long, conflicts_with = "confirm")]
    pub dry_run: bool,
    /// Roll the change back unless `zt confirm` runs within SECONDS (also when this process or
    /// its terminal is gone). Waits in the foreground; on a terminal, typing `yes` confirms.
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u32).range(1..=86_400))]
    pub confirm: Option<u32>,
    /// Write every change of the diff (past 50 of a kind, the text diff is summarized).
    #[arg(long)]
    pub full_diff: bool,
    /// Whose policy file to accept.
    #[command(flatten)]
    pub trust: TrustArgs,
}

/// Whose policy file a change accepts.
#[derive(Debug, Args)]
pub struct TrustArgs {
    /// Accept a policy file that belongs to a user other than root and you, and directories on
    /// its path that belong to that user. Without it they are refused: whoever owns them can
    /// change what zt enforces as root, at any time. Files and directories every user may
    /// write are refused all the same.
    #[arg(long)]
    pub trust_owner: bool,
}

impl TrustArgs {
    /// The engine's option.
    pub fn trust(&self) -> zt_engine::Trust {
        if self.trust_owner {
            zt_engine::Trust::FileOwner
        } else {
            zt_engine::Trust::RootAndCaller
        }
    }
}

/// `zt persist`.
#[derive(Debug, Args)]
pub struct PersistArgs {
    /// The policy.
    #[command(flatten)]
    pub policy: PolicyFile,
    /// Whose policy file to accept.
    #[command(flatten)]
    pub trust: TrustArgs,
    /// Write under DIR instead of `/` (an image being built, a chroot, a test).
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
}

/// `zt audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only attempts at or after TIME: `30m`, `2h`, `1d`, `today`, `yesterday`,
    /// `2026-11-23 19:00`, or an RFC 3339 timestamp.
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Read this file (a kern.log or a saved `dmesg`/`journalctl -k`) instead of the system's
    /// kernel log.
    #[arg(long, value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// The log prefix to look for (default: the last applied policy's, else `ZT-BLOCKED: `).
    #[arg(long, value_name = "PREFIX")]
    pub prefix: Vec<String>,
}

/// `zt completions`.
#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `zt man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write `zt.1` and a page per command (`zt-apply.1`, …) into DIR instead of printing
    /// `zt.1`.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// `zt watchdog` (internal).
#[derive(Debug, Args)]
pub struct WatchdogArgs {
    /// The pending change it guards.
    #[arg(long)]
    pub token: String,
}
