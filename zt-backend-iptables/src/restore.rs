//! `iptables-restore --noflush` inputs that take zt's state from one [`Owned`] to another.
//!
//! One function serves apply (current → rendered), rollback (current → snapshot), flush
//! (current → nothing) and the pure artifact (nothing → rendered).
//!
//! * In `--noflush` mode a chain declaration (`:ZT-OUTPUT - [0:0]`) empties an existing chain,
//!   so each of zt's chains is emptied and refilled inside the one transaction: no moment
//!   exists with half a chain.
//! * A chain `current` does not have is created with `-N`, which fails if it exists: an input
//!   made from a state that has changed since (another zt run in between) is refused whole
//!   instead of adding a second jump.
//! * Jumps are inserted at the top of their built-in chain only when they are not already
//!   there exactly as wanted, so re-applying never duplicates them.
//! * Chains zt no longer wants are emptied first and deleted last.
//! * A refilled rule identical to one the chain holds now carries that rule's
//!   `[packets:bytes]` (the tools run with `--counters`), so counters survive an apply that
//!   keeps the rule.
//!
//! Nothing else in the table is named, so nothing else changes.

use crate::owned::{Counters, Owned, Rule, quote};
use crate::save::tokenize;
use std::collections::HashMap;
use zt_core::{Artifact, ArtifactFile, Family};

/// The artifact file name of a family.
pub fn file_name(family: Family) -> &'static str {
    match family {
        Family::V4 => "rules.v4",
        Family::V6 => "rules.v6",
    }
}

/// `IPv4` or `IPv6`.
pub fn label(family: Family) -> &'static str {
    match family {
        Family::V4 => "IPv4",
        Family::V6 => "IPv6",
    }
}

/// Both families' transitions as an artifact (`rules.v4`, `rules.v6`).
pub fn artifact(current: [&Owned; 2], desired: [&Owned; 2]) -> Artifact {
    let files = [Family::V4, Family::V6]
        .into_iter()
        .zip(current.into_iter().zip(desired))
        .map(|(family, (c, d))| ArtifactFile {
            name: file_name(family).to_owned(),
            contents: transition(family, c, d),
        })
        .collect();
    Artifact { files }
}

/// `[packets:bytes] VERB CHAIN [1] RULE` (`-I` inserts at the top; counters when given and not
/// zero, for `iptables-restore --counters`).
fn push_rule(out: &mut String, verb: &str, chain: &str, rule: &Rule, counters: Option<Counters>) {
    if let Some(c) = counters.filter(|c| c.packets > 0 || c.bytes > 0) {
        out.push_str(&format!("[{}:{}] ", c.packets, c.bytes));
    }
    out.push_str(verb);
    out.push(' ');
    out.push_str(&quote(chain));
    if verb == "-I" {
        out.push_str(" 1");
    }
    out.push(' ');
    out.push_str(&rule.line());
    out.push('\n');
}

/// Whether the jumps into zt's chains in `chain` are already exactly as `desired` wants them.
fn jumps_in_place(current: &Owned, desired: &Owned, chain: &str) -> bool {
    let now: Vec<(usize, &Rule)> = current
        .jumps_in(chain)
        .map(|j| (j.position, &j.rule))
        .collect();
    let want: Vec<(usize, &Rule)> = desired
        .jumps_in(chain)
        .map(|j| (j.position, &j.rule))
        .collect();
    now == want
}

/// The restore input taking one family from `current` to `desired`.
pub fn transition(family: Family, current: &Owned, desired: &Owned) -> String {
    let rules: usize = desired.chains.values().map(Vec::len).sum();
    let mut out = String::with_capacity(64 + rules * 120);
    out.push_str(&format!(
        "# zt: {} rules for {}tables-restore --noflush\n*filter\n",
        label(family),
        if family == Family::V6 { "ip6" } else { "ip" }
    ));
    let stale: Vec<&String> = current
        .chains
        .keys()
        .filter(|c| !desired.chains.contains_key(*c))
        .collect();
    for chain in desired.chains.keys().chain(stale.iter().copied()) {
        if current.chains.contains_key(chain) {
            out.push_str(&format!(":{} - [0:0]\n", quote(chain)));
        } else {
            out.push_str(&format!("-N {}\n", quote(chain)));
        }
    }
    for chain in current.hooked_with(desired) {
        if jumps_in_place(current, desired, chain) {
            continue;
        }
        for jump in current.jumps_in(chain) {
            push_rule(&mut out, "-D", chain, &jump.rule, None);
        }
        let want: Vec<_> = desired.jumps_in(chain).collect();
        for jump in want.iter().rev() {
            push_rule(&mut out, "-I", chain, &jump.rule, None);
        }
    }
    for (chain, rules) in &desired.chains {
        let mut counted = Counted::of(current.chains.get(chain));
        for rule in rules {
            let counters = rule.counters.or_else(|| counted.take(rule));
            push_rule(&mut out, "-A", chain, rule, counters);
        }
    }
    for chain in stale {
        out.push_str(&format!("-X {}\n", quote(chain)));
    }
    out.push_str("COMMIT\n");
    out
}

/// The counters of a chain's current rules, handed to identical desired rules in order, so
/// refilling a chain does not reset the counters of the rules that stay.
struct Counted<'a>(HashMap<&'a [String], Vec<Counters>>);

impl<'a> Counted<'a> {
    fn of(rules: Option<&'a Vec<Rule>>) -> Self {
        let mut map: HashMap<&'a [String], Vec<Counters>> = HashMap::new();
        for rule in rules.into_iter().flatten().rev() {
            if let Some(c) = rule.counters {
                map.entry(rule.args.as_slice()).or_default().push(c);
            }
        }
        Self(map)
    }

    fn take(&mut self, rule: &Rule) -> Option<Counters> {
        self.0.get_mut(rule.args.as_slice())?.pop()
    }
}

/// The line of a restore input a tool's error message points at (`line 15: …`,
/// `iptables-restore: line 18 failed`, `Error occurred at line: 3`).
pub fn failed_line(stderr: &str) -> Option<usize> {
    let at = stderr.find("line")?;
    let digits: String = stderr[at + 4..]
        .chars()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// The entry a line of a restore input belongs to (its `--comment`), with the line.
pub fn line_owner(input: &str, line: usize) -> Option<(String, String)> {
    let text = input.lines().nth(line.checked_sub(1)?)?;
    let rule = Rule::new(tokenize(text).ok()?);
    rule.comment().map(|c| (c.to_owned(), text.to_owned()))
}

/// Every `-m cgroup --path` of a restore input, with the entry it belongs to.
pub fn cgroup_paths(input: &str) -> Vec<(String, String)> {
    input
        .lines()
        .filter(|l| l.contains("--path"))
        .filter_map(|l| {
            let rule = Rule::new(tokenize(l).ok()?);
            let i = rule.args.windows(4).position(|w| {
                w[0] == "-m" && w[1] == "cgroup" && w[2] == "--path" && !w[3].is_empty()
            })?;
            Some((rule.comment()?.to_owned(), rule.args[i + 3].clone()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::owned::Jump;

    fn rule(args: &[&str]) -> Rule {
        Rule::new(args.iter().map(|s| (*s).to_owned()).collect())
    }

    fn jump(chain: &str, position: usize, target: &str) -> Jump {
        Jump {
            chain: chain.to_owned(),
            position,
            rule: rule(&["-m", "comment", "--comment", "zt:jump", "-j", target]),
        }
    }

    fn state(rules: &[&str]) -> Owned {
        let mut o = Owned::default();
        o.chains.insert(
            "ZT-OUTPUT".to_owned(),
            rules
                .iter()
                .map(|c| rule(&["-m", "comment", "--comment", c, "-j", "ACCEPT"]))
                .collect(),
        );
        o.jumps.push(jump("OUTPUT", 1, "ZT-OUTPUT"));
        o
    }

    #[test]
    fn from_nothing_the_chains_are_declared_jumped_to_and_filled() {
        let text = transition(Family::V4, &Owned::default(), &state(&["a"]));
        assert_eq!(
            text,
            "# zt: IPv4 rules for iptables-restore --noflush\n*filter\n-N ZT-OUTPUT\n-I OUTPUT 1 -m comment --comment zt:jump -j ZT-OUTPUT\n-A ZT-OUTPUT -m comment --comment a -j ACCEPT\nCOMMIT\n"
        );
    }

    #[test]
    fn a_jump_already_on_top_is_not_inserted_again() {
        let text = transition(Family::V6, &state(&["a"]), &state(&["b"]));
        assert!(!text.contains("OUTPUT 1"), "{text}");
        assert!(text.contains(":ZT-OUTPUT - [0:0]\n-A ZT-OUTPUT"));
    }

    #[test]
    fn a_misplaced_or_duplicated_jump_is_moved_to_the_top() {
        let mut now = state(&["a"]);
        now.jumps = vec![
            jump("OUTPUT", 3, "ZT-OUTPUT"),
            jump("OUTPUT", 5, "ZT-OUTPUT"),
        ];
        let text = transition(Family::V4, &now, &state(&["a"]));
        let d = "-D OUTPUT -m comment --comment zt:jump -j ZT-OUTPUT\n";
        assert_eq!(text.matches(d).count(), 2, "{text}");
        assert!(text.contains(&format!(
            "{d}{d}-I OUTPUT 1 -m comment --comment zt:jump -j ZT-OUTPUT\n"
        )));
    }

    #[test]
    fn to_nothing_jumps_are_deleted_and_chains_emptied_then_removed() {
        let mut now = state(&["a"]);
        now.chains.insert("ZT-INPUT".to_owned(), vec![]);
        let text = transition(Family::V4, &now, &Owned::default());
        assert_eq!(
            text,
            "# zt: IPv4 rules for iptables-restore --noflush\n*filter\n:ZT-INPUT - [0:0]\n:ZT-OUTPUT - [0:0]\n-D OUTPUT -m comment --comment zt:jump -j ZT-OUTPUT\n-X ZT-INPUT\n-X ZT-OUTPUT\nCOMMIT\n"
        );
    }

    #[test]
    fn rules_that_stay_keep_their_counters() {
        let mut now = state(&["a", "b", "a"]);
        for (i, r) in now
            .chains
            .get_mut("ZT-OUTPUT")
            .unwrap()
            .iter_mut()
            .enumerate()
        {
            r.counters = Some(Counters {
                packets: i as u64 + 1,
                bytes: 100,
            });
        }
        let text = transition(Family::V4, &now, &state(&["a", "c", "a"]));
        let rules: Vec<&str> = text.lines().filter(|l| l.contains("-A ")).collect();
        assert_eq!(
            rules,
            vec![
                "[1:100] -A ZT-OUTPUT -m comment --comment a -j ACCEPT",
                "-A ZT-OUTPUT -m comment --comment c -j ACCEPT",
                "[3:100] -A ZT-OUTPUT -m comment --comment a -j ACCEPT",
            ]
        );
    }

    #[test]
    fn restore_errors_point_at_the_rule_that_failed() {
        let input = "*filter\n:ZT-OUTPUT - [0:0]\n-A ZT-OUTPUT -m cgroup --path \"/a b\" -m comment --comment web -j ACCEPT\nCOMMIT\n";
        assert_eq!(
            failed_line("iptables-nft-restore v1.8.9 (nf_tables): \nline 3: RULE_APPEND failed"),
            Some(3)
        );
        assert_eq!(failed_line("iptables-restore: line 4 failed"), Some(4));
        assert_eq!(failed_line("Error occurred at line: 3"), Some(3));
        assert_eq!(failed_line("no number"), None);
        assert_eq!(line_owner(input, 3).map(|(r, _)| r), Some("web".to_owned()));
        assert_eq!(line_owner(input, 4), None);
        assert_eq!(
            cgroup_paths(input),
            vec![("web".to_owned(), "/a b".to_owned())]
        );
    }
}
