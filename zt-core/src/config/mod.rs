//! The configuration as written: the YAML format's shape, every value with its position.
//!
//! A [`Config`] is what the file *says*, before anything is checked against the host or against
//! the rules of the format: names are unresolved, ports are unchecked numbers, addresses are
//! text. [`crate::policy`] turns it into a [`crate::Policy`] or a list of problems. A `Config`
//! also serializes back to YAML (through `serde-saphyr`), which is how a policy built in code
//! is written out as a file.

pub(crate) mod decode;
mod keys;
pub(crate) mod text;
mod words;

use crate::policy::{Action, DefaultPolicy, Direction, Protocol};
use crate::source::Position;
use serde::{Serialize, Serializer};

/// A value and where it was written (`None` for values that did not come from a file).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spanned<T> {
    /// The value.
    pub value: T,
    /// Its position in the file.
    pub position: Option<Position>,
}

impl<T> Spanned<T> {
    /// A value read at `position`.
    pub fn new(value: T, position: Option<Position>) -> Self {
        Self { value, position }
    }

    /// A value that was not read from a file (built in code).
    pub fn bare(value: T) -> Self {
        Self {
            value,
            position: None,
        }
    }
}

impl<T: Serialize> Serialize for Spanned<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(serializer)
    }
}

/// A field that takes one value or a list of them (`port: 22` or `ports: [22, "8000-8100"]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum OneOrMany<T> {
    /// A single value.
    One(T),
    /// A list.
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    /// The values, one or many.
    pub fn as_slice(&self) -> &[T] {
        match self {
            OneOrMany::One(v) => std::slice::from_ref(v),
            OneOrMany::Many(v) => v,
        }
    }
}

/// A port or a port range as written, before bounds are checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortSpec {
    /// `6379`
    Single(i64),
    /// `"8000-8100"`
    Range(i64, i64),
}

impl Serialize for PortSpec {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match *self {
            PortSpec::Single(p) => serializer.serialize_i64(p),
            PortSpec::Range(a, b) => serializer.serialize_str(&format!("{a}-{b}")),
        }
    }
}

/// A whole configuration file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Config {
    /// Top-level fields present but undecodable (already reported).
    #[serde(skip)]
    pub(crate) undecodable: Vec<&'static str>,
    /// Whether the file had a `rules:` key (a policy with no rules says `rules: []`).
    #[serde(skip)]
    pub(crate) has_rules: bool,
    /// Format version; `"1.0"` is the one zt reads.
    pub version: Option<Spanned<String>>,
    /// Global settings; every one has a default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settings: Option<SettingsConfig>,
    /// The rules in file order.
    pub rules: Vec<RuleConfig>,
    /// Fleet only (zt-agent): the labels a host must carry, all of them, for this policy to
    /// apply to it. A single host's `zt apply` ignores it.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_selector"
    )]
    pub selector: Option<Spanned<Selector>>,
    /// Fleet only (zt-agent): where this policy's rules go among the host's other policies
    /// (lower first, default 1000). A single host's `zt apply` ignores it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order: Option<Spanned<i64>>,
}

/// A fleet selector as written: label and value pairs, in file order.
pub type Selector = Vec<(Spanned<String>, Spanned<String>)>;

/// A selector written as the mapping it was read from.
fn serialize_selector<S: Serializer>(
    selector: &Option<Spanned<Selector>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let pairs = selector.as_ref().map_or(&[][..], |s| &s.value[..]);
    let mut map = serializer.serialize_map(Some(pairs.len()))?;
    for (k, v) in pairs {
        map.serialize_entry(&k.value, &v.value)?;
    }
    map.end()
}

/// The `settings:` mapping.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SettingsConfig {
    /// `deny` (default) or `allow`: the verdict for traffic no rule matches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_policy: Option<Spanned<DefaultPolicy>>,
    /// Log traffic that falls through to the default deny (default true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_blocked: Option<Spanned<bool>>,
    /// Prefix of log lines (default `"ZT-BLOCKED: "`, at most 29 characters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_prefix: Option<Spanned<String>>,
    /// Log rate limit, `N/second|minute|hour|day` (default `"10/second"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_rate: Option<Spanned<String>>,
    /// Keep inbound SSH open whatever the rules say (default true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preserve_ssh: Option<Spanned<bool>>,
    /// The SSH ports the failsafe keeps open (default `[22]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ssh_ports: Option<Spanned<OneOrMany<Spanned<PortSpec>>>>,
    /// Accept established and related traffic before any rule (default true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preserve_established: Option<Spanned<bool>>,
}

/// One entry of `rules:`.
///
/// Its text is `S`: owned `String`s in a [`Config`], or `&str` borrowed from the YAML when a
/// file's rules are decoded one at a time and validated straight away (so a 10 000-rule file
/// copies none of its rule text before validation).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RuleConfig<S = String> {
    /// Where the rule's mapping starts.
    #[serde(skip)]
    pub position: Option<Position>,
    /// Fields that were present but could not be decoded (already reported), so validation
    /// does not report them again as missing.
    #[serde(skip)]
    pub(crate) undecodable: Vec<&'static str>,
    /// Unique name; carried into every kernel object the rule becomes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<Spanned<S>>,
    /// Free text for humans.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<Spanned<S>>,
    /// `egress` (default) or `ingress`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direction: Option<Spanned<Direction>>,
    /// Who: the sending identity (egress) or the source addresses (ingress).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<Spanned<FromConfig<S>>>,
    /// Where: destination addresses (egress), ports and protocol.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<Spanned<ToConfig<S>>>,
    /// `allow`, `deny` or `reject`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<Spanned<Action>>,
    /// Lower first; ties keep file order (default 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<Spanned<i64>>,
    /// Log every packet this rule decides (rate-limited like the fall-through log).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<Spanned<bool>>,
}

/// The `from:` mapping of a rule (text as in [`RuleConfig`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FromConfig<S = String> {
    /// Selectors present but undecodable (already reported).
    #[serde(skip)]
    pub(crate) undecodable: Vec<&'static str>,
    /// A user name, or `"*"` for any sender.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<Spanned<S>>,
    /// A numeric uid (needs no passwd entry).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<Spanned<i64>>,
    /// A group name (matched against the socket owner's primary group).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<Spanned<S>>,
    /// A numeric gid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gid: Option<Spanned<i64>>,
    /// A cgroup v2 path such as `system.slice/nginx.service` (matches it and its descendants).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<Spanned<S>>,
    /// Ingress: one source address or CIDR.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<Spanned<S>>,
    /// Ingress: source addresses or CIDRs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hosts: Option<Spanned<OneOrMany<Spanned<S>>>>,
}

/// The `to:` mapping of a rule (text as in [`RuleConfig`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ToConfig<S = String> {
    /// Egress: one destination address or CIDR.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<Spanned<S>>,
    /// Egress: destination addresses or CIDRs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hosts: Option<Spanned<OneOrMany<Spanned<S>>>>,
    /// A port, a range, or a list of both.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<Spanned<OneOrMany<Spanned<PortSpec>>>>,
    /// Same as `port`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ports: Option<Spanned<OneOrMany<Spanned<PortSpec>>>>,
    /// `tcp`, `udp`, `both`, `icmp` or `any` (default `tcp` with ports, `any` without).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Spanned<Protocol>>,
}

impl Config {
    /// Write the configuration as YAML (positions are not written).
    pub fn to_yaml(&self) -> Result<String, crate::Error> {
        serde_saphyr::to_string(self).map_err(|e| crate::Error::Serialize(e.to_string()))
    }
}
