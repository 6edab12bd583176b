//! The far end of a veth pair: a second namespace that sends inbound traffic.
//!
//! Ingress rules match packets arriving on a real interface (`zt:loopback` accepts everything
//! arriving on `lo`), so inbound probes must come from another namespace. The peer namespace
//! is created by a short-lived helper thread and then held by an open descriptor (no process
//! to reap); commands and probes enter it with `setns(2)` after forking. When the [`Peer`] is
//! dropped the descriptor closes, the namespace dies, and the kernel deletes the veth pair.

use crate::netns::{self, Netns};
use crate::probe::{self, Attempt, Outcome, Proto};
use std::fs::File;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The other end of the veth pair, for inbound traffic. Dropping it removes it.
pub struct Peer {
    ns: OwnedFd,
    local_interface: String,
}

/// Distinguishes the veth pairs of one test process.
static PAIRS: AtomicU32 = AtomicU32::new(0);

impl Peer {
    /// The test namespace's IPv4 address on the veth pair.
    pub const LOCAL_V4: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
    /// The peer's IPv4 address.
    pub const PEER_V4: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
    /// The test namespace's IPv6 address on the veth pair.
    pub const LOCAL_V6: Ipv6Addr = Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 1);
    /// The peer's IPv6 address.
    pub const PEER_V6: Ipv6Addr = Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 2);

    /// Create the peer namespace and the veth pair, configure both ends and wait until the
    /// link carries traffic.
    pub(crate) fn create(netns: &Netns) -> Peer {
        let ns = new_namespace()
            .unwrap_or_else(|e| panic!("cannot create the peer's network namespace: {e}"));
        // Interface names are at most 15 bytes: "zt" + pid in hex (≤ 6) + side + counter (≤ 4).
        let pid = std::process::id();
        let n = PAIRS.fetch_add(1, Ordering::Relaxed) % 10_000;
        let local = format!("zt{pid:x}l{n}");
        let remote = format!("zt{pid:x}r{n}");
        let ns_path = format!("/proc/{pid}/fd/{}", ns.as_raw_fd());
        let peer = Peer {
            ns,
            local_interface: local.clone(),
        };
        let (v4, v6) = (
            format!("{}/24", Self::LOCAL_V4),
            format!("{}/64", Self::LOCAL_V6),
        );
        let ip = |args: &[&str]| netns.run_ok("ip", args);
        ip(&[
            "link", "add", &local, "type", "veth", "peer", "name", &remote, "netns", &ns_path,
        ]);
        ip(&["addr", "add", &v4, "dev", &local]);
        ip(&["addr", "add", &v6, "dev", &local, "nodad"]);
        ip(&["link", "set", &local, "up"]);
        let (v4, v6) = (
            format!("{}/24", Self::PEER_V4),
            format!("{}/64", Self::PEER_V6),
        );
        let peer_ip = |args: &[&str]| netns::checked(peer.run("ip", args), "ip", args);
        peer_ip(&["addr", "add", &v4, "dev", &remote]);
        peer_ip(&["addr", "add", &v6, "dev", &remote, "nodad"]);
        peer_ip(&["link", "set", &remote, "up"]);
        wait_until_running(&local, || ip(&["-o", "link", "show", "dev", &local]));
        wait_until_running(&remote, || peer_ip(&["-o", "link", "show", "dev", &remote]));
        peer
    }

    /// Connect from inside the peer namespace (as root).
    pub fn connect(&self, proto: Proto, dst: SocketAddr, timeout: Duration) -> Outcome {
        self.start(proto, dst, timeout).wait()
    }

    /// Start a connection attempt from the peer without waiting for it.
    pub(crate) fn start(&self, proto: Proto, dst: SocketAddr, timeout: Duration) -> Attempt {
        let mut plan = probe::plan(proto, dst, timeout);
        plan.netns = Some(self.ns.as_raw_fd());
        Attempt::start(&plan, format!("{proto} to {dst} from the peer"))
    }

    /// Run a command inside the peer namespace.
    pub fn run(&self, program: &str, args: &[&str]) -> Output {
        let fd = self.ns.as_raw_fd();
        let mut command = Command::new(program);
        command.args(args);
        // SAFETY: the hook runs between fork and exec and only calls setns(2), which is
        // async-signal-safe; `fd` stays open (owned by self) until `output` returns.
        unsafe {
            command.pre_exec(move || {
                if libc::setns(fd, libc::CLONE_NEWNET) == 0 {
                    Ok(())
                } else {
                    Err(io::Error::last_os_error())
                }
            });
        }
        netns::output(&mut command, program)
    }

    /// The name of the veth end in the test's namespace (for rules matching `iifname`).
    pub fn local_interface(&self) -> &str {
        &self.local_interface
    }
}

/// A new network namespace with `lo` up, held by a descriptor. A helper thread unshares and
/// exits, so no thread of the caller changes namespace.
fn new_namespace() -> io::Result<OwnedFd> {
    std::thread::Builder::new()
        .name("zt-testkit-peer".into())
        .spawn(|| {
            // SAFETY: unshare(2) affects only this helper thread, which ends right after.
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                return Err(io::Error::last_os_error());
            }
            let ns = File::open("/proc/thread-self/ns/net")?;
            netns::bring_up_loopback()?;
            Ok(OwnedFd::from(ns))
        })?
        .join()
        .map_err(|_| io::Error::other("the namespace helper thread panicked"))?
}

/// Wait until `show` (`ip -o link show dev …`) reports the link operational with its queue
/// attached: until then the kernel silently drops what is sent, and a probe would time out.
fn wait_until_running(interface: &str, show: impl Fn() -> String) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let line = show();
        if line.contains("LOWER_UP") && line.contains("state UP") && !line.contains("qdisc noop") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "veth {interface} did not come up within 10 s: {line}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}
