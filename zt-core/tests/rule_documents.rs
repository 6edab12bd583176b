//! Documents of rules read the same with the fast YAML reader as with the full one.
//!
//! Documents of rules are generated in the layouts policies are written in (block and flow
//! `from`/`to`, flow and block lists, comments, the dash alone on its line), with valid and
//! invalid values and unknown or repeated keys, then some are mutated with YAML's indicator
//! characters. Whenever the fast reader accepts one, the full reader must give the same root
//! and the same streamed rules, positions included (`yaml_readers.rs` does the same for YAML of
//! any shape). The fast reader must also take most of them, and every rule of the examples:
//! anything it declines is read several times slower.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic on a broken fixture

mod common;
use common::{Tree, cases, inline};

use proptest::prelude::*;
use zt_core::yaml::fast_reader_agrees;

/// Values for each kind of field: the first half decodes, the rest is refused by the decoder.
const NAMES: &[&str] = &[
    "web", "rule-1", "\"dq\"", "''", "~", "'it''s'", "x # c", "a: b",
];
const DIRECTIONS: &[&str] = &["egress", "ingress", "'ingress'", "out", "Egress", "null"];
const ACTIONS: &[&str] = &["allow", "deny", "reject", "\"allow\"", "alow", "drop"];
const PROTOCOLS: &[&str] = &["tcp", "udp", "both", "icmp", "'any'", "TCP", "all", "~"];
const NUMBERS: &[&str] = &[
    "5",
    "-1",
    "+3",
    "99999999999999999999",
    "'5'",
    "x",
    "1.5",
    "~",
];
const BOOLS: &[&str] = &["true", "false", "True", "FALSE", "yes", "'true'", "~", "no"];
const HOSTS: &[&str] = &[
    "10.0.0.1",
    "::1",
    "\"fd00::/8\"",
    "10.0.0.0/8",
    "'192.0.2.1'",
    "a b",
    "\"\"",
    "fe80::1",
];
const PORTS: &[&str] = &[
    "80",
    "\"8000-8100\"",
    "'22'",
    "0",
    "http",
    "1-2-3",
    "~",
    "[]",
];
/// Known keys, then one the decoder does not know.
const RULE_KEYS: &[&str] = &[
    "name",
    "description",
    "direction",
    "from",
    "to",
    "action",
    "priority",
    "log",
    "protcol",
];
const FROM_KEYS: &[&str] = &[
    "user", "uid", "group", "gid", "cgroup", "host", "hosts", "usr",
];
const TO_KEYS: &[&str] = &["host", "hosts", "port", "ports", "protocol", "prot"];

/// A value from `pool`: most often one of its first (valid) half.
fn pick(pool: &'static [&'static str]) -> impl Strategy<Value = String> {
    let valid = pool[..pool.len().div_ceil(2)].to_vec();
    prop_oneof![
        3 => prop::sample::select(valid),
        1 => prop::sample::select(pool.to_vec()),
    ]
    .prop_map(str::to_owned)
}

/// Distinct keys in order, now and then one unknown or repeated.
fn keys(known: &'static [&'static str], most: usize) -> impl Strategy<Value = Vec<&'static str>> {
    let valid = &known[..known.len() - 1];
    (
        prop::sample::subsequence(valid.to_vec(), 0..=most.min(valid.len())),
        prop::option::weighted(0.15, prop::sample::select(known.to_vec())),
    )
        .prop_map(|(mut keys, extra)| {
            keys.extend(extra);
            keys
        })
}

fn list(pool: &'static [&'static str]) -> impl Strategy<Value = Tree> {
    prop_oneof![
        pick(pool).prop_map(Tree::Scalar),
        // A list of scalars: flow (`[a, b]`) or block (`- a` lines).
        (prop::collection::vec(pick(pool), 0..3), any::<bool>()).prop_map(|(items, flow)| {
            Tree::Seq {
                items: items.into_iter().map(Tree::Scalar).collect(),
                flow,
                indentless: false,
            }
        }),
    ]
}

fn scalar_for(key: &str) -> BoxedStrategy<Tree> {
    match key {
        "uid" | "gid" | "priority" => pick(NUMBERS).prop_map(Tree::Scalar).boxed(),
        "log" => pick(BOOLS).prop_map(Tree::Scalar).boxed(),
        "direction" => pick(DIRECTIONS).prop_map(Tree::Scalar).boxed(),
        "action" => pick(ACTIONS).prop_map(Tree::Scalar).boxed(),
        "protocol" => pick(PROTOCOLS).prop_map(Tree::Scalar).boxed(),
        "host" => pick(HOSTS).prop_map(Tree::Scalar).boxed(),
        "hosts" => list(HOSTS).boxed(),
        "port" | "ports" => list(PORTS).boxed(),
        _ => pick(NAMES).prop_map(Tree::Scalar).boxed(),
    }
}

fn mapping(known: &'static [&'static str]) -> impl Strategy<Value = Tree> {
    let entries = keys(known, 3).prop_flat_map(|keys| {
        keys.into_iter()
            .map(|k| (Just(k.to_owned()), scalar_for(k)))
            .collect::<Vec<_>>()
    });
    (entries, any::<bool>()).prop_map(|(entries, flow)| Tree::Map { entries, flow })
}

fn rule() -> impl Strategy<Value = Vec<(String, Tree)>> {
    keys(RULE_KEYS, 8).prop_flat_map(|keys| {
        keys.into_iter()
            .map(|k| {
                let value = match k {
                    "from" => prop_oneof![6 => mapping(FROM_KEYS), 1 => scalar_for("name")].boxed(),
                    "to" => prop_oneof![6 => mapping(TO_KEYS), 1 => list(PORTS)].boxed(),
                    _ => scalar_for(k),
                };
                (Just(k.to_owned()), value)
            })
            .collect::<Vec<_>>()
    })
}

/// Write `key: value` at `indent`, block collections on the lines below.
fn entry(key: &str, v: &Tree, indent: usize, comment: bool, out: &mut String) {
    let pad = " ".repeat(indent);
    let note = if comment { "  # note" } else { "" };
    match v {
        Tree::Seq {
            items, flow: false, ..
        } if !items.is_empty() => {
            out.push_str(&format!("{pad}{key}:{note}\n"));
            for item in items {
                out.push_str(&format!("{pad}  - {}{note}\n", inline(item)));
            }
        }
        Tree::Map {
            entries,
            flow: false,
        } if !entries.is_empty() => {
            out.push_str(&format!("{pad}{key}:{note}\n"));
            for (k, v) in entries {
                entry(k, v, indent + 2, comment, out);
            }
        }
        _ => out.push_str(&format!("{pad}{key}: {}{note}\n", inline(v))),
    }
}

fn document(rules: &[Vec<(String, Tree)>], comment: bool, dash_alone: bool) -> String {
    let mut out = String::from("version: \"1.0\"\nrules:\n");
    for r in rules {
        let mut body = String::new();
        for (k, v) in r {
            entry(k, v, 4, comment, &mut body);
        }
        if body.is_empty() {
            out.push_str("  - {}\n");
        } else if dash_alone {
            out.push_str("  -\n");
            out.push_str(&body);
        } else {
            // A compact mapping: the first key on the dash's line.
            out.push_str("  - ");
            out.push_str(&body[4..]);
        }
    }
    out
}

fn documents() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(rule(), 1..5),
        any::<bool>(),
        prop::bool::weighted(0.1),
    )
        .prop_map(|(rules, comment, dash_alone)| document(&rules, comment, dash_alone))
}

const INDICATORS: &[char] = &[
    ' ', '\n', ':', '-', '#', '\'', '"', '[', ']', '{', '}', ',', '&', '*', '!', '|', '>', '?',
    '\t',
];

fn mutated() -> impl Strategy<Value = String> {
    (documents(), common::edits(INDICATORS, 1..3))
        .prop_map(|(doc, edits)| common::edited(&doc, edits))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(4096), ..ProptestConfig::default() })]

    #[test]
    fn generated_rule_documents_read_the_same_with_both_readers(doc in documents()) {
        let agrees = fast_reader_agrees(&doc);
        prop_assert!(agrees.is_ok(), "{:?}\n{}", agrees, doc);
    }

    #[test]
    fn mutated_rule_documents_read_the_same_or_are_declined(doc in mutated()) {
        let agrees = fast_reader_agrees(&doc);
        prop_assert!(agrees.is_ok(), "{:?}\n{:?}", agrees, doc);
    }
}

/// The comparison is only worth something if the fast reader takes most generated documents.
#[test]
fn the_fast_reader_takes_most_generated_rule_documents() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let total = 1000;
    let mut taken = 0;
    for _ in 0..total {
        let doc = documents().new_tree(&mut runner).expect("doc").current();
        taken += usize::from(fast_reader_agrees(&doc).expect("agrees"));
    }
    assert!(
        taken * 10 > total * 8,
        "the fast reader took {taken} of {total}"
    );
}

/// Rules the way the specification and the examples write them are read by the fast reader.
#[test]
fn rules_written_as_in_the_examples_are_read_by_the_fast_reader() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/rules.yaml"
    ))
    .expect("examples/rules.yaml");
    assert!(text.matches("\n  - name:").count() >= 5);
    assert_eq!(fast_reader_agrees(&text), Ok(true));
}
