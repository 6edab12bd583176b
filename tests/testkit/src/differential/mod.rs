//! Differential testing shared by every backend: generated policies and probes, realized in
//! the kernel, compared with [`zt_core::Ruleset::evaluate`].
//!
//! The reference evaluator is the definition of zt's semantics; a backend is correct when the
//! kernel it programs gives every probe the evaluator's decision. [`cases`] generates policies
//! over a fixed world — listeners on [`ADDRESSES`] × [`PORTS`], probes as [`IDENTITIES`] and
//! from the [`crate::Peer`] — and [`check`] applies one with a backend, realizes its probes as
//! real connections and reports every disagreement with a YAML reproducer.
//!
//! ```no_run
//! # fn backend() -> Box<dyn zt_core::Backend> { unimplemented!() }
//! use zt_testkit::{Netns, Prerequisite, differential, require};
//!
//! if !require(&[Prerequisite::Root, Prerequisite::Binary("ip")]) {
//!     return;
//! }
//! let netns = Netns::new();
//! let env = differential::Environment::new(&netns);
//! // Created inside the namespace.
//! let mut backend = backend();
//! // At least 8 policies and 1 000 (policy, probe) pairs (ZT_DIFFERENTIAL_PAIRS raises it).
//! let pairs = differential::target_pairs(1_000);
//! match differential::run_cases(8, pairs, |case| {
//!     differential::check(case, backend.as_mut(), &env)
//! }) {
//!     Ok(tally) => eprintln!("{tally} agree with the evaluator"),
//!     Err(reproducer) => panic!("{reproducer}"),
//! }
//! ```
//!
//! Timeouts: a probe the kernel drops takes its full timeout, so probes use a short one
//! ([`TIMEOUT`]) and run concurrently. A probe whose outcome disagrees is retried once with
//! [`RETRY_TIMEOUT`] before it counts: on two noisy cores an echo or an ICMP error can come
//! late, but a drop is never early.
//!
//! Generated cases keep `preserve_established: true`: without it, whether a connection
//! completes also depends on the verdict for its *reply* packets (the listener's SYN-ACK is
//! itself egress traffic), which one probe does not model. Egress probes target addresses of
//! the test namespace (they travel over loopback and are accepted inbound by `zt:loopback`);
//! ingress probes come from the peer.

mod generate;

pub use generate::cases;

use crate::expect::expected_outcomes;
use crate::listen::Listeners;
use crate::netns::{Netns, NsId};
use crate::peer::Peer;
use crate::probe::{self, Attempt, Identity, Outcome, Proto};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;
use zt_core::{Backend, CtState, Direction, Policy, Probe};

/// The ports every address listens on (TCP and UDP). Generated rules name them, ranges
/// around them and ports nobody listens on.
pub const PORTS: [u16; 3] = [7001, 7002, 7010];

/// The test namespace's addresses that listen: loopback of both families and the veth end.
/// Egress probes go to all four; ingress probes from the peer to the last two.
pub const ADDRESSES: [IpAddr; 4] = [
    IpAddr::V4(Ipv4Addr::LOCALHOST),
    IpAddr::V6(Ipv6Addr::LOCALHOST),
    IpAddr::V4(Peer::LOCAL_V4),
    IpAddr::V6(Peer::LOCAL_V6),
];

/// Who egress probes run as: root, nobody, and two uids sharing primary group 4001 (so
/// group rules and user rules disagree about one of them). No passwd entries are needed.
pub const IDENTITIES: [Identity; 4] = [
    Identity::ROOT,
    Identity::new(65534, 65534),
    Identity::new(4001, 4001),
    Identity::new(4002, 4001),
];

/// Every port the generator may make an SSH port (`settings.ssh_ports`).
pub const SSH_PORTS: [u16; 3] = [22, 2222, PORTS[1]];

/// A probe's first timeout (a dropped probe takes all of it).
pub const TIMEOUT: Duration = Duration::from_millis(150);

/// The timeout of the one retry a probe gets when its outcome disagrees.
pub const RETRY_TIMEOUT: Duration = Duration::from_secs(3);

/// At most this many probe children at once.
const CONCURRENCY: usize = 64;

/// One generated case: a policy and probes that the harness can realize in a namespace.
#[derive(Clone)]
pub struct Case {
    /// The policy to apply.
    pub policy: Policy,
    /// The probes to realize after applying it.
    pub probes: Vec<ProbeSpec>,
}

impl fmt::Debug for Case {
    /// The policy as YAML (a reproducer) and one line per probe.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Case {{\npolicy:\n{}probes:", yaml(&self.policy))?;
        for probe in &self.probes {
            writeln!(f, "  {probe}")?;
        }
        write!(f, "}}")
    }
}

/// A probe the harness can make: egress as a uid/gid to a listener, or ingress from the peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeSpec {
    /// The packet as the evaluator sees it: it must describe what the kernel sees.
    pub probe: Probe,
    /// The transport (the same as `probe.protocol`).
    pub proto: Proto,
    /// Who sends (egress); ignored for ingress, which the peer sends as root.
    pub id: Identity,
}

impl ProbeSpec {
    /// A connection from a local process running as `id` to `dst`, an address of the test
    /// namespace: it leaves from the same family's local address the kernel picks (loopback
    /// for loopback, the address itself for the veth end); its source port is unknown.
    pub fn egress(id: Identity, proto: Proto, dst: SocketAddr) -> ProbeSpec {
        let src = match dst.ip() {
            IpAddr::V4(a) if a.is_loopback() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(a) if a.is_loopback() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            local => local,
        };
        ProbeSpec {
            probe: Probe {
                direction: Direction::Egress,
                uid: Some(id.uid),
                gid: Some(id.gid),
                cgroup: None,
                protocol: proto.into(),
                src,
                dst: dst.ip(),
                src_port: None,
                dst_port: Some(dst.port()),
                icmp_type: None,
                ct_state: CtState::New,
                loopback: false,
            },
            proto,
            id,
        }
    }

    /// A connection from the peer to `dst` (an address on the test's veth end), arriving on
    /// the veth interface from the peer's address of the same family.
    pub fn ingress(proto: Proto, dst: SocketAddr) -> ProbeSpec {
        let src = match dst {
            SocketAddr::V4(_) => IpAddr::V4(Peer::PEER_V4),
            SocketAddr::V6(_) => IpAddr::V6(Peer::PEER_V6),
        };
        ProbeSpec {
            probe: Probe {
                direction: Direction::Ingress,
                uid: None,
                gid: None,
                cgroup: None,
                protocol: proto.into(),
                src,
                dst: dst.ip(),
                src_port: None,
                dst_port: Some(dst.port()),
                icmp_type: None,
                ct_state: CtState::New,
                loopback: false,
            },
            proto,
            id: Identity::ROOT,
        }
    }

    /// Where the probe connects to, if it names a port and its protocol matches `proto`.
    fn target(&self) -> Option<SocketAddr> {
        let port = self.probe.dst_port?;
        (self.probe.protocol == self.proto.into()).then_some(SocketAddr::new(self.probe.dst, port))
    }
}

impl fmt::Display for ProbeSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.probe;
        let dst = p.dst_port.map_or_else(
            || p.dst.to_string(),
            |port| SocketAddr::new(p.dst, port).to_string(),
        );
        match p.direction {
            Direction::Egress => write!(f, "egress {} to {dst} as {}", self.proto, self.id),
            Direction::Ingress => write!(f, "ingress {} from {} to {dst}", self.proto, p.src),
        }
    }
}

/// Every probe the harness can realize: each identity × protocol × address × port egress,
/// and each protocol × veth address × port from the peer.
pub fn probe_grid() -> Vec<ProbeSpec> {
    let mut grid = Vec::new();
    for id in IDENTITIES {
        for proto in [Proto::Tcp, Proto::Udp] {
            for ip in ADDRESSES {
                for port in PORTS {
                    grid.push(ProbeSpec::egress(id, proto, SocketAddr::new(ip, port)));
                }
            }
        }
    }
    for proto in [Proto::Tcp, Proto::Udp] {
        for ip in [IpAddr::V4(Peer::LOCAL_V4), IpAddr::V6(Peer::LOCAL_V6)] {
            for port in PORTS {
                grid.push(ProbeSpec::ingress(proto, SocketAddr::new(ip, port)));
            }
        }
    }
    grid
}

/// The namespace set-up the harness needs: listeners on every probe endpoint and the peer.
pub struct Environment {
    peer: Peer,
    _listeners: Listeners,
    netns: NsId,
}

impl Environment {
    /// Add the peer to `netns` and start TCP and UDP echo listeners on every address of
    /// [`ADDRESSES`] and port of [`PORTS`], and TCP listeners on the SSH ports the generator
    /// configures ([`SSH_PORTS`]) on the veth addresses. Call it before the backend installs a
    /// policy.
    pub fn new(netns: &Netns) -> Environment {
        let peer = netns.add_peer();
        let mut endpoints: Vec<(Proto, SocketAddr)> = ADDRESSES
            .iter()
            .flat_map(|&ip| PORTS.map(|port| SocketAddr::new(ip, port)))
            .flat_map(|addr| [(Proto::Tcp, addr), (Proto::Udp, addr)])
            .collect();
        for ip in [IpAddr::V4(Peer::LOCAL_V4), IpAddr::V6(Peer::LOCAL_V6)] {
            for port in SSH_PORTS.iter().filter(|p| !PORTS.contains(p)) {
                endpoints.push((Proto::Tcp, SocketAddr::new(ip, *port)));
            }
        }
        Environment {
            peer,
            _listeners: Listeners::start(&endpoints),
            netns: netns.id(),
        }
    }

    /// The peer, for tests of their own on the same set-up.
    pub fn peer(&self) -> &Peer {
        &self.peer
    }
}

/// Realize every probe of `case` with `backend` applied (the caller creates the Netns and
/// the backend inside it); Ok(the number of probes realized), or Err(report) listing each
/// disagreement: the probe, the evaluator's
/// decision (entry name, verdict), the expected and the observed outcome, and the policy as
/// YAML — a reproducer. A backend that cannot plan or apply the case is an Err too.
pub fn check(case: &Case, backend: &mut dyn Backend, env: &Environment) -> Result<usize, String> {
    env.netns.assert_current("differential::check");
    let ruleset = case.policy.ruleset();
    let name = backend.name();
    let failed = |what: &str, e: zt_core::Error| {
        format!(
            "the {name} backend could not {what} the case: {e}\npolicy:\n{}",
            yaml(&case.policy)
        )
    };
    let plan = backend.plan(&ruleset).map_err(|e| failed("plan", e))?;
    backend.apply(&plan).map_err(|e| failed("apply", e))?;

    let probes: Vec<&ProbeSpec> = case.probes.iter().collect();
    let mut observed = realize(&probes, env, TIMEOUT)?;
    let decisions: Vec<_> = probes.iter().map(|s| ruleset.evaluate(&s.probe)).collect();
    let acceptable = |i: usize| {
        expected_outcomes(
            decisions[i].verdict,
            probes[i].probe.direction,
            probes[i].proto,
        )
    };
    let disagreeing = |observed: &[Outcome]| -> Vec<usize> {
        (0..probes.len())
            .filter(|&i| !acceptable(i).contains(&observed[i]))
            .collect()
    };
    // Disagreements get one retry with a long timeout: on two noisy cores an echo or an ICMP
    // error can come late, while a kernel that really disagrees gives the same answer again.
    let first = disagreeing(&observed);
    let again: Vec<&ProbeSpec> = first.iter().map(|&i| probes[i]).collect();
    for (i, outcome) in first.into_iter().zip(realize(&again, env, RETRY_TIMEOUT)?) {
        observed[i] = outcome;
    }

    let disagreements: Vec<String> = disagreeing(&observed)
        .into_iter()
        .map(|i| {
            let d = &decisions[i];
            let expected: Vec<String> = acceptable(i).iter().map(ToString::to_string).collect();
            format!(
                "  {}: evaluator {} ({:?}) expects {}, the kernel gave {}",
                probes[i],
                d.name,
                d.verdict,
                expected.join(" or "),
                observed[i]
            )
        })
        .collect();
    if disagreements.is_empty() {
        return Ok(probes.len());
    }
    Err(format!(
        "{} of {} probes disagree with the reference evaluator under the {name} backend:\n{}\npolicy:\n{}",
        disagreements.len(),
        probes.len(),
        disagreements.join("\n"),
        yaml(&case.policy)
    ))
}

/// Run `probes` concurrently (at most [`CONCURRENCY`] children at once); their outcomes.
fn realize(
    probes: &[&ProbeSpec],
    env: &Environment,
    timeout: Duration,
) -> Result<Vec<Outcome>, String> {
    let mut outcomes = Vec::with_capacity(probes.len());
    for batch in probes.chunks(CONCURRENCY) {
        let attempts = batch
            .iter()
            .map(|spec| start(spec, env, timeout))
            .collect::<Result<Vec<Attempt>, String>>()?;
        outcomes.extend(attempts.into_iter().map(Attempt::wait));
    }
    Ok(outcomes)
}

/// Start one probe: egress from a child of this thread, ingress from the peer.
fn start(spec: &ProbeSpec, env: &Environment, timeout: Duration) -> Result<Attempt, String> {
    let dst = spec.target().ok_or_else(|| {
        format!(
            "cannot realize {spec}: it needs a destination port and protocol {}",
            spec.proto
        )
    })?;
    Ok(match spec.probe.direction {
        Direction::Egress => {
            let mut plan = probe::plan(spec.proto, dst, timeout);
            plan.credentials = Some((spec.id.uid, spec.id.gid));
            Attempt::start(&plan, spec.to_string())
        }
        Direction::Ingress => env.peer.start(spec.proto, dst, timeout),
    })
}

/// The policy as YAML, or why it cannot be written.
fn yaml(policy: &Policy) -> String {
    policy
        .to_yaml()
        .unwrap_or_else(|e| format!("<cannot write the policy as YAML: {e}>\n"))
}

/// How much a differential run checked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Generated policies applied.
    pub cases: u32,
    /// (policy, probe) pairs realized in the kernel and compared with the evaluator.
    pub pairs: usize,
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} generated policies, {} (policy, probe) pairs",
            self.cases, self.pairs
        )
    }
}

/// The pairs a differential run must reach: `ZT_DIFFERENTIAL_PAIRS`, else `default`.
pub fn target_pairs(default: usize) -> usize {
    std::env::var("ZT_DIFFERENTIAL_PAIRS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The differential test of a backend: [`run_cases`] with `check_case` (usually [`check`]
/// with the backend) over at least `min_cases` cases and [`target_pairs`]`(default_pairs)`
/// pairs. Prints what agreed under `label`; panics with the reproducer of a disagreement.
pub fn assert_agrees(
    label: &str,
    min_cases: u32,
    default_pairs: usize,
    check_case: impl FnMut(&Case) -> Result<usize, String>,
) {
    match run_cases(min_cases, target_pairs(default_pairs), check_case) {
        Ok(tally) => eprintln!("{label} differential: {tally} agree with the evaluator"),
        Err(reproducer) => panic!("{reproducer}"),
    }
}

/// The lockout test of a backend: 32 generated cases through [`check_ssh`] with `backend`.
/// Panics with the reproducer of the first policy that cuts SSH off, or when fewer than 5 of
/// the cases preserved SSH (the others turn it off and check nothing); prints what it
/// checked, under `label`.
pub fn assert_ssh_never_cut_off(label: &str, backend: &mut dyn Backend, env: &Environment) {
    let mut policies = 0;
    let tally = run_cases(32, 0, |case| {
        let checked = check_ssh(case, backend, env)?;
        policies += usize::from(checked > 0);
        Ok(checked)
    })
    .unwrap_or_else(|reproducer| panic!("{reproducer}"));
    eprintln!(
        "{label} lockout: {policies} policies preserving SSH, {} connections",
        tally.pairs
    );
    assert!(
        policies >= 5,
        "only {policies} generated policies preserved SSH"
    );
}

/// Generate cases and run `check_case` on each (it returns how many probes it realized) until
/// at least `min_cases` cases and `min_pairs` pairs were checked. A failing case is shrunk by
/// proptest to a minimal reproducer, which the error carries (with the policy as YAML).
pub fn run_cases(
    min_cases: u32,
    min_pairs: usize,
    mut check_case: impl FnMut(&Case) -> Result<usize, String>,
) -> Result<Tally, String> {
    use proptest::test_runner::{Config, TestCaseError, TestRunner};
    let tally = std::cell::Cell::new(Tally::default());
    let check = std::cell::RefCell::new(&mut check_case);
    while tally.get().cases < min_cases || tally.get().pairs < min_pairs {
        let t = tally.get();
        // A case realizes about 50 probes on average; ask for what is likely still missing.
        let batch = min_cases
            .saturating_sub(t.cases)
            .max(u32::try_from(min_pairs.saturating_sub(t.pairs) / 40).unwrap_or(u32::MAX))
            .max(1);
        let mut runner = TestRunner::new(Config {
            cases: batch,
            failure_persistence: None,
            ..Config::default()
        });
        runner
            .run(&cases(), |case| {
                let pairs = (check.borrow_mut())(&case).map_err(TestCaseError::fail)?;
                let t = tally.get();
                tally.set(Tally {
                    cases: t.cases + 1,
                    pairs: t.pairs + pairs,
                });
                Ok(())
            })
            .map_err(|e| e.to_string())?;
    }
    Ok(tally.get())
}

/// Lockout protection: with `preserve_ssh` on, apply `case` and connect from the peer to every
/// configured SSH port on both of the test namespace's veth addresses; every connection must
/// complete, whatever the rules say. Ok(connections checked): 0 when the case does not
/// preserve SSH.
pub fn check_ssh(
    case: &Case,
    backend: &mut dyn Backend,
    env: &Environment,
) -> Result<usize, String> {
    env.netns.assert_current("differential::check_ssh");
    let settings = case.policy.settings();
    if !settings.preserve_ssh() {
        return Ok(0);
    }
    let ports: Vec<u16> = SSH_PORTS
        .into_iter()
        .filter(|p| settings.ssh_ports().contains(Some(*p)))
        .collect();
    let ruleset = case.policy.ruleset();
    let name = backend.name();
    let plan = backend.plan(&ruleset).map_err(|e| {
        format!(
            "the {name} backend could not plan: {e}\npolicy:\n{}",
            yaml(&case.policy)
        )
    })?;
    backend.apply(&plan).map_err(|e| {
        format!(
            "the {name} backend could not apply: {e}\npolicy:\n{}",
            yaml(&case.policy)
        )
    })?;
    let mut blocked = Vec::new();
    let mut checked = 0;
    for ip in [IpAddr::V4(Peer::LOCAL_V4), IpAddr::V6(Peer::LOCAL_V6)] {
        for &port in &ports {
            let dst = SocketAddr::new(ip, port);
            checked += 1;
            let outcome = env.peer.connect(Proto::Tcp, dst, RETRY_TIMEOUT);
            if outcome != Outcome::Connected {
                blocked.push(format!("  ssh to {dst} from the peer: {outcome}"));
            }
        }
    }
    if blocked.is_empty() {
        return Ok(checked);
    }
    Err(format!(
        "inbound SSH was cut off under the {name} backend with preserve_ssh on:\n{}\npolicy:\n{}",
        blocked.join("\n"),
        yaml(&case.policy)
    ))
}
