//! From a YAML node tree to a [`Config`], reporting every structural problem on the way.
//!
//! Decoding never stops early: a bad field is reported, left out, and noted as undecodable so
//! validation does not report it a second time as missing. Unknown keys are errors, with the
//! nearest known key suggested — a typo such as `protcol:` must never silently widen a rule.

use super::{
    Config, FromConfig, OneOrMany, PortSpec, RuleConfig, SettingsConfig, Spanned, ToConfig,
};
use crate::diagnostic::{Code, Diagnostic};
use crate::policy::{Action, DefaultPolicy, Direction, Protocol};
use crate::source::Position;
use crate::yaml::{Node, Value};

/// Known keys of each mapping, with the field path each is reported under.
type Keys<const N: usize> = [(&'static str, &'static str); N];

const TOP_KEYS: Keys<3> = [
    ("version", "version"),
    ("settings", "settings"),
    ("rules", "rules"),
];
const SETTINGS_KEYS: Keys<7> = [
    ("default_policy", "settings.default_policy"),
    ("log_blocked", "settings.log_blocked"),
    ("log_prefix", "settings.log_prefix"),
    ("log_rate", "settings.log_rate"),
    ("preserve_ssh", "settings.preserve_ssh"),
    ("ssh_ports", "settings.ssh_ports"),
    ("preserve_established", "settings.preserve_established"),
];
const RULE_KEYS: Keys<8> = [
    ("name", "name"),
    ("description", "description"),
    ("direction", "direction"),
    ("from", "from"),
    ("to", "to"),
    ("action", "action"),
    ("priority", "priority"),
    ("log", "log"),
];
const FROM_KEYS: Keys<7> = [
    ("user", "from.user"),
    ("uid", "from.uid"),
    ("group", "from.group"),
    ("gid", "from.gid"),
    ("cgroup", "from.cgroup"),
    ("host", "from.host"),
    ("hosts", "from.hosts"),
];
const TO_KEYS: Keys<5> = [
    ("host", "to.host"),
    ("hosts", "to.hosts"),
    ("port", "to.port"),
    ("ports", "to.ports"),
    ("protocol", "to.protocol"),
];

/// Decode the root of a configuration document.
pub(crate) fn decode(root: &Node<'_>, diags: &mut Vec<Diagnostic>) -> Config {
    let mut d = Decoder {
        diags,
        rule: None,
        index: None,
    };
    let mut config = Config::default();
    let Some([version, settings, rules]) = d.entries(root, Field::of(""), &TOP_KEYS) else {
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
    config
}

/// Decode one item of `rules:` (the `index`-th), borrowing its text from the node.
pub(crate) fn decode_rule<'n>(
    index: usize,
    node: &'n Node<'_>,
    diags: &mut Vec<Diagnostic>,
) -> RuleConfig<&'n str> {
    let mut d = Decoder {
        diags,
        rule: None,
        index: None,
    };
    d.rule(index, node)
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

fn is_null(text: &str, plain: bool) -> bool {
    plain && matches!(text, "" | "~" | "null" | "Null" | "NULL")
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

/// Text safe to echo into a diagnostic: control characters escaped, long text cut.
pub(crate) fn printable(text: &str) -> String {
    let mut out: String = text.chars().take(64).flat_map(char::escape_debug).collect();
    if text.chars().count() > 64 {
        out.push('…');
    }
    out
}

/// Levenshtein distance, for "did you mean" suggestions among a handful of short keys.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// The known word closest to `word`, if it is close enough to be a typo.
pub(crate) fn suggest<'k>(word: &str, known: impl IntoIterator<Item = &'k str>) -> Option<&'k str> {
    known
        .into_iter()
        .map(|k| (distance(word, k), k))
        .filter(|(d, k)| *d <= 2 && *d < k.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn parse_int(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    match b.first() {
        Some(b'-') => magnitude(&b[1..]).map(|m| -m),
        Some(b'+') => magnitude(&b[1..]),
        _ => magnitude(b),
    }
}

/// One or more ASCII digits as a number. Out-of-range numbers saturate: validation reports
/// them with their field's bounds. Read by hand: a port list of a large policy goes through
/// here several times per rule, and std's parser checks again what this loop already has.
fn magnitude(digits: &[u8]) -> Option<i64> {
    if digits.is_empty() {
        return None;
    }
    let mut value: i64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        value = value.saturating_mul(10).saturating_add(i64::from(c - b'0'));
    }
    Some(value)
}

/// `text` without surrounding whitespace; `trim` decodes characters at both ends, which a
/// value that starts and ends with a visible ASCII character does not need.
pub(crate) fn trimmed(text: &str) -> &str {
    let visible = |b: Option<&u8>| b.is_some_and(u8::is_ascii_graphic);
    if visible(text.as_bytes().first()) && visible(text.as_bytes().last()) {
        text
    } else {
        text.trim()
    }
}

fn parse_port_spec(text: &str) -> Option<PortSpec> {
    let text = trimmed(text);
    if let Some(p) = parse_int(text) {
        return Some(PortSpec::Single(p));
    }
    let dash = text.bytes().position(|c| c == b'-')?;
    let (a, b) = (trimmed(&text[..dash]), trimmed(&text[dash + 1..]));
    Some(PortSpec::Range(
        magnitude(a.as_bytes())?,
        magnitude(b.as_bytes())?,
    ))
}

/// The words of `direction`, `action` and `protocol`.
const DIRECTIONS: [(&str, Direction); 2] = [
    ("egress", Direction::Egress),
    ("ingress", Direction::Ingress),
];
const ACTIONS: [(&str, Action); 3] = [
    ("allow", Action::Allow),
    ("deny", Action::Deny),
    ("reject", Action::Reject),
];
const PROTOCOLS: [(&str, Protocol); 5] = [
    ("tcp", Protocol::Tcp),
    ("udp", Protocol::Udp),
    ("both", Protocol::Both),
    ("icmp", Protocol::Icmp),
    ("any", Protocol::Any),
];

/// Words other firewalls use for zt's, suggested when a value is not one of zt's words.
const SYNONYMS: &[(&str, &str)] = &[
    ("accept", "allow"),
    ("permit", "allow"),
    ("pass", "allow"),
    ("drop", "deny"),
    ("block", "deny"),
    ("refuse", "reject"),
    ("out", "egress"),
    ("output", "egress"),
    ("outbound", "egress"),
    ("in", "ingress"),
    ("input", "ingress"),
    ("inbound", "ingress"),
    ("all", "any"),
];

/// One mapping's entries, by known key: `(key node, value node)`.
type Slots<'n, 'a, const N: usize> = [Option<(&'n Node<'a>, &'n Node<'a>)>; N];

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
        for (k, v) in pairs {
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
                    Field::of(known[i].1),
                    k.position,
                    message,
                    None,
                );
                continue;
            }
            slots[i] = Some((k, v));
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
        let f = |i: usize| Field::of(SETTINGS_KEYS[i].1);
        if let Some((_, v)) = policy {
            let words = [
                ("deny", DefaultPolicy::Deny),
                ("allow", DefaultPolicy::Allow),
            ];
            s.default_policy = self.word(v, f(0), "a default policy", &words);
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
        items
            .iter()
            .enumerate()
            .map(|(i, item)| self.rule(i, item))
            .collect()
    }

    fn rule<S: FromNodeText<'n> + Default>(
        &mut self,
        index: usize,
        node: &'n Node<'a>,
    ) -> RuleConfig<S> {
        let mut r = RuleConfig {
            position: Some(node.position),
            ..RuleConfig::default()
        };
        self.rule = None;
        self.index = Some(index);
        let Some(slots) = self.entries(node, Field::of(""), &RULE_KEYS) else {
            r.undecodable.push("name");
            self.index = None;
            return r;
        };
        let [
            name,
            description,
            direction,
            from,
            to,
            action,
            priority,
            log,
        ] = slots;
        // The name first, so every other problem in the rule can name it.
        if let Some((_, v)) = name {
            r.name = self.string(v, Field::of("name"));
            match (&r.name, scalar(v)) {
                (None, _) => r.undecodable.push("name"),
                (Some(_), Some((text, _))) if !text.is_empty() => self.rule = Some(text),
                _ => {}
            }
        }
        if let Some((_, v)) = description {
            r.description = self.string(v, Field::of("description"));
        }
        if let Some((_, v)) = direction {
            r.direction = self.word(v, Field::of("direction"), "a direction", &DIRECTIONS);
        }
        if let Some((_, v)) = from {
            r.from = self.from(v);
            if r.from.is_none() {
                r.undecodable.push("from");
            }
        }
        if let Some((_, v)) = to {
            r.to = self.to(v);
        }
        if let Some((_, v)) = action {
            r.action = self.word(v, Field::of("action"), "an action", &ACTIONS);
            if r.action.is_none() {
                r.undecodable.push("action");
            }
        }
        if let Some((_, v)) = priority {
            r.priority = self.integer(v, Field::of("priority"));
        }
        if let Some((_, v)) = log {
            r.log = self.boolean(v, Field::of("log"));
        }
        self.rule = None;
        self.index = None;
        r
    }

    fn from<S: FromNodeText<'n> + Default>(
        &mut self,
        node: &'n Node<'a>,
    ) -> Option<Spanned<FromConfig<S>>> {
        let slots = self.entries(node, Field::of("from"), &FROM_KEYS)?;
        let mut f = FromConfig::default();
        for (i, slot) in slots.iter().enumerate() {
            let Some((_, v)) = *slot else { continue };
            let (key, path) = FROM_KEYS[i];
            let field = Field::of(path);
            match key {
                "user" => f.user = self.string(v, field),
                "uid" => f.uid = self.integer(v, field),
                "group" => f.group = self.string(v, field),
                "gid" => f.gid = self.integer(v, field),
                "cgroup" => f.cgroup = self.string(v, field),
                "host" => f.host = self.string(v, field),
                _ => f.hosts = self.hosts(v, field),
            }
            if !f.has(key) {
                f.undecodable.push(key);
            }
        }
        Some(Spanned::new(f, Some(node.position)))
    }

    fn to<S: FromNodeText<'n> + Default>(
        &mut self,
        node: &'n Node<'a>,
    ) -> Option<Spanned<ToConfig<S>>> {
        let [host, hosts, port, ports, protocol] = self.entries(node, Field::of("to"), &TO_KEYS)?;
        let f = |i: usize| Field::of(TO_KEYS[i].1);
        let mut t = ToConfig::default();
        if let Some((_, v)) = host {
            t.host = self.string(v, f(0));
        }
        if let Some((_, v)) = hosts {
            t.hosts = self.hosts(v, f(1));
        }
        if let Some((_, v)) = port {
            t.port = self.ports(v, f(2));
        }
        if let Some((_, v)) = ports {
            t.ports = self.ports(v, f(3));
        }
        if let Some((_, v)) = protocol {
            t.protocol = self.word(v, f(4), "a protocol", &PROTOCOLS);
        }
        Some(Spanned::new(t, Some(node.position)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_catch_typos_but_not_unrelated_words() {
        let keys = || TO_KEYS.iter().map(|(k, _)| *k);
        assert_eq!(suggest("protcol", keys()), Some("protocol"));
        assert_eq!(suggest("prots", keys()), Some("ports"));
        assert_eq!(suggest("destination", keys()), None);
    }

    /// The parsers as they were written with std's: the hand-written ones must agree.
    fn parse_int_std(text: &str) -> Option<i64> {
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text.strip_prefix('+').unwrap_or(text)),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let magnitude = digits.parse::<i64>().unwrap_or(i64::MAX);
        Some(if negative { -magnitude } else { magnitude })
    }

    fn parse_port_spec_std(text: &str) -> Option<PortSpec> {
        let text = text.trim();
        if let Some(p) = parse_int_std(text) {
            return Some(PortSpec::Single(p));
        }
        let (a, b) = text.split_once('-')?;
        let (a, b) = (a.trim(), b.trim());
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
        if digits(a) && digits(b) {
            Some(PortSpec::Range(parse_int_std(a)?, parse_int_std(b)?))
        } else {
            None
        }
    }

    proptest::proptest! {
        #[test]
        fn integer_and_port_readers_agree_with_std(
            text in "[ +\\-0-9\u{a0}\u{2003}a]{0,8}|[0-9]{17,21}|[+\\-]?[0-9]{1,20}( ?- ?[0-9]{1,20})?",
        ) {
            proptest::prop_assert_eq!(parse_int(&text), parse_int_std(&text));
            proptest::prop_assert_eq!(parse_port_spec(&text), parse_port_spec_std(&text));
        }
    }

    #[test]
    fn port_specs_accept_numbers_and_ranges_only() {
        assert_eq!(parse_port_spec("6379"), Some(PortSpec::Single(6379)));
        assert_eq!(
            parse_port_spec("8000-8100"),
            Some(PortSpec::Range(8000, 8100))
        );
        assert_eq!(parse_port_spec(" 1 - 2 "), Some(PortSpec::Range(1, 2)));
        assert_eq!(parse_port_spec("-1"), Some(PortSpec::Single(-1)));
        assert_eq!(
            parse_port_spec("99999999999999999999"),
            Some(PortSpec::Single(i64::MAX))
        );
        assert_eq!(parse_port_spec("http"), None);
        assert_eq!(parse_port_spec("1-2-3"), None);
    }
}
