//! Validate a configuration file against this host's users and groups and print its ruleset,
//! or every problem with its position.
//!
//! `cargo run --example check -- examples/rules.yaml`

use std::path::PathBuf;
use std::process::ExitCode;
use zt::{Error, Policy, SystemResolver};

fn main() -> ExitCode {
    let Some(path) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: check <rules.yaml>");
        return ExitCode::from(2);
    };
    match Policy::from_file(&path, &SystemResolver::new()) {
        Ok(loaded) => {
            if !loaded.warnings.is_empty() {
                eprintln!("{}", loaded.warnings);
            }
            print!("{}", loaded.policy.ruleset());
            ExitCode::SUCCESS
        }
        Err(Error::Invalid(diagnostics)) => {
            eprintln!("{diagnostics}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
