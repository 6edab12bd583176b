//! Connection attempts as real uids: the parent's side of the forked probe children.
//!
//! The firewall rules under test match the *sending socket's* owner (`meta skuid`,
//! `-m owner`, `bpf_get_current_uid_gid`), so a probe must come from a process that really
//! runs as that uid. Each probe is a forked child (see the `child` module for what it may do);
//! the parent waits for its report with a deadline and kills it on overrun.

use crate::child::{self, Plan, RECORD, Report};
use crate::sockaddr::RawAddr;
use std::fmt;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};
use zt_core::ProbeProtocol;

/// How much longer than its own timeout the parent waits for a child before killing it and
/// panicking. Generous: two noisy cores can delay a fork by far more than a probe's timeout.
pub(crate) const MARGIN: Duration = Duration::from_secs(10);

/// Credentials a probe runs with; supplementary groups are cleared (zt matches the primary
/// group only, so supplementary groups would only blur what a test proves).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Identity {
    /// The uid (real, effective and saved).
    pub uid: u32,
    /// The gid (real, effective and saved): the socket owner's primary group.
    pub gid: u32,
}

impl Identity {
    /// Root, the identity tests run as.
    pub const ROOT: Identity = Identity { uid: 0, gid: 0 };

    /// Any uid and gid; neither needs a passwd or group entry.
    pub const fn new(uid: u32, gid: u32) -> Identity {
        Identity { uid, gid }
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "uid {} gid {}", self.uid, self.gid)
    }
}

/// The transport a probe uses: the two protocols zt's port rules match.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Proto {
    /// TCP: a handshake.
    Tcp,
    /// UDP: a datagram and its echo.
    Udp,
}

impl From<Proto> for ProbeProtocol {
    fn from(p: Proto) -> Self {
        match p {
            Proto::Tcp => ProbeProtocol::Tcp,
            Proto::Udp => ProbeProtocol::Udp,
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        })
    }
}

/// What happened to a connection attempt: the kernel's decision as a process experiences it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// TCP connected; or UDP: the datagram was echoed back.
    Connected,
    /// ECONNREFUSED: a TCP reset or an ICMP/ICMPv6 port unreachable came back (also after a
    /// UDP datagram that a netfilter OUTPUT reject dropped with EPERM).
    Refused,
    /// Nothing came back within the timeout (also a TCP SYN that netfilter dropped on the
    /// local output path: the kernel keeps retransmitting it and never reports EPERM).
    TimedOut,
    /// EPERM: dropped on the local output path (netfilter OUTPUT drop of a UDP datagram, with
    /// no ICMP error following it) or refused by a cgroup BPF program.
    NotPermitted,
    /// Any other errno.
    Error(i32),
}

impl Outcome {
    /// The outcome an errno from socket/connect/send/recv stands for.
    pub(crate) const fn from_errno(errno: i32) -> Outcome {
        match errno {
            libc::ECONNREFUSED => Outcome::Refused,
            libc::EPERM => Outcome::NotPermitted,
            libc::ETIMEDOUT => Outcome::TimedOut,
            e => Outcome::Error(e),
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Error(e) => write!(f, "Error({})", std::io::Error::from_raw_os_error(*e)),
            other => write!(f, "{other:?}"),
        }
    }
}

/// Connect as `id` from a forked child in the calling thread's network namespace. TCP:
/// non-blocking connect and wait for the handshake. UDP: connect, send a datagram and wait
/// for its echo ([`crate::Listeners`] echo). Returns within `timeout` plus a small margin.
///
/// Panics when the child cannot switch to `id` (the test is not root) or overruns.
pub fn connect_as(id: Identity, proto: Proto, dst: SocketAddr, timeout: Duration) -> Outcome {
    let mut plan = plan(proto, dst, timeout);
    plan.credentials = Some((id.uid, id.gid));
    Attempt::start(&plan, format!("{proto} to {dst} as {id}")).wait()
}

/// A plan to reach `dst`, as the parent's own identity, in its own namespace.
pub(crate) fn plan(proto: Proto, dst: SocketAddr, timeout: Duration) -> Plan {
    Plan {
        netns: None,
        cgroup_procs: None,
        credentials: None,
        proto,
        addr: RawAddr::new(dst),
        timeout_ms: libc::c_int::try_from(timeout.as_millis().max(1)).unwrap_or(libc::c_int::MAX),
    }
}

/// A forked child, killed and reaped if it is dropped before it was reaped.
pub(crate) struct Forked {
    pid: libc::pid_t,
    reaped: bool,
}

impl Forked {
    /// Fork; the child runs `child`, which must only make raw system calls (see the `child`
    /// module) and should end with `_exit`; should it return, the child exits at once.
    pub(crate) fn spawn(child: impl FnOnce()) -> Forked {
        // SAFETY: the child branch only runs `child`, which is async-signal-safe by contract,
        // and `_exit(2)`.
        match unsafe { libc::fork() } {
            -1 => panic!("fork failed: {}", std::io::Error::last_os_error()),
            0 => {
                child();
                unsafe { libc::_exit(127) }
            }
            pid => Forked { pid, reaped: false },
        }
    }

    /// Wait for the child to exit; its wait status.
    pub(crate) fn reap(&mut self) -> libc::c_int {
        let mut status = 0;
        while !self.reaped {
            // SAFETY: waits for our own child.
            let r = unsafe { libc::waitpid(self.pid, &raw mut status, 0) };
            if r == self.pid || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR)
            {
                self.reaped = true;
            }
        }
        status
    }

    /// Kill (SIGKILL) and reap the child.
    pub(crate) fn kill(&mut self) {
        if !self.reaped {
            // SAFETY: signals our own, not yet reaped, child (its pid cannot be reused yet).
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
            self.reap();
        }
    }
}

impl Drop for Forked {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A connected `SOCK_SEQPACKET` pair (close-on-exec): records keep their boundaries, and the
/// parent's reads see end-of-file when the child is gone.
pub(crate) fn channel() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: socketpair(2) writes two descriptors into `fds`.
    let r = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if r != 0 {
        panic!("socketpair failed: {}", std::io::Error::last_os_error());
    }
    // SAFETY: both descriptors are fresh and owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// What reading a child's record gave.
pub(crate) enum Received {
    Record([u8; RECORD]),
    Closed,
    Deadline,
}

/// Read one record from a child, waiting until `deadline` at most.
pub(crate) fn receive(fd: &OwnedFd, deadline: Instant) -> Received {
    let mut record = [0u8; RECORD];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut p = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = libc::c_int::try_from(left.as_millis()).unwrap_or(libc::c_int::MAX);
        // SAFETY: polls one live pollfd.
        match unsafe { libc::poll(&raw mut p, 1, ms) } {
            0 => return Received::Deadline,
            r if r < 0 => {
                if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                    continue; // recompute what is left
                }
                return Received::Closed;
            }
            _ => {}
        }
        // SAFETY: reads into a live buffer of its stated length.
        let n = unsafe { libc::read(fd.as_raw_fd(), record.as_mut_ptr().cast(), RECORD) };
        match n {
            n if n == RECORD as isize => return Received::Record(record),
            n if n < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) => {}
            _ => return Received::Closed,
        }
    }
}

/// A probe child under way: started now, waited for later, so many probes can overlap.
pub(crate) struct Attempt {
    child: Forked,
    reports: OwnedFd,
    deadline: Instant,
    what: String,
}

impl Attempt {
    /// Fork a probe child for `plan`; `what` describes it in panics.
    pub(crate) fn start(plan: &Plan, what: String) -> Attempt {
        let (reports, child_end) = channel();
        let fd = child_end.as_raw_fd();
        // SAFETY (of the child's body): probe_main is the fork-child entry point.
        let child = Forked::spawn(|| unsafe { child::probe_main(plan, fd) });
        drop(child_end);
        let timeout = Duration::from_millis(u64::try_from(plan.timeout_ms).unwrap_or(0));
        Attempt {
            child,
            reports,
            deadline: Instant::now() + timeout + MARGIN,
            what,
        }
    }

    /// The outcome; panics (naming the probe) when the child could not set itself up, died
    /// without reporting or overran its deadline.
    pub(crate) fn wait(mut self) -> Outcome {
        match receive(&self.reports, self.deadline) {
            Received::Record(record) => {
                self.child.reap();
                match Report::decode(record) {
                    Some(Report::Done(outcome)) => outcome,
                    Some(Report::Failed(step, errno)) => panic!(
                        "probe {}: the child could not {step}: {} (zt-testkit needs root)",
                        self.what,
                        std::io::Error::from_raw_os_error(errno)
                    ),
                    None => panic!("probe {}: malformed report {record:?}", self.what),
                }
            }
            Received::Closed => {
                let status = self.child.reap();
                panic!(
                    "probe {}: the child exited without reporting (wait status {status:#x})",
                    self.what
                )
            }
            Received::Deadline => {
                self.child.kill();
                panic!(
                    "probe {}: the child overran its timeout by {MARGIN:?} and was killed",
                    self.what
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errnos_map_to_outcomes() {
        assert_eq!(Outcome::from_errno(libc::ECONNREFUSED), Outcome::Refused);
        assert_eq!(Outcome::from_errno(libc::EPERM), Outcome::NotPermitted);
        assert_eq!(Outcome::from_errno(libc::ETIMEDOUT), Outcome::TimedOut);
        assert_eq!(
            Outcome::from_errno(libc::EHOSTUNREACH),
            Outcome::Error(libc::EHOSTUNREACH)
        );
    }
}
