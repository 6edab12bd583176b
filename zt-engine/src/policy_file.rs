//! A policy as the engine applies and records it: its text, where it came from, its SHA-256
//! (for the audit trail and `status`), the validated policy and its warnings.

use crate::error::EngineError;
use crate::records::Applied;
use sha2::{Digest, Sha256};
use std::fmt::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use zt_core::fleet::Scope;
use zt_core::{Diagnostics, NameResolver, Policy};

/// A validated policy and the text it was read from.
#[derive(Clone, Debug)]
pub struct PolicyFile {
    /// The file, absolute (for a policy built in code, the name it was given).
    pub path: PathBuf,
    /// Its contents: what the state directory records, and re-validates later.
    pub source: String,
    /// SHA-256 of the contents, hex.
    pub sha256: String,
    /// The validated policy.
    pub policy: Policy,
    /// What validation warned about.
    pub warnings: Diagnostics,
    /// The fleet keys (`selector:`, `order:`): validated, and ignored by the engine, which
    /// applies one policy to one host; a fleet agent composes policies by them.
    pub scope: Scope,
    /// Who besides root may change the file, when someone may (the caller decides whether to
    /// print it; [`PolicyFile::read_for_change`] refuses the worst case).
    pub permissions: Option<String>,
}

impl PolicyFile {
    /// Read and validate `path`, resolving names with `resolver`. An unreadable file and an
    /// invalid policy are refusals ([`crate::ErrorClass::Refused`]); a file others may write
    /// is noted in [`PolicyFile::permissions`].
    pub fn read(path: &Path, resolver: &dyn NameResolver) -> Result<PolicyFile, EngineError> {
        Self::load(path, resolver, false)
    }

    /// [`PolicyFile::read`] for a change to the kernel or the boot files: a file every user
    /// may write is refused, since whoever can write it decides what zt, running as root,
    /// enforces.
    pub fn read_for_change(
        path: &Path,
        resolver: &dyn NameResolver,
    ) -> Result<PolicyFile, EngineError> {
        Self::load(path, resolver, true)
    }

    fn load(
        path: &Path,
        resolver: &dyn NameResolver,
        for_change: bool,
    ) -> Result<PolicyFile, EngineError> {
        let unreadable = |source| EngineError::Unreadable {
            path: path.to_path_buf(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(unreadable)?;
        let permissions = writable_by_others(&meta);
        if let Some(problem) = &permissions
            && for_change
            && meta.permissions().mode() & 0o002 != 0
        {
            return Err(EngineError::Writable {
                path: path.to_path_buf(),
                problem: problem.clone(),
            });
        }
        let bytes = std::fs::read(path).map_err(unreadable)?;
        let name = path.display().to_string();
        let source = match String::from_utf8(bytes) {
            Ok(text) => text,
            // zt-core reports where the first byte that is not UTF-8 is.
            Err(e) => {
                return Err(match Policy::from_bytes(e.into_bytes(), &name, resolver) {
                    Err(error) => EngineError::Core(error),
                    Ok(_) => unreadable(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "it is not UTF-8",
                    )),
                });
            }
        };
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let mut file = Self::from_text(&name, absolute, source, resolver)?;
        file.permissions = permissions;
        Ok(file)
    }

    /// Validate `source`, named `name` in diagnostics and recorded as coming from `path`.
    pub fn from_text(
        name: &str,
        path: PathBuf,
        source: String,
        resolver: &dyn NameResolver,
    ) -> Result<PolicyFile, EngineError> {
        let loaded = Policy::from_yaml(&source, name, resolver)?;
        Ok(PolicyFile {
            sha256: sha256_hex(source.as_bytes()),
            path,
            source,
            policy: loaded.policy,
            warnings: loaded.warnings,
            scope: loaded.scope,
            permissions: None,
        })
    }

    /// A policy built in code, recorded under `name` as the YAML it exports to (what `zt
    /// check` would read back as the same policy).
    pub fn from_policy(name: &str, policy: &Policy) -> Result<PolicyFile, EngineError> {
        let source = policy.to_yaml()?;
        Ok(PolicyFile {
            sha256: sha256_hex(source.as_bytes()),
            path: PathBuf::from(name),
            source,
            policy: policy.clone(),
            warnings: Diagnostics::default(),
            scope: Scope::default(),
            permissions: None,
        })
    }

    /// The policy a state record holds, validated again (names resolve as they do now).
    pub fn from_record(
        applied: &Applied,
        resolver: &dyn NameResolver,
    ) -> Result<PolicyFile, EngineError> {
        Self::from_text(
            &applied.config.display().to_string(),
            applied.config.clone(),
            applied.source.clone(),
            resolver,
        )
        .map_err(|e| EngineError::Stale(Box::new(e)))
    }

    /// The state record for this policy, applied now.
    pub fn record(&self) -> Applied {
        Applied {
            config: self.path.clone(),
            sha256: self.sha256.clone(),
            applied_at: jiff::Timestamp::now(),
            source: self.source.clone(),
        }
    }
}

/// Why a file's permissions let someone other than root change it, if they do.
fn writable_by_others(meta: &std::fs::Metadata) -> Option<String> {
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
