//! `zt confirm` and `zt rollback`: keep or undo the last apply.

use crate::exit::Outcome;
use crate::{Context, Report, backends};
use serde_json::json;

/// Keep the change awaiting confirmation.
pub fn confirm(ctx: &Context<'_>) -> Outcome<Report> {
    let mut engine = backends::engine(ctx, false)?;
    let pending = engine.confirm()?;
    ctx.say(format_args!(
        "confirmed: the change applied from {} is kept",
        pending.config.display()
    ));
    Ok(Report::ok(json!({
        "command": "confirm",
        "ok": true,
        "backend": engine.state().backend(),
        "config": pending.config,
    })))
}

/// Undo the last apply.
pub fn rollback(ctx: &Context<'_>) -> Outcome<Report> {
    let mut engine = backends::engine(ctx, false)?;
    let restored = engine.rollback()?;
    match &restored {
        Some(a) => ctx.say(format_args!(
            "rolled back: the policy from {} (applied {}) is in force again",
            a.config.display(),
            a.applied_at
        )),
        None => ctx.say("rolled back: zt's rules are as they were before the last apply"),
    }
    Ok(Report::ok(json!({
        "command": "rollback",
        "ok": true,
        "backend": engine.state().backend(),
        "restored": restored.map(|a| json!({
            "config": a.config,
            "sha256": a.sha256,
            "applied_at": a.applied_at,
        })),
    })))
}
