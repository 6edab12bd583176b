//! The exact message an operator sees for every kind of problem, one snapshot per case.
//!
//! Each case is a small configuration with one problem (the last shows that every problem of
//! a file is reported in one pass). Warnings are checked on configurations that validate.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic on a broken fixture

use zt_core::{Error, Policy, StaticResolver};

fn resolver() -> StaticResolver {
    StaticResolver::new()
        .user("web-user", 1001)
        .user("postgres", 1002)
        .group("web", 1001)
}

/// What `zt check` would print for `yaml`: the diagnostics, or the warnings of a valid policy.
fn report(yaml: &str) -> String {
    match Policy::from_yaml(yaml, "rules.yaml", &resolver()) {
        Ok(loaded) => format!("valid\n{}", loaded.warnings),
        Err(Error::Invalid(d)) => format!("invalid\n{d}"),
        Err(e) => format!("other error: {e}"),
    }
}

macro_rules! case {
    ($name:ident, $yaml:expr) => {
        #[test]
        fn $name() {
            insta::assert_snapshot!(report($yaml));
        }
    };
}

/// A one-rule configuration around the given rule body (indented four spaces).
fn rule(body: &str) -> String {
    format!("version: \"1.0\"\nrules:\n  - name: r1\n{body}")
}

case!(
    unknown_user,
    &rule("    from: {user: web-usr}\n    action: allow\n")
);
case!(
    unknown_group,
    &rule("    from: {group: webb}\n    action: allow\n")
);
case!(
    port_zero,
    &rule("    from: {uid: 1001}\n    to: {port: 0}\n    action: allow\n")
);
case!(
    port_above_65535,
    &rule("    from: {uid: 1001}\n    to: {ports: [80, 70000]}\n    action: allow\n")
);
case!(
    inverted_range,
    &rule("    from: {uid: 1001}\n    to: {port: \"9000-8000\"}\n    action: allow\n")
);
case!(
    port_with_icmp,
    &rule("    from: {uid: 1001}\n    to: {port: 8, protocol: icmp}\n    action: allow\n")
);
case!(
    port_with_any,
    &rule("    from: {uid: 1001}\n    to: {port: 53, protocol: any}\n    action: allow\n")
);
case!(
    malformed_cidr,
    &rule("    from: {uid: 1001}\n    to: {host: 10.0.0.0/33}\n    action: allow\n")
);
case!(
    malformed_address,
    &rule("    from: {uid: 1001}\n    to: {host: \"10.0.0\"}\n    action: allow\n")
);
case!(
    host_bits_set,
    &rule("    from: {uid: 1001}\n    to: {host: 10.0.0.1/24}\n    action: allow\n")
);
case!(
    hostname,
    &rule("    from: {uid: 1001}\n    to: {host: redis.internal}\n    action: allow\n")
);
case!(
    ipv4_mapped_ipv6,
    &rule("    from: {uid: 1001}\n    to: {host: \"::ffff:127.0.0.1\"}\n    action: allow\n")
);
case!(
    empty_host_list,
    &rule("    from: {uid: 1001}\n    to: {hosts: []}\n    action: allow\n")
);
case!(
    host_and_hosts,
    &rule("    from: {uid: 1001}\n    to: {host: ::1, hosts: [::2]}\n    action: allow\n")
);
case!(
    empty_name,
    "version: \"1.0\"\nrules:\n  - name: \"\"\n    from: {uid: 1}\n    action: allow\n"
);
case!(
    missing_name,
    "version: \"1.0\"\nrules:\n  - from: {uid: 1}\n    action: allow\n"
);
case!(
    invalid_name,
    "version: \"1.0\"\nrules:\n  - name: \"web to redis\"\n    from: {uid: 1}\n    action: allow\n"
);
case!(
    duplicate_names,
    "version: \"1.0\"\nrules:\n  - name: a\n    from: {uid: 1}\n    action: allow\n  - name: a\n    from: {uid: 2}\n    action: allow\n"
);
case!(
    two_selectors,
    &rule("    from: {user: web-user, uid: 1001}\n    action: allow\n")
);
case!(
    missing_selector,
    &rule("    to: {port: 80}\n    action: allow\n")
);
case!(
    ingress_with_user,
    &rule(
        "    direction: ingress\n    from: {user: web-user}\n    to: {port: 80}\n    action: allow\n"
    )
);
case!(
    egress_with_source_hosts,
    &rule("    from: {uid: 1001, hosts: [10.0.0.1]}\n    action: allow\n")
);
case!(
    ingress_with_destination_hosts,
    &rule("    direction: ingress\n    to: {host: 10.0.0.1, port: 80}\n    action: allow\n")
);
case!(
    uid_out_of_range,
    &rule("    from: {uid: 4294967295}\n    action: allow\n")
);
case!(
    cgroup_with_dotdot,
    &rule("    from: {cgroup: system.slice/../user.slice}\n    action: allow\n")
);
case!(missing_action, &rule("    from: {uid: 1001}\n"));
case!(
    unknown_action,
    &rule("    from: {uid: 1001}\n    action: permit\n")
);
case!(
    unknown_key_typo,
    &rule("    from: {uid: 1001}\n    to: {port: 22, protcol: udp}\n    action: allow\n")
);
case!(
    yes_is_not_a_boolean,
    &rule("    from: {uid: 1001}\n    action: allow\n    log: yes\n")
);
case!(
    log_prefix_too_long,
    "version: \"1.0\"\nsettings:\n  log_prefix: \"ZT-BLOCKED-BY-THE-FIREWALL-NOW: \"\nrules: []\n"
);
case!(
    log_prefix_with_quote,
    "version: \"1.0\"\nsettings:\n  log_prefix: \"ZT \\\"x\\\" \"\nrules: []\n"
);
case!(
    log_prefix_with_newline,
    "version: \"1.0\"\nsettings:\n  log_prefix: \"ZT\\nkernel: \"\nrules: []\n"
);
case!(
    log_prefix_with_control,
    "version: \"1.0\"\nsettings:\n  log_prefix: \"ZT\\u001b[31m\"\nrules: []\n"
);
case!(
    bad_log_rate,
    "version: \"1.0\"\nsettings:\n  log_rate: \"lots\"\nrules: []\n"
);
case!(unsupported_version, "version: \"2.0\"\nrules: []\n");
case!(missing_version, "rules: []\n");
case!(missing_rules, "version: \"1.0\"\n");
case!(not_yaml, "version: \"1.0\"\nrules: [\n");
case!(not_a_mapping, "- just\n- a list\n");
case!(empty_file, "");
case!(
    two_documents,
    "version: \"1.0\"\nrules: []\n---\nversion: \"1.0\"\n"
);
case!(yaml_tag, "version: !!str 1.0\nrules: []\n");
case!(
    alias_bomb,
    "version: \"1.0\"\na: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\nh: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]\ni: [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]\nrules: []\n"
);
case!(
    deep_block_nesting,
    &format!(
        "version: \"1.0\"\nrules:\n{}",
        (0..100)
            .map(|i| format!("{}-\n", "  ".repeat(i)))
            .collect::<String>()
    )
);
case!(
    deep_flow_sequences,
    &format!(
        "version: \"1.0\"\nrules: {}{}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    )
);
case!(
    deep_flow_mappings,
    &format!(
        "version: \"1.0\"\nrules: {}1{}\n",
        "{a: ".repeat(1000),
        "}".repeat(1000)
    )
);
case!(
    every_problem_in_one_pass,
    "version: \"1.0\"\nsettings:\n  log_prefix: \"way too long for iptables to accept\"\n  default_policy: denny\nrules:\n  - name: a\n    from: {user: nobody-here}\n    to: {port: 70000}\n    action: allow\n  - name: a\n    from: {uid: 5}\n    to: {host: 10.0.0.1/8, protocol: icmp, port: 1}\n    action: drop\n  - name: c\n    form: {uid: 5}\n    action: deny\n"
);

// Warnings: the policy is accepted, the operator is told.
case!(
    ssh_unprotected,
    "version: \"1.0\"\nsettings:\n  preserve_ssh: false\nrules:\n  - name: web\n    direction: ingress\n    to: {port: 443}\n    action: allow\n"
);
case!(
    shadowed_rule,
    "version: \"1.0\"\nrules:\n  - name: web-any\n    from: {user: web-user}\n    action: allow\n  - name: web-redis\n    from: {user: web-user}\n    to: {host: 127.0.0.1, port: 6379}\n    action: deny\n"
);
case!(
    shadowed_by_priority,
    "version: \"1.0\"\nrules:\n  - name: narrow\n    from: {uid: 5}\n    to: {port: 22}\n    action: allow\n  - name: wide\n    priority: -10\n    from: {user: \"*\"}\n    to: {ports: [\"1-1024\"], protocol: both}\n    action: deny\n"
);
case!(
    shadowed_by_ssh_failsafe,
    "version: \"1.0\"\nrules:\n  - name: no-ssh\n    direction: ingress\n    to: {port: 22}\n    action: deny\n"
);
case!(
    overlapping_hosts,
    &rule(
        "    from: {uid: 1001}\n    to: {hosts: [10.0.0.0/8, 10.1.2.3, 10.0.0.0/8]}\n    action: allow\n"
    )
);
case!(
    established_not_preserved,
    "version: \"1.0\"\nsettings:\n  preserve_established: false\nrules: []\n"
);

#[test]
fn a_builder_policy_gets_the_same_diagnostics_as_a_file() {
    use zt_core::RuleBuilder;
    let built = Policy::builder()
        .rule(
            RuleBuilder::egress("r1")
                .user("web-usr")
                .port_range(9000, 8000)
                .allow(),
        )
        .build(&resolver());
    let Err(Error::Invalid(d)) = built else {
        panic!("expected an invalid policy");
    };
    insta::assert_snapshot!(d.to_string());
}

/// Nesting past zt's limit is one problem however it is written (block or flow, sequences or
/// mappings, just past the limit or far past the parser's own): `too-large`, "nesting deeper
/// than 64 levels". The scanner reads flow collections ahead of the tree builder, so without
/// care deep flow nesting would surface as the parser's `yaml-syntax: recursion limit
/// exceeded` instead.
#[test]
fn nesting_too_deep_is_too_large_however_it_is_written() {
    // Each a whole file: `rules:` followed by `depth` nested collections (the block form only
    // up to 1000, as its indentation grows with the square of the depth).
    let documents = |depth: usize| {
        let mut all = vec![
            format!("rules:\n  {}x\n", "- ".repeat(depth)),
            format!("rules: {}{}\n", "[".repeat(depth), "]".repeat(depth)),
            format!("rules: {}1{}\n", "{a: ".repeat(depth), "}".repeat(depth)),
            format!(
                "rules: {}{}\n",
                "[{a: ".repeat(depth / 2),
                "}]".repeat(depth / 2)
            ),
        ];
        if depth <= 1000 {
            let block: String = (0..depth)
                .map(|i| format!("{}-\n", "  ".repeat(i)))
                .collect();
            all.push(format!("rules:\n{block}"));
        }
        all.into_iter()
            .map(|rules| format!("version: \"1.0\"\n{rules}"))
            .collect::<Vec<_>>()
    };
    for depth in [66, 100, 254, 255, 256, 257, 1000, 100_000] {
        for (i, yaml) in documents(depth).into_iter().enumerate() {
            let Err(Error::Invalid(d)) = Policy::from_yaml(&yaml, "deep.yaml", &resolver()) else {
                panic!("depth {depth}, style {i}: accepted");
            };
            let first = &d.items[0];
            assert_eq!(
                (first.code, first.message.as_str()),
                (zt_core::Code::TooLarge, "nesting deeper than 64 levels"),
                "depth {depth}, style {i}: {d}"
            );
        }
    }
    // At the limit, the same documents are read (and rejected for what they hold, not their
    // depth).
    for (i, yaml) in documents(60).into_iter().enumerate() {
        if let Err(Error::Invalid(d)) = Policy::from_yaml(&yaml, "deep.yaml", &resolver()) {
            assert!(
                d.items.iter().all(|e| e.code != zt_core::Code::TooLarge),
                "depth 60, style {i}: {d}"
            );
        }
    }
}
