//! # zt-cli — the reference `zt` command
//!
//! A thin shell over the libraries, in the manner of ripgrep's binary over its crates: it
//! parses arguments ([`args`]), picks a backend, hands the work to [`zt_engine::Engine`] —
//! which owns the lock, the state directory, crash recovery, confirmation deadlines and the
//! audit trail — and renders the outcome as text, or as one JSON document with `--json`.
//! The detached watchdog that enforces confirmation deadlines is the one piece of the
//! transaction that stays here, behind the engine's [`zt_engine::Watchdog`] trait: it is a
//! process this binary starts.
//!
//! `anyhow` is used here and only here (the binary); the libraries return typed errors, which
//! [`exit::Failure`] classifies into exit codes once.

pub mod args;
mod backends;
mod commands;
pub mod exit;
pub mod output;
mod policy_file;
mod watchdog;

use args::{Cli, Command, Global};
use exit::{Failure, Outcome};
use std::fmt::Display;
use zt_core::Diff;

/// Changes of each kind written out before a text diff is summarized (`--full-diff` writes
/// them all; `--json` always has them all).
pub const DIFF_LINES_PER_KIND: usize = 50;

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

/// What every command gets: the global options and ways to talk to the operator (through
/// [`output`], so a closed or full output never stops a command).
pub struct Context<'a> {
    /// The global options.
    pub global: &'a Global,
    /// Write every change of a diff, not only the first of each kind.
    pub full_diff: bool,
}

impl Context<'_> {
    /// Print to standard output, unless the output is JSON.
    pub fn say(&self, text: impl Display) {
        if !self.global.json {
            output::out(text);
        }
    }

    /// Print to standard error, unless the output is JSON (warnings, hints).
    pub fn note(&self, text: impl Display) {
        if !self.global.json {
            output::err(text);
        }
    }

    /// Print to standard error with `-v` (progress and timings; JSON output included).
    pub fn verbose(&self, text: impl Display) {
        if self.global.verbose {
            output::err(format_args!("zt: {text}"));
        }
    }
}

/// Print a diff: every change with `full`, else summarized past [`DIFF_LINES_PER_KIND`].
pub fn say_diff(diff: &Diff, full: bool) {
    let text = if full {
        diff.to_string()
    } else {
        diff.bounded(DIFF_LINES_PER_KIND).to_string()
    };
    output::out(text.trim_end());
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
    let full_diff = match &cli.command {
        Command::Plan(a) => a.full_diff,
        Command::Apply(a) => a.full_diff,
        _ => false,
    };
    let ctx = Context {
        global: &cli.global,
        full_diff,
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
        output::out(doc);
        return;
    }
    match &failure.diagnostics {
        Some(d) => output::err(d),
        None => output::err(format_args!(
            "zt: error: {}",
            exit::describe(&failure.error)
        )),
    }
}
