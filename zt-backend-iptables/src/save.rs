//! A small parser of `iptables-save [-c]` output: tables, chain declarations with policy and
//! counters, and `-A` rules as argument vectors with their counters.
//!
//! Only what zt needs: it does not interpret matches, it splits lines into tokens the way
//! `iptables-restore` does (double quotes, backslash escapes) so that a rule printed by
//! `iptables-save` and the same rule rendered by zt give the same tokens.

use crate::error::IptablesError;
pub use crate::owned::Counters;
use crate::owned::{ChainPrefix, Jump, Owned, Rule};

/// A chain declaration (`:NAME POLICY [packets:bytes]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chain {
    /// Its name.
    pub name: String,
    /// The policy of a built-in chain; `None` for a user chain (`-`).
    pub policy: Option<String>,
    /// The chain's counters (a built-in chain's policy counters).
    pub counters: Counters,
}

/// One `-A` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedRule {
    /// The chain it is appended to.
    pub chain: String,
    /// The rule, with its counters when saved with `-c`.
    pub rule: Rule,
}

/// One table (`*filter` … `COMMIT`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Table {
    /// Its name.
    pub name: String,
    /// Its chains, in the order printed.
    pub chains: Vec<Chain>,
    /// Its rules, in the order printed (grouped by chain).
    pub rules: Vec<SavedRule>,
}

/// A whole `iptables-save` output.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dump {
    /// The tables, in the order printed.
    pub tables: Vec<Table>,
}

fn error(line: usize, reason: &'static str, text: &str) -> IptablesError {
    IptablesError::Parse {
        line,
        reason,
        text: text.to_owned(),
    }
}

/// Split a line into tokens as `iptables-restore` does: whitespace separates, double quotes
/// group, and inside quotes a backslash escapes the next character.
pub fn tokenize(line: &str) -> Result<Vec<String>, &'static str> {
    // Most lines quote nothing.
    if !line.contains(['"', '\\']) {
        return Ok(line.split_whitespace().map(str::to_owned).collect());
    }
    let mut tokens = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(tokens);
        }
        let mut token = String::new();
        let mut quoted = false;
        while let Some(c) = chars.next() {
            match c {
                '"' => quoted = !quoted,
                '\\' if quoted => match chars.next() {
                    Some(e) => token.push(e),
                    None => return Err("a backslash ends the line"),
                },
                c if c.is_whitespace() && !quoted => break,
                c => token.push(c),
            }
        }
        if quoted {
            return Err("a quote is not closed");
        }
        tokens.push(token);
    }
}

/// `[packets:bytes]`.
fn counters(text: &str) -> Option<Counters> {
    let inner = text.strip_prefix('[')?.strip_suffix(']')?;
    let (p, b) = inner.split_once(':')?;
    Some(Counters {
        packets: p.parse().ok()?,
        bytes: b.parse().ok()?,
    })
}

/// Parse `iptables-save` or `iptables-save -c` output.
pub fn parse(text: &str) -> Result<Dump, IptablesError> {
    let mut dump = Dump::default();
    let mut open: Option<Table> = None;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix('*') {
            if open.is_some() {
                return Err(error(n, "a table starts before COMMIT", raw));
            }
            open = Some(Table {
                name: name.to_owned(),
                ..Table::default()
            });
            continue;
        }
        let Some(table) = open.as_mut() else {
            return Err(error(n, "a line outside a table", raw));
        };
        if line == "COMMIT" {
            dump.tables.extend(open.take());
            continue;
        }
        if let Some(decl) = line.strip_prefix(':') {
            let mut parts = decl.split_whitespace();
            let (Some(name), Some(policy), c) = (parts.next(), parts.next(), parts.next()) else {
                return Err(error(n, "a chain declaration without a policy", raw));
            };
            let counters = match c {
                Some(c) => counters(c).ok_or_else(|| error(n, "malformed chain counters", raw))?,
                None => Counters::default(),
            };
            table.chains.push(Chain {
                name: name.to_owned(),
                policy: (policy != "-").then(|| policy.to_owned()),
                counters,
            });
            continue;
        }
        let mut tokens = tokenize(line).map_err(|reason| error(n, reason, raw))?;
        let mut c = None;
        if tokens.first().is_some_and(|t| t.starts_with('[')) {
            c = Some(counters(&tokens[0]).ok_or_else(|| error(n, "malformed rule counters", raw))?);
            tokens.remove(0);
        }
        if tokens.len() < 2 || tokens[0] != "-A" {
            return Err(error(n, "expected a rule (-A CHAIN …)", raw));
        }
        let args = tokens.split_off(2);
        let chain = tokens.swap_remove(1);
        table.rules.push(SavedRule {
            chain,
            rule: Rule { args, counters: c },
        });
    }
    if open.is_some() {
        return Err(error(
            text.lines().count(),
            "the output ends without COMMIT",
            "",
        ));
    }
    Ok(dump)
}

impl Dump {
    /// The table of that name, if printed.
    pub fn table(&self, name: &str) -> Option<&Table> {
        self.tables.iter().find(|t| t.name == name)
    }

    /// Number of rules in every table (how a variant "holds rules").
    pub fn rule_count(&self) -> usize {
        self.tables.iter().map(|t| t.rules.len()).sum()
    }

    /// zt's chains and jump rules in the `filter` table.
    pub fn owned(&self, prefix: &ChainPrefix) -> Owned {
        let mut owned = Owned::default();
        let Some(filter) = self.table("filter") else {
            return owned;
        };
        for chain in &filter.chains {
            if chain.policy.is_none() && prefix.owns(&chain.name) {
                owned.chains.insert(chain.name.clone(), Vec::new());
            }
        }
        let builtin = |name: &str| {
            filter
                .chains
                .iter()
                .any(|c| c.name == name && c.policy.is_some())
        };
        let mut position: Vec<(&str, usize)> = Vec::new();
        for saved in &filter.rules {
            if let Some(rules) = owned.chains.get_mut(&saved.chain) {
                rules.push(saved.rule.clone());
                continue;
            }
            if !builtin(&saved.chain) {
                continue;
            }
            let at = match position.iter_mut().find(|(c, _)| *c == saved.chain) {
                Some((_, p)) => {
                    *p += 1;
                    *p
                }
                None => {
                    position.push((&saved.chain, 1));
                    1
                }
            };
            if saved.rule.target().is_some_and(|t| prefix.owns(t)) {
                owned.jumps.push(Jump {
                    chain: saved.chain.clone(),
                    position: at,
                    rule: saved.rule.clone(),
                });
            }
        }
        owned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `iptables-nft-save -c` output with a foreign chain, zt's chains and jumps.
    const SAVED: &str = r#"# Generated by iptables-nft-save v1.8.9 (nf_tables) on Mon Nov 23 19:23:06 2026
*filter
:INPUT ACCEPT [10:840]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [3:180]
:DOCKER-USER - [0:0]
:ZT-INPUT - [0:0]
:ZT-OUTPUT - [0:0]
[7:420] -A INPUT -m comment --comment "zt:jump" -j ZT-INPUT
[0:0] -A FORWARD -j DOCKER-USER
[0:0] -A OUTPUT -o eth0 -j ACCEPT
[5:300] -A OUTPUT -m comment --comment "zt:jump" -j ZT-OUTPUT
[0:0] -A DOCKER-USER -j RETURN
[7:420] -A ZT-INPUT -i lo -m comment --comment "zt:loopback" -j ACCEPT
[2:120] -A ZT-OUTPUT -d 127.0.0.1/32 -p tcp -m owner --uid-owner 1001 -m tcp --dport 6379 -m comment --comment web-to-redis -j ACCEPT
[3:180] -A ZT-OUTPUT -m limit --limit 10/sec -m comment --comment "zt:log" -j LOG --log-prefix "ZT-BLOCKED: " --log-uid
COMMIT
# Completed on Mon Nov 23 19:23:06 2026
*nat
:PREROUTING ACCEPT [0:0]
-A PREROUTING -j RETURN
COMMIT
"#;

    #[test]
    fn tables_chains_rules_and_counters_are_read() {
        let dump = parse(SAVED).unwrap();
        assert_eq!(dump.tables.len(), 2);
        assert_eq!(dump.rule_count(), 9);
        let filter = dump.table("filter").unwrap();
        assert_eq!(filter.chains[0].policy.as_deref(), Some("ACCEPT"));
        assert_eq!(
            filter.chains[0].counters,
            Counters {
                packets: 10,
                bytes: 840
            }
        );
        assert_eq!(filter.chains[3].policy, None);
        let log = &filter.rules[7];
        assert_eq!(log.chain, "ZT-OUTPUT");
        assert_eq!(log.rule.comment(), Some("zt:log"));
        assert_eq!(
            log.rule.counters,
            Some(Counters {
                packets: 3,
                bytes: 180
            })
        );
        assert_eq!(log.rule.args.last().map(String::as_str), Some("--log-uid"));
        assert!(log.rule.args.iter().any(|a| a == "ZT-BLOCKED: "));
    }

    #[test]
    fn zt_owns_its_chains_and_the_jumps_into_them_with_positions() {
        let owned = parse(SAVED).unwrap().owned(&ChainPrefix::default());
        assert_eq!(
            owned.chains.keys().collect::<Vec<_>>(),
            vec!["ZT-INPUT", "ZT-OUTPUT"]
        );
        assert_eq!(owned.chains["ZT-OUTPUT"].len(), 2);
        let jumps: Vec<(&str, usize)> = owned
            .jumps
            .iter()
            .map(|j| (j.chain.as_str(), j.position))
            .collect();
        assert_eq!(jumps, vec![("INPUT", 1), ("OUTPUT", 2)]);
    }

    #[test]
    fn output_without_a_filter_table_owns_nothing() {
        assert!(parse("").unwrap().owned(&ChainPrefix::default()).is_empty());
        let nat_only = "*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n";
        assert!(
            parse(nat_only)
                .unwrap()
                .owned(&ChainPrefix::default())
                .is_empty()
        );
    }

    #[test]
    fn quotes_and_escapes_are_undone() {
        assert_eq!(
            tokenize(r#"-A X --comment "a \"b\" c" --path "/x/y" plain"#).unwrap(),
            vec![
                "-A",
                "X",
                "--comment",
                "a \"b\" c",
                "--path",
                "/x/y",
                "plain"
            ]
        );
        assert_eq!(tokenize(r#"--comment """#).unwrap(), vec!["--comment", ""]);
        assert!(tokenize(r#"--comment "open"#).is_err());
    }

    #[test]
    fn malformed_output_is_refused_with_its_line() {
        for (text, line) in [
            ("-A X -j ACCEPT\n", 1),
            ("*filter\n:INPUT\nCOMMIT\n", 2),
            ("*filter\n-I X -j ACCEPT\nCOMMIT\n", 2),
            ("*filter\n[1:x] -A X -j ACCEPT\nCOMMIT\n", 2),
            ("*filter\n:INPUT ACCEPT [0:0]\n", 2),
        ] {
            match parse(text) {
                Err(IptablesError::Parse { line: l, .. }) => assert_eq!(l, line, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
    }
}
