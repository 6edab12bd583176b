//! The words of the configuration's enumerated values, the words other firewalls use for
//! them, and "did you mean" suggestions for typos of words and keys.

use crate::policy::{Action, DefaultPolicy, Direction, Protocol};

/// The words of `direction`.
pub(super) const DIRECTIONS: [(&str, Direction); 2] = [
    ("egress", Direction::Egress),
    ("ingress", Direction::Ingress),
];

/// The words of `action`.
pub(super) const ACTIONS: [(&str, Action); 3] = [
    ("allow", Action::Allow),
    ("deny", Action::Deny),
    ("reject", Action::Reject),
];

/// The words of `protocol`.
pub(super) const PROTOCOLS: [(&str, Protocol); 5] = [
    ("tcp", Protocol::Tcp),
    ("udp", Protocol::Udp),
    ("both", Protocol::Both),
    ("icmp", Protocol::Icmp),
    ("any", Protocol::Any),
];

/// The words of `settings.default_policy`.
pub(super) const DEFAULT_POLICIES: [(&str, DefaultPolicy); 2] = [
    ("deny", DefaultPolicy::Deny),
    ("allow", DefaultPolicy::Allow),
];

/// Words other firewalls use for zt's, suggested when a value is not one of zt's words.
pub(super) const SYNONYMS: &[(&str, &str)] = &[
    ("accept", "allow"),
    ("permit", "allow"),
    ("pass", "allow"),
    ("drop", "deny"),
    ("block", "deny"),
    ("refuse", "reject"),
    ("out", "egress"),
    ("output", "egress"),
    ("outbound", "egress"),
    ("in", "ingress"),
    ("input", "ingress"),
    ("inbound", "ingress"),
    ("all", "any"),
];

/// Levenshtein distance, for "did you mean" suggestions among a handful of short words.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// The known word closest to `word`, if it is close enough to be a typo.
pub(super) fn suggest<'k>(word: &str, known: impl IntoIterator<Item = &'k str>) -> Option<&'k str> {
    known
        .into_iter()
        .map(|k| (distance(word, k), k))
        .filter(|(d, k)| *d <= 2 && *d < k.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::suggest;
    use crate::config::keys::TO_KEYS;

    #[test]
    fn suggestions_catch_typos_but_not_unrelated_words() {
        let keys = || TO_KEYS.iter().map(|(k, _)| *k);
        assert_eq!(suggest("protcol", keys()), Some("protocol"));
        assert_eq!(suggest("prots", keys()), Some("ports"));
        assert_eq!(suggest("destination", keys()), None);
    }
}
