//! Differences between two states of zt's chains, by entry name, and counters by entry name.
//!
//! States are compared with [`zt_core::compare`] in groups where order means something: the
//! set of zt's chains, the jumps of each built-in chain (with their positions: a jump that is
//! not at the top is a change), and the rules of each of zt's chains. A rule's unit is its
//! entry name (the comment) and its canonical text (the rule without the comment), prefixed
//! with family and chain so a change reads on its own. Changes to one subject found in
//! several groups (both families, both hooks) are merged into one.

use crate::owned::{ChainPrefix, Owned, Rule};
use crate::restore::label;
use crate::save::Dump;
use zt_core::{Change, ChangeKind, Counter, Family, Unit, compare};

/// The subject of a rule: its entry name, or where it is when it has no comment.
fn subject(chain: &str, rule: &Rule) -> String {
    match rule.comment() {
        Some(c) => c.to_owned(),
        None => format!("uncommented rule in {chain}"),
    }
}

/// The changes that take one family from `current` to `desired`.
pub fn family_changes(family: Family, current: &Owned, desired: &Owned) -> Vec<Change> {
    let fam = label(family);
    let mut changes = Vec::new();
    let chains = |o: &Owned| -> Vec<Unit> {
        o.chains
            .keys()
            .map(|c| (format!("chain {c}"), format!("{fam} chain {c}")))
            .collect()
    };
    changes.extend(compare(&chains(current), &chains(desired)));
    for builtin in current.hooked_with(desired) {
        let jumps = |o: &Owned| -> Vec<Unit> {
            o.jumps_in(builtin)
                .map(|j| {
                    (
                        subject(builtin, &j.rule),
                        format!(
                            "{fam} {builtin} rule {}: {}",
                            j.position,
                            j.rule.canonical()
                        ),
                    )
                })
                .collect()
        };
        changes.extend(in_group(
            compare(&jumps(current), &jumps(desired)),
            fam,
            builtin,
        ));
    }
    let mut names: Vec<&String> = current.chains.keys().chain(desired.chains.keys()).collect();
    names.sort_unstable();
    names.dedup();
    for chain in names {
        // Most chains are unchanged: skip building their units (and `compare`, which looks
        // subjects up one by one).
        if current.chains.get(chain) == desired.chains.get(chain) {
            continue;
        }
        let units = |o: &Owned| -> Vec<Unit> {
            o.chains
                .get(chain)
                .into_iter()
                .flatten()
                .map(|r| {
                    (
                        subject(chain, r),
                        format!("{fam} {chain}: {}", r.canonical()),
                    )
                })
                .collect()
        };
        changes.extend(in_group(
            compare(&units(current), &units(desired)),
            fam,
            chain,
        ));
    }
    changes
}

/// Name the group of an `order` change.
fn in_group(changes: Vec<Change>, family: &str, chain: &str) -> Vec<Change> {
    changes
        .into_iter()
        .map(|mut c| {
            if c.kind == ChangeKind::Modify && c.subject == "order" {
                c.subject = format!("order of {chain}");
                c.detail = format!("{family}:\n{}", c.detail);
            }
            c
        })
        .collect()
}

/// Merge changes of the same kind to the same subject, keeping first-seen order.
pub fn merge(changes: impl IntoIterator<Item = Change>) -> Vec<Change> {
    let mut out: Vec<Change> = Vec::new();
    for c in changes {
        match out
            .iter_mut()
            .find(|o| o.kind == c.kind && o.subject == c.subject)
        {
            Some(o) => {
                o.detail.push('\n');
                o.detail.push_str(&c.detail);
            }
            None => out.push(c),
        }
    }
    out
}

/// Counters per entry, summed over families and chains, from `iptables-save -c` output.
///
/// Entries come in the order they are installed: the chains' sequences are merged so that an
/// entry first seen in one chain stays right after its predecessor there. Jump rules and rules
/// without a comment are not entries and are left out.
pub fn counters(dumps: [&Dump; 2], prefix: &ChainPrefix) -> Vec<Counter> {
    let mut out: Vec<Counter> = Vec::new();
    for dump in dumps {
        let Some(filter) = dump.table("filter") else {
            continue;
        };
        let mut chains: Vec<&str> = filter
            .chains
            .iter()
            .filter(|c| c.policy.is_none() && prefix.owns(&c.name))
            .map(|c| c.name.as_str())
            .collect();
        // Egress first: it holds most policy rules.
        chains.sort_by_key(|c| (*c != prefix.output(), *c != prefix.input(), *c));
        for chain in chains {
            let mut after: Option<usize> = None;
            for saved in filter.rules.iter().filter(|r| r.chain == chain) {
                let Some(name) = saved.rule.comment() else {
                    continue;
                };
                let c = saved.rule.counters.unwrap_or_default();
                let at = match out.iter().position(|o| o.name == name) {
                    Some(i) => i,
                    None => {
                        let i = after.map_or(out.len(), |a| a + 1);
                        out.insert(
                            i,
                            Counter {
                                name: name.to_owned(),
                                packets: 0,
                                bytes: 0,
                            },
                        );
                        i
                    }
                };
                out[at].packets += c.packets;
                out[at].bytes += c.bytes;
                after = Some(at);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::save::parse;

    fn owned(text: &str) -> Owned {
        parse(text).unwrap().owned(&ChainPrefix::default())
    }

    const BASE: &str = "*filter\n:OUTPUT ACCEPT [0:0]\n:ZT-OUTPUT - [0:0]\n-A OUTPUT -m comment --comment \"zt:jump\" -j ZT-OUTPUT\n-A ZT-OUTPUT -p tcp -m comment --comment a -j ACCEPT\n-A ZT-OUTPUT -p udp -m comment --comment b -j ACCEPT\n-A ZT-OUTPUT -m comment --comment \"zt:default\" -j DROP\nCOMMIT\n";

    fn kinds(changes: &[Change]) -> Vec<(ChangeKind, &str)> {
        changes
            .iter()
            .map(|c| (c.kind, c.subject.as_str()))
            .collect()
    }

    #[test]
    fn identical_states_have_no_changes() {
        assert!(family_changes(Family::V4, &owned(BASE), &owned(BASE)).is_empty());
    }

    #[test]
    fn a_changed_rule_is_named_by_its_comment() {
        let changed = BASE.replace("-p udp", "-p icmp");
        let c = family_changes(Family::V4, &owned(BASE), &owned(&changed));
        assert_eq!(kinds(&c), vec![(ChangeKind::Modify, "b")]);
        assert_eq!(
            c[0].detail,
            "- IPv4 ZT-OUTPUT: -p udp -j ACCEPT\n+ IPv4 ZT-OUTPUT: -p icmp -j ACCEPT"
        );
    }

    #[test]
    fn swapped_rules_are_an_order_change_of_their_chain() {
        let swapped = BASE
            .replace("-p tcp -m comment --comment a", "TMP")
            .replace(
                "-p udp -m comment --comment b",
                "-p tcp -m comment --comment a",
            )
            .replace("TMP", "-p udp -m comment --comment b");
        let c = family_changes(Family::V6, &owned(BASE), &owned(&swapped));
        assert_eq!(kinds(&c), vec![(ChangeKind::Modify, "order of ZT-OUTPUT")]);
    }

    #[test]
    fn a_jump_below_a_foreign_rule_is_a_change() {
        let below = BASE.replace(
            "-A OUTPUT -m comment",
            "-A OUTPUT -o eth0 -j ACCEPT\n-A OUTPUT -m comment",
        );
        let c = family_changes(Family::V4, &owned(&below), &owned(BASE));
        assert_eq!(kinds(&c), vec![(ChangeKind::Modify, "zt:jump")]);
        assert!(c[0].detail.contains("OUTPUT rule 2"), "{}", c[0].detail);
    }

    #[test]
    fn nothing_installed_means_everything_is_added() {
        let c = family_changes(Family::V4, &Owned::default(), &owned(BASE));
        assert_eq!(
            kinds(&c),
            vec![
                (ChangeKind::Add, "chain ZT-OUTPUT"),
                (ChangeKind::Add, "zt:jump"),
                (ChangeKind::Add, "a"),
                (ChangeKind::Add, "b"),
                (ChangeKind::Add, "zt:default"),
            ]
        );
    }

    #[test]
    fn changes_to_one_subject_in_both_families_merge() {
        let changed = BASE.replace("-p udp", "-p icmp");
        let all = family_changes(Family::V4, &owned(BASE), &owned(&changed))
            .into_iter()
            .chain(family_changes(Family::V6, &owned(BASE), &owned(&changed)));
        let merged = merge(all);
        assert_eq!(merged.len(), 1);
        assert_eq!(merged[0].detail.lines().count(), 4);
    }

    #[test]
    fn counters_sum_per_entry_in_installed_order() {
        let v4 = parse("*filter\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:ZT-INPUT - [0:0]\n:ZT-OUTPUT - [0:0]\n[9:9] -A OUTPUT -m comment --comment \"zt:jump\" -j ZT-OUTPUT\n[1:10] -A ZT-INPUT -m comment --comment \"zt:invalid\" -j DROP\n[2:20] -A ZT-INPUT -i lo -m comment --comment \"zt:loopback\" -j ACCEPT\n[3:30] -A ZT-INPUT -m comment --comment \"zt:default\" -j DROP\n[4:40] -A ZT-OUTPUT -m comment --comment \"zt:invalid\" -j DROP\n[5:50] -A ZT-OUTPUT -p tcp -m comment --comment web -j ACCEPT\n[6:60] -A ZT-OUTPUT -p udp -m comment --comment web -j ACCEPT\n[7:70] -A ZT-OUTPUT -j ACCEPT\n[8:80] -A ZT-OUTPUT -m comment --comment \"zt:default\" -j DROP\nCOMMIT\n").unwrap();
        let v6 = parse("*filter\n:ZT-OUTPUT - [0:0]\n[100:1000] -A ZT-OUTPUT -p tcp -m comment --comment web -j ACCEPT\nCOMMIT\n").unwrap();
        let got: Vec<(String, u64, u64)> = counters([&v4, &v6], &ChainPrefix::default())
            .into_iter()
            .map(|c| (c.name, c.packets, c.bytes))
            .collect();
        assert_eq!(
            got,
            vec![
                ("zt:invalid".to_owned(), 5, 50),
                ("zt:loopback".to_owned(), 2, 20),
                ("web".to_owned(), 111, 1110),
                ("zt:default".to_owned(), 11, 110),
            ]
        );
    }
}
