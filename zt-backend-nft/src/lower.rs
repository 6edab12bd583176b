//! The model lowered to nf_tables expressions, exactly as `nft` lowers the same text.
//!
//! Matching nft's code generation (register choice, dependencies, byte order, the set
//! userdata) is what makes a table applied over netlink list identically to the same script
//! loaded with `nft -f`; a kernel test loads both and compares the dumps expression by
//! expression.

use crate::low::{
    self, LowBase, LowChain, LowElem, LowExpr, LowRule, LowSet, LowTable, REG_1, REG32_00,
};
use crate::model::{
    Chain, CtStates, Dir, Element, Family, Field, Hook, RejectWith, Rule, Set, Stmt, Table, Value,
};
use ipnet::IpNet;
use zt_core::policy::{LogRateParts, RateUnit};

/// nft's set userdata for a `type …` set with a counter (the same for every key).
const SET_USERDATA: [u8; 16] = [0, 4, 0, 0, 0, 0, 3, 8, 0, 4, 13, 0, 0, 0, 1, 0];
/// `NFT_SET_INTERVAL | NFT_SET_CONCAT`: a concatenated interval set.
const INTERVAL_FLAGS: u32 = 0x4 | 0x80;
/// `NFT_BYTEORDER_HTON`.
const HTON: u32 = 1;
/// `NFT_CT_STATE`.
const CT_STATE: u32 = 0;
/// `NFT_SOCKET_CGROUPV2`.
const SOCKET_CGROUPV2: u32 = 3;
/// `NF_LOG_UID`.
const LOG_UID: u32 = 8;
/// The kernel's default log level (warning), which it reports back when none was given.
const LOG_LEVEL_WARNING: u32 = 4;

fn meta(key: u32, dreg: u32) -> LowExpr {
    LowExpr::Meta { key, dreg }
}

fn cmp(op: u32, data: Vec<u8>) -> LowExpr {
    LowExpr::Cmp {
        op,
        sreg: REG_1,
        data,
    }
}

fn nfproto(f: Family) -> [LowExpr; 2] {
    let v = match f {
        Family::V4 => libc::NFPROTO_IPV4 as u8,
        Family::V6 => libc::NFPROTO_IPV6 as u8,
    };
    [meta(low::meta::NFPROTO, REG_1), cmp(low::cmp::EQ, vec![v])]
}

fn family_of(n: &IpNet) -> Family {
    match n {
        IpNet::V4(_) => Family::V4,
        IpNet::V6(_) => Family::V6,
    }
}

/// Offset of an address in the network header.
fn addr_offset(f: Family, d: Dir) -> u32 {
    match (f, d) {
        (Family::V4, Dir::Src) => 12,
        (Family::V4, Dir::Dst) => 16,
        (Family::V6, Dir::Src) => 8,
        (Family::V6, Dir::Dst) => 24,
    }
}

fn addr_bytes(ip: std::net::IpAddr) -> Vec<u8> {
    let mut out = Vec::with_capacity(16);
    push_addr(&mut out, ip);
    out
}

fn push_addr(out: &mut Vec<u8>, ip: std::net::IpAddr) {
    match ip {
        std::net::IpAddr::V4(a) => out.extend_from_slice(&a.octets()),
        std::net::IpAddr::V6(a) => out.extend_from_slice(&a.octets()),
    }
}

/// `ip daddr NET`: for a byte-aligned prefix nft loads and compares only the bytes the prefix
/// covers; otherwise it loads the whole address and masks it.
fn addr_match(d: Dir, n: &IpNet, out: &mut Vec<LowExpr>) {
    let f = family_of(n);
    out.extend(nfproto(f));
    let bits = u32::from(n.prefix_len());
    let net = addr_bytes(n.network());
    let aligned = bits % 8 == 0;
    let len = if aligned { bits / 8 } else { net.len() as u32 };
    out.push(LowExpr::Payload {
        base: low::base::NETWORK,
        offset: addr_offset(f, d),
        len,
        dreg: REG_1,
    });
    if !aligned {
        let mask: Vec<u8> = (0..len)
            .map(|i| {
                let left = bits.saturating_sub(i * 8).min(8);
                (0xffu16 << (8 - left)) as u8
            })
            .collect();
        out.push(LowExpr::Bitwise {
            sreg: REG_1,
            dreg: REG_1,
            len,
            mask,
            xor: vec![0; len as usize],
        });
    }
    out.push(cmp(low::cmp::EQ, net[..len as usize].to_vec()));
}

fn range(out: &mut Vec<LowExpr>, a: Vec<u8>, b: Vec<u8>) {
    if a == b {
        out.push(cmp(low::cmp::EQ, a));
    } else {
        out.push(cmp(low::cmp::GTE, a));
        out.push(cmp(low::cmp::LTE, b));
    }
}

/// Width of a key field in 32-bit registers, and its unpadded length in bytes.
fn field_size(f: Field) -> (u32, u8) {
    match f {
        Field::SkUid | Field::SkGid | Field::Addr(Family::V4, _) | Field::Net(Family::V4, ..) => {
            (1, 4)
        }
        Field::Addr(Family::V6, _) | Field::Net(Family::V6, ..) => (4, 16),
        Field::L4Proto => (1, 1),
        Field::Port(_) => (1, 2),
    }
}

/// nft's datatype number for a key field.
fn field_type(f: Field) -> u32 {
    match f {
        Field::SkUid => 24,
        Field::SkGid => 25,
        Field::Addr(Family::V4, _) | Field::Net(Family::V4, ..) => 7,
        Field::Addr(Family::V6, _) | Field::Net(Family::V6, ..) => 8,
        Field::L4Proto => 12,
        Field::Port(_) => 13,
    }
}

/// The mask of a `prefix`-bit network in a `len`-byte address.
pub(crate) fn prefix_mask(len: usize, prefix: u8) -> Vec<u8> {
    let mut mask = vec![0u8; len];
    let mut bits = usize::from(prefix);
    for byte in &mut mask {
        let take = bits.min(8);
        *byte = if take == 0 { 0 } else { 0xffu8 << (8 - take) };
        bits -= take;
    }
    mask
}

/// A set lookup. Interval sets keep ids and protocols in network byte order (nft converts the
/// registers first); hash sets compare them in host order as loaded.
fn lookup(fields: &[Field], set: &str, interval: bool, out: &mut Vec<LowExpr>) {
    if let Some(f) = fields.iter().find_map(|f| match f {
        Field::Addr(fam, _) | Field::Net(fam, ..) => Some(*fam),
        _ => None,
    }) {
        out.extend(nfproto(f));
    }
    let mut word = 0;
    for f in fields {
        // The first field goes to the 128-bit register 1, the rest to 32-bit registers.
        let reg = if word == 0 { REG_1 } else { REG32_00 + word };
        match f {
            Field::SkUid | Field::SkGid => {
                let key = if *f == Field::SkUid {
                    low::meta::SKUID
                } else {
                    low::meta::SKGID
                };
                out.push(meta(key, reg));
                if interval {
                    out.push(LowExpr::Byteorder {
                        sreg: reg,
                        dreg: reg,
                        op: HTON,
                        len: 4,
                        size: 4,
                    });
                }
            }
            Field::Addr(fam, d) => out.push(LowExpr::Payload {
                base: low::base::NETWORK,
                offset: addr_offset(*fam, *d),
                len: u32::from(field_size(*f).1),
                dreg: reg,
            }),
            Field::Net(fam, d, prefix) => {
                let len = field_size(*f).1;
                out.push(LowExpr::Payload {
                    base: low::base::NETWORK,
                    offset: addr_offset(*fam, *d),
                    len: u32::from(len),
                    dreg: reg,
                });
                out.push(LowExpr::Bitwise {
                    sreg: reg,
                    dreg: reg,
                    len: u32::from(len),
                    mask: prefix_mask(usize::from(len), *prefix),
                    xor: vec![0; usize::from(len)],
                });
            }
            Field::L4Proto => {
                out.push(meta(low::meta::L4PROTO, reg));
                if interval {
                    out.push(LowExpr::Byteorder {
                        sreg: reg,
                        dreg: reg,
                        op: HTON,
                        len: 1,
                        size: 2,
                    });
                }
            }
            Field::Port(d) => out.push(LowExpr::Payload {
                base: low::base::TRANSPORT,
                offset: if *d == Dir::Src { 0 } else { 2 },
                len: 2,
                dreg: reg,
            }),
        }
        word += field_size(*f).0;
    }
    out.push(LowExpr::Lookup {
        sreg: REG_1,
        set: set.to_owned(),
    });
}

/// Which sets are interval sets (their lookups convert byte order).
type Intervals<'t> = std::collections::HashMap<&'t str, bool>;

fn stmt(s: &Stmt, intervals: &Intervals<'_>, out: &mut Vec<LowExpr>) -> Result<(), String> {
    match s {
        Stmt::CtState(states) => {
            let mask: u32 = match states {
                CtStates::Invalid => 1,
                CtStates::EstablishedRelated => 2 | 4,
                CtStates::Established => 2,
            };
            out.push(LowExpr::Ct {
                key: CT_STATE,
                dreg: REG_1,
            });
            out.push(LowExpr::Bitwise {
                sreg: REG_1,
                dreg: REG_1,
                len: 4,
                mask: mask.to_ne_bytes().to_vec(),
                xor: vec![0; 4],
            });
            out.push(cmp(low::cmp::NEQ, vec![0; 4]));
        }
        Stmt::IifLoopback => {
            out.push(meta(low::meta::IIF, REG_1));
            out.push(cmp(low::cmp::EQ, 1u32.to_ne_bytes().to_vec()));
        }
        Stmt::NfProto(f) => out.extend(nfproto(*f)),
        Stmt::L4Proto(p) => {
            out.push(meta(low::meta::L4PROTO, REG_1));
            out.push(cmp(low::cmp::EQ, vec![p.number()]));
        }
        Stmt::SkUid(u) => {
            out.push(meta(low::meta::SKUID, REG_1));
            out.push(cmp(low::cmp::EQ, u.to_ne_bytes().to_vec()));
        }
        Stmt::SkGid(g) => {
            out.push(meta(low::meta::SKGID, REG_1));
            out.push(cmp(low::cmp::EQ, g.to_ne_bytes().to_vec()));
        }
        Stmt::Cgroup { level, path, id } => {
            let Some(id) = id else {
                return Err(format!("cgroup '{path}' has not been resolved to an id"));
            };
            out.push(LowExpr::Socket {
                key: SOCKET_CGROUPV2,
                dreg: REG_1,
                level: *level,
            });
            out.push(cmp(low::cmp::EQ, id.to_ne_bytes().to_vec()));
        }
        Stmt::Addr(d, n) => addr_match(*d, n, out),
        Stmt::Port(p, d, a, b) => {
            out.push(meta(low::meta::L4PROTO, REG_1));
            out.push(cmp(low::cmp::EQ, vec![p.number()]));
            out.push(LowExpr::Payload {
                base: low::base::TRANSPORT,
                offset: if *d == Dir::Src { 0 } else { 2 },
                len: 2,
                dreg: REG_1,
            });
            range(out, a.to_be_bytes().to_vec(), b.to_be_bytes().to_vec());
        }
        Stmt::Icmpv6Type(a, b) => {
            out.extend(nfproto(Family::V6));
            out.push(meta(low::meta::L4PROTO, REG_1));
            out.push(cmp(low::cmp::EQ, vec![58]));
            out.push(LowExpr::Payload {
                base: low::base::TRANSPORT,
                offset: 0,
                len: 1,
                dreg: REG_1,
            });
            range(out, vec![*a], vec![*b]);
        }
        Stmt::Lookup(fields, set) => {
            let interval = intervals.get(set.as_str()).copied().unwrap_or(false);
            lookup(fields, set, interval, out);
        }
        Stmt::Counter => out.push(LowExpr::Counter {
            packets: 0,
            bytes: 0,
        }),
        Stmt::Limit(r) => {
            let LogRateParts { count, unit } = r.parts();
            out.push(LowExpr::Limit {
                rate: u64::from(count),
                unit: match unit {
                    RateUnit::Second => 1,
                    RateUnit::Minute => 60,
                    RateUnit::Hour => 3600,
                    RateUnit::Day => 86400,
                },
                burst: 5,
                kind: 0,
                flags: 0,
            });
        }
        Stmt::Log(prefix) => out.push(LowExpr::Log {
            prefix: prefix.clone(),
            level: Some(LOG_LEVEL_WARNING),
            flags: Some(LOG_UID),
        }),
        Stmt::Accept => out.push(LowExpr::Verdict {
            code: low::verdict::ACCEPT,
            chain: None,
        }),
        Stmt::Drop => out.push(LowExpr::Verdict {
            code: low::verdict::DROP,
            chain: None,
        }),
        Stmt::Jump(c) => out.push(LowExpr::Verdict {
            code: low::verdict::JUMP,
            chain: Some(c.clone()),
        }),
        Stmt::Reject(RejectWith::TcpReset) => out.push(LowExpr::Reject { kind: 1, code: 0 }),
        Stmt::Reject(RejectWith::IcmpxPortUnreachable) => {
            out.push(LowExpr::Reject { kind: 2, code: 1 })
        }
    }
    Ok(())
}

fn rule(r: &Rule, intervals: &Intervals<'_>) -> Result<LowRule, String> {
    let mut exprs = Vec::with_capacity(r.stmts.len() * 3);
    for s in &r.stmts {
        stmt(s, intervals, &mut exprs).map_err(|e| format!("rule '{}': {e}", r.comment))?;
    }
    Ok(LowRule {
        exprs,
        comment: Some(r.comment.clone()),
    })
}

fn chain(c: &Chain, intervals: &Intervals<'_>) -> Result<LowChain, String> {
    Ok(LowChain {
        name: c.name.clone(),
        base: c.hook.map(|h| LowBase {
            kind: "filter".into(),
            hook: match h {
                Hook::Output => libc::NF_INET_LOCAL_OUT as u32,
                Hook::Input => libc::NF_INET_LOCAL_IN as u32,
            },
            priority: 0,
            policy: libc::NF_ACCEPT as u32,
        }),
        rules: c
            .rules
            .iter()
            .map(|r| rule(r, intervals))
            .collect::<Result<_, _>>()?,
    })
}

/// The first and last bytes of a value, padded to its field's 4-byte slot (ids in network
/// order in interval sets, host order in hash sets, as the lookups load them).
/// Append a value's first and last key bytes, each field padded to 4 bytes.
fn value_bytes(key: &mut Vec<u8>, end: &mut Vec<u8>, v: &Value, interval: bool) {
    let (first, last) = match v {
        Value::Id(n) if interval => (n.to_be_bytes(), n.to_be_bytes()),
        Value::Id(n) => (n.to_ne_bytes(), n.to_ne_bytes()),
        Value::Net(n) => {
            push_addr(key, n.network());
            push_addr(end, n.broadcast());
            return;
        }
        Value::Proto(p) => ([p.number(), 0, 0, 0], [p.number(), 0, 0, 0]),
        Value::Ports(a, b) => {
            let (a, b) = (a.to_be_bytes(), b.to_be_bytes());
            ([a[0], a[1], 0, 0], [b[0], b[1], 0, 0])
        }
    };
    key.extend(first);
    end.extend(last);
}

fn element(e: &Element, interval: bool) -> LowElem {
    // At most four fields of up to 16 bytes.
    let (mut key, mut end) = (Vec::with_capacity(28), Vec::with_capacity(28));
    for v in &e.values {
        value_bytes(&mut key, &mut end, v, interval);
    }
    LowElem {
        key,
        key_end: interval.then_some(end),
        exprs: vec![LowExpr::Counter {
            packets: 0,
            bytes: 0,
        }],
        comment: Some(e.comment.clone()),
    }
}

/// The size a set is declared with: a hash set's element count (zt replaces whole tables, so
/// a set never grows past what it was built with), no bound for an interval set.
pub(crate) fn set_size(s: &Set) -> u32 {
    if s.interval {
        0
    } else {
        u32::try_from(s.elements.len()).unwrap_or(u32::MAX).max(1)
    }
}

fn set(s: &Set) -> LowSet {
    LowSet {
        name: s.name.clone(),
        flags: if s.interval { INTERVAL_FLAGS } else { 0 },
        key_type: s
            .fields
            .iter()
            .fold(0, |acc, f| (acc << 6) | field_type(*f)),
        key_len: s.fields.iter().map(|f| field_size(*f).0 * 4).sum(),
        fields: if s.interval {
            s.fields.iter().map(|f| field_size(*f).1).collect()
        } else {
            Vec::new()
        },
        userdata: SET_USERDATA.to_vec(),
        size: set_size(s),
        exprs: vec![LowExpr::Counter {
            packets: 0,
            bytes: 0,
        }],
        elements: s.elements.iter().map(|e| element(e, s.interval)).collect(),
    }
}

/// Lower the whole table. Fails only on a cgroup whose id was not resolved.
pub fn table(t: &Table) -> Result<LowTable, String> {
    let intervals: Intervals<'_> = t
        .sets
        .iter()
        .map(|s| (s.name.as_str(), s.interval))
        .collect();
    Ok(LowTable {
        name: t.name.clone(),
        sets: t.sets.iter().map(set).collect(),
        chains: t
            .chains
            .iter()
            .map(|c| chain(c, &intervals))
            .collect::<Result<_, _>>()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_prefixes_are_masked_over_the_whole_address_like_nft_does() {
        let mut out = Vec::new();
        let n: IpNet = "10.16.0.0/12".parse().unwrap();
        addr_match(Dir::Dst, &n, &mut out);
        assert_eq!(
            out[2..],
            [
                LowExpr::Payload {
                    base: 1,
                    offset: 16,
                    len: 4,
                    dreg: 1
                },
                LowExpr::Bitwise {
                    sreg: 1,
                    dreg: 1,
                    len: 4,
                    mask: vec![0xff, 0xf0, 0, 0],
                    xor: vec![0; 4]
                },
                LowExpr::Cmp {
                    op: 0,
                    sreg: 1,
                    data: vec![10, 16, 0, 0]
                },
            ]
        );
    }

    #[test]
    fn set_keys_pack_nft_datatypes_six_bits_apart() {
        let s = set(&Set {
            name: "s".into(),
            fields: vec![
                Field::SkUid,
                Field::Addr(Family::V4, Dir::Dst),
                Field::L4Proto,
                Field::Port(Dir::Dst),
            ],
            elements: vec![],
            interval: true,
        });
        assert_eq!(
            (s.key_type, s.key_len, s.fields.clone()),
            (6320909, 16, vec![4, 4, 1, 2])
        );
    }
}
