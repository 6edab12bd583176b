//! Set elements read straight from the attributes of a dump message, in safe Rust.
//!
//! A table of 10 000 rules is mostly set elements, and every plan, verify and status reads
//! them all. Parsed through libnftnl, each element becomes a C object with its own
//! allocations, then a [`LowElem`]; that took about half of a read (14 ms for 10 000
//! elements here, the other half being the kernel's dump). The attributes of an element are
//! few and fixed (its key, the end of its interval, its counter, its comment), so they are read
//! here directly. Anything else — an expression other than a counter, an attribute zt never
//! writes — makes [`decode`] return `None`, and the message is read through libnftnl as
//! before, so what is read never depends on which path read it.

use crate::ffi::comment_from_udata;
use crate::low::{LowElem, LowExpr};

/// `sizeof(struct nlmsghdr) + sizeof(struct nfgenmsg)`: where a message's attributes start.
const ATTRS_AT: usize = 16 + 4;

// Attribute types, from linux/netfilter/nf_tables.h (uapi; the kernel never renumbers them).
const LIST_TABLE: u16 = 1;
const LIST_SET: u16 = 2;
const LIST_ELEMENTS: u16 = 3;
/// Only in messages that add elements to a set created in the same batch (tests read those).
const LIST_SET_ID: u16 = 4;
const LIST_ELEM: u16 = 1;
const ELEM_KEY: u16 = 1;
const ELEM_FLAGS: u16 = 3;
const ELEM_USERDATA: u16 = 6;
const ELEM_EXPR: u16 = 7;
const ELEM_KEY_END: u16 = 10;
const ELEM_EXPRESSIONS: u16 = 11;
const DATA_VALUE: u16 = 1;
const EXPR_NAME: u16 = 1;
const EXPR_DATA: u16 = 2;
const COUNTER_BYTES: u16 = 1;
const COUNTER_PACKETS: u16 = 2;
const COUNTER_PAD: u16 = 3;

/// The attributes in `buf`, as (type without flag bits, payload), read in place; an item is
/// `None` where one is malformed (and nothing follows it).
struct Attributes<'a> {
    buf: &'a [u8],
}

fn attributes(buf: &[u8]) -> Attributes<'_> {
    Attributes { buf }
}

impl<'a> Iterator for Attributes<'a> {
    type Item = Option<(u16, &'a [u8])>;

    fn next(&mut self) -> Option<Self::Item> {
        let buf = self.buf;
        if buf.len() < 4 {
            return None;
        }
        let len = usize::from(u16::from_ne_bytes([buf[0], buf[1]]));
        let kind = u16::from_ne_bytes([buf[2], buf[3]]) & 0x3fff;
        if len < 4 || len > buf.len() {
            self.buf = &[];
            return Some(None);
        }
        self.buf = buf.get(len.next_multiple_of(4)..).unwrap_or_default();
        Some(Some((kind, &buf[4..len])))
    }
}

/// A NUL-terminated string attribute.
fn string(payload: &[u8]) -> Option<String> {
    let text = payload.split(|b| *b == 0).next()?;
    String::from_utf8(text.to_vec()).ok()
}

/// The value of a nested data attribute (a key, or an interval's end).
fn data(payload: &[u8]) -> Option<Vec<u8>> {
    for attribute in attributes(payload) {
        let (kind, value) = attribute?;
        if kind == DATA_VALUE {
            return Some(value.to_vec());
        }
    }
    None
}

fn be64(payload: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(payload.try_into().ok()?))
}

/// A counter expression; `None` for any other expression.
fn counter(payload: &[u8]) -> Option<LowExpr> {
    let mut name = None;
    let mut values = None;
    for attribute in attributes(payload) {
        let (kind, value) = attribute?;
        match kind {
            EXPR_NAME => name = Some(value.split(|b| *b == 0).next()?),
            EXPR_DATA => values = Some(value),
            _ => return None,
        }
    }
    if name != Some(b"counter".as_slice()) {
        return None;
    }
    let (mut packets, mut bytes) = (0, 0);
    for attribute in attributes(values.unwrap_or_default()) {
        let (kind, value) = attribute?;
        match kind {
            COUNTER_BYTES => bytes = be64(value)?,
            COUNTER_PACKETS => packets = be64(value)?,
            COUNTER_PAD => {}
            _ => return None,
        }
    }
    Some(LowExpr::Counter { packets, bytes })
}

fn element(payload: &[u8]) -> Option<LowElem> {
    let mut elem = LowElem {
        key: Vec::new(),
        key_end: None,
        exprs: Vec::new(),
        comment: None,
    };
    for attribute in attributes(payload) {
        let (kind, value) = attribute?;
        match kind {
            ELEM_KEY => elem.key = data(value)?,
            ELEM_KEY_END => elem.key_end = Some(data(value)?),
            ELEM_USERDATA => elem.comment = comment_from_udata(value),
            ELEM_EXPR => elem.exprs.push(counter(value)?),
            ELEM_EXPRESSIONS => {
                for member in attributes(value) {
                    let (kind, expr) = member?;
                    if kind != LIST_ELEM {
                        return None;
                    }
                    elem.exprs.push(counter(expr)?);
                }
            }
            // Flags are not part of an element zt compares (libnftnl's reading ignored them
            // too); an interval's end comes as its own attribute.
            ELEM_FLAGS => {}
            _ => return None,
        }
    }
    Some(elem)
}

/// The table, set and elements of one set-element dump message (`bytes` is the whole
/// message, header included), or `None` for a message this reader does not take.
pub(crate) fn decode(bytes: &[u8]) -> Option<(String, String, Vec<LowElem>)> {
    let (mut table, mut set, mut elements) = (None, None, Vec::new());
    for attribute in attributes(bytes.get(ATTRS_AT..)?) {
        let (kind, value) = attribute?;
        match kind {
            LIST_TABLE => table = Some(string(value)?),
            LIST_SET => set = Some(string(value)?),
            LIST_SET_ID => {}
            LIST_ELEMENTS => {
                for member in attributes(value) {
                    let (kind, payload) = member?;
                    if kind != LIST_ELEM {
                        return None;
                    }
                    elements.push(element(payload)?);
                }
            }
            _ => return None,
        }
    }
    Some((table?, set?, elements))
}
