//! The state directory: what zt applied, how to undo it, what awaits confirmation.
//!
//! ```text
//! /var/lib/zt/                 (0700)
//!   lock                       flock: one mutating zt command at a time
//!   audit.log                  the append-only audit trail (one JSON line per change)
//!   <backend>/applied.json     the last applied policy: its file, SHA-256 and text
//!   <backend>/rollback.json    the snapshot taken by the last apply, and the record before it
//!   <backend>/pending.json     a change awaiting confirmation, and its deadline
//!   <backend>/intent.json      an apply in progress: the record it will write, and how to
//!                              undo it (written before the kernel is touched)
//!   <backend>/audit-records.jsonl  refusals a backend recorded itself (eBPF), kept
//! ```
//!
//! `intent.json` makes an apply recoverable whatever moment it dies at: the next command that
//! takes the lock finds it, asks the kernel which policy it holds, and finishes the records
//! (the new policy is in force), drops them (the old one is) or puts the snapshot back (a mix)
//! — see [`crate::recovery`].
//!
//! Every file is replaced atomically (written beside, synced, renamed, directory synced), so a
//! crash leaves either the old or the new version, never a torn one.
//!
//! zt runs as root, so the directory is trusted only while root (or the user zt runs as) alone
//! can change it: the root and the backend's directory must belong to root or that user and be
//! writable by no one else, and every file is opened relative to the checked directory, never
//! through a link, and must pass the same check — otherwise [`EngineError::UntrustedState`]. Whoever
//! else controls the directory could plant `lock` → a file of root's (overwritten with the
//! holder's pid) or a `rollback.json` whose snapshot deletes the firewall.

use crate::dir::{Dir, Open, Trust};
use crate::error::EngineError;
use crate::lock::{Access, Lock};
use crate::records::{Applied, Intent, Pending, RollbackPoint};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The state directory of one backend, plus the shared lock and trail.
///
/// Nothing is read from it or written to it unless the root and the backend's directory are
/// owned by root (or the user zt runs as) and writable by nobody else, and every file is
/// opened relative to the checked directory without following links, and checked in turn;
/// otherwise the operation fails with [`EngineError::UntrustedState`].
#[derive(Clone, Debug)]
pub struct StateDir {
    root: PathBuf,
    backend: String,
    dir: PathBuf,
}

impl StateDir {
    /// The state of `backend` under `root`. Nothing is created until something is written
    /// or locked, so read-only commands leave no trace on a host zt never changed.
    pub fn new(root: &Path, backend: &str) -> StateDir {
        StateDir {
            root: root.to_path_buf(),
            backend: backend.to_owned(),
            dir: root.join(backend),
        }
    }

    /// The root directory (shared by all backends).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// This backend's own directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The backend whose records these are.
    pub fn backend(&self) -> &str {
        &self.backend
    }

    /// Create this backend's directory (and the root), mode 0700, if absent, and check both.
    pub fn create(&self) -> Result<(), EngineError> {
        self.created().map(drop)
    }

    /// Check the root and this backend's directory, where they exist: [`EngineError::UntrustedState`]
    /// when someone other than root and the user zt runs as could change them.
    pub fn check(&self) -> Result<(), EngineError> {
        if let Some(root) = Dir::open(&self.root, Trust::Checked)? {
            root.subdir(&self.backend, false)?;
        }
        Ok(())
    }

    /// Take the lock, waiting for it unless `no_wait`, after checking the state directory (so
    /// every command that locks refuses an untrusted one before it touches the kernel).
    ///
    /// In a state directory that cannot be written (a read-only mount), a lock file that
    /// exists is locked through a read-only descriptor, and one that does not exist, or a
    /// root that does not, cannot be created: the lock is then not held
    /// ([`Lock::is_held`]), and the command goes on without it. Nothing can write records
    /// there either, so there is nothing for the lock to keep apart: the commands that only
    /// read (status) see records no one can change, an apply stops at its first write
    /// ([`StateDir::begin`]), and `flush` reports what it could not record.
    pub fn lock(&self, access: Access, no_wait: bool) -> Result<Lock, EngineError> {
        let root = match Dir::create(&self.root) {
            Ok(root) => root,
            Err(e) if e.is_read_only() => match Dir::open(&self.root, Trust::Checked)? {
                Some(root) => root,
                None => return Ok(Lock::not_held()),
            },
            Err(e) => return Err(e),
        };
        root.subdir(&self.backend, false)?;
        Lock::take_in(&root, "lock", access, no_wait)
    }

    /// The last applied policy.
    pub fn applied(&self) -> Result<Option<Applied>, EngineError> {
        self.read("applied.json")
    }

    /// Which policy was applied last, and when — read without copying out its text (a
    /// re-apply of an unchanged policy asks only this).
    pub fn applied_at(&self) -> Result<Option<(PathBuf, String, jiff::Timestamp)>, EngineError> {
        #[derive(serde::Deserialize)]
        struct Which {
            config: PathBuf,
            sha256: String,
            applied_at: jiff::Timestamp,
        }
        Ok(self
            .read::<Which>("applied.json")?
            .map(|w| (w.config, w.sha256, w.applied_at)))
    }

    /// Record (or, with `None`, forget) the last applied policy.
    pub fn set_applied(&self, applied: Option<&Applied>) -> Result<(), EngineError> {
        self.write("applied.json", applied)
    }

    /// How to undo the last apply.
    pub fn rollback_point(&self) -> Result<Option<RollbackPoint>, EngineError> {
        self.read("rollback.json")
    }

    /// Record (or forget) how to undo the last apply.
    pub fn set_rollback_point(&self, point: Option<&RollbackPoint>) -> Result<(), EngineError> {
        self.write("rollback.json", point)
    }

    /// The change awaiting confirmation.
    pub fn pending(&self) -> Result<Option<Pending>, EngineError> {
        self.read("pending.json")
    }

    /// Record (or clear) the change awaiting confirmation.
    pub fn set_pending(&self, pending: Option<&Pending>) -> Result<(), EngineError> {
        self.write("pending.json", pending)
    }

    /// The apply in progress, if one was interrupted.
    pub fn intent(&self) -> Result<Option<Intent>, EngineError> {
        self.read("intent.json")
    }

    /// Record (or clear) the apply in progress.
    pub fn set_intent(&self, intent: Option<&Intent>) -> Result<(), EngineError> {
        self.write("intent.json", intent)
    }

    /// Move the state file `name` aside, as `<name>.corrupt-<time>` beside it, and return its
    /// new path (`None` when there is no such file): for a record that cannot be read and is
    /// no longer needed, kept for whoever wants to know what wrote it.
    pub fn set_aside(&self, name: &str) -> Result<Option<PathBuf>, EngineError> {
        let Some(dir) = self.own_dir()? else {
            return Ok(None);
        };
        let aside = format!(
            "{name}.corrupt-{}",
            jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ")
        );
        match dir.rename(name, &aside) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(EngineError::state("move aside", dir.join(name), e)),
        }
        dir.sync()?;
        Ok(Some(dir.join(&aside)))
    }

    /// Record the apply in progress, before the kernel is touched: the first write of an
    /// apply, so a directory that cannot be written (full, read-only) stops it here, with
    /// nothing changed.
    pub fn begin(&self, intent: &Intent) -> Result<(), EngineError> {
        self.open_trail()
            .and_then(|()| self.set_intent(Some(intent)))
            .map_err(|e| match e {
                // Refused, not a write that failed: reported as it is.
                EngineError::UntrustedState { .. } => e,
                e => EngineError::NotWritable(Box::new(e)),
            })
    }

    /// Record a finished apply: how to undo it and what is in force, both written and synced
    /// before either replaces its predecessor (one directory sync for both). `between` runs
    /// between the two replacements.
    pub fn finish(
        &self,
        point: &RollbackPoint,
        applied: &Applied,
        between: impl FnOnce(),
    ) -> Result<(), EngineError> {
        let (_, dir) = self.created()?;
        let first = dir.stage("rollback.json", &encode(point)?, 0o600)?;
        let second = match dir.stage("applied.json", &encode(applied)?, 0o600) {
            Ok(tmp) => tmp,
            Err(e) => {
                let _ = dir.remove(&first);
                return Err(e);
            }
        };
        if let Err(e) = dir.commit(&first, "rollback.json") {
            let _ = dir.remove(&second);
            return Err(e);
        }
        between();
        dir.commit(&second, "applied.json")?;
        dir.sync()
    }

    /// Open `name` in the root for appending (created 0600), checked like every state file:
    /// for a log the caller keeps beside the records (the `zt` command's watchdog log).
    pub fn open_log(&self, name: &str) -> Result<File, EngineError> {
        let (root, _) = self.created()?;
        root.file(name, Open::Append)?.ok_or_else(|| {
            EngineError::state("open", root.join(name), io::ErrorKind::NotFound.into())
        })
    }

    /// The bytes of this backend's file `name` (`None` when absent), read like the records.
    pub(crate) fn read_bytes(&self, name: &str) -> Result<Option<Vec<u8>>, EngineError> {
        match self.own_dir()? {
            Some(dir) => dir.read(name),
            None => Ok(None),
        }
    }

    /// The root and this backend's directory, created 0700 where absent, both checked.
    fn created(&self) -> Result<(Dir, Dir), EngineError> {
        let root = Dir::create(&self.root)?;
        let own = root.subdir(&self.backend, true)?.ok_or_else(|| {
            EngineError::state("create", &self.dir, io::ErrorKind::NotFound.into())
        })?;
        Ok((root, own))
    }

    /// This backend's directory, checked, and the root above it; `None` when either is
    /// absent.
    fn own_dir(&self) -> Result<Option<Dir>, EngineError> {
        match Dir::open(&self.root, Trust::Checked)? {
            Some(root) => root.subdir(&self.backend, false),
            None => Ok(None),
        }
    }

    /// Fail unless the audit trail can be opened for appending.
    fn open_trail(&self) -> Result<(), EngineError> {
        let (root, _) = self.created()?;
        root.file("audit.log", Open::Append)?;
        Ok(())
    }

    fn read<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, EngineError> {
        let Some(text) = self.read_bytes(name)? else {
            return Ok(None);
        };
        serde_json::from_slice(&text)
            .map(Some)
            .map_err(|source| EngineError::Corrupt {
                path: self.dir.join(name),
                source,
            })
    }

    fn write<T: Serialize>(&self, name: &str, value: Option<&T>) -> Result<(), EngineError> {
        match value {
            None => match self.own_dir()? {
                Some(dir) if dir.remove(name)? => dir.sync(),
                _ => Ok(()),
            },
            Some(value) => {
                let (_, dir) = self.created()?;
                dir.write_atomically(name, &encode(value)?, 0o600)
            }
        }
    }
}

/// Append `bytes` to `path` (created 0600) with one `write` on an `O_APPEND` descriptor, then
/// sync the data: how the trail and the kept audit records grow, so whole lines never
/// interleave and a line reported written is on disk. `what` names the file in an error. The
/// directory holding `path` and the file itself are checked like the state directory, and a
/// link at `path` is refused, not followed.
pub fn append(path: &Path, bytes: &[u8], what: &'static str) -> Result<(), EngineError> {
    let (dir, name) = split(path, what)?;
    let dir = Dir::open(dir, Trust::Checked)?
        .ok_or_else(|| EngineError::state(what, path, io::ErrorKind::NotFound.into()))?;
    let mut file = dir
        .file(name, Open::Append)?
        .ok_or_else(|| EngineError::state(what, path, io::ErrorKind::NotFound.into()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_data())
        .map_err(|e| EngineError::state(what, path, e))
}

/// A state file's text: pretty JSON, for the operator who reads it.
fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, EngineError> {
    let mut text = serde_json::to_vec_pretty(value).map_err(|source| EngineError::Encode {
        what: "a state file",
        source,
    })?;
    text.push(b'\n');
    Ok(text)
}

/// Replace `path` with `contents`: write a temporary file beside it, sync it, rename it over
/// the old one and sync the directory, so readers (and a crash) see the old or the new file.
/// The temporary is created exclusively and never through a link planted at its name. The
/// directory is not checked: this is how `persist` writes boot files where the operator says.
pub fn write_atomically(path: &Path, contents: &[u8], mode: u32) -> Result<(), EngineError> {
    let (dir, name) = split(path, "write")?;
    Dir::open(dir, Trust::Unchecked)?
        .ok_or_else(|| EngineError::state("write", path, io::ErrorKind::NotFound.into()))?
        .write_atomically(name, contents, mode)
}

/// `path`'s directory and file name.
fn split<'a>(path: &'a Path, what: &'static str) -> Result<(&'a Path, &'a str), EngineError> {
    let name = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
        EngineError::state(
            what,
            path,
            io::Error::new(io::ErrorKind::InvalidInput, "not a file name zt writes"),
        )
    })?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    Ok((dir, name))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use jiff::Timestamp;
    use std::fs;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("zt-state-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn records_round_trip_and_absent_ones_read_as_none() {
        let root = temp_dir("records");
        let state = StateDir::new(&root, "nft");
        assert_eq!(state.applied().unwrap(), None);
        assert!(!root.exists(), "reading creates nothing");
        let applied = Applied {
            config: "/etc/zt/rules.yaml".into(),
            sha256: "ab".repeat(32),
            applied_at: Timestamp::UNIX_EPOCH,
            source: "version: \"1.0\"\nrules: []\n".into(),
        };
        state.set_applied(Some(&applied)).unwrap();
        assert_eq!(state.applied().unwrap(), Some(applied));
        state.set_applied(None).unwrap();
        assert_eq!(state.applied().unwrap(), None);
        state.set_applied(None).unwrap();
        let leftovers: Vec<_> = fs::read_dir(root.join("nft")).unwrap().collect();
        assert!(leftovers.is_empty(), "no temporary files are left behind");
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_corrupt_record_is_an_error_naming_the_file() {
        let root = temp_dir("corrupt");
        let state = StateDir::new(&root, "nft");
        state.create().unwrap();
        fs::write(root.join("nft/pending.json"), "{ torn").unwrap();
        let e = state.pending().unwrap_err();
        assert!(e.to_string().contains("pending.json"), "{e}");
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn an_atomic_write_does_not_follow_a_link_planted_at_its_temporary_name() {
        let dir = temp_dir("temporary");
        fs::create_dir_all(&dir).unwrap();
        let victim = dir.join("victim");
        fs::write(&victim, "precious\n").unwrap();
        let target = dir.join("zt.service");
        let tmp = dir.join(format!(".zt.service.tmp-{}", std::process::id()));
        std::os::unix::fs::symlink(&victim, &tmp).unwrap();
        write_atomically(&target, b"[Unit]\n", 0o644).unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");
        assert!(!fs::symlink_metadata(&target).unwrap().is_symlink());
        assert_eq!(fs::read_to_string(&target).unwrap(), "[Unit]\n");
        assert!(!tmp.exists());
        fs::remove_dir_all(&dir).unwrap();
    }
}
