//! `zt verify`: does the kernel enforce this policy?

use crate::args::PolicyFile as Args;
use crate::exit::Outcome;
use crate::{Context, Report, backends, policy_file};
use serde_json::json;

/// Exit 0 when the kernel matches the policy, 1 with the drift report.
pub fn run(ctx: &Context<'_>, args: &Args) -> Outcome<Report> {
    let file = policy_file::load(ctx, &args.config)?;
    let mut engine = backends::engine(ctx, false)?;
    let drift = engine.verify(&file)?;
    ctx.say(drift.to_string().trim_end());
    Ok(Report {
        json: json!({
            "command": "verify",
            "ok": drift.is_empty(),
            "backend": engine.state().backend(),
            "config": file.path,
            "sha256": file.sha256,
            "drift": drift.items,
        }),
        code: if drift.is_empty() { 0 } else { 1 },
    })
}
