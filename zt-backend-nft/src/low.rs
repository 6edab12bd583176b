//! The table at the level the kernel stores it: chains of rules made of nf_tables
//! expressions, and sets with their raw elements.
//!
//! This is what the netlink encoder sends, what a dump of the kernel decodes into, what a
//! snapshot records and what plan and verify compare. Keeping one low-level form for all four
//! means a table zt applied reads back equal to what it sent, and a snapshot restores exactly
//! what was there.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Register numbers as nf_tables numbers them: the verdict register, the first 128-bit data
/// register, and the 32-bit registers that concatenations use (`NFT_REG32_00` is 8).
pub const REG_VERDICT: u32 = 0;
/// The first 128-bit data register (`NFT_REG_1`), aliasing 32-bit registers 8–11.
pub const REG_1: u32 = 1;
/// `NFT_REG32_00`.
pub const REG32_00: u32 = 8;

/// `NFT_META_*` keys zt loads.
pub mod meta {
    /// The netfilter family of the packet (2 = IPv4, 10 = IPv6).
    pub const NFPROTO: u32 = 15;
    /// Layer-4 protocol number.
    pub const L4PROTO: u32 = 16;
    /// Input interface index.
    pub const IIF: u32 = 4;
    /// Socket owner uid.
    pub const SKUID: u32 = 10;
    /// Socket owner gid.
    pub const SKGID: u32 = 11;
}

/// Payload bases (`NFT_PAYLOAD_*_HEADER`).
pub mod base {
    /// The network header.
    pub const NETWORK: u32 = 1;
    /// The transport header.
    pub const TRANSPORT: u32 = 2;
}

/// Comparison operators (`NFT_CMP_*`).
pub mod cmp {
    /// Equal.
    pub const EQ: u32 = 0;
    /// Not equal.
    pub const NEQ: u32 = 1;
    /// Less than or equal.
    pub const LTE: u32 = 3;
    /// Greater than or equal.
    pub const GTE: u32 = 5;
}

/// Verdict codes carried by `immediate`.
pub mod verdict {
    /// `NF_DROP`.
    pub const DROP: i32 = 0;
    /// `NF_ACCEPT`.
    pub const ACCEPT: i32 = 1;
    /// `NFT_JUMP`.
    pub const JUMP: i32 = -3;
    /// `NFT_GOTO`.
    pub const GOTO: i32 = -4;
}

/// One nf_tables expression, with exactly the attributes zt sets or reads.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "expr")]
pub enum LowExpr {
    /// `meta load <key> => reg`.
    Meta {
        /// `NFT_META_*`.
        key: u32,
        /// Destination register.
        dreg: u32,
    },
    /// `payload load <len>b @ <base> + <offset> => reg`.
    Payload {
        /// Header base.
        base: u32,
        /// Offset in bytes.
        offset: u32,
        /// Length in bytes.
        len: u32,
        /// Destination register.
        dreg: u32,
    },
    /// `cmp <op> reg <data>`.
    Cmp {
        /// `NFT_CMP_*`.
        op: u32,
        /// Source register.
        sreg: u32,
        /// Value, in the register's byte order.
        data: Vec<u8>,
    },
    /// `bitwise reg = (reg & mask) ^ xor`.
    Bitwise {
        /// Source register.
        sreg: u32,
        /// Destination register.
        dreg: u32,
        /// Length in bytes.
        len: u32,
        /// Mask.
        mask: Vec<u8>,
        /// Xor.
        xor: Vec<u8>,
    },
    /// `ct load <key> => reg`.
    Ct {
        /// `NFT_CT_*`.
        key: u32,
        /// Destination register.
        dreg: u32,
    },
    /// `byteorder reg = hton(reg, size, len)`.
    Byteorder {
        /// Source register.
        sreg: u32,
        /// Destination register.
        dreg: u32,
        /// `NFT_BYTEORDER_NTOH` (0) or `HTON` (1).
        op: u32,
        /// Length in bytes.
        len: u32,
        /// Element size in bytes.
        size: u32,
    },
    /// `socket load cgroupv2 => reg, level`.
    Socket {
        /// `NFT_SOCKET_*`.
        key: u32,
        /// Destination register.
        dreg: u32,
        /// cgroup v2 ancestor level.
        level: u32,
    },
    /// `lookup reg set <name>`.
    Lookup {
        /// Source register.
        sreg: u32,
        /// The set's name.
        set: String,
    },
    /// `counter pkts bytes`.
    Counter {
        /// Packets (ignored when comparing).
        packets: u64,
        /// Bytes (ignored when comparing).
        bytes: u64,
    },
    /// `limit rate <rate>/<unit seconds> burst <burst>`.
    Limit {
        /// Packets per unit.
        rate: u64,
        /// Unit, in seconds.
        unit: u64,
        /// Burst.
        burst: u32,
        /// `NFT_LIMIT_PKTS` (0).
        kind: u32,
        /// Flags.
        flags: u32,
    },
    /// `log prefix <prefix> level flags`.
    Log {
        /// The prefix.
        prefix: String,
        /// Syslog level (the kernel reports its default, 4, when none was given).
        level: Option<u32>,
        /// `NF_LOG_*` flags (`NF_LOG_UID` is 8), if set.
        flags: Option<u32>,
    },
    /// `reject type <type> code <code>`.
    Reject {
        /// `NFT_REJECT_*`.
        kind: u32,
        /// ICMP(x) code.
        code: u8,
    },
    /// `immediate reg 0 <verdict> [chain]`.
    Verdict {
        /// Verdict code.
        code: i32,
        /// Target chain of a jump or goto.
        chain: Option<String>,
    },
    /// An expression zt does not generate (found in a table someone edited by hand).
    Other {
        /// Its name.
        name: String,
    },
}

/// The hook and priority of a base chain.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LowBase {
    /// Chain type (`filter`).
    pub kind: String,
    /// `NF_INET_*` hook number (output 3, input 1).
    pub hook: u32,
    /// Priority (0 = `filter`).
    pub priority: i32,
    /// Policy (`NF_ACCEPT` 1).
    pub policy: u32,
}

/// A rule: its expressions and comment.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LowRule {
    /// The expressions, evaluated in order.
    pub exprs: Vec<LowExpr>,
    /// The comment: the policy rule or zt entry it implements.
    pub comment: Option<String>,
}

/// A chain.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LowChain {
    /// Its name.
    pub name: String,
    /// Hook and priority, for a base chain.
    pub base: Option<LowBase>,
    /// Its rules in order.
    pub rules: Vec<LowRule>,
}

/// One set element.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LowElem {
    /// Key (the start of the interval for interval sets).
    pub key: Vec<u8>,
    /// End of the interval, for interval sets.
    pub key_end: Option<Vec<u8>>,
    /// Its expressions (a counter).
    pub exprs: Vec<LowExpr>,
    /// The comment: the policy rule it belongs to.
    pub comment: Option<String>,
}

/// A named set.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LowSet {
    /// Its name.
    pub name: String,
    /// `NFT_SET_*` flags.
    pub flags: u32,
    /// Key datatype (a concatenation of nft datatypes, 6 bits each).
    pub key_type: u32,
    /// Key length in bytes (each field padded to 4).
    pub key_len: u32,
    /// Field lengths of a concatenated key, unpadded.
    pub fields: Vec<u8>,
    /// Set-level userdata (the key byte order and type information nft prints from).
    pub userdata: Vec<u8>,
    /// The most elements it holds (`NFTA_SET_DESC_SIZE`; 0 for no bound). A hash set given
    /// its size is a fixed hash table from the start: loading it never grows the table, and
    /// a dump never walks a table a resize is rebuilding (which repeats or skips elements).
    #[serde(default)]
    pub size: u32,
    /// Expressions every element gets (a counter).
    pub exprs: Vec<LowExpr>,
    /// The elements.
    pub elements: Vec<LowElem>,
}

/// A table.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LowTable {
    /// Its name (family is always `inet`).
    pub name: String,
    /// Sets, created before the rules that reference them.
    pub sets: Vec<LowSet>,
    /// Chains; helper chains before the base chains that jump to them.
    pub chains: Vec<LowChain>,
}

/// Bytes as lower-case hex, two digits each: how comparisons see keys and data, so it runs
/// for every element of a table (one string, no formatting machinery).
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

impl fmt::Display for LowExpr {
    /// Close to `nft --debug=netlink`, with counter values left out (they are state, not
    /// configuration).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LowExpr::Meta { key, dreg } => write!(f, "[ meta load {key} => reg {dreg} ]"),
            LowExpr::Payload {
                base,
                offset,
                len,
                dreg,
            } => {
                write!(
                    f,
                    "[ payload load {len}b @ base {base} + {offset} => reg {dreg} ]"
                )
            }
            LowExpr::Cmp { op, sreg, data } => write!(f, "[ cmp {op} reg {sreg} 0x{} ]", hex(data)),
            LowExpr::Bitwise {
                sreg,
                dreg,
                len,
                mask,
                xor,
            } => write!(
                f,
                "[ bitwise reg {dreg} = ( reg {sreg} & 0x{} ) ^ 0x{} len {len} ]",
                hex(mask),
                hex(xor)
            ),
            LowExpr::Ct { key, dreg } => write!(f, "[ ct load {key} => reg {dreg} ]"),
            LowExpr::Byteorder {
                sreg,
                dreg,
                op,
                len,
                size,
            } => {
                write!(
                    f,
                    "[ byteorder reg {dreg} = op{op}(reg {sreg}, {size}, {len}) ]"
                )
            }
            LowExpr::Socket { key, dreg, level } => {
                write!(f, "[ socket load {key} => reg {dreg}, level {level} ]")
            }
            LowExpr::Lookup { sreg, set } => write!(f, "[ lookup reg {sreg} set {set} ]"),
            LowExpr::Counter { .. } => f.write_str("[ counter ]"),
            LowExpr::Limit {
                rate,
                unit,
                burst,
                kind,
                flags,
            } => {
                write!(
                    f,
                    "[ limit rate {rate}/{unit}s burst {burst} type {kind} flags {flags} ]"
                )
            }
            LowExpr::Log {
                prefix,
                level,
                flags,
            } => {
                write!(
                    f,
                    "[ log prefix {prefix:?} level {level:?} flags {flags:?} ]"
                )
            }
            LowExpr::Reject { kind, code } => write!(f, "[ reject type {kind} code {code} ]"),
            LowExpr::Verdict { code, chain: None } => {
                write!(f, "[ immediate reg 0 verdict {code} ]")
            }
            LowExpr::Verdict {
                code,
                chain: Some(c),
            } => {
                write!(f, "[ immediate reg 0 verdict {code} -> {c} ]")
            }
            LowExpr::Other { name } => write!(f, "[ {name} (not generated by zt) ]"),
        }
    }
}

impl fmt::Display for LowRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.exprs.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl fmt::Display for LowElem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "element 0x{}", hex(&self.key))?;
        if let Some(end) = &self.key_end {
            write!(f, " - 0x{}", hex(end))?;
        }
        for e in &self.exprs {
            write!(f, " {e}")?;
        }
        Ok(())
    }
}

/// The order elements are compared in: by key. Sets have none of their own — a dump lists a
/// hash set's elements in hash order — while the model sends them in policy order (the order
/// `nft -f` inserts them in, which is the order it lists an interval set in).
pub fn element_order(a: &LowElem, b: &LowElem) -> std::cmp::Ordering {
    (&a.key, &a.key_end).cmp(&(&b.key, &b.key_end))
}

impl LowTable {
    /// The same table with every set's elements in [`element_order`], for comparing tables.
    pub fn normalized(&self) -> LowTable {
        let mut t = self.clone();
        for s in &mut t.sets {
            s.elements.sort_by(element_order);
        }
        t
    }
}

impl LowSet {
    /// The set's definition without its elements, for comparisons.
    pub fn definition(&self) -> String {
        let exprs: Vec<String> = self.exprs.iter().map(ToString::to_string).collect();
        format!(
            "set {} flags 0x{:x} type 0x{:x} len {} fields {:?} udata 0x{} size {} exprs {}",
            self.name,
            self.flags,
            self.key_type,
            self.key_len,
            self.fields,
            hex(&self.userdata),
            self.size,
            exprs.join(" ")
        )
    }
}
