//! Problems found in a configuration, each with the rule, the field, the position and a way out.
//!
//! Parsing and validation never stop at the first problem: they collect every one, so an
//! operator fixes a file in one round instead of one error per run.

use crate::source::Position;
use serde::Serialize;
use std::fmt;

/// How bad a diagnostic is. Any error rejects the whole configuration; warnings do not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The configuration is rejected; nothing reaches a backend.
    Error,
    /// The configuration is accepted, but probably does not do what its author meant.
    Warning,
}

/// A stable, machine-readable name for each kind of problem (printed in brackets and in JSON).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Code {
    /// The file is not well-formed YAML.
    YamlSyntax,
    /// The file is larger than zt reads, or expands (through aliases) beyond the node budget.
    TooLarge,
    /// The file holds no document.
    Empty,
    /// A value has the wrong YAML type (a list where a mapping belongs, text where a number does).
    WrongType,
    /// A key zt does not know. Never ignored: a typo must not silently weaken a policy.
    UnknownKey,
    /// The same key twice in one mapping.
    DuplicateKey,
    /// A required field is absent.
    MissingField,
    /// A value outside its set of allowed words (`action: permit`).
    UnknownValue,
    /// `version` is not one zt understands.
    UnsupportedVersion,
    /// A rule name that is empty.
    EmptyName,
    /// A rule name with characters that cannot travel into every backend.
    InvalidName,
    /// Two rules with the same name.
    DuplicateName,
    /// A `from` with more than one identity selector.
    ConflictingSelectors,
    /// An egress rule with no identity selector.
    MissingSelector,
    /// An ingress rule that tries to match the receiving process.
    IngressIdentity,
    /// A field that does not apply to the rule's direction.
    WrongDirection,
    /// A user name that does not resolve on this host.
    UnknownUser,
    /// A group name that does not resolve on this host.
    UnknownGroup,
    /// A uid or gid outside 0..=4294967294.
    IdOutOfRange,
    /// A malformed or unsafe cgroup path.
    InvalidCgroup,
    /// A port of 0 or above 65535.
    PortOutOfRange,
    /// A range whose first port is above its last.
    InvertedRange,
    /// A port given where the protocol has none (`icmp`, `any`).
    PortWithoutProtocol,
    /// `port` and `ports` (or `host` and `hosts`) both given.
    ConflictingFields,
    /// An empty list where at least one element is needed.
    EmptyList,
    /// Not an IPv4/IPv6 address or CIDR.
    InvalidAddress,
    /// A CIDR with bits set after the prefix.
    HostBitsSet,
    /// A host name where an address belongs.
    HostnameNotAllowed,
    /// An IPv4-mapped IPv6 address, which never appears on the wire.
    MappedAddress,
    /// A priority outside the 32-bit signed range.
    PriorityOutOfRange,
    /// A log prefix longer than the tightest backend allows.
    LogPrefixTooLong,
    /// A fleet selector label or value that is empty, too long or has unsafe characters.
    InvalidLabel,
    /// A fleet `order` outside the 32-bit signed range.
    OrderOutOfRange,
    /// A log prefix or text field with characters that would corrupt a log line.
    UnsafeCharacters,
    /// A `log_rate` that is not `N/second|minute|hour|day`.
    InvalidRate,
    /// Warning: SSH is unprotected (`preserve_ssh: false` without an ingress allow).
    SshUnprotected,
    /// Warning: `preserve_established: false`.
    EstablishedNotPreserved,
    /// Warning: a rule that can never match because an earlier entry matches all it would.
    ShadowedRule,
    /// Warning: overlapping or duplicate addresses in one list.
    OverlappingHosts,
}

impl Code {
    /// The kebab-case name printed with the diagnostic.
    pub fn as_str(self) -> &'static str {
        use Code::*;
        match self {
            YamlSyntax => "yaml-syntax",
            TooLarge => "too-large",
            Empty => "empty",
            WrongType => "wrong-type",
            UnknownKey => "unknown-key",
            DuplicateKey => "duplicate-key",
            MissingField => "missing-field",
            UnknownValue => "unknown-value",
            UnsupportedVersion => "unsupported-version",
            EmptyName => "empty-name",
            InvalidName => "invalid-name",
            DuplicateName => "duplicate-name",
            ConflictingSelectors => "conflicting-selectors",
            MissingSelector => "missing-selector",
            IngressIdentity => "ingress-identity",
            WrongDirection => "wrong-direction",
            UnknownUser => "unknown-user",
            UnknownGroup => "unknown-group",
            IdOutOfRange => "id-out-of-range",
            InvalidCgroup => "invalid-cgroup",
            PortOutOfRange => "port-out-of-range",
            InvertedRange => "inverted-range",
            PortWithoutProtocol => "port-without-protocol",
            ConflictingFields => "conflicting-fields",
            EmptyList => "empty-list",
            InvalidAddress => "invalid-address",
            HostBitsSet => "host-bits-set",
            HostnameNotAllowed => "hostname-not-allowed",
            MappedAddress => "mapped-address",
            PriorityOutOfRange => "priority-out-of-range",
            LogPrefixTooLong => "log-prefix-too-long",
            InvalidLabel => "invalid-label",
            OrderOutOfRange => "order-out-of-range",
            UnsafeCharacters => "unsafe-characters",
            InvalidRate => "invalid-rate",
            SshUnprotected => "ssh-unprotected",
            EstablishedNotPreserved => "established-not-preserved",
            ShadowedRule => "shadowed-rule",
            OverlappingHosts => "overlapping-hosts",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem: what, where (rule, field, position) and what would be valid.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Stable name of the problem.
    pub code: Code,
    /// The policy rule it concerns, when one does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// The field inside the rule or the settings (`to.port`, `settings.log_prefix`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Where in the file, when the configuration came from one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<Position>,
    /// What is wrong.
    pub message: String,
    /// What would be valid, or how to get out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

impl Diagnostic {
    /// An error with a message; add context with the `with_*` methods.
    pub fn error(code: Code, message: impl Into<String>) -> Self {
        Self::new(Severity::Error, code, message)
    }

    /// A warning with a message; add context with the `with_*` methods.
    pub fn warning(code: Code, message: impl Into<String>) -> Self {
        Self::new(Severity::Warning, code, message)
    }

    fn new(severity: Severity, code: Code, message: impl Into<String>) -> Self {
        Self {
            severity,
            code,
            rule: None,
            field: None,
            position: None,
            message: message.into(),
            help: None,
        }
    }

    /// The rule this diagnostic concerns.
    pub fn with_rule(mut self, rule: Option<&str>) -> Self {
        self.rule = rule.map(str::to_owned);
        self
    }

    /// The field this diagnostic concerns.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// Where in the file.
    pub fn at(mut self, position: Option<Position>) -> Self {
        self.position = position;
        self
    }

    /// What would be valid.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// True for errors (which reject the configuration).
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Every diagnostic of one configuration, with the name of the file they refer to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Diagnostics {
    /// The file name printed before each position (`rules.yaml:12:7`).
    pub source: String,
    /// The diagnostics, sorted by position (those without a position last).
    pub items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// Diagnostics for `source`, sorted into file order.
    pub fn new(source: impl Into<String>, mut items: Vec<Diagnostic>) -> Self {
        // Stable: diagnostics at one position keep the order they were found in.
        items.sort_by_key(|d| (d.position.is_none(), d.position));
        Self {
            source: source.into(),
            items,
        }
    }

    /// True when at least one diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.items.iter().any(Diagnostic::is_error)
    }

    /// The errors only.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter().filter(|d| d.is_error())
    }

    /// The warnings only.
    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter().filter(|d| !d.is_error())
    }

    /// True when there is nothing to report.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{severity}[{}]: ", self.code)?;
        if let Some(rule) = &self.rule {
            write!(f, "rule '{rule}': ")?;
        }
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)?;
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Diagnostics {
    /// One block per diagnostic: `file:line:column: severity[code]: rule 'x': field: message`,
    /// then an indented `help:` line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let errors = self.errors().count();
        let warnings = self.items.len() - errors;
        for (i, d) in self.items.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            match d.position {
                Some(p) => write!(f, "{}:{}: {d}", self.source, p)?,
                None => write!(f, "{}: {d}", self.source)?,
            }
        }
        if !self.items.is_empty() {
            writeln!(f)?;
        }
        write!(
            f,
            "{}: {errors} error{}, {warnings} warning{}",
            self.source,
            if errors == 1 { "" } else { "s" },
            if warnings == 1 { "" } else { "s" }
        )
    }
}
