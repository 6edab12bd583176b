//! The ruleset as a readable table: what `zt check` prints and the snapshots record.

use super::{Entry, Hook, LogSpec, Matcher, RuleMatch, Ruleset, Verdict};
use crate::policy::Protocol;
use std::fmt;

impl fmt::Display for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Hook::Egress => "egress",
            Hook::Ingress => "ingress",
            Hook::Both => "both",
        })
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Accept => "accept",
            Verdict::Drop => "drop",
            Verdict::Reject => "reject",
        })
    }
}

/// `tcp/6379`, `udp/53,5353`, `icmp`, `all protocols`.
fn service(protocol: Protocol, ports: &crate::policy::PortSet) -> String {
    match (protocol, ports.is_any()) {
        (Protocol::Any, _) => "all protocols".to_owned(),
        (p, true) => p.to_string(),
        (p, false) => format!("{p}/{ports}"),
    }
}

impl fmt::Display for RuleMatch {
    /// `uid 1001 (web-user) -> 127.0.0.1/32 tcp/6379`, or `everything`; for ingress rules,
    /// whose identity is always any, [`Entry`]'s table shows `from <sources> <service>`
    /// instead.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.matches_everything() {
            return f.write_str("everything");
        }
        let RuleMatch {
            identity,
            peers,
            ports,
            protocol,
        } = self;
        let service = service(*protocol, ports);
        write!(f, "{identity} -> {peers} {service}")
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Matcher::CtInvalid => f.write_str("ct state invalid"),
            Matcher::CtEstablished => f.write_str("ct state established,related"),
            Matcher::Loopback => f.write_str("arrived on lo"),
            Matcher::Icmpv6Link => f.write_str("icmpv6 neighbour discovery and mld"),
            Matcher::SshReplies(p) => write!(f, "tcp from port {p}, established"),
            Matcher::Rule(m) => write!(f, "{m}"),
        }
    }
}

impl Entry {
    /// The match column: the matcher, with ingress rules read as `from <sources> <service>`.
    pub fn match_text(&self) -> String {
        match (&self.matcher, self.hook) {
            (Matcher::Rule(m), Hook::Ingress) if !m.matches_everything() => {
                let RuleMatch {
                    // Always any: netfilter cannot see who receives.
                    identity: _,
                    peers,
                    ports,
                    protocol,
                } = &**m;
                format!("from {peers} {}", service(*protocol, ports))
            }
            (m, _) => m.to_string(),
        }
    }

    /// The action column: `accept`, `log "ZT-BLOCKED: " 10/second`, `log "…" then drop`.
    pub fn action_text(&self) -> String {
        let log = self.log.as_deref().map(|l| {
            let LogSpec { prefix, rate } = l;
            format!("log \"{}\" {rate}", prefix.as_str())
        });
        match (log, self.verdict) {
            (None, Some(v)) => v.to_string(),
            (Some(l), None) => l,
            (Some(l), Some(v)) => format!("{l} then {v}"),
            (None, None) => "continue".to_owned(),
        }
    }
}

impl fmt::Display for Ruleset {
    /// One line per entry: number, name, hook, match, action; columns aligned.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rows: Vec<[String; 5]> = self
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| {
                // Every field has its column: the origin shows in the name (`zt:…`).
                let Entry {
                    name,
                    origin: _,
                    hook,
                    matcher: _,
                    log: _,
                    verdict: _,
                } = e;
                [
                    (i + 1).to_string(),
                    name.to_string(),
                    hook.to_string(),
                    e.match_text(),
                    e.action_text(),
                ]
            })
            .collect();
        let header = ["#", "entry", "hook", "match", "action"].map(str::to_owned);
        let mut width = [0usize; 5];
        for row in rows.iter().chain([&header]) {
            for (w, cell) in width.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        for row in [&header].into_iter().chain(&rows) {
            let line = format!(
                "{:>w0$}  {:<w1$}  {:<w2$}  {:<w3$}  {}",
                row[0],
                row[1],
                row[2],
                row[3],
                row[4],
                w0 = width[0],
                w1 = width[1],
                w2 = width[2],
                w3 = width[3],
            );
            writeln!(f, "{}", line.trim_end())?;
        }
        Ok(())
    }
}
