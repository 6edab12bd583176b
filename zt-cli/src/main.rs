//! The `zt` binary: parse, run, print, exit. Everything else is in the `zt_cli` library.

use clap::Parser;
use std::process::ExitCode;
use zt_cli::args::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match zt_cli::run(&cli) {
        Ok(report) => {
            if cli.global.json {
                println!("{}", report.json);
            }
            ExitCode::from(report.code)
        }
        Err(failure) => {
            zt_cli::report_failure(&cli, &failure);
            failure.exit_code()
        }
    }
}
