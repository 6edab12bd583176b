//! From a [`Policy`] back to a [`Config`]: how a policy is written out as YAML.
//!
//! Everything is written explicitly (settings included), so the file says exactly what the
//! policy does; reading it back yields an equal policy (a property test holds this).

use super::{Addresses, Direction, Identity, Policy, PortSet, Rule};
use crate::Error;
use crate::config::{
    Config, FromConfig, OneOrMany, PortSpec, RuleConfig, SettingsConfig, Spanned, ToConfig,
};

fn bare<T>(v: T) -> Option<Spanned<T>> {
    Some(Spanned::bare(v))
}

fn hosts(rule: &Rule) -> Option<Spanned<OneOrMany<Spanned<String>>>> {
    let peers = rule.peers();
    if peers.is_any() {
        return None;
    }
    let mut list: Vec<Spanned<String>> = Vec::new();
    match peers.v4() {
        Addresses::All => list.push(Spanned::bare("0.0.0.0/0".into())),
        Addresses::Only(v) => list.extend(v.iter().map(|n| Spanned::bare(n.to_string()))),
    }
    match peers.v6() {
        Addresses::All => list.push(Spanned::bare("::/0".into())),
        Addresses::Only(v) => list.extend(v.iter().map(|n| Spanned::bare(n.to_string()))),
    }
    bare(OneOrMany::Many(list))
}

fn port_list(ports: &PortSet) -> Option<Spanned<OneOrMany<Spanned<PortSpec>>>> {
    let specs = ports.ranges()?.iter().map(|x| {
        Spanned::bare(if x.is_single() {
            PortSpec::Single(i64::from(x.first()))
        } else {
            PortSpec::Range(i64::from(x.first()), i64::from(x.last()))
        })
    });
    bare(OneOrMany::Many(specs.collect()))
}

fn rule_config(rule: &Rule) -> RuleConfig {
    let mut from = FromConfig::default();
    match (rule.identity(), rule.direction) {
        (Identity::Any, Direction::Egress) => from.user = bare("*".into()),
        (Identity::Any, Direction::Ingress) => from.hosts = hosts(rule),
        (Identity::User { name: Some(n), .. }, _) => from.user = bare(n.to_string()),
        (Identity::User { uid, name: None }, _) => from.uid = bare(i64::from(*uid)),
        (Identity::Group { name: Some(n), .. }, _) => from.group = bare(n.to_string()),
        (Identity::Group { gid, name: None }, _) => from.gid = bare(i64::from(*gid)),
        (Identity::Cgroup(p), _) => from.cgroup = bare(p.as_str().to_owned()),
    }
    let to = ToConfig {
        hosts: match rule.direction {
            Direction::Egress => hosts(rule),
            Direction::Ingress => None,
        },
        ports: port_list(rule.ports()),
        protocol: bare(rule.protocol()),
        ..ToConfig::default()
    };
    let from_empty = from == FromConfig::default();
    RuleConfig {
        name: bare(rule.name.to_string()),
        description: rule.description().map(|d| Spanned::bare(d.to_owned())),
        direction: bare(rule.direction),
        from: (!from_empty).then(|| Spanned::bare(from)),
        to: bare(to),
        action: bare(rule.action),
        priority: (rule.priority != 0).then(|| Spanned::bare(i64::from(rule.priority))),
        log: rule.log.then(|| Spanned::bare(true)),
        ..RuleConfig::default()
    }
}

impl Policy {
    /// The configuration that says what this policy does.
    pub fn to_config(&self) -> Config {
        let s = &self.settings;
        Config {
            version: bare("1.0".into()),
            has_rules: true,
            settings: Some(SettingsConfig {
                default_policy: bare(s.default_policy),
                log_blocked: bare(s.log_blocked),
                log_prefix: bare(s.log_prefix.as_str().to_owned()),
                log_rate: bare(s.log_rate.to_string()),
                preserve_ssh: bare(s.preserve_ssh),
                ssh_ports: port_list(&s.ssh_ports),
                preserve_established: bare(s.preserve_established),
            }),
            rules: self.rules.iter().map(rule_config).collect(),
            ..Config::default()
        }
    }

    /// The policy as a YAML configuration file.
    pub fn to_yaml(&self) -> Result<String, Error> {
        self.to_config().to_yaml()
    }
}
