//! The `zt` binary: parse, run, print, exit. Everything else is in the `zt_cli` library.

use clap::Parser;
use std::process::ExitCode;
use zt_cli::args::Cli;
use zt_cli::output;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match zt_cli::run(&cli) {
        Ok(report) => {
            if cli.global.json {
                output::out(&report.json);
            }
            report.code
        }
        Err(failure) => {
            zt_cli::report_failure(&cli, &failure);
            failure.class.code()
        }
    };
    // Last: the output's own failure (a full disk) is reported, and can change the code.
    ExitCode::from(output::finish(code))
}
