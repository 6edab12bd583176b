//! A fresh network namespace for one test, entered by the test's own thread.
//!
//! Namespaces belong to threads, not processes: `unshare(CLONE_NEWNET)` moves only the
//! calling thread. Everything that thread does afterwards — sockets it opens (netlink
//! included), threads it spawns, commands it runs with `std::process::Command`, children it
//! forks — lives in the new namespace, while the other tests' threads keep theirs. The host
//! namespace is never programmed, and nothing needs cleaning up: the namespace dies with the
//! thread and its children. The thread is deliberately *not* moved back on drop, so a
//! `Netns` dropped early cannot leave later commands of the test running on the host.

use crate::peer::Peer;
use std::cell::Cell;
use std::fs;
use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::process::{Command, Output};

/// Which network namespace a path names (its nsfs device and inode).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct NsId {
    dev: u64,
    ino: u64,
}

impl NsId {
    fn try_of(path: &str) -> Option<NsId> {
        let m = fs::metadata(path).ok()?;
        Some(NsId {
            dev: m.dev(),
            ino: m.ino(),
        })
    }

    /// The calling thread's network namespace.
    pub(crate) fn current() -> NsId {
        let path = "/proc/thread-self/ns/net";
        Self::try_of(path)
            .unwrap_or_else(|| panic!("cannot read {path}: {}", io::Error::last_os_error()))
    }

    /// The host's network namespace as far as this process can see it: PID 1's, and that of
    /// the process that started the tests (sandboxes may hide PID 1's).
    fn host() -> Vec<NsId> {
        let parent = format!("/proc/{}/ns/net", std::os::unix::process::parent_id());
        ["/proc/1/ns/net", parent.as_str()]
            .into_iter()
            .filter_map(Self::try_of)
            .collect()
    }

    /// Panic unless the calling thread is in this namespace: running a command from another
    /// thread would program that thread's namespace — possibly the host's.
    pub(crate) fn assert_current(self, what: &str) {
        let now = Self::current();
        assert!(
            now == self,
            "{what} was called from a thread in net:[{}], not in the test's namespace net:[{}]; \
             use a Netns only from the thread that created it",
            now.ino,
            self.ino
        );
    }
}

/// A fresh network namespace entered by the calling thread; loopback is up.
///
/// The test must stay on the thread that called [`Netns::new`] (libtest runs each test on its
/// own thread, so a test's body qualifies); `Netns` is neither `Send` nor `Sync`, and its
/// methods panic when called from a thread outside the namespace.
pub struct Netns {
    id: NsId,
    peer_added: Cell<bool>,
    _thread_bound: PhantomData<*const ()>,
}

impl Netns {
    /// Unshare the calling thread's network namespace, bring `lo` up, and check that the thread
    /// is in neither its former namespace, PID 1's (where readable) nor that of the process
    /// that started the tests (panics otherwise, and when not root).
    #[allow(clippy::new_without_default)] // creating a namespace is an action, not a default
    pub fn new() -> Netns {
        let before = NsId::current();
        // SAFETY: unshare(2) affects only the calling thread's namespaces.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            panic!(
                "cannot create a network namespace (unshare(CLONE_NEWNET) needs root): {}",
                io::Error::last_os_error()
            );
        }
        let id = NsId::current();
        assert!(
            id != before && !NsId::host().contains(&id),
            "the thread is still in the host's network namespace after unshare; refusing to go on"
        );
        bring_up_loopback()
            .unwrap_or_else(|e| panic!("cannot bring lo up in the new namespace: {e}"));
        unlimit_icmp_errors();
        Netns {
            id,
            peer_added: Cell::new(false),
            _thread_bound: PhantomData,
        }
    }

    /// Which namespace this is, for helpers that must run on its thread.
    pub(crate) fn id(&self) -> NsId {
        self.id
    }

    /// Run a command inside the namespace and return its output (panics if it cannot start).
    pub fn run(&self, program: &str, args: &[&str]) -> Output {
        self.id.assert_current("Netns::run");
        output(Command::new(program).args(args), program)
    }

    /// Like [`Netns::run`], panicking with stdout/stderr when the command fails; its stdout.
    pub fn run_ok(&self, program: &str, args: &[&str]) -> String {
        checked(self.run(program, args), program, args)
    }

    /// Add a second namespace linked by a veth pair: this namespace gets 10.77.0.1/24 and
    /// fd77::1/64, the peer 10.77.0.2/24 and fd77::2/64 (IPv6 without DAD, usable at once).
    /// One peer per namespace (the addresses are fixed); needs the `ip` binary.
    pub fn add_peer(&self) -> Peer {
        self.id.assert_current("Netns::add_peer");
        assert!(
            !self.peer_added.replace(true),
            "a Netns has one peer: its addresses are fixed"
        );
        Peer::create(self)
    }
}

/// Run a prepared command, panicking when it cannot start.
pub(crate) fn output(command: &mut Command, program: &str) -> Output {
    command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
}

/// Stdout of a command that must have succeeded; panics with its output otherwise.
pub(crate) fn checked(output: Output, program: &str, args: &[&str]) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "`{program} {}` failed ({}):\nstdout: {stdout}\nstderr: {}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Lift the per-destination rate limit on ICMP errors in this namespace (1 per second per
/// peer after a burst of 6 by default; loopback is exempt). Tests that reject many probes from
/// the same peer would otherwise see the later port-unreachables suppressed and time out.
/// The sysctls are per network namespace: the host's are untouched.
fn unlimit_icmp_errors() {
    for (path, what) in [
        ("/proc/sys/net/ipv4/icmp_ratelimit", "IPv4"),
        ("/proc/sys/net/ipv6/icmp/ratelimit", "IPv6"),
    ] {
        // Opened from this thread, the file is this namespace's sysctl.
        std::fs::write(path, "0\n").unwrap_or_else(|e| {
            panic!("cannot lift the {what} ICMP rate limit in the test namespace: {e}")
        });
    }
}

/// Set IFF_UP on `lo` in the calling thread's namespace.
pub(crate) fn bring_up_loopback() -> io::Result<()> {
    // SAFETY: socket(2) with constant arguments.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is fresh and owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifreq is a plain C struct; all-zero is valid. The ioctls read and write it.
    unsafe {
        let mut req: libc::ifreq = std::mem::zeroed();
        for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
            *dst = *src as libc::c_char;
        }
        if libc::ioctl(fd.as_raw_fd(), libc::SIOCGIFFLAGS, &raw mut req) != 0 {
            return Err(io::Error::last_os_error());
        }
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(fd.as_raw_fd(), libc::SIOCSIFFLAGS, &raw mut req) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}
