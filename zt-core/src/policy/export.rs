//! From a [`Policy`] back to a [`Config`]: how a policy is written out as YAML.
//!
//! Everything is written explicitly (settings included), so the file says exactly what the
//! policy does; reading it back yields an equal policy (a property test holds this). Every
//! struct is destructured naming each field, so a field added to the policy must be written
//! out here before zt compiles again.

use super::{
    AddressSet, AddressSetParts, Addresses, Direction, Identity, Policy, PortRangeParts, PortSet,
    Rule, RuleMatch, Settings,
};
use crate::Error;
use crate::config::{
    Config, FromConfig, OneOrMany, PortSpec, RuleConfig, SettingsConfig, Spanned, ToConfig,
};

fn bare<T>(v: T) -> Option<Spanned<T>> {
    Some(Spanned::bare(v))
}

fn hosts(peers: &AddressSet) -> Option<Spanned<OneOrMany<Spanned<String>>>> {
    if peers.is_any() {
        return None;
    }
    let AddressSetParts { v4, v6 } = peers.parts();
    let mut list: Vec<Spanned<String>> = Vec::new();
    match v4 {
        Addresses::All => list.push(Spanned::bare("0.0.0.0/0".into())),
        Addresses::Only(v) => list.extend(v.iter().map(|n| Spanned::bare(n.to_string()))),
    }
    match v6 {
        Addresses::All => list.push(Spanned::bare("::/0".into())),
        Addresses::Only(v) => list.extend(v.iter().map(|n| Spanned::bare(n.to_string()))),
    }
    bare(OneOrMany::Many(list))
}

fn port_list(ports: &PortSet) -> Option<Spanned<OneOrMany<Spanned<PortSpec>>>> {
    let specs = ports.ranges()?.iter().map(|x| {
        let PortRangeParts { first, last } = x.parts();
        Spanned::bare(if first == last {
            PortSpec::Single(i64::from(first))
        } else {
            PortSpec::Range(i64::from(first), i64::from(last))
        })
    });
    bare(OneOrMany::Many(specs.collect()))
}

pub(crate) fn rule_config(rule: &Rule) -> RuleConfig {
    let Rule {
        name,
        description,
        direction,
        matches,
        action,
        priority,
        log,
        // Where the rule was written is not part of what it does.
        provenance: _,
    } = rule;
    let RuleMatch {
        identity,
        peers,
        ports,
        protocol,
    } = matches;
    let mut from = FromConfig::default();
    match (identity, direction) {
        (Identity::Any, Direction::Egress) => from.user = bare("*".into()),
        (Identity::Any, Direction::Ingress) => from.hosts = hosts(peers),
        (
            Identity::User {
                uid: _,
                name: Some(n),
            },
            _,
        ) => from.user = bare(n.to_string()),
        (Identity::User { uid, name: None }, _) => from.uid = bare(i64::from(*uid)),
        (
            Identity::Group {
                gid: _,
                name: Some(n),
            },
            _,
        ) => from.group = bare(n.to_string()),
        (Identity::Group { gid, name: None }, _) => from.gid = bare(i64::from(*gid)),
        (Identity::Cgroup(p), _) => from.cgroup = bare(p.as_str().to_owned()),
    }
    let to = ToConfig {
        hosts: match direction {
            Direction::Egress => hosts(peers),
            Direction::Ingress => None,
        },
        ports: port_list(ports),
        protocol: bare(*protocol),
        ..ToConfig::default()
    };
    let from_empty = from == FromConfig::default();
    RuleConfig {
        name: bare(name.to_string()),
        description: description
            .as_ref()
            .map(|d| Spanned::bare(d.as_str().to_owned())),
        direction: bare(*direction),
        from: (!from_empty).then(|| Spanned::bare(from)),
        to: bare(to),
        action: bare(*action),
        priority: (*priority != 0).then(|| Spanned::bare(i64::from(*priority))),
        log: log.then(|| Spanned::bare(true)),
        ..RuleConfig::default()
    }
}

pub(crate) fn settings_config(settings: &Settings) -> SettingsConfig {
    let Settings {
        default_policy,
        log_blocked,
        log_prefix,
        log_rate,
        preserve_ssh,
        ssh_ports,
        preserve_established,
    } = settings;
    SettingsConfig {
        default_policy: bare(*default_policy),
        log_blocked: bare(*log_blocked),
        log_prefix: bare(log_prefix.as_str().to_owned()),
        log_rate: bare(log_rate.to_string()),
        preserve_ssh: bare(*preserve_ssh),
        ssh_ports: port_list(ssh_ports),
        preserve_established: bare(*preserve_established),
    }
}

impl Policy {
    /// The configuration that says what this policy does.
    pub fn to_config(&self) -> Config {
        let Policy {
            settings,
            rules,
            // Derived from the rules' priorities, which are written.
            in_file_order: _,
        } = self;
        Config {
            version: bare("1.0".into()),
            has_rules: true,
            settings: Some(settings_config(settings)),
            rules: rules.iter().map(rule_config).collect(),
            ..Config::default()
        }
    }

    /// The policy as a YAML configuration file.
    pub fn to_yaml(&self) -> Result<String, Error> {
        self.to_config().to_yaml()
    }
}
