//! Building a policy in code, through the same validation as a YAML file.
//!
//! The builder assembles a [`Config`] and validates it exactly as a file would be validated,
//! so a policy built in code and the same policy written as YAML are equal, and the builder
//! cannot produce anything a file could not.

use super::{Action, DefaultPolicy, Direction, Loaded, Protocol};
use crate::Error;
use crate::config::{
    Config, FromConfig, OneOrMany, PortSpec, RuleConfig, SettingsConfig, Spanned, ToConfig,
};
use crate::resolve::NameResolver;

/// Builds a [`crate::Policy`] in code.
///
/// ```
/// use zt_core::{Policy, RuleBuilder, StaticResolver, Protocol};
///
/// let resolver = StaticResolver::new().user("web-user", 1001);
/// let loaded = Policy::builder()
///     .log_prefix("ZT-BLOCKED: ")
///     .rule(
///         RuleBuilder::egress("web-to-redis")
///             .user("web-user")
///             .to_host("127.0.0.1")
///             .port(6379)
///             .protocol(Protocol::Tcp)
///             .allow(),
///     )
///     .build(&resolver)?;
/// assert_eq!(loaded.policy.rules().len(), 1);
/// # Ok::<(), zt_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct PolicyBuilder {
    config: Config,
}

impl Default for PolicyBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl PolicyBuilder {
    /// An empty policy with default settings.
    pub fn new() -> Self {
        Self {
            config: Config {
                version: Some(Spanned::bare("1.0".to_owned())),
                has_rules: true,
                ..Config::default()
            },
        }
    }

    fn settings(&mut self) -> &mut SettingsConfig {
        self.config
            .settings
            .get_or_insert_with(SettingsConfig::default)
    }

    /// The verdict for unmatched traffic.
    pub fn default_policy(mut self, policy: DefaultPolicy) -> Self {
        self.settings().default_policy = Some(Spanned::bare(policy));
        self
    }

    /// Whether fall-through denials are logged.
    pub fn log_blocked(mut self, on: bool) -> Self {
        self.settings().log_blocked = Some(Spanned::bare(on));
        self
    }

    /// The log prefix.
    pub fn log_prefix(mut self, prefix: &str) -> Self {
        self.settings().log_prefix = Some(Spanned::bare(prefix.to_owned()));
        self
    }

    /// The log rate, `N/second|minute|hour|day`.
    pub fn log_rate(mut self, rate: &str) -> Self {
        self.settings().log_rate = Some(Spanned::bare(rate.to_owned()));
        self
    }

    /// Whether inbound SSH is kept open before any rule.
    pub fn preserve_ssh(mut self, on: bool) -> Self {
        self.settings().preserve_ssh = Some(Spanned::bare(on));
        self
    }

    /// The SSH ports of the failsafe.
    pub fn ssh_ports(mut self, ports: impl IntoIterator<Item = u16>) -> Self {
        let list = ports
            .into_iter()
            .map(|p| Spanned::bare(PortSpec::Single(i64::from(p))))
            .collect();
        self.settings().ssh_ports = Some(Spanned::bare(OneOrMany::Many(list)));
        self
    }

    /// Whether established traffic is accepted before any rule.
    pub fn preserve_established(mut self, on: bool) -> Self {
        self.settings().preserve_established = Some(Spanned::bare(on));
        self
    }

    /// Add a rule after the ones already added.
    pub fn rule(mut self, rule: RuleBuilder) -> Self {
        self.config.rules.push(rule.rule);
        self
    }

    /// The configuration built so far (write it out with [`Config::to_yaml`]).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Validate and resolve: the same checks, errors and warnings as a YAML file gets.
    pub fn build(&self, resolver: &dyn NameResolver) -> Result<Loaded, Error> {
        super::validate::validate(&self.config, "<built in code>", resolver)
    }
}

/// Builds one rule for [`PolicyBuilder::rule`]. Nothing is checked until `build`.
#[derive(Clone, Debug)]
pub struct RuleBuilder {
    rule: RuleConfig,
}

impl RuleBuilder {
    fn new(name: &str, direction: Direction) -> Self {
        Self {
            rule: RuleConfig {
                name: Some(Spanned::bare(name.to_owned())),
                direction: Some(Spanned::bare(direction)),
                ..RuleConfig::default()
            },
        }
    }

    /// A rule on traffic local processes send.
    pub fn egress(name: &str) -> Self {
        Self::new(name, Direction::Egress)
    }

    /// A rule on traffic arriving for this host.
    pub fn ingress(name: &str) -> Self {
        Self::new(name, Direction::Ingress)
    }

    fn from(&mut self) -> &mut FromConfig {
        &mut self
            .rule
            .from
            .get_or_insert_with(|| Spanned::bare(FromConfig::default()))
            .value
    }

    fn to(&mut self) -> &mut ToConfig {
        &mut self
            .rule
            .to
            .get_or_insert_with(|| Spanned::bare(ToConfig::default()))
            .value
    }

    /// Free text for humans.
    pub fn description(mut self, text: &str) -> Self {
        self.rule.description = Some(Spanned::bare(text.to_owned()));
        self
    }

    /// Sender: a user name (resolved at build time).
    pub fn user(mut self, name: &str) -> Self {
        self.from().user = Some(Spanned::bare(name.to_owned()));
        self
    }

    /// Sender: anyone.
    pub fn any_user(self) -> Self {
        self.user("*")
    }

    /// Sender: a numeric uid.
    pub fn uid(mut self, uid: u32) -> Self {
        self.from().uid = Some(Spanned::bare(i64::from(uid)));
        self
    }

    /// Sender: a group name (primary group of the socket owner).
    pub fn group(mut self, name: &str) -> Self {
        self.from().group = Some(Spanned::bare(name.to_owned()));
        self
    }

    /// Sender: a numeric gid.
    pub fn gid(mut self, gid: u32) -> Self {
        self.from().gid = Some(Spanned::bare(i64::from(gid)));
        self
    }

    /// Sender: processes in a cgroup v2 directory or below it.
    pub fn cgroup(mut self, path: &str) -> Self {
        self.from().cgroup = Some(Spanned::bare(path.to_owned()));
        self
    }

    /// Ingress: add a source address or CIDR.
    pub fn from_host(mut self, host: &str) -> Self {
        push(&mut self.from().hosts, host.to_owned());
        self
    }

    /// Egress: add a destination address or CIDR.
    pub fn to_host(mut self, host: &str) -> Self {
        push(&mut self.to().hosts, host.to_owned());
        self
    }

    /// Add a port.
    pub fn port(mut self, port: u16) -> Self {
        push(&mut self.to().ports, PortSpec::Single(i64::from(port)));
        self
    }

    /// Add a port range.
    pub fn port_range(mut self, first: u16, last: u16) -> Self {
        push(
            &mut self.to().ports,
            PortSpec::Range(i64::from(first), i64::from(last)),
        );
        self
    }

    /// The protocol.
    pub fn protocol(mut self, protocol: Protocol) -> Self {
        self.to().protocol = Some(Spanned::bare(protocol));
        self
    }

    /// The action.
    pub fn action(mut self, action: Action) -> Self {
        self.rule.action = Some(Spanned::bare(action));
        self
    }

    /// Action `allow`.
    pub fn allow(self) -> Self {
        self.action(Action::Allow)
    }

    /// Action `deny`.
    pub fn deny(self) -> Self {
        self.action(Action::Deny)
    }

    /// Action `reject`.
    pub fn reject(self) -> Self {
        self.action(Action::Reject)
    }

    /// Ordering priority (lower first).
    pub fn priority(mut self, priority: i32) -> Self {
        self.rule.priority = Some(Spanned::bare(i64::from(priority)));
        self
    }

    /// Log what the rule decides.
    pub fn log(mut self, on: bool) -> Self {
        self.rule.log = Some(Spanned::bare(on));
        self
    }
}

fn push<T>(list: &mut Option<Spanned<OneOrMany<Spanned<T>>>>, item: T) {
    let item = Spanned::bare(item);
    match list {
        Some(Spanned {
            value: OneOrMany::Many(v),
            ..
        }) => v.push(item),
        Some(Spanned {
            value: OneOrMany::One(_),
            ..
        }) => {
            if let Some(Spanned {
                value: OneOrMany::One(first),
                ..
            }) = list.take()
            {
                *list = Some(Spanned::bare(OneOrMany::Many(vec![first, item])));
            }
        }
        None => *list = Some(Spanned::bare(OneOrMany::Many(vec![item]))),
    }
}
