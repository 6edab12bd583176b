//! Driving the built `zt` binary from a test thread inside its own network namespace.
//!
//! Commands are spawned from the test's thread, so they run in the namespace `Netns::new`
//! created; each test gets its own state directory.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use zt_testkit::{Identity, Netns, Outcome, Prerequisite, Proto, TestCgroup, connect_as, require};

/// A test's namespace and state directory.
pub struct Zt {
    pub netns: Netns,
    pub state: PathBuf,
    pub dir: PathBuf,
}

impl Zt {
    /// A fresh namespace and state directory, or None when prerequisites are missing (a
    /// failure under CI=true).
    pub fn new(name: &str) -> Option<Zt> {
        if !require(&[Prerequisite::Root, Prerequisite::Binary("nft")]) {
            return None;
        }
        let netns = Netns::new();
        let dir = std::env::temp_dir().join(format!("zt-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Some(Zt {
            netns,
            state: dir.join("state"),
            dir,
        })
    }

    /// A `zt` command with this test's state directory.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_zt"));
        c.arg("--state-dir").arg(&self.state).args(args);
        c.env_remove("ZT_BACKEND").env_remove("ZT_STATE_DIR");
        c
    }

    /// Run `zt` to completion.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Run `zt --json …` and parse its one JSON document; the exit code beside it.
    pub fn json(&self, args: &[&str]) -> (i32, serde_json::Value) {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.run(&all);
        let text = String::from_utf8_lossy(&out.stdout);
        let doc = serde_json::from_str(text.trim()).unwrap_or_else(|e| {
            panic!(
                "zt {args:?} did not print one JSON document ({e}):\n{text}\nstderr: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.code().unwrap_or(-1), doc)
    }

    /// Run `zt`, panicking unless it exits with `code`; its stdout.
    pub fn expect(&self, code: i32, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "zt {args:?}:\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Start `zt` without waiting.
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Write a file in the test directory; its path.
    pub fn file(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    /// Write a policy; its path as a string.
    pub fn policy(&self, name: &str, yaml: &str) -> String {
        self.file(name, yaml).to_string_lossy().into_owned()
    }

    /// The lines of the audit trail, parsed.
    pub fn trail(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(self.state.join("audit.log")).unwrap_or_default();
        text.lines()
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("audit trail line is not JSON ({e}): {l}"))
            })
            .collect()
    }

    /// `nft list table inet zt` succeeds.
    pub fn table_exists(&self) -> bool {
        self.netns
            .run("nft", &["list", "table", "inet", "zt"])
            .status
            .success()
    }

    /// A state file of the nft backend, parsed, if present.
    pub fn state_file(&self, name: &str) -> Option<serde_json::Value> {
        let text = std::fs::read_to_string(self.state.join("nft").join(name)).ok()?;
        Some(serde_json::from_str(&text).unwrap())
    }

    /// The nft backend's last applied policy file, if any.
    pub fn applied_config(&self) -> Option<String> {
        self.state_file("applied.json")
            .map(|a| a["config"].as_str().unwrap().to_owned())
    }
}

impl Drop for Zt {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// How long a probe connection waits before it counts as dropped.
pub const TIMEOUT: Duration = Duration::from_millis(400);

/// A TCP connection to `addr` from a process running as uid and gid `id`.
pub fn tcp(id: u32, addr: &str) -> Outcome {
    let dst: SocketAddr = addr.parse().unwrap();
    connect_as(Identity::new(id, id), Proto::Tcp, dst, TIMEOUT)
}

/// Poll `condition` every 50 ms until it holds or `limit` passes; whether it held.
pub fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    condition()
}

/// The spec's shape with numeric ids: uid 4001 may reach 127.0.0.1 and ::1 on TCP 7001.
pub const ALLOW_4001: &str = r#"version: "1.0"
rules:
  - name: app-to-cache
    from: { uid: 4001 }
    to: { hosts: [127.0.0.1, "::1"], port: 7001 }
    action: allow
"#;

/// Like [`ALLOW_4001`] but for uid 4002.
pub const ALLOW_4002: &str = r#"version: "1.0"
rules:
  - name: app-to-cache
    from: { uid: 4002 }
    to: { hosts: [127.0.0.1, "::1"], port: 7001 }
    action: allow
"#;

/// Path of a file as a string.
pub fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// The eBPF backend confined to one test: a fresh child cgroup to attach to and a bpffs
/// directory of its own, so the host's processes and pins are never involved. The pin
/// directory is removed when this is dropped.
pub struct EbpfTarget {
    pub cgroup: TestCgroup,
    pub pins: String,
}

impl EbpfTarget {
    pub fn new(name: &str) -> EbpfTarget {
        EbpfTarget {
            cgroup: TestCgroup::new(&format!("zt-cli-{name}")),
            pins: format!("/sys/fs/bpf/zt-cli-{name}-{}", std::process::id()),
        }
    }

    /// The `zt` options that select the eBPF backend with this cgroup and pin directory.
    pub fn options(&self) -> Vec<String> {
        vec![
            "--backend".into(),
            "ebpf".into(),
            "--ebpf-cgroup".into(),
            s(self.cgroup.path()),
            "--ebpf-pin-dir".into(),
            self.pins.clone(),
        ]
    }
}

impl Drop for EbpfTarget {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.pins);
    }
}
