//! The kit's own kernel tests: namespaces, probes as real uids, the peer, held connections
//! and test cgroups, each checked against rules installed with `nft` in the test's namespace.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt;
use std::time::Duration;
use zt_core::{Direction, Verdict};
use zt_testkit::{
    Held, Identity, Listeners, Netns, Outcome, Peer, Prerequisite, Proto, TestCgroup, connect_as,
    expected_outcomes, require,
};

const NOBODY: Identity = Identity::new(65534, 65534);
const SHORT: Duration = Duration::from_millis(300);
const LONG: Duration = Duration::from_secs(3);

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Loopback endpoints of both families on `port`, TCP and UDP.
fn loopback(port: u16) -> Vec<(Proto, SocketAddr)> {
    let mut v = Vec::new();
    for ip in ["127.0.0.1", "[::1]"] {
        for proto in [Proto::Tcp, Proto::Udp] {
            v.push((proto, addr(&format!("{ip}:{port}"))));
        }
    }
    v
}

fn output_chain(netns: &Netns) {
    netns.run_ok("nft", &["add", "table", "inet", "t"]);
    netns.run_ok(
        "nft",
        &["add chain inet t o { type filter hook output priority 0; }"],
    );
}

#[test]
fn a_fresh_netns_is_not_the_hosts_and_has_only_loopback_up() {
    if !require(&[Prerequisite::Root, Prerequisite::Binary("ip")]) {
        return;
    }
    let ns = |p: &str| std::fs::metadata(p).map(|m| m.ino()).ok();
    let before = ns("/proc/thread-self/ns/net").unwrap();
    let netns = Netns::new();
    let now = ns("/proc/thread-self/ns/net").unwrap();
    assert_ne!(now, before);
    // PID 1's namespace is hidden in some sandboxes; the parent's (cargo's) is the host's too.
    let parent = format!("/proc/{}/ns/net", std::os::unix::process::parent_id());
    assert_ne!(Some(now), ns(&parent));
    assert_ne!(Some(now), ns("/proc/1/ns/net"));
    let links = netns.run_ok("ip", &["-o", "link", "show"]);
    assert_eq!(links.lines().count(), 1, "{links}");
    assert!(links.contains(": lo:") && links.contains("UP"), "{links}");
}

#[test]
fn connect_as_reaches_tcp_and_udp_listeners_as_root_and_as_nobody() {
    if !require(&[Prerequisite::Root]) {
        return;
    }
    let _netns = Netns::new();
    let endpoints = loopback(7001);
    let _listeners = Listeners::start(&endpoints);
    for id in [Identity::ROOT, NOBODY] {
        for &(proto, dst) in &endpoints {
            assert_eq!(
                connect_as(id, proto, dst, LONG),
                Outcome::Connected,
                "{proto} {dst} as {id}"
            );
        }
    }
}

#[test]
fn a_port_without_a_listener_refuses() {
    if !require(&[Prerequisite::Root]) {
        return;
    }
    let _netns = Netns::new();
    for (proto, dst) in loopback(7999) {
        assert_eq!(
            connect_as(NOBODY, proto, dst, LONG),
            Outcome::Refused,
            "{proto} {dst}"
        );
    }
}

#[test]
fn an_output_drop_by_uid_blocks_that_uid_only() {
    if !require(&[Prerequisite::Root, Prerequisite::Binary("nft")]) {
        return;
    }
    let netns = Netns::new();
    let endpoints = loopback(7001);
    let _listeners = Listeners::start(&endpoints);
    output_chain(&netns);
    netns.run_ok("nft", &["add rule inet t o meta skuid 65534 drop"]);
    for &(proto, dst) in &endpoints {
        let outcome = connect_as(NOBODY, proto, dst, SHORT);
        // netfilter reports EPERM to send(2), but a dropped SYN only makes connect(2) wait.
        let expected = match proto {
            Proto::Udp => Outcome::NotPermitted,
            Proto::Tcp => Outcome::TimedOut,
        };
        assert_eq!(outcome, expected, "{proto} {dst} as nobody");
        assert!(expected_outcomes(Verdict::Drop, Direction::Egress, proto).contains(&outcome));
        assert_eq!(
            connect_as(Identity::ROOT, proto, dst, LONG),
            Outcome::Connected
        );
    }
}

#[test]
fn an_output_reject_refuses() {
    if !require(&[Prerequisite::Root, Prerequisite::Binary("nft")]) {
        return;
    }
    let netns = Netns::new();
    let endpoints = loopback(7001);
    let _listeners = Listeners::start(&endpoints);
    output_chain(&netns);
    netns.run_ok(
        "nft",
        &["add rule inet t o meta skuid 65534 tcp dport 7001 reject with tcp reset"],
    );
    netns.run_ok(
        "nft",
        &["add rule inet t o meta skuid 65534 udp dport 7001 reject"],
    );
    for &(proto, dst) in &endpoints {
        assert_eq!(
            connect_as(NOBODY, proto, dst, LONG),
            Outcome::Refused,
            "{proto} {dst}"
        );
        assert_eq!(
            connect_as(Identity::ROOT, proto, dst, LONG),
            Outcome::Connected
        );
    }
}

#[test]
fn the_peer_connects_inbound_until_an_input_rule_drops_or_rejects_it() {
    if !require(&[
        Prerequisite::Root,
        Prerequisite::Binary("nft"),
        Prerequisite::Binary("ip"),
    ]) {
        return;
    }
    let netns = Netns::new();
    let peer = netns.add_peer();
    let local = [
        SocketAddr::new(Peer::LOCAL_V4.into(), 7001),
        SocketAddr::new(Peer::LOCAL_V6.into(), 7001),
    ];
    let endpoints: Vec<_> = local
        .iter()
        .flat_map(|&a| [(Proto::Tcp, a), (Proto::Udp, a)])
        .collect();
    let _listeners = Listeners::start(&endpoints);
    for &(proto, dst) in &endpoints {
        assert_eq!(
            peer.connect(proto, dst, LONG),
            Outcome::Connected,
            "{proto} {dst}"
        );
    }
    // The peer really is elsewhere: its own namespace has the peer addresses.
    let addrs = String::from_utf8(peer.run("ip", &["-o", "addr"]).stdout).unwrap();
    assert!(
        addrs.contains("10.77.0.2/24") && addrs.contains("fd77::2/64"),
        "{addrs}"
    );

    netns.run_ok("nft", &["add", "table", "inet", "t"]);
    netns.run_ok(
        "nft",
        &["add chain inet t i { type filter hook input priority 0; }"],
    );
    let iif = peer.local_interface().to_owned();
    netns.run_ok(
        "nft",
        &[
            "add",
            "rule",
            "inet",
            "t",
            "i",
            "iifname",
            &iif,
            "meta",
            "l4proto",
            "{ tcp, udp }",
            "drop",
        ],
    );
    for &(proto, dst) in &endpoints {
        assert_eq!(
            peer.connect(proto, dst, SHORT),
            Outcome::TimedOut,
            "{proto} {dst}"
        );
    }
    netns.run_ok("nft", &["flush chain inet t i"]);
    netns.run_ok(
        "nft",
        &["add rule inet t i tcp dport 7001 reject with tcp reset"],
    );
    netns.run_ok("nft", &["add rule inet t i udp dport 7001 reject"]);
    for &(proto, dst) in &endpoints {
        assert_eq!(
            peer.connect(proto, dst, LONG),
            Outcome::Refused,
            "{proto} {dst}"
        );
    }
}

#[test]
fn a_held_connection_survives_a_drop_rule_while_established_traffic_is_accepted() {
    if !require(&[Prerequisite::Root, Prerequisite::Binary("nft")]) {
        return;
    }
    let netns = Netns::new();
    let dst = addr("127.0.0.1:7001");
    let _listeners = Listeners::start(&[(Proto::Tcp, dst)]);
    // Conntrack starts tracking in a namespace once a rule needs it; a flow opened before
    // that is picked up mid-stream as "new". So the established rule comes first.
    output_chain(&netns);
    netns.run_ok("nft", &["add rule inet t o ct state established accept"]);
    let mut held = Held::open(NOBODY, dst, LONG).expect("nobody connects");
    assert!(held.exchange(LONG));
    netns.run_ok("nft", &["add rule inet t o meta skuid 65534 drop"]);
    assert!(held.exchange(LONG), "the established flow survives");
    assert_eq!(
        connect_as(NOBODY, Proto::Tcp, dst, SHORT),
        Outcome::TimedOut
    );
    netns.run_ok("nft", &["flush chain inet t o"]);
    netns.run_ok("nft", &["add rule inet t o meta skuid 65534 drop"]);
    assert!(
        !held.exchange(SHORT),
        "without the established rule the flow is cut"
    );
    netns.run_ok("nft", &["flush chain inet t o"]);
    assert!(
        held.exchange(LONG),
        "and it resumes (retransmission) once allowed again"
    );
    assert_eq!(
        Held::open(NOBODY, addr("127.0.0.1:7999"), LONG).err(),
        Some(Outcome::Refused)
    );
}

#[test]
fn test_cgroup_probes_run_inside_the_cgroup() {
    if !require(&[
        Prerequisite::Root,
        Prerequisite::Binary("nft"),
        Prerequisite::CgroupV2,
    ]) {
        return;
    }
    let netns = Netns::new();
    let endpoints = loopback(7001);
    let _listeners = Listeners::start(&endpoints);
    let cgroup = TestCgroup::new("kit");
    let path = cgroup.path().to_owned();
    assert!(path.is_dir());
    assert!(
        cgroup
            .relative()
            .starts_with(&format!("zt-test-{}-kit-", std::process::id()))
    );
    assert_eq!(
        path.file_name().unwrap().to_str().unwrap(),
        cgroup.relative()
    );
    for &(proto, dst) in &endpoints {
        assert_eq!(
            cgroup.connect_as(NOBODY, proto, dst, LONG),
            Outcome::Connected
        );
    }
    // nft resolves a cgroupv2 path below /sys/fs/cgroup, wherever cgroup2 is mounted.
    let nft_path = path
        .strip_prefix("/sys/fs/cgroup")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    output_chain(&netns);
    let rule =
        format!("add rule inet t o meta l4proto udp socket cgroupv2 level 1 \"{nft_path}\" drop");
    netns.run_ok("nft", &[&rule]);
    let dst = addr("127.0.0.1:7001");
    assert_eq!(
        cgroup.connect_as(NOBODY, Proto::Udp, dst, LONG),
        Outcome::NotPermitted
    );
    assert_eq!(
        connect_as(NOBODY, Proto::Udp, dst, LONG),
        Outcome::Connected
    );
    drop(cgroup);
    assert!(!path.exists(), "the cgroup is removed on drop");
}
