//! What a kernel test needs, checked up front.
//!
//! A kernel test that silently passes without running proves nothing, and one that fails
//! with "permission denied" deep inside a backend wastes the reader's time. So every kernel
//! test starts with [`require`]: under `CI=true` a missing prerequisite fails the test with a
//! message naming it; on a developer machine the test is skipped, visibly.

use crate::cgroup::cgroup_v2_root;
use std::ffi::CString;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Mutex;

/// A prerequisite a kernel test needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prerequisite {
    /// euid 0: namespaces, netfilter, probes as other uids.
    Root,
    /// An executable found in `PATH` (e.g. "nft", "iptables-legacy", "bpftool", "ip").
    Binary(&'static str),
    /// A cgroup2 mount exists (see [`crate::cgroup_v2_root`]).
    CgroupV2,
    /// bpffs is mounted on /sys/fs/bpf; it is mounted there when absent (shared host state,
    /// but harmless: every BPF tool does the same).
    BpfFs,
}

/// `true` when every prerequisite holds. When one is missing: under `CI=true` this panics
/// with a message naming it ("CI requires …"); otherwise it prints "skipping: …" to stderr and
/// returns `false` (the caller returns early).
pub fn require(prerequisites: &[Prerequisite]) -> bool {
    let missing: Vec<String> = prerequisites.iter().filter_map(|p| p.missing()).collect();
    if missing.is_empty() {
        return true;
    }
    let what = missing.join("; ");
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI requires {what}"
    );
    // Written to the stderr handle rather than with eprintln!, which libtest captures and
    // hides for passing tests: a skip must be visible.
    let _ = writeln!(std::io::stderr(), "skipping: this test needs {what}");
    false
}

impl Prerequisite {
    /// What is missing, in words, or `None`.
    fn missing(&self) -> Option<String> {
        match self {
            Prerequisite::Root => {
                // SAFETY: geteuid(2) cannot fail.
                (unsafe { libc::geteuid() } != 0)
                    .then(|| "root (euid 0) to create namespaces and probe as other uids".into())
            }
            Prerequisite::Binary(name) => {
                (!in_path(name)).then(|| format!("the `{name}` binary in PATH"))
            }
            Prerequisite::CgroupV2 => cgroup_v2_root()
                .is_none()
                .then(|| "a cgroup v2 mount (cgroup2 in /proc/self/mountinfo)".into()),
            Prerequisite::BpfFs => ensure_bpffs()
                .err()
                .map(|why| format!("bpffs on /sys/fs/bpf ({why})")),
        }
    }
}

/// Whether `name` is an executable file in one of `PATH`'s directories (or is such a path).
fn in_path(name: &str) -> bool {
    let executable = |p: &Path| {
        fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if name.contains('/') {
        return executable(Path::new(name));
    }
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| executable(&dir.join(name))))
}

const BPFFS: &str = "/sys/fs/bpf";

/// Whether a filesystem of type `fstype` is mounted on `mount_point`.
fn mounted(fstype: &str, mount_point: &str) -> bool {
    fs::read_to_string("/proc/self/mountinfo").is_ok_and(|info| {
        info.lines().any(|line| {
            let Some((fields, tail)) = line.split_once(" - ") else {
                return false;
            };
            fields.split_whitespace().nth(4) == Some(mount_point)
                && tail.split_whitespace().next() == Some(fstype)
        })
    })
}

/// Mount bpffs on /sys/fs/bpf unless it is there; tests of one process share one check so
/// two threads cannot stack two mounts.
fn ensure_bpffs() -> Result<(), String> {
    static MOUNTING: Mutex<()> = Mutex::new(());
    let _guard = MOUNTING.lock().unwrap_or_else(|p| p.into_inner());
    if mounted("bpf", BPFFS) {
        return Ok(());
    }
    let c = |s: &str| CString::new(s).map_err(|e| e.to_string());
    let (source, target, fstype) = (c("bpf")?, c(BPFFS)?, c("bpf")?);
    // SAFETY: mount(2) with NUL-terminated strings and no data.
    let r = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if r != 0 {
        return Err(format!(
            "mount -t bpf bpf {BPFFS} failed: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binaries_are_found_in_path_and_by_path() {
        assert!(in_path("sh"));
        assert!(in_path("/bin/sh"));
        assert!(!in_path("zt-testkit-no-such-binary"));
    }
}
