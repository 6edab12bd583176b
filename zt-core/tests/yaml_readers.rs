//! The fast YAML reader never disagrees with the full one.
//!
//! Documents are generated in every style zt's configurations are written in (block and flow
//! collections, indentless sequences, compact mappings in sequence items, quoting, comments),
//! then some are mutated with YAML's indicator characters. Whenever the fast reader accepts a
//! text, the full reader must produce the identical tree, positions included.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic on a broken fixture

mod common;
use common::{Tree, cases, inline};

use proptest::prelude::*;
use zt_core::yaml::fast_reader_agrees;

const SCALARS: &[&str] = &[
    "a",
    "web-user",
    "6379",
    "-5",
    "1.5",
    "true",
    "yes",
    "~",
    "null",
    "10.0.0.0/8",
    "::1",
    "fe80::1",
    "2001:db8::/32",
    "a:b",
    "x#y",
    "a b",
    "'quoted'",
    "'it''s'",
    "\"dq\"",
    "\"a#b\"",
    "\"8000-8100\"",
    "'a: b'",
    "http://x",
    "-x",
    ":x",
];
const KEYS: &[&str] = &[
    "name", "from", "to", "port", "ports", "rules", "k-1", "x_y", "A9",
];

fn tree() -> impl Strategy<Value = Tree> {
    let leaf = prop::sample::select(SCALARS.to_vec()).prop_map(|s| Tree::Scalar(s.to_owned()));
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            (
                prop::collection::vec(inner.clone(), 0..4),
                any::<bool>(),
                any::<bool>()
            )
                .prop_map(|(items, flow, indentless)| Tree::Seq {
                    items,
                    flow,
                    indentless
                }),
            (
                prop::collection::vec((prop::sample::select(KEYS.to_vec()), inner), 0..4),
                any::<bool>()
            )
                .prop_map(|(entries, flow)| Tree::Map {
                    entries: entries
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect(),
                    flow,
                }),
        ]
    })
}

fn is_block(t: &Tree) -> bool {
    match t {
        Tree::Scalar(_) => false,
        Tree::Seq { items, flow, .. } => !flow && !items.is_empty(),
        Tree::Map { entries, flow } => !flow && !entries.is_empty(),
    }
}

/// Render `t` as a block node whose lines start at column `indent`.
fn block(t: &Tree, indent: usize, out: &mut String, comment: bool) {
    let pad = " ".repeat(indent);
    let note = if comment { " # note" } else { "" };
    match t {
        Tree::Map { entries, .. } => {
            for (k, v) in entries {
                out.push_str(&format!("{pad}{k}:"));
                match v {
                    Tree::Seq {
                        indentless: true, ..
                    } if is_block(v) => {
                        out.push('\n');
                        block(v, indent, out, comment);
                    }
                    _ if is_block(v) => {
                        out.push_str(&format!("{note}\n"));
                        block(v, indent + 2, out, comment);
                    }
                    _ => out.push_str(&format!(" {}{note}\n", inline(v))),
                }
            }
        }
        Tree::Seq { items, .. } => {
            for item in items {
                match item {
                    Tree::Map { entries, .. } if is_block(item) => {
                        // A compact mapping: the first key on the dash's line.
                        let mut inner = String::new();
                        block(item, indent + 2, &mut inner, comment);
                        out.push_str(&format!("{pad}- {}", &inner[indent + 2..]));
                        let _ = entries;
                    }
                    _ if is_block(item) => {
                        out.push_str(&format!("{pad}-\n"));
                        block(item, indent + 2, out, comment);
                    }
                    _ => out.push_str(&format!("{pad}- {}{note}\n", inline(item))),
                }
            }
        }
        Tree::Scalar(_) => out.push_str(&format!("{pad}{}\n", inline(t))),
    }
}

fn document(t: &Tree, comment: bool) -> String {
    let mut out = String::new();
    if is_block(t) {
        block(t, 0, &mut out, comment);
    } else {
        out.push_str(&inline(t));
        out.push('\n');
    }
    out
}

const INDICATORS: &[char] = &[
    ' ', '\n', ':', '-', '#', '\'', '"', '[', ']', '{', '}', ',', '&', '*', '!', '|', '>', '?',
    '\t', '%',
];

fn mutated() -> impl Strategy<Value = String> {
    (tree(), any::<bool>(), common::edits(INDICATORS, 0..3))
        .prop_map(|(t, comment, edits)| common::edited(&document(&t, comment), edits))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(4096), ..ProptestConfig::default() })]

    #[test]
    fn generated_documents_read_the_same_with_both_readers(t in tree(), comment in any::<bool>()) {
        let doc = document(&t, comment);
        prop_assert!(fast_reader_agrees(&doc).is_ok(), "{:?}\n{}", fast_reader_agrees(&doc), doc);
    }

    #[test]
    fn mutated_documents_read_the_same_or_are_declined(doc in mutated()) {
        prop_assert!(fast_reader_agrees(&doc).is_ok(), "{:?}\n{:?}", fast_reader_agrees(&doc), doc);
    }
}

/// The differential test is only worth something if the fast reader takes most documents.
#[test]
fn the_fast_reader_takes_most_generated_documents() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut accepted, total) = (0, 2000);
    for _ in 0..total {
        let t = tree().new_tree(&mut runner).expect("tree").current();
        if fast_reader_agrees(&document(&t, false)) == Ok(true) {
            accepted += 1;
        }
    }
    assert!(
        accepted * 2 > total,
        "the fast reader took only {accepted} of {total}"
    );
}

/// Found by the fuzzer: both readers built the same tree, but only the full one streamed the
/// `rules` flow sequence that starts on the line after its key.
#[test]
fn a_flow_sequence_on_the_line_after_the_streamed_key_streams_in_both_readers() {
    let text = "# z\nrules:\n\n  \n  ['',-';ee ']";
    if let Err(disagreement) = zt_core::yaml::fast_reader_agrees(text) {
        panic!("{disagreement}");
    }
}
