//! Rules are decoded and validated as they are read; a handover from the fast YAML reader to
//! the full one part-way through the rules must neither lose nor repeat a rule.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic on a broken fixture

use zt_core::{Error, Loaded, Policy, StaticResolver};

/// The loaded policy's rule names, in file order.
fn names(loaded: &Loaded) -> Vec<&str> {
    loaded
        .policy
        .rules()
        .iter()
        .map(|r| r.name().as_str())
        .collect()
}

#[test]
fn a_handover_to_the_full_reader_mid_stream_keeps_every_rule_once() {
    // The third rule's block scalar is outside the fast reader's subset: it has already
    // streamed two rules when it hands over.
    let yaml = "version: \"1.0\"\nrules:\n  - name: a\n    from: {uid: 1}\n    action: allow\n  - name: b\n    from: {uid: 2}\n    action: allow\n  - name: c\n    description: |\n      a block scalar\n    from: {uid: 3}\n    action: allow\n";
    let loaded = Policy::from_yaml(yaml, "rules.yaml", &StaticResolver::new()).unwrap();
    assert_eq!(names(&loaded), ["a", "b", "c"]);
    assert_eq!(
        loaded.policy.rules()[2].description(),
        Some("a block scalar\n")
    );
}

#[test]
fn diagnostics_from_before_a_handover_are_not_reported_twice() {
    let yaml = "version: \"1.0\"\nrules:\n  - name: a\n    from: {uid: 1}\n    action: permit\n  - name: b\n    description: &d x\n    from: {uid: 2}\n    action: allow\n";
    let Err(Error::Invalid(d)) = Policy::from_yaml(yaml, "rules.yaml", &StaticResolver::new())
    else {
        panic!("expected an invalid policy");
    };
    assert_eq!(d.errors().count(), 1, "{d}");
}

#[test]
fn rules_as_a_flow_sequence_load_wherever_the_sequence_starts() {
    // The fast reader once streamed a flow sequence only when it began on the `rules:` line;
    // on the next line its rules were silently left out, leaving a policy with none.
    let rule_a = "{name: a, from: {uid: 1}, to: {port: 80}, action: allow}";
    let rule_b = "{name: b, from: {uid: 2}, action: deny}";
    for layout in [
        format!("rules: [{rule_a}, {rule_b}]\n"),
        format!("rules:\n  [{rule_a}, {rule_b}]\n"),
        format!("rules:\n  # the rules\n  [{rule_a}, {rule_b}]\n"),
    ] {
        let yaml = format!("version: \"1.0\"\n{layout}");
        let loaded = Policy::from_yaml(&yaml, "rules.yaml", &StaticResolver::new()).unwrap();
        assert_eq!(names(&loaded), ["a", "b"], "{yaml}");
    }
}
