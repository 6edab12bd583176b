//! The netlink socket: one transaction per change, dumps to read zt's table back.
//!
//! Two traps measured on this kernel shape the sending side (DEPENDENCIES.md): a batch split
//! into several `sendmsg` calls is not one transaction (from about 1 000 rules on, the kernel
//! committed nothing while no error came back), so the whole batch goes out in one `sendto`;
//! and a large batch overflows the default socket buffers (ENOBUFS), so both are enlarged. On
//! kernels that acknowledge the batch's END message (6.10 and later), the per-message
//! acknowledgements are switched off — errors are still reported — so a 10 000-rule batch
//! produces one acknowledgement instead of 10 000.

use crate::error::NftError;
use crate::ffi::{self, DumpKind, Dumped, EncodedBatch};
use crate::low::LowTable;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

const NLMSG_HDRLEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NLM_F_ACK: u16 = 4;
const NLM_F_DUMP_INTR: u16 = 0x10;
/// How long to wait for the kernel's answer to a transaction or a dump message.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// The header fields of one netlink message inside a buffer.
#[derive(Clone, Copy, Debug)]
struct Header {
    offset: usize,
    len: usize,
    kind: u16,
    flags: u16,
    seq: u32,
}

/// One message of a dump: set elements in safe Rust where [`crate::elements`] takes the
/// message, everything else (and anything it does not take) through libnftnl.
fn decode(kind: &DumpKind, bytes: &[u8]) -> Result<Dumped, NftError> {
    if let DumpKind::Elements(_) = kind
        && let Some((table, set, elements)) = crate::elements::decode(bytes)
    {
        return Ok(Dumped::Elements(table, set, elements));
    }
    ffi::decode_message(kind, bytes)
}

/// The netlink messages in `buf`, in order (stops at a malformed length).
fn headers(buf: &[u8]) -> Vec<Header> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + NLMSG_HDRLEN <= buf.len() {
        let word = |i: usize| {
            u32::from_ne_bytes([
                buf[at + i],
                buf[at + i + 1],
                buf[at + i + 2],
                buf[at + i + 3],
            ])
        };
        let len = word(0) as usize;
        if len < NLMSG_HDRLEN || at + len > buf.len() {
            break;
        }
        out.push(Header {
            offset: at,
            len,
            kind: u16::from_ne_bytes([buf[at + 4], buf[at + 5]]),
            flags: u16::from_ne_bytes([buf[at + 6], buf[at + 7]]),
            seq: word(8),
        });
        at += (len + 3) & !3;
    }
    out
}

/// The errno and original sequence number of an `NLMSG_ERROR` message (errno 0 is an ACK).
fn error_of(buf: &[u8], h: Header) -> Option<(i32, u32)> {
    let p = h.offset + NLMSG_HDRLEN;
    let bytes = buf.get(p..p + 4 + NLMSG_HDRLEN)?;
    let errno = -i32::from_ne_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let seq = u32::from_ne_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]);
    Some((errno, seq))
}

/// A netfilter netlink socket in the calling thread's network namespace.
#[derive(Debug)]
pub(crate) struct Socket {
    fd: OwnedFd,
    seq: u32,
}

fn os(op: &'static str) -> NftError {
    NftError::Netlink {
        op,
        source: io::Error::last_os_error(),
    }
}

impl Socket {
    /// Open and bind a `NETLINK_NETFILTER` socket.
    pub(crate) fn open() -> Result<Self, NftError> {
        // SAFETY: plain socket creation; the descriptor is owned immediately.
        let raw = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_NETFILTER,
            )
        };
        if raw < 0 {
            return Err(os("socket"));
        }
        // SAFETY: `raw` is a fresh, valid descriptor.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: a zeroed sockaddr_nl with the family set binds to an automatic port id.
        let rc = unsafe {
            let mut addr: libc::sockaddr_nl = std::mem::zeroed();
            addr.nl_family = libc::AF_NETLINK as u16;
            libc::bind(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_nl).cast::<libc::sockaddr>(),
                std::mem::size_of::<libc::sockaddr_nl>() as u32,
            )
        };
        if rc < 0 {
            return Err(os("bind"));
        }
        let socket = Self { fd, seq: now_seq() };
        socket.set_timeout(ANSWER_TIMEOUT)?;
        Ok(socket)
    }

    fn set_timeout(&self, t: Duration) -> Result<(), NftError> {
        let tv = libc::timeval {
            tv_sec: t.as_secs() as libc::time_t,
            tv_usec: libc::suseconds_t::from(t.subsec_micros()),
        };
        self.setsockopt(libc::SO_RCVTIMEO, &tv, "set the receive timeout")
    }

    fn setsockopt<T>(&self, opt: i32, value: &T, op: &'static str) -> Result<(), NftError> {
        // SAFETY: `value` is a live, correctly sized option value.
        let rc = unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                (value as *const T).cast::<libc::c_void>(),
                std::mem::size_of::<T>() as u32,
            )
        };
        if rc < 0 { Err(os(op)) } else { Ok(()) }
    }

    /// Make room for `bytes` of batch and the answers to it.
    fn size_buffers(&self, bytes: usize) -> Result<(), NftError> {
        let size = i32::try_from(bytes.saturating_mul(2).max(1 << 20)).unwrap_or(i32::MAX);
        // The FORCE variants pass the system maximum; zt runs with CAP_NET_ADMIN anyway.
        self.setsockopt(libc::SO_SNDBUFFORCE, &size, "enlarge the send buffer")?;
        self.setsockopt(libc::SO_RCVBUFFORCE, &size, "enlarge the receive buffer")
    }

    fn send(&self, bytes: &[u8]) -> Result<(), NftError> {
        // SAFETY: a zeroed sockaddr_nl addresses the kernel (port 0).
        let sent = unsafe {
            let mut addr: libc::sockaddr_nl = std::mem::zeroed();
            addr.nl_family = libc::AF_NETLINK as u16;
            libc::sendto(
                self.fd.as_raw_fd(),
                bytes.as_ptr().cast::<libc::c_void>(),
                bytes.len(),
                0,
                (&addr as *const libc::sockaddr_nl).cast::<libc::sockaddr>(),
                std::mem::size_of::<libc::sockaddr_nl>() as u32,
            )
        };
        if sent < 0 {
            return Err(os("send"));
        }
        if sent as usize != bytes.len() {
            return Err(NftError::Netlink {
                op: "send",
                source: io::Error::other("the kernel took only part of the batch"),
            });
        }
        Ok(())
    }

    fn recv(&self, buf: &mut [u8]) -> Result<usize, NftError> {
        // SAFETY: `buf` is a live, writable buffer of the given length.
        let n = unsafe {
            libc::recv(
                self.fd.as_raw_fd(),
                buf.as_mut_ptr().cast::<libc::c_void>(),
                buf.len(),
                0,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if matches!(e.raw_os_error(), Some(libc::EAGAIN)) {
                return Err(NftError::Timeout(ANSWER_TIMEOUT.as_secs()));
            }
            return Err(NftError::Netlink {
                op: "receive",
                source: e,
            });
        }
        Ok(n as usize)
    }

    /// Send a transaction and wait for the kernel's verdict on it.
    pub(crate) fn transact(&mut self, batch: &EncodedBatch) -> Result<(), NftError> {
        let mut bytes = batch.bytes.clone();
        let hs = headers(&bytes);
        let (Some(first), Some(last)) = (hs.first(), hs.last()) else {
            return Err(NftError::Encode("an empty batch".into()));
        };
        if first.kind != NFNL_MSG_BATCH_BEGIN || last.kind != NFNL_MSG_BATCH_END {
            return Err(NftError::Encode("a batch without BEGIN and END".into()));
        }
        let objects = &hs[1..hs.len() - 1];
        // Which sequence number carries which subject, for naming what the kernel refused.
        let subject_of = |seq: u32| {
            objects
                .iter()
                .position(|h| h.seq == seq)
                .and_then(|i| batch.subjects.get(i).cloned())
                .unwrap_or_else(|| format!("message {seq}"))
        };
        // Success is the END's acknowledgement on kernels that give one (6.10 and later);
        // older kernels acknowledge every object message instead.
        let end_acked = last.flags & NLM_F_ACK != 0;
        let mut pending: Vec<u32> = if end_acked {
            vec![last.seq]
        } else {
            Vec::new()
        };
        for h in objects {
            if end_acked {
                // Errors are reported whatever the flags.
                let flags = (h.flags & !NLM_F_ACK).to_ne_bytes();
                bytes[h.offset + 6..h.offset + 8].copy_from_slice(&flags);
            } else if h.flags & NLM_F_ACK != 0 {
                pending.push(h.seq);
            }
        }
        self.size_buffers(bytes.len() + objects.len() * 1024)?;
        self.send(&bytes)?;

        let mut buf = vec![0u8; 1 << 17];
        let mut first_error: Option<(i32, u32)> = None;
        while !pending.is_empty() {
            let n = match self.recv(&mut buf) {
                Ok(n) => n,
                // After a refusal the kernel may not acknowledge the rest: stop at the pause.
                Err(NftError::Timeout(_)) if first_error.is_some() => break,
                Err(e) => return Err(e),
            };
            for h in headers(&buf[..n]) {
                if h.kind != NLMSG_ERROR {
                    continue;
                }
                let Some((errno, seq)) = error_of(&buf[..n], h) else {
                    continue;
                };
                if errno != 0 && first_error.is_none() {
                    first_error = Some((errno, seq));
                    // A refused batch is aborted; listen briefly for the remaining answers.
                    self.set_timeout(Duration::from_millis(200))?;
                }
                pending.retain(|s| *s != seq);
            }
        }
        self.set_timeout(ANSWER_TIMEOUT)?;
        match first_error {
            None => Ok(()),
            Some((errno, seq)) => Err(NftError::Refused {
                subject: subject_of(seq),
                source: io::Error::from_raw_os_error(errno),
            }),
        }
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Send one request and collect the objects of its answer. `None` when the kernel answers
    /// ENOENT (the table does not exist).
    fn request(
        &mut self,
        kind: &DumpKind,
        table: &str,
    ) -> Result<Option<(Vec<Dumped>, bool)>, NftError> {
        let seq = self.next_seq();
        let req = ffi::dump_request(kind.clone(), table, seq)?;
        self.send(&req)?;
        let mut buf = vec![0u8; 1 << 17];
        let mut out = Vec::new();
        let mut interrupted = false;
        loop {
            let n = self.recv(&mut buf)?;
            for h in headers(&buf[..n]) {
                if h.seq != seq {
                    continue;
                }
                interrupted |= h.flags & NLM_F_DUMP_INTR != 0;
                match h.kind {
                    NLMSG_DONE => return Ok(Some((out, interrupted))),
                    NLMSG_ERROR => match error_of(&buf[..n], h) {
                        Some((0, _)) => return Ok(Some((out, interrupted))),
                        Some((libc::ENOENT, _)) => return Ok(None),
                        Some((errno, _)) => {
                            return Err(NftError::Netlink {
                                op: "read zt's table",
                                source: io::Error::from_raw_os_error(errno),
                            });
                        }
                        None => return Err(NftError::Decode("error message".into())),
                    },
                    _ => out.push(decode(kind, &buf[h.offset..h.offset + h.len])?),
                }
            }
        }
    }

    /// Read table `name` whole, or `None` when it does not exist. Retries when the ruleset
    /// changed during the read, so the result is one consistent generation.
    pub(crate) fn dump(&mut self, name: &str) -> Result<Option<LowTable>, NftError> {
        for _ in 0..8 {
            if let Some(table) = self.dump_once(name)? {
                return Ok(table);
            }
        }
        Err(NftError::Decode(
            "consistent table: the ruleset kept changing while zt read it".into(),
        ))
    }

    /// `Some(result)` when the dump was consistent, `None` to retry.
    fn dump_once(&mut self, name: &str) -> Result<Option<Option<LowTable>>, NftError> {
        if self.request(&DumpKind::Table, name)?.is_none() {
            return Ok(Some(None));
        }
        let mut table = LowTable {
            name: name.to_owned(),
            ..LowTable::default()
        };
        let mut intr = false;
        let Some((chains, i)) = self.request(&DumpKind::Chains, name)? else {
            return Ok(None);
        };
        intr |= i;
        for d in chains {
            if let Dumped::Chain(t, c) = d
                && t == name
            {
                table.chains.push(c);
            }
        }
        let Some((sets, i)) = self.request(&DumpKind::Sets, name)? else {
            return Ok(None);
        };
        intr |= i;
        for d in sets {
            if let Dumped::Set(t, s) = d
                && t == name
            {
                table.sets.push(s);
            }
        }
        for set in &mut table.sets {
            let Some((elems, i)) = self.request(&DumpKind::Elements(set.name.clone()), name)?
            else {
                return Ok(None);
            };
            intr |= i;
            for d in elems {
                if let Dumped::Elements(t, s, mut e) = d
                    && t == name
                    && s == set.name
                {
                    set.elements.append(&mut e);
                }
            }
            set.elements.sort_by(crate::low::element_order);
        }
        let Some((rules, i)) = self.request(&DumpKind::Rules, name)? else {
            return Ok(None);
        };
        intr |= i;
        for d in rules {
            if let Dumped::Rule(t, chain, r) = d
                && t == name
                && let Some(c) = table.chains.iter_mut().find(|c| c.name == chain)
            {
                c.rules.push(r);
            }
        }
        if intr {
            return Ok(None);
        }
        Ok(Some(Some(table)))
    }
}

/// A sequence number start that differs between processes (as libmnl's `time(NULL)` does).
fn now_seq() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_secs() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A batch's element message as a dump has it: libnftnl numbers the members of the
    /// element list 1, 2, 3… when it builds a message; the kernel dumps each as
    /// NFTA_LIST_ELEM (1), which is what libnftnl accepts when it parses one.
    fn as_dump(message: &[u8]) -> Vec<u8> {
        let mut out = message.to_vec();
        let mut at = 20;
        while at + 4 <= out.len() {
            let len = usize::from(u16::from_ne_bytes([out[at], out[at + 1]]));
            let kind = u16::from_ne_bytes([out[at + 2], out[at + 3]]) & 0x3fff;
            if kind == 3 {
                let mut inner = at + 4;
                while inner + 4 <= at + len {
                    let l = usize::from(u16::from_ne_bytes([out[inner], out[inner + 1]]));
                    let flags = u16::from_ne_bytes([out[inner + 2], out[inner + 3]]) & 0xc000;
                    out[inner + 2..inner + 4].copy_from_slice(&(1 | flags).to_ne_bytes());
                    inner += l.next_multiple_of(4);
                }
            }
            at += len.next_multiple_of(4).max(4);
        }
        out
    }

    #[test]
    fn elements_read_in_rust_are_the_elements_libnftnl_reads() {
        use crate::low::{LowElem, LowExpr, LowSet, LowTable};
        let elem = |k: u8, end: bool, packets: u64, comment: Option<&str>| LowElem {
            key: vec![10, 0, k, 0, 0, 0, 0x07, 0xd0],
            key_end: end.then(|| vec![10, 0, k, 255, 0, 0, 0x07, 0xd0]),
            exprs: vec![LowExpr::Counter {
                packets,
                bytes: packets * 60,
            }],
            comment: comment.map(str::to_owned),
        };
        let mut elements: Vec<LowElem> = (0..200u8)
            .map(|k| {
                elem(
                    k,
                    k % 2 == 0,
                    u64::from(k) * 1_000_003,
                    Some("rule-with-a-name"),
                )
            })
            .collect();
        elements.push(elem(250, false, 0, None));
        let table = LowTable {
            name: "zt".into(),
            sets: vec![LowSet {
                name: "s0".into(),
                flags: 0x4 | 0x20,
                key_type: 7,
                key_len: 8,
                fields: vec![4, 4],
                userdata: vec![],
                size: 0,
                exprs: vec![LowExpr::Counter {
                    packets: 0,
                    bytes: 0,
                }],
                elements,
            }],
            chains: vec![],
        };
        let batch = ffi::encode_batch("zt", false, Some(&table)).unwrap();
        let kind = DumpKind::Elements("s0".into());
        let mut read = Vec::new();
        for h in headers(&batch.bytes) {
            if h.kind != (10 << 8) | 12 {
                continue; // not NFT_MSG_NEWSETELEM
            }
            let bytes = as_dump(&batch.bytes[h.offset..h.offset + h.len]);
            let bytes = bytes.as_slice();
            let (t, s, rust) = crate::elements::decode(bytes).unwrap();
            let Ok(Dumped::Elements(ct, cs, c)) = ffi::decode_message(&kind, bytes) else {
                panic!("libnftnl did not read the message");
            };
            assert_eq!((t, s), (ct, cs));
            assert_eq!(rust, c);
            read.extend(rust);
        }
        // All of them, across the messages the elements were split into (a zero counter is
        // not sent: the set's own counter gives every element one in the kernel).
        assert_eq!(read.len(), table.sets[0].elements.len());
        assert!(
            read.iter()
                .zip(&table.sets[0].elements)
                .all(|(r, e)| r.key == e.key && r.key_end == e.key_end && r.comment == e.comment)
        );
    }
}
