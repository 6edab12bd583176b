//! `zt flush`: remove everything zt owns, and forget what was applied.

use crate::exit::Outcome;
use crate::{Context, Report, backends};
use serde_json::json;

/// Flush zt's kernel objects; other tools' rules are untouched.
pub fn run(ctx: &Context<'_>) -> Outcome<Report> {
    let mut engine = backends::engine(ctx, false)?;
    engine.flush()?;
    let name = engine.state().backend().to_owned();
    ctx.say(format_args!(
        "flushed: the {name} backend's rules are gone; other tools' rules were not touched"
    ));
    Ok(Report::ok(
        json!({"command": "flush", "ok": true, "backend": name}),
    ))
}
