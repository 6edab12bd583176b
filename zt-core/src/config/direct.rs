//! Reading a rule straight from its lines: the common case without YAML nodes.
//!
//! Most of the time spent loading a large policy went into building each rule's node tree,
//! decoding it, and taking it apart again. For a rule written the usual way — a block mapping
//! of known keys, `from` and `to` as block or flow mappings, scalars, and lists of scalars —
//! this reader fills the rule's [`RuleConfig`] while it scans the text, with the fast YAML
//! reader's own scanners.
//!
//! It reads only rules that decode without a single problem, and gives up (`None`) on anything
//! else: an unknown or repeated key, a value of the wrong type or an unknown word, a layout it
//! does not know. The fast reader then rewinds and reads that rule as nodes, and the decoder
//! reports whatever is wrong with it. So diagnostics never come from here, and the result is
//! the same either way; [`direct_reader_agrees`] checks exactly that, and a differential test
//! and the `yaml_readers` fuzz target run it.

use super::decode::{
    self, ACTIONS, DIRECTIONS, FROM_KEYS, Keys, PROTOCOLS, RULE_KEYS, TO_KEYS, is_null, parse_int,
    parse_port_spec,
};
use super::{FromConfig, OneOrMany, PortSpec, RuleConfig, Spanned, ToConfig};
use crate::diagnostic::Diagnostic;
use crate::source::Position;
use crate::yaml::fast::{self, FlowNext, Line};
use crate::yaml::{ItemLines, ItemSink, Node};

type Lines<'a, 'c> = ItemLines<'a, 'c>;

#[derive(Clone, Copy)]
struct Scalar<'a> {
    text: &'a str,
    plain: bool,
    at: Position,
}

/// Where the value of a block mapping's `key:` is.
enum Place {
    /// On the key's line, from this column.
    Inline(Line, usize),
    /// On the lines below, starting with this one (indented more than the key).
    Below(Line),
}

/// An entry's value, about to be read as the field it belongs to expects: a scalar or a list
/// (whose items are converted as they are met, with no list of scalars in between).
struct Value<'l, 'a, 'c> {
    l: &'l mut Lines<'a, 'c>,
    at: Source,
}

#[derive(Clone, Copy)]
enum Source {
    /// In a block mapping whose keys are at `col`: after the key's colon, at `after`.
    Block {
        line: Line,
        col: usize,
        after: usize,
    },
    /// In a flow mapping, at `at`; reading sets `end` to the column after the value.
    Flow { line: Line, at: usize, end: usize },
}

/// Read the item the lines are lent for as a rule into `r` (default on entry), or `None` to
/// leave it to the decoder. The rule is filled in place: it is several hundred bytes, and
/// moving it (and its `from` and `to`) by value cost more than reading some of its fields.
pub(crate) fn read_rule<'a>(l: &mut Lines<'a, '_>, r: &mut RuleConfig<&'a str>) -> Option<()> {
    let (first, col) = l.start();
    r.position = Some(Lines::position(first, col));
    block_entries(l, first, col, &RULE_KEYS, |l, key, line, after| {
        let mut v = Value {
            l,
            at: Source::Block { line, col, after },
        };
        match key {
            "name" => once(&mut r.name, string(v.scalar()?)?),
            "description" => once(&mut r.description, string(v.scalar()?)?),
            "direction" => once(&mut r.direction, word(v.scalar()?, &DIRECTIONS)?),
            "from" => nested(v.l, line, col, after, &mut r.from, &FROM_KEYS, from_entry),
            "to" => nested(v.l, line, col, after, &mut r.to, &TO_KEYS, to_entry),
            "action" => once(&mut r.action, word(v.scalar()?, &ACTIONS)?),
            "priority" => once(&mut r.priority, integer(v.scalar()?)?),
            "log" => once(&mut r.log, boolean(v.scalar()?)?),
            _ => None,
        }
    })
}

fn from_entry<'a>(f: &mut FromConfig<&'a str>, key: &str, v: &mut Value<'_, 'a, '_>) -> Option<()> {
    match key {
        "user" => once(&mut f.user, string(v.scalar()?)?),
        "uid" => once(&mut f.uid, integer(v.scalar()?)?),
        "group" => once(&mut f.group, string(v.scalar()?)?),
        "gid" => once(&mut f.gid, integer(v.scalar()?)?),
        "cgroup" => once(&mut f.cgroup, string(v.scalar()?)?),
        "host" => once(&mut f.host, string(v.scalar()?)?),
        "hosts" => once(&mut f.hosts, v.list(string)?),
        _ => None,
    }
}

fn to_entry<'a>(t: &mut ToConfig<&'a str>, key: &str, v: &mut Value<'_, 'a, '_>) -> Option<()> {
    match key {
        "host" => once(&mut t.host, string(v.scalar()?)?),
        "hosts" => once(&mut t.hosts, v.list(string)?),
        "port" => once(&mut t.port, v.list(port)?),
        "ports" => once(&mut t.ports, v.list(port)?),
        "protocol" => once(&mut t.protocol, word(v.scalar()?, &PROTOCOLS)?),
        _ => None,
    }
}

/// Set a field that must not be given twice (the decoder reports a repeated key).
fn once<T>(slot: &mut Option<T>, value: T) -> Option<()> {
    match slot {
        Some(_) => None,
        None => {
            *slot = Some(value);
            Some(())
        }
    }
}

/// The entries of a block mapping whose keys (each one of `known`) are at column `col`, from
/// `first` on: `entry` reads each value and leaves the lines after it. Ends at a line indented
/// less than `col`.
fn block_entries<'a, const N: usize>(
    l: &mut Lines<'a, '_>,
    first: Line,
    col: usize,
    known: &Keys<N>,
    mut entry: impl FnMut(&mut Lines<'a, '_>, &'static str, Line, usize) -> Option<()>,
) -> Option<()> {
    let mut line = first;
    loop {
        let (key, after) = l.known_key(line, col, known)?;
        entry(l, key, line, after)?;
        match l.current() {
            Some(next) if next.indent() == col => line = next,
            Some(next) if next.indent() > col => return None,
            _ => return Some(()),
        }
    }
}

/// Where the value of the key whose `:` ends before column `after` is.
fn place(l: &mut Lines<'_, '_>, line: Line, col: usize, after: usize) -> Option<Place> {
    let at = l.skip_spaces(line, after);
    match l.byte(line, at) {
        // Only a comment (after a space) or nothing follows the key: the value is below.
        None => {}
        Some(b'#') if at > after => {}
        Some(_) => return Some(Place::Inline(line, at)),
    }
    l.advance();
    let next = l.current()?;
    // Not below: an empty value, or a sequence at the key's own column.
    (next.indent() > col).then_some(Place::Below(next))
}

/// After an inline value ending at `end` of a block mapping's line: only a comment may follow.
fn line_end(l: &mut Lines<'_, '_>, line: Line, end: usize) -> Option<()> {
    l.only_comment_after(line, end).then(|| l.advance())
}

fn scalar<'a>(l: &Lines<'a, '_>, line: Line, at: usize, flow: bool) -> Option<(Scalar<'a>, usize)> {
    let (text, plain, end) = l.scalar(line, at, flow)?;
    let at = Lines::position(line, at);
    Some((Scalar { text, plain, at }, end))
}

impl<'a> Value<'_, 'a, '_> {
    /// The value as a scalar (a collection here is the decoder's to report).
    fn scalar(&mut self) -> Option<Scalar<'a>> {
        match &mut self.at {
            Source::Block { line, col, after } => {
                let Place::Inline(line, at) = place(self.l, *line, *col, *after)? else {
                    return None;
                };
                let (s, end) = scalar(self.l, line, at, false)?;
                line_end(self.l, line, end)?;
                Some(s)
            }
            Source::Flow { line, at, end } => {
                let (s, after) = scalar(self.l, *line, *at, true)?;
                *end = after;
                Some(s)
            }
        }
    }

    /// The value as one item or a list of them (flow `[a, b]`, or block `- a` lines), each
    /// converted by `item`.
    fn list<T>(&mut self, item: fn(Scalar<'a>) -> Option<T>) -> Option<Spanned<OneOrMany<T>>> {
        let one = |s: Scalar<'a>| Some(Spanned::new(OneOrMany::One(item(s)?), Some(s.at)));
        match &mut self.at {
            Source::Block { line, col, after } => match place(self.l, *line, *col, *after)? {
                Place::Inline(line, at) => {
                    let (v, end) = if self.l.byte(line, at) == Some(b'[') {
                        flow_list(self.l, line, at, item)?
                    } else {
                        let (s, end) = scalar(self.l, line, at, false)?;
                        (one(s)?, end)
                    };
                    line_end(self.l, line, end)?;
                    Some(v)
                }
                Place::Below(next) if self.l.is_sequence_entry(next, next.indent()) => {
                    block_list(self.l, next, item)
                }
                Place::Below(_) => None,
            },
            Source::Flow { line, at, end } => {
                let (v, after) = if self.l.byte(*line, *at) == Some(b'[') {
                    flow_list(self.l, *line, *at, item)?
                } else {
                    let (s, after) = scalar(self.l, *line, *at, true)?;
                    (one(s)?, after)
                };
                *end = after;
                Some(v)
            }
        }
    }
}

/// `[a, b]` of scalars, as the fast reader reads a flow sequence, each converted by `item`;
/// and the column after it.
fn flow_list<'a, T>(
    l: &Lines<'a, '_>,
    line: Line,
    col: usize,
    item: fn(Scalar<'a>) -> Option<T>,
) -> Option<(Spanned<OneOrMany<T>>, usize)> {
    // Sized by the commas on the line (more than the items when a quoted one holds a comma):
    // a list pushed into from empty went through the vector's growth path.
    let mut items = Vec::with_capacity(1 + l.count_after(line, col, b','));
    let mut at = l.skip_spaces(line, col + 1);
    if l.byte(line, at) != Some(b']') {
        loop {
            let (s, end) = scalar(l, line, at, true)?;
            items.push(item(s)?);
            match l.flow_next(line, end, b']')? {
                FlowNext::Item(next) => at = next,
                FlowNext::Close(close) => {
                    at = close;
                    break;
                }
            }
        }
    }
    let list = Spanned::new(OneOrMany::Many(items), Some(Lines::position(line, col)));
    Some((list, at + 1))
}

/// `- a` lines of scalars starting at `first`, as the fast reader reads a block sequence, each
/// converted by `item`.
fn block_list<'a, T>(
    l: &mut Lines<'a, '_>,
    first: Line,
    item: fn(Scalar<'a>) -> Option<T>,
) -> Option<Spanned<OneOrMany<T>>> {
    let indent = first.indent();
    let mut items = Vec::new();
    let mut line = first;
    loop {
        let after = indent + 1;
        if l.only_comment_after(line, after) {
            return None;
        }
        let col = l.skip_spaces(line, after);
        if l.is_sequence_entry(line, col) || l.key(line, col).is_some() {
            return None;
        }
        let (s, end) = scalar(l, line, col, false)?;
        line_end(l, line, end)?;
        items.push(item(s)?);
        match l.current() {
            Some(next) if next.indent() == indent && l.is_sequence_entry(next, indent) => {
                line = next;
            }
            Some(next) if next.indent() > indent => return None,
            _ => break,
        }
    }
    let at = Lines::position(first, indent);
    Some(Spanned::new(OneOrMany::Many(items), Some(at)))
}

/// A `from` or `to` mapping into `slot`: block (on the lines below) or flow (`{…}` on the
/// key's line).
fn nested<'a, T: Default, const N: usize>(
    l: &mut Lines<'a, '_>,
    line: Line,
    col: usize,
    after: usize,
    slot: &mut Option<Spanned<T>>,
    known: &Keys<N>,
    entry: fn(&mut T, &str, &mut Value<'_, 'a, '_>) -> Option<()>,
) -> Option<()> {
    if slot.is_some() {
        return None;
    }
    let s = slot.insert(Spanned::new(T::default(), None));
    match place(l, line, col, after)? {
        Place::Below(next) => {
            let inner = next.indent();
            s.position = Some(Lines::position(next, inner));
            block_entries(l, next, inner, known, |l, key, line, after| {
                let at = Source::Block {
                    line,
                    col: inner,
                    after,
                };
                entry(&mut s.value, key, &mut Value { l, at })
            })
        }
        Place::Inline(line, at) if l.byte(line, at) == Some(b'{') => {
            s.position = Some(Lines::position(line, at));
            let end = flow_entries(l, line, at, known, |l, key, vcol| {
                let mut v = Value {
                    l,
                    at: Source::Flow {
                        line,
                        at: vcol,
                        end: vcol,
                    },
                };
                entry(&mut s.value, key, &mut v)?;
                match v.at {
                    Source::Flow { end, .. } => Some(end),
                    Source::Block { .. } => None,
                }
            })?;
            line_end(l, line, end)
        }
        Place::Inline(..) => None,
    }
}

/// The entries of `{k: v, …}` at `col`, as the fast reader reads a flow mapping: `entry` reads
/// the value at the column it is given and returns the column after it. Returns the column
/// after the closing brace.
fn flow_entries<'a, const N: usize>(
    l: &mut Lines<'a, '_>,
    line: Line,
    col: usize,
    known: &Keys<N>,
    mut entry: impl FnMut(&mut Lines<'a, '_>, &'static str, usize) -> Option<usize>,
) -> Option<usize> {
    let mut at = l.skip_spaces(line, col + 1);
    if l.byte(line, at) != Some(b'}') {
        loop {
            let (key, after) = l.known_key(line, at, known)?;
            let vcol = l.skip_spaces(line, after);
            match l.byte(line, vcol) {
                None | Some(b',' | b'}' | b'#') => return None,
                // A nested mapping is the decoder's to report.
                Some(b'{') => return None,
                _ => {}
            }
            let end = entry(l, key, vcol)?;
            match l.flow_next(line, end, b'}')? {
                FlowNext::Item(next) => at = next,
                FlowNext::Close(close) => {
                    at = close;
                    break;
                }
            }
        }
    }
    Some(at + 1)
}

// The value decoders: each accepts exactly what the decoder accepts without a problem.

fn text(s: Scalar<'_>) -> Option<Scalar<'_>> {
    (!is_null(s.text, s.plain)).then_some(s)
}

fn string(s: Scalar<'_>) -> Option<Spanned<&str>> {
    text(s).map(|s| Spanned::new(s.text, Some(s.at)))
}

fn word<T: Copy>(s: Scalar<'_>, words: &[(&str, T)]) -> Option<Spanned<T>> {
    let s = text(s)?;
    let (_, value) = words.iter().find(|(w, _)| *w == s.text)?;
    Some(Spanned::new(*value, Some(s.at)))
}

fn boolean(s: Scalar<'_>) -> Option<Spanned<bool>> {
    let value = match (s.text, s.plain) {
        ("true" | "True" | "TRUE", true) => true,
        ("false" | "False" | "FALSE", true) => false,
        _ => return None,
    };
    Some(Spanned::new(value, Some(s.at)))
}

fn integer(s: Scalar<'_>) -> Option<Spanned<i64>> {
    s.plain
        .then(|| parse_int(s.text))
        .flatten()
        .map(|v| Spanned::new(v, Some(s.at)))
}

fn port(s: Scalar<'_>) -> Option<Spanned<PortSpec>> {
    let s = text(s)?;
    Some(Spanned::new(parse_port_spec(s.text)?, Some(s.at)))
}

/// What reading a document's rules produced: the root, and every rule and diagnostic in order
/// (rules as their `Debug` text, which does not depend on how their text is held).
type Reading<'a> = (Node<'a>, Vec<String>, Vec<Diagnostic>);

/// Collects rules, read directly (when allowed) or decoded from nodes.
struct Collect {
    direct: bool,
    taken: usize,
    rules: Vec<String>,
    diags: Vec<Diagnostic>,
}

impl<'a> ItemSink<'a> for Collect {
    fn item(&mut self, node: &Node<'a>) {
        let rule = decode::decode_rule(self.rules.len(), node, &mut self.diags);
        self.rules.push(format!("{rule:?}"));
    }

    fn read_item(&mut self, lines: &mut ItemLines<'a, '_>) -> bool {
        if !self.direct {
            return false;
        }
        let mut rule = RuleConfig::default();
        if read_rule(lines, &mut rule).is_none() {
            return false;
        }
        self.taken += 1;
        self.rules.push(format!("{rule:?}"));
        true
    }

    fn reset(&mut self) {
        self.rules.clear();
        self.diags.clear();
        self.taken = 0;
    }
}

fn reading(text: &str, direct: bool) -> (Option<Reading<'_>>, usize) {
    let mut sink = Collect {
        direct,
        taken: 0,
        rules: Vec::new(),
        diags: Vec::new(),
    };
    let root = fast::read(text, Some("rules"), &mut sink);
    let taken = sink.taken;
    (root.map(|r| (r, sink.rules, sink.diags)), taken)
}

/// For the differential fuzz target and tests: the fast reader with rules read directly gives
/// the same root, rules and diagnostics as without, or declines the same texts. `Ok(n)`: it
/// agrees, and `n` rules were read directly; `Err` on any difference.
#[doc(hidden)]
pub fn direct_reader_agrees(text: &str) -> Result<usize, String> {
    let (with, taken) = reading(text, true);
    let (without, _) = reading(text, false);
    if with == without {
        Ok(taken)
    } else {
        Err(format!("direct {with:?}\nnodes {without:?}"))
    }
}
