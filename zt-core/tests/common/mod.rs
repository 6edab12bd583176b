//! Helpers shared by zt-core's property tests.

// Each test crate uses only some of them.
#![allow(dead_code)]

use proptest::prelude::*;
use proptest::sample::Index;
use std::ops::Range;

/// `PROPTEST_CASES` when set (long local runs), else the default for CI.
pub fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One edit of a document: at a place, insert (`true`) or remove a character.
pub type Edit = (Index, char, bool);

/// `count` edits, each inserting one of `indicators` or removing a character.
pub fn edits(indicators: &'static [char], count: Range<usize>) -> impl Strategy<Value = Vec<Edit>> {
    let edit = (
        any::<Index>(),
        prop::sample::select(indicators.to_vec()),
        any::<bool>(),
    );
    prop::collection::vec(edit, count)
}

/// `doc` with `edits` applied in turn (on character boundaries; none once it is empty).
pub fn edited(doc: &str, edits: Vec<Edit>) -> String {
    let mut doc: Vec<char> = doc.chars().collect();
    for (at, c, insert) in edits {
        if doc.is_empty() {
            break;
        }
        let i = at.index(doc.len());
        if insert {
            doc.insert(i, c);
        } else {
            doc.remove(i);
        }
    }
    doc.into_iter().collect()
}

/// A YAML value to render, as the readers' property tests generate it.
#[derive(Clone, Debug)]
pub enum Tree {
    Scalar(String),
    Seq {
        items: Vec<Tree>,
        flow: bool,
        indentless: bool,
    },
    Map {
        entries: Vec<(String, Tree)>,
        flow: bool,
    },
}

/// `t` in flow style, on one line.
pub fn inline(t: &Tree) -> String {
    match t {
        Tree::Scalar(s) => s.clone(),
        Tree::Seq { items, .. } => format!(
            "[{}]",
            items.iter().map(inline).collect::<Vec<_>>().join(", ")
        ),
        Tree::Map { entries, .. } => format!(
            "{{{}}}",
            entries
                .iter()
                .map(|(k, v)| format!("{k}: {}", inline(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}
