//! # zt-cli — the reference `zt` command
//!
//! A thin shell over `zt-core` and the backends, in the manner of ripgrep's binary over its
//! crates: it parses arguments ([`args`]), formats output (text, or one JSON document with
//! `--json`), serializes invocations with a lock, keeps the state directory (last applied
//! policy, rollback snapshot, pending confirmation) and appends the audit trail. Policy
//! parsing, ordering, rendering, diffing, verification, persistence formats and kernel-log
//! parsing all live in the libraries, where embedders get them too.
//!
//! `anyhow` is used here and only here (the binary); the libraries return typed errors, which
//! [`exit::Failure`] classifies into exit codes once.

pub mod args;
mod backends;
mod commands;
pub mod exit;
mod policy_file;
mod recovery;
mod state;
mod trail;
mod watchdog;

use args::{Cli, Command, Global};
use exit::{Failure, Outcome};
use std::fmt::Display;

/// What a successful command leaves for `main`: the JSON document (printed with `--json`) and
/// the exit code (0, or 1/2 where a command's contract says so: `verify` with drift,
/// `plan --detailed-exitcode` with changes).
#[derive(Debug)]
pub struct Report {
    /// The `--json` document.
    pub json: serde_json::Value,
    /// The exit code.
    pub code: u8,
}

impl Report {
    /// Exit 0 with `json`.
    pub fn ok(json: serde_json::Value) -> Report {
        Report { json, code: 0 }
    }
}

/// What every command gets: the global options and ways to talk to the operator.
pub struct Context<'a> {
    /// The global options.
    pub global: &'a Global,
}

impl Context<'_> {
    /// Print to standard output, unless the output is JSON.
    pub fn say(&self, text: impl Display) {
        if !self.global.json {
            println!("{text}");
        }
    }

    /// Print to standard error, unless the output is JSON (warnings, hints).
    pub fn note(&self, text: impl Display) {
        if !self.global.json {
            eprintln!("{text}");
        }
    }

    /// Print to standard error with `-v` (progress and timings; JSON output included).
    pub fn verbose(&self, text: impl Display) {
        if self.global.verbose {
            eprintln!("zt: {text}");
        }
    }
}

/// The command's name as JSON documents and the audit trail give it.
pub fn command_name(command: &Command) -> &'static str {
    match command {
        Command::Check(_) => "check",
        Command::Plan(_) => "plan",
        Command::Apply(_) => "apply",
        Command::Confirm => "confirm",
        Command::Rollback => "rollback",
        Command::Status => "status",
        Command::Verify(_) => "verify",
        Command::Flush => "flush",
        Command::Persist(_) => "persist",
        Command::Audit(_) => "audit",
        Command::Completions(_) => "completions",
        Command::Man(_) => "man",
        Command::Watchdog(_) => "watchdog",
    }
}

/// Run one command.
pub fn run(cli: &Cli) -> Outcome<Report> {
    let ctx = Context {
        global: &cli.global,
    };
    match &cli.command {
        Command::Check(a) => commands::check::run(&ctx, a),
        Command::Plan(a) => commands::plan::run(&ctx, a),
        Command::Apply(a) => commands::apply::run(&ctx, a),
        Command::Confirm => commands::confirm::confirm(&ctx),
        Command::Rollback => commands::confirm::rollback(&ctx),
        Command::Status => commands::status::run(&ctx),
        Command::Verify(a) => commands::verify::run(&ctx, a),
        Command::Flush => commands::flush::run(&ctx),
        Command::Persist(a) => commands::persist::run(&ctx, a),
        Command::Audit(a) => commands::audit::run(&ctx, a),
        Command::Completions(a) => commands::generate::completions(&ctx, a),
        Command::Man(a) => commands::generate::man(&ctx, a),
        Command::Watchdog(a) => watchdog::run(&ctx, a),
    }
}

/// Print a failure once: diagnostics or the error chain on standard error, or one JSON
/// document on standard output with `--json`.
pub fn report_failure(cli: &Cli, failure: &Failure) {
    if cli.global.json {
        let mut doc = serde_json::json!({
            "command": command_name(&cli.command),
            "ok": false,
            "exit_code": failure.class.code(),
            "error": exit::describe(&failure.error),
        });
        if let Some(d) = &failure.diagnostics {
            doc["diagnostics"] = serde_json::json!(d.items);
        }
        if let Some(details) = &failure.details {
            doc["details"] = details.clone();
        }
        println!("{doc}");
        return;
    }
    match &failure.diagnostics {
        Some(d) => eprintln!("{d}"),
        None => eprintln!("zt: error: {}", exit::describe(&failure.error)),
    }
}
