//! Reading the policy file a command names, and telling the operator what validation and the
//! file's permissions warn about.

use crate::Context;
use crate::exit::Outcome;
use std::path::Path;
use zt_core::SystemResolver;
use zt_engine::{EngineError, PolicyFile};

/// Read and validate `path`, resolving names on this host; warnings go to standard error. An
/// invalid policy is exit 1 with every problem; an unreadable file is exit 1 too (the operator
/// named a file that is not a policy). A file others may write draws a warning.
pub fn load(ctx: &Context<'_>, path: &Path) -> Outcome<PolicyFile> {
    let started = std::time::Instant::now();
    let file = PolicyFile::read(path, &SystemResolver::new());
    ctx.verbose(format_args!(
        "read and validated in {:.1?}",
        started.elapsed()
    ));
    shown(ctx, file)
}

/// [`load`] for a command that changes the kernel or the boot files (`apply`, `persist`): a
/// file every user may write is refused, since whoever can write it decides what zt, running
/// as root, enforces.
pub fn load_for_change(ctx: &Context<'_>, path: &Path) -> Result<PolicyFile, EngineError> {
    let started = std::time::Instant::now();
    let file = PolicyFile::read_for_change(path, &SystemResolver::new());
    ctx.verbose(format_args!(
        "read and validated in {:.1?}",
        started.elapsed()
    ));
    let file = file?;
    warn(ctx, &file);
    Ok(file)
}

fn shown(ctx: &Context<'_>, file: Result<PolicyFile, EngineError>) -> Outcome<PolicyFile> {
    let file = file?;
    warn(ctx, &file);
    Ok(file)
}

fn warn(ctx: &Context<'_>, file: &PolicyFile) {
    if let Some(problem) = &file.permissions {
        ctx.note(format_args!(
            "zt: warning: {}: {problem}: whoever can write it decides what zt enforces as \
             root; make it writable by root only (chmod go-w, chown root)",
            file.path.display()
        ));
    }
    if !file.warnings.is_empty() {
        ctx.note(&file.warnings);
    }
}
