//! One module per command; each returns a [`crate::Report`] or a classified failure.

pub mod apply;
pub mod audit;
pub mod check;
pub mod confirm;
pub mod flush;
pub mod generate;
pub mod persist;
pub mod plan;
pub mod status;
pub mod verify;

use serde_json::{Value, json};
use zt_core::{Diff, Ruleset};

/// The ruleset as JSON: one object per entry, in evaluation order (`position` from 1,
/// `name`, `hook`, `match`, `action`, `verdict` — null for log-only entries).
pub fn ruleset_json(ruleset: &Ruleset) -> Value {
    let entries: Vec<Value> = ruleset
        .entries()
        .iter()
        .enumerate()
        .map(|(i, e)| {
            json!({
                "position": i + 1,
                "name": e.name(),
                "hook": e.hook().to_string(),
                "match": e.match_text(),
                "action": e.action_text(),
                "verdict": e.verdict().map(|v| v.to_string()),
            })
        })
        .collect();
    Value::Array(entries)
}

/// A diff as JSON: `changes` (`kind`, `subject`, `detail`) and `summary` (`add`, `modify`,
/// `remove`).
pub fn diff_json(diff: &Diff) -> Value {
    json!({
        "changes": diff.changes,
        "summary": diff.counts(),
    })
}
