//! Audit records: the calls the programs refused (and allowed calls of `log: true` rules), as
//! the CLI's `audit` reads them from the `zt_audit` ring buffer.
//!
//! This backend writes no kernel log line: the socket hooks cannot call the kernel's packet
//! logger. Every refusal is recorded (not rate-limited; when the 256 KiB ring is full, records
//! are counted as lost instead), with more than a netfilter log line carries: the process id
//! and command name of the caller.

use crate::kernel::SocketHook;
use crate::layout::{ALLOW, RULE_INDEX, RawAudit};
use crate::render::Effect;
use serde::Serialize;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, SystemTime};

/// One decided call, as recorded by the program.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    /// The hook that decided (`None` for a hook number this zt does not know).
    #[serde(serialize_with = "hook_name")]
    pub hook: Option<SocketHook>,
    /// What the program did.
    pub effect: Effect,
    /// The deciding rule's name (`#index` if the rule table no longer holds it).
    pub rule: String,
    /// The deciding ruleset entry's index.
    pub rule_index: u32,
    /// Caller's uid (real uid, as `bpf_get_current_uid_gid` reports it).
    pub uid: u32,
    /// Caller's primary gid.
    pub gid: u32,
    /// Caller's process id.
    pub pid: u32,
    /// Caller's command name (at most 15 bytes).
    pub comm: String,
    /// Caller's cgroup v2 id.
    pub cgroup_id: u64,
    /// The IP protocol number of the socket (6 TCP, 17 UDP).
    pub protocol: u8,
    /// The destination.
    pub destination: SocketAddr,
    /// When the call was made, if the wall clock at boot is known.
    pub time: Option<SystemTime>,
}

/// The wall-clock time at which the boot clock (`CLOCK_BOOTTIME`, what
/// `bpf_ktime_get_boot_ns` reads) was zero, as seen now: records are dated against it. Wall
/// clock steps after a record was made shift its date by the step.
pub fn boot_epoch() -> Option<SystemTime> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into `ts`.
    if unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &raw mut ts) } != 0 {
        return None;
    }
    let since_boot = Duration::new(
        u64::try_from(ts.tv_sec).ok()?,
        u32::try_from(ts.tv_nsec).ok()?,
    );
    SystemTime::now().checked_sub(since_boot)
}

fn hook_name<S: serde::Serializer>(hook: &Option<SocketHook>, s: S) -> Result<S::Ok, S::Error> {
    match hook {
        Some(h) => s.serialize_str(h.name()),
        None => s.serialize_none(),
    }
}

impl AuditRecord {
    /// Decode a raw record, naming its rule with `name(generation, index)` and dating it from
    /// `booted`, the wall-clock time at which the boot clock read zero ([`boot_epoch`]).
    pub fn from_raw(
        raw: &RawAudit,
        name: impl Fn(u32, u32) -> Option<String>,
        booted: Option<SystemTime>,
    ) -> Self {
        let index = raw.rule & RULE_INDEX;
        let ip = if raw.family == 6 {
            IpAddr::V6(Ipv6Addr::from(raw.addr))
        } else {
            IpAddr::V4(Ipv4Addr::new(
                raw.addr[0],
                raw.addr[1],
                raw.addr[2],
                raw.addr[3],
            ))
        };
        let end = raw
            .comm
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(raw.comm.len());
        AuditRecord {
            hook: SocketHook::from_code(raw.hook),
            effect: if raw.verdict == ALLOW {
                Effect::Allow
            } else {
                Effect::Refuse
            },
            rule: name(raw.generation, index).unwrap_or_else(|| format!("#{index}")),
            rule_index: index,
            uid: raw.uid,
            gid: raw.gid,
            pid: raw.pid,
            comm: String::from_utf8_lossy(&raw.comm[..end]).into_owned(),
            cgroup_id: raw.cgroup,
            protocol: raw.proto,
            destination: SocketAddr::new(ip, raw.port),
            time: booted.and_then(|b| b.checked_add(Duration::from_nanos(raw.time_ns))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raw_record_decodes_with_its_rule_name() {
        let mut comm = [0u8; 16];
        comm[..4].copy_from_slice(b"curl");
        let mut addr = [0u8; 16];
        addr[..4].copy_from_slice(&[127, 0, 0, 1]);
        let raw = RawAudit {
            cgroup: 77,
            uid: 1001,
            gid: 1001,
            pid: 4242,
            rule: 11 | crate::layout::RULE_LOG,
            generation: 1,
            port: 6379,
            family: 4,
            proto: 6,
            verdict: crate::layout::REFUSE,
            hook: 0,
            pad: [0; 2],
            addr,
            comm,
            pad2: [0; 4],
            time_ns: 5_000_000_000,
        };
        let mut bytes = Vec::new();
        // SAFETY (test): RawAudit is plain data with explicit padding.
        bytes.extend_from_slice(unsafe {
            std::slice::from_raw_parts(std::ptr::from_ref(&raw).cast::<u8>(), size_of::<RawAudit>())
        });
        let decoded = RawAudit::from_bytes(&bytes).unwrap();
        let booted = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let record = AuditRecord::from_raw(
            &decoded,
            |g, i| (g == 1 && i == 11).then(|| "zt:default".to_owned()),
            Some(booted),
        );
        assert_eq!(
            record.time,
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_005))
        );
        assert_eq!(record.rule, "zt:default");
        assert_eq!(record.effect, Effect::Refuse);
        assert_eq!(record.comm, "curl");
        assert_eq!(record.hook, Some(SocketHook::Connect4));
        assert_eq!(record.destination, "127.0.0.1:6379".parse().unwrap());
        assert!(RawAudit::from_bytes(&bytes[..10]).is_none());
    }
}
