//! Embedding the safe apply transaction: what an orchestration agent does with zt-engine.
//!
//! It applies a policy through the nft backend with `zt_engine::Engine` — the lock, the crash
//! record, verification, the records and the audit trail included — then reads the status,
//! changes one rule, rolls the change back, and flushes. Everything happens inside a network
//! namespace this process creates first (`unshare(CLONE_NEWNET)`), with a state directory
//! under /tmp, so the host's firewall and /var/lib/zt are never touched.
//!
//! `sudo cargo run --example engine` (root: it programs nftables in its own namespace)

use std::time::Duration;
use zt::engine::{ApplyOptions, Engine, EngineError, PolicyFile};
use zt::nft::NftBackend;
use zt::{Policy, RuleBuilder, StaticResolver};

/// An agent's policy, built in code: uid 1001 may reach its cache on port `port`.
fn policy(port: u16) -> Result<PolicyFile, EngineError> {
    let loaded = Policy::builder()
        .rule(
            RuleBuilder::egress("web-to-cache")
                .uid(1001)
                .to_host("127.0.0.1")
                .to_host("::1")
                .port(port)
                .allow(),
        )
        .build(&StaticResolver::new())?;
    PolicyFile::from_policy("agent:web-to-cache", &loaded.policy)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // SAFETY: unshare(2) with CLONE_NEWNET only moves this (single-threaded) process into a
    // new, empty network namespace; it touches no memory of ours.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        let e = std::io::Error::last_os_error();
        return Err(format!("cannot create a network namespace (run as root): {e}").into());
    }
    let state = std::env::temp_dir().join(format!("zt-engine-example-{}", std::process::id()));
    let mut engine = Engine::open(&state, Box::new(NftBackend::new()))?
        .with_resolver(Box::new(StaticResolver::new()))
        .observe(|event| {
            if let zt::engine::Event::Applied { took } = event {
                println!("  (the kernel took the change in {took:.1?})");
            }
        });

    let first = engine.apply(&policy(6379)?, ApplyOptions::default())?;
    println!("applied: {}", first.plan.diff.summary());

    let report = engine.status()?;
    let drift = report.drift.map_or(0, |d| d.items.len());
    println!(
        "status: installed={}, {} counters, {drift} differences from the last apply",
        report.status.installed,
        report.status.counters.len()
    );

    let second = engine.apply(&policy(6380)?, ApplyOptions::default())?;
    println!("changed a port:\n{}", second.plan.diff.bounded(5));

    let restored = engine.rollback()?;
    println!(
        "rolled back to the policy applied at {}",
        restored.map_or_else(|| "-".to_owned(), |a| a.applied_at.to_string())
    );
    let again = engine.apply(&policy(6379)?, ApplyOptions::default())?;
    println!(
        "the same policy again changed the kernel: {}",
        again.changed
    );

    // A confirmation deadline needs a watchdog that outlives the process (the zt command
    // starts one); without it the engine refuses before touching anything.
    match engine.apply(
        &policy(6381)?,
        ApplyOptions::confirm_within(Duration::from_secs(30)),
    ) {
        Err(e @ EngineError::NoWatchdog) => println!("refused as expected: {e}"),
        other => return Err(format!("expected a refusal, got {other:?}").into()),
    }

    engine.flush()?;
    println!("flushed; the audit trail has these lines:");
    let trail = std::fs::read_to_string(state.join("audit.log"))?;
    for line in trail.lines() {
        let v: serde_json::Value = serde_json::from_str(line)?;
        println!("  {} {} {}", v["command"], v["result"], v["diff"]);
    }
    std::fs::remove_dir_all(&state)?;
    Ok(())
}
