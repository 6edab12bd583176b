//! `apply --confirm`: the change is rolled back unless confirmed in time, even when the
//! terminal or the apply process is gone.
//!
//! The rollback is not left to the apply process, which a dropped SSH session or a `kill -9`
//! ends: apply starts a watchdog that outlives it. Where systemd manages the host (and zt runs
//! in the host's network namespace, so the unit acts on the same kernel state), the watchdog
//! runs as a transient unit under `systemd-run`, out of reach of a logind session cleanup.
//! Elsewhere (containers, test namespaces, hosts without systemd) it is a child in a session
//! of its own (`setsid`), ignoring SIGHUP, inheriting the network namespace. Either way it
//! wakes at the deadline, takes the state lock, and rolls back only the pending change whose
//! token it was given; `zt confirm` clears that change and the watchdog leaves quietly.
//!
//! The waiting apply is a convenience on top: it reports the decision, takes a `yes` typed on
//! its terminal as confirmation, and rolls back itself if the watchdog has not acted ten
//! seconds after the deadline.

use crate::args::WatchdogArgs;
use crate::commands::confirm;
use crate::exit::{Classify, Failure, Outcome};
use crate::recovery::recover;
use crate::state::{Access, Applied, Pending, StateDir};
use crate::trail::{self, Entry};
use crate::{Context, Report, backends};
use jiff::{SignedDuration, Timestamp};
use std::fs::OpenOptions;
use std::io::{self, BufRead, IsTerminal};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long after the deadline the waiting apply rolls back itself if the watchdog has not.
const GRACE: SignedDuration = SignedDuration::from_secs(10);

/// How often waiting processes look at the state.
const POLL: Duration = Duration::from_millis(100);

/// Record the pending change and start its watchdog.
pub fn arm(
    ctx: &Context<'_>,
    state: &StateDir,
    seconds: u32,
    record: &Applied,
) -> Outcome<Pending> {
    let token = token()?;
    let deadline = Timestamp::now()
        .checked_add(SignedDuration::from_secs(i64::from(seconds)))
        .or_system("the confirmation deadline is out of range")?;
    let mut pending = Pending {
        token,
        deadline,
        config: record.config.clone(),
        watchdog: "starting".into(),
        applies: record.applied_at,
    };
    // Recorded first: the watchdog acts only on a pending change it can read.
    state.set_pending(Some(&pending))?;
    match spawn(ctx, state, &pending.token) {
        Ok(how) => {
            pending.watchdog = how;
            state.set_pending(Some(&pending))?;
            ctx.verbose(format_args!("watchdog: {}", pending.watchdog));
            Ok(pending)
        }
        Err(failure) => {
            state.set_pending(None)?;
            Err(failure.context("cannot start the confirmation watchdog"))
        }
    }
}

/// Wait until the pending change is confirmed or rolled back; true when it was kept.
pub fn wait_for_decision(
    ctx: &Context<'_>,
    state: &StateDir,
    pending: &Pending,
    record: &Applied,
) -> Outcome<bool> {
    let seconds = pending
        .deadline
        .duration_since(Timestamp::now())
        .as_secs()
        .max(0);
    ctx.say(format_args!(
        "waiting for confirmation until {} ({seconds} s): run `zt confirm` to keep the change; \
         unconfirmed, it is rolled back",
        pending.deadline
    ));
    let answers = if !ctx.global.json && io::stdin().is_terminal() {
        ctx.say("or type `yes` here to keep it now");
        Some(read_answers())
    } else {
        None
    };
    loop {
        match state.pending()? {
            Some(p) if p.token == pending.token => {}
            // Confirmed (the record stays ours) or rolled back (it went back to the previous).
            _ => return Ok(state.applied()?.as_ref() == Some(record)),
        }
        let yes = answers
            .as_ref()
            .is_some_and(|rx| rx.recv_timeout(POLL).is_ok_and(|line| is_yes(&line)));
        if yes {
            let _lock = state.lock(Access::Exclusive, false)?;
            if let Some(p) = state.pending()?.filter(|p| p.token == pending.token) {
                confirm::keep(state, &p)?;
                return Ok(true);
            }
            continue;
        }
        if Timestamp::now() > pending.deadline + GRACE {
            roll_back_unconfirmed(ctx, state, &pending.token, "the waiting apply")?;
            continue;
        }
        if answers.is_none() {
            std::thread::sleep(POLL);
        }
    }
}

/// The watchdog itself (`zt watchdog --token T`): sleep until the deadline, then roll back the
/// pending change if it is still the one with this token.
pub fn run(ctx: &Context<'_>, args: &WatchdogArgs) -> Outcome<Report> {
    let state = StateDir::open(&ctx.global.state_dir, ctx.global.backend.as_str())?;
    loop {
        let Some(p) = state.pending()?.filter(|p| p.token == args.token) else {
            return Ok(Report::ok(
                serde_json::json!({"command": "watchdog", "ok": true}),
            ));
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
    let rolled_back = roll_back_unconfirmed(ctx, &state, &args.token, "the watchdog")?;
    Ok(Report::ok(serde_json::json!({
        "command": "watchdog",
        "ok": true,
        "rolled_back": rolled_back,
    })))
}

/// Under the lock, roll back the pending change with `token` if it is still pending; true
/// when this call rolled it back.
fn roll_back_unconfirmed(
    ctx: &Context<'_>,
    state: &StateDir,
    token: &str,
    who: &str,
) -> Outcome<bool> {
    let _lock = state.lock(Access::Exclusive, false)?;
    let Some(pending) = state.pending()?.filter(|p| p.token == token) else {
        return Ok(false);
    };
    let mut backend = backends::open(ctx)?;
    // The guarded apply may have died before or after its kernel change: settle that first,
    // and roll back only if it took effect (otherwise the undo would hit the apply before).
    recover(backend.as_mut(), state)?;
    if state.applied()?.map(|a| a.applied_at) != Some(pending.applies) {
        state.set_pending(None)?;
        let mut entry = Entry::new("rollback", state.backend(), "not-applied")
            .error("the unconfirmed apply never took effect; nothing to roll back");
        entry.config = Some(pending.config.clone());
        trail::append(state.root(), &entry)?;
        return Ok(false);
    }
    let reason = format!(
        "not confirmed by {}; {who} rolled the change back",
        pending.deadline
    );
    let mut entry = Entry::new("rollback", state.backend(), "rolled-back").error(&reason);
    entry.config = Some(pending.config.clone());
    match confirm::undo(backend.as_mut(), state) {
        Ok(_) => {
            trail::append(state.root(), &entry)?;
            eprintln!("{} zt: {reason}", Timestamp::now());
            Ok(true)
        }
        Err(failure) => {
            trail::append(state.root(), &entry.result("failed").error(&failure.error))?;
            Err(failure.context(format!("{who} could not roll back an unconfirmed change")))
        }
    }
}

/// Start the watchdog; how it runs, for the pending record.
fn spawn(ctx: &Context<'_>, state: &StateDir, token: &str) -> Outcome<String> {
    let exe = std::env::current_exe().or_system("cannot find the zt executable")?;
    let root = std::path::absolute(state.root()).or_system("cannot resolve the state directory")?;
    let args = [
        "--backend".as_ref(),
        state.backend().as_ref(),
        "--state-dir".as_ref(),
        root.as_os_str(),
        "watchdog".as_ref(),
        "--token".as_ref(),
        token.as_ref(),
    ];
    if systemd_manages_this_namespace() {
        let unit = format!("zt-confirm-{token}");
        let status = Command::new("systemd-run")
            .arg(format!("--unit={unit}"))
            .args([
                "--description=zt: roll back an unconfirmed change",
                "--collect",
                "--quiet",
                "--",
            ])
            .arg(&exe)
            .args(args)
            .stdin(Stdio::null())
            .status()
            .or_system("cannot run systemd-run")?;
        if !status.success() {
            return Err(Failure::system(anyhow::anyhow!(
                "systemd-run failed ({status})"
            )));
        }
        ctx.verbose(format_args!("watchdog started as systemd unit {unit}"));
        return Ok(format!("systemd unit {unit}"));
    }
    let log_path = state.root().join("watchdog.log");
    let log = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(&log_path)
        .or_system(format!("cannot open {}", log_path.display()))?;
    let mut command = Command::new(&exe);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    // SAFETY: between fork and exec the child only calls setsid(2) and signal(2), both
    // async-signal-safe, and allocates nothing.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            libc::signal(libc::SIGHUP, libc::SIG_IGN);
            Ok(())
        });
    }
    // Not waited for: it must outlive this process (init reaps it).
    let child = command.spawn().or_system("cannot start the watchdog")?;
    Ok(format!("process {}", child.id()))
}

/// systemd runs the host and this process shares PID 1's network namespace (a unit started
/// by systemd acts in PID 1's namespaces, so it could not reach a test namespace's rules).
fn systemd_manages_this_namespace() -> bool {
    let ns = |path: &str| std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()));
    Path::new("/run/systemd/system").is_dir()
        && ns("/proc/1/ns/net").is_some_and(|init| Some(init) == ns("/proc/self/ns/net"))
}

/// Lines typed on the terminal, read by a thread (standard input blocks).
fn read_answers() -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn is_yes(line: &str) -> bool {
    matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

/// 16 random hex digits naming a pending change.
fn token() -> Outcome<String> {
    let mut bytes = [0u8; 8];
    // SAFETY: getrandom(2) writes at most `bytes.len()` bytes into the buffer.
    let n = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
    if n != bytes.len() as isize {
        return Err(Failure::system(anyhow::anyhow!(
            "cannot read random bytes: {}",
            io::Error::last_os_error()
        )));
    }
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
