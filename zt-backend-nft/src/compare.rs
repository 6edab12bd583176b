//! Comparing what the kernel holds with what the policy needs: plan diffs, verify drift and
//! status counters, all by policy rule name.
//!
//! Counter values are state, not configuration, and are left out of every comparison. Rules
//! compare in order (first match makes order part of the meaning); set elements compare as
//! sets.

use crate::describe;
use crate::low::{LowChain, LowElem, LowExpr, LowTable};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write;
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
            out.push((
                rule_subject(c, i, r).into_owned(),
                format!("{}: {r}", c.name),
            ));
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
    element_subject_str(e).to_owned()
}

fn element_subject_str(e: &LowElem) -> &str {
    e.comment.as_deref().unwrap_or("set element (no comment)")
}

fn rule_subject<'a>(chain: &LowChain, i: usize, r: &'a crate::low::LowRule) -> Cow<'a, str> {
    match &r.comment {
        Some(c) => Cow::Borrowed(c),
        None => Cow::Owned(format!("{} rule {} (no comment)", chain.name, i + 1)),
    }
}

/// What apply would change to turn `current` into `desired`.
pub fn diff(current: Option<&LowTable>, desired: &LowTable) -> Vec<Change> {
    let Some(current) = current else {
        return additions(desired);
    };
    let changes = compare(&units(current), &units(desired));
    readable(changes, Some(current), desired)
}

/// What removing zt's table changes: one removal of the table, if there is one.
pub fn removal(current: Option<&LowTable>) -> Vec<Change> {
    current
        .map(|t| Change {
            kind: ChangeKind::Remove,
            subject: format!("table inet {}", t.name),
            detail: format!(
                "{} chains, {} sets and everything in them",
                t.chains.len(),
                t.sets.len()
            ),
        })
        .into_iter()
        .collect()
}

/// Changes being collected by subject, each subject once, in the order it first comes.
#[derive(Default)]
struct BySubject<'a> {
    changes: Vec<Change>,
    at: foldhash::HashMap<Cow<'a, str>, usize>,
}

impl<'a> BySubject<'a> {
    /// The detail of `subject`'s change, ready for one more line.
    fn line(&mut self, subject: Cow<'a, str>) -> &mut String {
        let i = match self.at.get(subject.as_ref()) {
            Some(&i) => i,
            None => {
                self.changes.push(Change {
                    kind: ChangeKind::Add,
                    subject: subject.as_ref().to_owned(),
                    // Room for a line or two without growing.
                    detail: String::with_capacity(96),
                });
                self.at.insert(subject, self.changes.len() - 1);
                self.changes.len() - 1
            }
        };
        let detail = &mut self.changes[i].detail;
        if !detail.is_empty() {
            detail.push('\n');
        }
        detail
    }
}

/// A table that is not in the kernel yet, as additions: one per subject, in the order of
/// [`units`] (chains, rules in order, set definitions, elements sorted by subject), each
/// detail the subject's objects in nft syntax. Nothing to compare, so this only formats —
/// each element once, straight into its change.
fn additions(t: &LowTable) -> Vec<Change> {
    let mut out = BySubject::default();
    for c in &t.chains {
        let line = describe::chain(c);
        out.line(Cow::Owned(format!("chain {}", c.name)))
            .push_str(&line);
    }
    for c in &t.chains {
        for (i, r) in c.rules.iter().enumerate() {
            let line = describe::rule(r);
            let _ = write!(out.line(rule_subject(c, i, r)), "{}: {line}", c.name);
        }
    }
    for s in &t.sets {
        let line = describe::set(s);
        out.line(Cow::Owned(format!("set {}", s.name)))
            .push_str(&line);
    }
    // Sorted by subject; a stable sort keeps one subject's elements in set order.
    let mut elements: Vec<(&str, usize, &LowElem)> = t
        .sets
        .iter()
        .enumerate()
        .flat_map(|(i, s)| {
            s.elements
                .iter()
                .map(move |e| (element_subject_str(e), i, e))
        })
        .collect();
    elements.sort_by(|a, b| a.0.cmp(b.0));
    let formats: Vec<describe::Elements> = t.sets.iter().map(describe::Elements::of).collect();
    for (subject, i, e) in elements {
        let line = out.line(Cow::Borrowed(subject));
        let _ = write!(line, "set {}: ", t.sets[i].name);
        formats[i].write(line, e);
    }
    out.changes
}

/// The objects of a table in nft syntax, by the subject [`units`] files them under; only the
/// subjects in `only` (formatting every element of a large table costs more than the
/// comparison that found the few that changed).
fn readable_lines(t: &LowTable, only: &HashSet<&str>) -> HashMap<String, Vec<String>> {
    let mut m: HashMap<String, Vec<String>> = HashMap::new();
    // Formats a line only for a wanted subject.
    let mut push = |subject: &str, line: &dyn Fn() -> String| {
        if only.contains(subject) {
            m.entry(subject.to_owned()).or_default().push(line());
        }
    };
    for c in &t.chains {
        push(&format!("chain {}", c.name), &|| describe::chain(c));
        for (i, r) in c.rules.iter().enumerate() {
            push(&rule_subject(c, i, r), &|| {
                format!("{}: {}", c.name, describe::rule(r))
            });
        }
    }
    for s in &t.sets {
        push(&format!("set {}", s.name), &|| describe::set(s));
        let format = describe::Elements::of(s);
        for e in &s.elements {
            push(element_subject_str(e), &|| {
                let mut line = format!("set {}: ", s.name);
                format.write(&mut line, e);
                line
            });
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
        .map(|c| readable_lines(c, &subjects))
        .unwrap_or_default();
    let want = readable_lines(desired, &subjects);
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
///
/// Elements (there may be tens of thousands) are matched by their key and comment as they
/// are, never formatted; rules (a handful per hook) by their canonical text.
pub fn carry_counters(current: &LowTable, desired: &mut LowTable) {
    use std::collections::VecDeque;
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
    let counted = |exprs: &[LowExpr]| {
        exprs
            .iter()
            .any(|e| matches!(e, LowExpr::Counter { packets, bytes } if *packets > 0 || *bytes > 0))
    };
    let mut rules: HashMap<(String, Option<String>, String), Counts> = HashMap::new();
    for c in &current.chains {
        for r in c.rules.iter().filter(|r| counted(&r.exprs)) {
            let key = (c.name.clone(), r.comment.clone(), r.to_string());
            rules.entry(key).or_default().push_back(counts(&r.exprs));
        }
    }
    if !rules.is_empty() {
        for c in &mut desired.chains {
            for r in &mut c.rules {
                let key = (c.name.clone(), r.comment.clone(), r.to_string());
                if let Some(values) = rules.get_mut(&key).and_then(VecDeque::pop_front) {
                    restore(&mut r.exprs, values);
                }
            }
        }
    }
    // Only elements that counted something need carrying: a fresh element starts at zero.
    type ElementKey<'a> = (u32, &'a [u8], Option<&'a [u8]>, Option<&'a str>);
    let mut elements: foldhash::HashMap<ElementKey<'_>, Counts> = foldhash::HashMap::default();
    for s in &current.sets {
        for e in s.elements.iter().filter(|e| counted(&e.exprs)) {
            let key = (
                s.key_type,
                e.key.as_slice(),
                e.key_end.as_deref(),
                e.comment.as_deref(),
            );
            elements.entry(key).or_default().push_back(counts(&e.exprs));
        }
    }
    if elements.is_empty() {
        return;
    }
    for s in &mut desired.sets {
        for e in &mut s.elements {
            let key = (
                s.key_type,
                e.key.as_slice(),
                e.key_end.as_deref(),
                e.comment.as_deref(),
            );
            if let Some(values) = elements.get_mut(&key).and_then(VecDeque::pop_front) {
                restore(&mut e.exprs, values);
            }
        }
    }
}
