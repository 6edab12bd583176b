//! The state directory: what zt applied, how to undo it, what awaits confirmation.
//!
//! ```text
//! /var/lib/zt/                 (0700; --state-dir, ZT_STATE_DIR)
//!   lock                       flock: one mutating zt command at a time
//!   audit.log                  the append-only audit trail (one JSON line per change)
//!   <backend>/applied.json     the last applied policy: its file, SHA-256 and text
//!   <backend>/rollback.json    the snapshot taken by the last apply, and the record before it
//!   <backend>/pending.json     a change awaiting `zt confirm`, and its deadline
//!   <backend>/intent.json      an apply in progress: the record it will write, and how to
//!                              undo it (written before the kernel is touched)
//! ```
//!
//! `intent.json` makes an apply recoverable whatever moment it dies at: the next command that
//! takes the lock finds it, asks the kernel which policy it holds, and finishes the records
//! (the new policy is in force), drops them (the old one is) or puts the snapshot back (a mix)
//! — see `recovery`.
//!
//! Every file is replaced atomically (written beside, synced, renamed, directory synced), so a
//! crash leaves either the old or the new version, never a torn one. Records are JSON so an
//! operator can read them, and so can other tools.

use crate::exit::{Classify, Failure, Outcome};
use jiff::Timestamp;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use zt_core::Snapshot;

/// The last applied policy, as it was read: enough to rebuild its ruleset for drift reports
/// and to tell which file (and which version of it) is in force.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    /// The policy file, as an absolute path.
    pub config: PathBuf,
    /// SHA-256 of its contents, hex.
    pub sha256: String,
    /// When it was applied.
    pub applied_at: Timestamp,
    /// Its contents (names are resolved again when the record is used).
    pub source: String,
}

/// How to undo the last apply: the backend's snapshot of what zt owned before, and the
/// record that was current before it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackPoint {
    /// What zt owned in the kernel before the apply.
    pub snapshot: Snapshot,
    /// The policy in force before the apply, if zt knew one.
    pub previous: Option<Applied>,
}

/// An apply in progress: what it will record once the kernel holds the new policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    /// The policy being applied.
    pub record: Applied,
    /// How to undo it: the snapshot taken just before, and the record before it.
    pub point: RollbackPoint,
}

/// A change made with `apply --confirm`, rolled back at `deadline` unless confirmed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    /// Names this change; the watchdog acts only on the change it was started for.
    pub token: String,
    /// When the watchdog rolls it back.
    pub deadline: Timestamp,
    /// The policy file applied.
    pub config: PathBuf,
    /// How the watchdog runs (`process <pid>` or `systemd unit <name>`).
    pub watchdog: String,
    /// The `applied_at` of the record the guarded apply writes: the watchdog rolls back only
    /// if that apply took effect.
    pub applies: Timestamp,
}

/// The state directory of one backend, plus the shared lock and trail.
pub struct StateDir {
    root: PathBuf,
    backend: String,
    dir: PathBuf,
}

/// Exclusive or shared access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Commands that change the kernel or the state.
    Exclusive,
    /// Commands that only read both.
    Shared,
}

/// A held lock; released when dropped (and by the kernel if the process dies).
pub struct Lock {
    _file: File,
}

impl StateDir {
    /// The state of `backend` under `root`, created (mode 0700) if absent.
    pub fn open(root: &Path, backend: &str) -> Outcome<StateDir> {
        let dir = root.join(backend);
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .or_system(format!(
                "cannot create the state directory {}",
                dir.display()
            ))?;
        Ok(StateDir {
            root: root.to_path_buf(),
            backend: backend.to_owned(),
            dir,
        })
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

    /// Take the lock, waiting for it unless `no_wait`.
    pub fn lock(&self, access: Access, no_wait: bool) -> Outcome<Lock> {
        let path = self.root.join("lock");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .or_system(format!("cannot open the lock file {}", path.display()))?;
        let locked = match (access, no_wait) {
            (Access::Exclusive, false) => file.lock().map_err(TryLockError::Error),
            (Access::Shared, false) => file.lock_shared().map_err(TryLockError::Error),
            (Access::Exclusive, true) => file.try_lock(),
            (Access::Shared, true) => file.try_lock_shared(),
        };
        match locked {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(Failure::system(anyhow::anyhow!(
                    "another zt command{} holds {}; retry, or leave out --no-wait to wait for it",
                    if holder.is_empty() {
                        String::new()
                    } else {
                        format!(" ({holder})")
                    },
                    path.display()
                )));
            }
            Err(TryLockError::Error(e)) => {
                return Err(Failure::system(
                    anyhow::Error::new(e).context(format!("cannot lock {}", path.display())),
                ));
            }
        }
        if access == Access::Exclusive {
            // Who holds it, for the message another invocation prints with --no-wait.
            let _ = file.set_len(0);
            let _ = write!(file, "pid {}", std::process::id());
        }
        Ok(Lock { _file: file })
    }

    /// The last applied policy.
    pub fn applied(&self) -> Outcome<Option<Applied>> {
        self.read("applied.json")
    }

    /// Record (or, with `None`, forget) the last applied policy.
    pub fn set_applied(&self, applied: Option<&Applied>) -> Outcome<()> {
        self.write("applied.json", applied)
    }

    /// How to undo the last apply.
    pub fn rollback_point(&self) -> Outcome<Option<RollbackPoint>> {
        self.read("rollback.json")
    }

    /// Record (or forget) how to undo the last apply.
    pub fn set_rollback_point(&self, point: Option<&RollbackPoint>) -> Outcome<()> {
        self.write("rollback.json", point)
    }

    /// The change awaiting confirmation.
    pub fn pending(&self) -> Outcome<Option<Pending>> {
        self.read("pending.json")
    }

    /// Record (or clear) the change awaiting confirmation.
    pub fn set_pending(&self, pending: Option<&Pending>) -> Outcome<()> {
        self.write("pending.json", pending)
    }

    /// The apply in progress, if one was interrupted.
    pub fn intent(&self) -> Outcome<Option<Intent>> {
        self.read("intent.json")
    }

    /// Record (or clear) the apply in progress.
    pub fn set_intent(&self, intent: Option<&Intent>) -> Outcome<()> {
        self.write("intent.json", intent)
    }

    /// Fail unless a file can be created in this backend's directory and the trail can be
    /// opened for appending: checked before the kernel is touched.
    pub fn check_writable(&self) -> Outcome<()> {
        let probe = self.dir.join(".zt-write-probe");
        write_atomically(&probe, b"zt\n", 0o600)
            .map_err(|f| f.context("the state directory is not writable; nothing was changed"))?;
        let _ = fs::remove_file(&probe);
        let trail = self.root.join("audit.log");
        OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&trail)
            .or_system(format!(
                "cannot open the audit trail {}; nothing was changed",
                trail.display()
            ))?;
        Ok(())
    }

    fn read<T: DeserializeOwned>(&self, name: &str) -> Outcome<Option<T>> {
        let path = self.dir.join(name);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(Failure::system(
                    anyhow::Error::new(e).context(format!("cannot read {}", path.display())),
                ));
            }
        };
        serde_json::from_str(&text).map(Some).or_system(format!(
            "{} is not a zt state file (edited by hand?); move it away to start afresh",
            path.display()
        ))
    }

    fn write<T: Serialize>(&self, name: &str, value: Option<&T>) -> Outcome<()> {
        let path = self.dir.join(name);
        match value {
            None => match fs::remove_file(&path) {
                Ok(()) => sync_dir(&self.dir),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(Failure::system(
                    anyhow::Error::new(e).context(format!("cannot remove {}", path.display())),
                )),
            },
            Some(value) => {
                let mut text = serde_json::to_string_pretty(value)
                    .or_system(format!("cannot encode {}", path.display()))?;
                text.push('\n');
                write_atomically(&path, text.as_bytes(), 0o600)
            }
        }
    }
}

/// Replace `path` with `contents`: write a temporary file beside it, sync it, rename it over
/// the old one and sync the directory, so readers (and a crash) see the old or the new file.
pub fn write_atomically(path: &Path, contents: &[u8], mode: u32) -> Outcome<()> {
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
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(Failure::system(
            anyhow::Error::new(e).context(format!("cannot write {}", path.display())),
        ));
    }
    sync_dir(dir)
}

/// Make a rename or removal in `dir` durable.
fn sync_dir(dir: &Path) -> Outcome<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .or_system(format!("cannot sync {}", dir.display()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("zt-state-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn records_round_trip_and_absent_ones_read_as_none() {
        let root = temp_dir("records");
        let state = StateDir::open(&root, "nft").unwrap();
        assert_eq!(state.applied().unwrap(), None);
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
        let state = StateDir::open(&root, "nft").unwrap();
        fs::write(root.join("nft/pending.json"), "{ torn").unwrap();
        let e = state.pending().unwrap_err();
        assert!(
            format!("{:#}", e.error).contains("pending.json"),
            "{:#}",
            e.error
        );
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_second_exclusive_lock_fails_at_once_with_no_wait() {
        let root = temp_dir("lock");
        let state = StateDir::open(&root, "nft").unwrap();
        let held = state.lock(Access::Exclusive, true).unwrap();
        let e = state.lock(Access::Exclusive, true).err().unwrap();
        let message = format!("{:#}", e.error);
        assert!(
            message.contains(&format!("pid {}", std::process::id())),
            "{message}"
        );
        drop(held);
        state.lock(Access::Shared, true).unwrap();
        fs::remove_dir_all(&root).unwrap();
    }
}
