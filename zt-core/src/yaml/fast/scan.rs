//! The text as content lines, and the scanners that read keys, scalars and flow punctuation
//! on a line. They only look at the text; building nodes is the reader's.
//!
//! The scanners that run for every line or value are `#[inline]`: the reader is another
//! module, which the compiler may build separately, and calling them there instead cost
//! about 3 % more instructions per load.

use crate::source::Position;
use std::borrow::Cow;

/// A content line: not blank, not a comment.
#[derive(Clone, Copy)]
pub(super) struct Line {
    /// Byte offset of the line's first character.
    start: usize,
    /// Byte offset of its newline (or of the end of input).
    end: usize,
    /// 1-based line number.
    number: u32,
    /// Number of leading spaces.
    pub(super) indent: usize,
}

/// How far the reader has read.
#[derive(Default)]
pub(super) struct Cursor {
    /// Offset of the first line not yet read.
    next: usize,
    /// Number of lines consumed so far.
    lines: u32,
    /// The current content line, `None` at end of input.
    pub(super) cur: Option<Line>,
    /// Document markers (`---`, `...` at column 0) seen; only a leading `---` is in the subset.
    pub(super) markers: usize,
}

/// What follows an item of a flow collection (see [`Src::flow_next`]).
pub(super) enum FlowNext {
    /// Another item, at this column.
    Item(usize),
    /// The closing `]` or `}`, at this column.
    Close(usize),
}

/// The text being read, with the scanners that only look at it.
#[derive(Clone, Copy)]
pub(super) struct Src<'a> {
    text: &'a str,
    b: &'a [u8],
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
pub(super) fn key_len(s: &[u8]) -> Option<usize> {
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

pub(super) fn is_sequence_entry(s: &[u8]) -> bool {
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
    #[inline]
    pub(super) fn load(&mut self, s: Src<'_>) {
        let b = s.b;
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
    /// The text, if its characters are inside the subset: printable ASCII and newlines.
    pub(super) fn new(text: &'a str) -> Option<Self> {
        let b = text.as_bytes();
        // Branch-free so it vectorizes: any control character but '\n', DEL or non-ASCII byte.
        let outside = b.iter().fold(false, |acc, &c| {
            acc | ((c < 0x20) & (c != b'\n')) | (c >= 0x7f)
        });
        (!outside).then_some(Self { text, b })
    }

    pub(super) fn rest(&self, line: Line, col: usize) -> &'a [u8] {
        &self.b[line.start + col..line.end]
    }

    pub(super) fn position(line: Line, col: usize) -> Position {
        let column = u32::try_from(col + 1).unwrap_or(u32::MAX);
        Position::new(line.number, column)
    }

    pub(super) fn skip_spaces(&self, line: Line, mut col: usize) -> usize {
        while line.start + col < line.end && self.b[line.start + col] == b' ' {
            col += 1;
        }
        col
    }

    /// True when nothing but spaces and a comment follows `col` (a comment needs a space before it).
    pub(super) fn only_comment_after(&self, line: Line, col: usize) -> bool {
        let c = self.skip_spaces(line, col);
        line.start + c == line.end || (c > col && self.b[line.start + c] == b'#')
    }

    /// After an item of a flow collection closed by `close`, ending at `end`: the next item's
    /// column (after a comma), or the closing character's; `None` for anything else, a
    /// trailing comma included.
    pub(super) fn flow_next(&self, line: Line, end: usize, close: u8) -> Option<FlowNext> {
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

    pub(super) fn text(&self, line: Line, from: usize, to: usize) -> &'a str {
        &self.text[line.start + from..line.start + to]
    }

    /// A scalar at `col`: its text, whether it was plain, and the column after it.
    #[inline]
    pub(super) fn scalar(
        &self,
        line: Line,
        col: usize,
        flow: bool,
    ) -> Option<(Cow<'a, str>, bool, usize)> {
        match *self.rest(line, col).first()? {
            b'\'' => self.single_quoted(line, col),
            b'"' => self.double_quoted(line, col),
            _ => self.plain(line, col, flow),
        }
    }

    #[inline]
    pub(super) fn plain(
        &self,
        line: Line,
        col: usize,
        flow: bool,
    ) -> Option<(Cow<'a, str>, bool, usize)> {
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

    #[inline]
    pub(super) fn single_quoted(
        &self,
        line: Line,
        col: usize,
    ) -> Option<(Cow<'a, str>, bool, usize)> {
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

    #[inline]
    pub(super) fn double_quoted(
        &self,
        line: Line,
        col: usize,
    ) -> Option<(Cow<'a, str>, bool, usize)> {
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

#[cfg(test)]
mod tests {
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
}
