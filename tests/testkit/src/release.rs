//! A workspace binary built for a benchmark: the release profile, in a target directory of
//! its own (`target/zt-bench`), so the build does not wait for the lock of the `cargo bench`
//! that runs the benchmark.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Build `bin` of `package` in the workspace at `root` (release, `--locked`); its path.
/// Panics with cargo's status when the build fails: a benchmark cannot go on without it.
pub fn release_binary(root: &Path, package: &str, bin: &str) -> PathBuf {
    let target = root.join("target").join("zt-bench");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let built = Command::new(cargo)
        .current_dir(root)
        .args([
            "build",
            "--release",
            "--locked",
            "-p",
            package,
            "--bin",
            bin,
        ])
        .arg("--target-dir")
        .arg(&target)
        .status();
    match built {
        Ok(s) if s.success() => target.join("release").join(bin),
        other => panic!("cannot build the {bin} binary: {other:?}"),
    }
}
