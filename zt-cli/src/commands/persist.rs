//! `zt persist`: write what restores the policy at boot.
//!
//! The backend describes the files (`zt_core::persist`); this command writes them under
//! `--root` (default `/`), each atomically, and creates the link that enables the unit.

use crate::args::PersistArgs;
use crate::exit::{Classify, Failure, Outcome};
use crate::policy_file::PolicyFile;
use crate::state::write_atomically;
use crate::trail::{self, Entry};
use crate::{Context, Report, backends};
use serde_json::json;
use std::path::{Path, PathBuf};

/// Write the boot files for a policy.
pub fn run(ctx: &Context<'_>, args: &PersistArgs) -> Outcome<Report> {
    let file = PolicyFile::load_for_change(ctx, &args.policy.config)?;
    let persistence = backends::persistence(ctx, &file)?;
    let root = args.root.clone().unwrap_or_else(|| PathBuf::from("/"));
    let mut written = Vec::new();
    for f in &persistence.files {
        let path = under(&root, &f.path);
        create_parent(&path)?;
        write_atomically(&path, f.contents.as_bytes(), f.mode)?;
        ctx.say(format_args!("wrote {}", path.display()));
        written.push(path);
    }
    let mut linked = Vec::new();
    for l in &persistence.links {
        let path = under(&root, &l.path);
        create_parent(&path)?;
        match std::fs::read_link(&path) {
            Ok(existing) if existing == l.target => {}
            _ => {
                let tmp = path.with_extension("zt-tmp");
                let _ = std::fs::remove_file(&tmp);
                std::os::unix::fs::symlink(&l.target, &tmp)
                    .and_then(|()| std::fs::rename(&tmp, &path))
                    .or_system(format!("cannot link {}", path.display()))?;
            }
        }
        ctx.say(format_args!(
            "linked {} -> {}",
            path.display(),
            l.target.display()
        ));
        linked.push(path);
    }
    if args.root.is_none() {
        ctx.note("zt: run `systemctl daemon-reload` so systemd sees the unit");
    }
    if let Ok(state) =
        crate::state::StateDir::open(&ctx.global.state_dir, ctx.global.backend.as_str())
    {
        trail::append(
            state.root(),
            &Entry::new("persist", ctx.global.backend.as_str(), "persisted")
                .config(&file.path, &file.sha256),
        )?;
    }
    Ok(Report::ok(json!({
        "command": "persist",
        "ok": true,
        "backend": ctx.global.backend.as_str(),
        "config": file.path,
        "sha256": file.sha256,
        "files": written,
        "links": linked,
    })))
}

/// `path` (absolute on the target system) below `root`.
fn under(root: &Path, path: &Path) -> PathBuf {
    root.join(path.strip_prefix("/").unwrap_or(path))
}

fn create_parent(path: &Path) -> Outcome<()> {
    match path.parent() {
        Some(dir) => {
            std::fs::create_dir_all(dir).or_system(format!("cannot create {}", dir.display()))
        }
        None => Err(Failure::system(anyhow::anyhow!(
            "{} has no directory",
            path.display()
        ))),
    }
}
