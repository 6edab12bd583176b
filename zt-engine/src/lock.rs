//! The state directory's lock: one command that changes the kernel or the records at a time.

use crate::dir::{Dir, Open, Trust};
use crate::error::EngineError;
use std::fs::{File, TryLockError};
use std::io::{self, Read, Write};
use std::path::Path;

/// Exclusive or shared access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Commands that change the kernel or the state.
    Exclusive,
    /// Commands that only read both.
    Shared,
}

/// A held lock (`flock` on the `lock` file); released when dropped, and by the kernel if the
/// process dies. In a state directory that cannot be written and has no lock file, there is
/// nothing to lock and nothing anyone could record: the lock is then not held.
#[derive(Debug)]
pub struct Lock {
    file: Option<File>,
}

impl Lock {
    /// Take the lock on `path`, waiting for it unless `no_wait`. An exclusive holder writes
    /// its pid into the file, for the message another invocation prints with `no_wait`. The
    /// directory holding `path`, and the file, are checked like the state directory, and a
    /// link at `path` is refused, not followed.
    pub fn take(path: &Path, access: Access, no_wait: bool) -> Result<Lock, EngineError> {
        let what = "open the lock file";
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| EngineError::state(what, path, io::ErrorKind::InvalidInput.into()))?;
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let dir = Dir::open(dir, Trust::Checked)?
            .ok_or_else(|| EngineError::state(what, path, io::ErrorKind::NotFound.into()))?;
        Lock::take_in(&dir, name, access, no_wait)
    }

    /// Take the lock on the file `name` in the checked directory `dir`.
    ///
    /// A shared lock opens an existing lock file read-only (`flock` needs no more), so the
    /// commands that only read work in a read-only state directory; an exclusive one opens it
    /// read-write to leave its pid, and read-only where it cannot be written. A lock file
    /// that does not exist and cannot be created because the directory cannot be written is
    /// not locked at all ([`Lock::is_held`] is false): nothing can write records there either.
    pub(crate) fn take_in(
        dir: &Dir,
        name: &str,
        access: Access,
        no_wait: bool,
    ) -> Result<Lock, EngineError> {
        let path = dir.join(name);
        // `None`: no lock file, and none can be created.
        let opened = match access {
            Access::Shared => match dir.file(name, Open::Read)? {
                Some(file) => Some(file),
                None => match dir.file(name, Open::ReadWrite) {
                    Err(e) if e.is_read_only() => None,
                    other => other?,
                },
            },
            Access::Exclusive => match dir.file(name, Open::ReadWrite) {
                Err(e) if e.is_read_only() => dir.file(name, Open::Read)?,
                other => other?,
            },
        };
        let Some(mut file) = opened else {
            return Ok(Lock::not_held());
        };
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
                return Err(EngineError::Busy {
                    lock: path,
                    holder: holder.trim().to_owned(),
                });
            }
            Err(TryLockError::Error(e)) => return Err(EngineError::state("lock", path, e)),
        }
        if access == Access::Exclusive {
            // Fails harmlessly on a descriptor opened read-only: the pid is only a hint.
            let _ = file.set_len(0);
            let _ = write!(file, "pid {}", std::process::id());
        }
        Ok(Lock { file: Some(file) })
    }

    /// No lock: a read-only state directory without a lock file, or without a root.
    pub(crate) fn not_held() -> Lock {
        Lock { file: None }
    }

    /// Whether the lock is held; false only in a state directory that cannot be written and
    /// has no lock file (see [`crate::state::StateDir::lock`]).
    pub fn is_held(&self) -> bool {
        self.file.is_some()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_second_exclusive_lock_fails_at_once_without_waiting_and_names_the_holder() {
        let dir = std::env::temp_dir().join(format!("zt-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("lock");
        let held = Lock::take(&path, Access::Exclusive, true).unwrap();
        let e = Lock::take(&path, Access::Exclusive, true).unwrap_err();
        assert!(
            e.to_string()
                .contains(&format!("pid {}", std::process::id())),
            "{e}"
        );
        assert!(Lock::take(&path, Access::Shared, true).is_err());
        drop(held);
        Lock::take(&path, Access::Shared, true).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
