//! Reading YAML into a tree of nodes that remember where they were written.
//!
//! zt decodes its configuration from this tree rather than through `serde::Deserialize`
//! because it needs two things serde's model does not give: every scalar *as written* (so
//! `user: no` is the user "no", not the boolean false — YAML 1.1's "Norway problem" has no
//! place in a firewall policy) and a position for every node (so every problem is reported
//! with its line and column, all of them in one pass).
//!
//! Two readers produce the same tree:
//! - `full`: every YAML 1.2 document, through `granit-parser` (the pure-Rust event parser
//!   that `serde-saphyr` — the maintained successor of the archived `serde_yaml` — is built
//!   on), with zt's own limits on nesting and alias expansion.
//! - `fast`: a strict subset (block and single-line flow collections, plain and simple quoted
//!   scalars, comments; ASCII only) read in one pass, several times faster. It never reports an
//!   error: anything outside the subset, valid or not, is handed to the full reader. A
//!   differential test and fuzz target check that whenever the fast reader accepts a text, the
//!   full reader yields the identical tree, positions included.

pub(crate) mod fast;
pub(crate) mod full;
mod stream;

pub(crate) use stream::{Lend, Spare, Stream};

use crate::source::Position;
use std::borrow::Cow;

/// Largest configuration zt reads, in bytes. A 10 000-rule policy is about 1.4 MB.
pub const MAX_INPUT_BYTES: usize = 16 * 1024 * 1024;

/// Most nodes a document may hold after alias expansion: bounds "billion laughs" documents.
pub const MAX_NODES: usize = 4_000_000;

/// Deepest nesting accepted. zt's format needs five levels; the bound keeps hostile input
/// from exhausting the stack of anything that walks the tree.
pub const MAX_DEPTH: usize = 64;

/// One YAML node and the position of its first character.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node<'a> {
    /// Where the node starts.
    pub position: Position,
    /// What it holds.
    pub value: Value<'a>,
}

/// A scalar, a sequence or a mapping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value<'a> {
    /// A scalar as written (after quote processing). `plain` is false for quoted and block
    /// scalars, which are always text: `"6379"` is a string, `6379` may be a number.
    Scalar {
        /// The text.
        text: Cow<'a, str>,
        /// Whether it was written without quotes.
        plain: bool,
    },
    /// A sequence.
    Sequence(Vec<Node<'a>>),
    /// A mapping, in document order; duplicate keys are kept for the decoder to report.
    Mapping(Vec<(Node<'a>, Node<'a>)>),
}

impl Node<'_> {
    /// The number of nodes in this subtree, itself included.
    pub(crate) fn size(&self) -> usize {
        match &self.value {
            Value::Scalar { .. } => 1,
            Value::Sequence(items) => 1 + items.iter().map(Node::size).sum::<usize>(),
            Value::Mapping(entries) => {
                1 + entries
                    .iter()
                    .map(|(k, v)| k.size() + v.size())
                    .sum::<usize>()
            }
        }
    }
}

/// Why a text could not be read as YAML.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct YamlError {
    /// Where the reader stopped, when it knows.
    pub position: Option<Position>,
    /// What it found.
    pub message: String,
    /// What kind of problem.
    pub kind: YamlErrorKind,
}

/// The kinds of YAML reading problems.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum YamlErrorKind {
    /// Not well-formed YAML, or YAML zt does not accept (tags, several documents).
    Syntax,
    /// Larger than zt reads: input size, node count after aliases, or nesting depth.
    TooLarge,
    /// No document at all.
    Empty,
}

/// Receives the items of a streamed top-level sequence, one at a time.
///
/// Streaming keeps memory proportional to one item rather than to the whole document: the node
/// tree of a 10 000-rule file is about ten times the size of its text. Items are lent, not
/// given: the fast reader reuses an item's vectors for the next one, which saves the
/// allocator several calls per rule.
pub trait ItemSink<'a> {
    /// The next item, in document order.
    fn item(&mut self, node: &Node<'a>);
    /// Forget every item received so far: reading restarts from the first item (the fast
    /// reader met something outside its subset and hands over to the full reader).
    fn reset(&mut self);
}

/// Collects streamed items (for tests and the differential check).
impl<'a> ItemSink<'a> for Vec<Node<'a>> {
    fn item(&mut self, node: &Node<'a>) {
        self.push(node.clone());
    }
    fn reset(&mut self) {
        self.clear();
    }
}

/// Read one YAML document: the fast reader when the text is inside its subset, else the full one.
pub fn read(text: &str) -> Result<Node<'_>, YamlError> {
    read_streaming(text, None, &mut Vec::new())
}

/// Read one YAML document whose root is a mapping, handing every item of the sequence under
/// the first root key named `key` to `sink` instead of keeping it; that sequence stays in the
/// returned root, empty (with its position). Documents of any other shape are returned whole.
pub fn read_streaming<'a>(
    text: &'a str,
    key: Option<&str>,
    sink: &mut dyn ItemSink<'a>,
) -> Result<Node<'a>, YamlError> {
    check_size(text)?;
    if let Some(node) = fast::read(text, key, &mut Lend(sink)) {
        return Ok(node);
    }
    read_full_streaming(text, key, sink)
}

/// Refuse a text larger than [`MAX_INPUT_BYTES`].
pub(crate) fn check_size(text: &str) -> Result<(), YamlError> {
    if text.len() > MAX_INPUT_BYTES {
        return Err(YamlError {
            position: None,
            message: too_large(Some(text.len() as u64)),
            kind: YamlErrorKind::TooLarge,
        });
    }
    Ok(())
}

/// What the `too-large` diagnostic says of a configuration of `size` bytes, or of one read
/// from a pipe and given up on one byte past the limit (`None`).
pub(crate) fn too_large(size: Option<u64>) -> String {
    let limit = format!(
        "zt reads at most {MAX_INPUT_BYTES} bytes ({} MiB)",
        MAX_INPUT_BYTES / (1024 * 1024)
    );
    match size {
        Some(size) => format!("the configuration is {size} bytes; {limit}"),
        None => format!(
            "the configuration is more than {MAX_INPUT_BYTES} bytes; {limit}, and stopped \
             reading there"
        ),
    }
}

/// [`read_streaming`] with the full reader, after the fast one declined `text`: `sink` is
/// reset first, as it may have received items.
pub(crate) fn read_full_streaming<'a>(
    text: &'a str,
    key: Option<&str>,
    sink: &mut dyn ItemSink<'a>,
) -> Result<Node<'a>, YamlError> {
    sink.reset();
    let mut root = full::read(text)?;
    stream_from_tree(&mut root, key, &mut Lend(sink), &mut Spare::default());
    Ok(root)
}

/// Hand the items of the sequence under root key `key` to `sink`, leaving it empty.
pub(super) fn stream_from_tree<'a>(
    root: &mut Node<'a>,
    key: Option<&str>,
    sink: &mut dyn Stream<'a>,
    spare: &mut Spare<'a>,
) {
    let (Some(key), Value::Mapping(entries)) = (key, &mut root.value) else {
        return;
    };
    let streamed = entries
        .iter_mut()
        .find(|(k, _)| matches!(&k.value, Value::Scalar { text, .. } if text == key));
    if let Some((
        _,
        Node {
            value: Value::Sequence(items),
            ..
        },
    )) = streamed
    {
        for item in std::mem::take(items) {
            sink.give(item, spare);
        }
    }
}

/// For the differential fuzz target and tests: `Ok(true)` when the fast reader accepted `text`
/// and agrees with the full reader (with and without streaming `rules`), `Ok(false)` when it
/// declined, `Err` on disagreement.
#[doc(hidden)]
pub fn fast_reader_agrees(text: &str) -> Result<bool, String> {
    for key in [None, Some("rules")] {
        let mut fast_items = Vec::new();
        let Some(fast) = fast::read(text, key, &mut Lend(&mut fast_items)) else {
            return Ok(false);
        };
        let mut full_items = Vec::new();
        match full::read(text) {
            Ok(mut full) => {
                stream_from_tree(
                    &mut full,
                    key,
                    &mut Lend(&mut full_items),
                    &mut Spare::default(),
                );
                if full != fast || full_items != fast_items {
                    return Err(format!(
                        "key {key:?}\nfast {fast:?} {fast_items:?}\nfull {full:?} {full_items:?}"
                    ));
                }
            }
            Err(e) => {
                return Err(format!(
                    "fast accepted, full rejected: {e:?}\nfast {fast:?}"
                ));
            }
        }
    }
    Ok(true)
}
