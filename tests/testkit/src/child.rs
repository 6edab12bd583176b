//! Everything a forked probe child runs.
//!
//! The test process is multi-threaded (libtest, listeners), so after `fork()` the child may
//! only make async-signal-safe calls: another thread may have held the allocator's or stdio's
//! lock at the moment of the fork, and that lock is never released in the child. Everything
//! here is therefore raw system calls on data prepared by the parent before the fork — the
//! [`Plan`] with its socket address and NUL-terminated paths — with results written as fixed
//! 8-byte records to a descriptor the parent reads, and `_exit(2)` at the end. Nothing here
//! allocates, formats, locks or unwinds.

use crate::probe::{Outcome, Proto};
use crate::sockaddr::RawAddr;
use libc::c_int;
use std::ffi::CString;
use std::fmt;

/// Size of every record a child writes (and of a [`Held`](crate::Held) command).
pub(crate) const RECORD: usize = 8;

/// What a probe child does, prepared entirely before the fork.
pub(crate) struct Plan {
    /// A network namespace to enter first (`setns`), by an open descriptor.
    pub(crate) netns: Option<c_int>,
    /// `…/cgroup.procs` of a cgroup to join before dropping privileges.
    pub(crate) cgroup_procs: Option<CString>,
    /// `(uid, gid)` to switch to, supplementary groups cleared.
    pub(crate) credentials: Option<(u32, u32)>,
    /// TCP or UDP.
    pub(crate) proto: Proto,
    /// Destination.
    pub(crate) addr: RawAddr,
    /// How long to wait for an answer, in milliseconds.
    pub(crate) timeout_ms: c_int,
}

/// A set-up step of the child, named in the parent's panic when it fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    Netns = 1,
    Descriptors = 2,
    Cgroup = 3,
    Groups = 4,
    Gid = 5,
    Uid = 6,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Netns => "enter the peer's network namespace (setns)",
            Step::Descriptors => "close inherited descriptors (close_range)",
            Step::Cgroup => "join the test cgroup (write cgroup.procs)",
            Step::Groups => "clear supplementary groups (setgroups)",
            Step::Gid => "switch gid (setresgid)",
            Step::Uid => "switch uid (setresuid)",
        })
    }
}

/// What a child reports: the outcome of its attempt, or the set-up step that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Report {
    Done(Outcome),
    Failed(Step, i32),
}

impl Report {
    /// `[kind, step, 0, 0, errno (little endian)]`.
    fn encode(self) -> [u8; RECORD] {
        let (kind, step, errno) = match self {
            Report::Done(Outcome::Connected) => (0, 0, 0),
            Report::Done(Outcome::Refused) => (1, 0, 0),
            Report::Done(Outcome::TimedOut) => (2, 0, 0),
            Report::Done(Outcome::NotPermitted) => (3, 0, 0),
            Report::Done(Outcome::Error(e)) => (4, 0, e),
            Report::Failed(step, e) => (5, step as u8, e),
        };
        let e = errno.to_le_bytes();
        [kind, step, 0, 0, e[0], e[1], e[2], e[3]]
    }

    /// The report a record holds, if it is well formed.
    pub(crate) fn decode(record: [u8; RECORD]) -> Option<Report> {
        let [kind, step, _, _, e0, e1, e2, e3] = record;
        let errno = i32::from_le_bytes([e0, e1, e2, e3]);
        let step = match step {
            1 => Some(Step::Netns),
            2 => Some(Step::Descriptors),
            3 => Some(Step::Cgroup),
            4 => Some(Step::Groups),
            5 => Some(Step::Gid),
            6 => Some(Step::Uid),
            _ => None,
        };
        Some(match kind {
            0 => Report::Done(Outcome::Connected),
            1 => Report::Done(Outcome::Refused),
            2 => Report::Done(Outcome::TimedOut),
            3 => Report::Done(Outcome::NotPermitted),
            4 => Report::Done(Outcome::Error(errno)),
            5 => Report::Failed(step?, errno),
            _ => return None,
        })
    }
}

/// A probe child: set up, attempt the connection, report on `report`, exit.
///
/// # Safety
/// Call only in the child of `fork()`, with `report` a connected `SOCK_SEQPACKET` socket;
/// it never returns.
pub(crate) unsafe fn probe_main(plan: &Plan, report: c_int) -> ! {
    let result = match prepare(plan, &[report]) {
        Err(failed) => failed,
        Ok(()) => match connect(plan) {
            Ok(fd) => {
                close(fd);
                Report::Done(Outcome::Connected)
            }
            Err(outcome) => Report::Done(outcome),
        },
    };
    write_record(report, &result.encode());
    exit()
}

/// A held-connection child: connect, report, then serve exchange commands from `channel`
/// (`[seq, timeout_ms]`, answered `[seq, ok]`) until the channel closes.
///
/// # Safety
/// Call only in the child of `fork()`, with `channel` a connected `SOCK_SEQPACKET` socket;
/// it never returns.
pub(crate) unsafe fn held_main(plan: &Plan, channel: c_int) -> ! {
    let fd = match prepare(plan, &[channel]) {
        Err(failed) => {
            write_record(channel, &failed.encode());
            exit()
        }
        Ok(()) => match connect(plan) {
            Ok(fd) => fd,
            Err(outcome) => {
                write_record(channel, &Report::Done(outcome).encode());
                exit()
            }
        },
    };
    write_record(channel, &Report::Done(Outcome::Connected).encode());
    let mut command = [0u8; RECORD];
    while read_record(channel, &mut command) {
        let [s0, s1, s2, s3, t0, t1, t2, t3] = command;
        let ms = u32::from_le_bytes([t0, t1, t2, t3]);
        let ok = exchange(fd, s0, c_int::try_from(ms).unwrap_or(c_int::MAX));
        let o = u32::from(ok).to_le_bytes();
        write_record(channel, &[s0, s1, s2, s3, o[0], o[1], o[2], o[3]]);
    }
    exit()
}

/// Enter the namespace, drop inherited descriptors (a long-lived child must not keep other
/// tests' sockets and pipes open), join the cgroup, switch credentials.
fn prepare(plan: &Plan, keep: &[c_int]) -> Result<(), Report> {
    let check = |step: Step, result: libc::c_long| {
        if result == 0 {
            Ok(())
        } else {
            Err(Report::Failed(step, errno()))
        }
    };
    if let Some(ns) = plan.netns {
        // SAFETY: setns(2) on a descriptor the parent opened; no memory is involved.
        check(Step::Netns, unsafe {
            libc::setns(ns, libc::CLONE_NEWNET).into()
        })?;
    }
    check(Step::Descriptors, close_others(keep))?;
    if let Some(path) = &plan.cgroup_procs {
        join_cgroup(path).map_err(|e| Report::Failed(Step::Cgroup, e))?;
    }
    if let Some((uid, gid)) = plan.credentials {
        // SAFETY: raw credential system calls; they change only this (single-threaded) process.
        unsafe {
            check(
                Step::Groups,
                libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>()),
            )?;
            check(Step::Gid, libc::syscall(libc::SYS_setresgid, gid, gid, gid))?;
            check(Step::Uid, libc::syscall(libc::SYS_setresuid, uid, uid, uid))?;
        }
    }
    Ok(())
}

/// Close every descriptor from 3 up except those in `keep` (sorted ascending).
fn close_others(keep: &[c_int]) -> libc::c_long {
    let close_range = |first: libc::c_uint, last: libc::c_uint| {
        // SAFETY: close_range(2) only closes descriptors.
        unsafe { libc::syscall(libc::SYS_close_range, first, last, 0) }
    };
    let mut first: libc::c_uint = 3;
    for &fd in keep {
        let Ok(fd) = libc::c_uint::try_from(fd) else {
            continue;
        };
        if fd > first && close_range(first, fd - 1) != 0 {
            return -1;
        }
        first = first.max(fd.saturating_add(1));
    }
    close_range(first, libc::c_uint::MAX)
}

/// Move this process into a cgroup by writing its pid to `cgroup.procs`.
fn join_cgroup(procs: &CString) -> Result<(), i32> {
    // SAFETY: `procs` is NUL-terminated; open/write/close on our own descriptor.
    unsafe {
        let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(errno());
        }
        let pid = libc::syscall(libc::SYS_getpid) as u32;
        let mut digits = [0u8; 10];
        let start = decimal(pid, &mut digits);
        let text = digits.get(start..).unwrap_or(&[]);
        let written = libc::write(fd, text.as_ptr().cast(), text.len());
        let error = errno();
        close(fd);
        if written == text.len() as isize {
            Ok(())
        } else {
            Err(if written < 0 { error } else { libc::EIO })
        }
    }
}

/// Write `n` in decimal at the end of `buf`; the index of its first digit.
fn decimal(mut n: u32, buf: &mut [u8; 10]) -> usize {
    let mut i = buf.len();
    while i > 0 {
        i -= 1;
        if let Some(slot) = buf.get_mut(i) {
            *slot = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 {
            break;
        }
    }
    i
}

/// Open a socket and attempt the plan's connection: the connected descriptor, or the outcome.
fn connect(plan: &Plan) -> Result<c_int, Outcome> {
    let kind = match plan.proto {
        Proto::Tcp => libc::SOCK_STREAM,
        Proto::Udp => libc::SOCK_DGRAM,
    };
    // SAFETY: socket(2) with constant arguments.
    let fd = unsafe {
        libc::socket(
            plan.addr.family(),
            kind | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        )
    };
    if fd < 0 {
        return Err(Outcome::from_errno(errno()));
    }
    let deadline = now_ms() + i64::from(plan.timeout_ms);
    let result = match plan.proto {
        Proto::Tcp => connect_tcp(fd, &plan.addr, deadline),
        Proto::Udp => connect_udp(fd, &plan.addr, deadline),
    };
    match result {
        Ok(()) => Ok(fd),
        Err(outcome) => {
            close(fd);
            Err(outcome)
        }
    }
}

/// Non-blocking connect, then wait for the handshake (or the error) until `deadline`.
fn connect_tcp(fd: c_int, addr: &RawAddr, deadline: i64) -> Result<(), Outcome> {
    // SAFETY: `addr` points to a valid sockaddr of `addr.len()` bytes.
    if unsafe { libc::connect(fd, addr.as_ptr(), addr.len()) } == 0 {
        return Ok(());
    }
    let e = errno();
    if e != libc::EINPROGRESS && e != libc::EINTR {
        return Err(Outcome::from_errno(e));
    }
    if !wait_for(fd, libc::POLLOUT, deadline) {
        return Err(Outcome::TimedOut);
    }
    let mut error: c_int = 0;
    let mut len = std::mem::size_of::<c_int>() as libc::socklen_t;
    // SAFETY: getsockopt(2) writes one c_int into `error`.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&raw mut error).cast(),
            &raw mut len,
        )
    };
    match (r, error) {
        (0, 0) => Ok(()),
        (0, e) => Err(Outcome::from_errno(e)),
        _ => Err(Outcome::from_errno(errno())),
    }
}

/// Connect, send one datagram and wait for its echo (or an ICMP error) until `deadline`. A
/// datagram dropped on output (EPERM) is NotPermitted unless an ICMP error follows it.
fn connect_udp(fd: c_int, addr: &RawAddr, deadline: i64) -> Result<(), Outcome> {
    // SAFETY: `addr` points to a valid sockaddr of `addr.len()` bytes.
    if unsafe { libc::connect(fd, addr.as_ptr(), addr.len()) } != 0 {
        return Err(Outcome::from_errno(errno()));
    }
    let datagram = [b'z'];
    // SAFETY: sends one byte from a live buffer.
    let sent = unsafe { libc::send(fd, datagram.as_ptr().cast(), 1, libc::MSG_NOSIGNAL) };
    // EPERM: dropped on the output path. A netfilter reject drops the datagram too, but also
    // answers with an ICMP port unreachable, which the socket reports as ECONNREFUSED.
    let dropped = sent < 0 && errno() == libc::EPERM;
    if sent < 0 && !dropped {
        return Err(Outcome::from_errno(errno()));
    }
    let mut buf = [0u8; 64];
    loop {
        if !wait_for(fd, libc::POLLIN, deadline) {
            return Err(if dropped {
                Outcome::NotPermitted
            } else {
                Outcome::TimedOut
            });
        }
        // SAFETY: receives into a live buffer of its stated length.
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
        if n >= 0 && !dropped {
            return Ok(());
        }
        let e = errno();
        if n < 0 && e != libc::EAGAIN && e != libc::EINTR {
            return Err(Outcome::from_errno(e));
        }
    }
}

/// Send `byte` on a connected TCP socket and wait until it comes back (late echoes of earlier
/// exchanges may arrive first).
fn exchange(fd: c_int, byte: u8, timeout_ms: c_int) -> bool {
    let deadline = now_ms() + i64::from(timeout_ms);
    let out = [byte];
    // SAFETY: sends one byte from a live buffer.
    if unsafe { libc::send(fd, out.as_ptr().cast(), 1, libc::MSG_NOSIGNAL) } != 1 {
        return false;
    }
    let mut buf = [0u8; 16];
    loop {
        if !wait_for(fd, libc::POLLIN, deadline) {
            return false;
        }
        // SAFETY: receives into a live buffer of its stated length.
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
        if n == 0 {
            return false;
        }
        if n < 0 {
            let e = errno();
            if e == libc::EAGAIN || e == libc::EINTR {
                continue;
            }
            return false;
        }
        if buf.iter().take(n as usize).any(|&b| b == byte) {
            return true;
        }
    }
}

/// Wait until `fd` has `events` or `deadline` (monotonic ms) passes; false on timeout.
fn wait_for(fd: c_int, events: libc::c_short, deadline: i64) -> bool {
    loop {
        let left = (deadline - now_ms()).clamp(0, i64::from(c_int::MAX));
        let mut p = libc::pollfd {
            fd,
            events,
            revents: 0,
        };
        // SAFETY: polls one live pollfd.
        let r = unsafe { libc::poll(&raw mut p, 1, left as c_int) };
        match r {
            0 => return false,
            r if r > 0 => return true,
            _ if errno() == libc::EINTR => {}
            // Let the next system call on the socket report the error.
            _ => return true,
        }
    }
}

/// Monotonic clock in milliseconds (clock_gettime is async-signal-safe).
fn now_ms() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes one timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &raw mut ts) };
    ts.tv_sec * 1000 + ts.tv_nsec / 1_000_000
}

/// Write one record, retrying on EINTR and short writes.
fn write_record(fd: c_int, record: &[u8; RECORD]) {
    let mut done = 0usize;
    while done < RECORD {
        let rest = record.get(done..).unwrap_or(&[]);
        // SAFETY: sends from a live buffer of its stated length.
        let n = unsafe { libc::send(fd, rest.as_ptr().cast(), rest.len(), libc::MSG_NOSIGNAL) };
        if n > 0 {
            done += n as usize;
        } else if n < 0 && errno() == libc::EINTR {
            continue;
        } else {
            return;
        }
    }
}

/// Read one record; false on end of file or error.
fn read_record(fd: c_int, record: &mut [u8; RECORD]) -> bool {
    let mut done = 0usize;
    while done < RECORD {
        let Some(rest) = record.get_mut(done..) else {
            return false;
        };
        // SAFETY: reads into a live buffer of its stated length.
        let n = unsafe { libc::read(fd, rest.as_mut_ptr().cast(), rest.len()) };
        if n > 0 {
            done += n as usize;
        } else if n < 0 && errno() == libc::EINTR {
            continue;
        } else {
            return false;
        }
    }
    true
}

fn close(fd: c_int) {
    // SAFETY: closes a descriptor this child owns.
    unsafe { libc::close(fd) };
}

fn errno() -> i32 {
    // SAFETY: reads the calling thread's errno.
    unsafe { *libc::__errno_location() }
}

fn exit() -> ! {
    // SAFETY: _exit(2) ends the child without running the parent's atexit handlers or
    // destructors (which would flush the parent's buffers twice).
    unsafe { libc::_exit(0) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_writes_pids_without_allocating() {
        let mut buf = [0u8; 10];
        let i = decimal(4_194_304, &mut buf);
        assert_eq!(&buf[i..], b"4194304");
        let i = decimal(0, &mut buf);
        assert_eq!(&buf[i..], b"0");
        let i = decimal(u32::MAX, &mut buf);
        assert_eq!(&buf[i..], b"4294967295");
    }

    #[test]
    fn reports_survive_encoding() {
        for report in [
            Report::Done(Outcome::Connected),
            Report::Done(Outcome::Refused),
            Report::Done(Outcome::TimedOut),
            Report::Done(Outcome::NotPermitted),
            Report::Done(Outcome::Error(libc::EHOSTUNREACH)),
            Report::Failed(Step::Cgroup, libc::EACCES),
            Report::Failed(Step::Uid, libc::EPERM),
        ] {
            assert_eq!(Report::decode(report.encode()), Some(report));
        }
        assert_eq!(Report::decode([9, 0, 0, 0, 0, 0, 0, 0]), None);
        assert_eq!(Report::decode([5, 0, 0, 0, 0, 0, 0, 0]), None);
    }
}
