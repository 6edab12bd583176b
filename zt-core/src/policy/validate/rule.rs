//! One rule: its name, sender, peers, ports, protocol, action and priority.

use super::{Text, Validator, problem};
use crate::config::text::printable;
use crate::config::{FromConfig, RuleConfig, Spanned, ToConfig};
use crate::diagnostic::Code;
use crate::policy::{
    AddressSet, CgroupPath, Direction, Identity, PortSet, Protocol, Rule, RuleMatch, RuleName,
};
use crate::short_str::ShortStr;
use crate::source::{Position, Provenance};

impl Validator<'_> {
    /// Validate the `index`-th rule; `None` when it has an error (reported).
    pub(super) fn rule<S: Text>(&mut self, index: usize, rc: &RuleConfig<S>) -> Option<Rule> {
        let RuleConfig {
            position,
            undecodable,
            name,
            description,
            direction,
            from,
            to,
            action,
            priority,
            log,
        } = rc;
        self.rule = None;
        self.index = Some(index);
        let name = match name {
            None if undecodable.contains(&"name") => None,
            None => {
                self.error(
                    problem(
                        Code::MissingField,
                        "the rule has no name",
                        "give every rule a unique name, e.g. name: web-to-redis",
                    ),
                    "name",
                    *position,
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
        let direction = direction.as_ref().map_or(Direction::Egress, |d| d.value);
        let description = description.as_ref().and_then(|d| self.description(d));
        let action = match action {
            Some(a) => Some(a.value),
            None => {
                if !undecodable.contains(&"action") {
                    self.error(
                        problem(
                            Code::MissingField,
                            "the rule has no action",
                            "add action: allow, deny or reject",
                        ),
                        "action",
                        *position,
                    );
                }
                None
            }
        };
        let priority = match priority {
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
        let log = log.as_ref().is_some_and(|l| l.value);
        // A rule without `from:` is checked as one with an empty `from:` at the rule's start.
        let (identity, sources) = match from {
            Some(f) => self.from(&f.value, f.position, direction),
            // Not a mapping (already reported): no sender to match an egress rule by.
            None if undecodable.contains(&"from") => (
                (direction == Direction::Ingress).then_some(Identity::Any),
                Some(AddressSet::any()),
            ),
            None => self.from(&FromConfig::<S>::default(), *position, direction),
        };
        let (destinations, ports, protocol) = match to {
            Some(t) => self.to(&t.value, direction),
            None => (
                Some(AddressSet::any()),
                Some(PortSet::any()),
                Some(Protocol::Any),
            ),
        };
        let peers = match direction {
            Direction::Egress => destinations,
            Direction::Ingress => sources,
        };
        Some(Rule {
            name: name?,
            description,
            direction,
            matches: RuleMatch {
                identity: identity?,
                peers: peers?,
                ports: ports?,
                protocol: protocol?,
            },
            action: action?,
            priority: priority?,
            log,
            provenance: Provenance(*position),
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

    /// The identity (egress) and source addresses (ingress) of `from`, written at `at`.
    fn from<S: Text>(
        &mut self,
        from: &FromConfig<S>,
        at: Option<Position>,
        direction: Direction,
    ) -> (Option<Identity>, Option<AddressSet>) {
        let FromConfig {
            undecodable,
            user,
            uid,
            group,
            gid,
            cgroup,
            host,
            hosts,
        } = from;
        let senders = [
            ("user", user.as_ref().map(Sender::User)),
            ("uid", uid.as_ref().map(Sender::Uid)),
            ("group", group.as_ref().map(Sender::Group)),
            ("gid", gid.as_ref().map(Sender::Gid)),
            ("cgroup", cgroup.as_ref().map(Sender::Cgroup)),
        ];
        // The senders given: decoded, or present but undecodable (already reported).
        let mut given = [""; 5];
        let mut count = 0;
        for (key, sender) in &senders {
            if sender.is_some() || undecodable.contains(key) {
                given[count] = key;
                count += 1;
            }
        }
        let selectors = &given[..count];
        let hosts_given = host.is_some() || hosts.is_some();
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
                let sources =
                    self.hosts_field(host.as_ref(), hosts.as_ref(), ["from.host", "from.hosts"]);
                (Some(Identity::Any), sources)
            }
            Direction::Egress => {
                if hosts_given {
                    let pos = host
                        .as_ref()
                        .map(|h| h.position)
                        .or(hosts.as_ref().map(|h| h.position))
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
                    [_] if !undecodable.is_empty() => None,
                    [_] => senders
                        .into_iter()
                        .find_map(|(_, sender)| sender)
                        .and_then(|sender| self.identity(sender)),
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

    fn identity<S: Text>(&mut self, sender: Sender<'_, S>) -> Option<Identity> {
        let id_range = |v: i64| u32::try_from(v).ok().filter(|&v| v != u32::MAX);
        let out_of_range = |what: &str, v: i64| {
            problem(
                Code::IdOutOfRange,
                format!("{what} {v} is out of range"),
                format!("a {what} is a number from 0 to 4294967294"),
            )
        };
        match sender {
            Sender::User(user) => {
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
            Sender::Group(group) => match self.names.group(self.resolver, &group.value) {
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
            },
            Sender::Uid(uid) => match id_range(uid.value) {
                Some(u) => Some(Identity::User { uid: u, name: None }),
                None => {
                    self.error(out_of_range("uid", uid.value), "from.uid", uid.position);
                    None
                }
            },
            Sender::Gid(gid) => match id_range(gid.value) {
                Some(g) => Some(Identity::Group { gid: g, name: None }),
                None => {
                    self.error(out_of_range("gid", gid.value), "from.gid", gid.position);
                    None
                }
            },
            Sender::Cgroup(path) => match CgroupPath::new(&path.value) {
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
            },
        }
    }

    /// Destinations, ports and protocol of `to`.
    fn to<S: Text>(
        &mut self,
        to: &ToConfig<S>,
        direction: Direction,
    ) -> (Option<AddressSet>, Option<PortSet>, Option<Protocol>) {
        let ToConfig {
            host,
            hosts,
            port,
            ports,
            protocol,
        } = to;
        let destinations = match direction {
            Direction::Egress => {
                self.hosts_field(host.as_ref(), hosts.as_ref(), ["to.host", "to.hosts"])
            }
            Direction::Ingress => {
                if let Some(at) = host
                    .as_ref()
                    .map(|h| h.position)
                    .or(hosts.as_ref().map(|h| h.position))
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
        let (ports, port_field) = match (port, ports) {
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
        let protocol = match (protocol, port_field) {
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
}

/// The one sender of an egress rule, as its `from:` gives it.
enum Sender<'c, S> {
    User(&'c Spanned<S>),
    Uid(&'c Spanned<i64>),
    Group(&'c Spanned<S>),
    Gid(&'c Spanned<i64>),
    Cgroup(&'c Spanned<S>),
}
