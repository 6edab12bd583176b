//! Kernel objects read back as nft syntax, for people: plan diffs, drift reports.
//!
//! Comparisons run on the exact low-level form ([`crate::low`]); this module only turns that
//! form into what an operator reads (`meta skuid 1001 ip daddr 127.0.0.1 tcp dport 6379
//! counter accept`) instead of register loads. It follows the expressions zt generates, and
//! anything else (a table edited by hand) is printed in the low-level form, so nothing is
//! hidden.

use crate::low::{LowChain, LowElem, LowExpr, LowRule, LowSet, base, cmp, meta, verdict};
use std::fmt::Write;
use std::net::{Ipv4Addr, Ipv6Addr};

/// What the last load put in a register, which decides how a comparison prints its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Loaded {
    Meta(u32),
    Payload { base: u32, offset: u32, len: u32 },
    CtState,
    Cgroup(u32),
    Unknown,
}

impl Loaded {
    fn name(self) -> String {
        match self {
            Loaded::Meta(meta::SKUID) => "meta skuid".into(),
            Loaded::Meta(meta::SKGID) => "meta skgid".into(),
            Loaded::Meta(meta::NFPROTO) => "meta nfproto".into(),
            Loaded::Meta(meta::L4PROTO) => "meta l4proto".into(),
            Loaded::Meta(meta::IIF) => "iif".into(),
            Loaded::Meta(k) => format!("meta key {k}"),
            Loaded::Payload {
                base: base::NETWORK,
                offset,
                len,
            } => match network_field(offset, len) {
                Some((name, _)) => name.into(),
                None => format!("@nh,{},{}", offset * 8, len * 8),
            },
            Loaded::Payload {
                base: base::TRANSPORT,
                offset,
                len,
            } => match (offset, len) {
                (0, 2) => "th sport".into(),
                (2, 2) => "th dport".into(),
                (0, 1) => "icmp type".into(),
                _ => format!("@th,{},{}", offset * 8, len * 8),
            },
            Loaded::Payload { base, offset, len } => {
                format!("@base{base},{},{}", offset * 8, len * 8)
            }
            Loaded::CtState => "ct state".into(),
            Loaded::Cgroup(level) => format!("socket cgroupv2 level {level}"),
            Loaded::Unknown => "?".into(),
        }
    }

    /// A comparison value as nft prints it for this field.
    fn value(self, data: &[u8], mask: Option<&[u8]>) -> String {
        match self {
            // Loopback is interface 1 in every namespace (LOOPBACK_IFINDEX).
            Loaded::Meta(meta::IIF) if data == 1u32.to_ne_bytes() => "\"lo\"".into(),
            Loaded::Meta(meta::SKUID | meta::SKGID | meta::IIF) => le_u32(data),
            Loaded::Meta(meta::NFPROTO) => match data {
                [2] => "ipv4".into(),
                [10] => "ipv6".into(),
                _ => hex(data),
            },
            Loaded::Meta(meta::L4PROTO) => match data {
                [p] => proto_name(*p),
                _ => hex(data),
            },
            Loaded::Payload {
                base: base::NETWORK,
                offset,
                len,
            } => match network_field(offset, len) {
                // A byte-aligned prefix loads only its bytes (nft's own optimization).
                Some((_, full)) if len < full => {
                    let mut padded = data.to_vec();
                    padded.resize(full as usize, 0);
                    format!("{}/{}", address(&padded, None), len * 8)
                }
                Some(_) => address(data, mask),
                None => hex(data),
            },
            Loaded::Payload {
                base: base::TRANSPORT,
                len: 2,
                ..
            } => match data {
                [a, b] => u16::from_be_bytes([*a, *b]).to_string(),
                _ => hex(data),
            },
            Loaded::Payload {
                base: base::TRANSPORT,
                len: 1,
                ..
            } => match data {
                [t] => t.to_string(),
                _ => hex(data),
            },
            Loaded::CtState => ct_states(mask.unwrap_or(data)),
            Loaded::Cgroup(_) => match <[u8; 8]>::try_from(data) {
                Ok(b) => format!("id {}", u64::from_le_bytes(b)),
                Err(_) => hex(data),
            },
            _ => hex(data),
        }
    }
}

/// The address field a network-header load reads (all of it, or a byte-aligned prefix of
/// it), and the field's full length.
fn network_field(offset: u32, len: u32) -> Option<(&'static str, u32)> {
    match offset {
        12 if len <= 4 => Some(("ip saddr", 4)),
        16 if len <= 4 => Some(("ip daddr", 4)),
        8 if len <= 16 => Some(("ip6 saddr", 16)),
        24 if len <= 16 => Some(("ip6 daddr", 16)),
        _ => None,
    }
}

/// A network mask as nft prints it (`255.255.255.0`, `ffff:ffff::`).
pub(crate) fn mask_text(mask: &[u8]) -> Option<String> {
    match mask.len() {
        4 => <[u8; 4]>::try_from(mask)
            .ok()
            .map(|b| std::net::Ipv4Addr::from(b).to_string()),
        16 => <[u8; 16]>::try_from(mask)
            .ok()
            .map(|b| std::net::Ipv6Addr::from(b).to_string()),
        _ => None,
    }
}

/// A rule in nft syntax (without its comment).
pub fn rule(r: &LowRule) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut loaded = Loaded::Unknown;
    let mut fields: Vec<Loaded> = Vec::new();
    let mut mask: Option<Vec<u8>> = None;
    let mut masked: Vec<(usize, String)> = Vec::new();
    let mut icmpv6 = false;
    for e in &r.exprs {
        match e {
            LowExpr::Meta { key, .. } => {
                loaded = Loaded::Meta(*key);
                fields.push(loaded);
                mask = None;
            }
            LowExpr::Payload {
                base, offset, len, ..
            } => {
                loaded = Loaded::Payload {
                    base: *base,
                    offset: *offset,
                    len: *len,
                };
                fields.push(loaded);
                mask = None;
            }
            LowExpr::Ct { key: 0, .. } => {
                loaded = Loaded::CtState;
                fields.push(loaded);
                mask = None;
            }
            LowExpr::Socket { level, .. } => {
                loaded = Loaded::Cgroup(*level);
                fields.push(loaded);
                mask = None;
            }
            LowExpr::Bitwise { mask: m, .. } => {
                if let Some(name) = fields.last().map(|f| f.name())
                    && let Some(net) = mask_text(m)
                {
                    // A masked key field of a set lookup (`ip daddr & 255.255.255.0`).
                    masked.push((fields.len() - 1, format!("{name} & {net}")));
                }
                mask = Some(m.clone());
            }
            // Part of an interval lookup's key preparation: nothing to say.
            LowExpr::Byteorder { .. } => {}
            LowExpr::Cmp { op, data, .. } => {
                fields.clear();
                let value = loaded.value(data, mask.as_deref());
                if loaded == Loaded::Meta(meta::L4PROTO) {
                    icmpv6 = data.as_slice() == [58];
                }
                let mut name = loaded.name();
                if icmpv6 && name == "icmp type" {
                    name = "icmpv6 type".into();
                }
                let text = match (loaded, *op) {
                    (Loaded::CtState, _) => format!("ct state {value}"),
                    (_, cmp::EQ) => format!("{name} {value}"),
                    (_, cmp::NEQ) => format!("{name} != {value}"),
                    (_, cmp::LTE) => format!("{name} <= {value}"),
                    (_, cmp::GTE) => format!("{name} >= {value}"),
                    (_, op) => format!("{name} cmp{op} {value}"),
                };
                out.push(text);
            }
            LowExpr::Lookup { set, .. } => {
                let mut keys: Vec<String> = fields.drain(..).map(Loaded::name).collect();
                for (i, text) in masked.drain(..) {
                    if let Some(key) = keys.get_mut(i) {
                        *key = text;
                    }
                }
                out.push(format!("{} @{set}", keys.join(" . ")));
            }
            LowExpr::Counter { .. } => out.push("counter".into()),
            LowExpr::Limit { rate, unit, .. } => {
                out.push(format!("limit rate {rate}/{}", unit_name(*unit)))
            }
            LowExpr::Log { prefix, flags, .. } => {
                let uid = if flags.is_some_and(|f| f & 8 != 0) {
                    " flags skuid"
                } else {
                    ""
                };
                out.push(format!("log prefix \"{prefix}\"{uid}"));
            }
            LowExpr::Reject { kind: 1, .. } => out.push("reject with tcp reset".into()),
            LowExpr::Reject { kind: 2, code: 3 } => {
                out.push("reject with icmpx port-unreachable".into())
            }
            LowExpr::Verdict { code, chain } => out.push(match (*code, chain) {
                (verdict::ACCEPT, _) => "accept".into(),
                (verdict::DROP, _) => "drop".into(),
                (verdict::JUMP, Some(c)) => format!("jump {c}"),
                (verdict::GOTO, Some(c)) => format!("goto {c}"),
                _ => e.to_string(),
            }),
            other => out.push(other.to_string()),
        }
    }
    out.join(" ")
}

/// A chain's declaration.
pub fn chain(c: &LowChain) -> String {
    match &c.base {
        Some(b) => {
            let hook = match b.hook {
                1 => "input".to_owned(),
                3 => "output".to_owned(),
                h => format!("hook{h}"),
            };
            let policy = match i32::try_from(b.policy) {
                Ok(verdict::ACCEPT) => "accept",
                Ok(verdict::DROP) => "drop",
                _ => "?",
            };
            format!(
                "type {} hook {hook} priority {}; policy {policy};",
                b.kind, b.priority
            )
        }
        None => "regular chain".into(),
    }
}

/// A set's declaration: its key types.
pub fn set(s: &LowSet) -> String {
    let types: Vec<&str> = key_types(s).iter().map(|t| type_name(*t)).collect();
    let interval = if s.flags & INTERVAL != 0 {
        " flags interval;"
    } else {
        ""
    };
    format!("set {} {{ type {};{interval} }}", s.name, types.join(" . "))
}

/// An element of `s` in nft syntax.
pub fn element(s: &LowSet, e: &LowElem) -> String {
    let mut out = String::new();
    Elements::of(s).write(&mut out, e);
    out
}

/// How the elements of one set read: its key's datatypes and field lengths, worked out once
/// for all its elements (a plan of a large policy describes tens of thousands).
pub struct Elements {
    types: Vec<u32>,
    fields: Vec<u8>,
    interval: bool,
}

impl Elements {
    /// The formatter for the elements of `s`.
    pub fn of(s: &LowSet) -> Self {
        let types = key_types(s);
        let fields: Vec<u8> = if s.fields.is_empty() {
            types.iter().map(|t| type_len(*t)).collect()
        } else {
            s.fields.clone()
        };
        Self {
            types,
            fields,
            interval: s.flags & INTERVAL != 0,
        }
    }

    /// Append element `e` in nft syntax (`element { 1001 . 10.0.0.0/24 . tcp . 6379 }`).
    pub fn write(&self, out: &mut String, e: &LowElem) {
        out.push_str("element { ");
        let mut end = e.key_end.as_deref().map(|k| split(k, &self.fields));
        for (i, first) in split(&e.key, &self.fields).enumerate() {
            if i > 0 {
                out.push_str(" . ");
            }
            let t = self.types.get(i).copied().unwrap_or(0);
            field_value(out, t, first, self.interval);
            // Every field format tells different bytes apart, so equal bytes are one value.
            match end.as_mut().and_then(Iterator::next) {
                Some(last) if last != first => range(out, t, first, last, self.interval),
                _ => {}
            }
        }
        out.push_str(" }");
    }
}

const INTERVAL: u32 = 0x4;

/// nft datatype numbers zt's sets use.
const TYPE_IPADDR: u32 = 7;
const TYPE_IP6ADDR: u32 = 8;
const TYPE_INET_PROTOCOL: u32 = 12;
const TYPE_INET_SERVICE: u32 = 13;
const TYPE_UID: u32 = 24;
const TYPE_GID: u32 = 25;

/// The datatypes of a concatenated key, first field first (6 bits each, first field highest).
fn key_types(s: &LowSet) -> Vec<u32> {
    let mut types = Vec::new();
    let mut t = s.key_type;
    while t != 0 {
        types.push(t & 0x3f);
        t >>= 6;
    }
    types.reverse();
    types
}

/// A datatype's length in bytes, for keys whose set carries no field lengths (hash sets).
fn type_len(t: u32) -> u8 {
    match t {
        TYPE_IP6ADDR => 16,
        TYPE_INET_PROTOCOL => 1,
        TYPE_INET_SERVICE => 2,
        _ => 4,
    }
}

fn type_name(t: u32) -> &'static str {
    match t {
        TYPE_IPADDR => "ipv4_addr",
        TYPE_IP6ADDR => "ipv6_addr",
        TYPE_INET_PROTOCOL => "inet_proto",
        TYPE_INET_SERVICE => "inet_service",
        TYPE_UID => "uid",
        TYPE_GID => "gid",
        _ => "?",
    }
}

/// The fields of a concatenated key (each padded to 4 bytes), or the whole key when the set
/// gives no field lengths.
fn split<'a>(key: &'a [u8], fields: &'a [u8]) -> impl Iterator<Item = &'a [u8]> {
    let whole = fields.is_empty().then_some(key);
    let mut at = 0usize;
    let parts = fields.iter().map(move |&len| {
        let len = usize::from(len);
        let part = key.get(at..at + len).unwrap_or(&[]);
        at += len.div_ceil(4) * 4;
        part
    });
    whole.into_iter().chain(parts)
}

/// Append one field's value.
fn field_value(out: &mut String, t: u32, v: &[u8], interval: bool) {
    let _ = match (t, v) {
        (TYPE_UID | TYPE_GID, [a, b, c, d]) => {
            // Interval sets hold ids in network byte order (zt converts them with byteorder).
            let id = if interval {
                u32::from_be_bytes([*a, *b, *c, *d])
            } else {
                u32::from_le_bytes([*a, *b, *c, *d])
            };
            write!(out, "{id}")
        }
        (TYPE_IPADDR, [a, b, c, d]) => write!(out, "{}", Ipv4Addr::new(*a, *b, *c, *d)),
        (TYPE_IPADDR | TYPE_IP6ADDR, _) => {
            out.push_str(&address(v, None));
            Ok(())
        }
        (TYPE_INET_PROTOCOL, [p]) => {
            out.push_str(&proto_name(*p));
            Ok(())
        }
        (TYPE_INET_SERVICE, [a, b]) => write!(out, "{}", u16::from_be_bytes([*a, *b])),
        _ => {
            out.push_str(&hex(v));
            Ok(())
        }
    };
}

/// Append the end of an interval whose start is written: `/len` when it is a prefix, else
/// `-last`.
fn range(out: &mut String, t: u32, start: &[u8], end: &[u8], interval: bool) {
    if matches!(t, TYPE_IPADDR | TYPE_IP6ADDR)
        && let Some(len) = prefix_of(start, end)
    {
        let _ = write!(out, "/{len}");
        return;
    }
    out.push('-');
    field_value(out, t, end, interval);
}

/// The prefix length when `[start, end]` is exactly one prefix.
fn prefix_of(start: &[u8], end: &[u8]) -> Option<u32> {
    if start.len() != end.len() {
        return None;
    }
    let mut len = 0u32;
    let mut host = false;
    for (a, b) in start.iter().zip(end) {
        for bit in (0..8).rev() {
            let (x, y) = ((a >> bit) & 1, (b >> bit) & 1);
            match (host, x, y) {
                (false, x, y) if x == y => len += 1,
                (_, 0, 1) => host = true,
                _ => return None,
            }
        }
    }
    Some(len)
}

fn address(data: &[u8], mask: Option<&[u8]>) -> String {
    let addr = match data.len() {
        4 => <[u8; 4]>::try_from(data).map(|b| Ipv4Addr::from(b).to_string()),
        16 => <[u8; 16]>::try_from(data).map(|b| Ipv6Addr::from(b).to_string()),
        _ => return hex(data),
    };
    let Ok(addr) = addr else { return hex(data) };
    match mask {
        Some(m) if m.len() == data.len() => {
            let ones: u32 = m.iter().map(|b| b.count_ones()).sum();
            format!("{addr}/{ones}")
        }
        _ => addr,
    }
}

fn ct_states(bits: &[u8]) -> String {
    let value = match <[u8; 4]>::try_from(bits) {
        Ok(b) => u32::from_le_bytes(b),
        Err(_) => return hex(bits),
    };
    let names: Vec<&str> = [
        (1, "invalid"),
        (2, "established"),
        (4, "related"),
        (8, "new"),
        (64, "untracked"),
    ]
    .iter()
    .filter(|(bit, _)| value & bit != 0)
    .map(|(_, name)| *name)
    .collect();
    names.join(",")
}

fn proto_name(p: u8) -> String {
    match p {
        1 => "icmp".into(),
        6 => "tcp".into(),
        17 => "udp".into(),
        58 => "icmpv6".into(),
        p => p.to_string(),
    }
}

fn unit_name(seconds: u64) -> String {
    match seconds {
        1 => "second".into(),
        60 => "minute".into(),
        3600 => "hour".into(),
        86_400 => "day".into(),
        s => format!("{s}s"),
    }
}

fn le_u32(data: &[u8]) -> String {
    match <[u8; 4]>::try_from(data) {
        Ok(b) => u32::from_le_bytes(b).to_string(),
        Err(_) => hex(data),
    }
}

fn hex(data: &[u8]) -> String {
    format!("0x{}", crate::low::hex(data))
}
