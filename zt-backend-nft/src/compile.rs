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

use crate::model::{
    Chain, CtStates, Dir, Element, Family, Field, Hook, L4, RejectWith, Rule, Set, Stmt, Table,
    Value,
};
use foldhash::HashMap;
use ipnet::IpNet;
use zt_core::policy::{AddressSetParts, Identity, PortRangeParts, Protocol, RuleMatchParts};
use zt_core::ruleset::{
    EntryParts, Hook as EntryHook, ICMPV6_LINK_TYPES, LogSpec, LogSpecParts, Matcher, Origin,
};
use zt_core::{RuleMatch, Ruleset, Verdict};

/// Runs with fewer tuples than this stay plain rules: they are cheap to walk and easier to read.
pub const SET_MIN_TUPLES: usize = 4;

/// The helper chain every `reject` jumps to: a TCP reset for TCP, ICMP(v6) port unreachable
/// for everything else.
pub const REJECT_CHAIN: &str = "zt-reject";

/// One point of a rule's match: a sender, at most one network, protocol and port range.
/// It borrows the rule's identity: a large run holds thousands of tuples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Tuple<'a> {
    identity: &'a Identity,
    /// A family restriction without a network (`0.0.0.0/0`, or ICMP of one family).
    family: Option<Family>,
    net: Option<IpNet>,
    l4: Option<L4>,
    ports: Option<(u16, u16)>,
}

fn family(n: &IpNet) -> Family {
    match n {
        IpNet::V4(_) => Family::V4,
        IpNet::V6(_) => Family::V6,
    }
}

/// Every tuple of a rule's match.
fn tuples(m: &RuleMatch) -> Vec<Tuple<'_>> {
    let RuleMatchParts {
        identity,
        peers,
        ports,
        protocol,
    } = m.parts();
    let AddressSetParts { v4, v6 } = peers.parts();
    // (family restriction, network) pairs.
    let mut places: Vec<(Option<Family>, Option<IpNet>)> = Vec::new();
    if peers.is_any() {
        if protocol == Protocol::Icmp {
            places.extend([(Some(Family::V4), None), (Some(Family::V6), None)]);
        } else {
            places.push((None, None));
        }
    } else {
        match v4.nets() {
            None => places.push((Some(Family::V4), None)),
            Some(nets) => places.extend(nets.iter().map(|&n| (Some(Family::V4), Some(n.into())))),
        }
        match v6.nets() {
            None => places.push((Some(Family::V6), None)),
            Some(nets) => places.extend(nets.iter().map(|&n| (Some(Family::V6), Some(n.into())))),
        }
    }
    let protos = |fam: Option<Family>| -> &'static [Option<L4>] {
        match protocol {
            Protocol::Any => &[None],
            Protocol::Tcp => &[Some(L4::Tcp)],
            Protocol::Udp => &[Some(L4::Udp)],
            Protocol::Both => &[Some(L4::Tcp), Some(L4::Udp)],
            Protocol::Icmp => match fam {
                Some(Family::V6) => &[Some(L4::Icmpv6)],
                _ => &[Some(L4::Icmp)],
            },
        }
    };
    let ranges = ports.ranges();
    let mut out = Vec::with_capacity(places.len() * ranges.map_or(1, <[_]>::len));
    for (fam, net) in places {
        let fam_of_place = fam.or(net.as_ref().map(family));
        for &l4 in protos(fam_of_place) {
            let mut push = |ports| {
                out.push(Tuple {
                    identity,
                    family: if net.is_some() { None } else { fam },
                    net,
                    l4,
                    ports,
                });
            };
            match ranges {
                None => push(None),
                Some(r) => r.iter().for_each(|x| {
                    let PortRangeParts { first, last } = x.parts();
                    push(Some((first, last)));
                }),
            }
        }
    }
    out
}

/// The statements matching one tuple, in nft's order.
fn tuple_stmts(t: &Tuple, dir: Dir) -> Vec<Stmt> {
    let mut s = Vec::with_capacity(4);
    match t.identity {
        Identity::Any => {}
        Identity::User { uid, name: _ } => s.push(Stmt::SkUid(*uid)),
        Identity::Group { gid, name: _ } => s.push(Stmt::SkGid(*gid)),
        Identity::Cgroup(p) => s.push(Stmt::Cgroup {
            level: u32::try_from(p.level()).unwrap_or(u32::MAX),
            path: p.as_str().to_owned(),
            id: None,
        }),
    }
    match (t.net, t.family) {
        (Some(n), _) => s.push(Stmt::Addr(dir, n)),
        (None, Some(f)) => s.push(Stmt::NfProto(f)),
        (None, None) => {}
    }
    match (t.l4, t.ports) {
        (Some(l4), Some((a, b))) => s.push(Stmt::Port(l4, Dir::Dst, a, b)),
        (Some(l4), None) => s.push(Stmt::L4Proto(l4)),
        (None, _) => {}
    }
    s
}

/// The key shape of a tuple in a set: its fields (at most four: identity, network, protocol,
/// port; held inline, as every tuple of a run has one) and any family restriction outside the
/// key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Shape {
    fields: [Option<Field>; 4],
    family: Option<Family>,
}

impl Shape {
    fn fields(&self) -> Vec<Field> {
        self.fields.iter().flatten().copied().collect()
    }
}

/// The shape and key values of a tuple, when it can live in a set (two fields or more, and
/// no cgroup: nftables cannot key a set by a cgroup at an ancestor level).
fn keyed(t: &Tuple, dir: Dir) -> Option<(Shape, Vec<Value>)> {
    let mut fields = [None; 4];
    let mut values = Vec::with_capacity(4);
    let mut push = |field: Field, value: Value| {
        fields[values.len()] = Some(field);
        values.push(value);
    };
    match t.identity {
        Identity::Any => {}
        Identity::User { uid, name: _ } => push(Field::SkUid, Value::Id(*uid)),
        Identity::Group { gid, name: _ } => push(Field::SkGid, Value::Id(*gid)),
        Identity::Cgroup(_) => return None,
    }
    if let Some(n) = t.net {
        push(Field::Addr(family(&n), dir), Value::Net(n));
    }
    if let Some(l4) = t.l4 {
        push(Field::L4Proto, Value::Proto(l4));
    }
    if let Some((a, b)) = t.ports {
        push(Field::Port(Dir::Dst), Value::Ports(a, b));
    }
    (values.len() >= 2).then_some((
        Shape {
            fields,
            family: t.family,
        },
        values,
    ))
}

/// How two key values relate.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Overlap {
    Disjoint,
    /// The first contains the second.
    Contains,
    Partial,
}

fn overlap(a: &Value, b: &Value) -> Overlap {
    match (a, b) {
        (Value::Id(x), Value::Id(y)) if x == y => Overlap::Contains,
        (Value::Proto(x), Value::Proto(y)) if x == y => Overlap::Contains,
        (Value::Net(x), Value::Net(y)) => {
            if x.contains(y) {
                Overlap::Contains
            } else if y.contains(x) {
                Overlap::Partial
            } else {
                Overlap::Disjoint
            }
        }
        (Value::Ports(a1, b1), Value::Ports(a2, b2)) => {
            if a1 <= a2 && b2 <= b1 {
                Overlap::Contains
            } else if b1 < a2 || b2 < a1 {
                Overlap::Disjoint
            } else {
                Overlap::Partial
            }
        }
        _ => Overlap::Disjoint,
    }
}

/// Where a new element stands against the elements already in a set.
enum Placement {
    New,
    Covered,
    Conflicts,
}

/// The exact fields of a key: its id and its protocol. Every element of a set has the same
/// fields, so the values alone tell two keys apart.
type ExactKey = (Option<u32>, Option<u8>);

/// A set being filled, with indexes that keep overlap checks cheap: elements by their exact
/// key fields (ids, protocol), and among those, single-port elements by port apart from
/// elements with a port range. A new single-port element can only overlap elements with its
/// port or with a range; only a new range needs every element with its exact fields.
struct Filling {
    set: Set,
    by_exact: HashMap<ExactKey, Vec<usize>>,
    by_port: HashMap<(ExactKey, u16), Vec<usize>>,
    ranged: HashMap<ExactKey, Vec<usize>>,
}

fn exact_key(values: &[Value]) -> ExactKey {
    let mut key = (None, None);
    for v in values {
        match v {
            Value::Id(n) => key.0 = Some(*n),
            Value::Proto(p) => key.1 = Some(p.number()),
            Value::Net(_) | Value::Ports(..) => {}
        }
    }
    key
}

/// The single port of a key, if it has a port field holding one port.
fn single_port(values: &[Value]) -> Option<u16> {
    values.iter().find_map(|v| match v {
        Value::Ports(a, b) if a == b => Some(*a),
        _ => None,
    })
}

/// Whether a key has a port field holding a range.
fn has_port_range(values: &[Value]) -> bool {
    values
        .iter()
        .any(|v| matches!(v, Value::Ports(a, b) if a != b))
}

impl Filling {
    fn new(fields: Vec<Field>) -> Self {
        Filling {
            set: Set {
                name: String::new(),
                fields,
                interval: false,
                elements: Vec::new(),
            },
            by_exact: HashMap::default(),
            by_port: HashMap::default(),
            ranged: HashMap::default(),
        }
    }

    fn place(&self, values: &[Value]) -> Placement {
        let key = exact_key(values);
        let none: &[usize] = &[];
        let (first, then) = match single_port(values) {
            Some(port) => (
                self.by_port.get(&(key, port)).map_or(none, Vec::as_slice),
                self.ranged.get(&key).map_or(none, Vec::as_slice),
            ),
            None => (self.by_exact.get(&key).map_or(none, Vec::as_slice), none),
        };
        for &i in first.iter().chain(then) {
            let old = &self.set.elements[i].values;
            let mut all_contain = true;
            let mut disjoint = false;
            for (a, b) in old.iter().zip(values) {
                match overlap(a, b) {
                    Overlap::Disjoint => {
                        disjoint = true;
                        break;
                    }
                    Overlap::Partial => all_contain = false,
                    Overlap::Contains => {}
                }
            }
            if disjoint {
                continue;
            }
            return if all_contain {
                Placement::Covered
            } else {
                Placement::Conflicts
            };
        }
        Placement::New
    }

    fn push(&mut self, values: Vec<Value>, comment: &str) {
        self.set.interval |= values.iter().any(|v| match v {
            Value::Net(n) => n.prefix_len() < n.max_prefix_len(),
            Value::Ports(a, b) => a != b,
            Value::Id(_) | Value::Proto(_) => false,
        });
        let index = self.set.elements.len();
        let key = exact_key(&values);
        match single_port(&values) {
            Some(port) => self.by_port.entry((key, port)).or_default().push(index),
            None if has_port_range(&values) => self.ranged.entry(key).or_default().push(index),
            // Without a port field every element has the same port shape: only by_exact.
            None => {}
        }
        self.by_exact.entry(key).or_default().push(index);
        self.set.elements.push(Element {
            values,
            comment: comment.to_owned(),
        });
    }
}

/// A run of consecutive rules being collected for one hook: the rules (for plain rules, if
/// the run stays small) and the sets they fill (if it does not).
struct Run<'a> {
    verdict: Vec<Stmt>,
    /// The rules, while the run is small enough to stay plain rules.
    rules: Vec<(&'a str, Vec<Tuple<'a>>)>,
    tuples: usize,
    /// Shapes in order of first use, each with the set it is filling (a run has a handful).
    fillings: Vec<(Shape, Filling)>,
}

impl<'a> Run<'a> {
    fn new(verdict: Vec<Stmt>) -> Self {
        Self {
            verdict,
            rules: Vec::new(),
            tuples: 0,
            fillings: Vec::new(),
        }
    }

    fn filling(&self, shape: &Shape) -> Option<usize> {
        self.fillings.iter().position(|(s, _)| s == shape)
    }

    /// Add a rule whose tuples are all keyed; `false` (and nothing added) when one of them
    /// partly overlaps an element already in the run's sets.
    fn add(&mut self, name: &'a str, tuples: &[Tuple<'a>], dir: Dir) -> bool {
        let mut placed = Vec::with_capacity(tuples.len());
        for t in tuples {
            let Some((shape, values)) = keyed(t, dir) else {
                return false;
            };
            let placement = self
                .filling(&shape)
                .map_or(Placement::New, |i| self.fillings[i].1.place(&values));
            match placement {
                Placement::Conflicts => return false,
                Placement::Covered => {}
                Placement::New => placed.push((shape, values)),
            }
        }
        for (shape, values) in placed {
            let i = self.filling(&shape).unwrap_or_else(|| {
                self.fillings.push((shape, Filling::new(shape.fields())));
                self.fillings.len() - 1
            });
            self.fillings[i].1.push(values, name);
        }
        self.tuples += tuples.len();
        if self.tuples < SET_MIN_TUPLES {
            self.rules.push((name, tuples.to_vec()));
        } else {
            // The run will be set lookups: its rules are no longer needed.
            self.rules = Vec::new();
        }
        true
    }
}

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
