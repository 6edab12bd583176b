//! The top of the file and the settings.

use super::{Validator, problem};
use crate::config::text::printable;
use crate::config::{Config, SettingsConfig};
use crate::diagnostic::Code;
use crate::policy::{LogPrefix, LogPrefixError, LogRate, Settings};
use crate::source::Position;

impl Validator<'_> {
    /// Check the top level (version, presence of rules) and resolve the settings. The rules
    /// themselves are validated as they are read.
    pub(super) fn top(&mut self, config: &Config) -> Option<Settings> {
        let Config {
            undecodable,
            has_rules,
            version,
            settings,
            rules: _,
            // Validated with the fleet scope (crate::fleet::Scope::of).
            selector: _,
            order: _,
        } = config;
        self.rule = None;
        self.index = None;
        match version {
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
            None if undecodable.contains(&"version") => {}
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
        if !has_rules && !undecodable.contains(&"rules") {
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
        self.settings(settings.as_ref())
    }

    fn settings(&mut self, sc: Option<&SettingsConfig>) -> Option<Settings> {
        let mut s = Settings::default();
        let Some(SettingsConfig {
            default_policy,
            log_blocked,
            log_prefix,
            log_rate,
            preserve_ssh,
            ssh_ports,
            preserve_established,
        }) = sc
        else {
            return Some(s);
        };
        let mut ok = true;
        if let Some(p) = default_policy {
            s.default_policy = p.value;
        }
        if let Some(b) = log_blocked {
            s.log_blocked = b.value;
        }
        if let Some(b) = preserve_ssh {
            s.preserve_ssh = b.value;
        }
        if let Some(b) = preserve_established {
            s.preserve_established = b.value;
        }
        if let Some(prefix) = log_prefix {
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
        if let Some(rate) = log_rate {
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
        if let Some(ports) = ssh_ports {
            match self.port_set(ports, "settings.ssh_ports") {
                Some(p) if !p.is_any() => s.ssh_ports = p,
                Some(_) => {}
                None => ok = false,
            }
        }
        ok.then_some(s)
    }
}
