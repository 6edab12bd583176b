//! Test cgroups: egress rules can match the sender's cgroup v2 path, so a test needs a
//! cgroup of its own and probes that run inside it.

use crate::probe::{self, Attempt, Identity, Outcome, Proto};
use std::ffi::CString;
use std::fs;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The cgroup v2 mount point (`/sys/fs/cgroup` or `/sys/fs/cgroup/unified`), if any: zt's
/// configurations name cgroups relative to it. The same lookup the backends use.
pub use zt_core::host::cgroup_v2_root;

/// A child cgroup created for one test under the cgroup v2 root, removed on drop (after its
/// processes exit). Named `zt-test-<pid>-<name>-<counter>`, so parallel tests never share one.
pub struct TestCgroup {
    path: PathBuf,
    relative: String,
    procs: CString,
}

/// Distinguishes the cgroups of one test process.
static CGROUPS: AtomicU32 = AtomicU32::new(0);

impl TestCgroup {
    /// Create the cgroup. `name` is letters, digits, `-` and `_`; panics when there is no
    /// cgroup v2 mount (check [`crate::Prerequisite::CgroupV2`] first) or it cannot be created.
    pub fn new(name: &str) -> TestCgroup {
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "a test cgroup name is letters, digits, '-' and '_', not {name:?}"
        );
        let root = cgroup_v2_root().unwrap_or_else(|| {
            panic!("no cgroup v2 mount; call require(&[Prerequisite::CgroupV2]) first")
        });
        let n = CGROUPS.fetch_add(1, Ordering::Relaxed);
        let relative = format!("zt-test-{}-{name}-{n}", std::process::id());
        let path = root.join(&relative);
        fs::create_dir(&path)
            .unwrap_or_else(|e| panic!("cannot create cgroup {}: {e}", path.display()));
        let procs = CString::new(path.join("cgroup.procs").as_os_str().as_bytes())
            .unwrap_or_else(|_| panic!("cgroup path {} holds a NUL byte", path.display()));
        TestCgroup {
            path,
            relative,
            procs,
        }
    }

    /// Its absolute path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its path relative to the cgroup v2 root, without a leading '/', as zt configurations
    /// write it (`zt-test-1234-web-0`).
    pub fn relative(&self) -> String {
        self.relative.clone()
    }

    /// [`crate::connect_as`], with the child moved into this cgroup before dropping
    /// privileges (so its socket belongs to the cgroup).
    pub fn connect_as(
        &self,
        id: Identity,
        proto: Proto,
        dst: SocketAddr,
        timeout: Duration,
    ) -> Outcome {
        let mut plan = probe::plan(proto, dst, timeout);
        plan.credentials = Some((id.uid, id.gid));
        plan.cgroup_procs = Some(self.procs.clone());
        let what = format!("{proto} to {dst} as {id} in cgroup {}", self.relative);
        Attempt::start(&plan, what).wait()
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        // rmdir fails with EBUSY while processes remain; probes are reaped before they
        // report, so this rarely waits.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match fs::remove_dir(&self.path) {
                Ok(()) => return,
                Err(e) if e.kind() == ErrorKind::ResourceBusy && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => {
                    eprintln!(
                        "zt-testkit: cannot remove cgroup {}: {e}",
                        self.path.display()
                    );
                    return;
                }
            }
        }
    }
}
