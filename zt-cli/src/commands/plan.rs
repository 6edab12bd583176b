//! `zt plan`: what `apply` would change, by policy rule name.

use crate::args::PlanArgs;
use crate::exit::Outcome;
use crate::{Context, Report, backends, policy_file};
use serde_json::json;

/// Plan against the kernel and print the diff (and, on request, the exact artifact).
pub fn run(ctx: &Context<'_>, args: &PlanArgs) -> Outcome<Report> {
    let file = policy_file::load(ctx, &args.policy.config)?;
    let mut engine = backends::engine(ctx, false)?;
    let plan = engine.plan(&file)?;
    let artifact = match args.show_artifact {
        true => Some(engine.backend().artifact(&plan)?),
        false => None,
    };
    if let Some(artifact) = &artifact {
        ctx.say(artifact);
    }
    if !ctx.global.json {
        crate::say_diff(&plan.diff, ctx.full_diff);
    }
    let mut doc = json!({
        "command": "plan",
        "ok": true,
        "backend": plan.backend,
        "config": file.path,
        "sha256": file.sha256,
        "warnings": file.warnings.items,
        "diff": super::diff_json(&plan.diff),
    });
    if let Some(artifact) = artifact {
        doc["artifact"] = json!(artifact.files);
    }
    let code = if args.detailed_exitcode && !plan.is_empty() {
        2
    } else {
        0
    };
    Ok(Report { json: doc, code })
}
