//! `zt plan`: what `apply` would change, by policy rule name.

use crate::args::PlanArgs;
use crate::exit::Outcome;
use crate::policy_file::PolicyFile;
use crate::{Context, Report, backends};
use serde_json::json;
use std::time::Instant;

/// Plan against the kernel and print the diff (and, on request, the exact artifact).
pub fn run(ctx: &Context<'_>, args: &PlanArgs) -> Outcome<Report> {
    let file = PolicyFile::load(ctx, &args.policy.config)?;
    let mut backend = backends::open(ctx)?;
    let started = Instant::now();
    let plan = backend.plan(&file.policy.ruleset())?;
    ctx.verbose(format_args!("planned in {:.1?}", started.elapsed()));
    if args.show_artifact {
        ctx.say(format_args!("{}", plan.artifact));
    }
    ctx.say(format_args!("{}", plan.diff).to_string().trim_end());
    let mut doc = json!({
        "command": "plan",
        "ok": true,
        "backend": backend.name(),
        "config": file.path,
        "sha256": file.sha256,
        "warnings": file.warnings_json(),
        "diff": super::diff_json(&plan.diff),
    });
    if args.show_artifact {
        doc["artifact"] = json!(plan.artifact.files);
    }
    let code = if args.detailed_exitcode && !plan.is_empty() {
        2
    } else {
        0
    };
    Ok(Report { json: doc, code })
}
