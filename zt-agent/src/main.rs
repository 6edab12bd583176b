//! `zt-agent`: see [`zt_agent::cli`].

use clap::Parser;
use std::process::ExitCode;
use zt_agent::agent::{self, AgentOptions};
use zt_agent::backends::Choice;
use zt_agent::cli::{Cli, Command, RunArgs};
use zt_agent::contract::host_name_problem;
use zt_agent::enforcer::Enforcer;
use zt_agent::operator::{self, Refusal};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // One thread for the agent's I/O; the engine has its own. An idle agent is a few
    // timers and one watch stream.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            note(format_args!(
                "zt-agent: cannot start the async runtime: {e}"
            ));
            return ExitCode::from(3);
        }
    };
    let (command, json) = match &cli.command {
        Command::Run(_) => ("run", false),
        Command::Push(a) => ("push", a.store.json),
        Command::Remove(a) => ("remove", a.store.json),
        Command::Status(a) => ("status", a.store.json),
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code: u8 = if e.is::<Refusal>() { 1 } else { 3 };
            let text = format!("{e:#}");
            if json {
                // With --json, one document on standard output, failures included.
                let doc = serde_json::json!({
                    "command": command,
                    "ok": false,
                    "exit_code": code,
                    "error": text.trim_end(),
                });
                let _ = say(doc);
            } else {
                note(format_args!("zt-agent: {}", text.trim_end()));
            }
            ExitCode::from(code)
        }
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run(args) => run(args).await,
        Command::Push(args) => {
            let report = operator::push(&args.store.options()?, &args.name, &args.file).await?;
            if args.store.json {
                say(&report)?;
            } else {
                if let Some(warnings) = report["warnings"].as_array() {
                    for w in warnings {
                        note(format_args!(
                            "{}: warning[{}]: {}",
                            args.file.display(),
                            w["code"].as_str().unwrap_or_default(),
                            w["message"].as_str().unwrap_or_default()
                        ));
                    }
                }
                let rules = report["rules"].as_u64().unwrap_or_default();
                say(format_args!(
                    "pushed {} ({rules} rule{}) at revision {}",
                    report["key"].as_str().unwrap_or_default(),
                    if rules == 1 { "" } else { "s" },
                    report["revision"]
                ))?;
            }
            Ok(())
        }
        Command::Remove(args) => {
            let report = operator::remove(&args.store.options()?, &args.name).await?;
            if args.store.json {
                say(&report)?;
            } else {
                say(format_args!(
                    "removed {} at revision {}",
                    args.name, report["revision"]
                ))?;
            }
            Ok(())
        }
        Command::Status(args) => {
            let fleet = operator::status(&args.store.options()?).await?;
            if args.store.json {
                say(serde_json::to_string(&fleet)?)?;
            } else {
                say(fleet.table().trim_end())?;
            }
            Ok(())
        }
    }
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let host = match &args.host {
        Some(h) => h.clone(),
        None => hostname()?,
    };
    if let Some(problem) = host_name_problem(&host) {
        anyhow::bail!("host name '{host}': {problem} (use --host)");
    }
    let options = AgentOptions {
        host,
        labels: args.labels(),
        backend: args.backend.as_str().to_owned(),
        store: args.store.options()?,
        verify_interval: args.verify_interval,
        lease_ttl: args.lease_ttl,
        coalesce: args.coalesce,
        heartbeat: args.heartbeat,
    };
    let choice = Choice::of(&args);
    let enforcer =
        Enforcer::start(&args.state_dir, move || choice.open()).map_err(anyhow::Error::msg)?;
    agent::run(options, enforcer)
        .await
        .map_err(anyhow::Error::msg)
}

/// Write a line to standard output. A reader that has gone (EPIPE) ends the output quietly, as
/// for any Unix filter; any other failure (a full disk) is an error, never a panic.
fn say(text: impl std::fmt::Display) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::anyhow!("cannot write to standard output: {e}"))
        }
        _ => Ok(()),
    }
}

/// Write a line to standard error; if even that fails there is no one left to tell.
fn note(text: impl std::fmt::Display) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{text}");
}

fn hostname() -> anyhow::Result<String> {
    let text = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map_err(|e| anyhow::anyhow!("cannot read the hostname ({e}); use --host"))?;
    Ok(text.trim().to_owned())
}
