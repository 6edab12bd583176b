//! Port sets: "any port", or a sorted list of disjoint inclusive ranges.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

/// An inclusive range of ports, `first <= last`, never containing port 0.
///
/// Closed (see [the policy module](super#a-new-field-cannot-go-unnoticed)): backends read it
/// through [`PortRange::parts`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PortRange {
    first: u16,
    last: u16,
}

impl PortRange {
    /// A range; `None` when `first > last` or `first == 0`.
    pub fn new(first: u16, last: u16) -> Option<Self> {
        (first >= 1 && first <= last).then_some(Self { first, last })
    }

    /// A single port; `None` for port 0.
    pub fn single(port: u16) -> Option<Self> {
        Self::new(port, port)
    }

    /// First port.
    pub fn first(self) -> u16 {
        self.first
    }

    /// Last port (inclusive).
    pub fn last(self) -> u16 {
        self.last
    }

    /// Whether `port` is inside.
    pub fn contains(self, port: u16) -> bool {
        self.first <= port && port <= self.last
    }

    /// Whether this range holds one port.
    pub fn is_single(self) -> bool {
        self.first == self.last
    }

    /// Every field, for a destructuring that names them all.
    pub fn parts(self) -> PortRangeParts {
        // No `..`: a new field must be added to the view.
        let PortRange { first, last } = self;
        PortRangeParts { first, last }
    }
}

/// Every field of a [`PortRange`]: how code outside zt-core reads a range. Not
/// `#[non_exhaustive]`, so that a field added here fails to compile in every backend that
/// renders a range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortRangeParts {
    /// First port.
    pub first: u16,
    /// Last port (inclusive).
    pub last: u16,
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_single() {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

/// The ports a rule matches: any, or a non-empty normalized list (sorted, disjoint, merged).
///
/// Closed. It needs no view of its own: [`PortSet::ranges`] is all it holds.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PortSet {
    ranges: Option<PortList>,
}

/// Ranges a port set holds in place, without a list of its own.
const INLINE: usize = 3;

/// A port set's ranges, read as a slice. Most rules name one port or a few, so up to
/// [`INLINE`] ranges are stored in place (in the room a `Vec` takes): a list of their own would
/// cost a 10 000-rule policy with two-range port lists an allocation and a free per rule.
#[derive(Clone)]
enum PortList {
    Inline {
        len: u8,
        ranges: [PortRange; INLINE],
    },
    Heap(Vec<PortRange>),
}

impl PortList {
    /// Sorted, with overlapping or adjacent ranges merged.
    fn normalized(mut ranges: impl Iterator<Item = PortRange>) -> Self {
        let mut inline = [PortRange { first: 1, last: 1 }; INLINE];
        let mut len = 0;
        while len < INLINE {
            let Some(r) = ranges.next() else { break };
            inline[len] = r;
            len += 1;
        }
        let mut this = match ranges.next() {
            // `len` is at most `INLINE`.
            None => Self::Inline {
                len: len as u8,
                ranges: inline,
            },
            Some(next) => Self::Heap(inline.into_iter().chain([next]).chain(ranges).collect()),
        };
        if len > 1 {
            let kept = merge(this.as_mut_slice());
            this.truncate(kept);
        }
        this
    }

    fn as_mut_slice(&mut self) -> &mut [PortRange] {
        match self {
            Self::Inline { len, ranges } => &mut ranges[..usize::from(*len)],
            Self::Heap(ranges) => ranges,
        }
    }

    fn truncate(&mut self, kept: usize) {
        match self {
            Self::Inline { len, .. } => *len = (*len).min(u8::try_from(kept).unwrap_or(u8::MAX)),
            Self::Heap(ranges) => ranges.truncate(kept),
        }
    }
}

/// Sort `ranges` and merge overlapping or adjacent ones into its first `n` items; returns `n`.
fn merge(ranges: &mut [PortRange]) -> usize {
    ranges.sort_unstable();
    if ranges.is_empty() {
        return 0;
    }
    // Merge in place: `kept` ranges are final, the rest are still to be merged.
    let mut kept = 1;
    for i in 1..ranges.len() {
        let r = ranges[i];
        let prev = &mut ranges[kept - 1];
        if u32::from(r.first) <= u32::from(prev.last) + 1 {
            prev.last = prev.last.max(r.last);
        } else {
            ranges[kept] = r;
            kept += 1;
        }
    }
    kept
}

impl Deref for PortList {
    type Target = [PortRange];
    fn deref(&self) -> &[PortRange] {
        match self {
            Self::Inline { len, ranges } => &ranges[..usize::from(*len)],
            Self::Heap(ranges) => ranges,
        }
    }
}

impl PartialEq for PortList {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for PortList {}

impl Hash for PortList {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (**self).hash(state);
    }
}

impl fmt::Debug for PortList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

impl Serialize for PortList {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (**self).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for PortList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // As written, without normalizing again: a set serializes its normalized ranges.
        let items = Vec::<PortRange>::deserialize(deserializer)?;
        let len = u8::try_from(items.len())
            .ok()
            .filter(|&n| usize::from(n) <= INLINE);
        Ok(match len {
            Some(len) => {
                let mut ranges = [PortRange { first: 1, last: 1 }; INLINE];
                ranges[..items.len()].copy_from_slice(&items);
                Self::Inline { len, ranges }
            }
            None => Self::Heap(items),
        })
    }
}

impl PortSet {
    /// Every port.
    pub fn any() -> Self {
        Self { ranges: None }
    }

    /// The union of `ranges`, normalized; `None` when `ranges` is empty (a set that matches no
    /// port is never what a rule means).
    pub fn from_ranges(ranges: impl IntoIterator<Item = PortRange>) -> Option<Self> {
        let merged = PortList::normalized(ranges.into_iter());
        match *merged {
            [] => None,
            [only] if only.first == 1 && only.last == u16::MAX => Some(Self::any()),
            _ => Some(Self {
                ranges: Some(merged),
            }),
        }
    }

    /// The ranges, or `None` for any port.
    pub fn ranges(&self) -> Option<&[PortRange]> {
        let PortSet { ranges } = self;
        ranges.as_deref()
    }

    /// Whether this set is "any port".
    pub fn is_any(&self) -> bool {
        self.ranges().is_none()
    }

    /// Whether `port` is in the set. A packet without a port (ICMP) is only in "any".
    pub fn contains(&self, port: Option<u16>) -> bool {
        match (self.ranges(), port) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(r), Some(p)) => {
                let i = r.partition_point(|x| x.last < p);
                r.get(i).is_some_and(|x| x.contains(p))
            }
        }
    }

    /// Whether every port of `other` is in `self`.
    pub fn covers(&self, other: &PortSet) -> bool {
        match (self.ranges(), other.ranges()) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(mine), Some(theirs)) => theirs.iter().all(|t| {
                let i = mine.partition_point(|x| x.last < t.first);
                mine.get(i)
                    .is_some_and(|m| m.first <= t.first && t.last <= m.last)
            }),
        }
    }
}

impl fmt::Display for PortSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ranges() {
            None => f.write_str("any"),
            Some(r) => {
                for (i, x) in r.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{x}")?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(r: &[(u16, u16)]) -> PortSet {
        PortSet::from_ranges(r.iter().filter_map(|&(a, b)| PortRange::new(a, b)))
            .unwrap_or_else(PortSet::any)
    }

    #[test]
    fn ranges_are_sorted_and_merged() {
        let s = set(&[(30, 40), (1, 5), (6, 10), (35, 50)]);
        assert_eq!(s.to_string(), "1-10,30-50");
        assert!(set(&[(1, 65535)]).is_any());
    }

    #[test]
    fn contains_and_covers() {
        let s = set(&[(22, 22), (8000, 8100)]);
        assert!(s.contains(Some(8050)) && !s.contains(Some(23)) && !s.contains(None));
        assert!(s.covers(&set(&[(8001, 8002)])));
        assert!(!s.covers(&set(&[(8001, 8200)])));
        assert!(!s.covers(&PortSet::any()));
        assert!(PortSet::any().covers(&s));
    }

    proptest::proptest! {
        /// However many ranges (stored in place or not), a set holds exactly their ports,
        /// as sorted disjoint non-adjacent ranges, and serializes back to itself.
        #[test]
        fn from_ranges_holds_exactly_the_ports_given(
            spans in proptest::collection::vec((1u16..80, 0u16..6), 0..9),
        ) {
            let ranges: Vec<PortRange> = spans
                .iter()
                .filter_map(|&(first, len)| PortRange::new(first, first + len))
                .collect();
            let Some(s) = PortSet::from_ranges(ranges.clone()) else {
                proptest::prop_assert!(ranges.is_empty());
                return Ok(());
            };
            let held = s.ranges().unwrap_or(&[]);
            for w in held.windows(2) {
                proptest::prop_assert!(u32::from(w[0].last()) + 1 < u32::from(w[1].first()));
            }
            for port in 0..90 {
                let given = ranges.iter().any(|r| r.contains(port));
                proptest::prop_assert_eq!(s.contains(Some(port)), given, "{}", port);
            }
            let json = serde_json::to_string(&s).map_err(|e| proptest::test_runner::TestCaseError::fail(e.to_string()))?;
            let back: PortSet = serde_json::from_str(&json).map_err(|e| proptest::test_runner::TestCaseError::fail(e.to_string()))?;
            proptest::prop_assert_eq!(back, s);
        }
    }

    #[test]
    fn port_zero_and_inverted_ranges_do_not_exist() {
        assert_eq!(PortRange::new(0, 5), None);
        assert_eq!(PortRange::new(9, 5), None);
        assert_eq!(PortSet::from_ranges([]), None);
    }
}
