//! Flush, persist and the backend's own audit records.

use crate::Engine;
use crate::error::EngineError;
use crate::lock::Access;
use crate::policy_file::PolicyFile;
use crate::state::write_atomically;
use crate::trail::{self, Entry};
use std::fs;
use std::path::{Path, PathBuf};
use zt_core::kernel_log::LogRecord;
use zt_core::policy::DEFAULT_LOG_PREFIX;
use zt_core::{AuditEvent, AuditSource, Boot};

/// What `persist` wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Persisted {
    /// The files written, below the root.
    pub files: Vec<PathBuf>,
    /// The links created, below the root.
    pub links: Vec<PathBuf>,
}

/// What `flush` did besides emptying the kernel.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Flushed {
    /// What could not be written to the state directory after the kernel was flushed (a
    /// read-only or full directory): the records may still name the flushed policy, and the
    /// trail may have no line for the flush. The flush itself stands.
    pub unrecorded: Vec<EngineError>,
    /// Where an intent that could not be read was moved (`intent.json.corrupt-<time>` beside
    /// it), kept for whoever wants to know what wrote it.
    pub set_aside: Option<PathBuf>,
}

/// The refusals a backend recorded itself, as kept in the state directory.
#[derive(Clone, Debug, PartialEq)]
pub struct Kept {
    /// Where they are kept (`<backend>/audit-records.jsonl`).
    pub path: PathBuf,
    /// Every refusal kept there, oldest first, as a kernel-log summary counts them.
    pub records: Vec<LogRecord>,
}

impl Engine {
    /// Remove everything zt owns in the kernel (other tools' rules are untouched) and forget
    /// what was applied.
    ///
    /// Flush is the way out when everything else fails, so once the kernel is flushed the
    /// flush stands: what cannot be written to the state directory afterwards (a read-only or
    /// full one) is reported in [`Flushed::unrecorded`], not as an error. An intent that
    /// cannot be read is moved aside ([`Flushed::set_aside`]): with zt's kernel state gone it
    /// has nothing left to recover, and left in place it would block every later apply.
    pub fn flush(&mut self) -> Result<Flushed, EngineError> {
        let _lock = self.state.lock(Access::Exclusive, self.no_wait)?;
        let backend = self.state.backend().to_owned();
        self.backend
            .flush()
            .map_err(EngineError::from)
            .inspect_err(|e| {
                let _ = trail::append(
                    self.state.root(),
                    &Entry::new("flush", &backend, "failed").error(e),
                );
            })?;
        let mut flushed = Flushed::default();
        let intent = match self.state.intent() {
            Err(EngineError::Corrupt { .. }) => self.state.set_aside("intent.json").map(|aside| {
                flushed.set_aside = aside;
            }),
            // Readable (or absent): an interrupted apply whose kernel state is gone now.
            _ => self.state.set_intent(None),
        };
        let forgotten = [
            intent,
            self.state.set_pending(None),
            self.state.set_rollback_point(None),
            self.state.set_applied(None),
        ];
        flushed.unrecorded = forgotten.into_iter().filter_map(Result::err).collect();
        let mut entry = Entry::new("flush", &backend, "flushed");
        if let Some(aside) = &flushed.set_aside {
            entry = entry.error(format!(
                "the unreadable intent.json was moved aside to {}",
                aside.display()
            ));
        }
        if let Err(e) = trail::append(self.state.root(), &entry) {
            flushed.unrecorded.push(e);
        }
        Ok(flushed)
    }

    /// Write what restores `policy` at boot under `root` (`/` on a host; an image being built,
    /// a test directory), each file atomically, and the links that enable its unit. `zt` is
    /// the executable a unit that re-applies the policy runs.
    pub fn persist(
        &mut self,
        policy: &PolicyFile,
        root: &Path,
        zt: &Path,
    ) -> Result<Persisted, EngineError> {
        let boot = Boot {
            policy_yaml: policy.source.clone(),
            zt: zt.to_path_buf(),
        };
        let persistence = self.backend.persistence(&policy.policy.ruleset(), &boot)?;
        let mut done = Persisted::default();
        for f in &persistence.files {
            let path = under(root, &f.path);
            create_parent(&path)?;
            write_atomically(&path, f.contents.as_bytes(), f.mode)?;
            done.files.push(path);
        }
        for l in &persistence.links {
            let path = under(root, &l.path);
            create_parent(&path)?;
            match fs::read_link(&path) {
                Ok(existing) if existing == l.target => {}
                _ => {
                    let tmp = path.with_extension("zt-tmp");
                    let _ = fs::remove_file(&tmp);
                    std::os::unix::fs::symlink(&l.target, &tmp)
                        .and_then(|()| fs::rename(&tmp, &path))
                        .map_err(|e| EngineError::state("link", &path, e))?;
                }
            }
            done.links.push(path);
        }
        self.state.create()?;
        trail::append(
            self.state.root(),
            &Entry::new("persist", self.state.backend(), "persisted")
                .config(&policy.path, &policy.sha256),
        )?;
        Ok(done)
    }

    /// The log prefix refusals are logged under: the last applied policy's, else zt's
    /// default.
    pub fn log_prefix(&self) -> Result<String, EngineError> {
        let configured = self
            .state
            .applied()?
            .and_then(|a| PolicyFile::from_record(&a, self.resolver.as_ref()).ok())
            .map(|f| f.policy.settings().log_prefix().as_str().to_owned());
        Ok(configured.unwrap_or_else(|| DEFAULT_LOG_PREFIX.to_owned()))
    }

    /// The refusals of a backend that records them itself (eBPF): the records waiting in the
    /// backend are moved to `audit-records.jsonl` in its state directory (the backend hands
    /// each over once), and every refusal kept there is returned. `None` for a backend whose
    /// refusals are in the kernel log.
    pub fn kept_records(&mut self) -> Result<Option<Kept>, EngineError> {
        let AuditSource::Records(drained) = self.backend.audit()? else {
            return Ok(None);
        };
        // Each record is handed over once, so what was drained is appended whatever happens;
        // the lock keeps appends and reads whole.
        let _lock = self.state.lock(Access::Exclusive, false)?;
        let path = self.state.dir().join("audit-records.jsonl");
        if !drained.is_empty() {
            let mut lines = Vec::new();
            for event in &drained {
                serde_json::to_writer(&mut lines, event).map_err(|source| EngineError::Encode {
                    what: "an audit record",
                    source,
                })?;
                lines.push(b'\n');
            }
            crate::state::append(&path, &lines, "append to")?;
        }
        let bytes = self
            .state
            .read_bytes("audit-records.jsonl")?
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        let backend = self.state.backend().to_owned();
        let records = text
            .lines()
            .filter_map(|l| serde_json::from_str::<AuditEvent>(l).ok())
            .filter(|e| e.refused)
            .map(|e| e.to_log_record(&backend))
            .collect();
        Ok(Some(Kept { path, records }))
    }
}

/// `path` (absolute on the target system) below `root`.
fn under(root: &Path, path: &Path) -> PathBuf {
    root.join(path.strip_prefix("/").unwrap_or(path))
}

fn create_parent(path: &Path) -> Result<(), EngineError> {
    match path.parent() {
        Some(dir) => fs::create_dir_all(dir).map_err(|e| EngineError::state("create", dir, e)),
        None => Ok(()),
    }
}
