//! How streamed items are handed over, and how their vectors are reused.
//!
//! The fast reader gives each streamed item away ([`Stream`]): to a sink on the same thread,
//! which is lent it ([`Lend`]), or to the reading thread's batches (`policy::parallel`). Either
//! way the item's vectors come back, emptied, to build the next items with ([`Spare`]): a
//! rule's node tree is several vectors, and taking them from the allocator and giving them back
//! for every rule cost more than reusing them.

use super::{ItemSink, Node, Value};

/// Where the fast reader puts the items it streams: each item is given away, and the
/// vectors of spent items come back through a [`Spare`] to build the next ones with.
pub(crate) trait Stream<'a> {
    /// Take the next item, and put into `spare` the vectors of any item now spent.
    fn give(&mut self, item: Node<'a>, spare: &mut Spare<'a>);
}

/// An [`ItemSink`] as a [`Stream`]: each item is lent to it, then spent.
pub(crate) struct Lend<'s, 'a>(pub(crate) &'s mut dyn ItemSink<'a>);

impl<'a> Stream<'a> for Lend<'_, 'a> {
    fn give(&mut self, mut item: Node<'a>, spare: &mut Spare<'a>) {
        self.0.item(&item);
        spare.recycle(&mut item);
    }
}

/// Emptied vectors of spent nodes, to build new nodes with: a streamed rule's vectors are
/// reused for the next rule's, which saves the allocator several calls per rule.
#[derive(Default)]
pub(crate) struct Spare<'a> {
    mappings: Vec<Vec<(Node<'a>, Node<'a>)>>,
    sequences: Vec<Vec<Node<'a>>>,
}

impl<'a> Spare<'a> {
    /// Empty `node`'s vectors into the spare ones (depth is bounded by [`super::MAX_DEPTH`]). Walked
    /// in place, and scalars (most nodes) without a call: moving each node out to take it
    /// apart cost more than reading it.
    pub(crate) fn recycle(&mut self, node: &mut Node<'a>) {
        match &mut node.value {
            Value::Scalar { .. } => {}
            Value::Sequence(items) => {
                for item in items.iter_mut() {
                    if !matches!(item.value, Value::Scalar { .. }) {
                        self.recycle(item);
                    }
                }
                items.clear();
                self.sequences.push(std::mem::take(items));
            }
            Value::Mapping(entries) => {
                for (k, v) in entries.iter_mut() {
                    if !matches!(k.value, Value::Scalar { .. }) {
                        self.recycle(k);
                    }
                    if !matches!(v.value, Value::Scalar { .. }) {
                        self.recycle(v);
                    }
                }
                entries.clear();
                self.mappings.push(std::mem::take(entries));
            }
        }
    }

    /// Take every vector `other` holds.
    pub(crate) fn append(&mut self, other: &mut Spare<'a>) {
        self.mappings.append(&mut other.mappings);
        self.sequences.append(&mut other.sequences);
    }

    /// An empty mapping's vector.
    pub(super) fn mapping(&mut self) -> Vec<(Node<'a>, Node<'a>)> {
        self.mappings.pop().unwrap_or_else(|| Vec::with_capacity(8))
    }

    /// An empty sequence's vector.
    pub(super) fn sequence(&mut self) -> Vec<Node<'a>> {
        self.sequences
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(4))
    }
}
