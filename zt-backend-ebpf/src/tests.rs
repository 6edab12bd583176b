//! The backend's logic over an in-memory kernel: plan, apply, verify, rollback, status, flush.

use super::*;
use std::cell::RefCell;
use std::rc::Rc;
use zt_core::{Backend, DriftKind, Policy, PolicyBuilder, RuleBuilder, Snapshot, StaticResolver};

/// What the in-memory kernel holds, shared with the test.
#[derive(Default)]
struct Memory {
    maps: Option<Rendered>,
    attached: bool,
    installs: usize,
    removes: usize,
}

#[derive(Clone, Default)]
struct Fake(Rc<RefCell<Memory>>);

impl CgroupIds for Fake {
    fn cgroup_id(&self, _: &zt_core::CgroupPath) -> Option<u64> {
        None
    }
}

impl Kernel for Fake {
    fn read(&mut self) -> Result<State, EbpfError> {
        let m = self.0.borrow();
        let a = if m.attached {
            Attachment::Attached
        } else {
            Attachment::Missing
        };
        Ok(State {
            maps: m.maps.clone(),
            hooks: SocketHook::ALL.iter().map(|&h| (h, a)).collect(),
        })
    }

    fn install(&mut self, rendered: &Rendered) -> Result<(), EbpfError> {
        let mut m = self.0.borrow_mut();
        m.maps = Some(rendered.clone());
        m.attached = true;
        m.installs += 1;
        Ok(())
    }

    fn counters(&mut self, indexes: &[u32]) -> Result<Vec<u64>, EbpfError> {
        Ok(indexes.iter().map(|&i| u64::from(i) * 10).collect())
    }

    fn drain_audit(&mut self) -> Result<Vec<AuditRecord>, EbpfError> {
        Ok(Vec::new())
    }

    fn remove(&mut self) -> Result<(), EbpfError> {
        let mut m = self.0.borrow_mut();
        m.maps = None;
        m.attached = false;
        m.removes += 1;
        Ok(())
    }
}

fn backend() -> (EbpfBackend, Fake) {
    let fake = Fake::default();
    (EbpfBackend::with_kernel(Box::new(fake.clone())), fake)
}

fn install(b: &mut EbpfBackend, port: u16) -> Snapshot {
    let plan = b.plan(&ruleset(port)).unwrap();
    b.apply(&plan).unwrap()
}

fn ruleset(port: u16) -> Ruleset {
    PolicyBuilder::new()
        .rule(
            RuleBuilder::egress("web-to-redis")
                .user("web-user")
                .to_host("127.0.0.1")
                .port(port)
                .allow(),
        )
        .rule(RuleBuilder::egress("allow-dns").any_user().port(53).allow())
        .build(&StaticResolver::new().user("web-user", 1001))
        .unwrap()
        .policy
        .ruleset()
}

#[test]
fn a_first_apply_installs_and_an_unchanged_apply_writes_nothing() {
    let (mut b, fake) = backend();
    let plan = b.plan(&ruleset(6379)).unwrap();
    let added: Vec<&str> = plan
        .diff
        .changes
        .iter()
        .map(|c| c.subject.as_str())
        .collect();
    assert_eq!(added, ["web-to-redis", "allow-dns", "zt:default", PROGRAMS]);
    assert!(plan.diff.changes.iter().all(|c| c.kind == ChangeKind::Add));
    let snapshot = b.apply(&plan).unwrap();
    assert_eq!(snapshot.content, None);
    assert_eq!(fake.0.borrow().installs, 1);

    let again = b.plan(&ruleset(6379)).unwrap();
    assert!(again.is_empty(), "{}", again.diff);
    b.apply(&again).unwrap();
    assert_eq!(
        fake.0.borrow().installs,
        1,
        "an unchanged policy writes nothing"
    );
    assert!(b.verify(&ruleset(6379)).unwrap().is_empty());
}

#[test]
fn a_changed_rule_is_one_modification_and_rollback_restores_the_previous_maps() {
    let (mut b, fake) = backend();
    let first = b.plan(&ruleset(6379)).unwrap();
    b.apply(&first).unwrap();
    let before = fake.0.borrow().maps.clone();

    let plan = b.plan(&ruleset(6380)).unwrap();
    let changes: Vec<(ChangeKind, &str)> = plan
        .diff
        .changes
        .iter()
        .map(|c| (c.kind, c.subject.as_str()))
        .collect();
    assert_eq!(changes, [(ChangeKind::Modify, "web-to-redis")]);
    let snapshot = b.apply(&plan).unwrap();
    assert!(snapshot.content.is_some());
    assert_ne!(fake.0.borrow().maps, before);
    let drift = b.verify(&ruleset(6379)).unwrap();
    assert_eq!(drift.items.len(), 1);
    assert_eq!(drift.items[0].kind, DriftKind::Changed);

    b.rollback(&snapshot).unwrap();
    assert_eq!(fake.0.borrow().maps, before);
    assert!(b.verify(&ruleset(6379)).unwrap().is_empty());
}

#[test]
fn rolling_back_to_nothing_removes_everything() {
    let (mut b, fake) = backend();
    let snapshot = install(&mut b, 6379);
    b.rollback(&snapshot).unwrap();
    assert_eq!(fake.0.borrow().removes, 1);
    let drift = b.verify(&ruleset(6379)).unwrap();
    assert_eq!(drift.items[0].kind, DriftKind::Gone);
}

#[test]
fn a_snapshot_of_another_backend_is_refused() {
    let (mut b, _) = backend();
    let err = b
        .rollback(&Snapshot {
            backend: "nft".to_owned(),
            content: None,
        })
        .unwrap_err();
    assert!(
        matches!(err, zt_core::Error::SnapshotMismatch { .. }),
        "{err}"
    );
}

#[test]
fn a_plan_of_another_backend_is_refused() {
    let (mut b, fake) = backend();
    let mut plan = b.plan(&ruleset(6379)).unwrap();
    plan.backend = "nft".to_owned();
    assert!(b.apply(&plan).is_err());
    assert_eq!(fake.0.borrow().installs, 0);
}

#[test]
fn tampered_maps_show_as_drift_and_a_plan_that_repairs_them() {
    let (mut b, fake) = backend();
    install(&mut b, 6379);
    if let Some(maps) = fake.0.borrow_mut().maps.as_mut() {
        maps.members.pop();
    }
    assert!(!b.verify(&ruleset(6379)).unwrap().is_empty());
    let plan = b.plan(&ruleset(6379)).unwrap();
    assert!(!plan.is_empty());
    b.apply(&plan).unwrap();
    assert!(b.verify(&ruleset(6379)).unwrap().is_empty());
}

#[test]
fn the_same_rules_with_another_layout_are_still_a_change() {
    let (mut b, fake) = backend();
    install(&mut b, 6379);
    if let Some(maps) = fake.0.borrow_mut().maps.as_mut() {
        maps.groups.push(maps.groups[0]);
    }
    let plan = b.plan(&ruleset(6379)).unwrap();
    assert_eq!(plan.diff.changes.len(), 1);
    assert_eq!(plan.diff.changes[0].subject, "ebpf maps");
}

#[test]
fn detached_programs_show_in_the_plan() {
    let (mut b, fake) = backend();
    install(&mut b, 6379);
    fake.0.borrow_mut().attached = false;
    let plan = b.plan(&ruleset(6379)).unwrap();
    assert_eq!(plan.diff.changes.len(), 1);
    assert_eq!(plan.diff.changes[0].subject, PROGRAMS);
    b.apply(&plan).unwrap();
    assert!(fake.0.borrow().attached);
}

#[test]
fn status_names_counters_by_the_installed_rule_table() {
    let (mut b, _) = backend();
    assert!(!b.status().unwrap().installed);
    install(&mut b, 6379);
    let status = b.status().unwrap();
    assert!(status.installed);
    let counters: Vec<(&str, u64)> = status
        .counters
        .iter()
        .map(|c| (c.name.as_str(), c.packets))
        .collect();
    // The fake counts 10 per entry index: prologue entries 0-4, rules 5 and 6, zt:log 7.
    assert_eq!(
        counters,
        [("web-to-redis", 50), ("allow-dns", 60), ("zt:default", 80)]
    );
}

#[test]
fn ingress_rules_fail_the_plan_as_unsupported() {
    let (mut b, fake) = backend();
    let loaded = Policy::from_yaml(
        "version: \"1.0\"\nrules:\n  - name: https-in\n    direction: ingress\n    to: { port: 443 }\n    action: allow\n",
        "p.yaml",
        &StaticResolver::new(),
    )
    .unwrap();
    let err = b.plan(&loaded.policy.ruleset()).unwrap_err();
    assert!(
        matches!(&err, zt_core::Error::Unsupported { backend: "ebpf", rule, .. } if rule == "https-in"),
        "{err}"
    );
    assert_eq!(fake.0.borrow().installs, 0);
}

#[test]
fn the_artifact_is_the_readable_dump() {
    let (b, _) = backend();
    let artifact = b.render(&ruleset(6379)).unwrap();
    assert_eq!(artifact.files.len(), 1);
    assert_eq!(artifact.files[0].name, ARTIFACT_NAME);
    assert!(artifact.files[0].contents.starts_with(ARTIFACT_HEADER));
}
