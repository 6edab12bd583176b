//! `zt confirm` and `zt rollback`: keep or undo the last apply.
//!
//! zt keeps one level of undo: the snapshot the last apply took. Rolling back restores it in
//! one transaction, makes the policy before it the current record again, and forgets the
//! snapshot (a second rollback has nothing to undo).

use crate::exit::{Failure, Outcome};
use crate::recovery::recover;
use crate::state::{Access, StateDir};
use crate::trail::{self, Entry};
use crate::{Context, Report, backends};
use serde_json::json;
use zt_core::Backend;

/// Keep the change awaiting confirmation.
pub fn confirm(ctx: &Context<'_>) -> Outcome<Report> {
    let backend = ctx.global.backend.as_str();
    let state = StateDir::open(&ctx.global.state_dir, backend)?;
    let _lock = state.lock(Access::Exclusive, ctx.global.no_wait)?;
    recover(backends::open(ctx)?.as_mut(), &state)?;
    let Some(pending) = state.pending()? else {
        return Err(Failure::rejected(anyhow::anyhow!(
            "no change awaits confirmation (the {backend} backend's last apply was either \
             confirmed, rolled back, or made without --confirm)"
        )));
    };
    keep(&state, &pending)?;
    ctx.say(format_args!(
        "confirmed: the change applied from {} is kept",
        pending.config.display()
    ));
    Ok(Report::ok(json!({
        "command": "confirm",
        "ok": true,
        "backend": backend,
        "config": pending.config,
    })))
}

/// Mark a pending change as kept (the caller holds the lock); the watchdog, finding no
/// pending change with its token, leaves it alone.
pub fn keep(state: &StateDir, pending: &crate::state::Pending) -> Outcome<()> {
    state.set_pending(None)?;
    let mut entry = Entry::new("confirm", state.backend(), "confirmed");
    entry.config = Some(pending.config.clone());
    trail::append(state.root(), &entry)
}

/// Undo the last apply.
pub fn rollback(ctx: &Context<'_>) -> Outcome<Report> {
    let name = ctx.global.backend.as_str();
    let state = StateDir::open(&ctx.global.state_dir, name)?;
    let _lock = state.lock(Access::Exclusive, ctx.global.no_wait)?;
    let mut backend = backends::open(ctx)?;
    recover(backend.as_mut(), &state)?;
    let restored = undo(backend.as_mut(), &state).inspect_err(|f| {
        let _ = trail::append(
            state.root(),
            &Entry::new("rollback", name, "failed").error(&f.error),
        );
    })?;
    let mut entry = Entry::new("rollback", name, "rolled-back");
    if let Some(applied) = &restored {
        entry = entry.config(&applied.config, &applied.sha256);
    }
    trail::append(state.root(), &entry)?;
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
        "backend": name,
        "restored": restored.map(|a| json!({
            "config": a.config,
            "sha256": a.sha256,
            "applied_at": a.applied_at,
        })),
    })))
}

/// Restore the last apply's snapshot and make the record before it current again (the caller
/// holds the lock). Returns that record.
pub fn undo(backend: &mut dyn Backend, state: &StateDir) -> Outcome<Option<crate::state::Applied>> {
    let Some(point) = state.rollback_point()? else {
        return Err(Failure::rejected(anyhow::anyhow!(
            "nothing to roll back: no apply with the {} backend is recorded in {} (zt keeps one \
             level of undo)",
            backend.name(),
            state.root().display()
        )));
    };
    backend.rollback(&point.snapshot)?;
    state.set_applied(point.previous.as_ref())?;
    state.set_rollback_point(None)?;
    state.set_pending(None)?;
    Ok(point.previous)
}
