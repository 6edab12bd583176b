//! The iptables backend's apply against a plain `iptables-restore --noflush` of the same files,
//! for generated policies of 100, 1 000 and 10 000 rules, with both variants; and what a
//! 10 000-rule linear chain costs each new flow.
//!
//! Everything runs inside a network namespace of its own (a fresh one per variant), so the
//! host's firewall is never touched. Needs root and the iptables-legacy and
//! iptables-nft binaries; `ZT_BENCH_VARIANTS=nft` (or `legacy`) runs one variant only.
//!
//! * `zt_apply/N`: `Backend::apply` of a plan made just before (untimed), from a state where zt
//!   owns nothing (flushed, untimed): one `iptables-restore` and one `ip6tables-restore`.
//! * `plain_restore/N`: the same two files (`Backend::render`), piped to `iptables-restore
//!   --noflush` then `ip6tables-restore --noflush`, after the same untimed flush and plan.
//! * Also printed (stderr): the two measured back to back, pair by pair, inside `zt_apply`'s
//!   iterations — the same background load for both, so their ratio is robust to a noisy host.
//! * `zt_plan/N`: `Backend::plan` of the installed policy (reads both families with
//!   `iptables-save -c`, parses, diffs): what `zt plan` adds in front of an apply.
//! * `packet/{udp_send,tcp_connect}/R`: one new UDP flow's first datagram, and one TCP
//!   connection, from root to a loopback listener, when zt's IPv4 `OUTPUT` chain holds R linear
//!   owner/destination/port rules that do not match before the one that allows root: the
//!   difference between R = 10 000 and R = 0 is what a linear chain costs each new flow.

use criterion::{BenchmarkId, Criterion, SamplingMode, criterion_group, criterion_main};
use std::io::Write;
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use zt::iptables::{IptablesBackend, Options, Variant};
use zt::{Backend, Policy, Protocol, RuleBuilder, Ruleset, StaticResolver};
use zt_testkit::{Netns, Prerequisite, require};

const SIZES: [usize; 3] = [100, 1_000, 10_000];

/// A policy of `n` rules in four shapes: uid to an IPv4 host and TCP port, gid to an IPv6
/// network and UDP port, a uid denied an IPv4 network's port range, and ingress from an IPv4
/// and an IPv6 network to a TCP port. Senders, hosts and ports vary with the rule.
fn mixed(n: usize) -> Ruleset {
    let mut policy = Policy::builder();
    for i in 0..n {
        let (a, c) = (i / 256 % 256, i % 256);
        let name = format!("rule-{i:05}");
        let port = 1024 + (i % 60_000) as u16;
        let id = (i % 50) as u32;
        let rule = match i % 4 {
            0 => RuleBuilder::egress(&name)
                .uid(2000 + id)
                .to_host(&format!("10.{a}.{c}.1"))
                .port(port)
                .protocol(Protocol::Tcp)
                .allow(),
            1 => RuleBuilder::egress(&name)
                .gid(3000 + id)
                .to_host(&format!("fd00:{a:x}:{c:x}::/64"))
                .port(port)
                .protocol(Protocol::Udp)
                .allow(),
            2 => RuleBuilder::egress(&name)
                .uid(5000 + i as u32)
                .to_host(&format!("10.{a}.{c}.0/24"))
                .port_range(port, port + 10)
                .protocol(Protocol::Tcp)
                .deny(),
            _ => RuleBuilder::ingress(&name)
                .from_host(&format!("192.168.{c}.0/24"))
                .from_host(&format!("fd01:{a:x}:{c:x}::/48"))
                .port(port)
                .protocol(Protocol::Tcp)
                .allow(),
        };
        policy = policy.rule(rule);
    }
    build(policy)
}

/// `n` egress rules that never match root's loopback traffic (other uids, other hosts), then
/// one that allows root: every new flow from root walks all of them.
fn linear(n: usize) -> Ruleset {
    let mut policy = Policy::builder();
    for i in 0..n {
        let (a, c) = (i / 256 % 256, i % 256);
        policy = policy.rule(
            RuleBuilder::egress(&format!("rule-{i:05}"))
                .uid(2000 + (i % 50) as u32)
                .to_host(&format!("10.{a}.{c}.1"))
                .port(1024 + (i % 60_000) as u16)
                .protocol(Protocol::Tcp)
                .allow(),
        );
    }
    build(policy.rule(RuleBuilder::egress("root").uid(0).allow()))
}

fn build(policy: zt::PolicyBuilder) -> Ruleset {
    match policy.build(&StaticResolver::new()) {
        Ok(loaded) => loaded.policy.ruleset(),
        Err(e) => panic!("the generated policy is invalid: {e}"),
    }
}

fn backend(variant: Variant) -> IptablesBackend {
    IptablesBackend::new(Options {
        variant: Some(variant),
        ..Options::default()
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

fn restore_binary(variant: Variant, v6: bool) -> &'static str {
    match (variant, v6) {
        (Variant::Legacy, false) => "iptables-legacy-restore",
        (Variant::Legacy, true) => "ip6tables-legacy-restore",
        (Variant::Nft, false) => "iptables-nft-restore",
        (Variant::Nft, true) => "ip6tables-nft-restore",
    }
}

/// `<binary> --noflush < input`, as an operator would run it.
fn plain_restore(binary: &str, input: &str) {
    let mut child = Command::new(binary)
        .arg("--noflush")
        .stdin(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {binary}: {e}"));
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .unwrap_or_else(|e| panic!("{binary}: {e}"));
    }
    let status = child.wait().unwrap_or_else(|e| panic!("{binary}: {e}"));
    assert!(status.success(), "{binary} failed: {status}");
}

fn apply_benches(c: &mut Criterion, variant: Variant) {
    let mut b = backend(variant);
    let mut group = c.benchmark_group(format!("iptables_apply/{variant}"));
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    for n in SIZES {
        let rs = mixed(n);
        group.measurement_time(Duration::from_secs(if n >= 10_000 { 20 } else { 5 }));
        let artifact = b.render(&rs).unwrap_or_else(|e| panic!("{e}"));
        let lines: usize = artifact
            .files
            .iter()
            .map(|f| f.contents.lines().filter(|l| l.starts_with("-A")).count())
            .sum();
        eprintln!("{variant} {n} policy rules: {lines} iptables rules (IPv4 + IPv6)");
        // Between timed applies, the plain restore of the same files is timed too: pairs
        // measured back to back see the same background load, so their ratio is printed as a
        // cross-check of the two medians (measured minutes apart on a noisy machine).
        let mut pairs = (Duration::ZERO, Duration::ZERO, 0u32);
        group.bench_with_input(BenchmarkId::new("zt_apply", n), &rs, |bench, rs| {
            bench.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    b.flush().unwrap_or_else(|e| panic!("{e}"));
                    let plan = b.plan(rs).unwrap_or_else(|e| panic!("{e}"));
                    let start = Instant::now();
                    b.apply(&plan).unwrap_or_else(|e| panic!("{e}"));
                    let zt = start.elapsed();
                    total += zt;
                    b.flush().unwrap_or_else(|e| panic!("{e}"));
                    b.plan(rs).unwrap_or_else(|e| panic!("{e}"));
                    let start = Instant::now();
                    plain_restore(restore_binary(variant, false), &artifact.files[0].contents);
                    plain_restore(restore_binary(variant, true), &artifact.files[1].contents);
                    let plain = start.elapsed();
                    pairs = (pairs.0 + zt, pairs.1 + plain, pairs.2 + 1);
                }
                total
            });
        });
        let (zt, plain, count) = pairs;
        eprintln!(
            "{variant} {n}: interleaved over {count} pairs: zt apply {:.2?}, plain restore {:.2?}, ratio {:.3}",
            zt / count.max(1),
            plain / count.max(1),
            zt.as_secs_f64() / plain.as_secs_f64().max(f64::MIN_POSITIVE)
        );
        group.bench_with_input(
            BenchmarkId::new("plain_restore", n),
            &artifact,
            |bench, a| {
                bench.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        // The same untimed work as before `zt_apply`'s timed part.
                        b.flush().unwrap_or_else(|e| panic!("{e}"));
                        b.plan(&rs).unwrap_or_else(|e| panic!("{e}"));
                        let start = Instant::now();
                        plain_restore(restore_binary(variant, false), &a.files[0].contents);
                        plain_restore(restore_binary(variant, true), &a.files[1].contents);
                        total += start.elapsed();
                    }
                    total
                });
            },
        );
        b.flush().unwrap_or_else(|e| panic!("{e}"));
        let plan = b.plan(&rs).unwrap_or_else(|e| panic!("{e}"));
        b.apply(&plan).unwrap_or_else(|e| panic!("{e}"));
        group.bench_with_input(BenchmarkId::new("zt_plan", n), &rs, |bench, rs| {
            bench.iter(|| {
                let plan = b.plan(rs).unwrap_or_else(|e| panic!("{e}"));
                assert!(plan.is_empty());
            });
        });
        b.flush().unwrap_or_else(|e| panic!("{e}"));
    }
    group.finish();
}

fn packet_benches(c: &mut Criterion, netns: &Netns, variant: Variant) {
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let tcp_addr = tcp.local_addr().unwrap_or_else(|e| panic!("{e}"));
    // The server closes first, so the client's ports never linger in TIME_WAIT.
    std::thread::spawn(move || {
        for stream in tcp.incoming() {
            drop(stream);
        }
    });
    let sink = UdpSocket::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let sink_addr = sink.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let mut b = backend(variant);
    let mut group = c.benchmark_group(format!("iptables_packet/{variant}"));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(3));
    for n in [0, 10_000] {
        let plan = b.plan(&linear(n)).unwrap_or_else(|e| panic!("{e}"));
        b.apply(&plan).unwrap_or_else(|e| panic!("{e}"));
        // zt's rules use conntrack, whose entries of closed connections now go quickly, so a
        // long run cannot fill the table.
        netns.run(
            "sysctl",
            &["-qw", "net.netfilter.nf_conntrack_tcp_timeout_time_wait=1"],
        );
        // Each datagram from a fresh socket is the first packet of a new flow.
        group.bench_function(BenchmarkId::new("udp_send", n), |bench| {
            bench.iter(|| {
                let s = UdpSocket::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
                s.send_to(b"x", sink_addr).unwrap_or_else(|e| panic!("{e}"));
            });
        });
        group.bench_function(BenchmarkId::new("tcp_connect", n), |bench| {
            bench.iter(|| TcpStream::connect(tcp_addr).unwrap_or_else(|e| panic!("{e}")));
        });
        b.flush().unwrap_or_else(|e| panic!("{e}"));
    }
    drop(sink);
    group.finish();
}

fn bench(c: &mut Criterion) {
    if !require(&[
        Prerequisite::Root,
        Prerequisite::Binary("iptables-legacy-restore"),
        Prerequisite::Binary("ip6tables-legacy-restore"),
        Prerequisite::Binary("iptables-nft-restore"),
        Prerequisite::Binary("ip6tables-nft-restore"),
    ]) {
        return;
    }
    let wanted = std::env::var("ZT_BENCH_VARIANTS").unwrap_or_else(|_| "legacy,nft".to_owned());
    for variant in [Variant::Legacy, Variant::Nft] {
        if !wanted.split(',').any(|w| w.trim() == variant.as_str()) {
            continue;
        }
        // A fresh namespace per variant (each Netns::new() moves this thread into a new one):
        // the variants never share a table.
        let netns = Netns::new();
        apply_benches(c, variant);
        packet_benches(c, &netns, variant);
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
