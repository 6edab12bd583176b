//! What `zt check`, `zt apply` and `zt audit --file` do with a path that leads somewhere
//! hostile (issue 18): a device that never ends, a FIFO fed without end or with no writer at
//! all, and a policy file or directory someone other than root may change.
//!
//! Each run is measured: its wall time, and its peak memory (the kernel's `ru_maxrss` for the
//! child, from wait4). Address space is capped at 2 GiB and a run is killed after 20 s, so a
//! read without end fails the test instead of exhausting the machine.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ALLOW_4001, Zt, s};
use std::ffi::CString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// 16 MiB: zt-core's limit on a policy's size.
const LIMIT: usize = 16 * 1024 * 1024;

/// How a run of `zt` ended.
struct Run {
    /// Exit code, `None` when a signal ended it.
    code: Option<i32>,
    stdout: String,
    stderr: String,
    took: Duration,
    /// Peak resident memory, KiB.
    max_rss_kib: i64,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?} after {:?}, peak RSS {} KiB\nstderr: {}",
            self.code, self.took, self.max_rss_kib, self.stderr
        )
    }
}

/// Run `zt args` with its address space capped at 2 GiB, killed after 20 s.
fn measured(zt: &Zt, args: &[&str]) -> Run {
    let out = zt
        .dir
        .join(format!("out-{}", args.join("_").replace('/', "_")));
    let err = zt
        .dir
        .join(format!("err-{}", args.join("_").replace('/', "_")));
    let mut command = zt.command(args);
    command
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap());
    // SAFETY: setrlimit(2) is async-signal-safe, and nothing else runs between fork and exec.
    unsafe {
        command.pre_exec(|| {
            let cap = libc::rlimit {
                rlim_cur: 2 << 30,
                rlim_max: 2 << 30,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &cap) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let started = Instant::now();
    #[allow(
        clippy::zombie_processes,
        reason = "reaped by wait4 below, which also gives its peak memory"
    )]
    let child = command.spawn().unwrap();
    let pid = i32::try_from(child.id()).unwrap();
    let (status, usage) = loop {
        let mut status = 0;
        // SAFETY: an all-zero rusage is valid, and wait4 only writes the two out-parameters.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid {
            break (status, usage);
        }
        assert_eq!(r, 0, "wait4: {}", std::io::Error::last_os_error());
        if started.elapsed() > Duration::from_secs(20) {
            // SAFETY: our own child, not yet reaped.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let took = started.elapsed();
    Run {
        code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
        stdout: std::fs::read_to_string(&out).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err).unwrap_or_default(),
        took,
        max_rss_kib: usage.ru_maxrss,
    }
}

fn mkfifo(path: &Path) {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

/// A thread that opens `fifo` for writing (waiting for a reader) and writes `total` bytes of
/// `pattern` repeated: how many it wrote, and the error that stopped it, if one did.
fn feed(
    fifo: &Path,
    pattern: &'static [u8],
    total: usize,
) -> std::thread::JoinHandle<(usize, Option<std::io::ErrorKind>)> {
    let fifo = fifo.to_path_buf();
    std::thread::spawn(move || {
        let mut f = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
        let chunk: Vec<u8> = pattern.iter().copied().cycle().take(1 << 20).collect();
        let mut written = 0;
        while written < total {
            match f.write(&chunk[..chunk.len().min(total - written)]) {
                Ok(n) => written += n,
                Err(e) => return (written, Some(e.kind())),
            }
        }
        (written, None)
    })
}

/// Open `fifo` for reading and close it at once: a writer still waiting in its open (when zt
/// never opened the FIFO) is released, and meets EPIPE, instead of hanging the test.
fn release(fifo: &Path) {
    let _ = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(fifo);
}

/// The three commands that read a file an operator names, with that file.
fn readers(path: &str) -> [Vec<&str>; 3] {
    [
        vec!["check", "-c", path],
        vec!["apply", "-c", path],
        vec!["audit", "--file", path],
    ]
}

#[test]
fn a_character_device_is_refused_at_once_by_check_apply_and_audit() {
    let Some(zt) = Zt::new("dev-zero") else {
        return;
    };
    for args in readers("/dev/zero") {
        let run = measured(&zt, &args);
        assert_eq!(run.code, Some(1), "zt {args:?}: {run:?}");
        assert!(
            run.stderr.contains("/dev/zero") && run.stderr.contains("character device"),
            "zt {args:?}: {run:?}"
        );
        assert!(run.took < Duration::from_secs(1), "zt {args:?}: {run:?}");
        assert!(run.max_rss_kib < 64 * 1024, "zt {args:?}: {run:?}");
    }
    assert!(!zt.table_exists(), "nothing was applied");
}

#[test]
fn a_fifo_with_no_writer_is_refused_at_once_by_check_apply_and_audit() {
    let Some(zt) = Zt::new("fifo-no-writer") else {
        return;
    };
    let fifo = zt.dir.join("policy.yaml");
    mkfifo(&fifo);
    for args in readers(&s(&fifo)) {
        let run = measured(&zt, &args);
        assert_eq!(run.code, Some(1), "zt {args:?}: {run:?}");
        assert!(run.stderr.contains("no writer"), "zt {args:?}: {run:?}");
        assert!(run.took < Duration::from_secs(1), "zt {args:?}: {run:?}");
    }
    assert!(!zt.table_exists(), "nothing was applied");
}

/// 200 MB through a FIFO: `check` and `apply` stop one byte past 16 MiB and report
/// `too-large`, so the writer meets a closed pipe (EPIPE) long before it is done.
#[test]
fn a_fifo_policy_is_read_only_up_to_the_limit_by_check_and_apply() {
    const TOTAL: usize = 200 * 1000 * 1000;
    let Some(zt) = Zt::new("fifo-200mb") else {
        return;
    };
    let fifo = zt.dir.join("policy.yaml");
    mkfifo(&fifo);
    for args in &readers(&s(&fifo))[..2] {
        let writer = feed(&fifo, b"#", TOTAL);
        let run = measured(&zt, args);
        release(&fifo);
        let (written, failed) = writer.join().unwrap();
        assert_eq!(run.code, Some(1), "zt {args:?}: {run:?}");
        assert!(
            run.stderr.contains("too-large") && run.stderr.contains("more than 16777216 bytes"),
            "zt {args:?}: {run:?}"
        );
        assert_eq!(
            failed,
            Some(std::io::ErrorKind::BrokenPipe),
            "zt {args:?} let the writer write {written} bytes"
        );
        // What was read, what the pipe buffers, and the chunk the writer was in.
        assert!(
            written <= LIMIT + 1 + 2 * (1 << 20),
            "zt {args:?}: {written} bytes written"
        );
        assert!(run.max_rss_kib < 64 * 1024, "zt {args:?}: {run:?}");
    }
    assert!(!zt.table_exists(), "nothing was applied");
}

/// A kernel log has no size limit (a busy host's week of kern.log exceeds 16 MiB): `audit`
/// reads it line by line, whatever its size, in bounded memory. 200 MB through a FIFO are read
/// to the end (the writer finishes, the blocked packets at its end are counted) while the
/// process stays small.
#[test]
fn audit_reads_a_fifo_of_any_size_in_bounded_memory() {
    const TOTAL: usize = 200 * 1000 * 1000;
    const NOISE: &[u8] = b"2026-11-23T18:27:08,000000+00:00 some unrelated kernel message, padded to a line of about a hundred bytes.\n";
    const BLOCKED: &[u8] = b"2026-11-23T20:15:08,551157+00:00 ZT-BLOCKED: IN= OUT=lo SRC=127.0.0.1 DST=127.0.0.1 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=65420 DF PROTO=TCP SPT=57404 DPT=6379 WINDOW=65495 RES=0x00 SYN URGP=0 UID=65534 GID=65534 \n";
    let Some(zt) = Zt::new("audit-fifo") else {
        return;
    };
    let fifo = zt.dir.join("kern.log");
    mkfifo(&fifo);
    let path = fifo.clone();
    let writer = std::thread::spawn(move || {
        let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        let chunk: Vec<u8> = NOISE
            .iter()
            .copied()
            .cycle()
            .take(NOISE.len() * 10_000)
            .collect();
        let mut written = 0;
        while written < TOTAL {
            f.write_all(&chunk).unwrap();
            written += chunk.len();
        }
        // A line far longer than any kernel log line, then three refusals.
        f.write_all(&vec![b'x'; 3 << 20]).unwrap();
        f.write_all(b"\n").unwrap();
        for _ in 0..3 {
            f.write_all(BLOCKED).unwrap();
        }
        written
    });
    let run = measured(&zt, &["--json", "audit", "--file", &s(&fifo)]);
    release(&fifo);
    let written = writer.join().unwrap();
    assert!(written >= TOTAL);
    assert_eq!(run.code, Some(0), "{run:?}");
    let doc: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(doc["summary"]["records"], 3, "{doc}");
    assert!(run.max_rss_kib < 64 * 1024, "{run:?}");
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A policy file, root's and readable by root only, in a directory of its own with `mode`.
fn policy_in_dir(zt: &Zt, dir: &str, mode: u32) -> (PathBuf, PathBuf) {
    let dir = zt.dir.join(dir);
    std::fs::create_dir(&dir).unwrap();
    chmod(&dir, mode);
    let path = dir.join("policy.yaml");
    std::fs::write(&path, ALLOW_4001).unwrap();
    chmod(&path, 0o600);
    (dir, path)
}

#[test]
fn a_policy_in_a_directory_anyone_can_write_is_refused_for_apply_and_persist() {
    let Some(zt) = Zt::new("open-dir") else {
        return;
    };
    let (dir, path) = policy_in_dir(&zt, "open", 0o777);
    let root = zt.dir.join("root");
    for args in [
        vec!["apply", "-c", &s(&path)],
        vec!["persist", "-c", &s(&path), "--root", &s(&root)],
    ] {
        let out = zt.run(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "zt {args:?}: {stderr}");
        assert!(
            stderr.contains(&format!("directory {} ", dir.display()))
                && stderr.contains("writable by every user")
                && stderr.contains("sticky"),
            "zt {args:?}: {stderr}"
        );
    }
    assert!(!zt.table_exists(), "nothing was applied");
    assert!(!root.exists(), "nothing was persisted");

    let out = zt.run(&["check", "-c", &s(&path)]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("zt: warning:") && stderr.contains(&dir.display().to_string()),
        "{stderr}"
    );

    // The same directory with the sticky bit, as /tmp has: nobody can rename over root's file.
    let (_, path) = policy_in_dir(&zt, "sticky", 0o1777);
    let out = zt.run(&["apply", "-c", &s(&path)]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("warning"), "{stderr}");
    assert!(zt.table_exists());
}

#[test]
fn a_policy_owned_by_another_user_is_applied_only_with_trust_owner() {
    let Some(zt) = Zt::new("other-owner") else {
        return;
    };
    let path = zt.file("nobody.yaml", ALLOW_4001);
    std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
    let root = zt.dir.join("root");
    let (file, under) = (s(&path), s(&root));
    let (apply, persist) = (
        vec!["apply", "-c", &file],
        vec!["persist", "-c", &file, "--root", &under],
    );
    for args in [&apply, &persist] {
        let out = zt.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "zt {args:?}: {stderr}");
        assert!(
            stderr.contains(&s(&path))
                && stderr.contains("uid 65534")
                && stderr.contains("--trust-owner"),
            "zt {args:?}: {stderr}"
        );
    }
    assert!(!zt.table_exists(), "nothing was applied");

    let out = zt.run(&["check", "-c", &s(&path)]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("zt: warning:") && stderr.contains("uid 65534"),
        "{stderr}"
    );

    for args in [apply, persist] {
        let mut args = args.clone();
        args.push("--trust-owner");
        let out = zt.run(&args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "zt {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(zt.table_exists());
    assert!(root.exists());

    let help = zt.expect(0, &["apply", "--help"]);
    assert!(help.contains("--trust-owner"), "{help}");
    let help = zt.expect(0, &["persist", "--help"]);
    assert!(help.contains("--trust-owner"), "{help}");
}
