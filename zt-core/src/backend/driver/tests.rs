//! The skeleton's rules, over a driver whose kernel is a list of rule names.

use super::*;
use crate::{ChangeKind, Policy, RuleBuilder, StaticResolver, compare};
use std::path::Path;

/// A kernel holding the names of the rules installed, counting reads and writes.
#[derive(Default)]
struct Names {
    kernel: Vec<String>,
    reads: usize,
    writes: usize,
    refuse_writes: bool,
}

impl Driver for Names {
    const NAME: &'static str = "names";
    type State = Vec<String>;

    fn supports(&self) -> Capabilities {
        Capabilities::all().without_icmp("names carry no protocol")
    }
    fn read(&mut self) -> Result<Vec<String>, Error> {
        self.reads += 1;
        Ok(self.kernel.clone())
    }
    fn desired(&self, ruleset: &Ruleset) -> Result<Vec<String>, Error> {
        Ok(ruleset
            .entries()
            .iter()
            .map(|e| e.name().to_owned())
            .collect())
    }
    fn nothing(&self) -> Vec<String> {
        Vec::new()
    }
    fn owns_nothing(&self, state: &Vec<String>) -> bool {
        state.is_empty()
    }
    fn diff(&self, current: &Vec<String>, desired: &Vec<String>) -> Vec<Change> {
        let units = |s: &Vec<String>| s.iter().map(|n| (n.clone(), n.clone())).collect::<Vec<_>>();
        compare(&units(current), &units(desired))
    }
    fn drift(&self, current: &Vec<String>, desired: &Vec<String>) -> Drift {
        Drift::from_changes(self.diff(current, desired))
    }
    fn write(&mut self, _: &Vec<String>, to: &Vec<String>) -> Result<(), Error> {
        if self.refuse_writes {
            return Err(Error::Backend {
                backend: "names",
                message: "refused".into(),
                source: None,
            });
        }
        self.writes += 1;
        self.kernel = to.clone();
        Ok(())
    }
    fn describe(&self, _: &Ruleset, _: &Vec<String>, to: &Vec<String>) -> Result<Artifact, Error> {
        Ok(Artifact {
            files: vec![super::super::ArtifactFile {
                name: "names".into(),
                contents: to.join("\n"),
            }],
        })
    }
    fn encode(&self, state: &Vec<String>) -> Result<String, Error> {
        Ok(state.join(","))
    }
    fn decode(&self, content: &str) -> Result<Vec<String>, Error> {
        Ok(content.split(',').map(str::to_owned).collect())
    }
    fn inspect(&mut self) -> Result<Status, Error> {
        Ok(Status::default())
    }
    fn boot(&self, _: &Ruleset, _: &Boot) -> Result<Persistence, Error> {
        Ok(Persistence::default())
    }
}

fn ruleset(port: u16) -> Ruleset {
    Policy::builder()
        .rule(
            RuleBuilder::egress(&format!("web-{port}"))
                .uid(1)
                .port(port)
                .allow(),
        )
        .build(&StaticResolver::new())
        .unwrap()
        .policy
        .ruleset()
}

#[test]
fn apply_writes_what_plan_compared_without_reading_again() {
    let mut b = Names::default();
    let plan = b.plan(&ruleset(80)).unwrap();
    assert!(plan.diff.changes.iter().all(|c| c.kind == ChangeKind::Add));
    assert_eq!(b.reads, 1);
    let before = b.snapshot_before(&plan).unwrap();
    let snapshot = b.apply(&plan).unwrap();
    assert_eq!(
        (b.reads, b.writes),
        (1, 1),
        "one read (the plan's), one write"
    );
    assert_eq!(snapshot, before);
    assert_eq!(snapshot.content, None, "zt owned nothing before");
    assert!(b.kernel.contains(&"web-80".to_owned()));
    assert!(b.verify(&ruleset(80)).unwrap().is_empty());
    assert!(b.verify_applied(&plan).unwrap().is_empty());
    assert_eq!(b.reads, 3, "verify_applied reads, and compiles nothing");
    assert_eq!(
        b.artifact(&plan).unwrap().files[0].contents,
        b.kernel.join("\n")
    );
}

#[test]
fn an_empty_plan_a_flush_of_nothing_and_a_rollback_to_what_is_there_write_nothing() {
    let mut b = Names::default();
    b.flush().unwrap();
    let first = b.plan(&ruleset(80)).unwrap();
    b.apply(&first).unwrap();
    let again = b.plan(&ruleset(80)).unwrap();
    assert!(again.is_empty());
    let snapshot = b.apply(&again).unwrap();
    assert_eq!(b.writes, 1);
    b.rollback(&snapshot).unwrap();
    assert_eq!(b.writes, 1, "the snapshot is what the kernel holds");
    b.flush().unwrap();
    b.flush().unwrap();
    assert_eq!(b.writes, 2);
    assert!(b.kernel.is_empty());
}

#[test]
fn rollback_restores_the_snapshot_and_a_plan_without_states_is_applied_afresh() {
    let mut b = Names::default();
    let first = b.plan(&ruleset(80)).unwrap();
    b.apply(&first).unwrap();
    let installed = b.kernel.clone();
    let second = b.plan(&ruleset(81)).unwrap();
    let snapshot = b.apply(&second).unwrap();
    assert_ne!(b.kernel, installed);
    b.rollback(&snapshot).unwrap();
    assert_eq!(b.kernel, installed);

    let bare = Plan::new("names", ruleset(82), second.diff.clone());
    b.apply(&bare).unwrap();
    assert!(b.kernel.contains(&"web-82".to_owned()));
}

#[test]
fn a_foreign_plan_or_snapshot_is_refused_and_the_kernel_untouched() {
    let mut b = Names::default();
    let mut plan = b.plan(&ruleset(80)).unwrap();
    plan.backend = "nft".into();
    let err = b.apply(&plan).unwrap_err();
    assert!(
        matches!(&err, Error::ForeignPlan { backend: "names", made_by } if made_by == "nft"),
        "{err}"
    );
    assert!(b.snapshot_before(&plan).is_err());
    let foreign = Snapshot {
        backend: "nft".into(),
        content: None,
    };
    assert!(matches!(
        b.rollback(&foreign),
        Err(Error::SnapshotMismatch { .. })
    ));
    assert_eq!(b.writes, 0);
}

#[test]
fn a_refused_rule_is_refused_before_anything_is_read_and_a_failed_write_is_reported() {
    let mut b = Names::default();
    let icmp = Policy::builder()
        .rule(
            RuleBuilder::egress("ping")
                .any_user()
                .protocol(crate::Protocol::Icmp)
                .allow(),
        )
        .build(&StaticResolver::new())
        .unwrap()
        .policy
        .ruleset();
    for result in [
        b.plan(&icmp).map(drop),
        b.verify(&icmp).map(drop),
        b.render(&icmp).map(drop),
    ] {
        assert!(matches!(result, Err(Error::Unsupported { rule, .. }) if rule == "ping"));
    }
    let boot = Boot {
        policy_yaml: String::new(),
        zt: Path::new("/usr/bin/zt").to_path_buf(),
    };
    assert!(b.persistence(&icmp, &boot).is_err());
    assert_eq!(b.reads, 0);

    b.refuse_writes = true;
    let plan = b.plan(&ruleset(80)).unwrap();
    assert!(b.apply(&plan).is_err());
    assert!(b.kernel.is_empty());
}
