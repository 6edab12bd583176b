//! From a [`Ruleset`] to zt's nftables table (pure).
//!
//! Every ruleset entry keeps its place in the first-match order of the chain of its hook
//! (`output` for egress, `input` for ingress, both for entries on both). A policy rule expands
//! into *tuples* — one per family × network × protocol × port range it covers. Small policies
//! become plain rules, one per tuple, which read like the policy in `nft list ruleset`.
//!
//! Large policies would cost a linear walk per new connection (about 0.69 ms at 10 000 rules
//! on this kernel), so a *run* of consecutive rules with the same hook and the same verdict
//! (logging included) compiles into one lookup per key shape in a concatenated interval set
//! (`meta skuid . ip daddr . meta l4proto . th dport`, per family), with a counter and the
//! rule's name on every element. First-match order is kept exactly: all rules of a run share
//! the verdict, so which of their elements matches decides nothing; an element wholly inside an
//! earlier element of the same set is left out (the earlier rule matches first anyway), and an
//! element that partly overlaps one ends the run, so the kernel never sees overlapping
//! intervals.
//!
//! zt's own entries are always plain rules; those that hold a rule match (the SSH failsafe,
//! the log and the default) expand into tuples like a policy rule. `tuple` expands matches
//! and renders tuples; `run` collects runs into sets.

mod run;
mod tuple;

use crate::model::{Chain, CtStates, Dir, Hook, L4, RejectWith, Rule, Set, Stmt, Table};
use run::Run;
use tuple::{tuple_stmts, tuples};
use zt_core::policy::PortRangeParts;
use zt_core::ruleset::{
    EntryParts, Hook as EntryHook, ICMPV6_LINK_TYPES, LogSpec, LogSpecParts, Matcher, Origin,
};
use zt_core::{RuleMatch, Ruleset, Verdict};

/// Runs with fewer tuples than this stay plain rules: they are cheap to walk and easier to read.
pub const SET_MIN_TUPLES: usize = 4;

/// The helper chain every `reject` jumps to: a TCP reset for TCP, ICMP(v6) port unreachable
/// for everything else.
pub const REJECT_CHAIN: &str = "zt-reject";

/// Builds the table.
struct Compiler<'a> {
    name: String,
    output: Vec<Rule>,
    input: Vec<Rule>,
    sets: Vec<Set>,
    helpers: Vec<Chain>,
    runs: [Option<Run<'a>>; 2],
    next_set: usize,
}

fn hook_index(h: Hook) -> usize {
    match h {
        Hook::Output => 0,
        Hook::Input => 1,
    }
}

fn dir_of(h: Hook) -> Dir {
    match h {
        Hook::Output => Dir::Dst,
        Hook::Input => Dir::Src,
    }
}

fn hooks(h: EntryHook) -> &'static [Hook] {
    match h {
        EntryHook::Egress => &[Hook::Output],
        EntryHook::Ingress => &[Hook::Input],
        EntryHook::Both => &[Hook::Output, Hook::Input],
    }
}

/// A rate-limited log statement.
fn log_stmts(log: &LogSpec) -> Vec<Stmt> {
    let LogSpecParts { prefix, rate } = log.parts();
    vec![Stmt::Limit(rate), Stmt::Log(prefix.as_str().to_owned())]
}

/// Consecutive numbers grouped into ranges: [130..=136, 143].
fn ranges(types: &[u8]) -> Vec<(u8, u8)> {
    let mut out: Vec<(u8, u8)> = Vec::new();
    for &t in types {
        match out.last_mut() {
            Some((_, b)) if u16::from(*b) + 1 == u16::from(t) => *b = t,
            _ => out.push((t, t)),
        }
    }
    out
}

impl<'a> Compiler<'a> {
    fn chain(&mut self, h: Hook) -> &mut Vec<Rule> {
        match h {
            Hook::Output => &mut self.output,
            Hook::Input => &mut self.input,
        }
    }

    fn plain(&mut self, h: Hook, stmts: Vec<Stmt>, comment: &str) {
        self.chain(h).push(Rule {
            stmts,
            comment: comment.to_owned(),
        });
    }

    /// The helper chain that logs (rate-limited) and then applies `verdict`.
    fn log_chain(&mut self, log: &LogSpec, verdict: Verdict) -> String {
        let base = match verdict {
            Verdict::Accept => "zt-log-accept",
            Verdict::Drop => "zt-log-drop",
            Verdict::Reject => "zt-log-reject",
        };
        let log_stmts = log_stmts(log);
        let mut name = base.to_owned();
        for n in 2.. {
            match self.helpers.iter().find(|c| c.name == name) {
                None => break,
                Some(c) if c.rules.first().map(|r| &r.stmts) == Some(&log_stmts) => return name,
                Some(_) => name = format!("{base}-{n}"),
            }
        }
        let then = match verdict {
            Verdict::Accept => Stmt::Accept,
            Verdict::Drop => Stmt::Drop,
            Verdict::Reject => Stmt::Jump(self.reject_chain()),
        };
        let comment = format!("zt:{}", name.trim_start_matches("zt-"));
        self.helpers.push(Chain {
            name: name.clone(),
            hook: None,
            rules: vec![
                Rule {
                    stmts: log_stmts,
                    comment: comment.clone(),
                },
                Rule {
                    stmts: vec![then],
                    comment,
                },
            ],
        });
        name
    }

    fn reject_chain(&mut self) -> String {
        if !self.helpers.iter().any(|c| c.name == REJECT_CHAIN) {
            self.helpers.push(Chain {
                name: REJECT_CHAIN.to_owned(),
                hook: None,
                rules: vec![
                    Rule {
                        stmts: vec![Stmt::L4Proto(L4::Tcp), Stmt::Reject(RejectWith::TcpReset)],
                        comment: "zt:reject".into(),
                    },
                    Rule {
                        stmts: vec![Stmt::Reject(RejectWith::IcmpxPortUnreachable)],
                        comment: "zt:reject".into(),
                    },
                ],
            });
        }
        REJECT_CHAIN.to_owned()
    }

    /// The statements that end a rule with an entry's verdict (and its log, if any).
    fn verdict(&mut self, log: Option<&LogSpec>, v: Verdict) -> Vec<Stmt> {
        if let Some(log) = log {
            return vec![Stmt::Jump(self.log_chain(log, v))];
        }
        vec![match v {
            Verdict::Accept => Stmt::Accept,
            Verdict::Drop => Stmt::Drop,
            Verdict::Reject => Stmt::Jump(self.reject_chain()),
        }]
    }

    /// Emit what a finished run holds: plain rules when small, set lookups otherwise.
    fn close(&mut self, h: Hook) {
        let Some(run) = self.runs[hook_index(h)].take() else {
            return;
        };
        let dir = dir_of(h);
        if run.tuples < SET_MIN_TUPLES {
            for (name, ts) in &run.rules {
                for t in ts {
                    let mut stmts = tuple_stmts(t, dir);
                    stmts.push(Stmt::Counter);
                    stmts.extend(run.verdict.iter().cloned());
                    self.plain(h, stmts, name);
                }
            }
            return;
        }
        for (shape, mut filling) in run.fillings {
            let name = format!("s{}", self.next_set);
            self.next_set += 1;
            filling.set.name = name.clone();
            filling.set.hash_networks();
            let mut stmts = Vec::with_capacity(3);
            if let Some(f) = shape.family {
                stmts.push(Stmt::NfProto(f));
            }
            stmts.push(Stmt::Lookup(filling.set.fields.clone(), name.clone()));
            stmts.extend(run.verdict.iter().cloned());
            self.plain(h, stmts, &format!("zt:set:{name}"));
            self.sets.push(filling.set);
        }
    }

    fn policy_rule(
        &mut self,
        name: &'a str,
        hook: EntryHook,
        log: Option<&LogSpec>,
        m: &'a RuleMatch,
        v: Verdict,
    ) {
        let verdict = self.verdict(log, v);
        let ts = tuples(m);
        for &h in hooks(hook) {
            let dir = dir_of(h);
            let i = hook_index(h);
            let joined = match &mut self.runs[i] {
                Some(run) if run.verdict == verdict => run.add(name, &ts, dir),
                _ => false,
            };
            if joined {
                continue;
            }
            self.close(h);
            let mut run = Run::new(verdict.clone());
            if !run.add(name, &ts, dir) {
                // Not keyable (a cgroup, or a single-field match): a run of its own, plain.
                run.rules.push((name, ts.clone()));
                run.tuples = 0;
                self.runs[i] = Some(run);
                self.close(h);
            } else {
                self.runs[i] = Some(run);
            }
        }
    }

    /// One of zt's own entries: plain rules after closing the runs of its hooks. They never
    /// join a run, so each stays a rule of its own in `nft list ruleset`, with its counter.
    fn own(
        &mut self,
        name: &str,
        hook: EntryHook,
        matcher: &Matcher,
        log: Option<&LogSpec>,
        v: Option<Verdict>,
    ) {
        for &h in hooks(hook) {
            self.close(h);
        }
        let log = log.map(log_stmts);
        let tail = match v {
            Some(Verdict::Accept) => vec![Stmt::Counter, Stmt::Accept],
            Some(Verdict::Drop) => vec![Stmt::Counter, Stmt::Drop],
            Some(Verdict::Reject) => vec![Stmt::Counter, Stmt::Jump(self.reject_chain())],
            None => Vec::new(),
        };
        for &h in hooks(hook) {
            let matches: Vec<Vec<Stmt>> = match matcher {
                // The SSH failsafe, the log and the default: a tuple per rule, as for a policy
                // rule that stays plain.
                Matcher::Rule(m) => tuples(m)
                    .iter()
                    .map(|t| tuple_stmts(t, dir_of(h)))
                    .collect(),
                Matcher::CtInvalid => vec![vec![Stmt::CtState(CtStates::Invalid)]],
                Matcher::CtEstablished => vec![vec![Stmt::CtState(CtStates::EstablishedRelated)]],
                Matcher::Loopback => vec![vec![Stmt::IifLoopback]],
                Matcher::Icmpv6Link => ranges(&ICMPV6_LINK_TYPES)
                    .into_iter()
                    .map(|(a, b)| vec![Stmt::Icmpv6Type(a, b)])
                    .collect(),
                Matcher::SshReplies(p) => p
                    .ranges()
                    .unwrap_or(&[])
                    .iter()
                    .map(|r| {
                        let PortRangeParts { first, last } = r.parts();
                        vec![
                            Stmt::Port(L4::Tcp, Dir::Src, first, last),
                            Stmt::CtState(CtStates::Established),
                        ]
                    })
                    .collect(),
            };
            for mut stmts in matches {
                stmts.extend(log.iter().flatten().cloned());
                stmts.extend(tail.iter().cloned());
                self.plain(h, stmts, name);
            }
        }
    }
}

/// Compile a ruleset into table `name`.
pub fn compile(ruleset: &Ruleset, name: &str) -> Table {
    let mut c = Compiler {
        name: name.to_owned(),
        output: Vec::new(),
        input: Vec::new(),
        sets: Vec::new(),
        helpers: Vec::new(),
        runs: [None, None],
        next_set: 0,
    };
    for e in ruleset.entries() {
        let EntryParts {
            name,
            origin,
            hook,
            matcher,
            log,
            verdict,
        } = e.parts();
        match (origin, matcher, verdict) {
            (Origin::Rule(_), Matcher::Rule(m), Some(v)) => c.policy_rule(name, hook, log, m, v),
            _ => c.own(name, hook, matcher, log, verdict),
        }
    }
    c.close(Hook::Output);
    c.close(Hook::Input);
    let mut chains = std::mem::take(&mut c.helpers);
    chains.push(Chain {
        name: "output".into(),
        hook: Some(Hook::Output),
        rules: c.output,
    });
    chains.push(Chain {
        name: "input".into(),
        hook: Some(Hook::Input),
        rules: c.input,
    });
    Table {
        name: c.name,
        sets: c.sets,
        chains,
    }
}
