//! Finding rules that can never match because an earlier entry matches everything they do.
//!
//! Checking every earlier rule against every later one is quadratic, which a 10 000-rule
//! policy cannot afford inside its validation budget. Rules are therefore bucketed by
//! identity: only earlier rules with the same uid, gid or an ancestor cgroup — or with any
//! identity — can cover a rule, and a port-bounds comparison rejects most candidates before
//! the full coverage test.

use super::{Direction, Identity, Policy, Rule};
use std::collections::HashMap;

/// What hides a shadowed rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shadower {
    /// An earlier rule (index into the policy's rules).
    Rule(usize),
    /// The SSH failsafe of the prologue.
    SshFailsafe,
}

/// Indices of the policy's rules in evaluation order: priority ascending, ties in file order.
pub(crate) fn evaluation_order(rules: &[Rule]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..rules.len()).collect();
    order.sort_by_key(|&i| rules[i].priority);
    order
}

/// Whether `a` matches every packet `b` matches (same direction assumed).
fn covers(a: &Rule, b: &Rule) -> bool {
    let (a, b) = (&a.matches, &b.matches);
    a.identity.covers(&b.identity)
        && a.protocol.covers(b.protocol)
        && a.ports.covers(&b.ports)
        && a.peers.covers(&b.peers)
}

/// Earlier rules, each with its port bounds inline so a scan touches one array.
type Bucket = Vec<(u16, u16, usize)>;

#[derive(Default)]
struct Buckets {
    any: Bucket,
    uid: HashMap<u32, Bucket>,
    gid: HashMap<u32, Bucket>,
    cgroup: HashMap<String, Bucket>,
}

/// Every rule that can never match, with the first entry that hides it.
pub(crate) fn shadowed(policy: &Policy) -> Vec<(usize, Shadower)> {
    let rules = &policy.rules;
    let settings = &policy.settings;
    let mut buckets = [Buckets::default(), Buckets::default()];
    let mut out = Vec::new();
    // Positions in evaluation order, so "earliest" compares across buckets.
    let order = evaluation_order(rules);
    let mut rank = vec![0usize; rules.len()];
    for (pos, &i) in order.iter().enumerate() {
        rank[i] = pos;
    }
    for &i in &order {
        let r = &rules[i];
        if r.direction == Direction::Ingress
            && settings.preserve_ssh
            && r.protocol() == super::Protocol::Tcp
            && settings.ssh_ports.covers(r.ports())
        {
            out.push((i, Shadower::SshFailsafe));
        } else {
            let b = &buckets[usize::from(r.direction == Direction::Ingress)];
            let (lo, hi) = r.ports().bounds();
            let first_cover = |list: &Bucket| {
                list.iter()
                    .find(|&&(alo, ahi, a)| alo <= lo && hi <= ahi && covers(&rules[a], r))
                    .map(|&(_, _, a)| a)
            };
            let mut candidates: Vec<Option<usize>> = vec![first_cover(&b.any)];
            match r.identity() {
                Identity::Any => {}
                Identity::User { uid, .. } => candidates.push(b.uid.get(uid).and_then(first_cover)),
                Identity::Group { gid, .. } => {
                    candidates.push(b.gid.get(gid).and_then(first_cover))
                }
                Identity::Cgroup(path) => {
                    let p = path.as_str();
                    let ancestors = p.match_indices('/').map(|(at, _)| &p[..at]).chain([p]);
                    for a in ancestors {
                        candidates.push(b.cgroup.get(a).and_then(first_cover));
                    }
                }
            }
            if let Some(a) = candidates.into_iter().flatten().min_by_key(|&a| rank[a]) {
                out.push((i, Shadower::Rule(a)));
            }
        }
        let b = &mut buckets[usize::from(r.direction == Direction::Ingress)];
        let (lo, hi) = r.ports().bounds();
        let item = (lo, hi, i);
        match r.identity() {
            Identity::Any => b.any.push(item),
            Identity::User { uid, .. } => b.uid.entry(*uid).or_default().push(item),
            Identity::Group { gid, .. } => b.gid.entry(*gid).or_default().push(item),
            Identity::Cgroup(p) => b
                .cgroup
                .entry(p.as_str().to_owned())
                .or_default()
                .push(item),
        }
    }
    out.sort_unstable_by_key(|(i, _)| rank[*i]);
    out
}
