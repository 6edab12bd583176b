//! The audit trail: one JSON line per change, appended to `audit.log` in the state directory.
//!
//! Each line says when, who (the real uid, its name, the `sudo` caller and the login uid the
//! kernel keeps across `su`/`sudo`), which command, which policy file and its SHA-256, which
//! backend, what changed and how it ended. Lines are written whole with one `write` on an
//! `O_APPEND` descriptor and synced, under the state lock, so they never interleave.
//!
//! Fields (stable; absent ones are omitted): `time` (RFC 3339, UTC), `user`, `uid`,
//! `sudo_user`, `login_uid`, `pid`, `command`, `config`, `sha256`, `backend`, `changes`
//! (`{add, modify, remove}`), `diff` (a one-line summary), `result` (`applied`, `unchanged`,
//! `invalid`, `failed`, `rolled-back`, `applied-pending-confirmation`, `confirmed`, `flushed`,
//! `persisted`; for `recover`, `applied` or `not-applied`), `error`.

use crate::error::EngineError;
use crate::state::StateDir;
use jiff::Timestamp;
use serde::Serialize;
use std::path::{Path, PathBuf};
use zt_core::{ChangeCounts, Diff};

/// One line of the trail.
#[derive(Clone, Debug, Serialize)]
pub struct Entry {
    /// When.
    pub time: Timestamp,
    /// The real user's name (or the uid as text when it has none).
    pub user: String,
    /// The real uid.
    pub uid: u32,
    /// Who ran `sudo`, when zt runs under it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sudo_user: Option<String>,
    /// The login uid (`/proc/self/loginuid`), which survives `su` and `sudo`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login_uid: Option<u32>,
    /// This process.
    pub pid: u32,
    /// The command (`apply`, `rollback`, …).
    pub command: String,
    /// The policy file, when the command read one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<PathBuf>,
    /// SHA-256 of the policy file's contents.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// The backend.
    pub backend: String,
    /// How many subjects changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changes: Option<ChangeCounts>,
    /// The change in one line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    /// How it ended.
    pub result: String,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Entry {
    /// An entry for `command` on `backend` by the calling process, now.
    pub fn new(command: &str, backend: &str, result: &str) -> Entry {
        // SAFETY: getuid(2) cannot fail and touches no memory.
        let uid = unsafe { libc::getuid() };
        let user = uzers::get_user_by_uid(uid).map_or_else(
            || uid.to_string(),
            |u| u.name().to_string_lossy().into_owned(),
        );
        let sudo_user = (uid == 0)
            .then(|| std::env::var("SUDO_USER").ok())
            .flatten()
            .filter(|s| !s.is_empty());
        let login_uid = std::fs::read_to_string("/proc/self/loginuid")
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .filter(|&id| id != u32::MAX);
        Entry {
            time: Timestamp::now(),
            user,
            uid,
            sudo_user,
            login_uid,
            pid: std::process::id(),
            command: command.to_owned(),
            config: None,
            sha256: None,
            backend: backend.to_owned(),
            changes: None,
            diff: None,
            result: result.to_owned(),
            error: None,
        }
    }

    /// The policy file and its digest.
    pub fn config(mut self, path: &Path, sha256: &str) -> Self {
        self.config = Some(path.to_path_buf());
        self.sha256 = Some(sha256.to_owned());
        self
    }

    /// The policy file, when its contents are not known (unreadable, or only named).
    pub fn file(mut self, path: &Path) -> Self {
        self.config = Some(path.to_path_buf());
        self
    }

    /// The change.
    pub fn diff(mut self, diff: &Diff) -> Self {
        let counts = diff.counts();
        self.diff = Some(counts.to_string());
        self.changes = Some(counts);
        self
    }

    /// How it ended.
    pub fn result(mut self, result: &str) -> Self {
        self.result = result.to_owned();
        self
    }

    /// Why it failed.
    pub fn error(mut self, error: impl std::fmt::Display) -> Self {
        self.error = Some(error.to_string());
        self
    }
}

/// Append `entry` to the trail in `state_root`.
pub fn append(state_root: &Path, entry: &Entry) -> Result<(), EngineError> {
    let path = state_root.join("audit.log");
    let mut line = serde_json::to_vec(entry).map_err(|source| EngineError::Encode {
        what: "an audit trail line",
        source,
    })?;
    line.push(b'\n');
    crate::state::append(&path, &line, "append to the audit trail")
}

/// Note in the trail that `command` refused the policy file at `path` (invalid, unreadable,
/// or writable by others) before anything was changed. Best effort: the refusal itself is
/// what the caller reports.
pub fn record_refusal(state: &StateDir, command: &str, path: &Path, error: &EngineError) {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let entry = Entry::new(command, state.backend(), "invalid")
        .file(&path)
        .error(error);
    let _ = state.create().and_then(|()| append(state.root(), &entry));
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use zt_core::{Change, ChangeKind};

    #[test]
    fn lines_are_single_json_objects_with_the_documented_fields() {
        let dir = std::env::temp_dir().join(format!("zt-trail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let diff = Diff {
            changes: vec![Change {
                kind: ChangeKind::Add,
                subject: "web-to-redis".into(),
                detail: "meta skuid 1001 accept\nsecond line".into(),
            }],
        };
        let entry = Entry::new("apply", "nft", "applied")
            .config(Path::new("/etc/zt/rules.yaml"), "00ff")
            .diff(&diff);
        append(&dir, &entry).unwrap();
        append(&dir, &Entry::new("rollback", "nft", "rolled-back")).unwrap();
        let text = std::fs::read_to_string(dir.join("audit.log")).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["command"], "apply");
        assert_eq!(lines[0]["config"], "/etc/zt/rules.yaml");
        assert_eq!(lines[0]["changes"]["add"], 1);
        assert_eq!(lines[0]["diff"], "1 to add, 0 to modify, 0 to remove");
        assert!(lines[0]["time"].as_str().unwrap().ends_with('Z'));
        assert_eq!(lines[1]["result"], "rolled-back");
        assert!(lines[1].get("config").is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
