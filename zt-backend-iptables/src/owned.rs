//! What zt owns in one family's `filter` table: its chains with their rules, and the jump
//! rules that reach them from built-in chains.
//!
//! The renderer produces this shape for the desired state, the `iptables-save` parser for the
//! current one, and snapshots store it; plans, restore inputs and drift are computed between
//! two of them. Rules are kept as argument vectors exactly as `iptables-save` prints them (the
//! renderer writes that form too), so the two sides compare token by token.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The comment zt puts on its jump rules.
pub const JUMP_COMMENT: &str = "zt:jump";

/// The prefix of every chain zt owns (`ZT` by default: `ZT-OUTPUT`, `ZT-INPUT`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainPrefix(String);

impl ChainPrefix {
    /// A prefix, if `<prefix>-OUTPUT` is a valid chain name (at most 28 characters) made of
    /// characters that need no quoting anywhere.
    pub fn new(prefix: &str) -> Option<Self> {
        let ok = !prefix.is_empty()
            && prefix.len() <= 21
            && prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'));
        ok.then(|| Self(prefix.to_owned()))
    }

    /// The prefix itself.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The egress chain, reached from `OUTPUT`.
    pub fn output(&self) -> String {
        format!("{}-OUTPUT", self.0)
    }

    /// The ingress chain, reached from `INPUT`.
    pub fn input(&self) -> String {
        format!("{}-INPUT", self.0)
    }

    /// Whether zt owns a chain of this name.
    pub fn owns(&self, chain: &str) -> bool {
        chain.len() > self.0.len() + 1
            && chain.starts_with(self.0.as_str())
            && chain.as_bytes().get(self.0.len()) == Some(&b'-')
    }
}

impl Default for ChainPrefix {
    fn default() -> Self {
        Self("ZT".to_owned())
    }
}

/// Packet and byte counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Packets.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
}

/// One rule: every argument after `-A <chain>`, the comment included, and the counters the
/// kernel reported for it. A rule *is* its arguments: counters are state, not identity, so
/// they take no part in comparisons (or snapshots).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Rule {
    /// The arguments, unquoted.
    pub args: Vec<String>,
    /// Its counters, when read with `iptables-save -c`.
    #[serde(skip)]
    pub counters: Option<Counters>,
}

impl PartialEq for Rule {
    fn eq(&self, other: &Self) -> bool {
        self.args == other.args
    }
}

impl Eq for Rule {}

impl Rule {
    /// A rule of these arguments, without counters.
    pub fn new(args: Vec<String>) -> Self {
        Self {
            args,
            counters: None,
        }
    }

    /// The `-m comment --comment` text: the policy rule name or `zt:` entry the rule belongs to.
    pub fn comment(&self) -> Option<&str> {
        comment_at(&self.args).map(|i| self.args[i + 3].as_str())
    }

    /// The rule without its comment, as one line (tokens quoted where needed): what plan and
    /// verify compare.
    pub fn canonical(&self) -> String {
        let skip = comment_at(&self.args);
        let kept = self
            .args
            .iter()
            .enumerate()
            .filter(|(i, _)| skip.is_none_or(|s| *i < s || *i > s + 3))
            .map(|(_, a)| a.as_str());
        join(kept)
    }

    /// The target (`-j X` or `-g X`), if any.
    pub fn target(&self) -> Option<&str> {
        let i = self.args.iter().rposition(|a| a == "-j" || a == "-g")?;
        self.args.get(i + 1).map(String::as_str)
    }

    /// The arguments as one line, quoted where needed, for a restore input.
    pub fn line(&self) -> String {
        join(self.args.iter().map(String::as_str))
    }
}

/// Index of `-m` in the first `-m comment --comment X` sequence.
fn comment_at(args: &[String]) -> Option<usize> {
    args.windows(4)
        .position(|w| w[0] == "-m" && w[1] == "comment" && w[2] == "--comment")
}

/// A jump rule in a built-in chain into one of zt's chains.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jump {
    /// The built-in chain (`OUTPUT`, `INPUT`).
    pub chain: String,
    /// Its 1-based position in that chain.
    pub position: usize,
    /// The rule.
    pub rule: Rule,
}

/// zt's state in one family's `filter` table.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owned {
    /// zt's chains by name (sorted, as `iptables-save` prints them), each with its rules.
    pub chains: BTreeMap<String, Vec<Rule>>,
    /// Jump rules into zt's chains, in the order `iptables-save` prints them.
    pub jumps: Vec<Jump>,
}

impl Owned {
    /// True when zt owns nothing here.
    pub fn is_empty(&self) -> bool {
        self.chains.is_empty() && self.jumps.is_empty()
    }

    /// The built-in chains that hold jumps here or in `other`, sorted.
    pub fn hooked_with<'a>(&'a self, other: &'a Owned) -> Vec<&'a str> {
        let mut v: Vec<&str> = self
            .jumps
            .iter()
            .chain(&other.jumps)
            .map(|j| j.chain.as_str())
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// The jumps in one built-in chain.
    pub fn jumps_in<'a>(&'a self, chain: &'a str) -> impl Iterator<Item = &'a Jump> + 'a {
        self.jumps.iter().filter(move |j| j.chain == chain)
    }
}

/// Quote a token for a restore input the way `iptables-save` does when it must: in double
/// quotes, with `"` and `\` escaped. Tokens that need no quoting are returned as they are.
pub fn quote(token: &str) -> std::borrow::Cow<'_, str> {
    let plain = !token.is_empty()
        && !token
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '\\' | '#'));
    if plain {
        return token.into();
    }
    let mut s = String::with_capacity(token.len() + 2);
    s.push('"');
    for c in token.chars() {
        if matches!(c, '"' | '\\') {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('"');
    s.into()
}

/// Tokens joined by single spaces, each quoted where needed.
pub fn join<'a>(tokens: impl IntoIterator<Item = &'a str>) -> String {
    let mut s = String::new();
    for (i, t) in tokens.into_iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(&quote(t));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(args: &[&str]) -> Rule {
        Rule::new(args.iter().map(|s| (*s).to_owned()).collect())
    }

    #[test]
    fn the_comment_is_found_and_left_out_of_the_canonical_form() {
        let r = rule(&[
            "-p",
            "tcp",
            "-m",
            "comment",
            "--comment",
            "web-to-redis",
            "-j",
            "LOG",
            "--log-prefix",
            "ZT-BLOCKED: ",
        ]);
        assert_eq!(r.comment(), Some("web-to-redis"));
        assert_eq!(r.canonical(), "-p tcp -j LOG --log-prefix \"ZT-BLOCKED: \"");
        assert_eq!(r.target(), Some("LOG"));
        assert_eq!(
            r.line(),
            "-p tcp -m comment --comment web-to-redis -j LOG --log-prefix \"ZT-BLOCKED: \""
        );
    }

    #[test]
    fn a_rule_without_comment_has_none() {
        let r = rule(&["-j", "ACCEPT"]);
        assert_eq!(r.comment(), None);
        assert_eq!(r.canonical(), "-j ACCEPT");
    }

    #[test]
    fn quoting_escapes_what_the_restore_parser_would_split() {
        assert_eq!(quote("plain"), "plain");
        assert_eq!(quote(""), "\"\"");
        assert_eq!(quote("a \"b\\"), "\"a \\\"b\\\\\"");
    }

    #[test]
    fn the_prefix_owns_its_chains_only() {
        let p = ChainPrefix::default();
        assert!(p.owns("ZT-OUTPUT"));
        assert!(p.owns("ZT-X"));
        assert!(!p.owns("ZT-"));
        assert!(!p.owns("ZTX-OUTPUT"));
        assert!(!p.owns("DOCKER-USER"));
        assert!(ChainPrefix::new("a-very-long-prefix-22c").is_none());
        assert!(ChainPrefix::new("bad prefix").is_none());
        assert!(ChainPrefix::new("").is_none());
    }
}
