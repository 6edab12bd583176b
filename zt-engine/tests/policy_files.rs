//! Reading a policy file an operator names, whatever the path leads to: a device that never
//! ends, a FIFO fed without end or with no writer at all (section 2 of issue 18), and a file
//! someone other than root may replace or rewrite (section 4).
//!
//! Every read is run on a thread with a deadline, so a read that hangs or reads without end
//! fails the test instead of stalling the suite.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::ffi::CString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use zt_core::{Code, StaticResolver};
use zt_engine::{EngineError, ErrorClass, PolicyFile, Trust};

const POLICY: &str = "version: \"1.0\"\nrules:\n  - name: r\n    from: {uid: 1}\n    to: {port: 7001}\n    action: allow\n";

/// 16 MiB: zt-core's limit on a policy's size.
const LIMIT: usize = zt_core::yaml::MAX_INPUT_BYTES;

/// A fresh directory for one test, removed afterwards. It lies in the system's temporary
/// directory (sticky, as `/tmp` is) and is created by this process: trusted.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let path = std::env::temp_dir().join(format!("zt-engine-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        Dir(path)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// A subdirectory with `mode` (set after creation: the umask does not apply).
    fn subdir(&self, name: &str, mode: u32) -> PathBuf {
        let path = self.join(name);
        std::fs::create_dir(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `f` run on its own thread: its result, or `None` when it did not return within `limit`
/// (the thread is left behind, blocked or reading, until the test process exits).
fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit).ok()
}

fn mkfifo(path: &Path) {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

fn is_root() -> bool {
    // SAFETY: geteuid(2) cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI requires root (euid 0) to give files to another user"
        );
        let _ = writeln!(std::io::stderr(), "skipping: this test needs root");
    }
    root
}

fn read(path: &Path) -> Result<PolicyFile, EngineError> {
    PolicyFile::read(path, &StaticResolver::new())
}

fn read_for_change(path: &Path) -> Result<PolicyFile, EngineError> {
    PolicyFile::read_for_change(path, &StaticResolver::new())
}

/// Both kinds of read of `path`, each on a thread given `limit`: the errors, in order.
fn both_fail_within(path: &Path, limit: Duration) -> [EngineError; 2] {
    let mut errors = Vec::new();
    for change in [false, true] {
        let p = path.to_path_buf();
        let started = Instant::now();
        let result = within(limit, move || {
            if change {
                read_for_change(&p)
            } else {
                read(&p)
            }
        })
        .unwrap_or_else(|| {
            panic!(
                "reading {} (for a change: {change}) did not return within {limit:?}",
                path.display()
            )
        });
        assert!(started.elapsed() < limit);
        errors.push(result.expect_err("not a policy"));
    }
    errors.try_into().unwrap()
}

#[test]
fn a_character_device_is_refused_at_once_without_being_read() {
    for error in both_fail_within(Path::new("/dev/zero"), Duration::from_secs(1)) {
        assert_eq!(error.class(), ErrorClass::Refused, "{error}");
        let text = error.to_string();
        assert!(
            text.contains("/dev/zero") && text.contains("character device"),
            "{text}"
        );
    }
}

#[test]
fn a_directory_is_refused_naming_what_it_is() {
    let dir = Dir::new("a-directory");
    for error in both_fail_within(&dir.0, Duration::from_secs(1)) {
        assert_eq!(error.class(), ErrorClass::Refused, "{error}");
        assert!(error.to_string().contains("is a directory"), "{error}");
    }
}

#[test]
fn a_fifo_with_no_writer_is_refused_at_once() {
    let dir = Dir::new("fifo-no-writer");
    let fifo = dir.join("policy.yaml");
    mkfifo(&fifo);
    for error in both_fail_within(&fifo, Duration::from_secs(1)) {
        assert_eq!(error.class(), ErrorClass::Refused, "{error}");
        assert!(error.to_string().contains("no writer"), "{error}");
    }
}

/// A FIFO fed 200 MB: the read stops one byte past the limit and reports `too-large`; the
/// writer finds the FIFO closed (EPIPE) long before it wrote everything.
#[test]
fn a_fifo_is_read_only_up_to_the_limit() {
    const TOTAL: usize = 200 * 1000 * 1000;
    let dir = Dir::new("fifo-200mb");
    let fifo = dir.join("policy.yaml");
    mkfifo(&fifo);
    for change in [false, true] {
        let w = fifo.clone();
        let writer = std::thread::spawn(move || {
            let mut f = std::fs::OpenOptions::new().write(true).open(&w).unwrap();
            let chunk = vec![b'#'; 1 << 20];
            let mut written = 0;
            while written < TOTAL {
                match f.write(&chunk[..chunk.len().min(TOTAL - written)]) {
                    Ok(n) => written += n,
                    Err(e) => return (written, Some(e.kind())),
                }
            }
            (written, None)
        });
        let p = fifo.clone();
        let result = within(Duration::from_secs(60), move || {
            if change {
                read_for_change(&p)
            } else {
                read(&p)
            }
        })
        .expect("the read ends");
        let error = result.expect_err("too large");
        let codes: Vec<Code> = error
            .diagnostics()
            .map(|d| d.errors().map(|e| e.code).collect())
            .unwrap_or_default();
        assert_eq!(codes, [Code::TooLarge], "{error}");
        assert!(
            error.to_string().contains("more than 16777216 bytes"),
            "{error}"
        );
        let (written, failed) = writer.join().unwrap();
        assert_eq!(
            failed,
            Some(std::io::ErrorKind::BrokenPipe),
            "the writer wrote {written} bytes, all of them"
        );
        // What was read, what the pipe buffers, and the chunk the writer was in.
        assert!(
            written <= LIMIT + 1 + 2 * (1 << 20),
            "{written} bytes written"
        );
    }
}

/// A FIFO holding a policy is read as a file is: `zt check -c <(generate)` keeps working.
#[test]
fn a_fifo_with_a_writer_is_read_in_full() {
    let dir = Dir::new("fifo-policy");
    let fifo = dir.join("policy.yaml");
    mkfifo(&fifo);
    let w = fifo.clone();
    let writer = std::thread::spawn(move || {
        let mut f = std::fs::OpenOptions::new().write(true).open(&w).unwrap();
        // A slow writer: the reader waits for it, as for any pipe.
        std::thread::sleep(Duration::from_millis(200));
        f.write_all(POLICY.as_bytes()).unwrap();
    });
    // Let the writer reach its open first, so there is one when the reader opens.
    std::thread::sleep(Duration::from_millis(100));
    let p = fifo.clone();
    let file = within(Duration::from_secs(10), move || read(&p))
        .expect("the read ends")
        .unwrap();
    writer.join().unwrap();
    assert_eq!(file.source, POLICY);
    assert_eq!(file.policy.rules().len(), 1);
}

#[test]
fn a_policy_in_a_directory_anyone_can_write_is_refused_for_a_change() {
    let dir = Dir::new("open-dir");
    let open = dir.subdir("open", 0o777);
    let path = open.join("policy.yaml");
    std::fs::write(&path, POLICY).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();

    let error = read_for_change(&path).expect_err("refused");
    assert_eq!(error.class(), ErrorClass::Refused);
    let text = error.to_string();
    assert!(
        text.contains(&format!("directory {} ", open.display()))
            && text.contains("writable by every user")
            && text.contains("sticky"),
        "{text}"
    );
    // Reading it to check it only notes the problem.
    let file = read(&path).unwrap();
    let note = file.permissions.expect("a warning");
    assert!(note.contains(&open.display().to_string()), "{note}");

    // Through a symlink in a safe directory: the real file's directory is the one judged.
    let link = dir.join("link.yaml");
    std::os::unix::fs::symlink(&path, &link).unwrap();
    let text = read_for_change(&link).expect_err("refused").to_string();
    assert!(
        text.contains(&format!("directory {} ", open.display())),
        "{text}"
    );
}

#[test]
fn a_policy_in_a_sticky_directory_anyone_can_write_is_accepted() {
    let dir = Dir::new("sticky-dir");
    let sticky = dir.subdir("sticky", 0o1777);
    let path = sticky.join("policy.yaml");
    std::fs::write(&path, POLICY).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let file = read_for_change(&path).unwrap();
    assert_eq!(file.permissions, None);
}

#[test]
fn a_file_owned_by_another_user_is_refused_for_a_change_unless_its_owner_is_trusted() {
    if !is_root() {
        return;
    }
    let dir = Dir::new("other-owner");
    let path = dir.join("policy.yaml");
    std::fs::write(&path, POLICY).unwrap();
    std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();

    let error = read_for_change(&path).expect_err("refused");
    assert_eq!(error.class(), ErrorClass::Refused);
    let text = error.to_string();
    assert!(
        text.contains(&path.display().to_string()) && text.contains("uid 65534"),
        "{text}"
    );
    // Checking it only warns.
    let note = read(&path).unwrap().permissions.expect("a warning");
    assert!(note.contains("uid 65534"), "{note}");
    // Trusted explicitly, it is accepted.
    let file =
        PolicyFile::read_for_change_trusting(&path, &StaticResolver::new(), Trust::FileOwner)
            .unwrap();
    assert_eq!(file.source, POLICY);

    // A directory on the path that belongs to the same user is trusted along with the file;
    // one that belongs to a third user is not.
    let theirs = dir.subdir("theirs", 0o755);
    let inner = theirs.join("policy.yaml");
    std::fs::write(&inner, POLICY).unwrap();
    std::os::unix::fs::chown(&inner, Some(65534), Some(65534)).unwrap();
    std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
    let text = read_for_change(&inner).expect_err("refused").to_string();
    assert!(
        text.contains(&format!("directory {} ", theirs.display())),
        "{text}"
    );
    PolicyFile::read_for_change_trusting(&inner, &StaticResolver::new(), Trust::FileOwner).unwrap();
    std::os::unix::fs::chown(&theirs, Some(65533), Some(65533)).unwrap();
    let text =
        PolicyFile::read_for_change_trusting(&inner, &StaticResolver::new(), Trust::FileOwner)
            .expect_err("a third user's directory")
            .to_string();
    assert!(text.contains("uid 65533"), "{text}");
}

/// A symlink in a sticky directory anyone may write (`/tmp`) can be replaced by its owner: one
/// that belongs to another user is refused, even though it points at a safe file.
#[test]
fn a_symlink_another_user_may_replace_is_refused_for_a_change() {
    if !is_root() {
        return;
    }
    let dir = Dir::new("their-link");
    let path = dir.join("policy.yaml");
    std::fs::write(&path, POLICY).unwrap();
    let sticky = dir.subdir("sticky", 0o1777);
    let link = sticky.join("link.yaml");
    std::os::unix::fs::symlink(&path, &link).unwrap();
    read_for_change(&link).unwrap();
    std::os::unix::fs::lchown(&link, Some(65534), Some(65534)).unwrap();
    let text = read_for_change(&link).expect_err("refused").to_string();
    assert!(
        text.contains(&format!("symbolic link {} ", link.display())) && text.contains("uid 65534"),
        "{text}"
    );
}
