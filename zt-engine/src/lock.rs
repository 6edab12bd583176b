//! The state directory's lock: one command that changes the kernel or the records at a time.

use crate::error::EngineError;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
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
/// process dies.
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

impl Lock {
    /// Take the lock on `path`, waiting for it unless `no_wait`. An exclusive holder writes
    /// its pid into the file, for the message another invocation prints with `no_wait`.
    pub fn take(path: &Path, access: Access, no_wait: bool) -> Result<Lock, EngineError> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(|e| EngineError::state("open the lock file", path, e))?;
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
                    lock: path.to_path_buf(),
                    holder: holder.trim().to_owned(),
                });
            }
            Err(TryLockError::Error(e)) => return Err(EngineError::state("lock", path, e)),
        }
        if access == Access::Exclusive {
            let _ = file.set_len(0);
            let _ = write!(file, "pid {}", std::process::id());
        }
        Ok(Lock { _file: file })
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
