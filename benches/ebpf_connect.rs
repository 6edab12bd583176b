//! The per-new-connection cost of enforcement: a TCP connect to a loopback listener (and
//! close), made by this process from inside a test cgroup, in a network namespace of its own.
//!
//! Cases, in one criterion run (group `tcp_connect_loopback`):
//! * `no_policy`: nothing attached, nothing loaded — the baseline;
//! * `ebpf_10000_rules`: the eBPF backend enforcing 10 000 uid/port rules under default deny,
//!   the connecting uid (root, this process) allowed by the last one, so every connect runs
//!   the program's full lookup (one group, one hash lookup, one LPM lookup);
//! * `nft_10000_rules`: the nft backend with the same ruleset (the 9 999 rules compile into
//!   one set; the SYN misses it and is accepted by the last rule; replies are established).
//!
//! Another backend is one more entry in `backends()`: anything implementing `zt::Backend`,
//! created inside the namespace, applied with the same ruleset and flushed afterwards.
//!
//! Needs root, cgroup v2 and bpffs (`sudo cargo bench --bench ebpf_connect`); without them it
//! says so and measures nothing.

use criterion::{Criterion, criterion_group, criterion_main};
use std::io::ErrorKind;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use zt::ebpf::{EbpfBackend, Options};
use zt::{Backend, PolicyBuilder, RuleBuilder, Ruleset, StaticResolver};
use zt_testkit::{Listeners, Netns, Prerequisite, Proto, TestCgroup, require};

const RULES: u32 = 10_000;

/// 9 999 rules for other uids, then the rule that allows this process (uid 0) to the listener.
fn ruleset(dst: SocketAddr) -> Ruleset {
    let mut policy = PolicyBuilder::new();
    for i in 0..RULES - 1 {
        policy = policy.rule(
            RuleBuilder::egress(&format!("svc-{i:05}"))
                .uid(100_000 + i)
                .port(dst.port())
                .allow(),
        );
    }
    policy = policy.rule(
        RuleBuilder::egress("bench-root")
            .uid(0)
            .to_host(&dst.ip().to_string())
            .port(dst.port())
            .allow(),
    );
    match policy.build(&StaticResolver::new()) {
        Ok(loaded) => loaded.policy.ruleset(),
        Err(e) => panic!("the benchmark policy is invalid: {e}"),
    }
}

/// The enforcing cases: a name and a backend created inside the namespace.
fn backends(
    cgroup: &TestCgroup,
    pin_dir: &std::path::Path,
) -> Vec<(&'static str, Box<dyn Backend>)> {
    let root = zt::ebpf::cgroup_v2_root().unwrap_or_else(|| panic!("no cgroup v2 mount"));
    vec![
        (
            "ebpf_10000_rules",
            Box::new(EbpfBackend::new(
                Options::new(root).pin_dir(pin_dir).attach_to(cgroup.path()),
            )),
        ),
        // The same ruleset compiled by the nft backend: the 9 999 uid/port rules become one
        // hash set, looked up by every new connection's SYN on output.
        ("nft_10000_rules", Box::new(zt::nft::NftBackend::new())),
    ]
}

/// This process's cgroup v2 path, to return to after the benchmark.
fn own_cgroup(root: &std::path::Path) -> PathBuf {
    let text = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let path = text
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or("/");
    root.join(path.trim_start_matches('/'))
}

fn move_to(cgroup: &std::path::Path) {
    let procs = cgroup.join("cgroup.procs");
    if let Err(e) = std::fs::write(&procs, std::process::id().to_string()) {
        panic!("cannot move into {}: {e}", procs.display());
    }
}

fn connect(dst: SocketAddr) {
    match TcpStream::connect(dst) {
        Ok(stream) => drop(stream),
        Err(e) => panic!("connect to {dst} failed: {e}"),
    }
}

/// The policy is really in force: a port it does not allow (nobody listens there) is refused
/// by the policy (EPERM, or a drop that times out), not by the kernel's RST.
fn assert_enforced(name: &str, dst: SocketAddr) {
    let closed = SocketAddr::new(dst.ip(), dst.port() + 1);
    match TcpStream::connect_timeout(&closed, std::time::Duration::from_secs(1)) {
        Err(e) if matches!(e.kind(), ErrorKind::PermissionDenied | ErrorKind::TimedOut) => {}
        other => panic!("{name}: {closed} should be refused by the policy, got {other:?}"),
    }
}

fn bench(c: &mut Criterion) {
    if !require(&[
        Prerequisite::Root,
        Prerequisite::CgroupV2,
        Prerequisite::BpfFs,
    ]) {
        return;
    }
    let _netns = Netns::new();
    // Closed client sockets would pile up in TIME_WAIT (hundreds of thousands per run) and
    // make every later connect search longer for a free port — slowing whichever case runs
    // last. This namespace keeps none.
    if let Err(e) = std::fs::write("/proc/sys/net/ipv4/tcp_max_tw_buckets", "0") {
        panic!("cannot set tcp_max_tw_buckets in the benchmark namespace: {e}");
    }
    let dst: SocketAddr = "127.0.0.1:7001".parse().unwrap_or_else(|e| panic!("{e}"));
    let _listeners = Listeners::start(&[(Proto::Tcp, dst)]);
    let cgroup = TestCgroup::new("bench");
    let root = zt::ebpf::cgroup_v2_root().unwrap_or_else(|| panic!("no cgroup v2 mount"));
    let home = own_cgroup(&root);
    let pin_dir = PathBuf::from(format!("/sys/fs/bpf/zt-bench-{}", std::process::id()));
    let rules = ruleset(dst);

    move_to(cgroup.path());
    let mut group = c.benchmark_group("tcp_connect_loopback");
    // Two noisy cores: longer samples steady the medians.
    group.measurement_time(std::time::Duration::from_secs(10));
    group.bench_function("no_policy", |b| b.iter(|| connect(dst)));
    for (name, mut backend) in backends(&cgroup, &pin_dir) {
        let plan = backend
            .plan(&rules)
            .unwrap_or_else(|e| panic!("{name}: plan: {e}"));
        backend
            .apply(&plan)
            .unwrap_or_else(|e| panic!("{name}: apply: {e}"));
        assert_enforced(name, dst);
        group.bench_function(name, |b| b.iter(|| connect(dst)));
        if let Err(e) = backend.flush() {
            eprintln!("{name}: flush: {e}");
        }
    }
    group.finish();
    move_to(&home);
}

criterion_group!(benches, bench);
criterion_main!(benches);
