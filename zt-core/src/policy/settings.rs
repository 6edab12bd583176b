//! Global settings: the default verdict, logging, and what zt keeps open before any rule.

use super::{PortRange, PortSet};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// The verdict for traffic that no rule matches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DefaultPolicy {
    /// Default deny: the zero-trust default.
    #[default]
    Deny,
    /// Default allow: rules carve out denials.
    Allow,
}

/// A validated log prefix: at most 29 bytes (iptables' `--log-prefix` limit, the tightest
/// backend) of printable ASCII other than quotes and backslash, so no log line can be forged
/// or broken by it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct LogPrefix(Arc<str>);

/// Longest log prefix accepted, in bytes.
pub const MAX_LOG_PREFIX: usize = 29;

impl LogPrefix {
    /// A prefix, if it is valid; otherwise why not.
    pub fn new(prefix: &str) -> Result<Self, LogPrefixError> {
        if prefix.len() > MAX_LOG_PREFIX {
            return Err(LogPrefixError::TooLong(prefix.len()));
        }
        if let Some(c) = prefix
            .chars()
            .find(|&c| !(' '..='~').contains(&c) || matches!(c, '"' | '\'' | '\\'))
        {
            return Err(LogPrefixError::Character(c));
        }
        Ok(Self(Arc::from(prefix)))
    }

    /// The prefix.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// One of zt's own constant prefixes (valid by construction; checked by a unit test).
    pub(crate) fn trusted(prefix: &'static str) -> Self {
        Self(Arc::from(prefix))
    }
}

/// Why a log prefix was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogPrefixError {
    /// Longer than [`MAX_LOG_PREFIX`] bytes.
    TooLong(usize),
    /// Holds a character that could corrupt a log line.
    Character(char),
}

/// Unit of a log rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RateUnit {
    /// Per second.
    Second,
    /// Per minute.
    Minute,
    /// Per hour.
    Hour,
    /// Per day.
    Day,
}

/// A log rate limit: at most `count` lines per `unit` (with the kernel's default burst of 5).
///
/// Closed (see [the policy module](super#a-new-field-cannot-go-unnoticed)): only
/// [`LogRate::parse`] makes one, so `count` is always in range; backends read it through
/// [`LogRate::parts`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LogRate {
    /// Lines per unit, 1..=10000.
    pub count: u32,
    /// The unit.
    pub unit: RateUnit,
}

impl LogRate {
    /// Parse `N/second|minute|hour|day` (also `/s`, `/min`, `/h`, `/d`); `None` when malformed.
    pub fn parse(text: &str) -> Option<Self> {
        let (n, unit) = text.trim().split_once('/')?;
        let count: u32 = n.trim().parse().ok()?;
        let unit = match unit.trim() {
            "second" | "s" | "sec" => RateUnit::Second,
            "minute" | "min" | "m" => RateUnit::Minute,
            "hour" | "h" => RateUnit::Hour,
            "day" | "d" => RateUnit::Day,
            _ => return None,
        };
        (1..=10_000)
            .contains(&count)
            .then_some(Self { count, unit })
    }

    /// Every field, for a destructuring that names them all.
    pub fn parts(self) -> LogRateParts {
        // No `..`: a new field must be added to the view.
        let LogRate { count, unit } = self;
        LogRateParts { count, unit }
    }
}

/// Every field of a [`LogRate`]: how code outside zt-core reads a rate. Not
/// `#[non_exhaustive]`, so that a field added here fails to compile in every backend that
/// renders a rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogRateParts {
    /// Lines per unit, 1..=10000.
    pub count: u32,
    /// The unit.
    pub unit: RateUnit,
}

impl fmt::Display for LogRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let LogRate { count, unit } = self;
        let unit = match unit {
            RateUnit::Second => "second",
            RateUnit::Minute => "minute",
            RateUnit::Hour => "hour",
            RateUnit::Day => "day",
        };
        write!(f, "{count}/{unit}")
    }
}

/// Global settings, every one resolved to a value.
///
/// Closed: its fields are private, and zt-core's readers of all settings (the ruleset, the
/// export) destructure it naming every field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Settings {
    pub(crate) default_policy: DefaultPolicy,
    pub(crate) log_blocked: bool,
    pub(crate) log_prefix: LogPrefix,
    pub(crate) log_rate: LogRate,
    pub(crate) preserve_ssh: bool,
    pub(crate) ssh_ports: PortSet,
    pub(crate) preserve_established: bool,
}

/// The log prefix used when the configuration sets none.
pub const DEFAULT_LOG_PREFIX: &str = "ZT-BLOCKED: ";

/// The prefix of log lines written by `log: true` on an `allow` rule (blocked traffic uses the
/// configured prefix, so audit tools see every refusal under one prefix).
pub const ALLOWED_LOG_PREFIX: &str = "ZT-ALLOWED: ";

impl Default for Settings {
    fn default() -> Self {
        Self {
            default_policy: DefaultPolicy::Deny,
            log_blocked: true,
            log_prefix: LogPrefix::trusted(DEFAULT_LOG_PREFIX),
            log_rate: LogRate {
                count: 10,
                unit: RateUnit::Second,
            },
            preserve_ssh: true,
            ssh_ports: PortSet::from_ranges(PortRange::single(22)).unwrap_or_else(PortSet::any),
            preserve_established: true,
        }
    }
}

impl Settings {
    /// Verdict for traffic no rule matches.
    pub fn default_policy(&self) -> DefaultPolicy {
        self.default_policy
    }
    /// Whether fall-through denials are logged.
    pub fn log_blocked(&self) -> bool {
        self.log_blocked
    }
    /// Prefix of denial log lines.
    pub fn log_prefix(&self) -> &LogPrefix {
        &self.log_prefix
    }
    /// Rate limit of every log entry.
    pub fn log_rate(&self) -> LogRate {
        self.log_rate
    }
    /// Whether inbound SSH is kept open before any rule.
    pub fn preserve_ssh(&self) -> bool {
        self.preserve_ssh
    }
    /// The SSH ports of the failsafe.
    pub fn ssh_ports(&self) -> &PortSet {
        &self.ssh_ports
    }
    /// Whether established and related traffic is accepted before any rule.
    pub fn preserve_established(&self) -> bool {
        self.preserve_established
    }
}
