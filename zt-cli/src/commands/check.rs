//! `zt check`: validate a policy, resolve its names, print the ordered ruleset.

use crate::args::PolicyFile as Args;
use crate::exit::Outcome;
use crate::{Context, Report, policy_file};
use serde_json::json;

/// Validate and print; an invalid policy fails with every problem (exit 1).
pub fn run(ctx: &Context<'_>, args: &Args) -> Outcome<Report> {
    let file = policy_file::load(ctx, &args.config)?;
    let ruleset = file.policy.ruleset();
    let rules = file.policy.rules().len();
    ctx.say(format_args!(
        "{}: valid: {rules} rule{}, {} entries in evaluation order\n\n{ruleset}",
        args.config.display(),
        if rules == 1 { "" } else { "s" },
        ruleset.entries().len()
    ));
    Ok(Report::ok(json!({
        "command": "check",
        "ok": true,
        "config": file.path,
        "sha256": file.sha256,
        "rules": rules,
        "warnings": file.warnings.items,
        "ruleset": super::ruleset_json(&ruleset),
    })))
}
