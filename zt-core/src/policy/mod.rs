//! The resolved policy: what a configuration means, checked and normalized.
//!
//! A [`Policy`] only comes out of validation (from YAML, or from [`PolicyBuilder`] in code),
//! so every value in it is one every backend can render: names are safe in comments and
//! logs, ports and addresses are normalized, users and groups are numeric. Its fields are
//! therefore read-only.

mod address;
mod builder;
mod export;
mod identity;
mod parallel;
mod port;
mod rule;
mod settings;
pub(crate) mod shadow;
mod short_list;
mod unique;
mod validate;

pub use address::{AddressSet, Addresses, Family};
pub use builder::{PolicyBuilder, RuleBuilder};
pub use identity::{CgroupPath, Identity};
pub use port::{PortRange, PortSet};
pub use rule::{Action, Direction, MAX_RULE_NAME, Protocol, Rule, RuleMatch, RuleName};
pub use settings::{
    ALLOWED_LOG_PREFIX, DEFAULT_LOG_PREFIX, DefaultPolicy, LogPrefix, LogPrefixError, LogRate,
    MAX_LOG_PREFIX, RateUnit, Settings,
};
pub use short_list::ShortList;

use crate::diagnostic::Diagnostics;
use crate::resolve::NameResolver;
use crate::{Error, Ruleset};
use serde::Serialize;
use std::fmt;
use std::sync::Arc;

/// A validated, resolved policy: settings and rules in file order.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct Policy {
    settings: Settings,
    /// Shared with the policy's rulesets, whose entries read each rule's match from here.
    rules: Arc<Vec<Rule>>,
    /// No rule has a lower priority than one before it: file order is evaluation order.
    #[serde(skip)]
    in_file_order: bool,
}

impl fmt::Debug for Policy {
    /// Settings and rules; what is derived from them is left out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Policy")
            .field("settings", &self.settings)
            .field("rules", &self.rules)
            .finish()
    }
}

/// A policy that passed validation, with the warnings validation raised.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The policy.
    pub policy: Policy,
    /// Warnings (never errors): shadowed rules, unprotected SSH, overlapping hosts.
    pub warnings: Diagnostics,
}

impl Policy {
    /// Start building a policy in code.
    pub fn builder() -> PolicyBuilder {
        PolicyBuilder::new()
    }

    /// Parse, validate and resolve a YAML configuration. `source` names the file in diagnostics.
    ///
    /// Every problem is reported at once, as [`Error::Invalid`]; on success the warnings come
    /// with the policy.
    ///
    /// A large text (64 KiB or more, about 500 rules) on a machine with more than one CPU is
    /// read on a second, scoped thread while the calling thread validates the rules read so far;
    /// the thread has ended when this returns. The result is the same either way.
    pub fn from_yaml(
        text: &str,
        source: &str,
        resolver: &dyn NameResolver,
    ) -> Result<Loaded, Error> {
        validate::load_str(text, source, resolver)
    }

    /// Read a configuration file and load it as [`Policy::from_yaml`] does.
    pub fn from_file(path: &std::path::Path, resolver: &dyn NameResolver) -> Result<Loaded, Error> {
        let bytes = std::fs::read(path).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_bytes(bytes, &path.display().to_string(), resolver)
    }

    /// Read a policy from raw bytes named `source` (a file's contents): bytes that are not
    /// UTF-8 are reported with the line and column of the first bad byte.
    pub fn from_bytes(
        bytes: Vec<u8>,
        source: &str,
        resolver: &dyn NameResolver,
    ) -> Result<Loaded, Error> {
        match String::from_utf8(bytes) {
            Ok(text) => Self::from_yaml(&text, source, resolver),
            Err(e) => Err(validate::not_utf8(source, &e)),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The rules, in file order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Whether file order is evaluation order (see [`shadow::Order`]).
    pub(crate) fn in_file_order(&self) -> bool {
        self.in_file_order
    }

    /// The rules as the ruleset's entries share them.
    pub(crate) fn shared_rules(&self) -> &Arc<Vec<Rule>> {
        &self.rules
    }

    /// The ordered first-match ruleset every backend implements.
    pub fn ruleset(&self) -> Ruleset {
        Ruleset::from_policy(self)
    }
}
