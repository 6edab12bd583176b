//! Runs: consecutive rules with one hook and one verdict, collected into the interval sets
//! they fill, or kept as plain rules while the run stays small.

use super::SET_MIN_TUPLES;
use super::tuple::{Shape, Tuple, keyed};
use crate::model::{Dir, Element, Family, Field, Set, Stmt, Value};
use foldhash::HashMap;

/// How two key values relate.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Overlap {
    Disjoint,
    /// The first contains the second.
    Contains,
    Partial,
}

fn overlap(a: &Value, b: &Value) -> Overlap {
    match (a, b) {
        (Value::Id(x), Value::Id(y)) if x == y => Overlap::Contains,
        (Value::Proto(x), Value::Proto(y)) if x == y => Overlap::Contains,
        (Value::Net(x), Value::Net(y)) => {
            if x.contains(y) {
                Overlap::Contains
            } else if y.contains(x) {
                Overlap::Partial
            } else {
                Overlap::Disjoint
            }
        }
        (Value::Ports(a1, b1), Value::Ports(a2, b2)) => {
            if a1 <= a2 && b2 <= b1 {
                Overlap::Contains
            } else if b1 < a2 || b2 < a1 {
                Overlap::Disjoint
            } else {
                Overlap::Partial
            }
        }
        _ => Overlap::Disjoint,
    }
}

/// Where a new element stands against the elements already in a set.
enum Placement {
    New,
    Covered,
    Conflicts,
}

/// The exact fields of a key: its id and its protocol. Every element of a set has the same
/// fields, so the values alone tell two keys apart.
type ExactKey = (Option<u32>, Option<u8>);

/// A set being filled, with indexes that keep overlap checks cheap: elements by their exact
/// key fields (ids, protocol), and among those, single-port elements by port apart from
/// elements with a port range. A new single-port element can only overlap elements with its
/// port or with a range; only a new range needs every element with its exact fields.
pub(super) struct Filling {
    pub(super) set: Set,
    by_exact: HashMap<ExactKey, Vec<usize>>,
    by_port: HashMap<(ExactKey, u16), Vec<usize>>,
    ranged: HashMap<ExactKey, Vec<usize>>,
}

fn exact_key(values: &[Value]) -> ExactKey {
    let mut key = (None, None);
    for v in values {
        match v {
            Value::Id(n) => key.0 = Some(*n),
            Value::Proto(p) => key.1 = Some(p.number()),
            Value::Net(_) | Value::Ports(..) => {}
        }
    }
    key
}

/// The single port of a key, if it has a port field holding one port.
fn single_port(values: &[Value]) -> Option<u16> {
    values.iter().find_map(|v| match v {
        Value::Ports(a, b) if a == b => Some(*a),
        _ => None,
    })
}

/// Whether a key has a port field holding a range.
fn has_port_range(values: &[Value]) -> bool {
    values
        .iter()
        .any(|v| matches!(v, Value::Ports(a, b) if a != b))
}

impl Filling {
    fn new(fields: Vec<Field>) -> Self {
        Filling {
            set: Set {
                name: String::new(),
                fields,
                interval: false,
                elements: Vec::new(),
            },
            by_exact: HashMap::default(),
            by_port: HashMap::default(),
            ranged: HashMap::default(),
        }
    }

    fn place(&self, values: &[Value]) -> Placement {
        let key = exact_key(values);
        let none: &[usize] = &[];
        let (first, then) = match single_port(values) {
            Some(port) => (
                self.by_port.get(&(key, port)).map_or(none, Vec::as_slice),
                self.ranged.get(&key).map_or(none, Vec::as_slice),
            ),
            None => (self.by_exact.get(&key).map_or(none, Vec::as_slice), none),
        };
        for &i in first.iter().chain(then) {
            let old = &self.set.elements[i].values;
            let mut all_contain = true;
            let mut disjoint = false;
            for (a, b) in old.iter().zip(values) {
                match overlap(a, b) {
                    Overlap::Disjoint => {
                        disjoint = true;
                        break;
                    }
                    Overlap::Partial => all_contain = false,
                    Overlap::Contains => {}
                }
            }
            if disjoint {
                continue;
            }
            return if all_contain {
                Placement::Covered
            } else {
                Placement::Conflicts
            };
        }
        Placement::New
    }

    fn push(&mut self, values: Vec<Value>, comment: &str) {
        self.set.interval |= values.iter().any(|v| match v {
            Value::Net(n) => n.prefix_len() < n.max_prefix_len(),
            Value::Ports(a, b) => a != b,
            Value::Id(_) | Value::Proto(_) => false,
        });
        let index = self.set.elements.len();
        let key = exact_key(&values);
        match single_port(&values) {
            Some(port) => self.by_port.entry((key, port)).or_default().push(index),
            None if has_port_range(&values) => self.ranged.entry(key).or_default().push(index),
            // Without a port field every element has the same port shape: only by_exact.
            None => {}
        }
        self.by_exact.entry(key).or_default().push(index);
        self.set.elements.push(Element {
            values,
            comment: comment.to_owned(),
        });
    }
}

impl Set {
    /// Make an interval set whose intervals are all networks of one prefix length per
    /// address field (no port range) a hash set keyed by the masked address: the same
    /// members, exact keys. Lookups mask the address ([`Field::Net`]); elements hold the
    /// network address.
    pub(super) fn hash_networks(&mut self) {
        if !self.interval {
            return;
        }
        let mut prefixes = Vec::with_capacity(self.fields.len());
        for (i, field) in self.fields.iter().enumerate() {
            let mut common = None;
            for e in &self.elements {
                match (field, e.values.get(i)) {
                    (Field::Addr(..), Some(Value::Net(n))) => match common {
                        None => common = Some(n.prefix_len()),
                        Some(p) if p == n.prefix_len() => {}
                        Some(_) => return,
                    },
                    (_, Some(Value::Ports(a, b))) if a != b => return,
                    _ => {}
                }
            }
            prefixes.push(common);
        }
        for (field, prefix) in self.fields.iter_mut().zip(prefixes) {
            if let (Field::Addr(family, dir), Some(p)) = (*field, prefix) {
                let max = match family {
                    Family::V4 => 32,
                    Family::V6 => 128,
                };
                if p < max {
                    *field = Field::Net(family, dir, p);
                }
            }
        }
        self.interval = false;
    }
}

/// A run of consecutive rules being collected for one hook: the rules (for plain rules, if
/// the run stays small) and the sets they fill (if it does not).
pub(super) struct Run<'a> {
    pub(super) verdict: Vec<Stmt>,
    /// The rules, while the run is small enough to stay plain rules.
    pub(super) rules: Vec<(&'a str, Vec<Tuple<'a>>)>,
    pub(super) tuples: usize,
    /// Shapes in order of first use, each with the set it is filling (a run has a handful).
    pub(super) fillings: Vec<(Shape, Filling)>,
}

impl<'a> Run<'a> {
    pub(super) fn new(verdict: Vec<Stmt>) -> Self {
        Self {
            verdict,
            rules: Vec::new(),
            tuples: 0,
            fillings: Vec::new(),
        }
    }

    fn filling(&self, shape: &Shape) -> Option<usize> {
        self.fillings.iter().position(|(s, _)| s == shape)
    }

    /// Add a rule whose tuples are all keyed; `false` (and nothing added) when one of them
    /// partly overlaps an element already in the run's sets.
    pub(super) fn add(&mut self, name: &'a str, tuples: &[Tuple<'a>], dir: Dir) -> bool {
        let mut placed = Vec::with_capacity(tuples.len());
        for t in tuples {
            let Some((shape, values)) = keyed(t, dir) else {
                return false;
            };
            let placement = self
                .filling(&shape)
                .map_or(Placement::New, |i| self.fillings[i].1.place(&values));
            match placement {
                Placement::Conflicts => return false,
                Placement::Covered => {}
                Placement::New => placed.push((shape, values)),
            }
        }
        for (shape, values) in placed {
            let i = self.filling(&shape).unwrap_or_else(|| {
                self.fillings.push((shape, Filling::new(shape.fields())));
                self.fillings.len() - 1
            });
            self.fillings[i].1.push(values, name);
        }
        self.tuples += tuples.len();
        if self.tuples < SET_MIN_TUPLES {
            self.rules.push((name, tuples.to_vec()));
        } else {
            // The run will be set lookups: its rules are no longer needed.
            self.rules = Vec::new();
        }
        true
    }
}
