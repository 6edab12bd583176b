//! Validation of whole files: what a load does with names, host lists and descriptions.

use crate::diagnostic::Code;
use crate::policy::{Identity, Policy};
use crate::resolve::MockNameResolver;
use crate::resolve::StaticResolver;
use crate::{Error, Rule};
use mockall::predicate::eq;

fn egress(name: &str, from: &str) -> String {
    format!("  - {{name: {name}, from: {{{from}}}, to: {{port: 80}}, action: allow}}\n")
}

/// Each name is asked of the resolver once per load, however many rules use it, and every
/// rule naming it gets the same answer and shares the one copy of the name.
#[test]
fn each_user_and_group_name_is_resolved_once_per_load_and_shared() {
    let mut resolver = MockNameResolver::new();
    resolver
        .expect_uid()
        .with(eq("web"))
        .times(1)
        .return_const(Some(1001));
    resolver
        .expect_gid()
        .with(eq("ops"))
        .times(1)
        .return_const(Some(2001));
    let mut yaml = String::from("version: \"1.0\"\nrules:\n");
    for i in 0..3 {
        yaml += &egress(&format!("w{i}"), "user: web");
        yaml += &egress(&format!("o{i}"), "group: ops");
    }
    let loaded = Policy::from_yaml(&yaml, "t.yaml", &resolver).unwrap();
    let names: Vec<(u32, &std::sync::Arc<str>)> = loaded
        .policy
        .rules()
        .iter()
        .map(Rule::identity)
        .filter_map(|i| match i {
            Identity::User { uid, name: Some(n) }
            | Identity::Group {
                gid: uid,
                name: Some(n),
            } => Some((*uid, n)),
            _ => None,
        })
        .collect();
    assert_eq!(names.len(), 6);
    for (i, (id, name)) in names.iter().enumerate() {
        let (first_id, first) = names[i % 2];
        assert_eq!(*id, first_id);
        assert!(std::sync::Arc::ptr_eq(name, first), "{name}");
    }
    assert_eq!(names[0].0, 1001);
    assert_eq!(&**names[1].1, "ops");
}

/// A list of two networks is checked for overlap like a longer one (it has a path of its
/// own): within a family, not across.
#[test]
fn two_host_lists_warn_about_overlap_within_a_family() {
    let overlaps = |hosts: &str| {
        let yaml = format!(
            "version: \"1.0\"\nrules:\n  - {{name: r, from: {{uid: 1}}, to: {{hosts: {hosts}}}, action: allow}}\n"
        );
        let loaded = Policy::from_yaml(&yaml, "t.yaml", &StaticResolver::new());
        loaded.map(|l| {
            l.warnings
                .items
                .iter()
                .filter(|d| d.code == Code::OverlappingHosts)
                .count()
        })
    };
    assert_eq!(overlaps("[10.0.0.0/8, 10.1.2.3]").ok(), Some(1));
    assert_eq!(overlaps("[\"fd00::1\", \"fd00::/8\"]").ok(), Some(1));
    assert_eq!(overlaps("[10.0.0.1, 10.0.0.1]").ok(), Some(1));
    // Spaces around a quoted address are not part of it.
    assert_eq!(overlaps("[\" 10.0.0.1\", \"10.0.0.1\\t\"]").ok(), Some(1));
    assert_eq!(overlaps("[10.0.0.0/8, \"fd00::/8\"]").ok(), Some(0));
    assert_eq!(
        overlaps("[\"::ffff:0:0/96\", 0.0.0.0/0]").map_err(|_| ()),
        Err(())
    );
}

/// Descriptions are plain text: tabs and newlines are kept, control characters (C0, DEL,
/// C1) and texts over 1024 bytes are refused; short and long ones read back the same.
#[test]
fn descriptions_are_checked_and_kept_whatever_their_length() {
    let load_yaml = |description: &str| {
        let yaml = format!(
            "version: \"1.0\"\nrules:\n  - name: r\n    description: {description}\n    from: {{uid: 1}}\n    action: allow\n"
        );
        Policy::from_yaml(&yaml, "t.yaml", &StaticResolver::new())
    };
    let load = |text: &str| load_yaml(&serde_json::to_string(text).unwrap_or_default());
    let long = "a".repeat(1024);
    for text in [
        "",
        "web to its cache",
        "a tab\tand a\nnewline, café",
        &long,
        &long[..23],
    ] {
        let loaded = load(text).map_err(|e| format!("{e:?}"));
        let kept = loaded.map(|l| l.policy.rules()[0].description().map(str::to_owned));
        assert_eq!(kept, Ok(Some(text.to_owned())), "{text:?}");
    }
    // Written with YAML's escapes (`\a` bell, `\x7f` DEL, `\N` next line): YAML does not
    // allow them raw.
    for text in [
        "\"bell\\a\"",
        "\"del\\x7f\"",
        "\"next line\\N\"",
        &"a".repeat(1025),
    ] {
        let Err(Error::Invalid(d)) = load_yaml(text) else {
            panic!("{text:?} was accepted");
        };
        let codes: Vec<_> = d
            .items
            .iter()
            .map(|d| (d.code, d.field.as_deref()))
            .collect();
        assert_eq!(
            codes,
            [(Code::UnsafeCharacters, Some("description"))],
            "{text:?}"
        );
    }
}

/// An unknown name is asked once too, and still reported in every rule that uses it.
#[test]
fn an_unknown_name_is_reported_in_every_rule_but_looked_up_once() {
    let mut resolver = MockNameResolver::new();
    resolver
        .expect_uid()
        .with(eq("ghost"))
        .times(1)
        .return_const(None);
    let yaml = format!(
        "version: \"1.0\"\nrules:\n{}{}",
        egress("a", "user: ghost"),
        egress("b", "user: ghost")
    );
    let Err(Error::Invalid(d)) = Policy::from_yaml(&yaml, "t.yaml", &resolver) else {
        panic!("an unknown user must fail the load");
    };
    let rules: Vec<Option<&str>> = d
        .errors()
        .filter(|d| d.code == Code::UnknownUser)
        .map(|d| d.rule.as_deref())
        .collect();
    assert_eq!(rules, [Some("a"), Some("b")]);
}
