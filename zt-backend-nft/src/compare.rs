//! Comparing what the kernel holds with what the policy needs: plan diffs, verify drift and
//! status counters, all by policy rule name.
//!
//! Counter values are state, not configuration, and are left out of every comparison. Rules
//! compare in order (first match makes order part of the meaning); set elements compare as
//! sets.

use crate::low::{LowElem, LowExpr, LowTable};
use std::collections::BTreeMap;
use zt_core::{Change, Counter, DriftItem, DriftKind, Unit, compare};

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

fn element_subject(e: &LowElem) -> String {
    e.comment
        .clone()
        .unwrap_or_else(|| "set element (no comment)".into())
}

/// What apply would change to turn `current` into `desired`.
pub fn diff(current: Option<&LowTable>, desired: &LowTable) -> Vec<Change> {
    let now = current.map(units).unwrap_or_default();
    compare(&now, &units(desired))
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
    items.extend(zt_core::Drift::from_changes(changes).items);
    // Set elements, per policy rule, as multisets.
    let elements = |t: &LowTable| -> BTreeMap<String, Vec<String>> {
        let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for s in &t.sets {
            for e in &s.elements {
                m.entry(element_subject(e))
                    .or_default()
                    .push(format!("set {}: {e}", s.name));
            }
        }
        m
    };
    let (have, want) = (elements(current), elements(desired));
    for (subject, wanted) in &want {
        let got = have.get(subject).cloned().unwrap_or_default();
        let missing: Vec<&String> = wanted.iter().filter(|w| !got.contains(w)).collect();
        if !missing.is_empty() {
            items.push(DriftItem {
                kind: DriftKind::ElementsMissing,
                subject: subject.clone(),
                detail: missing
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join("\n"),
            });
        }
    }
    for (subject, got) in &have {
        let wanted = want.get(subject).cloned().unwrap_or_default();
        let extra: Vec<&String> = got.iter().filter(|g| !wanted.contains(g)).collect();
        if !extra.is_empty() {
            items.push(DriftItem {
                kind: DriftKind::ElementsExtra,
                subject: subject.clone(),
                detail: extra
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join("\n"),
            });
        }
    }
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
