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

use crate::error::EngineError;
use crate::lock::{Access, Lock};
use crate::records::{Applied, Intent, Pending, RollbackPoint};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The state directory of one backend, plus the shared lock and trail.
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

    /// Create this backend's directory (and the root), mode 0700, if absent.
    pub fn create(&self) -> Result<(), EngineError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(|e| EngineError::state("create", &self.dir, e))
    }

    /// Take the lock, waiting for it unless `no_wait`.
    pub fn lock(&self, access: Access, no_wait: bool) -> Result<Lock, EngineError> {
        self.create()?;
        Lock::take(&self.root.join("lock"), access, no_wait)
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

    /// Record the apply in progress, before the kernel is touched: the first write of an
    /// apply, so a directory that cannot be written (full, read-only) stops it here, with
    /// nothing changed.
    pub fn begin(&self, intent: &Intent) -> Result<(), EngineError> {
        self.open_trail()
            .and_then(|()| self.set_intent(Some(intent)))
            .map_err(|e| EngineError::NotWritable(Box::new(e)))
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
        let rollback = self.dir.join("rollback.json");
        let record = self.dir.join("applied.json");
        let first = stage(&rollback, &encode(point)?)?;
        let second = match stage(&record, &encode(applied)?) {
            Ok(tmp) => tmp,
            Err(e) => {
                let _ = fs::remove_file(&first);
                return Err(e);
            }
        };
        if let Err(e) = fs::rename(&first, &rollback) {
            let _ = fs::remove_file(&first);
            let _ = fs::remove_file(&second);
            return Err(EngineError::state("write", rollback, e));
        }
        between();
        if let Err(e) = fs::rename(&second, &record) {
            let _ = fs::remove_file(&second);
            return Err(EngineError::state("write", record, e));
        }
        sync_dir(&self.dir)
    }

    /// Fail unless the audit trail can be opened for appending.
    fn open_trail(&self) -> Result<(), EngineError> {
        self.create()?;
        let trail = self.root.join("audit.log");
        OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&trail)
            .map_err(|e| EngineError::state("open the audit trail", &trail, e))?;
        Ok(())
    }

    fn read<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, EngineError> {
        let path = self.dir.join(name);
        let text = match fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(EngineError::state("read", path, e)),
        };
        serde_json::from_slice(&text)
            .map(Some)
            .map_err(|source| EngineError::Corrupt { path, source })
    }

    fn write<T: Serialize>(&self, name: &str, value: Option<&T>) -> Result<(), EngineError> {
        let path = self.dir.join(name);
        match value {
            None => match fs::remove_file(&path) {
                Ok(()) => sync_dir(&self.dir),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(EngineError::state("remove", path, e)),
            },
            Some(value) => {
                self.create()?;
                let mut text =
                    serde_json::to_vec_pretty(value).map_err(|source| EngineError::Encode {
                        what: "a state file",
                        source,
                    })?;
                text.push(b'\n');
                write_atomically(&path, &text, 0o600)
            }
        }
    }
}

/// Append `bytes` to `path` (created 0600) with one `write` on an `O_APPEND` descriptor, then
/// sync the data: how the trail and the kept audit records grow, so whole lines never
/// interleave and a line reported written is on disk. `what` names the file in an error.
pub fn append(path: &Path, bytes: &[u8], what: &'static str) -> Result<(), EngineError> {
    let mut file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| EngineError::state(what, path, e))?;
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

/// Write `contents` into a temporary file beside `path` and sync it; the temporary's path.
fn stage(path: &Path, contents: &[u8]) -> Result<PathBuf, EngineError> {
    stage_with(path, contents, 0o600)
}

fn stage_with(path: &Path, contents: &[u8], mode: u32) -> Result<PathBuf, EngineError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map_or_else(|| "zt".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| -> io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()
    })();
    match result {
        Ok(()) => Ok(tmp),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(EngineError::state("write", path, e))
        }
    }
}

/// Replace `path` with `contents`: write a temporary file beside it, sync it, rename it over
/// the old one and sync the directory, so readers (and a crash) see the old or the new file.
pub fn write_atomically(path: &Path, contents: &[u8], mode: u32) -> Result<(), EngineError> {
    let tmp = stage_with(path, contents, mode)?;
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(EngineError::state("write", path, e));
    }
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// Make a rename or removal in `dir` durable.
fn sync_dir(dir: &Path) -> Result<(), EngineError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| EngineError::state("sync", dir, e))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use jiff::Timestamp;

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
}
