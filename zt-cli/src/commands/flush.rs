//! `zt flush`: remove everything zt owns, and forget what was applied.

use crate::exit::{Outcome, describe};
use crate::{Context, Report, backends};
use serde_json::json;

/// Flush zt's kernel objects; other tools' rules are untouched. Once the kernel is flushed
/// the command succeeds: what the state directory could not record (a read-only one) is a
/// warning, since the rules are gone whatever the records say.
pub fn run(ctx: &Context<'_>) -> Outcome<Report> {
    let mut engine = backends::engine(ctx, false)?;
    let flushed = engine.flush()?;
    let name = engine.state().backend().to_owned();
    ctx.say(format_args!(
        "flushed: the {name} backend's rules are gone; other tools' rules were not touched"
    ));
    if let Some(aside) = &flushed.set_aside {
        ctx.note(format_args!(
            "zt: the unreadable intent.json was moved aside to {} (with zt's rules gone, it \
             has nothing left to recover)",
            aside.display()
        ));
    }
    let warnings: Vec<String> = flushed
        .unrecorded
        .into_iter()
        .map(|e| {
            format!(
                "the flush could not be recorded: {}",
                describe(&anyhow::Error::new(e))
            )
        })
        .collect();
    for warning in &warnings {
        ctx.note(format_args!("zt: warning: {warning}"));
    }
    if !warnings.is_empty() {
        ctx.note(
            "zt: the state directory may still name the policy applied before the flush; run              `zt flush` again once it can be written",
        );
    }
    Ok(Report::ok(json!({
        "command": "flush",
        "ok": true,
        "backend": name,
        "set_aside": flushed.set_aside,
        "warnings": warnings,
    })))
}
