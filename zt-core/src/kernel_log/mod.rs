//! Blocked attempts, read back from the kernel log: parse netfilter log lines, summarize them.
//!
//! zt's backends log refused packets through the kernel's `nf_log_syslog` logger (nftables
//! `log prefix "ZT-BLOCKED: " flags skuid`, iptables `-j LOG --log-prefix "ZT-BLOCKED: "
//! --log-uid`), which prints one line per packet into the kernel ring buffer. `zt audit` reads
//! those lines back to answer "who tried to reach what, and was refused". Reading the sources
//! (the journal, `/var/log/kern.log`, `dmesg`, a file) and turning uids into names is the
//! CLI's job; this module is the pure part every embedder needs too: [`parse_line`] turns one
//! line into a [`LogRecord`], [`summarize`] groups records into a [`Summary`], and
//! [`parse_since`] reads the start of the time window an operator asks for.
//!
//! # The line formats
//!
//! The same kernel message reaches the operator with one of several headers in front:
//!
//! | source | example |
//! |---|---|
//! | rsyslog on Debian 12 (`/var/log/kern.log`) | `2026-11-23T19:00:00.123456+00:00 host kernel: [ 1234.567890] ZT-BLOCKED: IN= OUT=lo …` |
//! | `journalctl -k -o short-iso-precise` | `2026-11-23T19:00:00.123456+0000 host kernel: ZT-BLOCKED: IN= OUT=lo …` |
//! | `dmesg --time-format iso` | `2026-11-23T19:00:00,123456+00:00 ZT-BLOCKED: IN= OUT=lo …` |
//! | traditional syslog (`RSYSLOG_TraditionalFileFormat`, `journalctl -o short`) | `Nov 23 19:00:00 host kernel: ZT-BLOCKED: IN= OUT=lo …` |
//! | raw `dmesg` (also `dmesg -r`'s `<4>` level in front) | `[ 1234.567890] ZT-BLOCKED: IN= OUT=lo …` |
//!
//! * RFC 3339 / ISO 8601 stamps carry their offset and are exact (a comma or a point before
//!   the fraction, `+00:00`, `+0000` or `Z`).
//! * Traditional syslog stamps have neither year nor zone: they are read in
//!   [`ParseContext::tz`] and given the latest year that puts them no later than one day after
//!   [`ParseContext::now`] (the day absorbs clock skew), so a December line read in January
//!   is last year's. February 29 goes back to the latest leap year.
//! * Raw dmesg stamps are seconds since boot, made absolute with [`ParseContext::boot`]; when
//!   that is unknown the record has no time. The kernel's clock for them stops while the
//!   machine is suspended, so after a suspend they run early (this is `dmesg -T`'s caveat too).
//! * A printk stamp after `kernel:` (rsyslog's `[ 1234.567890]`) is skipped: the syslog stamp
//!   in front is the better one.
//! * Where a header names the sender (`host kernel:`), only the kernel is believed, so a user
//!   process that writes a look-alike line through syslog under its own name is not counted.
//!
//! After the header comes the message. A zt line is a configured prefix followed directly by
//! `IN=` (nf_log prints `%sIN=%s OUT=%s `), so the prefix may end in a space or not, and
//! neither another firewall's lines (`[UFW BLOCK] IN=…`) nor zt's own log-only lines of
//! `log: true` allow rules ([`crate::policy::ALLOWED_LOG_PREFIX`]) are taken for blocked ones
//! unless the caller asks for their prefix. The rest is read by key, never by position, since
//! which keys appear depends on the interface (`MAC=` only on input), the protocol, the log
//! flags and whether the packet was complete:
//!
//! ```text
//! IN= OUT=lo SRC=127.0.0.1 DST=127.0.0.1 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=4242 DF
//!   PROTO=TCP SPT=45678 DPT=6379 WINDOW=65495 RES=0x00 SYN URGP=0 UID=1002 GID=1002
//! IN=eth0 OUT= MAC=… SRC=2001:0db8:0000:…:0077 DST=2001:0db8:0000:…:0015 LEN=104 TC=0
//!   HOPLIMIT=64 FLOWLBL=0 PROTO=ICMPv6 TYPE=128 CODE=0 ID=7 SEQ=1
//! ```
//!
//! Words without `=` (`DF`, `SYN`, `ACK`) are flags and are skipped. `PROTO=` is `TCP`, `UDP`,
//! `UDPLITE`, `ICMP`, `ICMPv6`, `AH`, `ESP` or the protocol number for anything else (SCTP is
//! `PROTO=132`). ICMP errors quote the offending packet in brackets (`[SRC=… DPT=53 …]`);
//! bracketed text is skipped so the quoted packet's ports are never taken for the logged
//! one's. `UID=`/`GID=` (the fsuid/fsgid the socket was opened with, as seen from the initial
//! user namespace) appear only for packets the kernel has tied to a local socket: egress
//! packets of processes, not replies the kernel sends itself (TCP resets, ICMP errors), and
//! on ingress only packets of an established connection the kernel already matched to its
//! socket (early demux) — a refused new connection has none. A line whose address or
//! number does not parse is not a record: [`parse_line`] returns `None` and never panics.
//!
//! # Lines that never reach the log
//!
//! The kernel prints nf_log lines only for packets of the initial network namespace unless
//! `net.netfilter.nf_log_all_netns=1` (a guard against containers flooding the host's log).
//! A zt policy installed inside another namespace (a container, zt's own test namespaces)
//! therefore logs nothing until that sysctl is set in the initial namespace; an empty audit
//! there proves nothing.
//!
//! # What a summary says
//!
//! [`summarize`] groups records by direction, uid, destination address, protocol and
//! destination port and counts them with the first and last time seen. A count is of logged
//! packets, not of connection attempts: zt's log rules are rate limited (`settings.log_rate`,
//! burst 5), so a flood is undercounted, and one refused TCP `connect()` that times out logs
//! its SYN and every retransmission.
//!
//! ```
//! use zt_core::kernel_log::jiff::{Timestamp, tz::TimeZone};
//! use zt_core::kernel_log::{ParseContext, parse_line, summarize};
//! use zt_core::policy::DEFAULT_LOG_PREFIX;
//!
//! let log = "\
//! 2026-11-23T19:00:00.123456+00:00 web1 kernel: [ 1234.567890] ZT-BLOCKED: IN= OUT=lo \
//!   SRC=127.0.0.1 DST=127.0.0.1 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=55149 DF PROTO=TCP \
//!   SPT=38862 DPT=6379 WINDOW=65495 RES=0x00 SYN URGP=0 UID=1002 GID=1002
//! 2026-11-23T19:00:01.000000+00:00 web1 kernel: [ 1235.4] e1000: eth0 NIC Link is Up
//! ";
//! let ctx = ParseContext::new([DEFAULT_LOG_PREFIX], Timestamp::now(), TimeZone::system());
//! let summary = summarize(log.lines().filter_map(|line| parse_line(line, &ctx)), None);
//! assert_eq!(summary.records(), 1);
//! let group = &summary.groups()[0];
//! assert_eq!((group.uid, group.dst_port, group.count), (Some(1002), Some(6379), 1));
//! ```

mod parse;
mod since;
mod summary;

/// The date-time library of this module's API (`Timestamp`, `TimeZone`), re-exported so an
/// embedder uses the very version zt-core was built with.
pub use jiff;
pub use parse::parse_line;
pub use since::parse_since;
pub use summary::{AttemptGroup, Summary, summarize};

use crate::Direction;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::Serialize;
use std::net::IpAddr;

/// One packet refused by zt, as the kernel logged it.
///
/// Serialized (for `zt audit --json` and embedders) with these field names: `time` (RFC 3339
/// in UTC, or `null`), `prefix`, `direction` (`"egress"`, `"ingress"` or `null`), `in_iface`,
/// `out_iface`, `src`, `dst`, `protocol`, `src_port`, `dst_port`, `icmp_type`, `uid`, `gid`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LogRecord {
    /// When the line was logged; `None` for a raw dmesg line without a known boot time.
    pub time: Option<Timestamp>,
    /// The prefix of [`ParseContext::prefixes`] that matched, as the caller gave it.
    pub prefix: String,
    /// [`Direction::Egress`] when only `OUT=` names an interface (a local process sent it),
    /// [`Direction::Ingress`] when only `IN=` does (it arrived for this host); `None` when
    /// both do (forwarded, which zt does not filter) or neither.
    pub direction: Option<Direction>,
    /// `IN=`, when not empty.
    pub in_iface: Option<String>,
    /// `OUT=`, when not empty.
    pub out_iface: Option<String>,
    /// `SRC=`.
    pub src: IpAddr,
    /// `DST=`.
    pub dst: IpAddr,
    /// `PROTO=` as logged (`TCP`, `UDP`, `UDPLITE`, `ICMP`, `ICMPv6`, `AH`, `ESP` or a
    /// number); `"unknown"` when nf_log printed none (an IPv6 packet behind an ESP or an
    /// unknown extension header).
    pub protocol: String,
    /// `SPT=`: TCP and UDP, unless the packet was a fragment or truncated.
    pub src_port: Option<u16>,
    /// `DPT=`: TCP and UDP, unless the packet was a fragment or truncated.
    pub dst_port: Option<u16>,
    /// `TYPE=` of an ICMP or ICMPv6 packet.
    pub icmp_type: Option<u8>,
    /// `UID=`: the sending socket's owner; only when the kernel tied the packet to a local
    /// socket (as a rule egress; see the module documentation).
    pub uid: Option<u32>,
    /// `GID=`: the sending socket's group; present exactly when `uid` is.
    pub gid: Option<u32>,
}

/// What [`parse_line`] needs besides the line: which prefixes mark a zt line, and how to
/// place headers that carry no full time.
#[derive(Clone, Debug)]
pub struct ParseContext {
    /// Prefixes of the lines to take, as configured (`Settings::log_prefix`, usually
    /// [`crate::policy::DEFAULT_LOG_PREFIX`]); leading and trailing spaces do not matter.
    /// Checked in order; the first that matches is reported in [`LogRecord::prefix`].
    pub prefixes: Vec<String>,
    /// The present, which a year-less syslog stamp may not lie after (beyond one day).
    pub now: Timestamp,
    /// The zone year- and zone-less syslog stamps were written in (the log host's zone).
    pub tz: TimeZone,
    /// When the kernel booted, to date raw dmesg's seconds-since-boot stamps; `None` leaves
    /// such records without a time.
    pub boot: Option<Timestamp>,
}

impl ParseContext {
    /// A context for `prefixes`, with the present (`now`) and the zone of year-less syslog
    /// stamps (`tz`, usually `TimeZone::system()`), and no boot time.
    pub fn new<P: Into<String>>(
        prefixes: impl IntoIterator<Item = P>,
        now: Timestamp,
        tz: TimeZone,
    ) -> Self {
        Self {
            prefixes: prefixes.into_iter().map(Into::into).collect(),
            now,
            tz,
            boot: None,
        }
    }

    /// The same context, dating raw dmesg stamps from `boot`.
    #[must_use]
    pub fn with_boot(mut self, boot: Timestamp) -> Self {
        self.boot = Some(boot);
        self
    }
}
