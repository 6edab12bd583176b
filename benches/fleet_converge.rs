//! A fleet converging: N hosts (network namespaces on this machine, each running the release
//! `zt-agent` on the nft backend) around one etcd (Debian's 3.4, in a namespace of its own).
//!
//! Timed: from the moment a new version of a policy that selects every host is written to the
//! store (the `etcdctl put` is started) until every host's `/zt/v1/status/<host>` says
//! `applied` for that version, for N = 5, 20 and 50. Target (the zt-agent issue): 50 hosts
//! converge in under 1 s. Besides criterion's estimate, the median and the maximum over every
//! push of the run are printed.
//!
//! Then, with the largest fleet's agents idle for `ZT_BENCH_IDLE_SECONDS` (default 60): the store's
//! revisions written per idle agent per minute (a status write moves the revision; lease
//! keep-alives do not), and each agent's CPU share and resident memory. Targets: 0 status
//! writes, under 1 % CPU and under 30 MB RSS.
//!
//! The agent is built first (release profile, into `target/zt-bench`, as `zt_apply` does).

use criterion::{BenchmarkId, Criterion, SamplingMode};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use zt_testkit::fleet::{Fleet, Host, HostOptions};
use zt_testkit::{Prerequisite, release_binary, require};

/// Version `v` of the policy every host enforces: one port changes per push.
fn policy(v: u32) -> String {
    format!(
        "version: \"1.0\"\nselector: {{fleet: bench}}\nrules:\n  - name: web\n    from: {{uid: 20001}}\n    to: {{host: 10.1.0.0/24, port: {}}}\n    action: allow\n",
        1024 + v % 60_000
    )
}

/// Wait until every one of `hosts` hosts reports `applied` for policy `bench` at `revision`.
fn wait_all_applied(fleet: &Fleet, hosts: usize, revision: i64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = fleet.etcdctl_ok(&["get", "/zt/v1/status/", "--prefix", "--print-value-only"]);
        let done = out
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|s| {
                s["result"] == "applied"
                    && s["policies"].as_array().is_some_and(|p| {
                        p.iter()
                            .any(|r| r["name"] == "bench" && r["mod_revision"] == revision)
                    })
            })
            .count();
        if done == hosts {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {done} of {hosts} hosts applied revision {revision} within 60 s\n{}",
            fleet.logs_report()
        );
    }
}

/// The pids in a host's namespace (its agent).
fn pids(host: &Host) -> Vec<u32> {
    let out = Command::new("ip")
        .args(["netns", "pids", host.namespace()])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    out.split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// user + system CPU time of `pid`, in clock ticks, and its resident memory in KiB.
fn usage(pid: u32) -> (u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let after = stat.rsplit_once(") ").map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let cpu = ticks(11) + ticks(12);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    (cpu, rss)
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times.get(times.len() / 2).copied().unwrap_or_default()
}

fn main() {
    if !require(&[
        Prerequisite::Root,
        Prerequisite::Binary("etcd"),
        Prerequisite::Binary("etcdctl"),
        Prerequisite::Binary("ip"),
        Prerequisite::Binary("nft"),
    ]) {
        return;
    }
    let agent = release_binary(
        Path::new(env!("CARGO_MANIFEST_DIR")),
        "zt-agent",
        "zt-agent",
    );
    let mut criterion = Criterion::default()
        .configure_from_args()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(15));
    let mut summary = Vec::new();
    let mut idle_fleet = None;
    let mut version = 0u32;
    // ZT_BENCH_FLEET_SIZES=5 for a quick run; the idle figures come from the largest fleet.
    let sizes: Vec<usize> = std::env::var("ZT_BENCH_FLEET_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![5, 20, 50]);
    let largest = sizes.iter().copied().max().unwrap_or(0);
    for &n in &sizes {
        let fleet = Fleet::new(&format!("bench{n}"), &agent);
        let hosts: Vec<Host> = (0..n)
            .map(|i| fleet.add_host(&format!("h{i}"), HostOptions::nft().label("fleet", "bench")))
            .collect();
        for h in &hosts {
            h.start_agent();
        }
        version += 1;
        let revision = fleet.put_policy("bench", &policy(version));
        wait_all_applied(&fleet, n, revision);
        let mut times = Vec::new();
        let mut group = criterion.benchmark_group("fleet_converge");
        group.sampling_mode(SamplingMode::Flat);
        group.bench_function(BenchmarkId::new("push_until_all_applied", n), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    version += 1;
                    let text = policy(version);
                    let start = Instant::now();
                    let revision = fleet.put_policy("bench", &text);
                    wait_all_applied(&fleet, n, revision);
                    let took = start.elapsed();
                    times.push(took);
                    total += took;
                }
                total
            });
        });
        group.finish();
        let max = times.iter().max().copied().unwrap_or_default();
        let pushes = times.len();
        summary.push((n, median(&mut times), max, pushes));
        if n == largest {
            idle_fleet = Some((fleet, hosts));
        }
    }
    for (n, median, max, pushes) in &summary {
        println!(
            "fleet_converge: {n:>2} hosts: every agent applied after median {median:.1?}, max {max:.1?} ({pushes} pushes)"
        );
    }
    if let Some((fleet, hosts)) = idle_fleet {
        idle(&fleet, &hosts);
    }
}

/// The idle fleet's store writes, CPU and memory, over `ZT_BENCH_IDLE_SECONDS`.
fn idle(fleet: &Fleet, hosts: &[Host]) {
    let seconds: u64 = std::env::var("ZT_BENCH_IDLE_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    // Let the last push's status writes and the first verifications settle.
    std::thread::sleep(Duration::from_secs(2));
    let agents: Vec<u32> = hosts.iter().flat_map(pids).collect();
    let before_rev = fleet.revision();
    let before: Vec<u64> = agents.iter().map(|&p| usage(p).0).collect();
    std::thread::sleep(Duration::from_secs(seconds));
    let after_rev = fleet.revision();
    let after: Vec<(u64, u64)> = agents.iter().map(|&p| usage(p)).collect();
    // SAFETY: sysconf(3) reads a constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let shares: Vec<f64> = before
        .iter()
        .zip(&after)
        .map(|(b, (a, _))| (a.saturating_sub(*b)) as f64 / hz / seconds as f64 * 100.0)
        .collect();
    let rss: Vec<u64> = after.iter().map(|(_, r)| *r).collect();
    let minutes = seconds as f64 / 60.0;
    let writes = (after_rev - before_rev) as f64 / hosts.len() as f64 / minutes;
    let mean = shares.iter().sum::<f64>() / shares.len().max(1) as f64;
    let max_share = shares.iter().copied().fold(0.0, f64::max);
    let max_rss = rss.iter().copied().max().unwrap_or(0);
    let mean_rss = rss.iter().sum::<u64>() / rss.len().max(1) as u64;
    println!(
        "fleet_idle: {} agents over {seconds} s: {writes:.2} store writes per agent per minute \
         (revision {before_rev} -> {after_rev}); CPU mean {mean:.3} %, max {max_share:.3} %; \
         RSS mean {:.1} MB, max {:.1} MB",
        agents.len(),
        mean_rss as f64 / 1024.0,
        max_rss as f64 / 1024.0
    );
}
