//! A policy as the engine applies and records it: its text, where it came from, its SHA-256
//! (for the audit trail and `status`), the validated policy and its warnings.

use crate::error::EngineError;
use crate::records::Applied;
use crate::trust::{self, End, Trust};
use sha2::{Digest, Sha256};
use std::fmt::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use zt_core::fleet::Scope;
use zt_core::input::Input;
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
    /// Who besides root (and the caller) may change the file, through the file itself or a
    /// directory or link on its path, when someone may: the caller decides whether to print
    /// it; [`PolicyFile::read_for_change`] refuses the worst cases.
    pub permissions: Option<String>,
}

impl PolicyFile {
    /// Read and validate `path`, resolving names with `resolver`. An unreadable file and an
    /// invalid policy are refusals ([`crate::ErrorClass::Refused`]); who else may change the
    /// file is noted in [`PolicyFile::permissions`] (see [`Trust`]), never refused.
    ///
    /// Only a regular file or a pipe is read, and no more of it than zt-core's limit
    /// ([`zt_core::yaml::MAX_INPUT_BYTES`]; a larger one is the `too-large` diagnostic after
    /// reading one byte past it); a device, a directory or a FIFO with no writer is refused
    /// at once (see [`zt_core::input`]).
    pub fn read(path: &Path, resolver: &dyn NameResolver) -> Result<PolicyFile, EngineError> {
        Self::load(path, resolver, None)
    }

    /// [`PolicyFile::read`] for a change to the kernel or the boot files, trusting root and
    /// the caller only ([`Trust::RootAndCaller`]): whoever can change the file decides what
    /// zt, running as root, enforces. Refused ([`EngineError::Writable`],
    /// [`EngineError::Untrusted`]): a file every user may write or that belongs to another
    /// user, a directory on its path that belongs to another user or that every user may
    /// write without the sticky bit, a link another user may replace. [`Trust`] says why
    /// each.
    pub fn read_for_change(
        path: &Path,
        resolver: &dyn NameResolver,
    ) -> Result<PolicyFile, EngineError> {
        Self::load(path, resolver, Some(Trust::RootAndCaller))
    }

    /// [`PolicyFile::read_for_change`], trusting whom `trust` says besides root and the caller
    /// (`zt apply --trust-owner` is [`Trust::FileOwner`]).
    pub fn read_for_change_trusting(
        path: &Path,
        resolver: &dyn NameResolver,
        trust: Trust,
    ) -> Result<PolicyFile, EngineError> {
        Self::load(path, resolver, Some(trust))
    }

    /// Read `path`: for a change when `change` says whom to trust (problems refused), else to
    /// look at it (problems noted).
    fn load(
        path: &Path,
        resolver: &dyn NameResolver,
        change: Option<Trust>,
    ) -> Result<PolicyFile, EngineError> {
        let unreadable = |source| EngineError::Unreadable {
            path: path.to_path_buf(),
            source,
        };
        let walked = trust::walk(path);
        let (walk, input) = match change {
            // For a change the walk must succeed, and the file opened is the one it found:
            // by its real path, not following a link there, and the same inode.
            Some(_) => {
                let walk = walked.map_err(unreadable)?;
                let input = match &walk.end {
                    End::File { real, .. } => Input::open_no_follow(real),
                    End::Descriptor => Input::open(path),
                }
                .map_err(unreadable)?;
                if let End::File { id, .. } = &walk.end
                    && *id != identity(input.metadata())
                {
                    return Err(unreadable(std::io::Error::other(
                        "it was replaced while zt checked its path; try again",
                    )));
                }
                (Some(walk), input)
            }
            // To look at it, the file is opened as named; what the walk found counts when it
            // found that file.
            None => {
                let input = Input::open(path).map_err(unreadable)?;
                let walk = walked.ok().filter(|w| match &w.end {
                    End::File { id, .. } => *id == identity(input.metadata()),
                    End::Descriptor => true,
                });
                (walk, input)
            }
        };
        let trust = change.unwrap_or_default();
        let meta = input.metadata();
        let mut findings = walk
            .map(|w| trust::judge_path(&w, meta.uid(), trust))
            .unwrap_or_default();
        findings.extend(trust::judge_file(path, meta, trust));
        if change.is_some()
            && let Some(refused) = findings.iter().find(|f| f.refuse)
        {
            return Err(if refused.world_writable_file {
                EngineError::Writable {
                    path: path.to_path_buf(),
                    problem: refused.problem.clone(),
                }
            } else {
                EngineError::Untrusted {
                    path: path.to_path_buf(),
                    element: refused.element.clone(),
                    problem: refused.problem.clone(),
                    remedy: refused.remedy.clone(),
                }
            });
        }
        let permissions = (!findings.is_empty()).then(|| {
            findings
                .iter()
                .map(|f| f.problem.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        });
        let name = path.display().to_string();
        let bytes = input.read_policy(&name).map_err(|e| match e {
            zt_core::Error::Read { source, .. } => unreadable(source),
            other => EngineError::Core(other),
        })?;
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

/// Device and inode: which file a descriptor or a name is.
fn identity(meta: &std::fs::Metadata) -> (u64, u64) {
    (meta.dev(), meta.ino())
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
