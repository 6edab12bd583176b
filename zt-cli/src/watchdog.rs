//! The process that enforces a confirmation deadline, and the wait in the foreground.
//!
//! The engine owns the deadline logic (`zt_engine::Engine::watch`, `expire`,
//! `await_decision`); what stays here is how the watchdog process is started. Where systemd
//! manages the host (and zt runs in the host's network namespace, so the unit acts on the
//! same kernel state), it runs as a transient unit under `systemd-run`, out of reach of a
//! logind session cleanup. Elsewhere (containers, test namespaces, hosts without systemd) it is
//! a child in a session of its own (`setsid`), ignoring SIGHUP, inheriting the network
//! namespace. Either way it runs `zt watchdog --token T`, which sleeps until the deadline and
//! rolls back the pending change only if it is still the one with that token.
//!
//! The waiting apply is a convenience on top: it reports the decision, takes a `yes` typed on
//! its terminal as confirmation, and rolls back itself if the watchdog has not acted shortly
//! after the deadline.

use crate::args::{Global, WatchdogArgs};
use crate::exit::Outcome;
use crate::{Context, Report, backends};
use std::io::{self, BufRead, IsTerminal};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use zt_engine::state::StateDir;
use zt_engine::{Applied, Engine, Pending, Watchdog};

/// Starts `zt watchdog` detached from the applying process.
pub struct Detached {
    /// The backend options the watchdog needs to open the same backend.
    options: Vec<String>,
}

impl Detached {
    /// A watchdog that opens the backend `global` names.
    pub fn new(global: &Global) -> Detached {
        let mut options = vec!["--backend".to_owned(), global.backend.as_str().to_owned()];
        if let Some(v) = global.iptables_variant {
            options.push("--iptables-variant".into());
            options.push(format!("{v:?}").to_lowercase());
        }
        if let Some(cgroup) = &global.ebpf_cgroup {
            options.push("--ebpf-cgroup".into());
            options.push(cgroup.display().to_string());
        }
        options.push("--ebpf-pin-dir".into());
        options.push(global.ebpf_pin_dir.display().to_string());
        Detached { options }
    }
}

impl Watchdog for Detached {
    fn arm(&self, state: &StateDir, token: &str) -> Result<String, String> {
        let exe =
            std::env::current_exe().map_err(|e| format!("cannot find the zt executable: {e}"))?;
        let root: PathBuf = std::path::absolute(state.root())
            .map_err(|e| format!("cannot resolve the state directory: {e}"))?;
        let mut args: Vec<String> = self.options.clone();
        args.extend([
            "--state-dir".to_owned(),
            root.display().to_string(),
            "watchdog".to_owned(),
            "--token".to_owned(),
            token.to_owned(),
        ]);
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
                .args(&args)
                .stdin(Stdio::null())
                .status()
                .map_err(|e| format!("cannot run systemd-run: {e}"))?;
            if !status.success() {
                return Err(format!("systemd-run failed ({status})"));
            }
            return Ok(format!("systemd unit {unit}"));
        }
        let log = state.open_log("watchdog.log").map_err(|e| e.to_string())?;
        let mut command = Command::new(&exe);
        command
            .args(&args)
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
        let child = command
            .spawn()
            .map_err(|e| format!("cannot start the watchdog: {e}"))?;
        Ok(format!("process {}", child.id()))
    }
}

/// `zt watchdog --token T` (internal): sleep until the deadline, then roll back the pending
/// change if it is still the one with this token.
pub fn run(ctx: &Context<'_>, args: &WatchdogArgs) -> Outcome<Report> {
    let mut engine = backends::engine(ctx, false)?;
    let rolled_back = engine.watch(&args.token)?;
    Ok(Report::ok(serde_json::json!({
        "command": "watchdog",
        "ok": true,
        "rolled_back": rolled_back,
    })))
}

/// Wait in the foreground until the pending change is confirmed or rolled back; true when it
/// was kept. On a terminal, a typed `yes` confirms it.
pub fn wait_for_decision(
    ctx: &Context<'_>,
    engine: &mut Engine,
    pending: &Pending,
    record: &Applied,
) -> Outcome<bool> {
    let seconds = pending
        .deadline
        .duration_since(jiff::Timestamp::now())
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
    let mut yes = |wait| match &answers {
        Some(rx) => rx.recv_timeout(wait).is_ok_and(|line| is_yes(&line)),
        None => {
            std::thread::sleep(wait);
            false
        }
    };
    Ok(engine.await_decision(pending, record, &mut yes)?)
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
