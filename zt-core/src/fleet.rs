//! Policies for a fleet of hosts: where a policy applies ([`Scope`]) and how the policies that
//! apply to one host become its single effective policy ([`compose`]).
//!
//! A fleet store holds many policies. Each may say which hosts it is for (`selector:`, a map of
//! label to value, all of which must match) and where its rules go among the host's other
//! policies (`order:`, lower first, default [`DEFAULT_ORDER`]). Both keys are validated with
//! the rest of the file ([`crate::Policy::from_yaml`] reports them in
//! [`crate::Loaded::scope`]); only a fleet agent acts on them, and a single host's `zt apply`
//! ignores them.
//!
//! Composition is pure: the agent (zt-agent) reads the store and hands the validated policies
//! here. Rules are concatenated in (`order`, name) order, each policy's rules in its own
//! evaluation order, and renamed `<policy>/<rule>` so that counters, logs and drift reports
//! say where a rule came from; the first matching rule still decides. The settings must agree
//! where two policies write the same one, or the composition is refused as a [`Conflict`]
//! naming both: a host never enforces a setting one of its policies did not ask for.

use crate::config::text::printable;
use crate::config::{Config, SettingsConfig, Spanned};
use crate::diagnostic::{Code, Diagnostic, Diagnostics};
use crate::policy::{Loaded, RuleName, Settings};
use crate::{Error, yaml};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;

/// The `order` of a policy that gives none.
pub const DEFAULT_ORDER: i32 = 1000;

/// Longest label key or value.
pub const MAX_LABEL: usize = 63;

/// Which hosts a policy is for, and where its rules go among theirs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Scope {
    selector: BTreeMap<String, String>,
    order: i32,
    /// The file wrote `selector:` or `order:` (so `zt check` can say they matter only to the
    /// agent).
    #[serde(skip)]
    written: bool,
}

impl Default for Scope {
    fn default() -> Self {
        Scope {
            selector: BTreeMap::new(),
            order: DEFAULT_ORDER,
            written: false,
        }
    }
}

impl Scope {
    /// The labels a host must carry, with their values (empty: every host).
    pub fn selector(&self) -> &BTreeMap<String, String> {
        &self.selector
    }

    /// Where the policy's rules go: lower first.
    pub fn order(&self) -> i32 {
        self.order
    }

    /// Whether the file wrote `selector:` or `order:`.
    pub fn is_written(&self) -> bool {
        self.written
    }

    /// Whether a host labelled `labels` is selected: every label of the selector is among them
    /// with the same value.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.selector.iter().all(|(k, v)| labels.get(k) == Some(v))
    }

    /// The scope of a policy text alone, whatever the rest of it says. A fleet agent uses it
    /// for a policy that fails validation: when its selector reads and does not match the
    /// host, the policy is none of that host's business. `Err` holds the problems with the
    /// scope itself (or with the YAML).
    pub fn read(text: &str, source: &str) -> Result<Scope, Error> {
        let invalid = |d: Vec<Diagnostic>| Error::Invalid(Diagnostics::new(source, d));
        let root = yaml::read(text).map_err(|e| {
            invalid(vec![
                Diagnostic::error(Code::YamlSyntax, format!("not valid YAML: {}", e.message))
                    .at(e.position),
            ])
        })?;
        let mut diags = Vec::new();
        let config = crate::config::decode::decode(&root, &mut diags);
        diags.retain(|d| {
            d.field
                .as_deref()
                .is_some_and(|f| f.starts_with("selector") || f.starts_with("order"))
        });
        let scope = Scope::of(&config, &mut diags);
        if diags.iter().any(Diagnostic::is_error) {
            return Err(invalid(diags));
        }
        Ok(scope)
    }

    /// Validate a configuration's `selector:` and `order:`, reporting problems to `diags`.
    pub(crate) fn of(config: &Config, diags: &mut Vec<Diagnostic>) -> Scope {
        let mut scope = Scope {
            written: config.selector.is_some() || config.order.is_some(),
            ..Scope::default()
        };
        if let Some(selector) = &config.selector {
            for (k, v) in &selector.value {
                for (text, what) in [(k, "label"), (v, "label value")] {
                    if let Some(problem) = label_problem(&text.value) {
                        diags.push(
                            Diagnostic::error(
                                Code::InvalidLabel,
                                format!("{what} '{}' is not usable", printable(&text.value)),
                            )
                            .with_field(format!("selector.{}", printable(&k.value)))
                            .at(text.position)
                            .with_help(problem),
                        );
                    }
                }
                scope.selector.insert(k.value.clone(), v.value.clone());
            }
        }
        if let Some(order) = &config.order {
            match i32::try_from(order.value) {
                Ok(o) => scope.order = o,
                Err(_) => diags.push(
                    Diagnostic::error(
                        Code::OrderOutOfRange,
                        format!("order {} is out of range", order.value),
                    )
                    .with_field("order")
                    .at(order.position)
                    .with_help("order is a whole number from -2147483648 to 2147483647"),
                ),
            }
        }
        scope
    }
}

/// Why a label key or value cannot be used, if it cannot: labels travel into etcd keys'
/// JSON, command lines and status tables, so they keep to a plain alphabet.
pub fn label_problem(text: &str) -> Option<&'static str> {
    if text.is_empty() || text.len() > MAX_LABEL {
        Some("labels and their values are 1 to 63 characters")
    } else if !text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/'))
    {
        Some("labels and their values use letters, digits, '.', '_', '-' and '/'")
    } else {
        None
    }
}

/// Which settings a file wrote itself (the rest are defaults).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WrittenSettings {
    /// `default_policy`
    pub default_policy: bool,
    /// `log_blocked`
    pub log_blocked: bool,
    /// `log_prefix`
    pub log_prefix: bool,
    /// `log_rate`
    pub log_rate: bool,
    /// `preserve_ssh`
    pub preserve_ssh: bool,
    /// `ssh_ports`
    pub ssh_ports: bool,
    /// `preserve_established`
    pub preserve_established: bool,
}

impl WrittenSettings {
    /// The settings a configuration writes.
    pub(crate) fn of(config: &Config) -> Self {
        let Some(SettingsConfig {
            default_policy,
            log_blocked,
            log_prefix,
            log_rate,
            preserve_ssh,
            ssh_ports,
            preserve_established,
        }) = &config.settings
        else {
            return Self::default();
        };
        WrittenSettings {
            default_policy: default_policy.is_some(),
            log_blocked: log_blocked.is_some(),
            log_prefix: log_prefix.is_some(),
            log_rate: log_rate.is_some(),
            preserve_ssh: preserve_ssh.is_some(),
            ssh_ports: ssh_ports.is_some(),
            preserve_established: preserve_established.is_some(),
        }
    }
}

/// One policy of a host, validated, under the name the store knows it by.
#[derive(Clone, Copy, Debug)]
pub struct Part<'a> {
    /// The policy's name (its key in the store).
    pub name: &'a str,
    /// The validated policy, its scope and the settings it wrote.
    pub loaded: &'a Loaded,
}

/// Two policies of one host set the same setting differently.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// The setting (`settings.default_policy`).
    pub setting: &'static str,
    /// The first policy setting it (in composition order), and its value.
    pub first: (String, String),
    /// The other policy, and its value.
    pub second: (String, String),
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "policies '{}' and '{}' disagree on {}: {} in '{}', {} in '{}'",
            self.first.0,
            self.second.0,
            self.setting,
            self.first.1,
            self.first.0,
            self.second.1,
            self.second.0
        )
    }
}

/// Why policies cannot be composed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ComposeError {
    /// Two policies disagree on a setting.
    #[error("conflict: {0}")]
    Conflict(Conflict),
    /// A rule's name and its policy's are too long together.
    #[error("policy '{policy}', rule '{rule}': {problem}")]
    RuleName {
        /// The policy.
        policy: String,
        /// The rule, as the policy names it.
        rule: String,
        /// Why.
        problem: &'static str,
    },
    /// A policy's name cannot prefix its rules' names.
    #[error("policy name '{name}' is not usable: {problem}")]
    Name {
        /// The name.
        name: String,
        /// Why.
        problem: &'static str,
    },
}

/// Why a policy name cannot be used, if it cannot: it prefixes the names of its rules
/// (`<policy>/<rule>`), which travel into every backend, so it keeps to a rule name's
/// alphabet and length.
pub fn policy_name_problem(name: &str) -> Option<&'static str> {
    if name.contains('/') {
        return Some("a policy name cannot contain '/' (it separates policy and rule names)");
    }
    RuleName::new(name)
        .err()
        .map(|_| "a policy name is 1 to 63 letters, digits, '.', '_' and '-', starting with a letter or digit")
}

/// The effective policy of a host whose policies are `parts`: rules concatenated in
/// (`order`, name) order and renamed `<policy>/<rule>`, settings merged where they agree.
/// The result is a configuration to write out ([`Config::to_yaml`]) and load like any file.
pub fn compose(parts: &[Part<'_>]) -> Result<Config, ComposeError> {
    let mut sorted: Vec<&Part<'_>> = parts.iter().collect();
    sorted.sort_by(|a, b| (a.loaded.scope.order(), a.name).cmp(&(b.loaded.scope.order(), b.name)));
    let mut config = Config {
        version: Some(Spanned::bare("1.0".to_owned())),
        has_rules: true,
        ..Config::default()
    };
    for part in &sorted {
        if let Some(problem) = policy_name_problem(part.name) {
            return Err(ComposeError::Name {
                name: part.name.to_owned(),
                problem,
            });
        }
        let policy = &part.loaded.policy;
        for i in crate::policy::shadow::Order::of(policy).iter() {
            let mut rule = crate::policy::export::rule_config(&policy.rules()[i]);
            if let Some(n) = &mut rule.name {
                let qualified = format!("{}/{}", part.name, n.value);
                if let Err(problem) = RuleName::new(&qualified) {
                    return Err(ComposeError::RuleName {
                        policy: part.name.to_owned(),
                        rule: n.value.clone(),
                        problem,
                    });
                }
                *n = Spanned::bare(qualified);
            }
            // The concatenation is the order now: priorities ordered rules within their policy.
            rule.priority = None;
            config.rules.push(rule);
        }
    }
    config.settings = merge_settings(&sorted)?;
    Ok(config)
}

/// The settings the policies wrote, each agreed on by every policy that wrote it.
fn merge_settings(parts: &[&Part<'_>]) -> Result<Option<SettingsConfig>, ComposeError> {
    let mut merged = SettingsConfig::default();
    let mut any = false;
    let mut agreed = Agreed::default();
    for part in parts {
        let settings: &Settings = part.loaded.policy.settings();
        // Both taken apart in full: a setting added to either does not compile until it is
        // merged here.
        let SettingsConfig {
            default_policy,
            log_blocked,
            log_prefix,
            log_rate,
            preserve_ssh,
            ssh_ports,
            preserve_established,
        } = crate::policy::export::settings_config(settings);
        let w = part.loaded.written;
        let WrittenSettings {
            default_policy: w_default_policy,
            log_blocked: w_log_blocked,
            log_prefix: w_log_prefix,
            log_rate: w_log_rate,
            preserve_ssh: w_preserve_ssh,
            ssh_ports: w_ssh_ports,
            preserve_established: w_preserve_established,
        } = w;
        let m = &mut merged;
        agreed.take(
            part.name,
            "settings.default_policy",
            w_default_policy,
            default_policy,
            &mut m.default_policy,
        )?;
        agreed.take(
            part.name,
            "settings.log_blocked",
            w_log_blocked,
            log_blocked,
            &mut m.log_blocked,
        )?;
        agreed.take(
            part.name,
            "settings.log_prefix",
            w_log_prefix,
            log_prefix,
            &mut m.log_prefix,
        )?;
        agreed.take(
            part.name,
            "settings.log_rate",
            w_log_rate,
            log_rate,
            &mut m.log_rate,
        )?;
        agreed.take(
            part.name,
            "settings.preserve_ssh",
            w_preserve_ssh,
            preserve_ssh,
            &mut m.preserve_ssh,
        )?;
        agreed.take(
            part.name,
            "settings.ssh_ports",
            w_ssh_ports,
            ssh_ports,
            &mut m.ssh_ports,
        )?;
        agreed.take(
            part.name,
            "settings.preserve_established",
            w_preserve_established,
            preserve_established,
            &mut m.preserve_established,
        )?;
        any |= w != WrittenSettings::default();
    }
    Ok(any.then_some(merged))
}

/// The first policy to write each setting, and the value it wrote, in words.
#[derive(Default)]
struct Agreed<'a> {
    first: BTreeMap<&'static str, (&'a str, String)>,
}

impl<'a> Agreed<'a> {
    /// Policy `policy` wrote `key` (if `written`) as `value`: the first to write it sets
    /// `slot`; a later one must write the same value.
    fn take<T: Serialize>(
        &mut self,
        policy: &'a str,
        key: &'static str,
        written: bool,
        value: Option<Spanned<T>>,
        slot: &mut Option<Spanned<T>>,
    ) -> Result<(), ComposeError> {
        if !written {
            return Ok(());
        }
        let text = words(&value);
        match self.first.get(key) {
            Some((name, v)) if *v != text => Err(ComposeError::Conflict(Conflict {
                setting: key,
                first: ((*name).to_owned(), v.clone()),
                second: (policy.to_owned(), text),
            })),
            Some(_) => Ok(()),
            None => {
                self.first.insert(key, (policy, text));
                *slot = value;
                Ok(())
            }
        }
    }
}

/// A setting's value as YAML would write it, for comparing and for the conflict message.
fn words<T: Serialize>(value: &Option<Spanned<T>>) -> String {
    match value {
        Some(v) => serde_saphyr::to_string(&v.value)
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|e| format!("(unwritable: {e})")),
        None => "unset".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Policy, StaticResolver};

    fn load(text: &str) -> Loaded {
        Policy::from_yaml(text, "t", &StaticResolver::new()).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn rule_names_may_carry_one_policy_prefix() {
        assert!(RuleName::new("web/allow-redis").is_ok());
        for bad in [
            "/x",
            "x/",
            "a/b/c",
            "-a/b",
            "a/.b",
            &format!("{}/b", "a".repeat(64)),
        ] {
            assert!(RuleName::new(bad).is_err(), "{bad}");
        }
        assert!(RuleName::new(&format!("{}/{}", "a".repeat(62), "b".repeat(62))).is_ok());
        assert!(RuleName::new(&format!("{}/{}", "a".repeat(63), "b".repeat(62))).is_err());
    }

    #[test]
    fn scope_is_read_and_matched_even_when_the_rules_are_invalid() {
        let text =
            "version: \"1.0\"\nselector: {role: db, tier: 1}\norder: 5\nrules: [{name: x}]\n";
        assert!(Policy::from_yaml(text, "t", &StaticResolver::new()).is_err());
        let scope = Scope::read(text, "t").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(scope.order(), 5);
        let mut labels = BTreeMap::new();
        labels.insert("role".to_owned(), "db".to_owned());
        assert!(!scope.matches(&labels));
        labels.insert("tier".to_owned(), "1".to_owned());
        assert!(scope.matches(&labels));
        let bad = Scope::read("version: \"1.0\"\nselector: [a]\nrules: []\n", "t");
        assert!(bad.is_err());
    }

    #[test]
    fn a_policy_without_scope_is_for_every_host_at_the_default_order() {
        let l = load("version: \"1.0\"\nrules: []\n");
        assert_eq!(l.scope.order(), DEFAULT_ORDER);
        assert!(!l.scope.is_written());
        assert!(l.scope.matches(&BTreeMap::new()));
    }

    #[test]
    fn composition_keeps_each_policys_evaluation_order_and_agreeing_settings() {
        // `b` orders its own rules by priority; `a` comes first by order despite its name.
        let a = load(
            "version: \"1.0\"\norder: 1\nsettings: {preserve_ssh: true}\nrules:\n  - {name: one, from: {uid: 1}, to: {port: 1}, action: allow}\n",
        );
        let b = load(
            "version: \"1.0\"\nsettings: {preserve_ssh: true}\nrules:\n  - {name: late, priority: 9, from: {uid: 2}, to: {port: 2}, action: deny}\n  - {name: early, priority: -9, from: {uid: 3}, to: {port: 3}, action: allow}\n",
        );
        let config = compose(&[
            Part {
                name: "b",
                loaded: &b,
            },
            Part {
                name: "z",
                loaded: &a,
            },
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        let yaml = config.to_yaml().unwrap_or_else(|e| panic!("{e}"));
        let composed = load(&yaml);
        let names: Vec<&str> = composed
            .policy
            .rules()
            .iter()
            .map(|r| r.name().as_str())
            .collect();
        assert_eq!(names, ["z/one", "b/early", "b/late"]);
        assert!(composed.policy.settings().preserve_ssh());
    }

    #[test]
    fn settings_conflict_names_both_policies() {
        let a = load("version: \"1.0\"\nsettings: {ssh_ports: [22]}\nrules: []\n");
        let b = load("version: \"1.0\"\nsettings: {ssh_ports: [2222]}\nrules: []\n");
        let e = compose(&[
            Part {
                name: "a",
                loaded: &a,
            },
            Part {
                name: "b",
                loaded: &b,
            },
        ]);
        match e {
            Err(ComposeError::Conflict(c)) => {
                assert_eq!(c.setting, "settings.ssh_ports");
                assert_eq!((c.first.0.as_str(), c.second.0.as_str()), ("a", "b"));
            }
            other => panic!("{other:?}"),
        }
    }
}
