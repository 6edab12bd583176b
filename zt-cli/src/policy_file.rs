//! Reading a policy file: its text, its SHA-256 (for the audit trail and `status`), the
//! validated policy and its warnings.

use crate::Context;
use crate::exit::{Failure, Outcome};
use crate::state::Applied;
use sha2::{Digest, Sha256};
use std::fmt::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use zt_core::{Diagnostics, Policy, SystemResolver};

/// A policy read from a file.
pub struct PolicyFile {
    /// The file, absolute.
    pub path: PathBuf,
    /// Its contents.
    pub source: String,
    /// SHA-256 of the contents, hex.
    pub sha256: String,
    /// The validated policy.
    pub policy: Policy,
    /// What validation warned about.
    pub warnings: Diagnostics,
}

impl PolicyFile {
    /// Read and validate `path`, resolving names on this host; warnings go to standard error.
    /// An invalid policy is exit 1 with every problem; an unreadable file is exit 1 too (the
    /// operator named a file that is not a policy). A file others may write draws a warning.
    pub fn load(ctx: &Context<'_>, path: &Path) -> Outcome<PolicyFile> {
        Self::read(ctx, path, false)
    }

    /// [`PolicyFile::load`] for a command that changes the kernel or the boot files (`apply`,
    /// `persist`): a file every user may write is refused, since whoever can write it decides
    /// what zt, running as root, enforces.
    pub fn load_for_change(ctx: &Context<'_>, path: &Path) -> Outcome<PolicyFile> {
        Self::read(ctx, path, true)
    }

    fn read(ctx: &Context<'_>, path: &Path, for_change: bool) -> Outcome<PolicyFile> {
        let unreadable = |e: std::io::Error| {
            Failure::rejected(
                anyhow::Error::new(e).context(format!("cannot read {}", path.display())),
            )
        };
        let meta = std::fs::metadata(path).map_err(unreadable)?;
        if let Some(problem) = writable_by_others(&meta) {
            let message = format!(
                "{}: {problem}: whoever can write it decides what zt enforces as root; \
                 make it writable by root only (chmod go-w, chown root)",
                path.display()
            );
            if for_change && meta.permissions().mode() & 0o002 != 0 {
                return Err(Failure::rejected(anyhow::anyhow!("{message}")));
            }
            ctx.note(format_args!("zt: warning: {message}"));
        }
        let bytes = std::fs::read(path).map_err(unreadable)?;
        let name = path.display().to_string();
        let source = match String::from_utf8(bytes) {
            Ok(text) => text,
            // zt-core reports where the first byte that is not UTF-8 is.
            Err(e) => {
                return Err(
                    match Policy::from_bytes(e.into_bytes(), &name, &SystemResolver::new()) {
                        Err(error) => Failure::from(error),
                        Ok(_) => Failure::rejected(anyhow::anyhow!("{name} is not UTF-8")),
                    },
                );
            }
        };
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let file = Self::parse(&name, absolute, source)?;
        if !file.warnings.is_empty() {
            ctx.note(&file.warnings);
        }
        Ok(file)
    }

    /// The policy a state record holds, validated again (names resolve as they do now).
    pub fn from_record(applied: &Applied) -> Outcome<PolicyFile> {
        Self::parse(
            &applied.config.display().to_string(),
            applied.config.clone(),
            applied.source.clone(),
        )
        .map_err(|f| f.context("the last applied policy no longer validates on this host"))
    }

    fn parse(name: &str, path: PathBuf, source: String) -> Outcome<PolicyFile> {
        let loaded = Policy::from_yaml(&source, name, &SystemResolver::new())?;
        Ok(PolicyFile {
            sha256: sha256_hex(source.as_bytes()),
            path,
            source,
            policy: loaded.policy,
            warnings: loaded.warnings,
        })
    }

    /// The state record for this file, applied now.
    pub fn record(&self) -> Applied {
        Applied {
            config: self.path.clone(),
            sha256: self.sha256.clone(),
            applied_at: jiff::Timestamp::now(),
            source: self.source.clone(),
        }
    }

    /// The warnings as JSON.
    pub fn warnings_json(&self) -> serde_json::Value {
        serde_json::json!(self.warnings.items)
    }
}

/// Why a file's permissions let someone other than root change it, if they do.
fn writable_by_others(meta: &std::fs::Metadata) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let mode = meta.permissions().mode();
    if mode & 0o002 != 0 {
        return Some("it is writable by every user".into());
    }
    if mode & 0o020 != 0 && meta.gid() != 0 {
        return Some(format!("it is writable by group {}", meta.gid()));
    }
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != 0 && meta.uid() != me {
        return Some(format!("it belongs to uid {}", meta.uid()));
    }
    None
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut hex = String::with_capacity(64);
    for b in digest {
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_matches_the_standard_test_vector() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
