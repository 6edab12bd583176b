//! The state directory is not trusted blindly: a directory or record someone other than root
//! (or the user zt runs as) could have changed is refused before anything is read from it or
//! written to it, and no link planted there is followed. A read-only state directory still
//! lets the commands that only read work, and `flush` too. Records that do not parse, or
//! whose snapshot the backend cannot read, are named in the error; `flush` sets a corrupt
//! intent aside.
//!
//! The trust tests change owners, so they need root (they are skipped otherwise, and fail
//! under `CI=true`); the read-only test needs a private mount namespace (`unshare`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Host, NAME, backend, kernel, policy, reading, restore, text};
use std::fs;
use std::os::unix::fs::{PermissionsExt, chown, lchown, symlink};
use std::path::{Path, PathBuf};
use zt_core::{MockBackend, StaticResolver};
use zt_engine::{ApplyOptions, Engine, EngineError, ErrorClass};

/// The uid and gid of `nobody` on Debian.
const NOBODY: u32 = 65534;

/// Whether this test may change owners; under CI it must.
fn root() -> bool {
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        assert!(
            std::env::var("CI").is_err(),
            "CI runs the state directory trust tests as root"
        );
        eprintln!("skipped: changing owners needs root");
    }
    root
}

/// A file outside the state directory a planted link points at.
fn victim(host: &Host, name: &str) -> PathBuf {
    let path = host.dir.join(name);
    fs::write(&path, "precious\n").unwrap();
    path
}

/// Every command that reads or writes the records, each on a fresh engine; their errors.
fn every_command(host: &Host) -> Vec<(&'static str, Result<(), EngineError>)> {
    vec![
        (
            "apply",
            host.engine()
                .apply(&policy("b"), ApplyOptions::default())
                .map(drop),
        ),
        ("rollback", host.engine().rollback().map(drop)),
        ("confirm", host.engine().confirm().map(drop)),
        ("status", host.engine().status().map(drop)),
        ("flush", host.engine().flush().map(drop)),
    ]
}

/// Each command failed (not refused: it is the host that is wrong, not the request), with an
/// error that names `path` and says `what` is wrong with it.
fn all_refused(results: Vec<(&str, Result<(), EngineError>)>, path: &Path, what: &str) {
    for (command, result) in results {
        let Err(e) = result else {
            panic!("{command} went ahead in an untrusted state directory");
        };
        let text = e.to_string();
        assert_eq!(e.class(), ErrorClass::Failed, "{command}: {text}");
        assert!(
            text.contains(&path.display().to_string()) && text.contains(what),
            "{command}: the error names {} and says '{what}': {text}",
            path.display()
        );
    }
}

#[test]
fn a_state_directory_another_user_owns_is_refused_and_links_planted_in_it_are_not_followed() {
    if !root() {
        return;
    }
    let host = Host::new("trust-owner");
    let a = policy("a");
    host.engine().apply(&a, ApplyOptions::default()).unwrap();
    let state = host.state();
    // Created 0700, the root and the backend's directory alike.
    for dir in [state.clone(), state.join(NAME)] {
        let mode = fs::metadata(&dir).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o700, "{}", dir.display());
    }

    // The directory is given to nobody, who replaces the lock and the trail with links.
    let (lock_victim, trail_victim) = (victim(&host, "victim"), victim(&host, "victim2"));
    chown(&state, Some(NOBODY), Some(NOBODY)).unwrap();
    for (name, target) in [("lock", &lock_victim), ("audit.log", &trail_victim)] {
        let link = state.join(name);
        fs::remove_file(&link).unwrap();
        symlink(target, &link).unwrap();
        lchown(&link, Some(NOBODY), Some(NOBODY)).unwrap();
    }

    all_refused(every_command(&host), &state, "owned by uid 65534");
    assert_eq!(fs::read_to_string(&lock_victim).unwrap(), "precious\n");
    assert_eq!(fs::read_to_string(&trail_victim).unwrap(), "precious\n");
    assert_eq!(kernel(&host.kernel()), Some(text(&a.policy.ruleset())));
}

#[test]
fn a_rollback_point_planted_in_a_group_writable_directory_is_refused() {
    if !root() {
        return;
    }
    let host = Host::new("trust-group");
    let a = policy("a");
    host.engine().apply(&a, ApplyOptions::default()).unwrap();
    let dir = host.state().join(NAME);
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o770)).unwrap();
    chown(&dir, None, Some(NOBODY)).unwrap();
    // A member of the group plants a rollback point whose snapshot is "zt owned nothing":
    // rolling back to it would delete the firewall.
    let planted = dir.join("rollback.json");
    fs::write(
        &planted,
        r#"{"snapshot": {"backend": "mock", "content": null}, "previous": null}"#,
    )
    .unwrap();
    chown(&planted, Some(NOBODY), Some(NOBODY)).unwrap();

    all_refused(every_command(&host), &dir, "writable by its group");
    assert_eq!(
        kernel(&host.kernel()),
        Some(text(&a.policy.ruleset())),
        "the firewall is still in place"
    );
}

#[test]
fn a_record_another_user_owns_or_a_link_in_place_of_a_record_is_refused() {
    if !root() {
        return;
    }
    let host = Host::new("trust-file");
    let a = policy("a");
    host.engine().apply(&a, ApplyOptions::default()).unwrap();
    let record = host.state().join(NAME).join("rollback.json");
    let nothing = r#"{"snapshot": {"backend": "mock", "content": null}, "previous": null}"#;

    // A record nobody owns, in a directory that is root's alone.
    fs::write(&record, nothing).unwrap();
    chown(&record, Some(NOBODY), Some(NOBODY)).unwrap();
    let e = host.engine().rollback().unwrap_err();
    assert_eq!(e.class(), ErrorClass::Failed, "{e}");
    let message = e.to_string();
    assert!(
        message.contains(&record.display().to_string()) && message.contains("owned by uid 65534"),
        "{message}"
    );

    // A link to a record kept elsewhere.
    let elsewhere = victim(&host, "elsewhere.json");
    fs::write(&elsewhere, nothing).unwrap();
    fs::remove_file(&record).unwrap();
    symlink(&elsewhere, &record).unwrap();
    let e = host.engine().rollback().unwrap_err();
    let message = e.to_string();
    assert!(
        message.contains(&record.display().to_string()) && message.contains("symbolic link"),
        "{message}"
    );
    assert_eq!(kernel(&host.kernel()), Some(text(&a.policy.ruleset())));
}

#[test]
fn a_link_planted_at_a_temporary_name_is_not_written_through() {
    let host = Host::new("trust-temporary");
    let dir = host.state().join(NAME);
    fs::create_dir_all(&dir).unwrap();
    fs::set_permissions(host.state(), fs::Permissions::from_mode(0o700)).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
    // The names an apply writes its records under before renaming them into place.
    let pid = std::process::id();
    let mut victims = Vec::new();
    for name in ["intent.json", "rollback.json", "applied.json"] {
        let target = victim(&host, &format!("victim-{name}"));
        symlink(&target, dir.join(format!(".{name}.tmp-{pid}"))).unwrap();
        victims.push(target);
    }
    let a = policy("a");
    host.engine().apply(&a, ApplyOptions::default()).unwrap();
    for target in &victims {
        assert_eq!(
            fs::read_to_string(target).unwrap(),
            "precious\n",
            "{}",
            target.display()
        );
    }
    let applied = dir.join("applied.json");
    assert!(
        !fs::symlink_metadata(&applied).unwrap().is_symlink(),
        "applied.json is a file of its own"
    );
    assert_eq!(host.applied(), Some(a.sha256.clone()));
}

/// An intent whose record is policy `b`, valid JSON, with `content` as its snapshot.
fn intent_with_snapshot(host: &Host, content: &str) -> PathBuf {
    let b = policy("b").record();
    let intent = serde_json::json!({
        "record": b,
        "point": {"snapshot": {"backend": NAME, "content": content}, "previous": null},
    });
    let path = host.state().join(NAME).join("intent.json");
    fs::write(&path, intent.to_string()).unwrap();
    path
}

/// A backend whose rollback reads its snapshot as the nft backend does: anything but a
/// kernel text it took itself is unreadable.
fn strict_backend(kernel_file: &Path) -> Box<MockBackend> {
    let mut mock = MockBackend::new();
    reading(&mut mock, kernel_file);
    let p = kernel_file.to_path_buf();
    mock.expect_rollback().returning(move |s| {
        if s.content.as_deref() == Some("broken") {
            return Err(zt_core::Error::Backend {
                backend: NAME,
                message: "the snapshot is unreadable: missing field `name`".into(),
                source: None,
            });
        }
        restore(&p, s);
        Ok(())
    });
    let p = kernel_file.to_path_buf();
    mock.expect_apply().returning(move |plan| {
        std::fs::write(&p, text(&plan.ruleset)).unwrap();
        Ok(zt_core::Snapshot {
            backend: NAME.into(),
            content: None,
        })
    });
    let p = kernel_file.to_path_buf();
    mock.expect_flush().returning(move || {
        let _ = std::fs::remove_file(&p);
        Ok(())
    });
    Box::new(mock)
}

#[test]
fn an_intent_whose_snapshot_cannot_be_read_is_named_in_the_error() {
    let host = Host::new("intent-snapshot");
    host.engine()
        .apply(&policy("a"), ApplyOptions::default())
        .unwrap();
    let path = intent_with_snapshot(&host, "broken");
    let e = Engine::open(host.state(), strict_backend(&host.kernel()))
        .unwrap()
        .with_resolver(Box::new(StaticResolver::new()))
        .apply(&policy("c"), ApplyOptions::default())
        .unwrap_err();
    let message = e.to_string();
    assert!(
        message.contains(&path.display().to_string()) && message.contains("missing field"),
        "{message}"
    );
}

#[test]
fn flush_sets_a_corrupt_intent_aside_and_the_next_apply_works() {
    let host = Host::new("intent-corrupt");
    let (a, b) = (policy("a"), policy("b"));
    host.engine().apply(&a, ApplyOptions::default()).unwrap();
    let dir = host.state().join(NAME);
    fs::write(dir.join("intent.json"), "{ torn").unwrap();
    let e = host
        .engine()
        .apply(&b, ApplyOptions::default())
        .unwrap_err();
    assert!(e.to_string().contains("intent.json"), "{e}");

    let flushed = host.engine().flush().unwrap();
    assert_eq!(kernel(&host.kernel()), None);
    assert!(!dir.join("intent.json").exists());
    let aside: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("intent.json.corrupt-")
        })
        .collect();
    assert_eq!(
        aside.len(),
        1,
        "the corrupt intent is kept aside: {aside:?}"
    );
    assert_eq!(fs::read_to_string(&aside[0]).unwrap(), "{ torn");
    let said = format!("{flushed:?}");
    assert!(
        said.contains(&aside[0].display().to_string()),
        "the flush says where: {said}"
    );

    host.engine().apply(&b, ApplyOptions::default()).unwrap();
    assert_eq!(kernel(&host.kernel()), Some(text(&b.policy.ruleset())));
}

/// Where the read-only child finds its host.
const READ_ONLY_DIR: &str = "ZT_ENGINE_READ_ONLY_DIR";

/// The child's part of the read-only test, in a mount namespace where the state directory is
/// read-only: status, plan and verify work, and flush empties the kernel and says it could
/// not record that. Does nothing unless the parent started it.
#[test]
fn the_child_reads_a_read_only_state_directory() {
    let Some(dir) = std::env::var_os(READ_ONLY_DIR) else {
        return;
    };
    let host = Host {
        dir: PathBuf::from(dir),
    };
    let a = policy("a");
    let report = host.engine().status().unwrap();
    assert_eq!(report.applied.unwrap().sha256, a.sha256);
    assert!(host.engine().plan(&a).unwrap().is_empty());
    assert!(host.engine().verify(&a).unwrap().is_empty());
    let flushed = host.engine().flush().unwrap();
    assert_eq!(kernel(&host.kernel()), None, "the kernel is flushed");
    let said = format!("{flushed:?}");
    assert!(said.contains("Read-only file system"), "{said}");
    std::mem::forget(host);
}

#[test]
fn status_plan_verify_and_flush_work_on_a_read_only_state_directory() {
    if !root() {
        return;
    }
    for lock in [true, false] {
        let host = Host::new(&format!("read-only-{lock}"));
        let a = policy("a");
        Engine::open(host.state(), backend(&host.kernel()))
            .unwrap()
            .with_resolver(Box::new(StaticResolver::new()))
            .apply(&a, ApplyOptions::default())
            .unwrap();
        if !lock {
            // A state directory zt never locked: the lock cannot be created either.
            fs::remove_file(host.state().join("lock")).unwrap();
        }
        let state = host.state();
        let script = format!(
            "set -e; mount --bind {s} {s}; mount -o remount,bind,ro {s}; exec \"$0\" \
             --exact the_child_reads_a_read_only_state_directory --nocapture --test-threads=1",
            s = state.display()
        );
        let out = std::process::Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", &script])
            .arg(std::env::current_exe().unwrap())
            .env(READ_ONLY_DIR, &host.dir)
            .output()
            .unwrap();
        let said = format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && said.contains("1 passed"),
            "with the lock file {}: {said}",
            if lock { "present" } else { "absent" }
        );
        assert_eq!(kernel(&host.kernel()), None);
        assert_eq!(
            host.applied(),
            Some(a.sha256.clone()),
            "nothing could be recorded"
        );
    }
}

#[test]
fn a_link_in_place_of_the_backends_directory_is_refused() {
    let host = Host::new("trust-subdir-link");
    let elsewhere = host.dir.join("elsewhere");
    fs::create_dir_all(&elsewhere).unwrap();
    fs::create_dir_all(host.state()).unwrap();
    fs::set_permissions(host.state(), fs::Permissions::from_mode(0o700)).unwrap();
    symlink(&elsewhere, host.state().join(NAME)).unwrap();
    let e = host
        .engine()
        .apply(&policy("a"), ApplyOptions::default())
        .unwrap_err();
    let message = e.to_string();
    assert!(
        message.contains(&host.state().join(NAME).display().to_string())
            && message.contains("a symbolic link"),
        "{message}"
    );
    assert_eq!(kernel(&host.kernel()), None);
    assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0);
}
