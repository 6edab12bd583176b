//! `zt status`: what is installed, how often each rule matched, and whether the kernel still
//! enforces the last applied policy.

use crate::exit::Outcome;
use crate::{Context, Report, backends};
use serde_json::json;
use std::fmt::Write;
use zt_engine::StatusReport;

/// Report the installed rules with counters, and drift against the last applied policy.
pub fn run(ctx: &Context<'_>) -> Outcome<Report> {
    let mut engine = backends::engine(ctx, false)?;
    let report = engine.status()?;
    if let Some(stale) = &report.stale {
        ctx.note(format_args!("zt: warning: {stale}"));
    }
    let name = engine.state().backend().to_owned();
    ctx.say(text(&name, &report).trim_end());
    let StatusReport {
        status,
        applied,
        pending,
        drift,
        ..
    } = report;
    Ok(Report::ok(json!({
        "command": "status",
        "ok": true,
        "backend": name,
        "installed": status.installed,
        "applied": applied.map(|a| json!({
            "config": a.config,
            "sha256": a.sha256,
            "applied_at": a.applied_at,
        })),
        "pending": pending.map(|p| json!({
            "config": p.config,
            "deadline": p.deadline,
        })),
        "counters": status.counters,
        "drift": drift.map(|d| d.items),
    })))
}

/// The report as an operator reads it.
fn text(backend: &str, report: &StatusReport) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "backend {backend}: {}",
        if report.status.installed {
            "zt's rules are installed"
        } else {
            "zt has no rules installed"
        }
    );
    match &report.applied {
        Some(a) => {
            let _ = writeln!(
                text,
                "policy: {} (sha256 {}, applied {})",
                a.config.display(),
                a.sha256.get(..12).unwrap_or(&a.sha256),
                a.applied_at
            );
        }
        None => text.push_str("policy: none applied with this state directory\n"),
    }
    if let Some(i) = &report.interrupted {
        let _ = writeln!(
            text,
            "an apply of {} was interrupted: the next apply, rollback or confirm completes or \
             drops it, as the kernel shows",
            i.record.config.display()
        );
    }
    if let Some(p) = &report.pending {
        let _ = writeln!(
            text,
            "awaiting confirmation until {}: `zt confirm` keeps it, otherwise it is rolled back",
            p.deadline
        );
    }
    if !report.status.counters.is_empty() {
        text.push('\n');
        text.push_str(&counter_table(&report.status.counters));
    }
    match &report.drift {
        Some(d) if d.is_empty() => {
            text.push_str("\nno drift: the kernel enforces the last applied policy")
        }
        Some(d) => {
            let _ = write!(text, "\ndrift against the last applied policy:\n{d}");
        }
        None => {}
    }
    text
}

/// `RULE  PACKETS  BYTES`, aligned.
fn counter_table(counters: &[zt_core::Counter]) -> String {
    let width = counters
        .iter()
        .map(|c| c.name.chars().count())
        .chain([4])
        .max()
        .unwrap_or(4);
    let mut out = format!("{:<width$}  {:>12}  {:>14}\n", "RULE", "PACKETS", "BYTES");
    for c in counters {
        let _ = writeln!(
            out,
            "{:<width$}  {:>12}  {:>14}",
            c.name, c.packets, c.bytes
        );
    }
    out
}
