//! Comparing what the kernel holds with what the policy needs: plan diffs, verify drift and
//! status counters, all by policy rule name.
//!
//! Counter values are state, not configuration, and are left out of every comparison. Rules
//! compare in order (first match makes order part of the meaning); set elements compare as
//! sets.

use crate::describe;
use crate::low::{LowElem, LowExpr, LowTable};
use std::collections::{BTreeMap, HashMap, HashSet};
use zt_core::{Change, ChangeKind, Counter, DriftItem, DriftKind, Unit, compare};

fn chain_text(c: &crate::low::LowChain) -> String {
    match &c.base {
        Some(b) => format!(
            "{} hook {} priority {} policy {}",
            b.kind, b.hook, b.priority, b.policy
        ),
        None => "regular".into(),
    }
}

fn chain_units(t: &LowTable) -> Vec<Unit> {
    t.chains
        .iter()
        .map(|c| (format!("chain {}", c.name), chain_text(c)))
        .collect()
}

/// Rules in chain order, named by their comment, then set definitions.
fn rule_and_set_units(t: &LowTable) -> Vec<Unit> {
    let mut out = Vec::new();
    for c in &t.chains {
        for (i, r) in c.rules.iter().enumerate() {
            let subject = r
                .comment
                .clone()
                .unwrap_or_else(|| format!("{} rule {} (no comment)", c.name, i + 1));
            out.push((subject, format!("{}: {r}", c.name)));
        }
    }
    out.extend(
        t.sets
            .iter()
            .map(|s| (format!("set {}", s.name), s.definition())),
    );
    out
}

/// Set elements named by their rule, sorted: sets have no order.
fn element_units(t: &LowTable) -> Vec<Unit> {
    let mut out: Vec<Unit> = t
        .sets
        .iter()
        .flat_map(|s| {
            s.elements
                .iter()
                .map(move |e| (element_subject(e), format!("set {}: {e}", s.name)))
        })
        .collect();
    out.sort();
    out
}

/// The units of a table for [`zt_core::compare`]: chains, rules in order (by comment), set
/// definitions, then set elements sorted (by rule name, set, value).
pub fn units(t: &LowTable) -> Vec<Unit> {
    let mut out = chain_units(t);
    out.extend(rule_and_set_units(t));
    out.extend(element_units(t));
    out
}

/// The subjects of [`units`], each once, in the order they first appear there.
fn subject_order(t: &LowTable) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let mut push = |s: String| {
        if seen.insert(s.clone()) {
            out.push(s);
        }
    };
    for c in &t.chains {
        push(format!("chain {}", c.name));
    }
    for c in &t.chains {
        for (i, r) in c.rules.iter().enumerate() {
            push(
                r.comment
                    .clone()
                    .unwrap_or_else(|| format!("{} rule {} (no comment)", c.name, i + 1)),
            );
        }
    }
    for s in &t.sets {
        push(format!("set {}", s.name));
    }
    // Element units are sorted, subject first.
    let mut elements: Vec<String> = t
        .sets
        .iter()
        .flat_map(|s| s.elements.iter().map(element_subject))
        .collect();
    elements.sort();
    for e in elements {
        push(e);
    }
    out
}

fn element_subject(e: &LowElem) -> String {
    e.comment
        .clone()
        .unwrap_or_else(|| "set element (no comment)".into())
}

/// What apply would change to turn `current` into `desired`.
pub fn diff(current: Option<&LowTable>, desired: &LowTable) -> Vec<Change> {
    let Some(current) = current else {
        // Everything is new: no comparison, one addition per subject.
        let mut lines = readable_lines(desired, None);
        return subject_order(desired)
            .into_iter()
            .map(|subject| Change {
                kind: ChangeKind::Add,
                detail: lines
                    .remove(&subject)
                    .map(|l| l.join("\n"))
                    .unwrap_or_default(),
                subject,
            })
            .collect();
    };
    let changes = compare(&units(current), &units(desired));
    readable(changes, Some(current), desired)
}

/// The objects of a table in nft syntax, by the subject [`units`] files them under; only the
/// subjects in `only`, when given (formatting every element of a large table costs more than
/// the comparison that found the few that changed).
fn readable_lines(t: &LowTable, only: Option<&HashSet<&str>>) -> HashMap<String, Vec<String>> {
    let wanted = |subject: &str| only.is_none_or(|o| o.contains(subject));
    let mut m: HashMap<String, Vec<String>> = HashMap::new();
    for c in &t.chains {
        let subject = format!("chain {}", c.name);
        if wanted(&subject) {
            m.entry(subject).or_default().push(describe::chain(c));
        }
        for (i, r) in c.rules.iter().enumerate() {
            let subject = r
                .comment
                .clone()
                .unwrap_or_else(|| format!("{} rule {} (no comment)", c.name, i + 1));
            if wanted(&subject) {
                m.entry(subject)
                    .or_default()
                    .push(format!("{}: {}", c.name, describe::rule(r)));
            }
        }
    }
    for s in &t.sets {
        let subject = format!("set {}", s.name);
        if wanted(&subject) {
            m.entry(subject).or_default().push(describe::set(s));
        }
        for e in &s.elements {
            let subject = element_subject(e);
            if wanted(&subject) {
                m.entry(subject).or_default().push(format!(
                    "set {}: {}",
                    s.name,
                    describe::element(s, e)
                ));
            }
        }
    }
    m
}

/// Changes found on the exact form, with details rewritten in nft syntax: what is added,
/// what is removed, and for a modification the lines that differ. Where the nft syntax hides
/// the difference (set flags, say), the exact detail stays.
fn readable(changes: Vec<Change>, current: Option<&LowTable>, desired: &LowTable) -> Vec<Change> {
    let subjects: HashSet<&str> = changes.iter().map(|c| c.subject.as_str()).collect();
    let now = current
        .map(|c| readable_lines(c, Some(&subjects)))
        .unwrap_or_default();
    let want = readable_lines(desired, Some(&subjects));
    drop(subjects);
    changes
        .into_iter()
        .map(|mut c| {
            let old = now.get(&c.subject);
            let new = want.get(&c.subject);
            match (c.kind, old, new) {
                (ChangeKind::Add, _, Some(new)) => c.detail = new.join("\n"),
                (ChangeKind::Remove, Some(old), _) => c.detail = old.join("\n"),
                (ChangeKind::Modify, Some(old), Some(new)) => {
                    let lines = line_diff(old, new);
                    if !lines.is_empty() {
                        c.detail = lines.join("\n");
                    }
                }
                _ => {}
            }
            c
        })
        .collect()
}

/// `- line` for lines only in `old`, `+ line` for lines only in `new` (as multisets).
fn line_diff(old: &[String], new: &[String]) -> Vec<String> {
    let mut unmatched: Vec<&String> = new.iter().collect();
    let mut out = Vec::new();
    for line in old {
        match unmatched.iter().position(|n| *n == line) {
            Some(i) => {
                unmatched.remove(i);
            }
            None => out.push(format!("- {line}")),
        }
    }
    out.extend(unmatched.into_iter().map(|line| format!("+ {line}")));
    out
}

/// What differs between the kernel and the policy, in verify's terms.
pub fn drift(current: Option<&LowTable>, desired: &LowTable) -> Vec<DriftItem> {
    let Some(current) = current else {
        return vec![DriftItem {
            kind: DriftKind::Gone,
            subject: format!("table inet {}", desired.name),
            detail: "zt's table is not in the kernel".into(),
        }];
    };
    let mut items = Vec::new();
    // Chains: hook, priority and policy.
    for want in &desired.chains {
        match current.chains.iter().find(|c| c.name == want.name) {
            None => items.push(DriftItem {
                kind: DriftKind::Missing,
                subject: format!("chain {}", want.name),
                detail: chain_text(want),
            }),
            Some(have) if have.base != want.base => items.push(DriftItem {
                kind: DriftKind::ChainChanged,
                subject: format!("chain {}", want.name),
                detail: format!("- {}\n+ {}", chain_text(have), chain_text(want)),
            }),
            Some(_) => {}
        }
    }
    for have in &current.chains {
        if !desired.chains.iter().any(|c| c.name == have.name) {
            items.push(DriftItem {
                kind: DriftKind::Extra,
                subject: format!("chain {}", have.name),
                detail: chain_text(have),
            });
        }
    }
    // Rules and set definitions, by name and in order.
    let changes = compare(&rule_and_set_units(current), &rule_and_set_units(desired));
    let changes = readable(changes, Some(current), desired);
    items.extend(zt_core::Drift::from_changes(changes).items);
    // Set elements, per policy rule, as multisets: compared exactly, shown in nft syntax.
    let elements = |t: &LowTable| -> BTreeMap<String, Vec<(String, String)>> {
        let mut m: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
        for s in &t.sets {
            for e in &s.elements {
                m.entry(element_subject(e)).or_default().push((
                    format!("set {}: {e}", s.name),
                    format!("set {}: {}", s.name, describe::element(s, e)),
                ));
            }
        }
        m
    };
    let (have, want) = (elements(current), elements(desired));
    let missing_from = |kind: DriftKind,
                        from: &BTreeMap<String, Vec<(String, String)>>,
                        other: &BTreeMap<String, Vec<(String, String)>>| {
        from.iter()
            .filter_map(|(subject, list)| {
                let there = other.get(subject);
                let lines: Vec<&str> = list
                    .iter()
                    .filter(|(exact, _)| !there.is_some_and(|t| t.iter().any(|(x, _)| x == exact)))
                    .map(|(_, readable)| readable.as_str())
                    .collect();
                (!lines.is_empty()).then(|| DriftItem {
                    kind,
                    subject: subject.clone(),
                    detail: lines.join("\n"),
                })
            })
            .collect::<Vec<_>>()
    };
    items.extend(missing_from(DriftKind::ElementsMissing, &want, &have));
    items.extend(missing_from(DriftKind::ElementsExtra, &have, &want));
    items
}

/// Packet and byte counters per policy rule or zt entry: rule counters by comment plus
/// set-element counters by element comment, in the order the names first appear.
pub fn counters(t: &LowTable) -> Vec<Counter> {
    let mut out: Vec<Counter> = Vec::new();
    let mut add = |name: &str, exprs: &[LowExpr]| {
        for e in exprs {
            if let LowExpr::Counter { packets, bytes } = e {
                match out.iter_mut().find(|c| c.name == name) {
                    Some(c) => {
                        c.packets += packets;
                        c.bytes += bytes;
                    }
                    None => out.push(Counter {
                        name: name.to_owned(),
                        packets: *packets,
                        bytes: *bytes,
                    }),
                }
            }
        }
    };
    for c in &t.chains {
        for r in &c.rules {
            if let Some(name) = &r.comment {
                add(name, &r.exprs);
            }
        }
    }
    for s in &t.sets {
        for e in &s.elements {
            add(&element_subject(e), &e.exprs);
        }
    }
    out
}

/// Copy counter values from `current` into the rules and set elements of `desired` that are
/// unchanged (same chain, comment and expressions; same element key and comment), so an
/// apply that rebuilds the table does not reset the counters of rules it did not change.
pub fn carry_counters(current: &LowTable, desired: &mut LowTable) {
    use std::collections::{HashMap, VecDeque};
    type Counts = VecDeque<Vec<(u64, u64)>>;
    let counts = |exprs: &[LowExpr]| -> Vec<(u64, u64)> {
        exprs
            .iter()
            .filter_map(|e| match e {
                LowExpr::Counter { packets, bytes } => Some((*packets, *bytes)),
                _ => None,
            })
            .collect()
    };
    let restore = |exprs: &mut [LowExpr], values: Vec<(u64, u64)>| {
        let mut values = values.into_iter();
        for e in exprs {
            if let LowExpr::Counter { packets, bytes } = e
                && let Some((p, b)) = values.next()
            {
                *packets = p;
                *bytes = b;
            }
        }
    };
    let mut rules: HashMap<(String, Option<String>, String), Counts> = HashMap::new();
    for c in &current.chains {
        for r in &c.rules {
            let key = (c.name.clone(), r.comment.clone(), r.to_string());
            rules.entry(key).or_default().push_back(counts(&r.exprs));
        }
    }
    for c in &mut desired.chains {
        for r in &mut c.rules {
            let key = (c.name.clone(), r.comment.clone(), r.to_string());
            if let Some(values) = rules.get_mut(&key).and_then(VecDeque::pop_front) {
                restore(&mut r.exprs, values);
            }
        }
    }
    let mut elements: HashMap<(u32, String), Counts> = HashMap::new();
    for s in &current.sets {
        for e in &s.elements {
            let key = (s.key_type, format!("{e} {:?}", e.comment));
            elements.entry(key).or_default().push_back(counts(&e.exprs));
        }
    }
    for s in &mut desired.sets {
        for e in &mut s.elements {
            let key = (s.key_type, format!("{e} {:?}", e.comment));
            if let Some(values) = elements.get_mut(&key).and_then(VecDeque::pop_front) {
                restore(&mut e.exprs, values);
            }
        }
    }
}
