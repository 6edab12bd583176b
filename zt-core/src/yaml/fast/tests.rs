//! The fast reader's subset: what it must accept (agreeing with the full reader) and what it
//! must decline.

use crate::yaml::fast_reader_agrees;

/// Documents inside the subset: the fast reader must accept them and agree with the full one.
const ACCEPTED: &[&str] = &[
    "a: 1\n",
    "a: 1",
    "---\na: b\n",
    "--- # c\na: b\n",
    "# c\n\na: b # c\nc: 'd''e'\nf: \"g h\"\n",
    "a:\n  b: 1\n  c:\n    d: x\ne: y\n",
    "a:\n- 1\n- 2\nb: 3\n",
    "a:\n- b: 1\n  c: 2\n",
    "a:\n  - 1\n  -   x y\n",
    "rules:\n  - name: web\n    from:\n      user: web-user\n    to: {host: 127.0.0.1, port: 6379}\n  - name: b\n    action: allow\n",
    "a: [1, 'b', \"c\", [d, e], {f: g}]\n",
    "a: []\nb: {}\nc: [ ]\n",
    "hosts: [::1, fe80::1, 10.0.0.0/8, 2001:db8::/32]\n",
    "port: \"8000-8100\"\nhost: ::1\n",
    "- a\n- b: c\n  d: e\n-\n  f: g\n",
    "a: b:c\n",
    "a: x#y\n",
    "a: -5\n",
    "scalar\n",
    "-   k: v\n    l: w\n",
    "version: 1\nrules:\n- name: a\n- name: b\nx: 1\n",
    "rules:\n  - a\n  - b: c\nrules: [d]\n",
    "rules: [a, {b: c}]\nother:\n  - x\n",
    "rules: {a: b}\n",
    "rules: x\n",
    "nested:\n  rules:\n    - a\n",
];

/// Documents outside the subset (valid YAML or not): the fast reader must decline.
const DECLINED: &[&str] = &[
    "a: &x 1\nb: *x\n",
    "a: !!str 1\n",
    "a: |\n  text\n",
    "a: b\n  c\n",
    "a:\n",
    "a: [1,\n  2]\n",
    "a:\tb\n",
    "a: b\r\n",
    "a: caf\u{e9}\n",
    "\"a\": 1\n",
    "a: \"x\\ny\"\n",
    "a: [1, ]\n",
    "a: b: c\n",
    "- - a\n",
    "a: 1\n---\nb: 2\n",
    "---\n--- J\n",
    "a: b\n...\n",
    "a:\n-\n  b: 1\n- c\n",
    "--- a\n",
    "  a: 1\n",
    "? a\n: b\n",
    "a: 'x\n  y'\n",
    "",
];

#[test]
fn fast_reader_accepts_the_subset_and_agrees_with_the_full_reader() {
    let failures: Vec<String> = ACCEPTED
        .iter()
        .filter(|t| fast_reader_agrees(t) != Ok(true))
        .map(|t| format!("{t:?}: {:?}", fast_reader_agrees(t)))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn fast_reader_declines_everything_outside_the_subset() {
    let failures: Vec<&str> = DECLINED
        .iter()
        .copied()
        .filter(|t| fast_reader_agrees(t) != Ok(false))
        .collect();
    assert!(failures.is_empty(), "{failures:?}");
}
