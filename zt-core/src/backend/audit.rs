//! Where a backend's refusals are recorded, so `audit` can read them back whatever the backend.
//!
//! The netfilter backends log refused packets through the kernel's packet logger, read back by
//! [`crate::kernel_log`]. A backend whose hooks cannot log there (eBPF socket programs) keeps
//! records of its own and hands them over through [`super::Backend::audit`]; each record is
//! handed over once, so the caller keeps them ([`AuditEvent`] is the kept form).

use crate::Direction;
use crate::kernel_log::LogRecord;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Where a backend's refusals are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuditSource {
    /// In the kernel log, as lines with the policy's log prefix.
    KernelLog,
    /// In the backend's own records: these were waiting, and are now the caller's to keep.
    Records(Vec<AuditEvent>),
}

/// One call a backend decided and recorded (a refusal, or an allowed call of a `log: true`
/// rule), in the form zt keeps it across runs (one JSON object per line).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// When, if the backend could date it.
    pub time: Option<Timestamp>,
    /// Whether the call was refused.
    pub refused: bool,
    /// The deciding rule.
    pub rule: String,
    /// The caller's uid.
    pub uid: u32,
    /// The caller's primary gid.
    pub gid: u32,
    /// The caller's process id.
    pub pid: u32,
    /// The caller's command name.
    pub comm: String,
    /// The IP protocol number (6 TCP, 17 UDP).
    pub protocol: u8,
    /// Where the call went.
    pub destination: SocketAddr,
}

impl AuditEvent {
    /// The call as a summary counts it: an egress attempt by a uid to a destination, under
    /// the prefix `<backend>:<rule>`.
    pub fn to_log_record(&self, backend: &str) -> LogRecord {
        let e = self;
        let unspecified: IpAddr = match e.destination {
            SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
            SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
        };
        LogRecord {
            time: e.time,
            prefix: format!("{backend}:{}", e.rule),
            direction: Some(Direction::Egress),
            in_iface: None,
            out_iface: None,
            src: unspecified,
            dst: e.destination.ip(),
            protocol: match e.protocol {
                6 => "TCP".to_owned(),
                17 => "UDP".to_owned(),
                1 => "ICMP".to_owned(),
                58 => "ICMPv6".to_owned(),
                p => p.to_string(),
            },
            src_port: None,
            dst_port: Some(e.destination.port()),
            icmp_type: None,
            uid: Some(e.uid),
            gid: Some(e.gid),
        }
    }
}
