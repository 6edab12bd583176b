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

mod scan;
#[cfg(test)]
mod tests;

use super::{MAX_DEPTH, Node, Spare, Stream, Value};
use scan::{Cursor, FlowNext, Line, Src, is_sequence_entry, key_len};
use std::borrow::Cow;

/// One reading of a text: where it is, how deep, and where streamed items go.
struct Reader<'a, 's> {
    /// The root key whose sequence is streamed to `sink`, until it has been.
    stream: Option<&'s str>,
    sink: &'s mut dyn Stream<'a>,
    s: Src<'a>,
    at: Cursor,
    depth: usize,
    /// Emptied vectors of streamed items, reused for the next ones.
    spare: Spare<'a>,
}

/// Read `text` if it lies inside the subset, streaming the sequence under root key `stream`
/// to `sink` (see [`super::read_streaming`]). On `None` the sink may have received items and
/// must be reset.
pub(crate) fn read<'a>(
    text: &'a str,
    stream: Option<&str>,
    sink: &mut dyn Stream<'a>,
) -> Option<Node<'a>> {
    let mut r = Reader {
        stream,
        sink,
        s: Src::new(text)?,
        at: Cursor::default(),
        depth: 0,
        spare: Spare::default(),
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
    super::stream_from_tree(&mut root, r.stream, r.sink, &mut r.spare);
    Some(root)
}

impl<'a> Reader<'a, '_> {
    /// Give a streamed item to the sink, which hands back the vectors of spent ones.
    fn emit(&mut self, item: Node<'a>) {
        self.sink.give(item, &mut self.spare);
    }

    /// Advance `cur` to the next content line.
    fn load_next(&mut self) {
        self.at.load(self.s);
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
        let mut entries = self.spare.mapping();
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
            self.spare.sequence()
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
            _ => {
                let (text, plain, end) = self.s.scalar(line, col, flow)?;
                let node = Node {
                    position: Src::position(line, col),
                    value: Value::Scalar { text, plain },
                };
                Some((node, end))
            }
        }
    }

    fn flow_sequence(&mut self, line: Line, col: usize) -> Option<(Node<'a>, usize)> {
        self.enter()?;
        let mut items = self.spare.sequence();
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
        let mut entries = self.spare.mapping();
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
