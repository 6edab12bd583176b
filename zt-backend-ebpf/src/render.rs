//! Ruleset → map entries: the pure heart of the backend.
//!
//! [`render`] turns the egress half of a [`Ruleset`] into [`Rendered`] map contents that keep
//! first-match semantics while every lookup is a hash or longest-prefix lookup:
//!
//! * **Groups.** The egress policy rules, in ruleset order, are cut into *groups*: maximal runs
//!   of consecutive rules with the same verdict and the same *shape* — the identity kind (any,
//!   uid, gid, or cgroup at one depth) and the port shape (exact ports, or one inline port
//!   range). The program walks the groups in order and the first group with a matching entry
//!   decides. Because groups are consecutive runs, the first matching group always holds the
//!   first matching rule; within a group every rule has the same verdict, so a group never
//!   needs to know which of its rules came first — except to name the rule for counters, which
//!   the entries below carry.
//! * **Members.** Within a group, a hash map keyed by (identity value, transport, port) — the
//!   port being 0 in range groups — says which rules cover that key: either *every address*
//!   (the deciding rule is in the entry) or an *address list*.
//! * **Address lists.** An LPM trie keyed by (list, family, prefix) whose value is the lowest
//!   rule index among the rules whose prefixes *contain* that prefix. Minima are pushed down
//!   to more specific prefixes at render time, so the longest-prefix answer is the first-match
//!   answer; prefixes whose pushed-down value equals their parent's are dropped. Identical
//!   lists are stored once.
//!
//! Why this layout: the cost of a decision is one array lookup per group walked plus one hash
//! lookup (and at most one LPM lookup) in the group that matches — independent of the number
//! of rules inside a group. A policy of 10 000 uid/port rules with one verdict is one group and
//! 10 000 hash entries: the connect costs the same as with ten rules. The walk is linear in the
//! number of groups, i.e. in how often verdict or shape alternates in the ruleset, bounded by
//! [`crate::layout::MAX_GROUPS`].
//!
//! Port ranges: a range of at most [`EXPAND_PORTS_MAX`] ports is expanded into exact-port
//! entries (at most 128 entries per identity for tcp+udp, a few kilobytes of kernel memory); a
//! larger range becomes its own range group (consecutive rules with the same range share one),
//! which costs one more group visit per decision instead of thousands of entries — 10 000
//! rules with `1024-65535` would otherwise need over a billion entries.

mod assemble;
mod maps;
mod text;

pub use maps::{
    Effect, Group, IdentityKind, Member, PortMatch, Prefix, Rendered, RuleInfo, RuleRef, Target,
    Transport,
};

use crate::EbpfError;
use crate::layout;
use assemble::{Item, PortPart, assemble};
use zt_core::policy::{PortRangeParts, RuleMatchParts};
use zt_core::ruleset::{EntryParts, Origin, names};
use zt_core::{Capabilities, CgroupPath, Hook, Identity, Matcher, Protocol, RuleMatch, Ruleset};

/// Largest port range expanded into exact-port entries; larger ranges get a range group.
pub const EXPAND_PORTS_MAX: u32 = 64;

/// Cgroup ids by path: what a cgroup identity resolves to at render time.
///
/// The program compares `bpf_get_current_ancestor_cgroup_id(level)` with the id (the inode
/// number of the cgroup v2 directory), so a rule naming a cgroup needs that cgroup to exist
/// when the policy is rendered.
pub trait CgroupIds {
    /// The id of the cgroup at `path` (relative to the cgroup v2 root), if it exists.
    fn cgroup_id(&self, path: &CgroupPath) -> Option<u64>;
}

/// What the program does with a call: let it through, or fail it with EPERM.
/// The reason given for ingress rules.
pub const INGRESS_REASON: &str =
    "it enforces egress at connect/sendmsg only; use the nft or iptables backend for inbound rules";

/// The reason given for ICMP rules.
pub const ICMP_REASON: &str = "ICMP never reaches the connect/sendmsg hooks it enforces at; use the nft or iptables backend for ICMP rules";

/// What the socket hooks can enforce: no ingress rules, no ICMP rules. The backend declares
/// it ([`zt_core::Driver::supports`]), and [`render`] checks it the same way, so a rule is
/// refused with the same error however the rendering is reached.
pub const CAPABILITIES: Capabilities = Capabilities::all()
    .without_ingress(INGRESS_REASON)
    .without_icmp(ICMP_REASON);

/// Render the egress half of `ruleset` into map contents.
///
/// Refuses (with [`EbpfError::Unsupported`] naming the rule) ingress rules and ICMP rules,
/// which the socket hooks cannot see ([`CAPABILITIES`]); fails when a cgroup a rule names does
/// not exist or the policy does not fit the maps.
pub fn render(ruleset: &Ruleset, cgroups: &dyn CgroupIds) -> Result<Rendered, EbpfError> {
    if let Some((rule, reason)) = CAPABILITIES.refusal(ruleset) {
        return Err(EbpfError::Unsupported {
            rule: rule.to_owned(),
            reason: reason.to_owned(),
        });
    }
    let mut items = Vec::new();
    let mut rules = Vec::new();
    let mut default = None;
    let mut default_logs = false;
    for (i, entry) in ruleset.entries().iter().enumerate() {
        let EntryParts {
            name,
            origin,
            hook,
            matcher,
            log,
            verdict,
        } = entry.parts();
        let index = u32::try_from(i).unwrap_or(u32::MAX);
        let rule = RuleRef {
            index,
            log: log.is_some(),
        };
        let m = match matcher {
            Matcher::Rule(m) => m,
            // Conntrack states, loopback and ICMPv6 never apply to a connect or send: a socket
            // call is always a new flow, and these entries are documented as left to the host
            // firewall.
            Matcher::CtInvalid
            | Matcher::CtEstablished
            | Matcher::Loopback
            | Matcher::Icmpv6Link
            | Matcher::SshReplies(_) => continue,
        };
        match (origin, hook) {
            // Inbound policy rules were refused above (CAPABILITIES); zt's own inbound entries
            // (the SSH failsafe) are left to the host firewall, as all inbound traffic is.
            (_, Hook::Ingress) => {}
            // The log and the default match every call: the program's fallback when no group
            // matches, rather than a group of their own.
            (Origin::Epilogue, _) if m.matches_everything() => match verdict {
                None => default_logs = true,
                Some(verdict) => {
                    check_index(index, name)?;
                    let effect = Effect::from(verdict);
                    let rule = RuleRef {
                        index,
                        log: rule.log || default_logs,
                    };
                    rules.push(RuleInfo {
                        index,
                        name: name.to_owned(),
                        effect,
                        log: rule.log,
                    });
                    default = Some((rule, effect));
                    break;
                }
            },
            (Origin::Rule(_) | Origin::Prologue | Origin::Epilogue, _) => {
                let Some(verdict) = verdict else {
                    continue;
                };
                check_index(index, name)?;
                let effect = Effect::from(verdict);
                rules.push(RuleInfo {
                    index,
                    name: name.to_owned(),
                    effect,
                    log: rule.log,
                });
                items.extend(rule_items(m, rule, effect, name, cgroups)?);
            }
        }
    }
    let (default_rule, default_effect) = match default {
        Some(d) => d,
        // A Ruleset always ends with zt:default; stay total rather than panic.
        None => {
            let index = u32::try_from(ruleset.entries().len().saturating_sub(1)).unwrap_or(0);
            let effect = Effect::from(ruleset.default_verdict());
            rules.push(RuleInfo {
                index,
                name: names::DEFAULT.to_owned(),
                effect,
                log: false,
            });
            (RuleRef { index, log: false }, effect)
        }
    };
    let (groups, members, prefixes) = assemble(&items)?;
    Ok(Rendered {
        default_rule,
        default_effect,
        groups,
        members,
        prefixes,
        rules,
    })
}

/// The items of one egress rule match, deciding `effect` as `rule`.
fn rule_items<'a>(
    m: &'a RuleMatch,
    rule: RuleRef,
    effect: Effect,
    name: &str,
    cgroups: &dyn CgroupIds,
) -> Result<Vec<Item<'a>>, EbpfError> {
    let RuleMatchParts {
        identity,
        peers,
        ports,
        protocol,
    } = m.parts();
    let transports: &'static [Transport] = match protocol {
        Protocol::Tcp => &[Transport::Tcp],
        Protocol::Udp => &[Transport::Udp],
        Protocol::Both => &[Transport::Tcp, Transport::Udp],
        Protocol::Any => &[Transport::Tcp, Transport::Udp, Transport::Other],
        // No connect or sendmsg call is ICMP, so an ICMP match has nothing to decide here
        // (policy rules of protocol icmp were refused by render, CAPABILITIES).
        Protocol::Icmp => return Ok(Vec::new()),
    };
    let (kind, identity) = identity_key(identity, name, cgroups)?;
    Ok(port_parts(ports)
        .into_iter()
        .map(|ports| Item {
            rule,
            effect,
            kind,
            identity,
            transports,
            ports,
            peers,
        })
        .collect())
}

fn check_index(index: u32, name: &str) -> Result<(), EbpfError> {
    within(
        "ruleset entries",
        u64::from(index) + 1,
        layout::MAX_RULES,
        Some(name),
    )
}

/// `TooLarge` when `needed` entries of `what` exceed the `capacity` of their map.
fn within(
    what: &'static str,
    needed: u64,
    capacity: u32,
    rule: Option<&str>,
) -> Result<(), EbpfError> {
    if needed > u64::from(capacity) {
        return Err(EbpfError::TooLarge {
            what,
            needed,
            capacity: u64::from(capacity),
            rule: rule.map(str::to_owned),
        });
    }
    Ok(())
}

fn identity_key(
    identity: &Identity,
    rule: &str,
    cgroups: &dyn CgroupIds,
) -> Result<(IdentityKind, u64), EbpfError> {
    Ok(match identity {
        Identity::Any => (IdentityKind::Any, 0),
        Identity::User { uid, name: _ } => (IdentityKind::Uid, u64::from(*uid)),
        Identity::Group { gid, name: _ } => (IdentityKind::Gid, u64::from(*gid)),
        Identity::Cgroup(path) => {
            let level = u8::try_from(path.level()).map_err(|_| EbpfError::Unsupported {
                rule: rule.to_owned(),
                reason: format!("cgroup '{path}' is more than 255 levels deep"),
            })?;
            let id = cgroups
                .cgroup_id(path)
                .ok_or_else(|| EbpfError::MissingCgroup {
                    rule: rule.to_owned(),
                    path: path.to_string(),
                })?;
            (IdentityKind::Cgroup { level }, id)
        }
    })
}

/// Split a port set into an exact part (small ranges, expanded) and large ranges.
fn port_parts(ports: &zt_core::PortSet) -> Vec<PortPart> {
    let Some(ranges) = ports.ranges() else {
        return vec![PortPart::Range(0, u16::MAX)];
    };
    let mut exact = Vec::new();
    let mut parts = Vec::new();
    for r in ranges {
        let PortRangeParts { first, last } = r.parts();
        if u32::from(last) - u32::from(first) < EXPAND_PORTS_MAX {
            exact.extend(first..=last);
        } else {
            parts.push(PortPart::Range(first, last));
        }
    }
    if !exact.is_empty() {
        parts.insert(0, PortPart::Exact(exact));
    }
    parts
}

#[cfg(test)]
mod tests;
