//! `zt apply`: validate, plan, apply in one transaction, verify, record.
//!
//! Order matters for an operator's safety: nothing reaches the kernel before the whole policy
//! validated; the backend applies the plan atomically and returns a snapshot of what zt owned
//! before; a verification that finds drift restores that snapshot at once; only then are the
//! state records written. With `--confirm`, a detached watchdog restores it too unless the
//! change is confirmed in time.

use super::confirm;
use crate::args::ApplyArgs;
use crate::exit::{Failure, Outcome};
use crate::policy_file::PolicyFile;
use crate::state::{Access, RollbackPoint, StateDir};
use crate::trail::{self, Entry};
use crate::{Context, Report, backends, watchdog};
use serde_json::json;
use std::time::Instant;
use zt_core::Backend;

/// Apply a policy file.
pub fn run(ctx: &Context<'_>, args: &ApplyArgs) -> Outcome<Report> {
    let backend_name = ctx.global.backend.as_str();
    let state = StateDir::open(&ctx.global.state_dir, backend_name)?;
    let file = match PolicyFile::load(ctx, &args.policy.config) {
        Ok(file) => file,
        Err(failure) => {
            if !args.dry_run {
                let mut entry = Entry::new("apply", backend_name, "invalid").error(&failure.error);
                entry.config = Some(
                    std::path::absolute(&args.policy.config)
                        .unwrap_or_else(|_| args.policy.config.clone()),
                );
                trail::append(state.root(), &entry)?;
            }
            return Err(failure);
        }
    };
    let ruleset = file.policy.ruleset();
    let mut backend = backends::open(ctx)?;

    if args.dry_run {
        let plan = backend.plan(&ruleset)?;
        ctx.say(format!("{}", plan.diff).trim_end());
        ctx.say("dry run: nothing was changed");
        return Ok(Report::ok(json!({
            "command": "apply",
            "ok": true,
            "dry_run": true,
            "backend": backend_name,
            "config": file.path,
            "sha256": file.sha256,
            "diff": super::diff_json(&plan.diff),
        })));
    }

    let lock = state.lock(Access::Exclusive, ctx.global.no_wait)?;
    if let Some(pending) = state.pending()? {
        return Err(Failure::rejected(anyhow::anyhow!(
            "the change applied from {} awaits confirmation until {}; run `zt confirm` to keep \
             it or `zt rollback` to undo it before applying another",
            pending.config.display(),
            pending.deadline
        )));
    }
    let entry = Entry::new("apply", backend_name, "applied").config(&file.path, &file.sha256);

    let started = Instant::now();
    let plan = backend.plan(&ruleset).inspect_err(|e| {
        let _ = trail::append(state.root(), &entry.clone().result("failed").error(e));
    })?;
    ctx.verbose(format_args!("planned in {:.1?}", started.elapsed()));
    ctx.say(format!("{}", plan.diff).trim_end());
    let entry = entry.diff(&plan.diff);

    if plan.is_empty() {
        // Nothing is written to the kernel; the record follows the file now in force.
        if state
            .applied()?
            .is_none_or(|a| a.sha256 != file.sha256 || a.config != file.path)
        {
            state.set_applied(Some(&file.record()))?;
        }
        trail::append(state.root(), &entry.result("unchanged"))?;
        ctx.say("the kernel already enforces this policy: nothing was written");
        if args.confirm.is_some() {
            ctx.note("zt: nothing changed, so there is nothing to confirm");
        }
        return Ok(Report::ok(json!({
            "command": "apply",
            "ok": true,
            "changed": false,
            "backend": backend_name,
            "config": file.path,
            "sha256": file.sha256,
            "diff": super::diff_json(&plan.diff),
        })));
    }

    let started = Instant::now();
    let snapshot = backend.apply(&plan).inspect_err(|e| {
        let _ = trail::append(state.root(), &entry.clone().result("failed").error(e));
    })?;
    ctx.verbose(format_args!("applied in {:.1?}", started.elapsed()));
    verify_or_restore(ctx, backend.as_mut(), &ruleset, &snapshot, &state, &entry)?;

    let point = RollbackPoint {
        snapshot,
        previous: state.applied()?,
    };
    let record = file.record();
    state.set_rollback_point(Some(&point))?;
    state.set_applied(Some(&record))?;
    ctx.say(format_args!(
        "applied and verified: {}",
        plan.diff.summary()
    ));

    let mut doc = json!({
        "command": "apply",
        "ok": true,
        "changed": true,
        "backend": backend_name,
        "config": file.path,
        "sha256": file.sha256,
        "diff": super::diff_json(&plan.diff),
    });
    let Some(seconds) = args.confirm else {
        trail::append(state.root(), &entry)?;
        return Ok(Report::ok(doc));
    };

    let pending = match watchdog::arm(ctx, &state, seconds, &file.path) {
        Ok(pending) => pending,
        Err(failure) => {
            // Unguarded, the change must not stay: undo it now.
            confirm::undo(backend.as_mut(), &state)?;
            trail::append(
                state.root(),
                &entry.result("rolled-back").error(&failure.error),
            )?;
            return Err(failure.context("the change was rolled back"));
        }
    };
    trail::append(state.root(), &entry.result("applied-pending-confirmation"))?;
    drop(lock);

    let kept = watchdog::wait_for_decision(ctx, &state, &pending, &record)?;
    doc["confirmed"] = json!(kept);
    if kept {
        ctx.say("confirmed: the change is kept");
        Ok(Report::ok(doc))
    } else {
        ctx.say("not confirmed in time: the previous state was restored");
        doc["ok"] = json!(false);
        Ok(Report { json: doc, code: 1 })
    }
}

/// Verify what was just applied; on drift or failure, restore the snapshot at once and fail.
fn verify_or_restore(
    ctx: &Context<'_>,
    backend: &mut dyn Backend,
    ruleset: &zt_core::Ruleset,
    snapshot: &zt_core::Snapshot,
    state: &StateDir,
    entry: &Entry,
) -> Outcome<()> {
    let (failure, details) = match backend.verify(ruleset) {
        Ok(drift) if drift.is_empty() => return Ok(()),
        Ok(drift) => {
            ctx.say(format!("{drift}").trim_end());
            (
                Failure::rejected(anyhow::anyhow!(
                    "the kernel does not hold what was applied ({} difference{})",
                    drift.items.len(),
                    if drift.items.len() == 1 { "" } else { "s" }
                )),
                Some(json!({ "drift": drift.items })),
            )
        }
        Err(e) => (Failure::from(e), None),
    };
    let restored = backend.rollback(snapshot);
    trail::append(
        state.root(),
        &entry.clone().result("rolled-back").error(&failure.error),
    )?;
    if let Err(e) = restored {
        return Err(Failure::system(anyhow::anyhow!(
            "{:#}; restoring the previous state failed as well: {e}",
            failure.error
        )));
    }
    let failure = failure.context("verification failed; the previous state was restored");
    Err(match details {
        Some(d) => failure.with_details(d),
        None => failure,
    })
}
