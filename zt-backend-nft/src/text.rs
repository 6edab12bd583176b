//! The model as an `nft -f` script.
//!
//! The script is self-contained and atomic when loaded: it creates the table if missing,
//! deletes it, and declares it whole — the same replace-in-one-transaction the netlink path
//! performs — so `nft -f` of a persisted script restores zt's table at boot without touching
//! anything else.

use crate::model::{
    Chain, CtStates, Dir, Element, Family, Field, Hook, RejectWith, Rule, Set, Stmt, Table, Value,
};
use ipnet::IpNet;
use std::fmt::{self, Write};
use zt_core::policy::{LogRate, LogRateParts, RateUnit};

fn family_word(f: Family) -> &'static str {
    match f {
        Family::V4 => "ip",
        Family::V6 => "ip6",
    }
}

fn dir_word(d: Dir, what: &str) -> String {
    match d {
        Dir::Src => format!("s{what}"),
        Dir::Dst => format!("d{what}"),
    }
}

/// A network as nft writes it: a lone address without `/32` or `/128`.
struct Net<'a>(&'a IpNet);

impl fmt::Display for Net<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        if n.prefix_len() == n.max_prefix_len() {
            write!(f, "{}", n.addr())
        } else {
            write!(f, "{n}")
        }
    }
}

/// A port or a range of ports.
struct Ports(u16, u16);

impl fmt::Display for Ports {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.0, self.1) {
            (a, b) if a == b => write!(f, "{a}"),
            (a, b) => write!(f, "{a}-{b}"),
        }
    }
}

fn rate(r: LogRate) -> String {
    let LogRateParts { count, unit } = r.parts();
    let unit = match unit {
        RateUnit::Second => "second",
        RateUnit::Minute => "minute",
        RateUnit::Hour => "hour",
        RateUnit::Day => "day",
    };
    format!("{count}/{unit}")
}

fn field(f: Field) -> String {
    match f {
        Field::SkUid => "meta skuid".into(),
        Field::SkGid => "meta skgid".into(),
        Field::Addr(fam, d) => format!("{} {}", family_word(fam), dir_word(d, "addr")),
        Field::Net(fam, d, prefix) => {
            let len = match fam {
                Family::V4 => 4,
                Family::V6 => 16,
            };
            let mask = crate::describe::mask_text(&crate::lower::prefix_mask(len, prefix));
            format!(
                "{} {} & {}",
                family_word(fam),
                dir_word(d, "addr"),
                mask.unwrap_or_default()
            )
        }
        Field::L4Proto => "meta l4proto".into(),
        Field::Port(d) => format!("th {}", dir_word(d, "port")),
    }
}

fn field_type(f: Field) -> &'static str {
    match f {
        Field::SkUid => "uid",
        Field::SkGid => "gid",
        Field::Addr(Family::V4, _) | Field::Net(Family::V4, ..) => "ipv4_addr",
        Field::Addr(Family::V6, _) | Field::Net(Family::V6, ..) => "ipv6_addr",
        Field::L4Proto => "inet_proto",
        Field::Port(_) => "inet_service",
    }
}

/// One statement in nft syntax.
pub fn stmt(s: &Stmt) -> String {
    match s {
        Stmt::CtState(CtStates::Invalid) => "ct state invalid".into(),
        Stmt::CtState(CtStates::EstablishedRelated) => "ct state established,related".into(),
        Stmt::CtState(CtStates::Established) => "ct state established".into(),
        Stmt::IifLoopback => "iif \"lo\"".into(),
        Stmt::NfProto(Family::V4) => "meta nfproto ipv4".into(),
        Stmt::NfProto(Family::V6) => "meta nfproto ipv6".into(),
        Stmt::L4Proto(p) => format!("meta l4proto {}", p.name()),
        Stmt::SkUid(u) => format!("meta skuid {u}"),
        Stmt::SkGid(g) => format!("meta skgid {g}"),
        Stmt::Cgroup { level, path, .. } => format!("socket cgroupv2 level {level} \"{path}\""),
        Stmt::Addr(d, n) => {
            let fam = if n.addr().is_ipv4() {
                Family::V4
            } else {
                Family::V6
            };
            format!("{} {} {}", family_word(fam), dir_word(*d, "addr"), Net(n))
        }
        Stmt::Port(p, d, a, b) => {
            format!("{} {} {}", p.name(), dir_word(*d, "port"), Ports(*a, *b))
        }
        Stmt::Icmpv6Type(a, b) => {
            if a == b {
                format!("icmpv6 type {a}")
            } else {
                format!("icmpv6 type {a}-{b}")
            }
        }
        Stmt::Lookup(fields, set) => {
            let keys: Vec<String> = fields.iter().map(|f| field(*f)).collect();
            format!("{} @{set}", keys.join(" . "))
        }
        Stmt::Counter => "counter".into(),
        Stmt::Limit(r) => format!("limit rate {}", rate(*r)),
        Stmt::Log(prefix) => format!("log prefix \"{prefix}\" flags skuid"),
        Stmt::Accept => "accept".into(),
        Stmt::Drop => "drop".into(),
        Stmt::Jump(c) => format!("jump {c}"),
        Stmt::Reject(RejectWith::TcpReset) => "reject with tcp reset".into(),
        Stmt::Reject(RejectWith::IcmpxPortUnreachable) => {
            "reject with icmpx port-unreachable".into()
        }
    }
}

/// Append an element: its values joined by ` . `, then its comment. Written in place, as a
/// large policy has tens of thousands. A network keyed by its masked address
/// ([`Field::Net`]) is written as that address, the exact key nft expects there.
fn element(out: &mut String, fields: &[Field], e: &Element) {
    for (i, v) in e.values.iter().enumerate() {
        if i > 0 {
            out.push_str(" . ");
        }
        let _ = match v {
            Value::Id(n) => write!(out, "{n}"),
            Value::Net(n) if matches!(fields.get(i), Some(Field::Net(..))) => {
                write!(out, "{}", n.network())
            }
            Value::Net(n) => write!(out, "{}", Net(n)),
            Value::Proto(p) => out.write_str(p.name()),
            Value::Ports(a, b) => write!(out, "{}", Ports(*a, *b)),
        };
    }
    let _ = write!(out, " comment \"{}\"", e.comment);
}

fn rule(out: &mut String, r: &Rule) {
    let stmts: Vec<String> = r.stmts.iter().map(stmt).collect();
    let _ = writeln!(out, "\t\t{} comment \"{}\"", stmts.join(" "), r.comment);
}

fn set(out: &mut String, s: &Set) {
    let types: Vec<&str> = s.fields.iter().map(|f| field_type(*f)).collect();
    let _ = writeln!(out, "\tset {} {{", s.name);
    let _ = writeln!(out, "\t\ttype {}", types.join(" . "));
    if s.interval {
        let _ = writeln!(out, "\t\tflags interval");
    } else {
        let _ = writeln!(out, "\t\tsize {}", crate::lower::set_size(s));
    }
    let _ = writeln!(out, "\t\tcounter");
    if !s.elements.is_empty() {
        let _ = writeln!(out, "\t\telements = {{");
        let last = s.elements.len() - 1;
        for (i, e) in s.elements.iter().enumerate() {
            let sep = if i == last { "" } else { "," };
            out.push_str("\t\t\t");
            element(out, &s.fields, e);
            out.push_str(sep);
            out.push('\n');
        }
        let _ = writeln!(out, "\t\t}}");
    }
    let _ = writeln!(out, "\t}}");
}

fn chain(out: &mut String, c: &Chain) {
    let _ = writeln!(out, "\tchain {} {{", c.name);
    if let Some(hook) = c.hook {
        let hook = match hook {
            Hook::Output => "output",
            Hook::Input => "input",
        };
        let _ = writeln!(
            out,
            "\t\ttype filter hook {hook} priority filter; policy accept;"
        );
    }
    for r in &c.rules {
        rule(out, r);
    }
    let _ = writeln!(out, "\t}}");
}

/// The whole table as an `nft -f` script that replaces zt's table atomically.
pub fn script(t: &Table) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# zt: the whole of table inet {}, replaced in one transaction",
        t.name
    );
    let _ = writeln!(out, "table inet {}", t.name);
    let _ = writeln!(out, "delete table inet {}", t.name);
    let _ = writeln!(out, "table inet {} {{", t.name);
    for s in &t.sets {
        set(&mut out, s);
    }
    for c in &t.chains {
        chain(&mut out, c);
    }
    let _ = writeln!(out, "}}");
    out
}

/// The script that removes zt's table (and nothing else), succeeding when it is absent.
pub fn delete_script(name: &str) -> String {
    format!("table inet {name}\ndelete table inet {name}\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::L4;

    #[test]
    fn statements_print_as_nft_writes_them() {
        let n: IpNet = "10.0.0.0/8".parse().unwrap_or_else(|_| IpNet::default());
        assert_eq!(stmt(&Stmt::Addr(Dir::Dst, n)), "ip daddr 10.0.0.0/8");
        let h: IpNet = "::1/128".parse().unwrap_or_else(|_| IpNet::default());
        assert_eq!(stmt(&Stmt::Addr(Dir::Src, h)), "ip6 saddr ::1");
        assert_eq!(
            stmt(&Stmt::Port(L4::Udp, Dir::Dst, 8000, 8100)),
            "udp dport 8000-8100"
        );
        let lookup = Stmt::Lookup(
            vec![
                Field::SkUid,
                Field::Addr(Family::V4, Dir::Dst),
                Field::L4Proto,
                Field::Port(Dir::Dst),
            ],
            "r1_v4".into(),
        );
        assert_eq!(
            stmt(&lookup),
            "meta skuid . ip daddr . meta l4proto . th dport @r1_v4"
        );
    }
}
