//! The state directory with the nft backend in a fresh namespace: one another user controls
//! is refused and its links are not followed; a read-only one still serves `status`, `verify`,
//! `plan` and `flush`; a record that cannot be read is named; `flush` sets a corrupt intent
//! aside so the next apply works.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ALLOW_4001, ALLOW_4002, Zt};
use std::fs;
use std::os::unix::fs::{PermissionsExt, chown, lchown, symlink};
use std::process::Output;

/// The uid and gid of `nobody` on Debian.
const NOBODY: u32 = 65534;

/// `nft -s list table inet zt`, or "" when there is none.
fn listing(zt: &Zt) -> String {
    let out = zt.netns.run("nft", &["-s", "list", "table", "inet", "zt"]);
    if out.status.success() {
        String::from_utf8_lossy(&out.stdout).into_owned()
    } else {
        String::new()
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_state_directory_another_user_owns_is_refused_and_its_links_are_not_followed() {
    let Some(zt) = Zt::new("state-owner") else {
        return;
    };
    let a = zt.policy("a.yaml", ALLOW_4001);
    let b = zt.policy("b.yaml", ALLOW_4002);
    zt.expect(0, &["apply", "-c", &a]);
    let before = listing(&zt);
    let lock_victim = zt.file("victim", "precious\n");
    let trail_victim = zt.file("victim2", "precious\n");
    chown(&zt.state, Some(NOBODY), Some(NOBODY)).unwrap();
    for (name, target) in [("lock", &lock_victim), ("audit.log", &trail_victim)] {
        let link = zt.state.join(name);
        fs::remove_file(&link).unwrap();
        symlink(target, &link).unwrap();
        lchown(&link, Some(NOBODY), Some(NOBODY)).unwrap();
    }
    for args in [
        vec!["apply", "-c", &b],
        vec!["rollback"],
        vec!["status"],
        vec!["flush"],
    ] {
        let out = zt.run(&args);
        let said = stderr(&out);
        assert_eq!(out.status.code(), Some(3), "zt {args:?}: {said}");
        assert!(
            said.contains(&zt.state.display().to_string()) && said.contains("owned by uid 65534"),
            "zt {args:?}: {said}"
        );
    }
    assert_eq!(fs::read_to_string(&lock_victim).unwrap(), "precious\n");
    assert_eq!(fs::read_to_string(&trail_victim).unwrap(), "precious\n");
    assert_eq!(listing(&zt), before, "the kernel still holds policy a");
}

#[test]
fn a_rollback_point_planted_in_a_group_writable_state_directory_is_refused() {
    let Some(zt) = Zt::new("state-group") else {
        return;
    };
    let a = zt.policy("a.yaml", ALLOW_4001);
    zt.expect(0, &["apply", "-c", &a]);
    let dir = zt.state.join("nft");
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o770)).unwrap();
    chown(&dir, None, Some(NOBODY)).unwrap();
    let planted = dir.join("rollback.json");
    fs::write(
        &planted,
        r#"{"snapshot": {"backend": "nft", "content": null}, "previous": null}"#,
    )
    .unwrap();
    chown(&planted, Some(NOBODY), Some(NOBODY)).unwrap();
    let out = zt.run(&["rollback"]);
    let said = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{said}");
    assert!(
        said.contains(&dir.display().to_string()) && said.contains("writable by its group"),
        "{said}"
    );
    assert!(zt.table_exists(), "the firewall is still in place");
}

/// Run `script` in a private mount namespace where the state directory is read-only; each
/// `zt …` in it is this test's binary with its state directory.
fn read_only(zt: &Zt, script: &str) -> Output {
    let state = zt.state.display().to_string();
    let bin = format!("{} --state-dir {state}", env!("CARGO_BIN_EXE_zt"));
    let script = format!(
        "set -e\nmount --bind {state} {state}\nmount -o remount,bind,ro {state}\nset +e\n{}",
        script.replace("zt ", &format!("{bin} "))
    );
    // The namespace is the test's: the shell runs on this thread, in its network namespace.
    let out = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .current_dir(&zt.dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    out
}

#[test]
fn a_read_only_state_directory_serves_status_verify_plan_and_flush() {
    let Some(zt) = Zt::new("state-read-only") else {
        return;
    };
    let a = zt.policy("a.yaml", ALLOW_4001);
    zt.expect(0, &["apply", "-c", &a]);
    let trail = zt.trail().len();
    read_only(
        &zt,
        &format!(
            "zt status >status.out 2>&1; echo $? >status.code\n\
             zt verify -c {a} >verify.out 2>&1; echo $? >verify.code\n\
             zt plan -c {a} >plan.out 2>&1; echo $? >plan.code\n"
        ),
    );
    let read = |name: &str| fs::read_to_string(zt.dir.join(name)).unwrap();
    for command in ["status", "verify", "plan"] {
        assert_eq!(
            read(&format!("{command}.code")).trim(),
            "0",
            "zt {command}: {}",
            read(&format!("{command}.out"))
        );
    }
    assert!(
        read("status.out").contains("no drift"),
        "{}",
        read("status.out")
    );

    // A state directory zt never took the lock in: the lock cannot be created either.
    fs::remove_file(zt.state.join("lock")).unwrap();
    read_only(
        &zt,
        "zt status >status.out 2>&1; echo $? >status.code\n\
         zt --json flush >flush.out 2>flush.err; echo $? >flush.code\n",
    );
    assert_eq!(read("status.code").trim(), "0", "{}", read("status.out"));
    assert_eq!(read("flush.code").trim(), "0", "{}", read("flush.err"));
    assert!(!zt.table_exists(), "flush removed zt's table");
    let doc: serde_json::Value = serde_json::from_str(read("flush.out").trim()).unwrap();
    let warnings = doc["warnings"].to_string();
    assert!(
        warnings.contains("could not be recorded") && warnings.contains("Read-only file system"),
        "{doc}"
    );
    assert_eq!(zt.trail().len(), trail, "nothing could be written");

    // The same flush, as text: the warning goes to standard error.
    zt.expect(0, &["apply", "-c", &a]);
    read_only(
        &zt,
        "zt flush >flush.out 2>flush.err; echo $? >flush.code\n",
    );
    assert_eq!(read("flush.code").trim(), "0", "{}", read("flush.err"));
    assert!(
        read("flush.err").contains("zt: warning: the flush could not be recorded"),
        "{}",
        read("flush.err")
    );
    assert!(!zt.table_exists());
}

#[test]
fn an_intent_whose_snapshot_the_backend_cannot_read_is_named() {
    let Some(zt) = Zt::new("state-intent-snapshot") else {
        return;
    };
    let a = zt.policy("a.yaml", ALLOW_4001);
    let b = zt.policy("b.yaml", ALLOW_4002);
    zt.expect(0, &["apply", "-c", &a]);
    let path = zt.state.join("nft/intent.json");
    let intent = serde_json::json!({
        "record": {
            "config": b,
            "sha256": "00".repeat(32),
            "applied_at": "2026-01-01T00:00:00Z",
            "source": ALLOW_4002,
        },
        "point": {"snapshot": {"backend": "nft", "content": "{}"}, "previous": null},
    });
    fs::write(&path, intent.to_string()).unwrap();
    let out = zt.run(&["apply", "-c", &b]);
    let said = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{said}");
    assert!(
        said.contains(&path.display().to_string()) && said.contains("missing field"),
        "{said}"
    );
}

#[test]
fn flush_sets_a_corrupt_intent_aside_and_the_next_apply_works() {
    let Some(zt) = Zt::new("state-intent-corrupt") else {
        return;
    };
    let a = zt.policy("a.yaml", ALLOW_4001);
    let b = zt.policy("b.yaml", ALLOW_4002);
    zt.expect(0, &["apply", "-c", &a]);
    let dir = zt.state.join("nft");
    fs::write(dir.join("intent.json"), "{ torn").unwrap();
    let out = zt.run(&["apply", "-c", &b]);
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("intent.json"), "{}", stderr(&out));

    let (code, doc) = zt.json(&["flush"]);
    assert_eq!(code, 0, "{doc}");
    let aside = doc["set_aside"].as_str().unwrap_or_default().to_owned();
    assert!(
        aside.starts_with(&dir.join("intent.json.corrupt-").display().to_string()),
        "{doc}"
    );
    assert_eq!(fs::read_to_string(&aside).unwrap(), "{ torn");
    assert!(!dir.join("intent.json").exists());

    zt.expect(0, &["apply", "-c", &a]);
    fs::write(dir.join("intent.json"), "{ torn").unwrap();
    let out = zt.run(&["flush"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("intent.json.corrupt-"),
        "the text output says so too: {}",
        stderr(&out)
    );
    zt.expect(0, &["apply", "-c", &b]);
    assert_eq!(zt.applied_config().as_deref(), Some(b.as_str()));
}
