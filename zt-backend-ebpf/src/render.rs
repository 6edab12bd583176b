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

use crate::EbpfError;
use crate::layout;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use zt_core::policy::{AddressSetParts, PortRangeParts, RuleMatchParts};
use zt_core::ruleset::{EntryParts, Origin, names};
use zt_core::{
    Addresses, CgroupPath, Hook, Identity, Matcher, Protocol, RuleMatch, Ruleset, Unit, Verdict,
};

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
///
/// Socket-address hooks can only allow or refuse, so zt's `deny` (drop) and `reject` both
/// refuse under this backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    /// The call proceeds.
    Allow,
    /// The call fails with EPERM.
    Refuse,
}

impl From<Verdict> for Effect {
    fn from(v: Verdict) -> Self {
        match v {
            Verdict::Accept => Effect::Allow,
            Verdict::Drop | Verdict::Reject => Effect::Refuse,
        }
    }
}

/// Which identity value a group's member keys hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdentityKind {
    /// Every caller (key value 0).
    Any,
    /// The caller's uid.
    Uid,
    /// The caller's primary gid.
    Gid,
    /// The id of the caller's cgroup ancestor at `level` (the root is level 0).
    Cgroup {
        /// Depth of the rule's cgroup below the cgroup v2 root.
        level: u8,
    },
}

/// How a group matches destination ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PortMatch {
    /// The member key holds the destination port.
    Exact,
    /// The member key holds port 0 and the destination port must lie in this range (port 0
    /// stands for "no port": only `0-65535`, i.e. any port, matches transports without ports).
    Range {
        /// First port, inclusive.
        first: u16,
        /// Last port, inclusive.
        last: u16,
    },
}

/// One group: a run of consecutive rules with one verdict and one shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// What the group decides when it matches.
    pub effect: Effect,
    /// Which identity its member keys hold.
    pub identity: IdentityKind,
    /// How it matches ports.
    pub ports: PortMatch,
}

/// The transport of a member key: TCP, UDP, or any other protocol a socket hook sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// TCP (IP protocol 6).
    Tcp,
    /// UDP (IP protocol 17).
    Udp,
    /// Anything else (SCTP, ping sockets): matched only by protocol `any`, port 0.
    Other,
}

impl Transport {
    /// The key byte the program compares (`ZT_PROTO_*`).
    pub fn code(self) -> u8 {
        match self {
            Transport::Tcp => layout::PROTO_TCP,
            Transport::Udp => layout::PROTO_UDP,
            Transport::Other => layout::PROTO_OTHER,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
            Transport::Other => "other",
        }
    }
}

/// A reference to the ruleset entry that decides: its index (also its counter index) and
/// whether it logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RuleRef {
    /// Index in [`Ruleset::entries`].
    pub index: u32,
    /// Whether allowed calls it decides are recorded in the audit ring buffer (refusals always
    /// are).
    pub log: bool,
}

/// What a member entry points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// Every destination address matches; this rule decides.
    Every(RuleRef),
    /// Look the destination up in this address list (ids start at 1).
    List(u32),
}

/// One entry of the members hash map (generation left out).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Index of the group.
    pub group: u32,
    /// uid, gid, cgroup id, or 0 for any.
    pub identity: u64,
    /// The transport.
    pub transport: Transport,
    /// The destination port (0 in range groups).
    pub port: u16,
    /// Every address, or an address list.
    pub target: Target,
}

/// One entry of the LPM trie of address lists (generation left out).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prefix {
    /// The list it belongs to.
    pub list: u32,
    /// The prefix.
    pub net: IpNet,
    /// The first rule whose prefixes contain it.
    pub rule: RuleRef,
}

/// One entry of the rule table: names counters and audit records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleInfo {
    /// Index in [`Ruleset::entries`].
    pub index: u32,
    /// The policy rule name or `zt:default`.
    pub name: String,
    /// Its effect.
    pub effect: Effect,
    /// Whether it logs.
    pub log: bool,
}

/// The map contents of one generation: everything the programs read, plus the rule table.
///
/// Entries are kept in a canonical order, so two renderings of the same state compare equal,
/// and what [`crate::kernel::Kernel::read`] reads back from the pinned maps compares equal to
/// what was written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rendered {
    /// The rule deciding when no group matches (`zt:default`).
    pub default_rule: RuleRef,
    /// The default's effect.
    pub default_effect: Effect,
    /// Groups, walked in this order.
    pub groups: Vec<Group>,
    /// Members, sorted by (group, identity, transport, port).
    pub members: Vec<Member>,
    /// Address lists, sorted by (list, family, address, prefix length).
    pub prefixes: Vec<Prefix>,
    /// The rule table, sorted by index: every egress policy rule and `zt:default`.
    pub rules: Vec<RuleInfo>,
}

/// The reason given for ingress rules.
pub const INGRESS_REASON: &str =
    "it enforces egress at connect/sendmsg only; use the nft or iptables backend for inbound rules";

/// The reason given for ICMP rules.
pub const ICMP_REASON: &str = "ICMP never reaches the connect/sendmsg hooks it enforces at; use the nft or iptables backend for ICMP rules";

/// One rule's contribution before grouping.
struct Item<'a> {
    rule: RuleRef,
    effect: Effect,
    kind: IdentityKind,
    identity: u64,
    transports: &'static [Transport],
    ports: PortPart,
    peers: &'a zt_core::AddressSet,
}

#[derive(Debug)]
enum PortPart {
    Exact(Vec<u16>),
    Range(u16, u16),
}

/// Render the egress half of `ruleset` into map contents.
///
/// Refuses (with [`EbpfError::Unsupported`] naming the rule) ingress rules and ICMP rules,
/// which the socket hooks cannot see; fails when a cgroup a rule names does not exist or the
/// policy does not fit the maps.
pub fn render(ruleset: &Ruleset, cgroups: &dyn CgroupIds) -> Result<Rendered, EbpfError> {
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
            (Origin::Rule(_), Hook::Ingress) => {
                return Err(EbpfError::Unsupported {
                    rule: name.to_owned(),
                    reason: INGRESS_REASON.to_owned(),
                });
            }
            // zt's own inbound entries (the SSH failsafe) are left to the host firewall, as
            // all inbound traffic is.
            (Origin::Prologue | Origin::Epilogue, Hook::Ingress) => {}
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
        Protocol::Icmp => {
            return Err(EbpfError::Unsupported {
                rule: name.to_owned(),
                reason: ICMP_REASON.to_owned(),
            });
        }
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

type MemberKey = (u32, u64, Transport, u16);

/// Groups, members and prefixes, as [`Rendered`] holds them.
type Tables = (Vec<Group>, Vec<Member>, Vec<Prefix>);

/// Cut items into groups, then build members and address lists.
fn assemble(items: &[Item<'_>]) -> Result<Tables, EbpfError> {
    let mut groups: Vec<Group> = Vec::new();
    // Contributions per member key, in rule order (items come in rule order).
    let mut keys: BTreeMap<MemberKey, Vec<(RuleRef, &zt_core::AddressSet)>> = BTreeMap::new();
    for item in items {
        let ports = match item.ports {
            PortPart::Exact(_) => PortMatch::Exact,
            PortPart::Range(first, last) => PortMatch::Range { first, last },
        };
        let shape = Group {
            effect: item.effect,
            identity: item.kind,
            ports,
        };
        if groups.last() != Some(&shape) {
            within(
                "groups (runs of rules with one verdict and shape)",
                groups.len() as u64 + 1,
                layout::MAX_GROUPS,
                None,
            )?;
            groups.push(shape);
        }
        let group = u32::try_from(groups.len() - 1).unwrap_or(u32::MAX);
        for &transport in item.transports {
            match &item.ports {
                PortPart::Exact(list) => {
                    // Transports without ports never match exact ports.
                    if transport == Transport::Other {
                        continue;
                    }
                    for &port in list {
                        keys.entry((group, item.identity, transport, port))
                            .or_default()
                            .push((item.rule, item.peers));
                    }
                }
                PortPart::Range(..) => keys
                    .entry((group, item.identity, transport, 0))
                    .or_default()
                    .push((item.rule, item.peers)),
            }
        }
    }
    let mut lists: BTreeMap<Vec<(IpNet, RuleRef)>, u32> = BTreeMap::new();
    let mut members = Vec::with_capacity(keys.len());
    let mut prefixes = Vec::new();
    for ((group, identity, transport, port), contributions) in keys {
        let Some(target) = target(&contributions, &mut lists, &mut prefixes) else {
            continue;
        };
        members.push(Member {
            group,
            identity,
            transport,
            port,
            target,
        });
    }
    within(
        "member entries (identity, transport, port)",
        members.len() as u64,
        layout::MAX_MEMBERS / 2,
        None,
    )?;
    within(
        "address prefixes",
        prefixes.len() as u64,
        layout::MAX_PREFIXES / 2,
        None,
    )?;
    Ok((groups, members, prefixes))
}

/// The target of one member key: every address (one rule), or a (shared) address list.
fn target(
    contributions: &[(RuleRef, &zt_core::AddressSet)],
    lists: &mut BTreeMap<Vec<(IpNet, RuleRef)>, u32>,
    prefixes: &mut Vec<Prefix>,
) -> Option<Target> {
    // The first contribution has the lowest rule index; if it covers every address, it wins.
    if let Some((rule, peers)) = contributions.first()
        && peers.is_any()
    {
        return Some(Target::Every(*rule));
    }
    let mut first: BTreeMap<(u8, IpNet), RuleRef> = BTreeMap::new();
    for (rule, peers) in contributions {
        let AddressSetParts { v4, v6 } = peers.parts();
        let v4 = match v4 {
            Addresses::All => vec![IpNet::V4(Ipv4Net::default())],
            Addresses::Only(nets) => nets.iter().map(|&n| IpNet::V4(n)).collect(),
        };
        let v6 = match v6 {
            Addresses::All => vec![IpNet::V6(Ipv6Net::default())],
            Addresses::Only(nets) => nets.iter().map(|&n| IpNet::V6(n)).collect(),
        };
        for net in v4.into_iter().chain(v6) {
            first.entry(sort_key(net)).or_insert(*rule);
        }
    }
    let list = push_down(first);
    if list.is_empty() {
        return None;
    }
    if let [(IpNet::V4(a), ra), (IpNet::V6(b), rb)] = list.as_slice()
        && a.prefix_len() == 0
        && b.prefix_len() == 0
        && ra == rb
    {
        return Some(Target::Every(*ra));
    }
    let next = u32::try_from(lists.len() + 1).unwrap_or(u32::MAX);
    let id = *lists.entry(list.clone()).or_insert_with(|| {
        prefixes.extend(list.iter().map(|&(net, rule)| Prefix {
            list: next,
            net,
            rule,
        }));
        next
    });
    Some(Target::List(id))
}

/// Sort key of a prefix: family, then the network as a 128-bit number, then length — so a
/// prefix comes right before the prefixes it contains.
fn sort_key(net: IpNet) -> (u8, IpNet) {
    (
        match net {
            IpNet::V4(_) => 4,
            IpNet::V6(_) => 6,
        },
        net.trunc(),
    )
}

/// Give every prefix the lowest rule among the prefixes containing it (itself included), and
/// drop prefixes whose answer equals their closest container's (the LPM falls back to it).
fn push_down(first: BTreeMap<(u8, IpNet), RuleRef>) -> Vec<(IpNet, RuleRef)> {
    let mut sorted: Vec<(IpNet, RuleRef)> = first.into_iter().map(|((_, n), r)| (n, r)).collect();
    sorted.sort_by_key(|(n, _)| layout::prefix_order(n));
    let mut out = Vec::with_capacity(sorted.len());
    // Enclosing prefixes of the current one, with their pushed-down answers.
    let mut stack: Vec<(IpNet, RuleRef)> = Vec::new();
    for (net, rule) in sorted {
        while let Some((top, _)) = stack.last() {
            if top.contains(&net) {
                break;
            }
            stack.pop();
        }
        let answer = match stack.last() {
            Some((_, parent)) if parent.index <= rule.index => *parent,
            _ => rule,
        };
        if stack.last().map(|(_, p)| *p) != Some(answer) {
            out.push((net, answer));
        }
        stack.push((net, answer));
    }
    out.sort_by_key(|(n, _)| layout::prefix_order(n));
    out
}

impl Rendered {
    /// The rule table entry of `index`.
    pub fn rule(&self, index: u32) -> Option<&RuleInfo> {
        self.rules
            .binary_search_by_key(&index, |r| r.index)
            .ok()
            .and_then(|i| self.rules.get(i))
    }

    fn rule_name(&self, index: u32) -> String {
        self.rule(index)
            .map_or_else(|| format!("#{index}"), |r| r.name.clone())
    }

    /// Every map entry as a (subject, text) unit for [`zt_core::compare`]: each rule's verdict
    /// line, then each (key, prefix) the rule decides, then the default. Group numbers and rule
    /// indexes are left out so that inserting a rule shows as one addition, not as a change of
    /// every later rule; [`Rendered`] equality catches what the units cannot show.
    pub fn units(&self) -> Vec<Unit> {
        let mut lines: BTreeMap<u32, Vec<String>> = BTreeMap::new();
        for m in &self.members {
            let Some(group) = self.groups.get(m.group as usize) else {
                continue;
            };
            let key = describe_key(group, m);
            match m.target {
                Target::Every(rule) => {
                    lines
                        .entry(rule.index)
                        .or_default()
                        .push(format!("{key} -> any"));
                }
                Target::List(list) => {
                    for p in self.prefixes.iter().filter(|p| p.list == list) {
                        lines
                            .entry(p.rule.index)
                            .or_default()
                            .push(format!("{key} -> {}", p.net));
                    }
                }
            }
        }
        let mut units = Vec::new();
        for r in &self.rules {
            let log = if r.log { " log" } else { "" };
            if r.index == self.default_rule.index {
                units.push((
                    r.name.clone(),
                    format!("default {}{log}", effect_name(r.effect)),
                ));
                continue;
            }
            units.push((r.name.clone(), format!("{}{log}", effect_name(r.effect))));
            for line in lines.remove(&r.index).unwrap_or_default() {
                units.push((r.name.clone(), line));
            }
        }
        // Entries naming a rule the table lacks (only a tampered map holds those).
        for (index, texts) in lines {
            for line in texts {
                units.push((format!("#{index}"), line));
            }
        }
        units
    }

    /// The map entries as text an operator can read: the artifact of `zt plan` for this
    /// backend, with a header stating what the backend enforces and what it cannot.
    pub fn dump(&self) -> String {
        let mut out = String::new();
        out.push_str(crate::ARTIFACT_HEADER);
        let log = |l: bool| if l { " (log)" } else { "" };
        let _ = writeln!(
            out,
            "\ndefault: {} by #{} {}{}",
            effect_name(self.default_effect),
            self.default_rule.index,
            self.rule_name(self.default_rule.index),
            log(self.default_rule.log)
        );
        let _ = writeln!(out, "\ngroups ({}):", self.groups.len());
        for (i, g) in self.groups.iter().enumerate() {
            let ident = match g.identity {
                IdentityKind::Any => "any".to_owned(),
                IdentityKind::Uid => "uid".to_owned(),
                IdentityKind::Gid => "gid".to_owned(),
                IdentityKind::Cgroup { level } => format!("cgroup@{level}"),
            };
            let ports = match g.ports {
                PortMatch::Exact => "exact ports".to_owned(),
                PortMatch::Range { first, last } => format!("ports {first}-{last}"),
            };
            let _ = writeln!(
                out,
                "  {i:<4} {:<7}{ident:<11}{ports}",
                effect_name(g.effect)
            );
        }
        let _ = writeln!(out, "\nmembers ({}):", self.members.len());
        for m in &self.members {
            let Some(group) = self.groups.get(m.group as usize) else {
                continue;
            };
            let target = match m.target {
                Target::Every(r) => format!(
                    "any address: #{} {}{}",
                    r.index,
                    self.rule_name(r.index),
                    log(r.log)
                ),
                Target::List(l) => format!("list {l}"),
            };
            let _ = writeln!(
                out,
                "  {:<4} {:<22} {:<10} -> {target}",
                m.group,
                identity_text(group.identity, m.identity),
                port_text(group, m)
            );
        }
        let _ = writeln!(out, "\nlists ({} prefixes):", self.prefixes.len());
        for p in &self.prefixes {
            let _ = writeln!(
                out,
                "  {:<4} {:<43} -> #{} {}{}",
                p.list,
                p.net.to_string(),
                p.rule.index,
                self.rule_name(p.rule.index),
                log(p.rule.log)
            );
        }
        let _ = writeln!(out, "\nrules (counter index, name, effect):");
        for r in &self.rules {
            let _ = writeln!(
                out,
                "  {:<4} {:<30} {}{}",
                r.index,
                r.name,
                effect_name(r.effect),
                log(r.log)
            );
        }
        out
    }
}

fn effect_name(e: Effect) -> &'static str {
    match e {
        Effect::Allow => "allow",
        Effect::Refuse => "refuse",
    }
}

fn identity_text(kind: IdentityKind, value: u64) -> String {
    match kind {
        IdentityKind::Any => "any".to_owned(),
        IdentityKind::Uid => format!("uid {value}"),
        IdentityKind::Gid => format!("gid {value}"),
        IdentityKind::Cgroup { level } => format!("cgroup {value}@{level}"),
    }
}

fn port_text(group: &Group, m: &Member) -> String {
    match (group.ports, m.transport) {
        (_, Transport::Other) => "other".to_owned(),
        (PortMatch::Exact, t) => format!("{}/{}", t.name(), m.port),
        (
            PortMatch::Range {
                first: 0,
                last: u16::MAX,
            },
            t,
        ) => format!("{}/any", t.name()),
        (PortMatch::Range { first, last }, t) => format!("{}/{first}-{last}", t.name()),
    }
}

fn describe_key(group: &Group, m: &Member) -> String {
    format!(
        "{} {} {}",
        effect_name(group.effect),
        identity_text(group.identity, m.identity),
        port_text(group, m)
    )
}

#[cfg(test)]
mod tests;
