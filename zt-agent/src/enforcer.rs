//! The host's kernel side: zt-engine's transaction, on a thread of its own.
//!
//! The engine and the backends are synchronous (and not `Send`: a backend may hold a netlink
//! socket), so they live on one plain thread that the async side sends work to. Every apply
//! goes through [`zt_engine::Engine::apply`] — lock, intent, rollback point, verification,
//! trail — exactly as `zt apply` does, so `zt status` and `zt rollback` on the host see what
//! the agent did.

use jiff::Timestamp;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use tokio::sync::oneshot;
use zt_core::Backend;
use zt_engine::{ApplyOptions, Engine, PolicyFile};

/// Where the effective policy is recorded as coming from (`zt status` shows it).
pub const RECORDED_AS: &str = "zt-agent:effective-policy";

/// What the engine thread owns: the engine, and the effective policy it enforces.
pub struct Host {
    engine: Engine,
    /// The last effective policy applied (or restored), validated; drift is checked against
    /// it.
    current: Option<PolicyFile>,
}

/// A job for the engine thread.
type Job = Box<dyn FnOnce(&mut Host) + Send>;

/// Drift found by a check, and whether re-applying repaired it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repair {
    /// What differed.
    pub detail: String,
    /// Whether the re-apply succeeded.
    pub repaired: bool,
    /// When it was found.
    pub at: Timestamp,
    /// When the kernel took the repair.
    pub applied_at: Option<Timestamp>,
}

/// The handle the async side holds.
#[derive(Clone)]
pub struct Enforcer {
    jobs: mpsc::Sender<Job>,
}

/// What an apply did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    /// Whether the kernel changed.
    pub changed: bool,
    /// When the kernel last took a change (this one, or an earlier one).
    pub applied_at: Option<Timestamp>,
}

/// The last good effective policy, as the engine recorded it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    /// Its text.
    pub text: String,
    /// Its SHA-256.
    pub sha256: String,
    /// When it was applied.
    pub applied_at: Timestamp,
}

/// Errors from the engine thread, as text (they end up in the status's `error`).
pub type Failure = String;

impl Enforcer {
    /// Start the engine thread over `backend` (made there by `make_backend`, since a backend
    /// need not be `Send`) and state directory `state_dir`.
    pub fn start(
        state_dir: &Path,
        make_backend: impl FnOnce() -> Result<Box<dyn Backend>, Failure> + Send + 'static,
    ) -> Result<Enforcer, Failure> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), Failure>>();
        let dir: PathBuf = state_dir.to_owned();
        std::thread::Builder::new()
            .name("zt-engine".into())
            .spawn(move || {
                let engine = make_backend()
                    .and_then(|backend| Engine::open(&dir, backend).map_err(|e| e.to_string()));
                let mut host = match engine {
                    Ok(engine) => {
                        let _ = ready_tx.send(Ok(()));
                        Host {
                            engine,
                            current: None,
                        }
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                for job in queue {
                    job(&mut host);
                }
            })
            .map_err(|e| format!("cannot start the engine thread: {e}"))?;
        ready_rx
            .recv()
            .map_err(|_| "the engine thread ended before it was ready".to_owned())??;
        Ok(Enforcer { jobs })
    }

    /// Run `f` on the engine thread and wait for its result.
    async fn run<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Host) -> Result<R, Failure> + Send + 'static,
    ) -> Result<R, Failure> {
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send(Box::new(move |host: &mut Host| {
                let _ = tx.send(f(host));
            }))
            .map_err(|_| "the engine thread has ended".to_owned())?;
        rx.await
            .map_err(|_| "the engine thread ended during the job".to_owned())?
    }

    /// Apply `text` through the engine's transaction; it becomes the policy drift is checked
    /// against.
    pub async fn apply(&self, text: String) -> Result<Applied, Failure> {
        self.run(move |host| host.apply(text)).await
    }

    /// Enforce the effective policy the engine recorded last, if any, again (the kernel may
    /// have lost it in a reboot); it and what the apply did.
    pub async fn restore(&self) -> Result<Option<(Recorded, Applied)>, Failure> {
        self.run(|host| {
            let Some(record) = host.engine.state().applied().map_err(|e| e.to_string())? else {
                return Ok(None);
            };
            let recorded = Recorded {
                text: record.source.clone(),
                sha256: record.sha256,
                applied_at: record.applied_at,
            };
            let applied = host.apply(record.source)?;
            Ok(Some((recorded, applied)))
        })
        .await
    }

    /// Check the kernel against the policy in force; on drift, apply it again. `None`: no
    /// drift (or nothing enforced).
    pub async fn check_and_repair(&self) -> Result<Option<Repair>, Failure> {
        self.run(|host| {
            // Checked as validated when it was applied: every 30 s, no need to read it again.
            let Some(file) = host.current.clone() else {
                return Ok(None);
            };
            let drift = host.engine.verify(&file).map_err(|e| e.to_string())?;
            if drift.is_empty() {
                return Ok(None);
            }
            let at = Timestamp::now();
            let detail = drift.to_string().trim_end().to_owned();
            Ok(Some(match host.apply_file(file) {
                Ok(applied) => Repair {
                    detail,
                    repaired: true,
                    at,
                    applied_at: applied.applied_at,
                },
                Err(e) => Repair {
                    detail: format!("{detail}; repair failed: {e}"),
                    repaired: false,
                    at,
                    applied_at: None,
                },
            }))
        })
        .await
    }

    /// Wait until the engine thread has finished the jobs sent before this one, so the agent
    /// never exits in the middle of a transaction (the engine would recover it, but a clean
    /// stop leaves nothing to recover).
    pub async fn settle(&self) {
        let _ = self.run(|_| Ok(())).await;
    }

    /// Remove zt's rules from the kernel if a policy is in force (no policy matches the host
    /// any more); whether there was one.
    pub async fn flush_if_enforcing(&self) -> Result<bool, Failure> {
        self.run(|host| {
            let recorded = host.engine.state().applied().map_err(|e| e.to_string())?;
            if host.current.is_none() && recorded.is_none() {
                return Ok(false);
            }
            let flushed = host.engine.flush().map_err(|e| e.to_string())?;
            for problem in &flushed.unrecorded {
                crate::agent::log(
                    "warning",
                    format_args!("the flush could not be recorded: {problem}"),
                );
            }
            if let Some(path) = &flushed.set_aside {
                crate::agent::log(
                    "warning",
                    format_args!("an unreadable intent was moved aside to {}", path.display()),
                );
            }
            host.current = None;
            Ok(true)
        })
        .await
    }
}

impl Host {
    fn apply(&mut self, text: String) -> Result<Applied, Failure> {
        let file = load(&self.engine, text)?;
        self.apply_file(file)
    }

    fn apply_file(&mut self, file: PolicyFile) -> Result<Applied, Failure> {
        let outcome = self
            .engine
            .apply(&file, ApplyOptions::default())
            .map_err(|e| e.to_string())?;
        self.current = Some(file);
        let applied_at = self
            .engine
            .state()
            .applied()
            .map_err(|e| e.to_string())?
            .map(|a| a.applied_at);
        Ok(Applied {
            changed: outcome.changed,
            applied_at,
        })
    }
}

/// The effective policy as a policy file the engine records. Names are resolved as the
/// engine resolves them when it reads its record again.
fn load(engine: &Engine, text: String) -> Result<PolicyFile, Failure> {
    PolicyFile::from_text(
        RECORDED_AS,
        PathBuf::from(RECORDED_AS),
        text,
        engine.resolver(),
    )
    .map_err(|e| e.to_string())
}
