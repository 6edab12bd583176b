//! The narrow seam between zt and the kernel: read a family's `filter` table as
//! `iptables-save` prints it, and run one `iptables-restore --noflush`. Unit tests replace it;
//! [`Tools`] runs the chosen variant's binaries.

use crate::error::IptablesError;
use crate::variant::Variant;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use zt_core::Family;

/// Kernel I/O of the iptables backend.
pub trait Kernel: Send {
    /// Read one family's `filter` table, with counters.
    fn save(&self, family: Family) -> Result<String, IptablesError> {
        let [v4, v6] = self.save_both()?;
        Ok(match family {
            Family::V4 => v4,
            Family::V6 => v6,
        })
    }

    /// Read both families' `filter` tables with counters, IPv4 first.
    fn save_both(&self) -> Result<[String; 2], IptablesError>;

    /// Feed `input` to one `iptables-restore --noflush --counters` (or `ip6tables-restore`).
    fn restore(&self, family: Family, input: &str) -> Result<(), IptablesError>;

    /// Where `-m cgroup --path` paths are looked up: the cgroup v2 mount point, if any.
    fn cgroup_root(&self) -> Option<std::path::PathBuf> {
        zt_core::host::cgroup_v2_root()
    }
}

/// The real kernel, through one variant's `iptables-save` and `iptables-restore` binaries.
#[derive(Clone, Copy, Debug)]
pub struct Tools {
    variant: Variant,
}

impl Tools {
    /// Use `variant`'s binaries.
    pub fn new(variant: Variant) -> Self {
        Self { variant }
    }

    /// Start `*-save -t filter -c`, or `None` when the legacy kernel has no `filter` table in
    /// this namespace: asking for it would create it (and hook it) just to read it.
    fn start_save(&self, family: Family) -> Result<Option<(&'static str, Child)>, IptablesError> {
        if self.variant == Variant::Legacy && !legacy_filter_exists(family) {
            return Ok(None);
        }
        let binary = self.variant.save(family);
        spawn(binary, &["-t", "filter", "-c"]).map(|c| Some((binary, c)))
    }
}

/// Whether the legacy `filter` table exists in the calling thread's network namespace.
/// (`/proc/thread-self`, not `/proc/self`: a test enters a namespace on its own thread.)
fn legacy_filter_exists(family: Family) -> bool {
    let names = match family {
        Family::V4 => "/proc/thread-self/net/ip_tables_names",
        Family::V6 => "/proc/thread-self/net/ip6_tables_names",
    };
    // Unreadable: let iptables-save decide (and report) rather than guess "absent".
    std::fs::read_to_string(names).map_or(true, |t| t.lines().any(|l| l.trim() == "filter"))
}

impl Kernel for Tools {
    fn save_both(&self) -> Result<[String; 2], IptablesError> {
        // Both tools run at once; every started child is waited for.
        let started = [Family::V4, Family::V6].map(|f| self.start_save(f));
        let [v4, v6] = started.map(|s| match s? {
            Some((binary, child)) => collect(binary, child),
            None => Ok(String::new()),
        });
        Ok([v4?, v6?])
    }

    fn restore(&self, family: Family, input: &str) -> Result<(), IptablesError> {
        let binary = self.variant.restore(family);
        let mut child = spawn_with(
            binary,
            &["--noflush", "--counters", "--wait"],
            Stdio::piped(),
        )?;
        let stdin = child.stdin.take();
        // Write from another thread so a tool that stops reading and reports an error cannot
        // block us on a full pipe; a tool that exits early closes the pipe (its error wins).
        std::thread::scope(|scope| {
            scope.spawn(move || {
                if let Some(mut stdin) = stdin {
                    let _ = stdin.write_all(input.as_bytes());
                }
            });
            collect(binary, child).map(drop)
        })
    }
}

/// Start a tool with its stdout and stderr captured and nothing on its stdin.
pub(crate) fn spawn(binary: &str, args: &[&str]) -> Result<Child, IptablesError> {
    spawn_with(binary, args, Stdio::null())
}

/// Start a tool with its stdout and stderr captured and `stdin` as its standard input.
///
/// The tool dies with the thread that started it (`PR_SET_PDEATHSIG`): zt killed in the
/// middle of a restore must not leave an `iptables-restore` behind, still holding the xtables
/// lock or committing half a change after the next zt command has recovered the last one.
fn spawn_with(binary: &str, args: &[&str], stdin: Stdio) -> Result<Child, IptablesError> {
    // SAFETY: getpid(2) cannot fail and touches no memory.
    let parent = unsafe { libc::getpid() };
    let mut command = Command::new(binary);
    command
        .args(args)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: the closure runs in the child between fork and exec and makes only
    // async-signal-safe system calls (prctl, getppid, _exit), allocating nothing.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // zt died before the signal was armed: die now rather than run orphaned.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    command.spawn().map_err(|source| IptablesError::Spawn {
        binary: binary.to_owned(),
        source,
    })
}

/// Wait for a tool and return its stdout, or its failure.
pub(crate) fn collect(binary: &str, child: Child) -> Result<String, IptablesError> {
    let out = child
        .wait_with_output()
        .map_err(|source| IptablesError::Spawn {
            binary: binary.to_owned(),
            source,
        })?;
    if !out.status.success() {
        return Err(IptablesError::Tool {
            binary: binary.to_owned(),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    String::from_utf8(out.stdout).map_err(|_| IptablesError::Tool {
        binary: binary.to_owned(),
        status: out.status.to_string(),
        stderr: "printed output that is not UTF-8".to_owned(),
    })
}
