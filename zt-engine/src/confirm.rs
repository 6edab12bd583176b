//! Confirmation deadlines, confirm and rollback: keep or undo the last apply.
//!
//! An apply with a deadline is rolled back unless confirmed in time, even when the terminal or
//! the applying process is gone: the rollback is not left to that process, which a dropped SSH
//! session or a `kill -9` ends. It records the pending change (with a token naming it), then
//! arms a [`Watchdog`] — something that outlives it and, at the deadline, calls
//! [`Engine::watch`]'s expiry with that token. Only the pending change with its token is rolled
//! back; [`Engine::confirm`] clears it and the watchdog leaves quietly.
//!
//! zt keeps one level of undo: the snapshot the last apply took. Rolling back restores it in
//! one transaction, makes the policy before it the current record again, and forgets the
//! snapshot (a second rollback has nothing to undo).

use crate::error::EngineError;
use crate::lock::Access;
use crate::records::{Applied, Pending};
use crate::state::StateDir;
use crate::trail::{self, Entry};
use crate::{Engine, Event};
use jiff::{SignedDuration, Timestamp};
use std::time::Duration;

/// How long after the deadline a waiting apply rolls back itself if the watchdog has not.
const GRACE: SignedDuration = SignedDuration::from_secs(10);

/// How often waiting processes look at the state.
const POLL: Duration = Duration::from_millis(100);

/// Something that outlives the applying process and rolls an unconfirmed change back at its
/// deadline, by running [`Engine::watch`] with the token it is given (the `zt` command starts
/// `zt watchdog --token T` as a systemd unit or a detached process).
pub trait Watchdog {
    /// Start watching the pending change named `token` in `state`; how it runs, for the
    /// pending record and the operator (`process 1234`, `systemd unit zt-confirm-…`).
    fn arm(&self, state: &StateDir, token: &str) -> Result<String, String>;
}

impl Engine {
    /// Record the pending change of an apply about to write `record`, and start its watchdog.
    pub(crate) fn arm(
        &mut self,
        within: Duration,
        record: &Applied,
    ) -> Result<Pending, EngineError> {
        let Some(watchdog) = &self.watchdog else {
            return Err(EngineError::NoWatchdog);
        };
        let deadline = SignedDuration::try_from(within)
            .ok()
            .and_then(|d| Timestamp::now().checked_add(d).ok())
            .ok_or_else(|| EngineError::Watchdog("the deadline is out of range".into()))?;
        let mut pending = Pending {
            token: token()?,
            deadline,
            config: record.config.clone(),
            watchdog: "starting".into(),
            applies: record.applied_at,
        };
        // Recorded first: the watchdog acts only on a pending change it can read.
        self.state.set_pending(Some(&pending))?;
        match watchdog.arm(&self.state, &pending.token) {
            Ok(how) => {
                pending.watchdog = how;
                self.state.set_pending(Some(&pending))?;
                self.emit(Event::Armed {
                    watchdog: &pending.watchdog,
                });
                Ok(pending)
            }
            Err(why) => {
                self.state.set_pending(None)?;
                Err(EngineError::Watchdog(why))
            }
        }
    }

    /// Keep the change awaiting confirmation.
    pub fn confirm(&mut self) -> Result<Pending, EngineError> {
        let _lock = self.state.lock(Access::Exclusive, self.no_wait)?;
        self.recover()?;
        let Some(pending) = self.state.pending()? else {
            return Err(EngineError::NothingPending {
                backend: self.state.backend().to_owned(),
            });
        };
        self.keep(&pending)?;
        Ok(pending)
    }

    /// Mark a pending change as kept (the caller holds the lock); the watchdog, finding no
    /// pending change with its token, leaves it alone.
    fn keep(&self, pending: &Pending) -> Result<(), EngineError> {
        self.state.set_pending(None)?;
        let entry = Entry::new("confirm", self.state.backend(), "confirmed").file(&pending.config);
        trail::append(self.state.root(), &entry)
    }

    /// Undo the last apply: restore its snapshot and make the record before it current
    /// again. Returns that record (`None` when zt had applied nothing before it).
    pub fn rollback(&mut self) -> Result<Option<Applied>, EngineError> {
        let _lock = self.state.lock(Access::Exclusive, self.no_wait)?;
        self.recover()?;
        let backend = self.state.backend().to_owned();
        let restored = self.undo_last().inspect_err(|e| {
            let _ = trail::append(
                self.state.root(),
                &Entry::new("rollback", &backend, "failed").error(e),
            );
        })?;
        let mut entry = Entry::new("rollback", &backend, "rolled-back");
        if let Some(applied) = &restored {
            entry = entry.config(&applied.config, &applied.sha256);
        }
        trail::append(self.state.root(), &entry)?;
        Ok(restored)
    }

    /// Restore the last apply's snapshot and make the record before it current again (the
    /// caller holds the lock).
    fn undo_last(&mut self) -> Result<Option<Applied>, EngineError> {
        let Some(point) = self.state.rollback_point()? else {
            return Err(EngineError::NothingToRollBack {
                backend: self.state.backend().to_owned(),
                root: self.state.root().to_path_buf(),
            });
        };
        self.backend
            .rollback(&point.snapshot)
            .map_err(|source| EngineError::Snapshot {
                path: self.state.dir().join("rollback.json"),
                source,
            })?;
        self.state.set_applied(point.previous.as_ref())?;
        self.state.set_rollback_point(None)?;
        self.state.set_pending(None)?;
        Ok(point.previous)
    }

    /// The watchdog's work: sleep until the deadline of the pending change named `token`,
    /// then roll it back if it is still pending. True when this call rolled it back.
    pub fn watch(&mut self, token: &str) -> Result<bool, EngineError> {
        loop {
            let Some(p) = self.state.pending()?.filter(|p| p.token == token) else {
                return Ok(false);
            };
            let left = p.deadline.duration_since(Timestamp::now());
            if left <= SignedDuration::ZERO {
                break;
            }
            let nap = Duration::try_from(left)
                .unwrap_or(Duration::ZERO)
                .min(Duration::from_secs(1));
            std::thread::sleep(nap);
        }
        self.expire(token, "the watchdog")
    }

    /// Wait until the pending change of an apply that recorded `record` is confirmed or rolled
    /// back; true when it was kept. `yes` waits up to the given time for the operator's own
    /// confirmation (a `yes` typed on the applying terminal, say) and returns whether it came;
    /// if the watchdog has not acted some seconds after the deadline, this call rolls back.
    pub fn await_decision(
        &mut self,
        pending: &Pending,
        record: &Applied,
        yes: &mut dyn FnMut(Duration) -> bool,
    ) -> Result<bool, EngineError> {
        loop {
            match self.state.pending()? {
                Some(p) if p.token == pending.token => {}
                // Confirmed (the record stays ours) or rolled back (it went back to the
                // previous one). Whoever decided holds the lock until its trail line is
                // written; waiting for it means the decision is fully recorded when this
                // returns (and its caller reports it).
                _ => {
                    let _settled = self.state.lock(Access::Shared, false)?;
                    return Ok(self.state.applied()?.as_ref() == Some(record));
                }
            }
            if yes(POLL) {
                let _lock = self.state.lock(Access::Exclusive, false)?;
                if let Some(p) = self.state.pending()?.filter(|p| p.token == pending.token) {
                    self.keep(&p)?;
                    return Ok(true);
                }
                continue;
            }
            if Timestamp::now() > pending.deadline + GRACE {
                self.expire(&pending.token, "the waiting apply")?;
            }
        }
    }

    /// Under the lock, roll back the pending change named `token` if it is still pending;
    /// `who` is named in the trail. True when this call rolled it back.
    pub fn expire(&mut self, token: &str, who: &str) -> Result<bool, EngineError> {
        let _lock = self.state.lock(Access::Exclusive, false)?;
        let Some(pending) = self.state.pending()?.filter(|p| p.token == token) else {
            return Ok(false);
        };
        // The guarded apply may have died before or after its kernel change: settle that
        // first, and roll back only if it took effect (otherwise the undo would hit the apply
        // before it).
        self.recover()?;
        let backend = self.state.backend().to_owned();
        if self.state.applied_at()?.map(|(_, _, at)| at) != Some(pending.applies) {
            self.state.set_pending(None)?;
            let entry = Entry::new("rollback", &backend, "not-applied")
                .file(&pending.config)
                .error("the unconfirmed apply never took effect; nothing to roll back");
            trail::append(self.state.root(), &entry)?;
            return Ok(false);
        }
        let reason = format!(
            "not confirmed by {}; {who} rolled the change back",
            pending.deadline
        );
        let entry = Entry::new("rollback", &backend, "rolled-back")
            .file(&pending.config)
            .error(&reason);
        match self.undo_last() {
            Ok(_) => {
                trail::append(self.state.root(), &entry)?;
                self.emit(Event::Expired { reason: &reason });
                Ok(true)
            }
            Err(e) => {
                trail::append(self.state.root(), &entry.result("failed").error(&e))?;
                Err(e)
            }
        }
    }
}

/// 16 random hex digits naming a pending change.
fn token() -> Result<String, EngineError> {
    let mut bytes = [0u8; 8];
    // SAFETY: getrandom(2) writes at most `bytes.len()` bytes into the buffer.
    let n = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
    if n != bytes.len() as isize {
        return Err(EngineError::Watchdog(format!(
            "cannot read random bytes: {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
