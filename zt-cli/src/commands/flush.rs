//! `zt flush`: remove everything zt owns, and forget what was applied.

use crate::exit::Outcome;
use crate::state::{Access, StateDir};
use crate::trail::{self, Entry};
use crate::{Context, Report, backends};
use serde_json::json;

/// Flush zt's kernel objects; other tools' rules are untouched.
pub fn run(ctx: &Context<'_>) -> Outcome<Report> {
    let name = ctx.global.backend.as_str();
    let state = StateDir::open(&ctx.global.state_dir, name)?;
    let _lock = state.lock(Access::Exclusive, ctx.global.no_wait)?;
    let mut backend = backends::open(ctx)?;
    backend.flush().inspect_err(|e| {
        let _ = trail::append(state.root(), &Entry::new("flush", name, "failed").error(e));
    })?;
    state.set_pending(None)?;
    state.set_intent(None)?;
    state.set_rollback_point(None)?;
    state.set_applied(None)?;
    trail::append(state.root(), &Entry::new("flush", name, "flushed"))?;
    ctx.say(format_args!(
        "flushed: the {name} backend's rules are gone; other tools' rules were not touched"
    ));
    Ok(Report::ok(
        json!({"command": "flush", "ok": true, "backend": name}),
    ))
}
