//! `zt persist`: write what restores the policy at boot.
//!
//! The backend describes the files; the engine writes them under `--root` (default `/`), each
//! atomically, and creates the link that enables the unit.

use crate::args::PersistArgs;
use crate::exit::{Classify, Outcome};
use crate::{Context, Report, backends, policy_file};
use serde_json::json;
use std::path::PathBuf;

/// Write the boot files for a policy.
pub fn run(ctx: &Context<'_>, args: &PersistArgs) -> Outcome<Report> {
    let file = policy_file::load_for_change(ctx, &args.policy.config, args.trust.trust())?;
    let mut engine = backends::engine(ctx, false)?;
    let root = args.root.clone().unwrap_or_else(|| PathBuf::from("/"));
    let zt = std::env::current_exe().or_system("cannot find the zt executable")?;
    let done = engine.persist(&file, &root, &zt)?;
    for path in &done.files {
        ctx.say(format_args!("wrote {}", path.display()));
    }
    for path in &done.links {
        let target = std::fs::read_link(path).unwrap_or_default();
        ctx.say(format_args!(
            "linked {} -> {}",
            path.display(),
            target.display()
        ));
    }
    if args.root.is_none() {
        ctx.note("zt: run `systemctl daemon-reload` so systemd sees the unit");
    }
    Ok(Report::ok(json!({
        "command": "persist",
        "ok": true,
        "backend": engine.state().backend(),
        "config": file.path,
        "sha256": file.sha256,
        "files": done.files,
        "links": done.links,
    })))
}
