//! From a YAML node tree to a [`Config`], reporting every structural problem on the way.
//!
//! This is the one decoder: whichever reader read the file, its nodes come here, and the keys
//! each mapping may have come from [`super::keys`]. Decoding never stops early: a bad field is
//! reported, left out, and noted as undecodable so validation does not report it a second
//! time as missing. Unknown keys are errors, with the nearest known key suggested — a typo
//! such as `protcol:` must never silently widen a rule.

mod rule;

use super::keys::{Keys, SETTINGS_KEYS, TOP_KEYS};
use super::text::{is_null, parse_int, parse_port_spec, printable};
use super::words::{DEFAULT_POLICIES, SYNONYMS, suggest};
use super::{Config, OneOrMany, PortSpec, RuleConfig, Selector, SettingsConfig, Spanned};
use crate::diagnostic::{Code, Diagnostic};
use crate::source::Position;
use crate::yaml::{Node, Value};

/// Decode the root of a configuration document.
pub(crate) fn decode(root: &Node<'_>, diags: &mut Vec<Diagnostic>) -> Config {
    let mut d = Decoder {
        diags,
        rule: None,
        index: None,
    };
    let mut config = Config::default();
    let Some([version, settings, rules, selector, order]) =
        d.entries(root, Field::of(""), &TOP_KEYS)
    else {
        // Already reported: the document is not a mapping, so nothing in it is "missing".
        config.undecodable = vec!["version", "rules"];
        return config;
    };
    if let Some((_, v)) = version {
        config.version = d.string(v, Field::of("version"));
        if config.version.is_none() {
            config.undecodable.push("version");
        }
    }
    if let Some((_, v)) = settings {
        config.settings = Some(d.settings(v));
    }
    if let Some((_, v)) = rules {
        config.rules = d.rules(v);
        config.has_rules = true;
    }
    if let Some((_, v)) = selector {
        config.selector = d.selector(v);
    }
    if let Some((_, v)) = order {
        config.order = d.integer(v, Field::of("order"));
    }
    config
}

/// Decode one item of `rules:` (the `index`-th) into `rule` (a default one), borrowing its
/// text from the node. Filled in place, like every rule (see `Decoder::rule`).
pub(crate) fn decode_rule<'n>(
    index: usize,
    node: &'n Node<'_>,
    diags: &mut Vec<Diagnostic>,
    rule: &mut RuleConfig<&'n str>,
) {
    let mut d = Decoder {
        diags,
        rule: None,
        index: None,
    };
    d.rule(index, node, rule);
}

/// A field path for diagnostics (`to.port`, `settings.ssh_ports[2]`), formatted only when a
/// problem is reported, so decoding a valid file allocates no field names.
#[derive(Clone, Copy)]
struct Field {
    path: &'static str,
    item: Option<usize>,
}

impl Field {
    const fn of(path: &'static str) -> Self {
        Self { path, item: None }
    }

    /// The field of the `i`-th key of `keys`.
    const fn key<const N: usize>(keys: &Keys<N>, i: usize) -> Self {
        Self::of(keys[i].1)
    }

    fn item(self, i: usize) -> Self {
        Self {
            item: Some(i),
            ..self
        }
    }
}

struct Decoder<'d, 'n> {
    diags: &'d mut Vec<Diagnostic>,
    /// The name of the rule being decoded, as written, once known.
    rule: Option<&'n str>,
    /// Its index, for rules without a usable name (`rules[3].to.port`).
    index: Option<usize>,
}

/// The text a decoded configuration holds: owned, or borrowed from the YAML nodes.
trait FromNodeText<'n> {
    fn of(text: &'n str) -> Self;
}

impl<'n> FromNodeText<'n> for String {
    fn of(text: &'n str) -> Self {
        text.to_owned()
    }
}

impl<'n> FromNodeText<'n> for &'n str {
    fn of(text: &'n str) -> Self {
        text
    }
}

/// The text of a scalar and whether it was plain.
fn scalar<'n>(node: &'n Node<'_>) -> Option<(&'n str, bool)> {
    match &node.value {
        Value::Scalar { text, plain } => Some((text, *plain)),
        _ => None,
    }
}

/// How a node looks, for "expected X, found Y" messages.
fn describe(node: &Node<'_>) -> String {
    match &node.value {
        Value::Mapping(_) => "a mapping".into(),
        Value::Sequence(_) => "a list".into(),
        Value::Scalar { text, plain } if is_null(text, *plain) => "nothing (null)".into(),
        Value::Scalar { text, .. } => format!("'{}'", printable(text)),
    }
}

/// One mapping's entries, by known key: `(key node, value node)`.
type Slots<'n, 'a, const N: usize> = [Option<&'n (Node<'a>, Node<'a>)>; N];

impl<'n, 'a: 'n> Decoder<'_, 'n> {
    fn report(
        &mut self,
        code: Code,
        field: Field,
        at: Position,
        message: String,
        help: Option<&str>,
    ) {
        let mut d = Diagnostic::error(code, message)
            .with_rule(self.rule.map(printable).as_deref())
            .at(Some(at));
        if !field.path.is_empty() {
            let mut path = match (self.rule, self.index) {
                (None, Some(i)) => format!("rules[{i}].{}", field.path),
                _ => field.path.to_owned(),
            };
            if let Some(i) = field.item {
                path = format!("{path}[{i}]");
            }
            d = d.with_field(path);
        }
        if let Some(help) = help {
            d = d.with_help(help);
        }
        self.diags.push(d);
    }

    fn wrong_type(&mut self, node: &Node<'_>, field: Field, expected: &str, help: Option<&str>) {
        let message = format!("expected {expected}, found {}", describe(node));
        self.report(Code::WrongType, field, node.position, message, help);
    }

    /// The entries of a mapping in slots by known key. Unknown, duplicate and non-text keys
    /// are reported and left out.
    fn entries<const N: usize>(
        &mut self,
        node: &'n Node<'a>,
        field: Field,
        known: &Keys<N>,
    ) -> Option<Slots<'n, 'a, N>> {
        let Value::Mapping(pairs) = &node.value else {
            let what = if field.path.is_empty() {
                "a mapping at the top of the file (version, settings, rules)"
            } else {
                "a mapping"
            };
            self.wrong_type(node, field, what, None);
            return None;
        };
        let mut slots: Slots<'n, 'a, N> = [None; N];
        for entry in pairs {
            let (k, _) = entry;
            let Some((text, _)) = scalar(k) else {
                self.wrong_type(k, field, "a key (text)", None);
                continue;
            };
            let Some(i) = known.iter().position(|(kn, _)| *kn == text) else {
                self.unknown_key(k, text, field, known);
                continue;
            };
            if let Some((first, _)) = slots[i] {
                let message = format!(
                    "'{text}' is given twice (first at line {})",
                    first.position.line
                );
                self.report(
                    Code::DuplicateKey,
                    Field::key(known, i),
                    k.position,
                    message,
                    None,
                );
                continue;
            }
            slots[i] = Some(entry);
        }
        Some(slots)
    }

    fn unknown_key<const N: usize>(
        &mut self,
        key: &Node<'_>,
        text: &str,
        field: Field,
        known: &Keys<N>,
    ) {
        let names = known.iter().map(|(k, _)| *k);
        let mut help = format!(
            "keys accepted here: {}",
            names.clone().collect::<Vec<_>>().join(", ")
        );
        if let Some(s) = suggest(text, names) {
            help = format!("did you mean '{s}'? {help}");
        }
        let message = format!(
            "unknown key '{}' (unknown keys are errors, so a typo cannot weaken the policy)",
            printable(text)
        );
        let mut d = Diagnostic::error(Code::UnknownKey, message)
            .with_rule(self.rule.map(printable).as_deref())
            .at(Some(key.position))
            .with_help(help);
        let parent = match (self.rule, self.index) {
            (None, Some(i)) if field.path.is_empty() => format!("rules[{i}]"),
            (None, Some(i)) => format!("rules[{i}].{}", field.path),
            _ => field.path.to_owned(),
        };
        let path = if parent.is_empty() {
            printable(text)
        } else {
            format!("{parent}.{}", printable(text))
        };
        d = d.with_field(path);
        self.diags.push(d);
    }

    fn string<S: FromNodeText<'n>>(
        &mut self,
        node: &'n Node<'a>,
        field: Field,
    ) -> Option<Spanned<S>> {
        match scalar(node) {
            Some((text, plain)) if !is_null(text, plain) => {
                Some(Spanned::new(S::of(text), Some(node.position)))
            }
            _ => {
                self.wrong_type(node, field, "text", None);
                None
            }
        }
    }

    fn boolean(&mut self, node: &Node<'_>, field: Field) -> Option<Spanned<bool>> {
        let value = match scalar(node) {
            Some(("true" | "True" | "TRUE", true)) => Some(true),
            Some(("false" | "False" | "FALSE", true)) => Some(false),
            _ => None,
        };
        if value.is_none() {
            self.wrong_type(
                node,
                field,
                "true or false",
                Some("YAML 1.1 spellings (yes/no/on/off) and quoted values are not booleans here"),
            );
        }
        value.map(|v| Spanned::new(v, Some(node.position)))
    }

    fn integer(&mut self, node: &Node<'_>, field: Field) -> Option<Spanned<i64>> {
        match scalar(node)
            .filter(|(_, plain)| *plain)
            .and_then(|(t, _)| parse_int(t))
        {
            Some(v) => Some(Spanned::new(v, Some(node.position))),
            None => {
                self.wrong_type(node, field, "a whole number", None);
                None
            }
        }
    }

    fn word<T: Copy>(
        &mut self,
        node: &Node<'_>,
        field: Field,
        what: &str,
        words: &[(&'static str, T)],
    ) -> Option<Spanned<T>> {
        let Some((text, _)) = scalar(node).filter(|(t, p)| !is_null(t, *p)) else {
            self.wrong_type(node, field, "text", None);
            return None;
        };
        if let Some((_, v)) = words.iter().find(|(w, _)| *w == text) {
            return Some(Spanned::new(*v, Some(node.position)));
        }
        let names = words.iter().map(|(w, _)| *w);
        let mut help = format!("one of: {}", names.clone().collect::<Vec<_>>().join(", "));
        let lower = text.to_lowercase();
        let synonym = SYNONYMS
            .iter()
            .find(|(other, ours)| *other == lower && names.clone().any(|n| n == *ours))
            .map(|(_, ours)| *ours);
        if let Some(s) = synonym.or_else(|| suggest(&lower, names)) {
            help = format!("did you mean '{s}'? {help}");
        }
        let message = format!("'{}' is not {what}", printable(text));
        self.report(
            Code::UnknownValue,
            field,
            node.position,
            message,
            Some(&help),
        );
        None
    }

    fn port_spec(&mut self, node: &Node<'_>, field: Field) -> Option<Spanned<PortSpec>> {
        let spec = scalar(node).and_then(|(t, plain)| {
            if is_null(t, plain) {
                None
            } else {
                parse_port_spec(t)
            }
        });
        if spec.is_none() {
            self.wrong_type(
                node,
                field,
                "a port (1-65535) or a range like \"8000-8100\"",
                None,
            );
        }
        spec.map(|s| Spanned::new(s, Some(node.position)))
    }

    fn one_or_many<T>(
        &mut self,
        node: &'n Node<'a>,
        field: Field,
        mut item: impl FnMut(&mut Self, &'n Node<'a>, Field) -> Option<T>,
    ) -> Option<Spanned<OneOrMany<T>>> {
        let value = match &node.value {
            Value::Sequence(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, n) in items.iter().enumerate() {
                    if let Some(v) = item(self, n, field.item(i)) {
                        out.push(v);
                    }
                }
                OneOrMany::Many(out)
            }
            _ => OneOrMany::One(item(self, node, field)?),
        };
        Some(Spanned::new(value, Some(node.position)))
    }

    fn ports(
        &mut self,
        node: &'n Node<'a>,
        field: Field,
    ) -> Option<Spanned<OneOrMany<Spanned<PortSpec>>>> {
        self.one_or_many(node, field, |d, n, f| d.port_spec(n, f))
    }

    fn hosts<S: FromNodeText<'n>>(
        &mut self,
        node: &'n Node<'a>,
        field: Field,
    ) -> Option<Spanned<OneOrMany<Spanned<S>>>> {
        self.one_or_many(node, field, |d, n, f| d.string(n, f))
    }

    /// `selector:`: a mapping of label to value, each a scalar (`tier: 1` is the text "1").
    fn selector(&mut self, node: &'n Node<'a>) -> Option<Spanned<Selector>> {
        let field = Field::of("selector");
        let Value::Mapping(pairs) = &node.value else {
            self.wrong_type(node, field, "a mapping of label to value", None);
            return None;
        };
        let mut out: Vec<(Spanned<String>, Spanned<String>)> = Vec::with_capacity(pairs.len());
        for (k, v) in pairs {
            let Some(key) = self.string::<String>(k, field) else {
                continue;
            };
            if let Some((first, _)) = out.iter().find(|(f, _)| f.value == key.value) {
                let message = format!(
                    "label '{}' is given twice (first at line {})",
                    printable(&key.value),
                    first.position.map_or(0, |p| p.line)
                );
                self.report(Code::DuplicateKey, field, k.position, message, None);
                continue;
            }
            if let Some(value) = self.string::<String>(v, field) {
                out.push((key, value));
            }
        }
        Some(Spanned::new(out, Some(node.position)))
    }

    fn settings(&mut self, node: &'n Node<'a>) -> SettingsConfig {
        let mut s = SettingsConfig::default();
        let Some(slots) = self.entries(node, Field::of("settings"), &SETTINGS_KEYS) else {
            return s;
        };
        let [
            policy,
            log_blocked,
            log_prefix,
            log_rate,
            ssh,
            ssh_ports,
            established,
        ] = slots;
        let f = |i: usize| Field::key(&SETTINGS_KEYS, i);
        if let Some((_, v)) = policy {
            s.default_policy = self.word(v, f(0), "a default policy", &DEFAULT_POLICIES);
        }
        if let Some((_, v)) = log_blocked {
            s.log_blocked = self.boolean(v, f(1));
        }
        if let Some((_, v)) = log_prefix {
            s.log_prefix = self.string(v, f(2));
        }
        if let Some((_, v)) = log_rate {
            s.log_rate = self.string(v, f(3));
        }
        if let Some((_, v)) = ssh {
            s.preserve_ssh = self.boolean(v, f(4));
        }
        if let Some((_, v)) = ssh_ports {
            s.ssh_ports = self.ports(v, f(5));
        }
        if let Some((_, v)) = established {
            s.preserve_established = self.boolean(v, f(6));
        }
        s
    }

    fn rules(&mut self, node: &'n Node<'a>) -> Vec<RuleConfig> {
        let Value::Sequence(items) = &node.value else {
            self.wrong_type(node, Field::of("rules"), "a list of rules", None);
            return Vec::new();
        };
        let mut rules = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let mut r = RuleConfig::default();
            self.rule(i, item, &mut r);
            rules.push(r);
        }
        rules
    }
}
