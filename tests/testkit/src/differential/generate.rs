//! The generator: varied but always valid policies over the harness's fixed world.
//!
//! Rules are drawn from small pools chosen around what the harness listens on — the listener
//! addresses, CIDRs that contain them or miss them, the listener ports, ranges over them and
//! ports nobody listens on — so that most rules decide some probe and first-match order
//! matters. Every combination the strategies can produce (shrunk ones included) is a valid
//! policy: a build error is a bug in this generator, and panics as one.

use super::{Case, PORTS, probe_grid};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::{select, subsequence};
use zt_core::{
    Action, DefaultPolicy, Direction, Policy, PolicyBuilder, Protocol, RuleBuilder, StaticResolver,
};

/// Destinations of egress rules: each listener address, networks around them, networks that
/// miss them, and whole families.
const EGRESS_HOSTS: &[&str] = &[
    "127.0.0.1",
    "127.0.0.0/8",
    "::1",
    "10.77.0.1",
    "10.77.0.0/24",
    "10.0.0.0/8",
    "fd77::1",
    "fd77::/64",
    "fd00::/8",
    "192.0.2.0/24",
    "2001:db8::/32",
    "0.0.0.0/0",
    "::/0",
];

/// Sources of ingress rules: the peer's addresses, networks that hold them or miss them.
const INGRESS_HOSTS: &[&str] = &[
    "10.77.0.2",
    "10.77.0.0/24",
    "10.77.0.128/25",
    "fd77::2",
    "fd77::/64",
    "fd77::100/120",
    "192.0.2.0/24",
    "2001:db8::/32",
    "0.0.0.0/0",
    "::/0",
];

/// A port or a port range of a rule.
#[derive(Clone, Copy, Debug)]
enum Ports {
    One(u16),
    Range(u16, u16),
}

/// Ports of rules: each listener port, ranges over one or more of them, a range beside them
/// and the SSH port.
const PORT_CHOICES: &[Ports] = &[
    Ports::One(PORTS[0]),
    Ports::One(PORTS[1]),
    Ports::One(PORTS[2]),
    Ports::Range(PORTS[0], PORTS[1]),
    Ports::Range(7000, 7005),
    Ports::Range(PORTS[1], PORTS[2]),
    Ports::Range(7011, 7020),
    Ports::One(22),
];

/// Uids of user rules: those of the probe identities and one nobody uses.
const UIDS: &[u32] = &[0, 65534, 4001, 4002, 4003];
/// Gids of group rules: those of the probe identities and one nobody uses.
const GIDS: &[u32] = &[0, 65534, 4001, 4003];
/// Rule priorities (most rules keep the default, 0).
const PRIORITIES: &[i32] = &[-5, 0, 10];

/// Who an egress rule matches, by number (no passwd entries needed).
#[derive(Clone, Copy, Debug)]
enum Sender {
    Any,
    Uid(u32),
    Gid(u32),
}

/// Global settings of a case (`preserve_established` stays on: see the module docs).
#[derive(Clone, Debug)]
struct SettingsSpec {
    default_allow: bool,
    log_blocked: bool,
    preserve_ssh: bool,
    ssh_ports: &'static [u16],
}

/// One rule, before it is named and built.
#[derive(Clone, Debug)]
struct RuleSpec {
    direction: Direction,
    sender: Sender,
    hosts: Option<Vec<&'static str>>,
    ports: Option<Vec<Ports>>,
    protocol: Protocol,
    action: Action,
    priority: Option<i32>,
    log: bool,
}

/// proptest strategy for cases: egress rules by uid/gid (a few fixed ids) or any user,
/// destinations among the addresses the harness listens on (127.0.0.1, ::1, 10.77.0.1,
/// fd77::1) and some CIDRs around them, ports among the listener ports (with ranges), tcp/udp/
/// both/any/icmp, allow/deny/reject, priorities; ingress rules from the peer's addresses (and
/// CIDRs) to listener ports; random settings (default policy, preserve_ssh, ssh ports,
/// log_blocked). Probes are a random non-empty subset of [`super::probe_grid`].
pub fn cases() -> impl Strategy<Value = Case> {
    let grid = probe_grid();
    let size = 1..=grid.len();
    (settings(), vec(rule(), 0..=6), subsequence(grid, size)).prop_map(
        |(settings, rules, probes)| Case {
            policy: build(&settings, &rules),
            probes,
        },
    )
}

fn settings() -> impl Strategy<Value = SettingsSpec> {
    const SSH_PORTS: &[&[u16]] = &[&[22], &[PORTS[1]], &[22, 2222]];
    const _: () = assert!(super::SSH_PORTS[2] == PORTS[1]);
    (
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        select(SSH_PORTS),
    )
        .prop_map(
            |(default_allow, log_blocked, preserve_ssh, ssh_ports)| SettingsSpec {
                default_allow,
                log_blocked,
                preserve_ssh,
                ssh_ports,
            },
        )
}

fn rule() -> impl Strategy<Value = RuleSpec> {
    let sender = prop_oneof![
        Just(Sender::Any),
        select(UIDS).prop_map(Sender::Uid),
        select(GIDS).prop_map(Sender::Gid),
    ];
    let egress = (
        sender,
        option::weighted(0.6, subsequence(EGRESS_HOSTS, 1..=3)),
    )
        .prop_map(|(sender, hosts)| (Direction::Egress, sender, hosts));
    let ingress = option::weighted(0.6, subsequence(INGRESS_HOSTS, 1..=2))
        .prop_map(|hosts| (Direction::Ingress, Sender::Any, hosts));
    (
        prop_oneof![egress, ingress],
        option::weighted(0.7, subsequence(PORT_CHOICES, 1..=2)),
        0..5usize,
        select(&[Action::Allow, Action::Deny, Action::Reject][..]),
        option::weighted(0.3, select(PRIORITIES)),
        prop::bool::weighted(0.2),
    )
        .prop_map(
            |((direction, sender, hosts), ports, protocol, action, priority, log)| {
                // Ports need a protocol that has them.
                let protocol = if ports.is_some() {
                    [Protocol::Tcp, Protocol::Udp, Protocol::Both][protocol % 3]
                } else {
                    [
                        Protocol::Tcp,
                        Protocol::Udp,
                        Protocol::Both,
                        Protocol::Any,
                        Protocol::Icmp,
                    ][protocol]
                };
                RuleSpec {
                    direction,
                    sender,
                    hosts,
                    ports,
                    protocol,
                    action,
                    priority,
                    log,
                }
            },
        )
}

impl RuleSpec {
    /// The rule, named by its position (`out-0`, `in-1`) so names are unique.
    fn builder(&self, index: usize) -> RuleBuilder {
        let egress = self.direction == Direction::Egress;
        let mut b = if egress {
            let b = RuleBuilder::egress(&format!("out-{index}"));
            match self.sender {
                Sender::Any => b.any_user(),
                Sender::Uid(uid) => b.uid(uid),
                Sender::Gid(gid) => b.gid(gid),
            }
        } else {
            RuleBuilder::ingress(&format!("in-{index}"))
        };
        for &host in self.hosts.iter().flatten() {
            b = if egress {
                b.to_host(host)
            } else {
                b.from_host(host)
            };
        }
        for &ports in self.ports.iter().flatten() {
            b = match ports {
                Ports::One(p) => b.port(p),
                Ports::Range(first, last) => b.port_range(first, last),
            };
        }
        b = b.protocol(self.protocol).action(self.action).log(self.log);
        if let Some(priority) = self.priority {
            b = b.priority(priority);
        }
        b
    }
}

/// Build the policy; an invalid one is a generator bug.
fn build(settings: &SettingsSpec, rules: &[RuleSpec]) -> Policy {
    let default = if settings.default_allow {
        DefaultPolicy::Allow
    } else {
        DefaultPolicy::Deny
    };
    let builder = rules.iter().enumerate().fold(
        PolicyBuilder::new()
            .default_policy(default)
            .log_blocked(settings.log_blocked)
            .preserve_ssh(settings.preserve_ssh)
            .ssh_ports(settings.ssh_ports.iter().copied())
            .preserve_established(true),
        |b, (i, rule)| b.rule(rule.builder(i)),
    );
    match builder.build(&StaticResolver::new()) {
        Ok(loaded) => loaded.policy,
        Err(e) => panic!(
            "the differential generator made an invalid policy (a bug in zt-testkit): {e}\n{builder:?}"
        ),
    }
}
