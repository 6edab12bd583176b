//! Reading the policy file a command names, and telling the operator what validation and the
//! file's permissions warn about.

use crate::Context;
use crate::exit::Outcome;
use std::path::Path;
use zt_core::SystemResolver;
use zt_engine::{EngineError, PolicyFile, Trust};

/// Read and validate `path`, resolving names on this host; warnings go to standard error. An
/// invalid policy is exit 1 with every problem; an unreadable file is exit 1 too (the operator
/// named a file that is not a policy, a device, a FIFO with no writer). A file others may
/// change, itself or through a directory on its path, draws a warning.
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
/// file that someone other than root, the caller and whom `trust` names may replace or
/// rewrite is refused, since whoever can decides what zt, running as root, enforces (see
/// [`zt_engine::Trust`]).
pub fn load_for_change(
    ctx: &Context<'_>,
    path: &Path,
    trust: Trust,
) -> Result<PolicyFile, EngineError> {
    let started = std::time::Instant::now();
    let file = PolicyFile::read_for_change_trusting(path, &SystemResolver::new(), trust);
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
            "zt: warning: {}: {problem}: whoever can change it decides what zt enforces as \
             root; make it and its directories writable by root only (chmod go-w, chown root)",
            file.path.display()
        ));
    }
    if !file.warnings.is_empty() {
        ctx.note(&file.warnings);
    }
}
