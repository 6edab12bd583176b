//! `zt apply`: the engine's transaction, its outcome as text or JSON, and the wait for a
//! confirmation.

use crate::args::ApplyArgs;
use crate::exit::Outcome;
use crate::{Context, Report, backends, policy_file, watchdog};
use serde_json::json;
use std::time::Duration;
use zt_core::fault;
use zt_engine::state::StateDir;
use zt_engine::{ApplyOptions, trail};

/// Apply a policy file.
pub fn run(ctx: &Context<'_>, args: &ApplyArgs) -> Outcome<Report> {
    let file = match policy_file::load_for_change(ctx, &args.policy.config, args.trust.trust()) {
        Ok(file) => file,
        Err(e) => {
            if !args.dry_run {
                let state = StateDir::new(&ctx.global.state_dir, ctx.global.backend.as_str());
                trail::record_refusal(&state, "apply", &args.policy.config, &e);
            }
            return Err(e.into());
        }
    };
    fault::kill_at("validated");
    let mut engine = backends::engine(ctx, true)?;
    let options = match (args.dry_run, args.confirm) {
        (true, _) => ApplyOptions::dry_run(),
        (false, None) => ApplyOptions::default(),
        (false, Some(s)) => ApplyOptions::confirm_within(Duration::from_secs(u64::from(s))),
    };
    let outcome = engine.apply(&file, options)?;
    let mut doc = json!({
        "command": "apply",
        "ok": true,
        "backend": engine.state().backend(),
        "config": file.path,
        "sha256": file.sha256,
    });
    if args.dry_run {
        ctx.say("dry run: nothing was changed");
        doc["dry_run"] = json!(true);
        doc["diff"] = super::diff_json(&outcome.plan.diff);
        return Ok(Report::ok(doc));
    }
    doc["changed"] = json!(outcome.changed);
    if ctx.global.json {
        doc["diff"] = super::diff_json(&outcome.plan.diff);
    }
    if !outcome.changed {
        ctx.say("the kernel already enforces this policy: nothing was written");
        if args.confirm.is_some() {
            ctx.note("zt: nothing changed, so there is nothing to confirm");
        }
        return Ok(Report::ok(doc));
    }
    ctx.say(format_args!(
        "applied and verified: {}",
        outcome.plan.diff.summary()
    ));
    let (Some(pending), Some(record)) = (&outcome.pending, &outcome.record) else {
        return Ok(Report::ok(doc));
    };
    let kept = watchdog::wait_for_decision(ctx, &mut engine, pending, record)?;
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
