//! Warnings on a valid policy: shadowed rules, unprotected SSH, unpreserved established
//! traffic.

use super::{Validator, problem};
use crate::config::Config;
use crate::diagnostic::{Code, Diagnostic};
use crate::policy::shadow::{self, Shadower};
use crate::policy::{Action, DefaultPolicy, Direction, Policy};
use crate::source::Position;

impl Validator<'_> {
    /// Warnings on a valid policy: shadowed rules, unprotected SSH, unpreserved established.
    pub(super) fn warnings(&mut self, policy: &Policy, config: &Config, gather: shadow::Gather) {
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
