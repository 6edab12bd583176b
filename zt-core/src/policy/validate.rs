//! From a [`Config`] to a [`Policy`]: every check, every name resolved, all problems at once.

use super::shadow::{self, Shadower};
use super::unique::FirstUse;
use super::{
    Action, AddressSet, CgroupPath, DefaultPolicy, Direction, Identity, Loaded, LogPrefix,
    LogPrefixError, LogRate, Policy, PortRange, PortSet, Protocol, Rule, RuleName, Settings,
};
use crate::Error;
use crate::config::decode::{self, printable};
use crate::config::{Config, FromConfig, OneOrMany, PortSpec, RuleConfig, SettingsConfig, Spanned};
use crate::diagnostic::{Code, Diagnostic, Diagnostics};
use crate::resolve::NameResolver;
use crate::short_str::ShortStr;
use crate::source::{Position, Provenance};
use crate::yaml::{self, YamlErrorKind};
use foldhash::HashMap;
use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

/// Parse, decode and validate a YAML text.
///
/// Rules are streamed: each item of `rules:` is decoded and validated as soon as it is read,
/// and its YAML nodes and `RuleConfig` are dropped before the next one is read.
pub(crate) fn load_str(
    text: &str,
    source: &str,
    resolver: &dyn NameResolver,
) -> Result<Loaded, Error> {
    // Rules are rarely shorter than 100 bytes of YAML: room for that many means the lists and
    // maps that grow with the rules are not copied over and over while a large file loads.
    let mut rules = RuleStream::new(resolver, text.len() / 100);
    match yaml::read_streaming(text, Some("rules"), &mut rules) {
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
            }),
            // Every path to `None` reported an error.
            _ => Err(Error::Invalid(diagnostics)),
        }
    }
}

impl<'a> yaml::ItemSink<'a> for RuleStream<'_> {
    fn item(&mut self, node: &yaml::Node<'a>) {
        let rc = decode::decode_rule(self.count, node, &mut self.v.diags);
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

/// A port or range, checked.
fn port_range(spec: PortSpec) -> Result<PortRange, Problem> {
    let out_of_range = |p: i64| {
        problem(
            Code::PortOutOfRange,
            format!("port {p} is out of range"),
            "ports are 1-65535",
        )
    };
    let port = |p: i64| {
        u16::try_from(p)
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| out_of_range(p))
    };
    match spec {
        PortSpec::Single(p) => {
            let p = port(p)?;
            PortRange::single(p).ok_or_else(|| out_of_range(i64::from(p)))
        }
        PortSpec::Range(a, b) => {
            let (first, last) = (port(a)?, port(b)?);
            PortRange::new(first, last).ok_or_else(|| {
                problem(
                    Code::InvertedRange,
                    format!("range {a}-{b} is inverted"),
                    format!("write the lower port first: \"{b}-{a}\""),
                )
            })
        }
    }
}

/// `address/prefix` (split at the slash by the caller), parsed with std's address parser:
/// `ipnet`'s `FromStr` builds its alternatives as boxed closures, an allocation per address in
/// a 10 000-rule file.
fn cidr(addr: &str, prefix: &str) -> Option<IpNet> {
    if prefix.is_empty() || prefix.len() > 3 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let addr = parse_ip(addr)?;
    IpNet::new(addr, prefix.parse().ok()?).ok()
}

/// An IPv4 or IPv6 address, as std parses it.
fn parse_ip(text: &str) -> Option<IpAddr> {
    dotted_quad(text)
        .map(IpAddr::V4)
        .or_else(|| hex_groups(text).map(IpAddr::V6))
        .or_else(|| text.parse().ok())
}

/// An IPv6 address written as hexadecimal groups with at most one `::` (no embedded IPv4
/// address, no zone), read by hand in one pass for the reason [`dotted_quad`] is. `None` means
/// only "not in this form": the text then goes to std.
fn hex_groups(text: &str) -> Option<Ipv6Addr> {
    let b = text.as_bytes();
    let mut head = [0u16; 8];
    let mut n = 0;
    let mut at = 0;
    if !b.starts_with(b"::") {
        hex_run(b, &mut at, &mut head, &mut n)?;
        if at == b.len() {
            return (n == 8).then(|| Ipv6Addr::from(head));
        }
    }
    // At a `::`, which stands for one zero group or more.
    at += 2;
    let mut tail = [0u16; 8];
    let mut m = 0;
    if at < b.len() {
        if b[at] == b':' {
            return None;
        }
        hex_run(b, &mut at, &mut tail, &mut m)?;
    }
    if at != b.len() || n + m > 7 {
        return None;
    }
    head[8 - m..].copy_from_slice(&tail[..m]);
    Some(Ipv6Addr::from(head))
}

/// Groups of one to four hex digits separated by single colons, from `b[*at..]` into `out`
/// after `*n` earlier ones; stops at the end of `b` or with `*at` on a `::`. `None` on
/// anything else.
fn hex_run(b: &[u8], at: &mut usize, out: &mut [u16; 8], n: &mut usize) -> Option<()> {
    loop {
        let start = *at;
        let mut value = 0u16;
        while let Some(digit) = b.get(*at).and_then(|&c| char::from(c).to_digit(16)) {
            if *at - start == 4 {
                return None;
            }
            value = value << 4 | u16::try_from(digit).ok()?;
            *at += 1;
        }
        if *at == start || *n == 8 {
            return None;
        }
        out[*n] = value;
        *n += 1;
        match (b.get(*at), b.get(*at + 1)) {
            (None, _) | (Some(b':'), Some(b':')) => return Some(()),
            (Some(b':'), Some(_)) => *at += 1,
            _ => return None,
        }
    }
}

/// An IPv4 address in the canonical dotted-quad form (no leading zeros), read by hand: std's
/// parser tries both families through a general-purpose parser, which showed in the profile of
/// large policies. `None` means only "not in this form": the text then goes to std, so the
/// addresses accepted are exactly std's.
fn dotted_quad(text: &str) -> Option<Ipv4Addr> {
    let b = text.as_bytes();
    let mut octets = [0u8; 4];
    let mut i = 0;
    for (n, octet) in octets.iter_mut().enumerate() {
        if n > 0 {
            if b.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
        let start = i;
        let mut value = 0u16;
        while i < b.len() && i - start < 3 && b[i].is_ascii_digit() {
            value = value * 10 + u16::from(b[i] - b'0');
            i += 1;
        }
        if i == start || (i - start > 1 && b[start] == b'0') {
            return None;
        }
        *octet = u8::try_from(value).ok()?;
    }
    (i == b.len()).then(|| Ipv4Addr::from(octets))
}

/// An address or CIDR, checked.
fn host(text: &str) -> Result<IpNet, Problem> {
    let t = decode::trimmed(text);
    // Found by hand: `contains` and `split_once` each set up a `memchr` for a 15-byte text.
    let net = if let Some(slash) = t.bytes().position(|c| c == b'/') {
        let net = cidr(&t[..slash], &t[slash + 1..]).ok_or_else(|| {
            problem(
                Code::InvalidAddress,
                format!("'{}' is not a valid CIDR", printable(t)),
                "write an address and a prefix length, e.g. 10.0.0.0/8 or fd00::/8",
            )
        })?;
        if net.trunc() != net {
            return Err(problem(
                Code::HostBitsSet,
                format!("'{t}' has bits set after the /{} prefix", net.prefix_len()),
                format!("did you mean {}?", net.trunc()),
            ));
        }
        net
    } else {
        let ip = parse_ip(t).ok_or_else(|| {
            let looks_like_name = !t.is_empty()
                && t.chars().any(|c| c.is_ascii_alphabetic())
                && t.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'));
            if looks_like_name {
                problem(
                    Code::HostnameNotAllowed,
                    format!("'{t}' is a host name; zt accepts addresses only"),
                    "a firewall rule must not change meaning when DNS does: give the address(es) it resolves to",
                )
            } else {
                problem(
                    Code::InvalidAddress,
                    format!("'{}' is not an IPv4 or IPv6 address or CIDR", printable(t)),
                    "e.g. 127.0.0.1, 10.0.0.0/8, ::1, fd00::/8",
                )
            }
        })?;
        IpNet::from(ip)
    };
    if let IpNet::V6(n) = net
        && let Some(v4) = n.network().to_ipv4_mapped()
    {
        return Err(problem(
            Code::MappedAddress,
            format!(
                "'{t}' is an IPv4-mapped IPv6 address; such traffic travels as IPv4 and this would never match"
            ),
            format!("write the IPv4 form: {v4}"),
        ));
    }
    Ok(net)
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

    /// Check the top level (version, presence of rules) and resolve the settings.
    fn top(&mut self, config: &Config) -> Option<Settings> {
        self.rule = None;
        self.index = None;
        match &config.version {
            Some(v) if v.value.trim() == "1.0" => {}
            Some(v) => self.error(
                problem(
                    Code::UnsupportedVersion,
                    format!("version '{}' is not supported", printable(&v.value)),
                    "this zt reads version \"1.0\"",
                ),
                "version",
                v.position,
            ),
            None if config.undecodable.contains(&"version") => {}
            None => self.error(
                problem(
                    Code::MissingField,
                    "the configuration has no version",
                    "start the file with version: \"1.0\"",
                ),
                "version",
                Some(Position::new(1, 1)),
            ),
        }
        if !config.has_rules && !config.undecodable.contains(&"rules") {
            self.error(
                problem(
                    Code::MissingField,
                    "the configuration has no rules",
                    "write `rules: []` for a policy of the prologue and default alone",
                ),
                "rules",
                Some(Position::new(1, 1)),
            );
        }
        self.settings(config.settings.as_ref())
    }

    fn settings(&mut self, sc: Option<&SettingsConfig>) -> Option<Settings> {
        let mut s = Settings::default();
        let Some(sc) = sc else {
            return Some(s);
        };
        let mut ok = true;
        if let Some(p) = &sc.default_policy {
            s.default_policy = p.value;
        }
        if let Some(b) = &sc.log_blocked {
            s.log_blocked = b.value;
        }
        if let Some(b) = &sc.preserve_ssh {
            s.preserve_ssh = b.value;
        }
        if let Some(b) = &sc.preserve_established {
            s.preserve_established = b.value;
        }
        if let Some(prefix) = &sc.log_prefix {
            match LogPrefix::new(&prefix.value) {
                Ok(p) => s.log_prefix = p,
                Err(e) => {
                    ok = false;
                    let p = match e {
                        LogPrefixError::TooLong(n) => problem(
                            Code::LogPrefixTooLong,
                            format!(
                                "the log prefix is {n} bytes; the limit is 29 (iptables' --log-prefix, the tightest backend)"
                            ),
                            "shorten it, e.g. \"ZT-BLOCKED: \"",
                        ),
                        LogPrefixError::Character(c) => problem(
                            Code::UnsafeCharacters,
                            format!(
                                "the log prefix contains {c:?}, which could corrupt or forge kernel log lines"
                            ),
                            "use printable ASCII without quotes or backslashes",
                        ),
                    };
                    self.error(p, "settings.log_prefix", prefix.position);
                }
            }
        }
        if let Some(rate) = &sc.log_rate {
            match LogRate::parse(&rate.value) {
                Some(r) => s.log_rate = r,
                None => {
                    ok = false;
                    self.error(
                        problem(
                            Code::InvalidRate,
                            format!("'{}' is not a log rate", printable(&rate.value)),
                            "write N/second, N/minute, N/hour or N/day with N from 1 to 10000, e.g. \"10/second\"",
                        ),
                        "settings.log_rate",
                        rate.position,
                    );
                }
            }
        }
        if let Some(ports) = &sc.ssh_ports {
            match self.port_set(ports, "settings.ssh_ports") {
                Some(p) if !p.is_any() => s.ssh_ports = p,
                Some(_) => {}
                None => ok = false,
            }
        }
        ok.then_some(s)
    }

    /// A port list, checked; errors are reported and give `None`.
    fn port_set(
        &mut self,
        ports: &Spanned<OneOrMany<Spanned<PortSpec>>>,
        field: &str,
    ) -> Option<PortSet> {
        let specs = ports.value.as_slice();
        if specs.is_empty() {
            self.error(
                problem(
                    Code::EmptyList,
                    "an empty port list matches nothing",
                    "omit the key to mean any port, or list at least one",
                ),
                field,
                ports.position,
            );
            return None;
        }
        let mut ok = true;
        for spec in specs {
            if let Err(p) = port_range(spec.value) {
                ok = false;
                self.error(p, field, spec.position);
            }
        }
        if !ok {
            return None;
        }
        // Checked above; read again rather than kept in a list of their own (checking a
        // range is cheaper than allocating one).
        PortSet::from_ranges(specs.iter().filter_map(|s| port_range(s.value).ok()))
    }

    /// A host list, checked, with overlap warnings.
    fn address_set<S: Text>(
        &mut self,
        hosts: &Spanned<OneOrMany<Spanned<S>>>,
        field: &str,
    ) -> Option<AddressSet> {
        let items = hosts.value.as_slice();
        if items.is_empty() {
            self.error(
                problem(
                    Code::EmptyList,
                    "an empty host list matches nothing",
                    "omit the key to mean every address (IPv4 and IPv6), or list at least one",
                ),
                field,
                hosts.position,
            );
            return None;
        }
        if let [one] = items {
            // The common case needs neither the list nor the overlap check.
            return match host(&one.value) {
                Ok(n) => Some(AddressSet::from_nets([n])),
                Err(p) => {
                    self.error(p, field, one.position);
                    None
                }
            };
        }
        if let [x, y] = items {
            // Two (an address of each family, usually) need no list either.
            return match (host(&x.value), host(&y.value)) {
                (Ok(a), Ok(b)) => {
                    // An IPv4 and an IPv6 network (the usual pair) cannot overlap.
                    if matches!(
                        (a, b),
                        (IpNet::V4(_), IpNet::V4(_)) | (IpNet::V6(_), IpNet::V6(_))
                    ) {
                        self.overlaps(&mut [(a, x), (b, y)], field);
                    }
                    Some(AddressSet::from_nets([a, b]))
                }
                (a, b) => {
                    for (item, result) in [(x, a), (y, b)] {
                        if let Err(p) = result {
                            self.error(p, field, item.position);
                        }
                    }
                    None
                }
            };
        }
        let mut nets: Vec<(IpNet, &Spanned<S>)> = Vec::with_capacity(items.len());
        let mut ok = true;
        for item in items {
            match host(&item.value) {
                Ok(n) => nets.push((n, item)),
                Err(p) => {
                    ok = false;
                    self.error(p, field, item.position);
                }
            }
        }
        if !ok {
            return None;
        }
        self.overlaps(&mut nets, field);
        Some(AddressSet::from_nets(nets.iter().map(|(n, _)| *n)))
    }

    /// Warn about a network listed twice or inside another one of the same list.
    fn overlaps<S: Text>(&mut self, nets: &mut [(IpNet, &Spanned<S>)], field: &str) {
        if nets.len() < 2 {
            return;
        }
        // CIDRs are nested or disjoint: sorted by (family, network, prefix), every net inside
        // another comes right after its container or after another net inside it.
        nets.sort_by_key(|(n, _)| (n.network(), n.prefix_len()));
        let mut container: Option<(IpNet, &str)> = None;
        let mut found = Vec::new();
        for (net, item) in nets.iter() {
            match &container {
                Some((c, text)) if c.contains(net) => {
                    found.push((&*item.value, *text, item.position));
                }
                _ => container = Some((*net, &*item.value)),
            }
        }
        for (inner, outer, at) in found {
            let message = if inner == outer {
                format!("'{}' is listed twice", printable(inner))
            } else {
                format!(
                    "'{}' is already covered by '{}' in the same list",
                    printable(inner),
                    printable(outer)
                )
            };
            self.warn(
                problem(
                    Code::OverlappingHosts,
                    message,
                    "remove the redundant entry",
                ),
                field,
                at,
            );
        }
    }

    fn rule<S: Text>(&mut self, index: usize, rc: &RuleConfig<S>) -> Option<Rule> {
        self.rule = None;
        self.index = Some(index);
        let name = match &rc.name {
            None if rc.undecodable.contains(&"name") => None,
            None => {
                self.error(
                    problem(
                        Code::MissingField,
                        "the rule has no name",
                        "give every rule a unique name, e.g. name: web-to-redis",
                    ),
                    "name",
                    rc.position,
                );
                None
            }
            Some(n) if n.value.is_empty() => {
                self.error(
                    problem(
                        Code::EmptyName,
                        "the rule name is empty",
                        "give every rule a unique name, e.g. name: web-to-redis",
                    ),
                    "name",
                    n.position,
                );
                None
            }
            Some(n) => match RuleName::new(&n.value) {
                Ok(name) => {
                    self.rule = Some(name.clone());
                    self.index = None;
                    Some(name)
                }
                Err(why) => {
                    self.error(
                        problem(
                            Code::InvalidName,
                            format!("'{}' is not a valid rule name", printable(&n.value)),
                            why,
                        ),
                        "name",
                        n.position,
                    );
                    None
                }
            },
        };
        let direction = rc.direction.as_ref().map_or(Direction::Egress, |d| d.value);
        let description = rc.description.as_ref().and_then(|d| self.description(d));
        let action = match &rc.action {
            Some(a) => Some(a.value),
            None => {
                if !rc.undecodable.contains(&"action") {
                    self.error(
                        problem(
                            Code::MissingField,
                            "the rule has no action",
                            "add action: allow, deny or reject",
                        ),
                        "action",
                        rc.position,
                    );
                }
                None
            }
        };
        let priority = match &rc.priority {
            None => Some(0),
            Some(p) => i32::try_from(p.value).ok().or_else(|| {
                self.error(
                    problem(
                        Code::PriorityOutOfRange,
                        format!("priority {} is out of range", p.value),
                        "priorities are whole numbers from -2147483648 to 2147483647",
                    ),
                    "priority",
                    p.position,
                );
                None
            }),
        };
        let log = rc.log.as_ref().is_some_and(|l| l.value);
        let (identity, sources) = self.from(rc, direction);
        let (destinations, ports, protocol) = self.to(rc, direction);
        let peers = match direction {
            Direction::Egress => destinations,
            Direction::Ingress => sources,
        };
        Some(Rule {
            name: name?,
            description,
            direction,
            matches: super::RuleMatch {
                identity: identity?,
                peers: peers?,
                ports: ports?,
                protocol: protocol?,
            },
            action: action?,
            priority: priority?,
            log,
            provenance: Provenance(rc.position),
        })
    }

    /// The description, or `None` (with an error) when it is refused.
    fn description(&mut self, d: &Spanned<impl Text>) -> Option<ShortStr> {
        // Characters are decoded only when a byte could be part of a control character.
        let suspect = d.value.bytes().any(|b| !(0x20..0x7f).contains(&b));
        let control = suspect
            && d.value
                .chars()
                .any(|c| c.is_control() && c != '\n' && c != '\t');
        if control || d.value.len() > 1024 {
            self.error(
                problem(
                    Code::UnsafeCharacters,
                    "the description has control characters or is longer than 1024 bytes",
                    "descriptions are plain text for humans",
                ),
                "description",
                d.position,
            );
            return None;
        }
        Some(ShortStr::new(&d.value))
    }

    /// The identity (egress) and source addresses (ingress) of `from`.
    fn from<S: Text>(
        &mut self,
        rc: &RuleConfig<S>,
        direction: Direction,
    ) -> (Option<Identity>, Option<AddressSet>) {
        let empty = FromConfig::default();
        let (from, at) = match &rc.from {
            Some(f) => (&f.value, f.position),
            None => (&empty, rc.position),
        };
        let mut given = [""; 5];
        let mut count = 0;
        for key in ["user", "uid", "group", "gid", "cgroup"] {
            if from.has(key) || from.undecodable.contains(&key) {
                given[count] = key;
                count += 1;
            }
        }
        let selectors = &given[..count];
        let hosts_given = from.host.is_some() || from.hosts.is_some();
        match direction {
            Direction::Ingress => {
                if !selectors.is_empty() {
                    self.error(
                        problem(
                            Code::IngressIdentity,
                            format!("an ingress rule cannot match from.{}: the receiving process is not visible to the firewall when a packet arrives", selectors.join("/from.")),
                            "match the source with from.hosts and the local port with to.ports",
                        ),
                        &format!("from.{}", selectors[0]),
                        at,
                    );
                    return (None, None);
                }
                let sources = self.hosts_field(
                    from.host.as_ref(),
                    from.hosts.as_ref(),
                    ["from.host", "from.hosts"],
                );
                (Some(Identity::Any), sources)
            }
            Direction::Egress => {
                if hosts_given {
                    let pos = from
                        .host
                        .as_ref()
                        .map(|h| h.position)
                        .or(from.hosts.as_ref().map(|h| h.position))
                        .flatten();
                    self.error(
                        problem(
                            Code::WrongDirection,
                            "from.hosts names source addresses, which only ingress rules match; egress traffic starts on this host",
                            "set direction: ingress, or put destinations under to.hosts",
                        ),
                        "from.hosts",
                        pos,
                    );
                }
                let identity = match selectors {
                    [] if rc.undecodable.contains(&"from") => None,
                    [] => {
                        self.error(
                            problem(
                                Code::MissingSelector,
                                "an egress rule needs one sender: from.user, from.uid, from.group, from.gid or from.cgroup",
                                "write `from: {user: \"*\"}` to match every sender",
                            ),
                            "from",
                            at,
                        );
                        None
                    }
                    [_] if !from.undecodable.is_empty() => None,
                    [one] => self.identity(from, one),
                    more => {
                        self.error(
                            problem(
                                Code::ConflictingSelectors,
                                format!(
                                    "from gives {} senders ({}); a rule matches exactly one",
                                    more.len(),
                                    more.join(", ")
                                ),
                                "split it into one rule per sender",
                            ),
                            "from",
                            at,
                        );
                        None
                    }
                };
                (identity.filter(|_| !hosts_given), Some(AddressSet::any()))
            }
        }
    }

    fn identity<S: Text>(&mut self, from: &FromConfig<S>, selector: &str) -> Option<Identity> {
        let id_range = |v: i64| u32::try_from(v).ok().filter(|&v| v != u32::MAX);
        let out_of_range = |what: &str, v: i64| {
            problem(
                Code::IdOutOfRange,
                format!("{what} {v} is out of range"),
                format!("a {what} is a number from 0 to 4294967294"),
            )
        };
        match selector {
            "user" => {
                let user = from.user.as_ref()?;
                if &*user.value == "*" {
                    return Some(Identity::Any);
                }
                match self.names.user(self.resolver, &user.value) {
                    Some((uid, name)) => Some(Identity::User {
                        uid,
                        name: Some(name),
                    }),
                    None => {
                        self.error(
                            problem(
                                Code::UnknownUser,
                                format!("no user named '{}' on this host", printable(&user.value)),
                                "create the account first, or give its numeric uid (uid: 1001), which needs no passwd entry",
                            ),
                            "from.user",
                            user.position,
                        );
                        None
                    }
                }
            }
            "group" => {
                let group = from.group.as_ref()?;
                match self.names.group(self.resolver, &group.value) {
                    Some((gid, name)) => Some(Identity::Group {
                        gid,
                        name: Some(name),
                    }),
                    None => {
                        self.error(
                            problem(
                                Code::UnknownGroup,
                                format!("no group named '{}' on this host", printable(&group.value)),
                                "create the group first, or give its numeric gid (gid: 1001), which needs no group entry",
                            ),
                            "from.group",
                            group.position,
                        );
                        None
                    }
                }
            }
            "uid" => {
                let uid = from.uid.as_ref()?;
                match id_range(uid.value) {
                    Some(u) => Some(Identity::User { uid: u, name: None }),
                    None => {
                        self.error(out_of_range("uid", uid.value), "from.uid", uid.position);
                        None
                    }
                }
            }
            "gid" => {
                let gid = from.gid.as_ref()?;
                match id_range(gid.value) {
                    Some(g) => Some(Identity::Group { gid: g, name: None }),
                    None => {
                        self.error(out_of_range("gid", gid.value), "from.gid", gid.position);
                        None
                    }
                }
            }
            _ => {
                let path = from.cgroup.as_ref()?;
                match CgroupPath::new(&path.value) {
                    Ok(p) => Some(Identity::Cgroup(p)),
                    Err(why) => {
                        self.error(
                            problem(
                                Code::InvalidCgroup,
                                format!("'{}' is not a usable cgroup path", printable(&path.value)),
                                why,
                            ),
                            "from.cgroup",
                            path.position,
                        );
                        None
                    }
                }
            }
        }
    }

    /// `host`/`hosts` of a mapping (`from` or `to`): any address when both are absent.
    fn hosts_field<S: Text>(
        &mut self,
        host: Option<&Spanned<S>>,
        hosts: Option<&Spanned<OneOrMany<Spanned<S>>>>,
        [host_field, hosts_field]: [&str; 2],
    ) -> Option<AddressSet> {
        match (host, hosts) {
            (None, None) => Some(AddressSet::any()),
            (Some(_), Some(h)) => {
                self.error(
                    problem(
                        Code::ConflictingFields,
                        format!("both {host_field} and {hosts_field} are given"),
                        format!("use {hosts_field} with a list"),
                    ),
                    hosts_field,
                    h.position,
                );
                None
            }
            (Some(h), None) => {
                let one = Spanned::new(OneOrMany::One(h.clone()), h.position);
                self.address_set(&one, host_field)
            }
            (None, Some(h)) => self.address_set(h, hosts_field),
        }
    }

    /// Destinations, ports and protocol of `to`.
    fn to<S: Text>(
        &mut self,
        rc: &RuleConfig<S>,
        direction: Direction,
    ) -> (Option<AddressSet>, Option<PortSet>, Option<Protocol>) {
        let Some(to) = &rc.to else {
            return (
                Some(AddressSet::any()),
                Some(PortSet::any()),
                Some(Protocol::Any),
            );
        };
        let to = &to.value;
        let destinations = match direction {
            Direction::Egress => {
                self.hosts_field(to.host.as_ref(), to.hosts.as_ref(), ["to.host", "to.hosts"])
            }
            Direction::Ingress => {
                if let Some(at) = to
                    .host
                    .as_ref()
                    .map(|h| h.position)
                    .or(to.hosts.as_ref().map(|h| h.position))
                {
                    self.error(
                        problem(
                            Code::WrongDirection,
                            "to.hosts names destinations, which only egress rules match; an ingress rule's destination is this host",
                            "match the sender's address with from.hosts",
                        ),
                        "to.hosts",
                        at,
                    );
                    None
                } else {
                    Some(AddressSet::any())
                }
            }
        };
        let (ports, port_field) = match (&to.port, &to.ports) {
            (Some(_), Some(p)) => {
                self.error(
                    problem(
                        Code::ConflictingFields,
                        "both to.port and to.ports are given",
                        "use to.ports with a list",
                    ),
                    "to.ports",
                    p.position,
                );
                (None, None)
            }
            (Some(p), None) => (self.port_set(p, "to.port"), Some((p.position, "to.port"))),
            (None, Some(p)) => (self.port_set(p, "to.ports"), Some((p.position, "to.ports"))),
            (None, None) => (Some(PortSet::any()), None),
        };
        let protocol = match (&to.protocol, port_field) {
            (None, Some(_)) => Protocol::Tcp,
            (None, None) => Protocol::Any,
            (Some(p), None) => p.value,
            (Some(p), Some((at, field))) => {
                if !p.value.has_ports() {
                    self.error(
                        problem(
                            Code::PortWithoutProtocol,
                            format!("ports are given but protocol '{}' has no ports", p.value),
                            "use protocol tcp, udp or both with ports, or drop the ports",
                        ),
                        field,
                        at,
                    );
                    return (destinations, None, None);
                }
                p.value
            }
        };
        (destinations, ports, Some(protocol))
    }

    /// Warnings on a valid policy: shadowed rules, unprotected SSH, unpreserved established.
    fn warnings(&mut self, policy: &Policy, config: &Config, gather: shadow::Gather) {
        self.rule = None;
        self.index = None;
        let settings = &policy.settings;
        let setting_at = |f: fn(&crate::config::SettingsConfig) -> Option<Position>| {
            config.settings.as_ref().and_then(f)
        };
        for (victim, by) in shadow::shadowed(policy, gather) {
            let rule = &policy.rules[victim];
            let (message, help) = match by {
                Shadower::Rule(i) => {
                    let earlier = &policy.rules[i];
                    let line = earlier
                        .provenance
                        .0
                        .map_or(String::new(), |p| format!(" (line {})", p.line));
                    (
                        format!(
                            "can never match: rule '{}'{line} comes first and matches everything this rule does",
                            earlier.name
                        ),
                        format!("remove it, or give it a lower priority than '{}'", earlier.name),
                    )
                }
                Shadower::SshFailsafe => (
                    format!(
                        "can never match: the SSH failsafe accepts inbound TCP to port {} before any rule",
                        settings.ssh_ports
                    ),
                    "SSH stays open while preserve_ssh is true; set preserve_ssh: false (and allow SSH explicitly) to control it with rules".to_owned(),
                ),
            };
            let (code, message, help) = problem(Code::ShadowedRule, message, help);
            let d = Diagnostic::warning(code, message)
                .with_rule(Some(rule.name.as_str()))
                .at(rule.provenance.0)
                .with_help(help);
            self.diags.push(d);
        }
        if !settings.preserve_ssh && settings.default_policy == DefaultPolicy::Deny {
            let allowed = |port: u16| {
                policy.rules.iter().any(|r| {
                    r.direction == Direction::Ingress
                        && r.action == Action::Allow
                        && r.protocol().includes_tcp()
                        && r.ports().contains(Some(port))
                })
            };
            let ranges = settings.ssh_ports.ranges().unwrap_or(&[]);
            if let Some(port) = ranges.iter().map(|r| r.first()).find(|&p| !allowed(p)) {
                self.warn(
                    problem(
                        Code::SshUnprotected,
                        format!("preserve_ssh is false and no ingress rule allows TCP to port {port}: applying this policy can lock you out of this host"),
                        format!("add an ingress rule allowing tcp port {port}, or set preserve_ssh: true"),
                    ),
                    "settings.preserve_ssh",
                    setting_at(|s| s.preserve_ssh.as_ref().and_then(|b| b.position)),
                );
            }
        }
        if !settings.preserve_established {
            self.warn(
                problem(
                    Code::EstablishedNotPreserved,
                    "established and related traffic is no longer accepted before the rules: replies must be allowed by rules, or connections fail",
                    "keep preserve_established: true unless every reply path has a rule",
                ),
                "settings.preserve_established",
                setting_at(|s| s.preserve_established.as_ref().and_then(|b| b.position)),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{cidr, dotted_quad, hex_groups, parse_ip};
    use crate::diagnostic::Code;
    use crate::policy::{Identity, Policy};
    use crate::resolve::MockNameResolver;
    use crate::resolve::StaticResolver;
    use crate::{Error, Rule};
    use ipnet::IpNet;
    use mockall::predicate::eq;
    use proptest::prelude::*;

    /// `address/prefix` split at its slash, as `host` splits it, then read by `cidr`.
    fn parse_cidr(text: &str) -> Option<IpNet> {
        text.split_once('/')
            .and_then(|(addr, prefix)| cidr(addr, prefix))
    }

    fn egress(name: &str, from: &str) -> String {
        format!("  - {{name: {name}, from: {{{from}}}, to: {{port: 80}}, action: allow}}\n")
    }

    /// Each name is asked of the resolver once per load, however many rules use it, and every
    /// rule naming it gets the same answer and shares the one copy of the name.
    #[test]
    fn each_user_and_group_name_is_resolved_once_per_load_and_shared() {
        let mut resolver = MockNameResolver::new();
        resolver
            .expect_uid()
            .with(eq("web"))
            .times(1)
            .return_const(Some(1001));
        resolver
            .expect_gid()
            .with(eq("ops"))
            .times(1)
            .return_const(Some(2001));
        let mut yaml = String::from("version: \"1.0\"\nrules:\n");
        for i in 0..3 {
            yaml += &egress(&format!("w{i}"), "user: web");
            yaml += &egress(&format!("o{i}"), "group: ops");
        }
        let loaded = Policy::from_yaml(&yaml, "t.yaml", &resolver).unwrap();
        let names: Vec<(u32, &std::sync::Arc<str>)> = loaded
            .policy
            .rules()
            .iter()
            .map(Rule::identity)
            .filter_map(|i| match i {
                Identity::User { uid, name: Some(n) }
                | Identity::Group {
                    gid: uid,
                    name: Some(n),
                } => Some((*uid, n)),
                _ => None,
            })
            .collect();
        assert_eq!(names.len(), 6);
        for (i, (id, name)) in names.iter().enumerate() {
            let (first_id, first) = names[i % 2];
            assert_eq!(*id, first_id);
            assert!(std::sync::Arc::ptr_eq(name, first), "{name}");
        }
        assert_eq!(names[0].0, 1001);
        assert_eq!(&**names[1].1, "ops");
    }

    /// A list of two networks is checked for overlap like a longer one (it has a path of its
    /// own): within a family, not across.
    #[test]
    fn two_host_lists_warn_about_overlap_within_a_family() {
        let overlaps = |hosts: &str| {
            let yaml = format!(
                "version: \"1.0\"\nrules:\n  - {{name: r, from: {{uid: 1}}, to: {{hosts: {hosts}}}, action: allow}}\n"
            );
            let loaded = Policy::from_yaml(&yaml, "t.yaml", &StaticResolver::new());
            loaded.map(|l| {
                l.warnings
                    .items
                    .iter()
                    .filter(|d| d.code == Code::OverlappingHosts)
                    .count()
            })
        };
        assert_eq!(overlaps("[10.0.0.0/8, 10.1.2.3]").ok(), Some(1));
        assert_eq!(overlaps("[\"fd00::1\", \"fd00::/8\"]").ok(), Some(1));
        assert_eq!(overlaps("[10.0.0.1, 10.0.0.1]").ok(), Some(1));
        // Spaces around a quoted address are not part of it.
        assert_eq!(overlaps("[\" 10.0.0.1\", \"10.0.0.1\\t\"]").ok(), Some(1));
        assert_eq!(overlaps("[10.0.0.0/8, \"fd00::/8\"]").ok(), Some(0));
        assert_eq!(
            overlaps("[\"::ffff:0:0/96\", 0.0.0.0/0]").map_err(|_| ()),
            Err(())
        );
    }

    /// Descriptions are plain text: tabs and newlines are kept, control characters (C0, DEL,
    /// C1) and texts over 1024 bytes are refused; short and long ones read back the same.
    #[test]
    fn descriptions_are_checked_and_kept_whatever_their_length() {
        let load_yaml = |description: &str| {
            let yaml = format!(
                "version: \"1.0\"\nrules:\n  - name: r\n    description: {description}\n    from: {{uid: 1}}\n    action: allow\n"
            );
            Policy::from_yaml(&yaml, "t.yaml", &StaticResolver::new())
        };
        let load = |text: &str| load_yaml(&serde_json::to_string(text).unwrap_or_default());
        let long = "a".repeat(1024);
        for text in [
            "",
            "web to its cache",
            "a tab\tand a\nnewline, café",
            &long,
            &long[..23],
        ] {
            let loaded = load(text).map_err(|e| format!("{e:?}"));
            let kept = loaded.map(|l| l.policy.rules()[0].description().map(str::to_owned));
            assert_eq!(kept, Ok(Some(text.to_owned())), "{text:?}");
        }
        // Written with YAML's escapes (`\a` bell, `\x7f` DEL, `\N` next line): YAML does not
        // allow them raw.
        for text in [
            "\"bell\\a\"",
            "\"del\\x7f\"",
            "\"next line\\N\"",
            &"a".repeat(1025),
        ] {
            let Err(Error::Invalid(d)) = load_yaml(text) else {
                panic!("{text:?} was accepted");
            };
            let codes: Vec<_> = d
                .items
                .iter()
                .map(|d| (d.code, d.field.as_deref()))
                .collect();
            assert_eq!(
                codes,
                [(Code::UnsafeCharacters, Some("description"))],
                "{text:?}"
            );
        }
    }

    /// An unknown name is asked once too, and still reported in every rule that uses it.
    #[test]
    fn an_unknown_name_is_reported_in_every_rule_but_looked_up_once() {
        let mut resolver = MockNameResolver::new();
        resolver
            .expect_uid()
            .with(eq("ghost"))
            .times(1)
            .return_const(None);
        let yaml = format!(
            "version: \"1.0\"\nrules:\n{}{}",
            egress("a", "user: ghost"),
            egress("b", "user: ghost")
        );
        let Err(Error::Invalid(d)) = Policy::from_yaml(&yaml, "t.yaml", &resolver) else {
            panic!("an unknown user must fail the load");
        };
        let rules: Vec<Option<&str>> = d
            .errors()
            .filter(|d| d.code == Code::UnknownUser)
            .map(|d| d.rule.as_deref())
            .collect();
        assert_eq!(rules, [Some("a"), Some("b")]);
    }

    proptest! {
        /// Whatever the hand-written IPv4 reader accepts, std accepts as the same address; and
        /// the address parser as a whole agrees with std everywhere.
        #[test]
        fn the_dotted_quad_reader_agrees_with_std(text in "[0-9.]{0,17}|[0-9a-f:.]{0,12}") {
            let std_ip = text.parse::<std::net::IpAddr>().ok();
            if let Some(v4) = dotted_quad(&text) {
                prop_assert_eq!(std_ip, Some(std::net::IpAddr::V4(v4)));
            }
            prop_assert_eq!(parse_ip(&text), std_ip);
        }
    }

    proptest! {
        /// The same for the hand-written IPv6 reader, on texts made of hex groups, colons and
        /// the occasional dot.
        #[test]
        fn the_hex_group_reader_agrees_with_std(
            groups in prop::collection::vec("[0-9a-fA-F]{0,5}", 0..10),
            gaps in prop::collection::vec(prop::sample::select(vec![":", "::", ":::", "."]), 0..10),
        ) {
            let mut text = String::new();
            for (i, g) in groups.iter().enumerate() {
                if i > 0 {
                    text += gaps.get(i).copied().unwrap_or(":");
                }
                text += g;
            }
            let std_ip = text.parse::<std::net::IpAddr>().ok();
            if let Some(v6) = hex_groups(&text) {
                prop_assert_eq!(std_ip, Some(std::net::IpAddr::V6(v6)), "{}", text);
            }
            prop_assert_eq!(parse_ip(&text), std_ip, "{}", text);
        }
    }

    #[test]
    fn the_hex_group_reader_takes_plain_ipv6_and_leaves_the_rest_to_std() {
        for t in [
            "::",
            "::1",
            "fd00::",
            "fd00:1:2::",
            "2001:DB8::9:a",
            "1:2:3:4:5:6:7:8",
            "1::8",
            "1:2:3:4:5:6:7::",
        ] {
            assert_eq!(
                hex_groups(t).map(std::net::IpAddr::V6),
                t.parse().ok(),
                "{t}"
            );
        }
        for t in [
            "::ffff:1.2.3.4",
            "fe80::1%eth0",
            "1:2:3:4:5:6:7:8:9",
            "1::2::3",
            ":1::",
            "12345::",
            "1:2:3:4:5:6:7:8::",
            "",
        ] {
            assert_eq!(hex_groups(t), None, "{t}");
        }
    }

    #[test]
    fn the_dotted_quad_reader_takes_canonical_addresses_and_leaves_the_rest_to_std() {
        for t in ["0.0.0.0", "10.0.0.1", "255.255.255.255", "192.168.100.9"] {
            assert_eq!(dotted_quad(t), t.parse().ok(), "{t}");
        }
        for t in [
            "256.0.0.1",
            "01.0.0.1",
            "1.2.3",
            "1.2.3.4.",
            "1.2.3.4 ",
            "1..2.3",
            "1000.0.0.1",
            "::1",
        ] {
            assert_eq!(dotted_quad(t), None, "{t}");
        }
    }

    /// The std-based CIDR parser accepts what `ipnet`'s does, except IPv4 octets with leading
    /// zeros: std refuses them (some tools read `010` as octal 8), as it does for a plain
    /// address, so `010.0.0.0/8` and `010.0.0.1` are refused alike.
    #[test]
    fn cidr_parsing_agrees_with_ipnet_but_refuses_leading_zero_octets() {
        for t in ["010.0.0.0/8", "10.00.0.0/16"] {
            assert!(t.parse::<IpNet>().is_ok() && parse_cidr(t).is_none(), "{t}");
            let plain = t.split('/').next().unwrap_or_default();
            assert!(plain.parse::<std::net::IpAddr>().is_err(), "{plain}");
        }
        let inputs = [
            "10.0.0.0/8",
            "10.0.0.1/32",
            "0.0.0.0/0",
            "fd00::/8",
            "::/0",
            "::1/128",
            "::ffff:1.2.3.4/96",
            "10.0.0.0/33",
            "fd00::/129",
            "10.0.0.0/",
            "/8",
            "10.0.0.0/+8",
            "10.0.0.0/-8",
            "10.0.0.0/08",
            "10.0.0.0/0008",
            "10.0.0.0/8/8",
            "10.0.0.0 /8",
            "10.0.0.0/ 8",
            "10.0.0/8",
            "fe80::1%eth0/64",
            "1.2.3.4.5/8",
            "[::1]/128",
            "10.0.0.0/255",
            "10.0.0.0/256",
        ];
        for t in inputs {
            assert_eq!(parse_cidr(t), t.parse::<IpNet>().ok(), "{t}");
        }
    }
}
