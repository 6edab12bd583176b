//! A rule and its `from:` and `to:` mappings.

use super::{Decoder, Field, FromNodeText, scalar};
use crate::config::keys::{FROM_KEYS, RULE_KEYS, TO_KEYS};
use crate::config::words::{ACTIONS, DIRECTIONS, PROTOCOLS};
use crate::config::{FromConfig, RuleConfig, Spanned, ToConfig};
use crate::yaml::Node;

impl<'n, 'a: 'n> Decoder<'_, 'n> {
    /// Decode a rule into `r` (a default one). Filled in place: a rule is several hundred
    /// bytes, and moving it and its `from` and `to` by value cost more than decoding some of
    /// its fields.
    pub(super) fn rule<S: FromNodeText<'n> + Default>(
        &mut self,
        index: usize,
        node: &'n Node<'a>,
        r: &mut RuleConfig<S>,
    ) {
        r.position = Some(node.position);
        self.rule = None;
        self.index = Some(index);
        let Some(slots) = self.entries(node, Field::of(""), &RULE_KEYS) else {
            r.undecodable.push("name");
            self.index = None;
            return;
        };
        let [
            name,
            description,
            direction,
            from,
            to,
            action,
            priority,
            log,
        ] = slots;
        let f = |i: usize| Field::key(&RULE_KEYS, i);
        // The name first, so every other problem in the rule can name it.
        if let Some((_, v)) = name {
            r.name = self.string(v, f(0));
            match (&r.name, scalar(v)) {
                (None, _) => r.undecodable.push("name"),
                (Some(_), Some((text, _))) if !text.is_empty() => self.rule = Some(text),
                _ => {}
            }
        }
        if let Some((_, v)) = description {
            r.description = self.string(v, f(1));
        }
        if let Some((_, v)) = direction {
            r.direction = self.word(v, f(2), "a direction", &DIRECTIONS);
        }
        if let Some((_, v)) = from
            && !self.from(v, &mut r.from)
        {
            r.undecodable.push("from");
        }
        if let Some((_, v)) = to {
            self.to(v, &mut r.to);
        }
        if let Some((_, v)) = action {
            r.action = self.word(v, f(5), "an action", &ACTIONS);
            if r.action.is_none() {
                r.undecodable.push("action");
            }
        }
        if let Some((_, v)) = priority {
            r.priority = self.integer(v, f(6));
        }
        if let Some((_, v)) = log {
            r.log = self.boolean(v, f(7));
        }
        self.rule = None;
        self.index = None;
    }

    /// Decode `from:` into `out`; false when it is not a mapping (already reported). Each
    /// selector present but undecodable is noted, so validation counts it as given.
    fn from<S: FromNodeText<'n> + Default>(
        &mut self,
        node: &'n Node<'a>,
        out: &mut Option<Spanned<FromConfig<S>>>,
    ) -> bool {
        let Some(slots) = self.entries(node, Field::of("from"), &FROM_KEYS) else {
            return false;
        };
        let [user, uid, group, gid, cgroup, host, hosts] = slots;
        let f = &mut out
            .insert(Spanned::new(FromConfig::default(), Some(node.position)))
            .value;
        let field = |i: usize| Field::key(&FROM_KEYS, i);
        // Per key in the table's order: `None` when absent, else whether it decoded.
        let decoded = [
            user.map(|(_, v)| {
                f.user = self.string(v, field(0));
                f.user.is_some()
            }),
            uid.map(|(_, v)| {
                f.uid = self.integer(v, field(1));
                f.uid.is_some()
            }),
            group.map(|(_, v)| {
                f.group = self.string(v, field(2));
                f.group.is_some()
            }),
            gid.map(|(_, v)| {
                f.gid = self.integer(v, field(3));
                f.gid.is_some()
            }),
            cgroup.map(|(_, v)| {
                f.cgroup = self.string(v, field(4));
                f.cgroup.is_some()
            }),
            host.map(|(_, v)| {
                f.host = self.string(v, field(5));
                f.host.is_some()
            }),
            hosts.map(|(_, v)| {
                f.hosts = self.hosts(v, field(6));
                f.hosts.is_some()
            }),
        ];
        for (i, decoded) in decoded.into_iter().enumerate() {
            if decoded == Some(false) {
                f.undecodable.push(FROM_KEYS[i].0);
            }
        }
        true
    }

    /// Decode `to:` into `out`, unless it is not a mapping (already reported).
    fn to<S: FromNodeText<'n> + Default>(
        &mut self,
        node: &'n Node<'a>,
        out: &mut Option<Spanned<ToConfig<S>>>,
    ) {
        let Some([host, hosts, port, ports, protocol]) =
            self.entries(node, Field::of("to"), &TO_KEYS)
        else {
            return;
        };
        let f = |i: usize| Field::key(&TO_KEYS, i);
        let t = &mut out
            .insert(Spanned::new(ToConfig::default(), Some(node.position)))
            .value;
        if let Some((_, v)) = host {
            t.host = self.string(v, f(0));
        }
        if let Some((_, v)) = hosts {
            t.hosts = self.hosts(v, f(1));
        }
        if let Some((_, v)) = port {
            t.port = self.ports(v, f(2));
        }
        if let Some((_, v)) = ports {
            t.ports = self.ports(v, f(3));
        }
        if let Some((_, v)) = protocol {
            t.protocol = self.word(v, f(4), "a protocol", &PROTOCOLS);
        }
    }
}
