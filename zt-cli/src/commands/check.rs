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
    if file.scope.is_written() {
        ctx.say(format_args!(
            "\nfleet: selector {}, order {}: these matter only to zt-agent, which composes \
             the policies of a fleet store; `zt apply` on a single host ignores them\n",
            selector_words(file.scope.selector()),
            file.scope.order()
        ));
    }
    Ok(Report::ok(json!({
        "command": "check",
        "ok": true,
        "config": file.path,
        "sha256": file.sha256,
        "rules": rules,
        "warnings": file.warnings.items,
        "ruleset": super::ruleset_json(&ruleset),
        "fleet": file.scope,
    })))
}

/// `{role=web, tier=1}`, or `every host` for an empty selector.
fn selector_words(selector: &std::collections::BTreeMap<String, String>) -> String {
    if selector.is_empty() {
        return "(none: every host)".to_owned();
    }
    let pairs: Vec<String> = selector.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{{{}}}", pairs.join(", "))
}
