//! The resolved policy: what a configuration means, checked and normalized.
//!
//! A [`Policy`] only comes out of validation (from YAML, or from [`PolicyBuilder`] in code),
//! so every value in it is one every backend can render: names are safe in comments and
//! logs, ports and addresses are normalized, users and groups are numeric. Its fields are
//! therefore read-only.
//!
//! ## A new field cannot go unnoticed
//!
//! The structs of the policy and of the [`Ruleset`] are `#[non_exhaustive]` or have private
//! fields, so no code outside zt-core builds one (only validation does) or destructures one
//! with a pattern that names every field. Every reader must handle every field: validation,
//! the shadow search, the evaluator, the export to YAML, the ruleset's display and each
//! backend's compiler. Inside zt-core they destructure the structs themselves, naming every
//! field (`field: _` for one they deliberately ignore) and never writing `..`.
//!
//! Outside zt-core, Rust only allows a `#[non_exhaustive]` struct to be destructured *with*
//! `..`, which is exactly the pattern that lets a new field pass unnoticed. So each struct a
//! backend reads field by field offers a `parts()` view: a plain struct of its fields,
//! borrowed, built inside zt-core by a full destructure ([`RuleMatch::parts`],
//! [`AddressSet::parts`], [`PortRange::parts`], [`LogRate::parts`],
//! [`crate::Entry::parts`], [`crate::ruleset::LogSpec::parts`]). The views are not
//! `#[non_exhaustive]`, and every compiler destructures them without `..`. A field added to
//! `RuleMatch` then fails to compile in `RuleMatch::parts`; once added to the view, it fails
//! in every backend that has not said what it does with it. A view can be built by anyone,
//! which is harmless: nothing turns a view back into the struct.
//!
//! Enums stay exhaustive for the same reason: a `match` outside zt-core then fails to compile
//! on a new variant instead of falling into a wildcard arm.

mod address;
mod builder;
pub(crate) mod export;
mod identity;
mod parallel;
mod port;
mod rule;
mod settings;
pub(crate) mod shadow;
mod short_list;
mod unique;
mod validate;

pub use address::{AddressSet, AddressSetParts, Addresses, Family};
pub use builder::{PolicyBuilder, RuleBuilder};
pub use identity::{CgroupPath, Identity};
pub use port::{PortRange, PortRangeParts, PortSet};
pub use rule::{
    Action, Direction, MAX_QUALIFIED_RULE_NAME, MAX_RULE_NAME, Protocol, Rule, RuleMatch,
    RuleMatchParts, RuleName,
};
pub use settings::{
    ALLOWED_LOG_PREFIX, DEFAULT_LOG_PREFIX, DefaultPolicy, LogPrefix, LogPrefixError, LogRate,
    LogRateParts, MAX_LOG_PREFIX, RateUnit, Settings,
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
    /// Where the policy applies in a fleet (`selector:`, `order:`); only a fleet agent acts
    /// on it.
    pub scope: crate::fleet::Scope,
    /// Which settings the file wrote itself, for composing it with other policies.
    pub written: crate::fleet::WrittenSettings,
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
    /// A large text (512 KiB or more, about 4 000 rules) on a machine with more than one CPU is
    /// read on a second, scoped thread while the calling thread decodes and validates the rules
    /// read so far; the thread has ended when this returns. The result is the same either way.
    pub fn from_yaml(
        text: &str,
        source: &str,
        resolver: &dyn NameResolver,
    ) -> Result<Loaded, Error> {
        validate::load_str(text, source, resolver)
    }

    /// Read a configuration file and load it as [`Policy::from_yaml`] does.
    ///
    /// The file is read through [`crate::input::Input`]: a regular file or a pipe, never more
    /// than [`crate::yaml::MAX_INPUT_BYTES`] of it (more is the `too-large` diagnostic), and a
    /// device, a directory or a FIFO with no writer is refused at once ([`Error::Read`]).
    pub fn from_file(path: &std::path::Path, resolver: &dyn NameResolver) -> Result<Loaded, Error> {
        let input = crate::input::Input::open(path).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
        let name = path.display().to_string();
        Self::from_bytes(input.read_policy(&name)?, &name, resolver)
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
