//! # zt-testkit — the kernel-test helpers every zt backend shares
//!
//! zt's backends are held to one contract: the kernel must decide every packet as
//! [`zt_core::Ruleset::evaluate`] does. Proving that takes real kernels, real processes
//! running as real uids and real connections, without ever touching the host's own firewall.
//! This crate is that harness, shared by the nftables, iptables and eBPF backends' tests and
//! benchmarks:
//!
//! * [`Netns`]: a fresh network namespace entered by the test's own thread (loopback up), so
//!   everything the test programs — netlink sockets, `nft`, `iptables-restore` — lands there.
//!   [`Netns::add_peer`] links a second namespace ([`Peer`]) by a veth pair for inbound traffic.
//! * [`connect_as`]: a TCP or UDP connection attempt from a forked child running as a given
//!   uid/gid (optionally inside a [`TestCgroup`]), reported as an [`Outcome`].
//! * [`Listeners`]: TCP and UDP echo servers; [`Held`]: an established connection kept open
//!   across a policy change.
//! * [`require`]: prerequisites (root, binaries, cgroup v2, bpffs), a hard failure under
//!   `CI=true` and a visible skip elsewhere.
//! * [`expected_outcome`] / [`expected_outcomes`]: what the kernel must do for an evaluator
//!   verdict; [`differential`]: generated policies and probes realized in the kernel and
//!   compared with the evaluator.
//!
//! ## Safety model
//! Namespaces are per thread: [`Netns::new`] unshares the calling thread's network namespace
//! and panics unless the result differs from PID 1's, so the host namespace is never
//! programmed; nothing needs cleaning up (the namespace dies with the thread and its children).
//! Probes fork children that, after the fork, make only raw async-signal-safe system calls:
//! everything they need is prepared before the fork, nothing allocates after it.
//!
//! ```no_run
//! use std::time::Duration;
//! use zt_testkit::{Identity, Listeners, Netns, Outcome, Prerequisite, Proto, connect_as, require};
//!
//! if !require(&[Prerequisite::Root, Prerequisite::Binary("nft")]) {
//!     return;
//! }
//! let netns = Netns::new();
//! let _listeners = Listeners::start(&[(Proto::Tcp, "127.0.0.1:7001".parse().unwrap())]);
//! netns.run_ok("nft", &["add", "table", "inet", "t"]);
//! let nobody = Identity::new(65534, 65534);
//! let dst = "127.0.0.1:7001".parse().unwrap();
//! assert_eq!(connect_as(nobody, Proto::Tcp, dst, Duration::from_millis(500)), Outcome::Connected);
//! ```

mod cgroup;
mod child;
pub mod differential;
mod expect;
pub mod fleet;
mod held;
mod listen;
mod netns;
mod peer;
mod prerequisites;
mod probe;
mod release;
pub mod scenarios;
mod sockaddr;

pub use cgroup::{TestCgroup, cgroup_v2_root};
pub use expect::{expected_outcome, expected_outcomes};
pub use held::Held;
pub use listen::Listeners;
pub use netns::Netns;
pub use peer::Peer;
pub use prerequisites::{Prerequisite, require};
pub use probe::{Identity, Outcome, Proto, connect_as};
pub use release::release_binary;
