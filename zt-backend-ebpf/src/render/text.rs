//! Rendered map contents as text: the units `verify` compares, and the dump `zt plan` shows.

use super::{
    Effect, Group, IdentityKind, Member, PortMatch, Rendered, RuleInfo, Target, Transport,
};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use zt_core::Unit;

impl Rendered {
    /// The rule table entry of `index`.
    pub fn rule(&self, index: u32) -> Option<&RuleInfo> {
        self.rules
            .binary_search_by_key(&index, |r| r.index)
            .ok()
            .and_then(|i| self.rules.get(i))
    }

    fn rule_name(&self, index: u32) -> String {
        self.rule(index)
            .map_or_else(|| format!("#{index}"), |r| r.name.clone())
    }

    /// Every map entry as a (subject, text) unit for [`zt_core::compare`]: each rule's verdict
    /// line, then each (key, prefix) the rule decides, then the default. Group numbers and rule
    /// indexes are left out so that inserting a rule shows as one addition, not as a change of
    /// every later rule; [`Rendered`] equality catches what the units cannot show.
    pub fn units(&self) -> Vec<Unit> {
        let mut lines: BTreeMap<u32, Vec<String>> = BTreeMap::new();
        for m in &self.members {
            let Some(group) = self.groups.get(m.group as usize) else {
                continue;
            };
            let key = describe_key(group, m);
            match m.target {
                Target::Every(rule) => {
                    lines
                        .entry(rule.index)
                        .or_default()
                        .push(format!("{key} -> any"));
                }
                Target::List(list) => {
                    for p in self.prefixes.iter().filter(|p| p.list == list) {
                        lines
                            .entry(p.rule.index)
                            .or_default()
                            .push(format!("{key} -> {}", p.net));
                    }
                }
            }
        }
        let mut units = Vec::new();
        for r in &self.rules {
            let log = if r.log { " log" } else { "" };
            if r.index == self.default_rule.index {
                units.push((
                    r.name.clone(),
                    format!("default {}{log}", effect_name(r.effect)),
                ));
                continue;
            }
            units.push((r.name.clone(), format!("{}{log}", effect_name(r.effect))));
            for line in lines.remove(&r.index).unwrap_or_default() {
                units.push((r.name.clone(), line));
            }
        }
        // Entries naming a rule the table lacks (only a tampered map holds those).
        for (index, texts) in lines {
            for line in texts {
                units.push((format!("#{index}"), line));
            }
        }
        units
    }

    /// The map entries as text an operator can read: the artifact of `zt plan` for this
    /// backend, with a header stating what the backend enforces and what it cannot.
    pub fn dump(&self) -> String {
        let mut out = String::new();
        out.push_str(crate::ARTIFACT_HEADER);
        let log = |l: bool| if l { " (log)" } else { "" };
        let _ = writeln!(
            out,
            "\ndefault: {} by #{} {}{}",
            effect_name(self.default_effect),
            self.default_rule.index,
            self.rule_name(self.default_rule.index),
            log(self.default_rule.log)
        );
        let _ = writeln!(out, "\ngroups ({}):", self.groups.len());
        for (i, g) in self.groups.iter().enumerate() {
            let ident = match g.identity {
                IdentityKind::Any => "any".to_owned(),
                IdentityKind::Uid => "uid".to_owned(),
                IdentityKind::Gid => "gid".to_owned(),
                IdentityKind::Cgroup { level } => format!("cgroup@{level}"),
            };
            let ports = match g.ports {
                PortMatch::Exact => "exact ports".to_owned(),
                PortMatch::Range { first, last } => format!("ports {first}-{last}"),
            };
            let _ = writeln!(
                out,
                "  {i:<4} {:<7}{ident:<11}{ports}",
                effect_name(g.effect)
            );
        }
        let _ = writeln!(out, "\nmembers ({}):", self.members.len());
        for m in &self.members {
            let Some(group) = self.groups.get(m.group as usize) else {
                continue;
            };
            let target = match m.target {
                Target::Every(r) => format!(
                    "any address: #{} {}{}",
                    r.index,
                    self.rule_name(r.index),
                    log(r.log)
                ),
                Target::List(l) => format!("list {l}"),
            };
            let _ = writeln!(
                out,
                "  {:<4} {:<22} {:<10} -> {target}",
                m.group,
                identity_text(group.identity, m.identity),
                port_text(group, m)
            );
        }
        let _ = writeln!(out, "\nlists ({} prefixes):", self.prefixes.len());
        for p in &self.prefixes {
            let _ = writeln!(
                out,
                "  {:<4} {:<43} -> #{} {}{}",
                p.list,
                p.net.to_string(),
                p.rule.index,
                self.rule_name(p.rule.index),
                log(p.rule.log)
            );
        }
        let _ = writeln!(out, "\nrules (counter index, name, effect):");
        for r in &self.rules {
            let _ = writeln!(
                out,
                "  {:<4} {:<30} {}{}",
                r.index,
                r.name,
                effect_name(r.effect),
                log(r.log)
            );
        }
        out
    }
}

fn effect_name(e: Effect) -> &'static str {
    match e {
        Effect::Allow => "allow",
        Effect::Refuse => "refuse",
    }
}

fn identity_text(kind: IdentityKind, value: u64) -> String {
    match kind {
        IdentityKind::Any => "any".to_owned(),
        IdentityKind::Uid => format!("uid {value}"),
        IdentityKind::Gid => format!("gid {value}"),
        IdentityKind::Cgroup { level } => format!("cgroup {value}@{level}"),
    }
}

fn port_text(group: &Group, m: &Member) -> String {
    match (group.ports, m.transport) {
        (_, Transport::Other) => "other".to_owned(),
        (PortMatch::Exact, t) => format!("{}/{}", t.name(), m.port),
        (
            PortMatch::Range {
                first: 0,
                last: u16::MAX,
            },
            t,
        ) => format!("{}/any", t.name()),
        (PortMatch::Range { first, last }, t) => format!("{}/{first}-{last}", t.name()),
    }
}

fn describe_key(group: &Group, m: &Member) -> String {
    format!(
        "{} {} {}",
        effect_name(group.effect),
        identity_text(group.identity, m.identity),
        port_text(group, m)
    )
}
