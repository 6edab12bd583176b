//! The agent: enforce this host's effective policy, follow the store, report back.
//!
//! One task drives everything, in this order:
//! 1. at start, the engine's last good effective policy is enforced again, before the store is
//!    asked anything (a host that boots while etcd is down is protected at once);
//! 2. a session connects, publishes the host on a lease, lists the policies (or resumes the
//!    watch after the last revision seen), and watches from there with progress
//!    notifications as the heartbeat;
//! 3. changes are coalesced for `coalesce`, then the effective policy is recomputed and
//!    applied through zt-engine; the status is written only when its content changes;
//! 4. a lost session is retried with exponential backoff and jitter; a compacted or cancelled
//!    watch is followed by a fresh list.
//!
//! Drift is checked by a second task every `verify_interval`, through the engine thread, which
//! also serialises it with applies (so a check never repairs with a policy being replaced).

use crate::compose::{self, Policies, StoreAccess, Stored};
use crate::contract::{HostRecord, Labels, Outcome, POLICIES, Status, host_key, status_key};
use crate::enforcer::{Enforcer, Repair};
use crate::store::{StoreError, StoreOptions, bounded, describe};
use etcd_client::{Client, EventType, GetOptions, PutOptions, WatchOptions, WatchResponse};
use jiff::Timestamp;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};
use zt_core::SystemResolver;

/// How the agent runs.
#[derive(Clone, Debug)]
pub struct AgentOptions {
    /// The host's name in the store.
    pub host: String,
    /// Its labels.
    pub labels: Labels,
    /// The backend's name, for the host record.
    pub backend: String,
    /// The store.
    pub store: StoreOptions,
    /// How often drift is checked.
    pub verify_interval: Duration,
    /// TTL of the host's lease, in seconds.
    pub lease_ttl: i64,
    /// How long changes are gathered before the policy is recomputed.
    pub coalesce: Duration,
    /// How often the watch is asked for progress; twice this without a word from the store
    /// ends the session.
    pub heartbeat: Duration,
}

/// Write a line to the agent's log (standard error), prefixed so it can be told from the
/// engine's and backends' output. A log that cannot be written never stops the agent.
pub fn log(event: &str, detail: impl std::fmt::Display) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "zt-agent: {event}: {detail}");
}

/// Why a session ended.
enum End {
    /// The store failed or went silent: retry after a backoff.
    Lost(String),
    /// The watch was compacted or cancelled: list again at once.
    Relist,
}

impl From<StoreError> for End {
    fn from(e: StoreError) -> Self {
        End::Lost(e.to_string())
    }
}

/// What a watch response meant.
enum Watched {
    /// A policy changed: recompute (after coalescing).
    Changed,
    /// Progress, or the watch's creation.
    Nothing,
    /// The session must end.
    End(End),
}

/// The agent's state across sessions.
struct Agent {
    options: AgentOptions,
    enforcer: Enforcer,
    access: StoreAccess,
    started_at: Timestamp,
    /// The store's policies, as last listed and watched.
    policies: Policies,
    /// The last revision seen (0: never listed): a resumed watch starts after it.
    revision: i64,
    /// Where the current watch started.
    watch_from: i64,
    /// The revision of the last listing or policy change: what the status reports.
    policy_revision: i64,
    /// List before watching (first session, or the watch was compacted).
    must_list: bool,
    /// What the status says now, and what the store holds for it (as written or read).
    status: Status,
    written: Option<String>,
}

/// Run the agent until SIGTERM or SIGINT. Nothing is flushed on exit: the kernel keeps the
/// policy, and the next start reconciles with the store.
pub async fn run(options: AgentOptions, enforcer: Enforcer) -> Result<(), String> {
    let (repair_tx, mut repairs) = mpsc::unbounded_channel();
    let access = StoreAccess {
        endpoints: options.store.addresses(),
        // SAFETY: geteuid(2) cannot fail and touches no memory.
        uid: unsafe { libc::geteuid() },
    };
    let mut agent = Agent {
        status: Status {
            host: options.host.clone(),
            labels: options.labels.clone(),
            policies: Vec::new(),
            sha256: None,
            result: Outcome::Unchanged,
            error: None,
            drift: false,
            drift_detail: None,
            repairs: 0,
            applied_at: None,
            store_revision: 0,
        },
        options,
        enforcer,
        access,
        started_at: Timestamp::now(),
        policies: Policies::new(),
        revision: 0,
        policy_revision: 0,
        watch_from: 0,
        must_list: true,
        written: None,
    };
    agent.restore().await;
    tokio::spawn(verify_loop(
        agent.enforcer.clone(),
        agent.options.verify_interval,
        repair_tx,
    ));
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("cannot handle SIGTERM: {e}"))?;
    let mut backoff = Backoff::new();
    loop {
        let mut lease = None;
        let end = tokio::select! {
            end = agent.session(&mut lease, &mut backoff, &mut repairs) => end,
            _ = terminate.recv() => None,
            _ = tokio::signal::ctrl_c() => None,
        };
        match end {
            None => {
                agent.enforcer.settle().await;
                agent.leave(lease).await;
                log("stopped", "the kernel keeps the policy");
                return Ok(());
            }
            Some(End::Relist) => agent.must_list = true,
            Some(End::Lost(why)) => {
                let wait = backoff.next();
                log(
                    "disconnected",
                    format_args!("{why}; retrying in {wait:.1?}"),
                );
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    _ = terminate.recv() => break,
                    _ = tokio::signal::ctrl_c() => break,
                }
            }
        }
    }
    agent.enforcer.settle().await;
    log("stopped", "the kernel keeps the policy");
    Ok(())
}

/// Check the kernel every `interval`; drift is repaired on the engine thread and reported.
async fn verify_loop(
    enforcer: Enforcer,
    interval: Duration,
    reports: mpsc::UnboundedSender<Repair>,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        match enforcer.check_and_repair().await {
            Ok(None) => {}
            Ok(Some(repair)) => {
                log(
                    "drift",
                    format_args!(
                        "{}; {}",
                        one_line(&repair.detail),
                        if repair.repaired {
                            "repaired"
                        } else {
                            "NOT repaired"
                        }
                    ),
                );
                if reports.send(repair).is_err() {
                    return;
                }
            }
            Err(e) => log("verify", format_args!("failed: {e}")),
        }
    }
}

impl Agent {
    /// Enforce the engine's last good effective policy again, without the store.
    async fn restore(&mut self) {
        match self.enforcer.restore().await {
            Ok(None) => log(
                "restored",
                "no policy recorded; nothing enforced until the store answers",
            ),
            Ok(Some((recorded, applied))) => {
                self.status.policies = compose::policies_of(&recorded.text);
                self.status.sha256 = Some(recorded.sha256.clone());
                self.status.applied_at = applied.applied_at;
                self.status.result = if applied.changed {
                    Outcome::Applied
                } else {
                    Outcome::Unchanged
                };
                log(
                    "restored",
                    format_args!(
                        "last good policy {} (sha256 {}){}",
                        refs(&self.status.policies),
                        recorded.sha256,
                        if applied.changed {
                            ", kernel updated"
                        } else {
                            ", kernel already held it"
                        }
                    ),
                );
            }
            Err(e) => {
                self.status.result = Outcome::Failed;
                self.status.error = Some(format!("restoring the last good policy: {e}"));
                log("restore failed", e);
            }
        }
    }

    /// One connection to the store, until it is lost, the watch must be relisted, or the
    /// agent is stopped (the caller's select drops this future).
    async fn session(
        &mut self,
        lease_out: &mut Option<(Client, i64)>,
        backoff: &mut Backoff,
        repairs: &mut mpsc::UnboundedReceiver<Repair>,
    ) -> Option<End> {
        Some(
            match self.session_inner(lease_out, backoff, repairs).await {
                Ok(()) => End::Relist,
                Err(end) => end,
            },
        )
    }

    async fn session_inner(
        &mut self,
        lease_out: &mut Option<(Client, i64)>,
        backoff: &mut Backoff,
        repairs: &mut mpsc::UnboundedReceiver<Repair>,
    ) -> Result<(), End> {
        let mut client = self.options.store.connect().await?;
        // Resolved again for every session: names that did not resolve at boot may now.
        self.access.endpoints = self.options.store.addresses();
        if self.access.endpoints.is_empty() {
            log(
                "warning",
                "no endpoint address resolved: the effective policy has no rule keeping the store reachable; use IP addresses in --endpoints",
            );
        }
        // The host record, on a lease the session keeps alive.
        let lease = bounded(client.lease_grant(self.options.lease_ttl, None)).await?;
        let lease_id = lease.id();
        *lease_out = Some((client.clone(), lease_id));
        let record = HostRecord {
            host: self.options.host.clone(),
            labels: self.options.labels.clone(),
            backend: self.options.backend.clone(),
            agent_version: env!("CARGO_PKG_VERSION").to_owned(),
            started_at: self.started_at,
        };
        let record = serde_json::to_string(&record).map_err(|e| End::Lost(e.to_string()))?;
        bounded(client.put(
            host_key(&self.options.host),
            record,
            Some(PutOptions::new().with_lease(lease_id)),
        ))
        .await?;
        let (mut keeper, mut kept) = bounded(client.lease_keep_alive(lease_id)).await?;
        // What the store holds for our status, so an unchanged status is not written again.
        let held = bounded(client.get(status_key(&self.options.host), None)).await?;
        self.written = held
            .kvs()
            .first()
            .and_then(|kv| kv.value_str().ok())
            .map(str::to_owned);
        if self.must_list {
            self.list(&mut client).await?;
            self.must_list = false;
            self.recompute().await;
        }
        while let Ok(repair) = repairs.try_recv() {
            self.repaired(repair);
        }
        self.publish(&mut client).await?;
        self.watch_from = self.revision + 1;
        let mut watch = bounded(
            client.watch(
                POLICIES,
                Some(
                    WatchOptions::new()
                        .with_prefix()
                        .with_start_revision(self.watch_from)
                        .with_progress_notify(),
                ),
            ),
        )
        .await?;
        log(
            "watching",
            format_args!("{POLICIES} from revision {}", self.watch_from),
        );
        backoff.reset();
        let heartbeat = self.options.heartbeat;
        let mut ask = tokio::time::interval(heartbeat);
        ask.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut renew = tokio::time::interval(Duration::from_secs(
            u64::try_from(self.options.lease_ttl / 3)
                .unwrap_or(1)
                .max(1),
        ));
        let mut heard = Instant::now();
        let mut due: Option<Instant> = None;
        loop {
            let coalesced = async move {
                match due {
                    Some(at) => sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                message = watch.message() => {
                    heard = Instant::now();
                    let response = match message {
                        Ok(Some(r)) => r,
                        Ok(None) => return Err(End::Lost("the store ended the watch".into())),
                        Err(e) => return Err(End::Lost(format!("watch: {}", describe(&e)))),
                    };
                    match self.watched(response) {
                        Watched::End(end) => return Err(end),
                        Watched::Changed if due.is_none() => {
                            due = Some(Instant::now() + self.options.coalesce);
                        }
                        Watched::Changed | Watched::Nothing => {}
                    }
                }
                () = coalesced => {
                    due = None;
                    self.recompute().await;
                    self.publish(&mut client).await?;
                }
                _ = ask.tick() => {
                    let silent = heard.elapsed();
                    if silent > heartbeat * 2 {
                        return Err(End::Lost(format!(
                            "no word from the store for {silent:.1?} (a half-open connection?)"
                        )));
                    }
                    bounded(async { watch.request_progress().await }).await?;
                }
                _ = renew.tick() => {
                    bounded(keeper.keep_alive()).await?;
                }
                kept_alive = kept.message() => match kept_alive {
                    Ok(Some(r)) if r.ttl() > 0 => {}
                    Ok(Some(_)) => return Err(End::Lost("the host's lease expired".into())),
                    Ok(None) => return Err(End::Lost("the store ended the lease keep-alive".into())),
                    Err(e) => return Err(End::Lost(format!("lease keep-alive: {}", describe(&e)))),
                },
                Some(repair) = repairs.recv() => {
                    self.repaired(repair);
                    self.publish(&mut client).await?;
                }
            }
        }
    }

    /// List every policy; the watch continues after the listed revision.
    async fn list(&mut self, client: &mut Client) -> Result<(), End> {
        let listed = bounded(client.get(POLICIES, Some(GetOptions::new().with_prefix()))).await?;
        self.policies.clear();
        for kv in listed.kvs() {
            self.take(kv.key(), kv.value(), kv.mod_revision());
        }
        self.revision = listed.header().map_or(0, |h| h.revision());
        self.policy_revision = self.revision;
        log(
            "listed",
            format_args!(
                "revision {}, {} policies",
                self.revision,
                self.policies.len()
            ),
        );
        Ok(())
    }

    /// A policy key and value from the store into the local copy.
    fn take(&mut self, key: &[u8], value: &[u8], mod_revision: i64) {
        let Some(name) = std::str::from_utf8(key)
            .ok()
            .and_then(|k| k.strip_prefix(POLICIES))
        else {
            return;
        };
        // A value that is not UTF-8 is kept as text that fails validation, naming the key.
        let text = String::from_utf8(value.to_vec())
            .unwrap_or_else(|_| "# the value stored here is not UTF-8 text\n".to_owned());
        self.policies
            .insert(name.to_owned(), Stored { text, mod_revision });
    }

    /// A watch response into the local copy.
    fn watched(&mut self, response: WatchResponse) -> Watched {
        if response.canceled() {
            let compacted = response.compact_revision();
            if compacted > 0 {
                log(
                    "compacted",
                    format_args!(
                        "the watch from revision {} was compacted away (the store is compacted up to revision {compacted}); relisting",
                        self.watch_from
                    ),
                );
            } else {
                log(
                    "cancelled",
                    format_args!(
                        "the store cancelled the watch ({}); relisting",
                        response.cancel_reason()
                    ),
                );
            }
            return Watched::End(End::Relist);
        }
        let events = response.events();
        if events.is_empty() {
            // A progress notification: every change up to this revision has been sent, so a
            // resumed watch may start after it. Other keys' writes (status, hosts) move the
            // revision too; they change nothing here, and the status keeps the revision of
            // the last policy change, so an idle fleet writes nothing.
            if !response.created()
                && let Some(h) = response.header()
            {
                self.revision = self.revision.max(h.revision());
            }
            return Watched::Nothing;
        }
        for event in events {
            let Some(kv) = event.kv() else { continue };
            match event.event_type() {
                EventType::Put => self.take(kv.key(), kv.value(), kv.mod_revision()),
                EventType::Delete => {
                    if let Some(name) = std::str::from_utf8(kv.key())
                        .ok()
                        .and_then(|k| k.strip_prefix(POLICIES))
                    {
                        self.policies.remove(name);
                    }
                }
            }
            self.revision = self.revision.max(kv.mod_revision());
            self.policy_revision = self.policy_revision.max(kv.mod_revision());
        }
        Watched::Changed
    }

    /// Recompute the effective policy from the local copy and enforce it.
    async fn recompute(&mut self) {
        let effective = compose::effective(
            &self.policies,
            &self.options.labels,
            &self.access,
            &SystemResolver::new(),
        );
        self.status.policies = effective.policies;
        self.status.store_revision = self.policy_revision;
        match effective.text {
            Err(refused) => {
                log(
                    refused.outcome.as_str(),
                    format_args!("{}; the last good policy stays", one_line(&refused.error)),
                );
                self.status.result = refused.outcome;
                self.status.error = Some(refused.error);
            }
            Ok(None) => match self.enforcer.flush_if_enforcing().await {
                Ok(flushed) => {
                    self.status.result = if flushed {
                        Outcome::Applied
                    } else {
                        Outcome::Unchanged
                    };
                    self.status.error = None;
                    self.status.sha256 = None;
                    self.status.drift = false;
                    if flushed {
                        self.status.applied_at = Some(Timestamp::now());
                        log("applied", "no policy matches this host; zt's rules removed");
                    }
                }
                Err(e) => self.failed(e),
            },
            Ok(Some(text)) => {
                let sha256 = zt_engine::sha256_hex(text.as_bytes());
                match self.enforcer.apply(text).await {
                    Ok(applied) => {
                        self.status.result = if applied.changed {
                            Outcome::Applied
                        } else {
                            Outcome::Unchanged
                        };
                        self.status.error = None;
                        self.status.drift = false;
                        self.status.applied_at = applied.applied_at;
                        log(
                            self.status.result.as_str(),
                            format_args!("{} (sha256 {sha256})", refs(&self.status.policies)),
                        );
                        self.status.sha256 = Some(sha256);
                    }
                    Err(e) => self.failed(e),
                }
            }
        }
    }

    fn failed(&mut self, error: String) {
        log(
            "failed",
            format_args!("{error}; the last good policy stays"),
        );
        self.status.result = Outcome::Failed;
        self.status.error = Some(error);
    }

    fn repaired(&mut self, repair: Repair) {
        self.status.drift = !repair.repaired;
        self.status.drift_detail = Some(format!("{}: {}", repair.at, repair.detail));
        if repair.repaired {
            self.status.repairs += 1;
            if let Some(at) = repair.applied_at {
                self.status.applied_at = Some(at);
            }
        }
    }

    /// Write the status if the store does not hold it already.
    async fn publish(&mut self, client: &mut Client) -> Result<(), End> {
        let json = serde_json::to_string(&self.status).map_err(|e| End::Lost(e.to_string()))?;
        if self.written.as_deref() == Some(json.as_str()) {
            return Ok(());
        }
        bounded(client.put(status_key(&self.options.host), json.clone(), None)).await?;
        self.written = Some(json);
        Ok(())
    }

    /// Take the host out of the live listing at once (the lease would expire anyway).
    async fn leave(&mut self, lease: Option<(Client, i64)>) {
        if let Some((mut client, id)) = lease {
            let _ = tokio::time::timeout(Duration::from_secs(1), client.lease_revoke(id)).await;
        }
    }
}

/// A multi-line message (a diagnostic with its help, a drift report) as one log line.
fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// `base@7, web@12`, or `no policy`.
fn refs(policies: &[crate::contract::PolicyRef]) -> String {
    if policies.is_empty() {
        return "no policy".to_owned();
    }
    policies
        .iter()
        .map(|p| format!("{}@{}", p.name, p.mod_revision))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Exponential backoff with jitter: 200 ms doubling to 10 s, each wait drawn between half
/// and all of the current step, so a fleet that lost its store does not return in lockstep.
struct Backoff {
    step: Duration,
    seed: u64,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(200);
    const MAX: Duration = Duration::from_secs(10);

    fn new() -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Backoff {
            step: Self::FIRST,
            seed: now ^ (u64::from(std::process::id()) << 32) | 1,
        }
    }

    fn reset(&mut self) {
        self.step = Self::FIRST;
    }

    fn next(&mut self) -> Duration {
        // xorshift64: enough randomness to spread hosts apart.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let fraction = 0.5 + (self.seed % 1000) as f64 / 2000.0;
        let wait = self.step.mul_f64(fraction);
        self.step = (self.step * 2).min(Self::MAX);
        wait
    }
}
