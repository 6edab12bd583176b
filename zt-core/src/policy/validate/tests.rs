//! Validation of whole files: what a load does with names, host lists and descriptions.

use super::load;
use crate::diagnostic::Code;
use crate::policy::parallel;
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

/// Reading on a second thread changes nothing: the same policy and warnings, or the same
/// diagnostics, for valid rules, invalid rules, and a file the fast reader declines near its
/// end (read again by the full reader). Five kinds of rule in turn, so that a batch's rules
/// are built from the vectors of rules of other kinds (a batch holds 256).
#[test]
fn reading_on_a_second_thread_gives_the_same_result_as_reading_on_one() {
    let resolver = StaticResolver::new().user("web", 1001).group("ops", 2001);
    let rule = |i: usize| match i % 5 {
        0 => format!(
            "  - name: r{i}\n    from:\n      user: web\n    to:\n      host: 10.0.{}.{}\n      port: {}\n    action: allow\n",
            i / 256 % 256,
            i % 256,
            1 + i % 60000
        ),
        1 => format!(
            "  - {{name: r{i}, from: {{group: ops}}, to: {{ports: [{}, \"2000-3000\"]}}, action: deny}}\n",
            1 + i % 1000
        ),
        2 => format!(
            "  - name: r{i}\n    direction: ingress\n    from: {{hosts: [\"fd00::{i:x}\", 192.0.2.0/24]}}\n    action: reject\n"
        ),
        3 => format!(
            "  - name: r{i}\n    from: {{uid: {i}}}\n    to: {{port: 53, protocol: udp}}\n    action: allow\n    log: true\n"
        ),
        _ => format!(
            "  - name: r{i}\n    description: the fifth kind\n    priority: 0\n    from:\n      gid: 7\n    action: allow\n"
        ),
    };
    let mut valid = String::from("version: \"1.0\"\nrules:\n");
    for i in 0..2000 {
        valid += &rule(i);
    }
    // Invalid rules among valid ones: unknown keys, bad values, a repeated name.
    let invalid = valid.replace("    action: reject\n", "    action: rejekt\n")
        + "  - name: r5\n    from: {user: nobody}\n    to: {port: 0}\n    actoin: allow\n";
    // Outside the fast reader's subset near the end: read again by the full reader.
    let declined = valid.clone() + "  - name: last\n    from: &a {uid: 1}\n    action: allow\n";
    for (text, fast) in [(&valid, true), (&invalid, true), (&declined, false)] {
        let one = load(text, "t.yaml", &resolver, false);
        let two = load(text, "t.yaml", &resolver, true);
        assert_eq!(format!("{one:?}"), format!("{two:?}"));
        // Whether the second thread's reading stood (and was not silently redone).
        let mut sink = Vec::new();
        let read = parallel::read(text, &mut sink).map(|root| root.is_some());
        assert_eq!(read, Some(fast));
    }
    let rules = |r: &Result<crate::Loaded, Error>| r.as_ref().map(|l| l.policy.rules().len()).ok();
    assert_eq!(rules(&load(&valid, "t", &resolver, true)), Some(2000));
    assert_eq!(rules(&load(&declined, "t", &resolver, true)), Some(2001));
    assert!(load(&invalid, "t", &resolver, true).is_err());
}
