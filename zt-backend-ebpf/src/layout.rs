//! The byte layouts of the maps, mirroring `bpf/zt.h`, and the pure conversion between
//! [`Rendered`] and one generation's raw entries.
//!
//! Every struct here is `#[repr(C)]` with explicit padding, its size checked against the C
//! header's `_Static_assert`s (and a unit test reads the header's constants), so the bytes user
//! space writes are the bytes the program reads.

use crate::EbpfError;
use crate::render::{
    Effect, Group, IdentityKind, Member, PortMatch, Prefix, Rendered, RuleInfo, RuleRef, Target,
    Transport,
};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::net::{Ipv4Addr, Ipv6Addr};

/// Layout version written in every header; pinned maps of another version are refused.
pub const LAYOUT_VERSION: u32 = 1;
/// Groups per generation.
pub const MAX_GROUPS: u32 = 4096;
/// Ruleset entry indexes per generation (counter slots).
pub const MAX_RULES: u32 = 16384;
/// Member entries, both generations together.
pub const MAX_MEMBERS: u32 = 262_144;
/// Prefix entries, both generations together.
pub const MAX_PREFIXES: u32 = 262_144;
/// Size of the audit ring buffer in bytes.
pub const AUDIT_BYTES: u32 = 256 * 1024;

pub(crate) const ALLOW: u8 = 1;
pub(crate) const REFUSE: u8 = 2;
const IDENT_ANY: u8 = 0;
const IDENT_UID: u8 = 1;
const IDENT_GID: u8 = 2;
const IDENT_CGROUP: u8 = 3;
const PORTS_EXACT: u8 = 0;
const PORTS_RANGE: u8 = 1;
pub(crate) const PROTO_OTHER: u8 = 0;
pub(crate) const PROTO_TCP: u8 = 6;
pub(crate) const PROTO_UDP: u8 = 17;
pub(crate) const RULE_LOG: u32 = 0x8000_0000;
pub(crate) const RULE_INDEX: u32 = 0x7fff_ffff;
const GEN_SHIFT: u32 = 31;
const V6_BIT: u32 = 0x4000_0000;
const LIST_MASK: u32 = 0x3fff_ffff;

/// `struct zt_active`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RawActive {
    /// The generation the programs read.
    pub generation: u32,
}

/// `struct zt_header`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RawHeader {
    /// [`LAYOUT_VERSION`].
    pub version: u32,
    /// Groups to walk.
    pub groups: u32,
    /// The default rule (with the log bit).
    pub default_rule: u32,
    /// `ALLOW`/`REFUSE`; 0 = never written.
    pub default_verdict: u8,
    /// Explicit padding.
    pub pad: [u8; 3],
}

/// `struct zt_group`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RawGroup {
    /// `ALLOW`/`REFUSE`.
    pub verdict: u8,
    /// Identity kind.
    pub ident: u8,
    /// Cgroup level for cgroup groups.
    pub cgroup_level: u8,
    /// Exact or range.
    pub ports: u8,
    /// Range start.
    pub port_lo: u16,
    /// Range end.
    pub port_hi: u16,
}

/// `struct zt_member_key`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RawMemberKey {
    /// uid, gid, cgroup id or 0.
    pub ident: u64,
    /// Generation and group index.
    pub group: u32,
    /// Port, host order.
    pub port: u16,
    /// Transport code.
    pub proto: u8,
    /// Explicit padding.
    pub pad: u8,
}

/// `struct zt_member`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RawMember {
    /// The rule when `list` is 0.
    pub rule: u32,
    /// Address list id, 0 for every address.
    pub list: u32,
}

/// The data part of `struct zt_prefix_key` (aya's `lpm_trie::Key` adds the prefix length).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RawPrefixData {
    /// Generation, family bit and list id.
    pub list: u32,
    /// Address bytes, network order.
    pub addr: [u8; 16],
}

/// `struct zt_rule_key`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RawRuleKey {
    /// Generation.
    pub generation: u32,
    /// Ruleset entry index.
    pub index: u32,
}

/// `struct zt_rule`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawRule {
    /// NUL-padded name.
    pub name: [u8; 64],
    /// `ALLOW`/`REFUSE`.
    pub verdict: u8,
    /// 1 when the rule logs.
    pub log: u8,
    /// Explicit padding.
    pub pad: [u8; 6],
}

/// `struct zt_audit_record`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawAudit {
    /// Caller's cgroup id.
    pub cgroup: u64,
    /// Caller's uid.
    pub uid: u32,
    /// Caller's gid.
    pub gid: u32,
    /// Caller's process id.
    pub pid: u32,
    /// Deciding rule with log bit.
    pub rule: u32,
    /// Generation of the rule table naming the rule.
    pub generation: u32,
    /// Destination port.
    pub port: u16,
    /// 4 or 6.
    pub family: u8,
    /// IP protocol of the socket.
    pub proto: u8,
    /// `ALLOW`/`REFUSE`.
    pub verdict: u8,
    /// Hook number.
    pub hook: u8,
    /// Explicit padding.
    pub pad: [u8; 2],
    /// Destination address.
    pub addr: [u8; 16],
    /// Caller's command name.
    pub comm: [u8; 16],
    /// Explicit padding.
    pub pad2: [u8; 4],
    /// When: `bpf_ktime_get_boot_ns()` (nanoseconds since boot, suspend included).
    pub time_ns: u64,
}

const _: () = assert!(size_of::<RawActive>() == 4);
const _: () = assert!(size_of::<RawHeader>() == 16);
const _: () = assert!(size_of::<RawGroup>() == 8);
const _: () = assert!(size_of::<RawMemberKey>() == 16);
const _: () = assert!(size_of::<RawMember>() == 8);
const _: () = assert!(size_of::<RawPrefixData>() == 20);
const _: () = assert!(size_of::<RawRuleKey>() == 8);
const _: () = assert!(size_of::<RawRule>() == 72);
const _: () = assert!(size_of::<RawAudit>() == 80);

// SAFETY: each type is `#[repr(C)]`, made only of integers and byte arrays, with every padding
// byte explicit (the size assertions above prove there is none implicit), so every bit pattern
// is a valid value and no byte is uninitialized.
unsafe impl aya::Pod for RawActive {}
// SAFETY: as above.
unsafe impl aya::Pod for RawHeader {}
// SAFETY: as above.
unsafe impl aya::Pod for RawGroup {}
// SAFETY: as above.
unsafe impl aya::Pod for RawMemberKey {}
// SAFETY: as above.
unsafe impl aya::Pod for RawMember {}
// SAFETY: as above.
unsafe impl aya::Pod for RawPrefixData {}
// SAFETY: as above.
unsafe impl aya::Pod for RawRuleKey {}
// SAFETY: as above.
unsafe impl aya::Pod for RawRule {}

impl RawAudit {
    /// Decode a ring buffer record; `None` when it is too short.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() < size_of::<Self>() {
            return None;
        }
        // SAFETY: the slice holds at least size_of::<Self>() bytes, the read is unaligned, and
        // every bit pattern is a valid RawAudit (integers and byte arrays only).
        Some(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<Self>()) })
    }
}

/// One LPM trie entry: prefix length (32 + address prefix), data, rule.
pub type RawPrefix = (u32, RawPrefixData, u32);

/// One generation's entries, ready to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Generation {
    /// The generation (0 or 1).
    pub generation: u32,
    /// Its header.
    pub header: RawHeader,
    /// Groups, at `generation * MAX_GROUPS + i`.
    pub groups: Vec<RawGroup>,
    /// Member entries.
    pub members: Vec<(RawMemberKey, RawMember)>,
    /// LPM entries.
    pub prefixes: Vec<RawPrefix>,
    /// Rule table entries.
    pub rules: Vec<(RawRuleKey, RawRule)>,
}

fn verdict(e: Effect) -> u8 {
    match e {
        Effect::Allow => ALLOW,
        Effect::Refuse => REFUSE,
    }
}

fn effect(v: u8) -> Result<Effect, EbpfError> {
    match v {
        ALLOW => Ok(Effect::Allow),
        REFUSE => Ok(Effect::Refuse),
        other => Err(corrupt(format!("unknown verdict {other}"))),
    }
}

fn corrupt(detail: String) -> EbpfError {
    EbpfError::Corrupt { detail }
}

fn rule_word(r: RuleRef) -> u32 {
    (r.index & RULE_INDEX) | if r.log { RULE_LOG } else { 0 }
}

fn rule_ref(word: u32) -> RuleRef {
    RuleRef {
        index: word & RULE_INDEX,
        log: word & RULE_LOG != 0,
    }
}

/// The scope word of a group in generation `generation`.
fn group_scope(generation: u32, group: u32) -> u32 {
    (generation << GEN_SHIFT) | group
}

/// The generation a scope word (member group or prefix list) belongs to.
pub fn scope_generation(scope: u32) -> u32 {
    scope >> GEN_SHIFT
}

/// Encode `rendered` as the entries of `generation`.
pub fn encode(rendered: &Rendered, generation: u32) -> Generation {
    let header = RawHeader {
        version: LAYOUT_VERSION,
        groups: u32::try_from(rendered.groups.len()).unwrap_or(MAX_GROUPS),
        default_rule: rule_word(rendered.default_rule),
        default_verdict: verdict(rendered.default_effect),
        pad: [0; 3],
    };
    let groups = rendered
        .groups
        .iter()
        .map(|g| {
            let (ident, level) = match g.identity {
                IdentityKind::Any => (IDENT_ANY, 0),
                IdentityKind::Uid => (IDENT_UID, 0),
                IdentityKind::Gid => (IDENT_GID, 0),
                IdentityKind::Cgroup { level } => (IDENT_CGROUP, level),
            };
            let (ports, port_lo, port_hi) = match g.ports {
                PortMatch::Exact => (PORTS_EXACT, 0, 0),
                PortMatch::Range { first, last } => (PORTS_RANGE, first, last),
            };
            RawGroup {
                verdict: verdict(g.effect),
                ident,
                cgroup_level: level,
                ports,
                port_lo,
                port_hi,
            }
        })
        .collect();
    let members = rendered
        .members
        .iter()
        .map(|m| {
            let key = RawMemberKey {
                ident: m.identity,
                group: group_scope(generation, m.group),
                port: m.port,
                proto: m.transport.code(),
                pad: 0,
            };
            let value = match m.target {
                Target::Every(r) => RawMember {
                    rule: rule_word(r),
                    list: 0,
                },
                Target::List(list) => RawMember { rule: 0, list },
            };
            (key, value)
        })
        .collect();
    let prefixes = rendered
        .prefixes
        .iter()
        .map(|p| {
            let mut addr = [0u8; 16];
            let (family, bits) = match p.net {
                IpNet::V4(n) => {
                    addr[..4].copy_from_slice(&n.network().octets());
                    (0, n.prefix_len())
                }
                IpNet::V6(n) => {
                    addr = n.network().octets();
                    (V6_BIT, n.prefix_len())
                }
            };
            let data = RawPrefixData {
                list: (generation << GEN_SHIFT) | family | (p.list & LIST_MASK),
                addr,
            };
            (32 + u32::from(bits), data, rule_word(p.rule))
        })
        .collect();
    let rules = rendered
        .rules
        .iter()
        .map(|r| {
            let mut name = [0u8; 64];
            let bytes = r.name.as_bytes();
            let n = bytes.len().min(name.len());
            name[..n].copy_from_slice(&bytes[..n]);
            let key = RawRuleKey {
                generation,
                index: r.index,
            };
            let value = RawRule {
                name,
                verdict: verdict(r.effect),
                log: u8::from(r.log),
                pad: [0; 6],
            };
            (key, value)
        })
        .collect();
    Generation {
        generation,
        header,
        groups,
        members,
        prefixes,
        rules,
    }
}

/// Decode one generation read back from the maps (entries of the other generation must have
/// been filtered out). `None` when the header was never written.
pub fn decode(raw: &Generation) -> Result<Option<Rendered>, EbpfError> {
    let h = raw.header;
    if h.default_verdict == 0 {
        return Ok(None);
    }
    if h.version != LAYOUT_VERSION {
        return Err(EbpfError::Incompatible {
            detail: format!(
                "the pinned maps hold layout version {}, this zt writes version {LAYOUT_VERSION}",
                h.version
            ),
        });
    }
    let groups = raw
        .groups
        .iter()
        .map(|g| {
            let identity = match g.ident {
                IDENT_ANY => IdentityKind::Any,
                IDENT_UID => IdentityKind::Uid,
                IDENT_GID => IdentityKind::Gid,
                IDENT_CGROUP => IdentityKind::Cgroup {
                    level: g.cgroup_level,
                },
                other => return Err(corrupt(format!("unknown identity kind {other}"))),
            };
            let ports = match g.ports {
                PORTS_EXACT => PortMatch::Exact,
                PORTS_RANGE => PortMatch::Range {
                    first: g.port_lo,
                    last: g.port_hi,
                },
                other => return Err(corrupt(format!("unknown port match {other}"))),
            };
            Ok(Group {
                effect: effect(g.verdict)?,
                identity,
                ports,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut members = raw
        .members
        .iter()
        .map(|(k, v)| {
            let transport = match k.proto {
                PROTO_TCP => Transport::Tcp,
                PROTO_UDP => Transport::Udp,
                PROTO_OTHER => Transport::Other,
                other => return Err(corrupt(format!("unknown transport {other}"))),
            };
            let target = if v.list == 0 {
                Target::Every(rule_ref(v.rule))
            } else {
                Target::List(v.list)
            };
            Ok(Member {
                group: k.group & !(1 << GEN_SHIFT),
                identity: k.ident,
                transport,
                port: k.port,
                target,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    members.sort_by_key(|m| (m.group, m.identity, m.transport, m.port));
    let mut prefixes = raw
        .prefixes
        .iter()
        .map(|&(len, data, rule)| {
            let bits = len.checked_sub(32).and_then(|b| u8::try_from(b).ok());
            let net = match (data.list & V6_BIT != 0, bits) {
                (false, Some(b)) => {
                    let a = Ipv4Addr::new(data.addr[0], data.addr[1], data.addr[2], data.addr[3]);
                    Ipv4Net::new(a, b).ok().map(IpNet::V4)
                }
                (true, Some(b)) => Ipv6Net::new(Ipv6Addr::from(data.addr), b)
                    .ok()
                    .map(IpNet::V6),
                _ => None,
            }
            .ok_or_else(|| corrupt(format!("bad prefix length {len}")))?;
            Ok(Prefix {
                list: data.list & LIST_MASK,
                net,
                rule: rule_ref(rule),
            })
        })
        .collect::<Result<Vec<_>, EbpfError>>()?;
    prefixes.sort_by_key(|p| (p.list, prefix_order(&p.net)));
    let mut rules = raw
        .rules
        .iter()
        .map(|(k, v)| {
            let end = v.name.iter().position(|&b| b == 0).unwrap_or(v.name.len());
            Ok(RuleInfo {
                index: k.index,
                name: String::from_utf8_lossy(&v.name[..end]).into_owned(),
                effect: effect(v.verdict)?,
                log: v.log != 0,
            })
        })
        .collect::<Result<Vec<_>, EbpfError>>()?;
    rules.sort_by_key(|r| r.index);
    Ok(Some(Rendered {
        default_rule: rule_ref(h.default_rule),
        default_effect: effect(h.default_verdict)?,
        groups,
        members,
        prefixes,
        rules,
    }))
}

/// Canonical prefix order: family, network address, prefix length.
pub(crate) fn prefix_order(net: &IpNet) -> (u8, u128, u8) {
    match net {
        IpNet::V4(n) => (4, u128::from(u32::from(n.network())), n.prefix_len()),
        IpNet::V6(n) => (6, u128::from(n.network()), n.prefix_len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The constants here are the C header's: a change on one side only fails this test.
    #[test]
    fn constants_match_the_c_header() {
        let header = include_str!("../bpf/zt.h");
        let define = |name: &str| -> String {
            header
                .lines()
                .find_map(|l| {
                    let rest = l.strip_prefix("#define ")?.strip_prefix(name)?;
                    rest.starts_with(' ')
                        .then(|| rest.split("/*").next().unwrap_or("").trim().to_owned())
                })
                .unwrap_or_else(|| panic!("{name} not in zt.h"))
        };
        assert_eq!(define("ZT_LAYOUT_VERSION"), LAYOUT_VERSION.to_string());
        assert_eq!(define("ZT_MAX_GROUPS"), MAX_GROUPS.to_string());
        assert_eq!(define("ZT_MAX_RULES"), MAX_RULES.to_string());
        assert_eq!(define("ZT_MAX_MEMBERS"), MAX_MEMBERS.to_string());
        assert_eq!(define("ZT_MAX_PREFIXES"), MAX_PREFIXES.to_string());
        assert_eq!(define("ZT_AUDIT_BYTES"), "(256 * 1024)");
        assert_eq!(define("ZT_ALLOW"), ALLOW.to_string());
        assert_eq!(define("ZT_REFUSE"), REFUSE.to_string());
        assert_eq!(define("ZT_IDENT_CGROUP"), IDENT_CGROUP.to_string());
        assert_eq!(define("ZT_PORTS_RANGE"), PORTS_RANGE.to_string());
        assert_eq!(define("ZT_PROTO_TCP"), PROTO_TCP.to_string());
        assert_eq!(define("ZT_PROTO_UDP"), PROTO_UDP.to_string());
        assert_eq!(define("ZT_RULE_LOG"), "0x80000000u");
        assert_eq!(define("ZT_V6_BIT"), "0x40000000u");
        assert_eq!(define("ZT_GEN_SHIFT"), GEN_SHIFT.to_string());
    }
}
