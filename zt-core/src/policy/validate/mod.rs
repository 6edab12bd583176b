//! From a [`Config`] to a [`Policy`]: every check, every name resolved, all problems at once.
//!
//! Rules are validated one at a time as they are decoded ([`RuleStream`]); what needs every
//! rule (duplicate names, the settings, the warnings on the whole policy) comes after.
//! Validation reads each configuration struct through a full destructuring, never `..`: a key
//! added to the format does not compile until it is validated.

mod address;
mod ports;
mod rule;
mod settings;
#[cfg(test)]
mod tests;
mod warnings;

use super::parallel;
use super::shadow;
use super::unique::FirstUse;
use super::{Loaded, Policy, Rule, RuleName};
use crate::Error;
use crate::config::decode;
use crate::config::{Config, RuleConfig};
use crate::diagnostic::{Code, Diagnostic, Diagnostics};
use crate::resolve::NameResolver;
use crate::source::Position;
use crate::yaml::{self, YamlErrorKind};
use foldhash::HashMap;
use std::sync::Arc;

/// Parse, decode and validate a YAML text.
///
/// Rules are streamed: each item of `rules:` is decoded and validated as soon as it is read,
/// and its YAML nodes and `RuleConfig` are dropped before the next one is read. A large text
/// is read on a second thread (see [`parallel`]).
pub(crate) fn load_str(
    text: &str,
    source: &str,
    resolver: &dyn NameResolver,
) -> Result<Loaded, Error> {
    load(text, source, resolver, parallel::worthwhile(text))
}

/// [`load_str`], reading on a second thread when `in_parallel`.
fn load(
    text: &str,
    source: &str,
    resolver: &dyn NameResolver,
    in_parallel: bool,
) -> Result<Loaded, Error> {
    // Rules are rarely shorter than 100 bytes of YAML: room for that many means the lists and
    // maps that grow with the rules are not copied over and over while a large file loads.
    let mut rules = RuleStream::new(resolver, text.len() / 100);
    let parallel = if in_parallel {
        parallel::read(text, &mut rules)
    } else {
        None
    };
    let read = match parallel {
        Some(Some(root)) => Ok(root),
        Some(None) => yaml::read_full_streaming(text, Some("rules"), &mut rules),
        None => yaml::read_streaming(text, Some("rules"), &mut rules),
    };
    match read {
        Ok(root) => {
            let config = decode::decode(&root, &mut rules.v.diags);
            rules.finish(&config, source)
        }
        Err(e) => {
            let (code, message) = match e.kind {
                YamlErrorKind::TooLarge => (Code::TooLarge, e.message),
                YamlErrorKind::Empty => (Code::Empty, e.message),
                YamlErrorKind::Syntax => {
                    (Code::YamlSyntax, format!("not valid YAML: {}", e.message))
                }
            };
            let d = Diagnostic::error(code, message).at(e.position);
            Err(Error::Invalid(Diagnostics::new(source, vec![d])))
        }
    }
}

/// The error for a file that is not UTF-8, positioned at the first bad byte.
pub(crate) fn not_utf8(source: &str, e: &std::string::FromUtf8Error) -> Error {
    let bytes = e.as_bytes();
    let at = e.utf8_error().valid_up_to();
    let before = &bytes[..at];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    let d = Diagnostic::error(
        Code::YamlSyntax,
        format!("the file is not valid UTF-8 (byte {at})"),
    )
    .at(Some(Position::new(clamp(line), clamp(column))))
    .with_help("zt configurations are UTF-8 text");
    Error::Invalid(Diagnostics::new(source, vec![d]))
}

/// Validate a configuration built in code.
pub(crate) fn validate(
    config: &Config,
    source: &str,
    resolver: &dyn NameResolver,
) -> Result<Loaded, Error> {
    let mut rules = RuleStream::new(resolver, config.rules.len());
    for rc in &config.rules {
        rules.push(rc);
    }
    rules.finish(config, source)
}

/// Validates rules one at a time, as they are decoded, keeping only the resolved rules.
pub(crate) struct RuleStream<'r> {
    v: Validator<'r>,
    rules: Vec<Rule>,
    /// What the shadow search needs of each rule, noted as it is validated.
    gather: shadow::Gather,
    /// Every valid rule name so far, with the line it was first written on.
    first: FirstUse,
    /// Names used again, with the line they were first written on and where again, in file
    /// order.
    again: Vec<(RuleName, Option<u32>, Option<Position>)>,
    /// The priority of the last valid rule, and whether none so far was lower than the one
    /// before it.
    last_priority: i32,
    in_file_order: bool,
    count: usize,
    failed: bool,
}

impl<'r> RuleStream<'r> {
    /// A stream expecting about `rules` rules.
    fn new(resolver: &'r dyn NameResolver, rules: usize) -> Self {
        Self {
            v: Validator {
                resolver,
                names: Names::default(),
                diags: Vec::new(),
                rule: None,
                index: None,
            },
            rules: Vec::with_capacity(rules),
            gather: shadow::Gather::with_capacity(rules),
            first: FirstUse::with_capacity(rules),
            again: Vec::new(),
            last_priority: i32::MIN,
            in_file_order: true,
            count: 0,
            failed: false,
        }
    }

    /// Validate the next rule.
    fn push<S: Text>(&mut self, rc: &RuleConfig<S>) {
        let index = self.count;
        self.count += 1;
        let position = rc.name.as_ref().and_then(|n| n.position);
        let line = position.map(|p| p.line);
        match self.v.rule(index, rc) {
            Some(rule) => {
                self.in_file_order &= rule.priority >= self.last_priority;
                self.last_priority = rule.priority;
                self.gather.add(&rule);
                self.rules.push(rule);
                if let Some(first_line) = self.first.rule(&self.rules, line)
                    && let Some(rule) = self.rules.last()
                {
                    self.again.push((rule.name.clone(), first_line, position));
                }
            }
            None => {
                self.failed = true;
                // Every valid name takes part in duplicate detection, even in a rule that fails.
                if let Some(name) = rc.name.as_ref().and_then(|n| RuleName::new(&n.value).ok())
                    && let Some(first_line) = self.first.failed(&self.rules, name.clone(), line)
                {
                    self.again.push((name, first_line, position));
                }
            }
        }
    }

    /// Report every rule whose name an earlier rule already uses.
    fn duplicates(&mut self) {
        for (name, first_at, at) in std::mem::take(&mut self.again) {
            self.failed = true;
            let first_line =
                first_at.map_or(String::new(), |line| format!(" (first at line {line})"));
            self.v.error_in(
                Some(name.clone()),
                problem(
                    Code::DuplicateName,
                    format!("the name '{name}' is used twice{first_line}"),
                    "names identify rules in counters, logs and drift reports: make each unique",
                ),
                "name",
                at,
            );
        }
    }

    /// Validate the rest of the configuration and assemble the policy.
    fn finish(mut self, config: &Config, source: &str) -> Result<Loaded, Error> {
        self.duplicates();
        let settings = self.v.top(config);
        let scope = crate::fleet::Scope::of(config, &mut self.v.diags);
        let policy = match settings {
            Some(settings) if !self.failed => {
                // The policy keeps its rules: no room for rules that did not come.
                self.rules.shrink_to_fit();
                let policy = Policy {
                    settings,
                    rules: Arc::new(self.rules),
                    in_file_order: self.in_file_order,
                };
                self.v.warnings(&policy, config, self.gather);
                Some(policy)
            }
            _ => None,
        };
        let diagnostics = Diagnostics::new(source, self.v.diags);
        match policy {
            Some(policy) if !diagnostics.has_errors() => Ok(Loaded {
                policy,
                warnings: diagnostics,
                scope,
                written: crate::fleet::WrittenSettings::of(config),
            }),
            // Every path to `None` reported an error.
            _ => Err(Error::Invalid(diagnostics)),
        }
    }
}

impl<'a> yaml::ItemSink<'a> for RuleStream<'_> {
    fn item(&mut self, node: &yaml::Node<'a>) {
        let mut rc = RuleConfig::default();
        decode::decode_rule(self.count, node, &mut self.v.diags, &mut rc);
        self.push(&rc);
    }

    fn reset(&mut self) {
        self.v.diags.clear();
        self.rules.clear();
        self.gather = shadow::Gather::default();
        self.first.clear();
        self.again.clear();
        self.last_priority = i32::MIN;
        self.in_file_order = true;
        self.count = 0;
        self.failed = false;
    }
}

/// The users and groups this load has looked up, each name kept once: a policy names a
/// few accounts in many rules, and every rule naming one shares its name. Each name is asked of
/// the resolver once per load (a system lookup goes through NSS), so every rule of a policy
/// sees the same answer.
#[derive(Default)]
struct Names {
    users: HashMap<Arc<str>, Option<u32>>,
    groups: HashMap<Arc<str>, Option<u32>>,
}

impl Names {
    fn user(&mut self, resolver: &dyn NameResolver, name: &str) -> Option<(u32, Arc<str>)> {
        Self::lookup(&mut self.users, name, |n| resolver.uid(n))
    }

    fn group(&mut self, resolver: &dyn NameResolver, name: &str) -> Option<(u32, Arc<str>)> {
        Self::lookup(&mut self.groups, name, |n| resolver.gid(n))
    }

    fn lookup(
        known: &mut HashMap<Arc<str>, Option<u32>>,
        name: &str,
        resolve: impl FnOnce(&str) -> Option<u32>,
    ) -> Option<(u32, Arc<str>)> {
        if let Some((shared, id)) = known.get_key_value(name) {
            return id.map(|id| (id, Arc::clone(shared)));
        }
        let id = resolve(name);
        let shared: Arc<str> = Arc::from(name);
        known.insert(Arc::clone(&shared), id);
        id.map(|id| (id, shared))
    }
}

struct Validator<'r> {
    resolver: &'r dyn NameResolver,
    names: Names,
    diags: Vec<Diagnostic>,
    /// Name of the rule being validated, when it has a valid one.
    rule: Option<RuleName>,
    /// Its index, for a rule without a valid name (fields read `rules[3].to.port`).
    index: Option<usize>,
}

/// The text of a rule's configuration: owned (a [`Config`] built in code) or borrowed from
/// the YAML (a file's rules, validated as they are decoded).
trait Text: std::ops::Deref<Target = str> + Clone + Default {}

impl<T: std::ops::Deref<Target = str> + Clone + Default> Text for T {}

/// A problem found while validating one value: code, message, help.
type Problem = (Code, String, String);

fn problem(code: Code, message: impl Into<String>, help: impl Into<String>) -> Problem {
    (code, message.into(), help.into())
}

impl Validator<'_> {
    fn push(&mut self, d: Diagnostic, field: &str) {
        let d = d.with_rule(self.rule.as_ref().map(RuleName::as_str));
        let d = match (field.is_empty(), &self.rule, self.index) {
            (true, _, _) => d,
            (false, None, Some(i)) => d.with_field(format!("rules[{i}].{field}")),
            (false, _, _) => d.with_field(field),
        };
        self.diags.push(d);
    }

    /// An error about rule `rule`, outside that rule's own validation.
    fn error_in(&mut self, rule: Option<RuleName>, p: Problem, field: &str, at: Option<Position>) {
        self.rule = rule;
        self.index = None;
        self.error(p, field, at);
        self.rule = None;
    }

    fn error(&mut self, (code, message, help): Problem, field: &str, at: Option<Position>) {
        self.push(
            Diagnostic::error(code, message).at(at).with_help(help),
            field,
        );
    }

    fn warn(&mut self, (code, message, help): Problem, field: &str, at: Option<Position>) {
        self.push(
            Diagnostic::warning(code, message).at(at).with_help(help),
            field,
        );
    }
}
