//! `zt apply`: validate, plan, apply in one transaction, verify, record.
//!
//! Order matters for an operator's safety:
//! 1. nothing reaches the kernel before the whole policy validated and the state directory
//!    proved writable;
//! 2. before the kernel is touched, `intent.json` records what this apply will record and the
//!    snapshot that undoes it, and with `--confirm` the watchdog is already armed — so an
//!    apply that dies at any later moment is completed or dropped by the next command
//!    (`recovery`), and an unconfirmed one is still rolled back;
//! 3. the backend applies the plan; if it fails, the kernel is checked and the snapshot put
//!    back where the backend could not leave it as it was; verification that finds drift
//!    restores the snapshot at once;
//! 4. the records are written; if that fails (a full disk), the kernel is restored too, so the
//!    kernel never enforces a policy the state directory does not know.

use crate::args::ApplyArgs;
use crate::exit::{Failure, Outcome};
use crate::policy_file::PolicyFile;
use crate::recovery::{Recovered, recover, settle};
use crate::state::{Access, Applied, Intent, RollbackPoint, StateDir};
use crate::trail::{self, Entry};
use crate::{Context, Report, backends, watchdog};
use serde_json::json;
use std::time::Instant;
use zt_core::fault;
use zt_core::{Backend, Ruleset, Snapshot};

/// Apply a policy file.
pub fn run(ctx: &Context<'_>, args: &ApplyArgs) -> Outcome<Report> {
    let backend_name = ctx.global.backend.as_str();
    let state = StateDir::open(&ctx.global.state_dir, backend_name)?;
    let file = match PolicyFile::load_for_change(ctx, &args.policy.config) {
        Ok(file) => file,
        Err(failure) => {
            if !args.dry_run {
                let mut entry = Entry::new("apply", backend_name, "invalid").error(&failure.error);
                entry.config = Some(
                    std::path::absolute(&args.policy.config)
                        .unwrap_or_else(|_| args.policy.config.clone()),
                );
                let _ = trail::append(state.root(), &entry);
            }
            return Err(failure);
        }
    };
    fault::kill_at("validated");
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
    fault::kill_at("locked");
    recover(backend.as_mut(), &state)?;
    if let Some(pending) = state.pending()? {
        return Err(Failure::rejected(anyhow::anyhow!(
            "the change applied from {} awaits confirmation until {}; run `zt confirm` to keep \
             it or `zt rollback` to undo it before applying another",
            pending.config.display(),
            pending.deadline
        )));
    }
    let entry = Entry::new("apply", backend_name, "applied").config(&file.path, &file.sha256);
    let failed = |entry: &Entry, e: &dyn std::fmt::Display| {
        let _ = trail::append(state.root(), &entry.clone().result("failed").error(e));
    };

    let started = Instant::now();
    let plan = backend.plan(&ruleset).inspect_err(|e| failed(&entry, e))?;
    fault::kill_at("planned");
    ctx.verbose(format_args!("planned in {:.1?}", started.elapsed()));
    ctx.say(format!("{}", plan.diff).trim_end());
    let entry = entry.diff(&plan.diff);
    let mut doc = json!({
        "command": "apply",
        "ok": true,
        "changed": !plan.is_empty(),
        "backend": backend_name,
        "config": file.path,
        "sha256": file.sha256,
    });
    if ctx.global.json {
        doc["diff"] = super::diff_json(&plan.diff);
    }

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
        return Ok(Report::ok(doc));
    }

    // Everything the kernel change needs afterwards is prepared and recorded first.
    state
        .check_writable()
        .inspect_err(|f| failed(&entry, &f.error))?;
    let snapshot = backend.snapshot().inspect_err(|e| failed(&entry, e))?;
    let record = file.record();
    let point = RollbackPoint {
        snapshot: snapshot.clone(),
        previous: state.applied()?,
    };
    let intent = Intent {
        record: record.clone(),
        point: point.clone(),
    };
    state.set_intent(Some(&intent))?;
    fault::kill_at("intent-recorded");
    let pending = match args.confirm {
        None => None,
        Some(seconds) => match watchdog::arm(ctx, &state, seconds, &record) {
            Ok(p) => Some(p),
            Err(failure) => {
                state.set_intent(None)?;
                failed(&entry, &failure.error);
                return Err(failure);
            }
        },
    };
    fault::kill_at("armed");

    let started = Instant::now();
    if let Err(e) = backend.apply(&plan) {
        // A failing backend leaves the kernel as it was (nft: one transaction; iptables: IPv4
        // is put back when IPv6 fails; eBPF: the generation never flipped). Settling checks
        // that, and puts the snapshot back where a backend could not.
        if pending.is_some() {
            let _ = state.set_pending(None);
        }
        failed(&entry, &e);
        let failure = Failure::from(e);
        return Err(match settle(backend.as_mut(), &state, &intent) {
            Ok(Recovered::Completed) => {
                failure.context("the kernel took the change nonetheless, and it is recorded")
            }
            Ok(Recovered::Restored) => failure.context("the previous state was restored"),
            Ok(Recovered::Nothing | Recovered::Dropped) => failure.context("nothing was changed"),
            Err(also) => failure.context(format!(
                "checking what the kernel holds failed as well ({}); the next zt command \
                 settles it",
                crate::exit::describe(&also.error)
            )),
        });
    }
    fault::kill_at("committed");
    ctx.verbose(format_args!("applied in {:.1?}", started.elapsed()));
    // From here on a failure puts the snapshot back.
    let undo = |backend: &mut dyn Backend, failure| {
        restore(
            backend,
            &state,
            &snapshot,
            &entry,
            failure,
            pending.is_some(),
        )
    };
    if let Err(failure) = verify(ctx, backend.as_mut(), &ruleset) {
        return Err(undo(backend.as_mut(), failure));
    }
    fault::kill_at("verified");

    if let Err(failure) = record_apply(&state, &point, &record) {
        let failure = failure.context("the change could not be recorded");
        return Err(undo(backend.as_mut(), failure));
    }
    ctx.say(format_args!(
        "applied and verified: {}",
        plan.diff.summary()
    ));

    let Some(pending) = pending else {
        trail::append(state.root(), &entry)?;
        return Ok(Report::ok(doc));
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

/// Write the records of a successful apply: how to undo it, then what is in force; the
/// intent goes last.
fn record_apply(state: &StateDir, point: &RollbackPoint, record: &Applied) -> Outcome<()> {
    if fault::active("record-fails") {
        return Err(Failure::system(anyhow::anyhow!(
            "cannot write the state directory: injected fault"
        )));
    }
    state.set_rollback_point(Some(point))?;
    fault::kill_at("rollback-point-recorded");
    state.set_applied(Some(record))?;
    fault::kill_at("recorded");
    state.set_intent(None)
}

/// Forget the intent (and the pending confirmation) of an apply that changed nothing.
fn abandon(state: &StateDir, armed: bool) {
    if armed {
        let _ = state.set_pending(None);
    }
    let _ = state.set_intent(None);
}

/// Check that the kernel holds what was just applied.
fn verify(ctx: &Context<'_>, backend: &mut dyn Backend, ruleset: &Ruleset) -> Outcome<()> {
    let drift = backend.verify(ruleset)?;
    if drift.is_empty() {
        return Ok(());
    }
    ctx.say(format!("{drift}").trim_end());
    Err(Failure::rejected(anyhow::anyhow!(
        "the kernel does not hold what was applied ({} difference{})",
        drift.items.len(),
        if drift.items.len() == 1 { "" } else { "s" }
    ))
    .with_details(json!({ "drift": drift.items })))
}

/// Put the snapshot back after an apply that cannot stand, record it, and return the failure
/// to report (worse if the restore failed too).
fn restore(
    backend: &mut dyn Backend,
    state: &StateDir,
    snapshot: &Snapshot,
    entry: &Entry,
    failure: Failure,
    armed: bool,
) -> Failure {
    let restored = backend.rollback(snapshot);
    let failure = match restored {
        Ok(()) => {
            abandon(state, armed);
            failure.context("the previous state was restored")
        }
        Err(e) => Failure::system(anyhow::anyhow!(
            "{}; restoring the previous state failed as well: {e} (the next zt command \
             reconciles the records with the kernel)",
            crate::exit::describe(&failure.error)
        )),
    };
    let _ = trail::append(
        state.root(),
        &entry
            .clone()
            .result("rolled-back")
            .error(crate::exit::describe(&failure.error)),
    );
    failure
}
