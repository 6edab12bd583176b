//! The kernel scenarios every netfilter backend must pass, written once against the
//! [`Backend`] trait: the nft and iptables backends' kernel tests call them with their own
//! backend (created inside the test's [`Netns`]) and add what only they can check.
//!
//! Each scenario panics with the failing connection named, as a test does.

use crate::{Held, Identity, Listeners, Netns, Outcome, Peer, Proto, connect_as};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use zt_core::{Backend, Policy, Ruleset, Snapshot, StaticResolver, Status};

/// The specification's web-user (uid 1001).
pub const WEB: Identity = Identity::new(1001, 1001);
/// Another user (uid 1003), allowed nothing.
pub const OTHER: Identity = Identity::new(1003, 1003);
/// How long a probe waits: long enough for loopback, short enough for a dropped SYN.
pub const SHORT: Duration = Duration::from_millis(300);

/// The specification's scenario with numeric uids (web-user 1001, another user 1003).
pub const SPEC: &str = r#"
version: "1.0"
rules:
  - name: web-to-redis
    from: {uid: 1001}
    to: {hosts: [127.0.0.1, "::1"], port: 6379}
    action: allow
  - name: web-dns
    from: {uid: 1001}
    to: {hosts: [127.0.0.1, "::1"], port: 5353, protocol: udp}
    action: allow
"#;

/// A policy without rules: only the prologue and the default deny.
pub const EMPTY: &str = "version: \"1.0\"\nrules: []\n";

/// The ruleset of a test policy (names are numeric: nothing is resolved).
pub fn ruleset(yaml: &str) -> Ruleset {
    match Policy::from_yaml(yaml, "test.yaml", &StaticResolver::new()) {
        Ok(loaded) => loaded.policy.ruleset(),
        Err(e) => panic!("a test policy is invalid: {e}"),
    }
}

/// Plan and apply `rs`; the snapshot of what zt owned before.
pub fn apply(backend: &mut dyn Backend, rs: &Ruleset) -> Snapshot {
    let plan = backend
        .plan(rs)
        .unwrap_or_else(|e| panic!("{} plan: {e}", backend.name()));
    backend
        .apply(&plan)
        .unwrap_or_else(|e| panic!("{} apply: {e}", backend.name()))
}

/// A socket address written in a test.
pub fn addr(s: &str) -> SocketAddr {
    s.parse()
        .unwrap_or_else(|e| panic!("not a socket address: {s}: {e}"))
}

/// A TCP connection as `id` to `dst`.
pub fn tcp_outcome(id: Identity, dst: &str) -> Outcome {
    connect_as(id, Proto::Tcp, addr(dst), SHORT)
}

/// Whether a connection was dropped: a SYN dropped on output leaves connect waiting; a
/// datagram fails with EPERM.
pub fn blocked(o: Outcome) -> bool {
    matches!(o, Outcome::TimedOut | Outcome::NotPermitted)
}

/// The specification's scenario over IPv4 and IPv6, TCP and UDP: web-user reaches redis and
/// DNS, another user and root (under default deny) do not, web-user reaches no unlisted port;
/// then a rule for root lets root through. Returns the status after that second apply, for
/// the backend's own counter checks.
pub fn spec_scenario(b: &mut dyn Backend) -> Status {
    let _l = Listeners::start(&[
        (Proto::Tcp, addr("127.0.0.1:6379")),
        (Proto::Tcp, addr("[::1]:6379")),
        (Proto::Tcp, addr("127.0.0.1:8080")),
        (Proto::Tcp, addr("[::1]:8080")),
        (Proto::Udp, addr("127.0.0.1:5353")),
        (Proto::Udp, addr("[::1]:5353")),
    ]);
    apply(b, &ruleset(SPEC));
    for redis in ["127.0.0.1:6379", "[::1]:6379"] {
        assert_eq!(
            tcp_outcome(WEB, redis),
            Outcome::Connected,
            "web-user to {redis}"
        );
        assert!(
            blocked(tcp_outcome(OTHER, redis)),
            "another user to {redis}"
        );
        assert!(
            blocked(tcp_outcome(Identity::ROOT, redis)),
            "root under default deny to {redis}"
        );
    }
    for unlisted in ["127.0.0.1:8080", "[::1]:8080"] {
        assert!(
            blocked(tcp_outcome(WEB, unlisted)),
            "web-user to {unlisted}"
        );
    }
    for dns in ["127.0.0.1:5353", "[::1]:5353"] {
        assert_eq!(
            connect_as(WEB, Proto::Udp, addr(dns), SHORT),
            Outcome::Connected,
            "{dns}"
        );
        assert_eq!(
            connect_as(OTHER, Proto::Udp, addr(dns), SHORT),
            Outcome::NotPermitted,
            "{dns}"
        );
    }
    let with_root = format!(
        "{SPEC}  - name: root-to-redis\n    from: {{uid: 0}}\n    to: {{port: 6379}}\n    action: allow\n"
    );
    apply(b, &ruleset(&with_root));
    for redis in ["127.0.0.1:6379", "[::1]:6379"] {
        assert_eq!(
            tcp_outcome(Identity::ROOT, redis),
            Outcome::Connected,
            "root to {redis}"
        );
    }
    b.status()
        .unwrap_or_else(|e| panic!("{} status: {e}", b.name()))
}

/// `reject` fails fast: connection refused for TCP (a reset) and for UDP (port unreachable),
/// for a rule naming a protocol and for one covering every protocol, over both families.
pub fn reject_scenario(b: &mut dyn Backend) {
    let _l = Listeners::start(&[
        (Proto::Tcp, addr("127.0.0.1:6379")),
        (Proto::Udp, addr("[::1]:5353")),
        (Proto::Tcp, addr("[::1]:7000")),
        (Proto::Udp, addr("127.0.0.1:7000")),
    ]);
    apply(
        b,
        &ruleset(
            "version: \"1.0\"\nrules:\n  - name: no-redis\n    from: {user: \"*\"}\n    to: {port: 6379}\n    action: reject\n  - name: no-dns\n    from: {user: \"*\"}\n    to: {port: 5353, protocol: udp}\n    action: reject\n  - name: no-web\n    from: {uid: 1001}\n    action: reject\n",
        ),
    );
    assert_eq!(tcp_outcome(OTHER, "127.0.0.1:6379"), Outcome::Refused);
    assert_eq!(
        connect_as(OTHER, Proto::Udp, addr("[::1]:5353"), SHORT),
        Outcome::Refused
    );
    // A reject for every protocol: a TCP reset for TCP, port unreachable for the rest.
    assert_eq!(tcp_outcome(WEB, "[::1]:7000"), Outcome::Refused);
    assert_eq!(
        connect_as(WEB, Proto::Udp, addr("127.0.0.1:7000"), SHORT),
        Outcome::Refused
    );
}

/// Inbound SSH from another host (a veth peer of `ns`) is accepted under a policy without
/// rules, over IPv4 and IPv6, while another inbound port is dropped.
pub fn inbound_ssh_scenario(ns: &Netns, b: &mut dyn Backend) {
    let peer = ns.add_peer();
    let (v4, v6) = (IpAddr::from(Peer::LOCAL_V4), IpAddr::from(Peer::LOCAL_V6));
    let _l = Listeners::start(&[
        (Proto::Tcp, SocketAddr::new(v4, 22)),
        (Proto::Tcp, SocketAddr::new(v6, 22)),
        (Proto::Tcp, SocketAddr::new(v4, 8080)),
        (Proto::Tcp, SocketAddr::new(v6, 8080)),
    ]);
    apply(b, &ruleset(EMPTY));
    for ip in [v4, v6] {
        assert_eq!(
            peer.connect(Proto::Tcp, SocketAddr::new(ip, 22), SHORT),
            Outcome::Connected,
            "ssh to {ip}"
        );
        assert_eq!(
            peer.connect(Proto::Tcp, SocketAddr::new(ip, 8080), SHORT),
            Outcome::TimedOut,
            "8080 on {ip}"
        );
    }
}

/// Established TCP connections (IPv4 and IPv6) keep exchanging data across an apply that
/// removes the rule that allowed them (FR-9, NFR-3), while a new connection is refused.
pub fn established_scenario(b: &mut dyn Backend) {
    let _l = Listeners::start(&[
        (Proto::Tcp, addr("127.0.0.1:6379")),
        (Proto::Tcp, addr("[::1]:6379")),
    ]);
    apply(b, &ruleset(SPEC));
    let mut held: Vec<Held> = ["127.0.0.1:6379", "[::1]:6379"]
        .map(|d| {
            Held::open(WEB, addr(d), SHORT)
                .unwrap_or_else(|e| panic!("web-user cannot connect to {d}: {e:?}"))
        })
        .into();
    assert!(held.iter_mut().all(|h| h.exchange(SHORT)));
    apply(b, &ruleset(EMPTY));
    for h in &mut held {
        assert!(
            h.exchange(SHORT),
            "the established flow kept exchanging data"
        );
    }
    for redis in ["127.0.0.1:6379", "[::1]:6379"] {
        assert!(
            blocked(tcp_outcome(WEB, redis)),
            "a new connection to {redis} is refused"
        );
    }
}
