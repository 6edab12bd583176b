//! What every kernel test of the eBPF backend sets up: a fresh network namespace, a fresh child
//! cgroup the programs attach to (cgroup BPF is not scoped to network namespaces, so tests
//! never attach anywhere else), and a bpffs pin directory of its own, all removed on drop.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use zt_backend_ebpf::{EbpfBackend, Options};
use zt_core::{Backend, Policy, Ruleset, Snapshot, StaticResolver, Verdict};
use zt_testkit::{Identity, Netns, Outcome, Prerequisite, Proto, TestCgroup, require};

/// A probe's timeout: refusals are immediate, connections over loopback fast.
pub const TIMEOUT: Duration = Duration::from_millis(1500);

/// The prerequisites of every test here; false (after a visible skip) outside CI.
pub fn prerequisites() -> bool {
    require(&[
        Prerequisite::Root,
        Prerequisite::CgroupV2,
        Prerequisite::BpfFs,
    ])
}

static PIN_DIRS: AtomicU32 = AtomicU32::new(0);

/// A per-test pin directory path (not created: the backend creates it).
pub fn pin_dir() -> PathBuf {
    let n = PIN_DIRS.fetch_add(1, Ordering::Relaxed);
    PathBuf::from(format!("/sys/fs/bpf/zt-test-{}-{n}", std::process::id()))
}

/// Backend options for a test: pins under `pin_dir`, programs attached to `cgroup`.
pub fn options(pin_dir: &Path, cgroup: &TestCgroup) -> Options {
    let root = zt_backend_ebpf::cgroup_v2_root().expect("a cgroup v2 mount");
    Options::new(root).pin_dir(pin_dir).attach_to(cgroup.path())
}

/// One test's world. Fields drop in order: the backend flushes first (detaching from the
/// cgroup), then the pin directory goes, then the cgroup, then the namespace.
pub struct Fixture {
    pub backend: EbpfBackend,
    pub pin_dir: PathBuf,
    pub cgroup: TestCgroup,
    pub netns: Netns,
}

impl Fixture {
    /// A namespace, a cgroup named `name`, and a backend attached to it.
    pub fn new(name: &str) -> Fixture {
        let netns = Netns::new();
        let cgroup = TestCgroup::new(name);
        let pin_dir = pin_dir();
        let backend = EbpfBackend::new(options(&pin_dir, &cgroup));
        Fixture {
            backend,
            pin_dir,
            cgroup,
            netns,
        }
    }

    /// Plan and apply `ruleset`; the snapshot.
    pub fn apply(&mut self, ruleset: &Ruleset) -> Snapshot {
        let plan = self.backend.plan(ruleset).expect("plan");
        self.backend.apply(&plan).expect("apply")
    }

    /// A connection attempt from inside the test cgroup as `id`.
    pub fn connect(&self, id: Identity, proto: Proto, dst: SocketAddr) -> Outcome {
        self.cgroup.connect_as(id, proto, dst, TIMEOUT)
    }

    /// Every path under the pin directory, sorted.
    pub fn pins(&self) -> Vec<String> {
        let mut found = Vec::new();
        collect(&self.pin_dir, &mut found);
        found.sort();
        found
    }
}

fn collect(dir: &Path, found: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        found.push(p.display().to_string());
        if p.is_dir() {
            collect(&p, found);
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Err(e) = self.backend.flush() {
            eprintln!("flush failed: {e}");
        }
        let _ = std::fs::remove_dir_all(&self.pin_dir);
    }
}

/// What a process must experience under this backend for an egress verdict: socket hooks
/// refuse with EPERM for both deny (drop) and reject.
pub fn ebpf_outcome(verdict: Verdict) -> Outcome {
    match verdict {
        Verdict::Accept => Outcome::Connected,
        Verdict::Drop | Verdict::Reject => Outcome::NotPermitted,
    }
}

/// A ruleset from YAML, with `web` = 4001 and `db` = 4002.
pub fn ruleset(yaml: &str) -> Ruleset {
    let resolver = StaticResolver::new().user("web", 4001).user("db", 4002);
    Policy::from_yaml(yaml, "test.yaml", &resolver)
        .unwrap_or_else(|e| panic!("{e}\n{yaml}"))
        .policy
        .ruleset()
}

/// An unconnected UDP datagram — `sendto()` on a socket that never connected, the call the
/// `sendmsg4`/`sendmsg6` hooks decide — from a child in `cgroup` running as `id`:
/// `NotPermitted` when refused, `Connected` when the listener's echo comes back.
///
/// zt-testkit's UDP probes connect first (decided by `connect4`/`connect6`), so this one is
/// written here. The child makes only raw system calls: everything is prepared before `fork`.
pub fn sendto_as(cgroup: &TestCgroup, id: Identity, dst: SocketAddr) -> Outcome {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let procs = CString::new(cgroup.path().join("cgroup.procs").as_os_str().as_bytes()).unwrap();
    // SAFETY: sockaddr_storage is plain data; all-zero is valid.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let (family, len) = match dst {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_in fits in sockaddr_storage.
            unsafe { std::ptr::write((&raw mut storage).cast(), sin) };
            (libc::AF_INET, size_of::<libc::sockaddr_in>())
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: 0,
            };
            // SAFETY: sockaddr_in6 fits in sockaddr_storage.
            unsafe { std::ptr::write((&raw mut storage).cast(), sin6) };
            (libc::AF_INET6, size_of::<libc::sockaddr_in6>())
        }
    };
    let len = len as libc::socklen_t;
    let timeout_ms = libc::c_int::try_from(TIMEOUT.as_millis()).unwrap();
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into `fds`.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    let (read_end, write_end) = (fds[0], fds[1]);
    // SAFETY: the child only makes async-signal-safe system calls on data prepared above,
    // then _exit()s.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: raw system calls on prepared, live data; see above.
        unsafe {
            let report = |code: i32| {
                libc::write(write_end, (&raw const code).cast(), size_of::<i32>());
                libc::_exit(0)
            };
            let fd = libc::open(procs.as_ptr(), libc::O_WRONLY);
            if fd < 0 || libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                report(-1);
            }
            libc::close(fd);
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setresgid(id.gid, id.gid, id.gid) != 0
                || libc::setresuid(id.uid, id.uid, id.uid) != 0
            {
                report(-2);
            }
            let s = libc::socket(family, libc::SOCK_DGRAM, 0);
            if s < 0 {
                report(-3);
            }
            let sent = libc::sendto(
                s,
                b"z".as_ptr().cast(),
                1,
                0,
                (&raw const storage).cast(),
                len,
            );
            if sent < 0 {
                report(*libc::__errno_location());
            }
            let mut p = libc::pollfd {
                fd: s,
                events: libc::POLLIN,
                revents: 0,
            };
            if libc::poll(&raw mut p, 1, timeout_ms) == 1 {
                let mut buf = [0u8; 16];
                if libc::recv(s, buf.as_mut_ptr().cast(), buf.len(), 0) > 0 {
                    report(0);
                }
                report(*libc::__errno_location());
            }
            report(libc::ETIMEDOUT)
        }
    }
    assert!(pid > 0, "fork failed");
    // SAFETY: closes our copy of the child's end; reads one i32 from the pipe; reaps the child.
    let code = unsafe {
        libc::close(write_end);
        let mut code = i32::MIN;
        let n = libc::read(read_end, (&raw mut code).cast(), size_of::<i32>());
        libc::close(read_end);
        let mut status = 0;
        libc::waitpid(pid, &raw mut status, 0);
        assert_eq!(
            n,
            size_of::<i32>() as isize,
            "the sendto child did not report"
        );
        code
    };
    match code {
        0 => Outcome::Connected,
        -1 => panic!(
            "the sendto child could not join cgroup {}",
            cgroup.relative()
        ),
        -2 => panic!("the sendto child could not become {id}"),
        -3 => panic!("the sendto child could not open a socket"),
        libc::EPERM => Outcome::NotPermitted,
        libc::ETIMEDOUT => Outcome::TimedOut,
        libc::ECONNREFUSED => Outcome::Refused,
        e => Outcome::Error(e),
    }
}
