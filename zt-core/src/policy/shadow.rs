//! Finding rules that can never match because an earlier entry matches everything they do.
//!
//! Comparing every rule with every earlier one is quadratic, which a 10 000-rule policy cannot
//! afford inside its validation budget. Two cuts make it near-linear:
//! - only rules with the same direction and a compatible identity can cover each other, so rules
//!   are grouped by (direction, identity) — an `Any` rule is a candidate for every group, a
//!   cgroup rule for its descendants';
//! - a rule can only cover another if one of its port ranges contains the other's first range,
//!   so each group is indexed by port range ([`SpanIndex`]) and only the rules found there are
//!   compared in full.
//!
//! The group maps hash with foldhash rather than SipHash: keys are small (a uid, a gid, a
//! cgroup path), every rule looks up two or more of them, and foldhash's per-map random seed
//! still keeps a crafted file from degrading the maps.

use super::{Direction, Identity, Policy, Rule, ShortList};
use crate::ruleset::ssh_failsafe;
use foldhash::HashMap;

/// What hides a shadowed rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shadower {
    /// An earlier rule (index into the policy's rules).
    Rule(usize),
    /// The SSH failsafe of the prologue.
    SshFailsafe,
}

/// The policy's rules in evaluation order: priority ascending, ties in file order.
///
/// Most policies give no priorities, or give them ascending: their evaluation order is the
/// file order, which validation notes, so neither the ruleset nor the shadow search reads
/// every rule (a 10 000-rule policy is megabytes) to sort them.
pub(crate) enum Order {
    /// File order, of this many rules.
    File(usize),
    /// Rule indices in evaluation order, and each rule's place in it.
    Sorted { order: Vec<usize>, rank: Vec<usize> },
}

impl Order {
    pub(crate) fn of(policy: &Policy) -> Self {
        let rules = policy.rules();
        if policy.in_file_order() {
            return Order::File(rules.len());
        }
        let mut order: Vec<usize> = (0..rules.len()).collect();
        order.sort_by_key(|&i| rules[i].priority);
        let mut rank = vec![0; rules.len()];
        for (pos, &i) in order.iter().enumerate() {
            rank[i] = pos;
        }
        Order::Sorted { order, rank }
    }

    /// Rule indices in evaluation order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        let (file, sorted) = match self {
            Order::File(n) => (0..*n, &[][..]),
            Order::Sorted { order, .. } => (0..0, &order[..]),
        };
        file.chain(sorted.iter().copied())
    }

    /// The place of rule `i` in evaluation order.
    fn rank(&self, i: usize) -> usize {
        match self {
            Order::File(_) => i,
            Order::Sorted { rank, .. } => rank[i],
        }
    }
}

/// Whether `a` matches every packet `b` matches (same direction assumed).
fn covers(a: &Rule, b: &Rule) -> bool {
    // Only the match decides whether a rule hides another: the search has grouped rules by
    // direction and ordered them by priority, and the rest does not change what matches.
    let Rule {
        name: _,
        description: _,
        direction: _,
        matches,
        action: _,
        priority: _,
        log: _,
        provenance: _,
    } = a;
    matches.covers(&b.matches)
}

/// The rules of one group, indexed by port span: `find` lists the rules whose span contains a
/// given span in O(log n + answers), using a max-tree over the spans sorted by first port.
struct SpanIndex {
    /// `(first, last, rule)`, sorted by `first`.
    spans: ShortList<(u16, u16, usize)>,
    /// `tree[i]`: the greatest `last` in the node's range of `spans` (1-based heap layout);
    /// empty for a group that is scanned.
    tree: Vec<u16>,
    /// `reach[k]`: the greatest `last` of `spans[..k]` (tree groups only). Most rules are
    /// covered by nothing before them, which this answers without walking the tree.
    reach: Vec<u16>,
}

impl SpanIndex {
    /// Groups of at most this many spans (most groups: one sender, a few rules) are scanned,
    /// which is cheaper than building and walking a tree.
    const SCAN: usize = 16;

    fn new(mut spans: ShortList<(u16, u16, usize)>) -> Self {
        spans.as_mut_slice().sort_unstable();
        if spans.len() <= Self::SCAN {
            return Self {
                spans,
                tree: Vec::new(),
                reach: Vec::new(),
            };
        }
        let mut reach = Vec::with_capacity(spans.len() + 1);
        reach.push(0);
        reach.extend(spans.iter().scan(0u16, |max, s| {
            *max = (*max).max(s.1);
            Some(*max)
        }));
        let mut tree = vec![0u16; 2 * spans.len().next_power_of_two()];
        let leaves = tree.len() / 2;
        for (i, s) in spans.iter().enumerate() {
            tree[leaves + i] = s.1;
        }
        for i in (1..leaves).rev() {
            tree[i] = tree[2 * i].max(tree[2 * i + 1]);
        }
        Self { spans, tree, reach }
    }

    /// Every rule whose span contains `first..=last`.
    fn find(&self, first: u16, last: u16, out: &mut Vec<usize>) {
        // Candidates start at or before `first`: a prefix of the sorted spans.
        let prefix = self.spans.partition_point(|s| s.0 <= first);
        if self.tree.is_empty() {
            let containing = self.spans[..prefix].iter().filter(|s| s.1 >= last);
            out.extend(containing.map(|s| s.2));
            return;
        }
        // Those starting exactly at `first` (the querying rule's own span among them) are
        // checked one by one; the tree is walked only when a span starting before `first`
        // reaches `last`.
        let before = self.spans[..prefix].partition_point(|s| s.0 < first);
        let at = self.spans[before..prefix].iter().filter(|s| s.1 >= last);
        out.extend(at.map(|s| s.2));
        if self.reach[before] >= last {
            self.descend(1, 0, self.tree.len() / 2, before, last, out);
        }
    }

    fn descend(
        &self,
        node: usize,
        lo: usize,
        hi: usize,
        prefix: usize,
        last: u16,
        out: &mut Vec<usize>,
    ) {
        if lo >= prefix || self.tree[node] < last {
            return;
        }
        if hi - lo == 1 {
            out.push(self.spans[lo].2);
            return;
        }
        let mid = (lo + hi) / 2;
        self.descend(2 * node, lo, mid, prefix, last, out);
        self.descend(2 * node + 1, mid, hi, prefix, last, out);
    }
}

/// A group of rules: same direction, same sender.
type Group = (Direction, Key);

/// The identity a group is keyed by.
#[derive(Clone, PartialEq, Eq, Hash)]
enum Key {
    Any,
    Uid(u32),
    Gid(u32),
    Cgroup(Box<str>),
}

fn key(identity: &Identity) -> Key {
    match identity {
        Identity::Any => Key::Any,
        Identity::User { uid, name: _ } => Key::Uid(*uid),
        Identity::Group { gid, name: _ } => Key::Gid(*gid),
        Identity::Cgroup(p) => Key::Cgroup(p.as_str().into()),
    }
}

/// What the search needs of one rule, kept in a compact array so that the search does not
/// chase every rule's shared match and port list again.
struct Fact {
    direction: Direction,
    /// Index of the rule's group in the list of groups.
    group: usize,
    /// The rule's first port range (or every port): a cover must contain it.
    first: u16,
    last: u16,
    /// Its sender is a cgroup (whose ancestors' groups may hold a cover).
    cgroup: bool,
    /// No span of an earlier rule (in file order) in its group or its direction's `Any` group
    /// reaches `last`, so no earlier rule covers it: most rules of a large policy. When file
    /// order is evaluation order ([`Order::File`]), such a rule needs no search.
    alone: bool,
}

/// Bands of ports for [`Gather::reach`].
const BANDS: usize = 16;

/// The band of `port`.
fn band(port: u16) -> usize {
    usize::from(port) * BANDS / 65536
}

/// The groups and facts of a policy's rules, gathered one rule at a time as rules are
/// validated: a large file validates while another thread reads it, so this part of the search
/// costs no time of its own there.
#[derive(Default)]
pub(crate) struct Gather {
    /// Each group is looked up by key once per rule, here; the search reaches a rule's own
    /// group and its direction's `Any` group by index.
    ids: HashMap<Group, usize>,
    /// Most groups hold one rule (a uid named once): their spans are kept without a list.
    groups: Vec<ShortList<(u16, u16, usize)>>,
    /// Per group: the greatest `last` of its spans so far that start in each of [`BANDS`]
    /// bands of ports (0: none). A cover of a rule's first span `first..=last` starts at or
    /// before `first`, so only the bands up to `first`'s can hold one: a group with both low
    /// single ports and a high range does not make every later low port a candidate.
    reach: Vec<[u16; BANDS]>,
    facts: Vec<Fact>,
}

impl Gather {
    /// Room for about `rules` rules' facts, so that they are not copied as they grow. The
    /// groups grow as they come: there are usually far fewer groups than rules, and a group
    /// table sized for one group per rule would be written all over (a page fault for every
    /// hundred rules) to hold a few.
    pub(crate) fn with_capacity(rules: usize) -> Self {
        Self {
            facts: Vec::with_capacity(rules),
            ..Self::default()
        }
    }

    /// The gathering of `rules` at once.
    pub(crate) fn of(rules: &[Rule]) -> Self {
        let mut g = Self::with_capacity(rules.len());
        rules.iter().for_each(|r| g.add(r));
        g
    }

    /// Note the next rule of the policy (rules are added in file order).
    pub(crate) fn add(&mut self, r: &Rule) {
        let i = self.facts.len();
        let key = key(r.identity());
        let cgroup = matches!(key, Key::Cgroup(_));
        let next = self.groups.len();
        let group = *self.ids.entry((r.direction, key)).or_insert(next);
        if group == next {
            self.groups.push(ShortList::default());
            self.reach.push([0; BANDS]);
        }
        let any = self.ids.get(&(r.direction, Key::Any)).copied();
        let ranges = r.ports().ranges();
        match ranges {
            None => self.groups[group].push((0, u16::MAX, i)),
            Some(ranges) => {
                for x in ranges {
                    self.groups[group].push((x.first(), x.last(), i));
                }
            }
        }
        // Normalized ranges are disjoint, so a rule is found at most once per group.
        let (first, last) = ranges
            .and_then(<[_]>::first)
            .map_or((0, u16::MAX), |x| (x.first(), x.last()));
        // Before this rule's own spans count: whether a span of an earlier rule that starts in
        // a band up to `first`'s reaches `last`. (Every span ends at port 1 or above.)
        let reaches = |g: Option<usize>| {
            g.is_some_and(|g| self.reach[g][..=band(first)].iter().any(|&m| m >= last))
        };
        let alone = !cgroup && !reaches(Some(group)) && !reaches(any);
        let reach = &mut self.reach[group];
        match ranges {
            None => reach[0] = u16::MAX,
            Some(ranges) => {
                for x in ranges {
                    let m = &mut reach[band(x.first())];
                    *m = (*m).max(x.last());
                }
            }
        }
        self.facts.push(Fact {
            direction: r.direction,
            group,
            first,
            last,
            cgroup,
            alone,
        });
    }
}

/// Every rule that can never match, with the first entry that hides it, in evaluation order.
/// `gather` holds the policy's rules (it is gathered again if it does not).
pub(crate) fn shadowed(policy: &Policy, mut gather: Gather) -> Vec<(usize, Shadower)> {
    let rules = &policy.rules;
    let settings = &policy.settings;
    if gather.facts.len() != rules.len() {
        gather = Gather::of(rules);
    }
    let Gather {
        ids, groups, facts, ..
    } = gather;
    let order = Order::of(policy);
    let file_order = matches!(order, Order::File(_));
    // A group's index is built when a search first needs it (often never).
    let mut groups: Vec<Option<ShortList<(u16, u16, usize)>>> =
        groups.into_iter().map(Some).collect();
    let mut index: Vec<Option<SpanIndex>> =
        std::iter::repeat_with(|| None).take(groups.len()).collect();
    let any = |direction| ids.get(&(direction, Key::Any)).copied();
    let any_group = [any(Direction::Egress), any(Direction::Ingress)];
    // The failsafe precedes every ingress rule.
    let failsafe = settings
        .preserve_ssh
        .then(|| ssh_failsafe(&settings.ssh_ports));

    let mut out = Vec::new();
    let mut candidates = Vec::new();
    let mut searched = Vec::new();
    for (i, fact) in facts.iter().enumerate() {
        // The rule itself is read only when its facts are not enough.
        let ingress = fact.direction == Direction::Ingress;
        if ingress
            && let Some(failsafe) = &failsafe
            && failsafe.covers(rules[i].matches())
        {
            out.push((i, Shadower::SshFailsafe));
            continue;
        }
        if file_order && fact.alone {
            continue;
        }
        let r = &rules[i];
        // The groups that may hold a cover: any sender, the same sender, ancestor cgroups.
        searched.clear();
        let any = any_group[usize::from(ingress)];
        searched.extend(any.filter(|&g| g != fact.group));
        searched.push(fact.group);
        if let (true, Identity::Cgroup(path)) = (fact.cgroup, r.identity()) {
            let path = path.as_str();
            for (at, _) in path.match_indices('/') {
                let ancestor = (fact.direction, Key::Cgroup(path[..at].into()));
                searched.extend(ids.get(&ancestor));
            }
        }
        candidates.clear();
        for &g in &searched {
            if let Some(spans) = groups[g].take() {
                index[g] = Some(SpanIndex::new(spans));
            }
            if let Some(index) = &index[g] {
                index.find(fact.first, fact.last, &mut candidates);
            }
        }
        let cover = candidates
            .iter()
            .copied()
            .filter(|&a| order.rank(a) < order.rank(i) && covers(&rules[a], r))
            .min_by_key(|&a| order.rank(a));
        if let Some(a) = cover {
            out.push((i, Shadower::Rule(a)));
        }
    }
    out.sort_unstable_by_key(|(i, _)| order.rank(*i));
    out
}

#[cfg(test)]
mod tests {
    use super::SpanIndex;

    /// Both ways of searching (a scan of a small group, the tree of a large one) find exactly
    /// the spans that contain the query.
    #[test]
    fn span_index_finds_exactly_the_containing_spans() {
        let mut spans = vec![(1, 10, 0), (5, 5, 1), (0, 65535, 2), (20, 30, 3), (5, 9, 4)];
        let small = spans.len();
        // Large groups: spans from a fixed pseudo-random sequence, with and without a span
        // that covers every port.
        let mut x = 12345u32;
        for rule in small..small + 100 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let first = u16::try_from(x >> 16 & 0x3f).unwrap();
            let len = u16::try_from(x >> 8 & 0x0f).unwrap();
            spans.push((first, first + len, rule));
        }
        let without_any: Vec<_> = spans.iter().copied().filter(|s| s.2 != 2).collect();
        for spans in [spans[..small].to_vec(), spans, without_any] {
            let index = SpanIndex::new(spans.clone().into());
            assert_eq!(index.tree.is_empty(), spans.len() <= SpanIndex::SCAN);
            for first in 0..80 {
                for last in [first, first + 1, first + 7, 65535] {
                    let mut found = Vec::new();
                    index.find(first, last, &mut found);
                    found.sort_unstable();
                    let mut expected: Vec<usize> = spans
                        .iter()
                        .filter(|s| s.0 <= first && last <= s.1)
                        .map(|s| s.2)
                        .collect();
                    expected.sort_unstable();
                    assert_eq!(found, expected, "{first}-{last}");
                }
            }
        }
    }
}
