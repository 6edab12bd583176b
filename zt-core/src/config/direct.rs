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
use crate::yaml::fast::{self, Line};
use crate::yaml::{ItemLines, ItemSink, Node};

type Lines<'a, 'c> = ItemLines<'a, 'c>;

/// A scalar or a list of scalars, where it starts, as met in the text.
enum Val<'a> {
    Scalar(Scalar<'a>),
    List(Vec<Scalar<'a>>, Position),
}

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

/// Read the item the lines are lent for as a rule into `r` (default on entry), or `None` to
/// leave it to the decoder. The rule is filled in place: it is several hundred bytes, and
/// moving it (and its `from` and `to`) by value cost more than reading some of its fields.
pub(crate) fn read_rule<'a>(l: &mut Lines<'a, '_>, r: &mut RuleConfig<&'a str>) -> Option<()> {
    let (first, col) = l.start();
    r.position = Some(Lines::position(first, col));
    block_entries(l, first, col, &RULE_KEYS, |l, key, line, after| match key {
        "name" => once(&mut r.name, string(value(l, line, col, after)?)?),
        "description" => once(&mut r.description, string(value(l, line, col, after)?)?),
        "direction" => once(
            &mut r.direction,
            word(value(l, line, col, after)?, &DIRECTIONS)?,
        ),
        "from" => nested(l, line, col, after, &mut r.from, &FROM_KEYS, from_entry),
        "to" => nested(l, line, col, after, &mut r.to, &TO_KEYS, to_entry),
        "action" => once(&mut r.action, word(value(l, line, col, after)?, &ACTIONS)?),
        "priority" => once(&mut r.priority, integer(value(l, line, col, after)?)?),
        "log" => once(&mut r.log, boolean(value(l, line, col, after)?)?),
        _ => None,
    })
}

fn from_entry<'a>(f: &mut FromConfig<&'a str>, key: &str, v: Val<'a>) -> Option<()> {
    match key {
        "user" => once(&mut f.user, string(v)?),
        "uid" => once(&mut f.uid, integer(v)?),
        "group" => once(&mut f.group, string(v)?),
        "gid" => once(&mut f.gid, integer(v)?),
        "cgroup" => once(&mut f.cgroup, string(v)?),
        "host" => once(&mut f.host, string(v)?),
        "hosts" => once(&mut f.hosts, list(v, string)?),
        _ => None,
    }
}

fn to_entry<'a>(t: &mut ToConfig<&'a str>, key: &str, v: Val<'a>) -> Option<()> {
    match key {
        "host" => once(&mut t.host, string(v)?),
        "hosts" => once(&mut t.hosts, list(v, string)?),
        "port" => once(&mut t.port, list(v, port)?),
        "ports" => once(&mut t.ports, list(v, port)?),
        "protocol" => once(&mut t.protocol, word(v, &PROTOCOLS)?),
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

/// A scalar or list value of a block mapping's key.
fn value<'a>(l: &mut Lines<'a, '_>, line: Line, col: usize, after: usize) -> Option<Val<'a>> {
    match place(l, line, col, after)? {
        Place::Inline(line, at) => {
            let (v, end) = inline(l, line, at, false)?;
            line_end(l, line, end)?;
            Some(v)
        }
        Place::Below(next) if l.is_sequence_entry(next, next.indent()) => block_list(l, next),
        Place::Below(_) => None,
    }
}

/// A scalar or flow list at column `at`, and the column after it.
fn inline<'a>(l: &Lines<'a, '_>, line: Line, at: usize, flow: bool) -> Option<(Val<'a>, usize)> {
    if l.byte(line, at)? == b'[' {
        return flow_list(l, line, at);
    }
    let (scalar, end) = scalar(l, line, at, flow)?;
    Some((Val::Scalar(scalar), end))
}

fn scalar<'a>(l: &Lines<'a, '_>, line: Line, at: usize, flow: bool) -> Option<(Scalar<'a>, usize)> {
    let (text, plain, end) = l.scalar(line, at, flow)?;
    let at = Lines::position(line, at);
    Some((Scalar { text, plain, at }, end))
}

/// `[a, b]` of scalars, as the fast reader reads a flow sequence.
fn flow_list<'a>(l: &Lines<'a, '_>, line: Line, col: usize) -> Option<(Val<'a>, usize)> {
    let mut items = Vec::new();
    let mut at = l.skip_spaces(line, col + 1);
    if l.byte(line, at) != Some(b']') {
        loop {
            let (item, end) = scalar(l, line, at, true)?;
            items.push(item);
            at = l.skip_spaces(line, end);
            match l.byte(line, at)? {
                b',' => {
                    at = l.skip_spaces(line, at + 1);
                    if l.byte(line, at) == Some(b']') {
                        return None;
                    }
                }
                b']' => break,
                _ => return None,
            }
        }
    }
    Some((Val::List(items, Lines::position(line, col)), at + 1))
}

/// `- a` lines of scalars starting at `first`, as the fast reader reads a block sequence.
fn block_list<'a>(l: &mut Lines<'a, '_>, first: Line) -> Option<Val<'a>> {
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
        let (item, end) = scalar(l, line, col, false)?;
        line_end(l, line, end)?;
        items.push(item);
        match l.current() {
            Some(next) if next.indent() == indent && l.is_sequence_entry(next, indent) => {
                line = next;
            }
            Some(next) if next.indent() > indent => return None,
            _ => break,
        }
    }
    Some(Val::List(items, Lines::position(first, indent)))
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
    entry: fn(&mut T, &str, Val<'a>) -> Option<()>,
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
                entry(&mut s.value, key, value(l, line, inner, after)?)
            })
        }
        Place::Inline(line, at) if l.byte(line, at) == Some(b'{') => {
            s.position = Some(Lines::position(line, at));
            let end = flow_entries(l, line, at, known, |key, v| entry(&mut s.value, key, v))?;
            line_end(l, line, end)
        }
        Place::Inline(..) => None,
    }
}

/// The entries of `{k: v, …}` at `col`, as the fast reader reads a flow mapping; returns the
/// column after the closing brace.
fn flow_entries<'a, const N: usize>(
    l: &Lines<'a, '_>,
    line: Line,
    col: usize,
    known: &Keys<N>,
    mut entry: impl FnMut(&'static str, Val<'a>) -> Option<()>,
) -> Option<usize> {
    let mut at = l.skip_spaces(line, col + 1);
    if l.byte(line, at) != Some(b'}') {
        loop {
            let (key, after) = l.known_key(line, at, known)?;
            let vcol = l.skip_spaces(line, after);
            match l.byte(line, vcol) {
                None | Some(b',' | b'}' | b'#') => return None,
                _ => {}
            }
            let (v, end) = inline(l, line, vcol, true)?;
            entry(key, v)?;
            at = l.skip_spaces(line, end);
            match l.byte(line, at)? {
                b',' => {
                    at = l.skip_spaces(line, at + 1);
                    if l.byte(line, at) == Some(b'}') {
                        return None;
                    }
                }
                b'}' => break,
                _ => return None,
            }
        }
    }
    Some(at + 1)
}

// The value decoders: each accepts exactly what the decoder accepts without a problem.

fn text(v: Val<'_>) -> Option<Scalar<'_>> {
    match v {
        Val::Scalar(s) if !is_null(s.text, s.plain) => Some(s),
        _ => None,
    }
}

fn string(v: Val<'_>) -> Option<Spanned<&str>> {
    text(v).map(|s| Spanned::new(s.text, Some(s.at)))
}

fn word<T: Copy>(v: Val<'_>, words: &[(&str, T)]) -> Option<Spanned<T>> {
    let s = text(v)?;
    let (_, value) = words.iter().find(|(w, _)| *w == s.text)?;
    Some(Spanned::new(*value, Some(s.at)))
}

fn boolean(v: Val<'_>) -> Option<Spanned<bool>> {
    let Val::Scalar(s) = v else { return None };
    let value = match (s.text, s.plain) {
        ("true" | "True" | "TRUE", true) => true,
        ("false" | "False" | "FALSE", true) => false,
        _ => return None,
    };
    Some(Spanned::new(value, Some(s.at)))
}

fn integer(v: Val<'_>) -> Option<Spanned<i64>> {
    match v {
        Val::Scalar(s) if s.plain => Some(Spanned::new(parse_int(s.text)?, Some(s.at))),
        _ => None,
    }
}

fn port(v: Val<'_>) -> Option<Spanned<PortSpec>> {
    let s = text(v)?;
    Some(Spanned::new(parse_port_spec(s.text)?, Some(s.at)))
}

/// One value or a list of them, each read by `item`.
fn list<'a, T>(v: Val<'a>, item: impl Fn(Val<'a>) -> Option<T>) -> Option<Spanned<OneOrMany<T>>> {
    match v {
        Val::List(items, at) => {
            let items = items
                .into_iter()
                .map(|s| item(Val::Scalar(s)))
                .collect::<Option<Vec<T>>>()?;
            Some(Spanned::new(OneOrMany::Many(items), Some(at)))
        }
        Val::Scalar(s) => Some(Spanned::new(OneOrMany::One(item(v)?), Some(s.at))),
    }
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
