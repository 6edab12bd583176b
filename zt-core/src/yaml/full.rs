//! The full YAML reader: granit-parser events folded into a [`Node`] tree.
//!
//! Aliases are expanded by copying the anchored node, but only after checking the copy against
//! [`MAX_NODES`]: an alias bomb is refused before any expansion work, in microseconds.
//! Tags are refused (zt's format has no use for them, and a tag that changes a scalar's type
//! would be a second way to spell a value). One document per file.

use super::{MAX_DEPTH, MAX_NODES, Node, Value, YamlError, YamlErrorKind};
use crate::source::Position;
use granit_parser::{ErrorKind, Event, Marker, Options, Parser, ScalarStyle, ScanError};
use std::collections::HashMap;

enum Frame<'a> {
    Sequence {
        position: Position,
        anchor: usize,
        items: Vec<Node<'a>>,
    },
    Mapping {
        position: Position,
        anchor: usize,
        entries: Vec<(Node<'a>, Node<'a>)>,
        key: Option<Node<'a>>,
    },
}

struct Builder<'a> {
    stack: Vec<Frame<'a>>,
    anchors: HashMap<usize, (Node<'a>, usize)>,
    nodes: usize,
    root: Option<Node<'a>>,
    documents: usize,
}

fn position(marker: &Marker) -> Position {
    let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    Position::new(clamp(marker.line()), clamp(marker.col().saturating_add(1)))
}

/// A parser error as zt reports it. The parser's nesting limit (zt's [`MAX_DEPTH`] for flow
/// collections, which its scanner reads ahead of the events the builder counts) is reported
/// as the builder reports its own, `too-large`: how a document is nested must not change what
/// the operator is told.
fn syntax(error: &ScanError) -> YamlError {
    let at = position(error.marker());
    if matches!(error.kind(), ErrorKind::RecursionLimitExceeded) {
        return too_deep(at);
    }
    YamlError {
        position: Some(at),
        message: error.info(),
        kind: YamlErrorKind::Syntax,
    }
}

fn too_deep(at: Position) -> YamlError {
    too_large(at, format!("nesting deeper than {MAX_DEPTH} levels"))
}

fn too_large(position: Position, message: String) -> YamlError {
    YamlError {
        position: Some(position),
        message,
        kind: YamlErrorKind::TooLarge,
    }
}

impl<'a> Builder<'a> {
    fn charge(&mut self, count: usize, at: Position) -> Result<(), YamlError> {
        self.nodes = self.nodes.saturating_add(count);
        if self.nodes > MAX_NODES {
            return Err(too_large(
                at,
                format!(
                    "the document expands to more than {MAX_NODES} nodes (through aliases or sheer size)"
                ),
            ));
        }
        Ok(())
    }

    fn open(&mut self, frame: Frame<'a>, at: Position) -> Result<(), YamlError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(too_deep(at));
        }
        self.stack.push(frame);
        Ok(())
    }

    fn finish(&mut self, node: Node<'a>, anchor: usize) -> Result<(), YamlError> {
        if anchor != 0 {
            let size = node.size();
            self.anchors.insert(anchor, (node.clone(), size));
        }
        match self.stack.last_mut() {
            None => {
                self.root = Some(node);
                Ok(())
            }
            Some(Frame::Sequence { items, .. }) => {
                items.push(node);
                Ok(())
            }
            Some(Frame::Mapping { entries, key, .. }) => {
                match key.take() {
                    None => *key = Some(node),
                    Some(k) => entries.push((k, node)),
                }
                Ok(())
            }
        }
    }

    fn event(&mut self, event: Event<'a>, at: Position) -> Result<(), YamlError> {
        match event {
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => Ok(()),
            Event::DocumentStart(..) => {
                self.documents += 1;
                if self.documents > 1 {
                    return Err(YamlError {
                        position: Some(at),
                        message: "a second YAML document; a zt configuration is one document"
                            .into(),
                        kind: YamlErrorKind::Syntax,
                    });
                }
                Ok(())
            }
            Event::Scalar(text, style, anchor, tag) => {
                refuse_tag(tag.is_some(), at)?;
                self.charge(1, at)?;
                let plain = style == ScalarStyle::Plain;
                let node = Node {
                    position: at,
                    value: Value::Scalar { text, plain },
                };
                self.finish(node, anchor)
            }
            Event::SequenceStart(_, anchor, tag) => {
                refuse_tag(tag.is_some(), at)?;
                self.charge(1, at)?;
                let frame = Frame::Sequence {
                    position: at,
                    anchor,
                    items: Vec::new(),
                };
                self.open(frame, at)
            }
            Event::MappingStart(_, anchor, tag) => {
                refuse_tag(tag.is_some(), at)?;
                self.charge(1, at)?;
                let frame = Frame::Mapping {
                    position: at,
                    anchor,
                    entries: Vec::new(),
                    key: None,
                };
                self.open(frame, at)
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor) = match self.stack.pop() {
                    Some(Frame::Sequence {
                        position,
                        anchor,
                        items,
                    }) => (
                        Node {
                            position,
                            value: Value::Sequence(items),
                        },
                        anchor,
                    ),
                    Some(Frame::Mapping {
                        position,
                        anchor,
                        entries,
                        ..
                    }) => (
                        Node {
                            position,
                            value: Value::Mapping(entries),
                        },
                        anchor,
                    ),
                    None => return Err(internal(at)),
                };
                self.finish(node, anchor)
            }
            Event::Alias(id) => {
                let Some((node, size)) = self.anchors.get(&id) else {
                    return Err(YamlError {
                        position: Some(at),
                        message: "alias to an unknown anchor".into(),
                        kind: YamlErrorKind::Syntax,
                    });
                };
                let (mut node, size) = (node.clone(), *size);
                self.charge(size, at)?;
                node.position = at;
                self.finish(node, 0)
            }
            _ => Ok(()),
        }
    }
}

fn refuse_tag(tagged: bool, at: Position) -> Result<(), YamlError> {
    if tagged {
        return Err(YamlError {
            position: Some(at),
            message:
                "YAML tags (`!...`) are not accepted in a zt configuration; write the plain value"
                    .into(),
            kind: YamlErrorKind::Syntax,
        });
    }
    Ok(())
}

fn internal(at: Position) -> YamlError {
    YamlError {
        position: Some(at),
        message: "unbalanced YAML events".into(),
        kind: YamlErrorKind::Syntax,
    }
}

/// Read one document of any YAML, within zt's limits.
pub(crate) fn read(text: &str) -> Result<Node<'_>, YamlError> {
    // The scanner stops at zt's depth, where the 65th flow level opens (its default, 255,
    // would let it read that far ahead of the builder). Flow levels alone never exceed the
    // whole depth, so this refuses nothing the builder would accept.
    let mut options = Options::default();
    options.flow_nesting_limit = MAX_DEPTH;
    let mut parser = Parser::new_from_str_with_options(text, options);
    let mut builder = Builder {
        stack: Vec::new(),
        anchors: HashMap::new(),
        nodes: 0,
        root: None,
        documents: 0,
    };
    while let Some(next) = parser.next_event() {
        let (event, span) = next.map_err(|e| syntax(&e))?;
        builder.event(event, position(&span.start))?;
    }
    builder.root.ok_or_else(|| YamlError {
        position: None,
        message: "the configuration is empty: it holds no YAML document".into(),
        kind: YamlErrorKind::Empty,
    })
}
