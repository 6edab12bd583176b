//! A backend for the engine's tests: mockall's `MockBackend` over a "kernel" kept in a file,
//! so it survives the death of a process exactly as the real kernel does. The kernel holds
//! the names of the ruleset entries installed, one per line; a missing file is a kernel where
//! zt owns nothing.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use zt_core::{
    AuditSource, Capabilities, Diff, Drift, MockBackend, Persistence, Plan, Policy, RuleBuilder,
    Ruleset, Snapshot, StaticResolver, Status, compare,
};
use zt_engine::{Engine, PolicyFile};

/// The backend's name.
pub const NAME: &str = "mock";

/// What the kernel file holds, `None` when zt owns nothing.
pub fn kernel(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// The kernel text `ruleset` installs.
pub fn text(ruleset: &Ruleset) -> String {
    ruleset
        .entries()
        .iter()
        .map(|e| format!("{}\n", e.name()))
        .collect()
}

fn units(text: Option<&str>) -> Vec<(String, String)> {
    text.unwrap_or_default()
        .lines()
        .map(|l| (l.to_owned(), l.to_owned()))
        .collect()
}

fn snapshot_of(path: &Path) -> Snapshot {
    Snapshot {
        backend: NAME.into(),
        content: kernel(path),
    }
}

/// Expectations for the calls that only read the kernel file, any number of times.
pub fn reading(mock: &mut MockBackend, path: &Path) {
    mock.expect_name().return_const(NAME);
    mock.expect_capabilities().returning(Capabilities::all);
    let p = path.to_path_buf();
    mock.expect_plan().returning(move |rs| {
        let now = kernel(&p);
        let changes = compare(&units(now.as_deref()), &units(Some(&text(rs))));
        Ok(Plan::new(NAME, rs.clone(), Diff { changes }))
    });
    let p = path.to_path_buf();
    mock.expect_snapshot()
        .returning(move || Ok(snapshot_of(&p)));
    let p = path.to_path_buf();
    mock.expect_snapshot_before()
        .returning(move |_| Ok(snapshot_of(&p)));
    let p = path.to_path_buf();
    let p2 = path.to_path_buf();
    mock.expect_verify_applied().returning(move |plan| {
        let now = kernel(&p2);
        Ok(Drift::from_changes(compare(
            &units(now.as_deref()),
            &units(Some(&text(&plan.ruleset))),
        )))
    });
    mock.expect_verify().returning(move |rs| {
        let now = kernel(&p);
        Ok(Drift::from_changes(compare(
            &units(now.as_deref()),
            &units(Some(&text(rs))),
        )))
    });
    mock.expect_status().returning(|| Ok(Status::default()));
    mock.expect_persistence()
        .returning(|_, _| Ok(Persistence::default()));
    mock.expect_audit().returning(|| Ok(AuditSource::KernelLog));
}

/// Expectations for the calls that write the kernel file, as a working backend does them.
pub fn writing(mock: &mut MockBackend, path: &Path) {
    let p = path.to_path_buf();
    mock.expect_apply().returning(move |plan| {
        let before = snapshot_of(&p);
        if !plan.is_empty() {
            // Not one transaction (like iptables' two restores): a death here leaves a mix.
            let mut half = before.content.clone().unwrap_or_default();
            half.push_str("half-written\n");
            std::fs::write(&p, half).unwrap();
            zt_core::fault::kill_at("mock-half-written");
            std::fs::write(&p, text(&plan.ruleset)).unwrap();
        }
        Ok(before)
    });
    let p = path.to_path_buf();
    mock.expect_rollback().returning(move |s| {
        restore(&p, s);
        Ok(())
    });
    let p = path.to_path_buf();
    mock.expect_flush().returning(move || {
        let _ = std::fs::remove_file(&p);
        Ok(())
    });
}

/// Make the kernel file hold what `snapshot` recorded.
pub fn restore(path: &Path, snapshot: &Snapshot) {
    match &snapshot.content {
        Some(text) => std::fs::write(path, text).unwrap(),
        None => {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A working backend over the kernel file `path`.
pub fn backend(path: &Path) -> Box<MockBackend> {
    let mut mock = MockBackend::new();
    reading(&mut mock, path);
    writing(&mut mock, path);
    Box::new(mock)
}

/// A test's directory: the state directory and the kernel file, removed on drop.
pub struct Host {
    pub dir: PathBuf,
}

impl Host {
    pub fn new(name: &str) -> Host {
        let dir = std::env::temp_dir().join(format!("zt-engine-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Host { dir }
    }

    pub fn state(&self) -> PathBuf {
        self.dir.join("state")
    }

    pub fn kernel(&self) -> PathBuf {
        self.dir.join("kernel")
    }

    /// An engine over a working backend.
    pub fn engine(&self) -> Engine {
        Engine::open(self.state(), backend(&self.kernel()))
            .unwrap()
            .with_resolver(Box::new(StaticResolver::new()))
    }

    /// A state file of the backend, parsed, if present.
    pub fn record(&self, name: &str) -> Option<serde_json::Value> {
        let text = std::fs::read_to_string(self.state().join(NAME).join(name)).ok()?;
        Some(serde_json::from_str(&text).unwrap())
    }

    /// The `sha256` of the last applied policy, if any.
    pub fn applied(&self) -> Option<String> {
        self.record("applied.json")
            .map(|a| a["sha256"].as_str().unwrap().to_owned())
    }

    /// The audit trail, parsed.
    pub fn trail(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.state().join("audit.log"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A policy with one egress rule named `name`.
pub fn policy(name: &str) -> PolicyFile {
    let policy = Policy::builder()
        .rule(RuleBuilder::egress(name).uid(1000).port(80).allow())
        .build(&StaticResolver::new())
        .unwrap()
        .policy;
    PolicyFile::from_policy(&format!("/etc/zt/{name}.yaml"), &policy).unwrap()
}
