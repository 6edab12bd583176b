//! An established TCP connection held open by a child running as a given uid.
//!
//! Conntrack lets an established flow survive a new deny rule (unless the policy drops
//! `preserve_established`); a test proves it by opening a connection, changing the policy and
//! exchanging bytes on the same connection again.

use crate::child::{self, RECORD, Report};
use crate::probe::{self, Forked, Identity, MARGIN, Outcome, Proto, Received};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// An established TCP connection held by a child process running as `id`, to show that an
/// established flow survives a policy change. The child is killed and reaped on drop.
///
/// Conntrack only starts tracking in a fresh namespace once a rule needs it; a connection
/// opened before that is picked up mid-stream and its next packet is `ct state new`. Install
/// a ruleset (any that uses conntrack, e.g. an allow-all zt policy) before opening one.
pub struct Held {
    /// Kept for its drop, which kills and reaps the child.
    _child: Forked,
    channel: OwnedFd,
    seq: u32,
}

impl Held {
    /// Connect to `dst` (a TCP echo listener) as `id`; the outcome when the connection could
    /// not be established within `timeout`.
    pub fn open(id: Identity, dst: SocketAddr, timeout: Duration) -> Result<Held, Outcome> {
        let mut plan = probe::plan(Proto::Tcp, dst, timeout);
        plan.credentials = Some((id.uid, id.gid));
        let (channel, child_end) = probe::channel();
        let fd = child_end.as_raw_fd();
        // SAFETY (of the child's body): held_main is the fork-child entry point.
        let mut child = Forked::spawn(|| unsafe { child::held_main(&plan, fd) });
        drop(child_end);
        let what = format!("held tcp connection to {dst} as {id}");
        match probe::receive(&channel, Instant::now() + timeout + MARGIN) {
            Received::Record(record) => match Report::decode(record) {
                Some(Report::Done(Outcome::Connected)) => Ok(Held {
                    _child: child,
                    channel,
                    seq: 0,
                }),
                Some(Report::Done(outcome)) => Err(outcome),
                Some(Report::Failed(step, errno)) => panic!(
                    "{what}: the child could not {step}: {}",
                    std::io::Error::from_raw_os_error(errno)
                ),
                None => panic!("{what}: malformed report {record:?}"),
            },
            Received::Closed => {
                let status = child.reap();
                panic!("{what}: the child exited without reporting (wait status {status:#x})")
            }
            Received::Deadline => panic!("{what}: the child overran its timeout by {MARGIN:?}"),
        }
    }

    /// Send a byte and wait for its echo; true when the round trip completes within `timeout`.
    pub fn exchange(&mut self, timeout: Duration) -> bool {
        self.seq = self.seq.wrapping_add(1);
        let ms = u32::try_from(timeout.as_millis().max(1)).unwrap_or(u32::MAX);
        let mut command = [0u8; RECORD];
        command[..4].copy_from_slice(&self.seq.to_le_bytes());
        command[4..].copy_from_slice(&ms.to_le_bytes());
        // SAFETY: sends from a live buffer of its stated length on our own socket.
        let sent = unsafe {
            libc::send(
                self.channel.as_raw_fd(),
                command.as_ptr().cast(),
                RECORD,
                libc::MSG_NOSIGNAL,
            )
        };
        if sent != RECORD as isize {
            return false;
        }
        let deadline = Instant::now() + timeout + MARGIN;
        loop {
            match probe::receive(&self.channel, deadline) {
                Received::Record(r) => {
                    let [s0, s1, s2, s3, o0, o1, o2, o3] = r;
                    // Answers to earlier exchanges that timed out on our side are skipped.
                    if u32::from_le_bytes([s0, s1, s2, s3]) == self.seq {
                        return u32::from_le_bytes([o0, o1, o2, o3]) == 1;
                    }
                }
                Received::Closed | Received::Deadline => return false,
            }
        }
    }
}
