//! The fast reader: zt's common YAML in one pass, or `None` to defer to the full reader.
//!
//! The subset: printable ASCII and newlines; comments; an optional leading `---`; block
//! mappings whose keys are `[A-Za-z0-9_][A-Za-z0-9_-]*`; block sequences (compact mappings in
//! items included); single-line flow sequences and mappings; single-line plain, single-quoted
//! and backslash-free double-quoted scalars. Everything else — anchors, aliases, tags, block
//! scalars, multi-line scalars, empty values, tabs, non-ASCII text, and every syntax error —
//! returns `None`, and the full reader decides. So this reader needs no error messages of its
//! own and cannot disagree with the full one about what a document *means*: the differential
//! test (`fast_reader_agrees`) holds it to producing the identical tree, positions included.

use super::{ItemSink, MAX_DEPTH, Node, Value};
use crate::source::Position;
use std::borrow::Cow;

/// A content line: not blank, not a comment.
#[derive(Clone, Copy)]
struct Line {
    /// Byte offset of the line's first character.
    start: usize,
    /// Byte offset of its newline (or of the end of input).
    end: usize,
    /// 1-based line number.
    number: u32,
    /// Number of leading spaces.
    indent: usize,
}

/// How far the reader has read.
struct Cursor {
    /// Offset of the first line not yet read.
    next: usize,
    /// Number of lines consumed so far.
    lines: u32,
    /// The current content line, `None` at end of input.
    cur: Option<Line>,
    /// Document markers (`---`, `...` at column 0) seen; only a leading `---` is in the subset.
    markers: usize,
}

/// What follows an item of a flow collection (see [`Src::flow_next`]).
enum FlowNext {
    /// Another item, at this column.
    Item(usize),
    /// The closing `]` or `}`, at this column.
    Close(usize),
}

/// The text being read, with the scanners that only look at it.
#[derive(Clone, Copy)]
struct Src<'a> {
    text: &'a str,
    b: &'a [u8],
}

struct Reader<'a, 's> {
    /// The root key whose sequence is streamed to `sink`, until it has been.
    stream: Option<&'s str>,
    sink: &'s mut dyn ItemSink<'a>,
    s: Src<'a>,
    at: Cursor,
    depth: usize,
    /// Emptied vectors of streamed items, reused for the next ones.
    mappings: Vec<Vec<(Node<'a>, Node<'a>)>>,
    sequences: Vec<Vec<Node<'a>>>,
}

/// Read `text` if it lies inside the subset, streaming the sequence under root key `stream`
/// to `sink` (see [`super::read_streaming`]). On `None` the sink may have received items and
/// must be reset.
pub(crate) fn read<'a>(
    text: &'a str,
    stream: Option<&str>,
    sink: &mut dyn ItemSink<'a>,
) -> Option<Node<'a>> {
    let b = text.as_bytes();
    // Branch-free so it vectorizes: any control character but '\n', DEL or non-ASCII byte.
    let outside = b.iter().fold(false, |acc, &c| {
        acc | ((c < 0x20) & (c != b'\n')) | (c >= 0x7f)
    });
    if outside {
        return None;
    }
    let mut r = Reader {
        stream,
        sink,
        s: Src { text, b },
        at: Cursor {
            next: 0,
            lines: 0,
            cur: None,
            markers: 0,
        },
        depth: 0,
        mappings: Vec::new(),
        sequences: Vec::new(),
    };
    r.load_next();
    let mut line = r.at.cur?;
    if r.at.markers == 1 {
        if !r.s.rest(line, 0).starts_with(b"---") || !r.s.only_comment_after(line, 3) {
            return None;
        }
        r.at.markers = 0;
        r.load_next();
        line = r.at.cur?;
    }
    if line.indent != 0 {
        return None;
    }
    let mut root = r.node_at(line, 0)?;
    if r.at.cur.is_some() || r.at.markers > 0 {
        return None;
    }
    // A root that is not a block mapping (a flow mapping) streams the way the full reader does.
    super::stream_from_tree(&mut root, r.stream, r.sink);
    Some(root)
}

fn is_key_start(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

const fn is_key_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}

const fn is_flow_indicator(c: u8) -> bool {
    matches!(c, b',' | b'[' | b']' | b'{' | b'}')
}

/// The bytes of a key after its first, as a table: every line of a configuration starts with
/// a key or a `-`, so this scan runs for nearly every line.
static KEY_CHARS: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        t[c] = is_key_char(c as u8);
        c += 1;
    }
    t
};

/// Length of a simple key at the start of `s` when `s` is `key:` followed by a space or the end.
fn key_len(s: &[u8]) -> Option<usize> {
    if !s.first().copied().is_some_and(is_key_start) {
        return None;
    }
    let n = s
        .iter()
        .position(|&c| !KEY_CHARS[usize::from(c)])
        .unwrap_or(s.len());
    match (s.get(n), s.get(n + 1)) {
        (Some(b':'), None | Some(b' ')) => Some(n),
        _ => None,
    }
}

fn is_sequence_entry(s: &[u8]) -> bool {
    s.first() == Some(&b'-') && matches!(s.get(1), None | Some(b' '))
}

/// Eight bytes of `s` from `at` as a little-endian word, if there are eight.
fn word(s: &[u8], at: usize) -> Option<u64> {
    let bytes = s.get(at..at + 8)?;
    <[u8; 8]>::try_from(bytes).ok().map(u64::from_le_bytes)
}

/// A word with every byte set to `byte`.
const fn splat(byte: u8) -> u64 {
    u64::from_le_bytes([byte; 8])
}

/// The number of spaces `s` starts with, eight bytes at a time.
///
/// Lines are short (a configuration's are about twenty bytes), so reading them a word at a
/// time beats both a byte loop and `memchr`, whose setup costs more than such a line.
fn leading_spaces(s: &[u8]) -> usize {
    let mut at = 0;
    while let Some(w) = word(s, at) {
        let other = w ^ splat(b' ');
        if other != 0 {
            return at + other.trailing_zeros() as usize / 8;
        }
        at += 8;
    }
    at + s[at..].iter().take_while(|&&c| c == b' ').count()
}

/// The offset of the first newline in `s`, eight bytes at a time.
fn newline(s: &[u8]) -> Option<usize> {
    let mut at = 0;
    while let Some(w) = word(s, at) {
        // The lowest flagged byte of the classic zero-byte test is always a real match.
        let x = w ^ splat(b'\n');
        let zero = x.wrapping_sub(splat(1)) & !x & splat(0x80);
        if zero != 0 {
            return Some(at + zero.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    s[at..].iter().position(|&c| c == b'\n').map(|i| at + i)
}

impl Cursor {
    /// Advance `cur` to the next content line.
    fn load(&mut self, b: &[u8]) {
        while self.next < b.len() {
            let start = self.next;
            let indent = leading_spaces(&b[start..]);
            let end = newline(&b[start + indent..]).map_or(b.len(), |i| start + indent + i);
            self.next = end + 1;
            self.lines += 1;
            if start + indent == end || b[start + indent] == b'#' {
                continue;
            }
            let text = &b[start..end];
            if indent == 0
                && (text.starts_with(b"---") || text.starts_with(b"..."))
                && matches!(text.get(3), None | Some(b' '))
            {
                self.markers += 1;
            }
            self.cur = Some(Line {
                start,
                end,
                number: self.lines,
                indent,
            });
            return;
        }
        self.cur = None;
    }
}

impl<'a> Src<'a> {
    fn rest(&self, line: Line, col: usize) -> &'a [u8] {
        &self.b[line.start + col..line.end]
    }

    fn position(line: Line, col: usize) -> Position {
        let column = u32::try_from(col + 1).unwrap_or(u32::MAX);
        Position::new(line.number, column)
    }

    fn skip_spaces(&self, line: Line, mut col: usize) -> usize {
        while line.start + col < line.end && self.b[line.start + col] == b' ' {
            col += 1;
        }
        col
    }

    /// True when nothing but spaces and a comment follows `col` (a comment needs a space before it).
    fn only_comment_after(&self, line: Line, col: usize) -> bool {
        let c = self.skip_spaces(line, col);
        line.start + c == line.end || (c > col && self.b[line.start + c] == b'#')
    }

    /// After an item of a flow collection closed by `close`, ending at `end`: the next item's
    /// column (after a comma), or the closing character's; `None` for anything else, a
    /// trailing comma included.
    fn flow_next(&self, line: Line, end: usize, close: u8) -> Option<FlowNext> {
        let at = self.skip_spaces(line, end);
        match *self.rest(line, at).first()? {
            b',' => {
                let next = self.skip_spaces(line, at + 1);
                (self.rest(line, next).first() != Some(&close)).then_some(FlowNext::Item(next))
            }
            c if c == close => Some(FlowNext::Close(at)),
            _ => None,
        }
    }

    fn text(&self, line: Line, from: usize, to: usize) -> &'a str {
        &self.text[line.start + from..line.start + to]
    }

    /// A scalar at `col`: its text, whether it was plain, and the column after it.
    fn scalar(&self, line: Line, col: usize, flow: bool) -> Option<(Cow<'a, str>, bool, usize)> {
        match *self.rest(line, col).first()? {
            b'\'' => self.single_quoted(line, col),
            b'"' => self.double_quoted(line, col),
            _ => self.plain(line, col, flow),
        }
    }

    /// A scalar or flow collection's scalar as a node (see [`Src::scalar`]).
    fn scalar_node(&self, line: Line, col: usize, flow: bool) -> Option<(Node<'a>, usize)> {
        let (text, plain, end) = self.scalar(line, col, flow)?;
        let node = Node {
            position: Self::position(line, col),
            value: Value::Scalar { text, plain },
        };
        Some((node, end))
    }

    fn plain(&self, line: Line, col: usize, flow: bool) -> Option<(Cow<'a, str>, bool, usize)> {
        let s = self.rest(line, col);
        let first = *s.first()?;
        let safe_after = |i: usize| match s.get(i) {
            None | Some(b' ') => false,
            Some(&c) => !(flow && is_flow_indicator(c)),
        };
        match first {
            b'-' | b':' if safe_after(1) => {}
            b'-' | b':' | b'?' | b',' | b'[' | b']' | b'{' | b'}' | b'#' | b'&' | b'*' | b'!'
            | b'|' | b'>' | b'\'' | b'"' | b'%' | b'@' | b'`' => return None,
            _ => {}
        }
        // Only `#`, `:` and (in a flow collection) the flow indicators can end a plain scalar
        // early; every other byte is skipped by one table lookup.
        let stops = if flow { &FLOW_STOPS } else { &BLOCK_STOPS };
        let mut i = 1;
        while i < s.len() {
            let c = s[i];
            if stops[usize::from(c)] {
                match c {
                    b'#' if s[i - 1] == b' ' => break,
                    b':' if !safe_after(i + 1) => return None,
                    b'#' | b':' => {}
                    _ => break, // a flow indicator in a flow collection
                }
            }
            i += 1;
        }
        let mut end = i;
        while end > 0 && s[end - 1] == b' ' {
            end -= 1;
        }
        Some((
            Cow::Borrowed(self.text(line, col, col + end)),
            true,
            col + end,
        ))
    }

    fn single_quoted(&self, line: Line, col: usize) -> Option<(Cow<'a, str>, bool, usize)> {
        let s = self.rest(line, col);
        let mut i = 1;
        let mut escaped = false;
        loop {
            match s.get(i)? {
                b'\'' if s.get(i + 1) == Some(&b'\'') => {
                    escaped = true;
                    i += 2;
                }
                b'\'' => break,
                _ => i += 1,
            }
        }
        let raw = self.text(line, col + 1, col + i);
        let text = if escaped {
            Cow::Owned(raw.replace("''", "'"))
        } else {
            Cow::Borrowed(raw)
        };
        Some((text, false, col + i + 1))
    }

    fn double_quoted(&self, line: Line, col: usize) -> Option<(Cow<'a, str>, bool, usize)> {
        let s = self.rest(line, col);
        let len = s[1..].iter().position(|&c| c == b'"' || c == b'\\')?;
        if s[1 + len] == b'\\' {
            return None;
        }
        let text = Cow::Borrowed(self.text(line, col + 1, col + 1 + len));
        Some((text, false, col + len + 2))
    }
}

/// Bytes that may end a plain scalar early, outside and inside a flow collection.
static BLOCK_STOPS: [bool; 256] = stops(false);
static FLOW_STOPS: [bool; 256] = stops(true);

const fn stops(flow: bool) -> [bool; 256] {
    let mut t = [false; 256];
    t[b'#' as usize] = true;
    t[b':' as usize] = true;
    if flow {
        let mut i = 0;
        while i < 256 {
            t[i] = t[i] || is_flow_indicator(i as u8);
            i += 1;
        }
    }
    t
}

impl<'a> Reader<'a, '_> {
    /// Lend a streamed item to the sink, then keep its vectors for reuse.
    fn emit(&mut self, item: Node<'a>) {
        self.sink.item(&item);
        self.recycle(item);
    }

    /// Empty `node`'s vectors into the pools (depth is bounded by `MAX_DEPTH`).
    fn recycle(&mut self, node: Node<'a>) {
        match node.value {
            Value::Scalar { .. } => {}
            Value::Sequence(mut items) => {
                for item in items.drain(..) {
                    self.recycle(item);
                }
                self.sequences.push(items);
            }
            Value::Mapping(mut entries) => {
                for (k, v) in entries.drain(..) {
                    self.recycle(k);
                    self.recycle(v);
                }
                self.mappings.push(entries);
            }
        }
    }

    fn new_mapping(&mut self) -> Vec<(Node<'a>, Node<'a>)> {
        self.mappings.pop().unwrap_or_else(|| Vec::with_capacity(8))
    }

    fn new_sequence(&mut self) -> Vec<Node<'a>> {
        self.sequences
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(4))
    }

    /// Advance `cur` to the next content line.
    fn load_next(&mut self) {
        self.at.load(self.s.b);
    }

    fn enter(&mut self) -> Option<()> {
        self.depth += 1;
        (self.depth <= MAX_DEPTH).then_some(())
    }

    /// A block node whose first character is at column `col` of `line`.
    fn node_at(&mut self, line: Line, col: usize) -> Option<Node<'a>> {
        self.enter()?;
        let rest = self.s.rest(line, col);
        let node = if is_sequence_entry(rest) {
            self.block_sequence(line, col, false)
        } else if key_len(rest).is_some() {
            self.block_mapping(line, col)
        } else {
            self.inline_to_end(line, col)
        };
        self.depth -= 1;
        node
    }

    fn block_mapping(&mut self, first: Line, indent: usize) -> Option<Node<'a>> {
        let position = Src::position(first, indent);
        let mut entries = self.new_mapping();
        let mut line = first;
        loop {
            let klen = key_len(self.s.rest(line, indent))?;
            let key_text = self.s.text(line, indent, indent + klen);
            let key = Node {
                position: Src::position(line, indent),
                value: Value::Scalar {
                    text: Cow::Borrowed(key_text),
                    plain: true,
                },
            };
            let after = indent + klen + 1;
            // Only the root mapping (depth 1) streams, and only the key's first occurrence.
            let streamed = self.depth == 1 && self.stream == Some(key_text);
            if streamed {
                self.stream = None;
            }
            let mut value = if self.s.only_comment_after(line, after) {
                self.load_next();
                let next = self.at.cur?;
                if streamed
                    && next.indent > indent
                    && is_sequence_entry(self.s.rest(next, next.indent))
                {
                    self.enter()?;
                    let seq = self.block_sequence(next, next.indent, true)?;
                    self.depth -= 1;
                    seq
                } else if next.indent > indent {
                    self.node_at(next, next.indent)?
                } else if next.indent == indent && is_sequence_entry(self.s.rest(next, indent)) {
                    // An "indentless" sequence (`key:` then `- item` at the key's column): the
                    // full reader places it at its first item's content, so this one does too
                    // (and leaves the rarer `-` alone on its line to the full reader).
                    if self.s.only_comment_after(next, indent + 1) {
                        return None;
                    }
                    self.enter()?;
                    let mut seq = self.block_sequence(next, indent, streamed)?;
                    self.depth -= 1;
                    // The first item starts on the sequence's line, after "- ".
                    seq.position = Src::position(next, self.s.skip_spaces(next, indent + 1));
                    seq
                } else {
                    return None; // an empty value: left to the full reader
                }
            } else {
                let col = self.s.skip_spaces(line, after);
                self.inline_to_end(line, col)?
            };
            // A flow sequence (on the key's line or the next) streams its items here; a block
            // sequence has streamed them already and is empty.
            if let (true, Value::Sequence(items)) = (streamed, &mut value.value) {
                for item in std::mem::take(items) {
                    self.emit(item);
                }
            }
            entries.push((key, value));
            match self.at.cur {
                Some(next) if next.indent == indent => line = next,
                Some(next) if next.indent > indent => return None,
                _ => break,
            }
        }
        Some(Node {
            position,
            value: Value::Mapping(entries),
        })
    }

    /// A block sequence; with `stream`, its items go to the sink instead of into the node.
    fn block_sequence(&mut self, first: Line, indent: usize, stream: bool) -> Option<Node<'a>> {
        let position = Src::position(first, indent);
        let mut items = if stream {
            Vec::new()
        } else {
            self.new_sequence()
        };
        let mut line = first;
        loop {
            let after = indent + 1;
            let item = if self.s.only_comment_after(line, after) {
                self.load_next();
                let next = self.at.cur?;
                if next.indent <= indent {
                    return None; // an empty item
                }
                self.node_at(next, next.indent)?
            } else {
                let col = self.s.skip_spaces(line, after);
                let rest = self.s.rest(line, col);
                if is_sequence_entry(rest) {
                    return None; // `- - x`: a compact nested sequence
                }
                if key_len(rest).is_some() {
                    self.enter()?;
                    let map = self.block_mapping(line, col)?;
                    self.depth -= 1;
                    map
                } else {
                    self.inline_to_end(line, col)?
                }
            };
            if stream {
                self.emit(item);
            } else {
                items.push(item);
            }
            match self.at.cur {
                Some(next)
                    if next.indent == indent && is_sequence_entry(self.s.rest(next, indent)) =>
                {
                    line = next;
                }
                Some(next) if next.indent > indent => return None,
                _ => break,
            }
        }
        Some(Node {
            position,
            value: Value::Sequence(items),
        })
    }

    /// An inline value that must run to the end of its line (or a comment), then the next line.
    fn inline_to_end(&mut self, line: Line, col: usize) -> Option<Node<'a>> {
        let (node, end) = self.inline(line, col, false)?;
        if !self.s.only_comment_after(line, end) {
            return None;
        }
        self.load_next();
        Some(node)
    }

    /// A scalar or flow collection starting at `col`; returns it and the column after it.
    fn inline(&mut self, line: Line, col: usize, flow: bool) -> Option<(Node<'a>, usize)> {
        let c = *self.s.rest(line, col).first()?;
        match c {
            b'[' => self.flow_sequence(line, col),
            b'{' => self.flow_mapping(line, col),
            _ => self.s.scalar_node(line, col, flow),
        }
    }

    fn flow_sequence(&mut self, line: Line, col: usize) -> Option<(Node<'a>, usize)> {
        self.enter()?;
        let mut items = self.new_sequence();
        let mut at = self.s.skip_spaces(line, col + 1);
        if self.s.rest(line, at).first() != Some(&b']') {
            loop {
                let (item, end) = self.inline(line, at, true)?;
                items.push(item);
                match self.s.flow_next(line, end, b']')? {
                    FlowNext::Item(next) => at = next,
                    FlowNext::Close(close) => {
                        at = close;
                        break;
                    }
                }
            }
        }
        self.depth -= 1;
        let node = Node {
            position: Src::position(line, col),
            value: Value::Sequence(items),
        };
        Some((node, at + 1))
    }

    fn flow_mapping(&mut self, line: Line, col: usize) -> Option<(Node<'a>, usize)> {
        self.enter()?;
        let mut entries = self.new_mapping();
        let mut at = self.s.skip_spaces(line, col + 1);
        if self.s.rest(line, at).first() != Some(&b'}') {
            loop {
                let klen = key_len(self.s.rest(line, at))?;
                let key = Node {
                    position: Src::position(line, at),
                    value: Value::Scalar {
                        text: Cow::Borrowed(self.s.text(line, at, at + klen)),
                        plain: true,
                    },
                };
                let vcol = self.s.skip_spaces(line, at + klen + 1);
                match self.s.rest(line, vcol).first() {
                    None | Some(b',' | b'}' | b'#') => return None, // empty value
                    _ => {}
                }
                let (value, end) = self.inline(line, vcol, true)?;
                entries.push((key, value));
                match self.s.flow_next(line, end, b'}')? {
                    FlowNext::Item(next) => at = next,
                    FlowNext::Close(close) => {
                        at = close;
                        break;
                    }
                }
            }
        }
        self.depth -= 1;
        let node = Node {
            position: Src::position(line, col),
            value: Value::Mapping(entries),
        };
        Some((node, at + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::super::fast_reader_agrees;
    use super::{leading_spaces, newline};

    /// The word-at-a-time scans agree with a byte loop at every length and position.
    #[test]
    fn word_scans_agree_with_byte_scans() {
        for len in 0..40 {
            for mark in 0..=len {
                let mut line = vec![b' '; len];
                if mark < len {
                    line[mark] = b'x';
                }
                let spaces = line.iter().take_while(|&&c| c == b' ').count();
                assert_eq!(leading_spaces(&line), spaces, "{len} {mark}");
                for byte in [b'\n', b'\x8a', b'\x0b', b'\x09'] {
                    let mut text = vec![b'a'; len];
                    if mark < len {
                        text[mark] = byte;
                    }
                    // A second newline later must not be found first.
                    text.push(b'\n');
                    let first = text.iter().position(|&c| c == b'\n');
                    assert_eq!(newline(&text), first, "{len} {mark} {byte}");
                }
            }
        }
    }

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
}
