//! `zt completions` and `zt man`: generated from the clap definitions, so they never drift
//! from `--help`.

use crate::args::{Cli, CompletionArgs, ManArgs};
use crate::exit::{Classify, Outcome};
use crate::{Context, Report};
use clap::CommandFactory;
use serde_json::json;

/// The completion script for a shell (`zt completions bash > /etc/bash_completion.d/zt`).
pub fn completions(ctx: &Context<'_>, args: &CompletionArgs) -> Outcome<Report> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "zt", &mut script);
    emit(ctx, "completions", script)
}

/// The man page as roff (`zt man > /usr/local/share/man/man1/zt.1`), or with `--dir` every
/// page (`zt.1`, `zt-apply.1`, …) written into a directory.
pub fn man(ctx: &Context<'_>, args: &ManArgs) -> Outcome<Report> {
    if let Some(dir) = &args.dir {
        std::fs::create_dir_all(dir).or_system(format!("cannot create {}", dir.display()))?;
        clap_mangen::generate_to(Cli::command(), dir)
            .or_system(format!("cannot write the man pages into {}", dir.display()))?;
        ctx.say(format_args!("wrote the man pages into {}", dir.display()));
        return Ok(Report::ok(
            json!({"command": "man", "ok": true, "dir": dir}),
        ));
    }
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut page)
        .or_system("cannot render the man page")?;
    emit(ctx, "man", page)
}

/// Text goes to standard output as is; with `--json` it is the `text` field.
fn emit(ctx: &Context<'_>, command: &str, bytes: Vec<u8>) -> Outcome<Report> {
    let text = String::from_utf8(bytes).or_system("the generated text is not UTF-8")?;
    if !ctx.global.json {
        crate::output::out_raw(&text);
    }
    Ok(Report::ok(
        json!({"command": command, "ok": true, "text": text}),
    ))
}
