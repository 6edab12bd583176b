//! The `zt-agent` command line: the agent itself (`run`) and the operator's commands on the
//! store (`push`, `remove`, `status`).

use crate::contract::Labels;
use crate::store::StoreOptions;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

/// zt's fleet agent and the operator's commands for the policy store (etcd v3).
///
/// Policies live at /zt/v1/policies/<name> as zt's YAML (with optional `selector:` and
/// `order:`); every host's agent enforces those that match its labels and reports to
/// /zt/v1/status/<host>. Exit codes: 0 done; 1 refused (invalid policy, no such policy);
/// 2 usage error; 3 the store or the kernel failed.
#[derive(Debug, Parser)]
#[command(name = "zt-agent", version, max_term_width = 100)]
pub struct Cli {
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Enforce this host's policies from the store until stopped (SIGTERM, SIGINT). Stopping
    /// never removes the kernel's rules.
    Run(RunArgs),
    /// Validate a policy file and write it to the store under NAME.
    Push(PushArgs),
    /// Delete policy NAME from the store.
    Remove(RemoveArgs),
    /// The fleet: one row per host, live or not, and whether it has converged on the store.
    Status(StatusArgs),
}

/// Where the store is, and how to authenticate (every command).
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// etcd endpoints, comma-separated.
    #[arg(
        long,
        env = "ZT_ETCD_ENDPOINTS",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:2379"
    )]
    pub endpoints: Vec<String>,
    /// CA certificate (PEM) for https endpoints.
    #[arg(long, env = "ZT_ETCD_CACERT")]
    pub cacert: Option<PathBuf>,
    /// Client certificate (PEM), for servers that require one.
    #[arg(long, env = "ZT_ETCD_CERT", requires = "key")]
    pub cert: Option<PathBuf>,
    /// The client certificate's key (PEM).
    #[arg(long, env = "ZT_ETCD_KEY", requires = "cert")]
    pub key: Option<PathBuf>,
    /// etcd user name (with --password-file or ZT_ETCD_PASSWORD).
    #[arg(long, env = "ZT_ETCD_USER")]
    pub user: Option<String>,
    /// File holding the etcd user's password (its first line).
    #[arg(long, env = "ZT_ETCD_PASSWORD_FILE")]
    pub password_file: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

impl StoreArgs {
    /// The connection options; the password is read here.
    pub fn options(&self) -> anyhow::Result<StoreOptions> {
        let password = match &self.password_file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
            ),
            None => std::env::var("ZT_ETCD_PASSWORD").ok(),
        };
        Ok(StoreOptions {
            endpoints: self.endpoints.clone(),
            cacert: self.cacert.clone(),
            cert: self.cert.clone(),
            key: self.key.clone(),
            user: self.user.clone(),
            password,
        })
    }
}

/// `zt-agent run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The store.
    #[command(flatten)]
    pub store: StoreArgs,
    /// This host's name in the store (default: the hostname).
    #[arg(long, env = "ZT_AGENT_HOST")]
    pub host: Option<String>,
    /// A label of this host, KEY=VALUE; repeat for more. Policies select hosts by labels.
    /// From a configuration file (a systemd EnvironmentFile such as /etc/default/zt-agent):
    /// ZT_AGENT_LABELS=role=web,tier=1.
    #[arg(
        long = "label",
        value_parser = parse_label,
        env = "ZT_AGENT_LABELS",
        value_delimiter = ','
    )]
    pub labels: Vec<(String, String)>,
    /// The firewall backend.
    #[arg(long, value_enum, default_value_t = BackendName::Nft, env = "ZT_BACKEND")]
    pub backend: BackendName,
    /// iptables variant (default: the one `iptables` is).
    #[arg(long, value_enum)]
    pub iptables_variant: Option<IptablesVariant>,
    /// The cgroup the eBPF backend attaches to (default: the cgroup v2 root).
    #[arg(long)]
    pub ebpf_cgroup: Option<PathBuf>,
    /// Where the eBPF backend pins its programs and maps.
    #[arg(long, default_value = "/sys/fs/bpf/zt")]
    pub ebpf_pin_dir: PathBuf,
    /// zt's state directory (the same as `zt`'s, so `zt status` shows what the agent applied).
    #[arg(long, env = "ZT_STATE_DIR", default_value = "/var/lib/zt")]
    pub state_dir: PathBuf,
    /// How often the kernel is checked for drift (e.g. 30s, 500ms, 2m).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub verify_interval: Duration,
    /// TTL of the host's live record, in seconds.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(i64).range(2..=3600))]
    pub lease_ttl: i64,
    /// How long changes are gathered before the policy is recomputed.
    #[arg(long, default_value = "100ms", value_parser = parse_duration)]
    pub coalesce: Duration,
    /// How often the watch is asked for progress; no word for twice this ends the
    /// connection (a half-open one is not waited on).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub heartbeat: Duration,
}

impl RunArgs {
    /// The labels as a map.
    pub fn labels(&self) -> Labels {
        self.labels.iter().cloned().collect()
    }
}

/// The backends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BackendName {
    /// nftables.
    Nft,
    /// iptables.
    Iptables,
    /// eBPF (egress only).
    Ebpf,
}

impl BackendName {
    /// The name backends report.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendName::Nft => "nft",
            BackendName::Iptables => "iptables",
            BackendName::Ebpf => "ebpf",
        }
    }
}

/// iptables variants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum IptablesVariant {
    /// iptables-legacy.
    Legacy,
    /// iptables-nft.
    Nft,
}

/// `zt-agent push`.
#[derive(Debug, Args)]
pub struct PushArgs {
    /// The policy's name in the store.
    pub name: String,
    /// The policy file (zt's YAML).
    pub file: PathBuf,
    /// The store.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// `zt-agent remove`.
#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// The policy's name in the store.
    pub name: String,
    /// The store.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// `zt-agent status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The store.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// `KEY=VALUE`, both usable as labels.
fn parse_label(text: &str) -> Result<(String, String), String> {
    let (k, v) = text
        .split_once('=')
        .ok_or_else(|| format!("'{text}' is not KEY=VALUE"))?;
    for part in [k, v] {
        if let Some(problem) = zt_core::fleet::label_problem(part) {
            return Err(format!("'{part}': {problem}"));
        }
    }
    Ok((k.to_owned(), v.to_owned()))
}

/// `500ms`, `2s`, `1m`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, unit) = match t.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    let n: f64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a duration (500ms, 2s, 1m)"))?;
    let seconds = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("'{text}': the unit is ms, s, m or h")),
    };
    if !(0.001..=86_400.0).contains(&seconds) {
        return Err(format!("'{text}' is out of range (1ms to 24h)"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_operators_write_them() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5 parsecs").is_err());
    }

    #[test]
    fn labels_are_key_value_in_the_label_alphabet() {
        assert_eq!(
            parse_label("role=web"),
            Ok(("role".to_owned(), "web".to_owned()))
        );
        assert!(parse_label("role").is_err());
        assert!(parse_label("ro le=web").is_err());
        assert!(parse_label("role=").is_err());
    }
}
