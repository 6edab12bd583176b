//! `zt verify`: does the kernel enforce this policy?

use crate::args::PolicyFile as Args;
use crate::exit::Outcome;
use crate::policy_file::PolicyFile;
use crate::{Context, Report, backends};
use serde_json::json;

/// Exit 0 when the kernel matches the policy, 1 with the drift report.
pub fn run(ctx: &Context<'_>, args: &Args) -> Outcome<Report> {
    let file = PolicyFile::load(ctx, &args.config)?;
    let mut backend = backends::open(ctx)?;
    let drift = backend.verify(&file.policy.ruleset())?;
    ctx.say(format_args!("{drift}").to_string().trim_end());
    Ok(Report {
        json: json!({
            "command": "verify",
            "ok": drift.is_empty(),
            "backend": backend.name(),
            "config": file.path,
            "sha256": file.sha256,
            "drift": drift.items,
        }),
        code: if drift.is_empty() { 0 } else { 1 },
    })
}
