//! Port sets: "any port", or a sorted list of disjoint inclusive ranges.

use super::ShortList;
use serde::{Deserialize, Serialize};
use std::fmt;

/// An inclusive range of ports, `first <= last`, never containing port 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
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
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PortSet {
    ranges: Option<ShortList<PortRange>>,
}

impl PortSet {
    /// Every port.
    pub fn any() -> Self {
        Self { ranges: None }
    }

    /// The union of `ranges`, normalized; `None` when `ranges` is empty (a set that matches no
    /// port is never what a rule means).
    pub fn from_ranges(ranges: impl IntoIterator<Item = PortRange>) -> Option<Self> {
        let mut ranges = ranges.into_iter();
        let first = ranges.next()?;
        let merged = match ranges.next() {
            // The common case: one range, nothing to merge, no list to allocate.
            None => ShortList::one(first),
            Some(second) => ShortList::from(Self::merge([first, second].into_iter().chain(ranges))),
        };
        if let [only] = *merged
            && only.first == 1
            && only.last == u16::MAX
        {
            return Some(Self::any());
        }
        Some(Self {
            ranges: Some(merged),
        })
    }

    /// Sort and merge overlapping or adjacent ranges.
    fn merge(ranges: impl Iterator<Item = PortRange>) -> Vec<PortRange> {
        let mut merged: Vec<PortRange> = ranges.collect();
        merged.sort_unstable();
        // Merge in place: `kept` ranges are final, the rest are still to be merged.
        let mut kept = 1;
        for i in 1..merged.len() {
            let r = merged[i];
            let prev = &mut merged[kept - 1];
            if u32::from(r.first) <= u32::from(prev.last) + 1 {
                prev.last = prev.last.max(r.last);
            } else {
                merged[kept] = r;
                kept += 1;
            }
        }
        merged.truncate(kept);
        merged
    }

    /// The ranges, or `None` for any port.
    pub fn ranges(&self) -> Option<&[PortRange]> {
        self.ranges.as_deref()
    }

    /// Whether this set is "any port".
    pub fn is_any(&self) -> bool {
        self.ranges.is_none()
    }

    /// Whether `port` is in the set. A packet without a port (ICMP) is only in "any".
    pub fn contains(&self, port: Option<u16>) -> bool {
        match (&self.ranges, port) {
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
        match (&self.ranges, &other.ranges) {
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
        match &self.ranges {
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

    #[test]
    fn port_zero_and_inverted_ranges_do_not_exist() {
        assert_eq!(PortRange::new(0, 5), None);
        assert_eq!(PortRange::new(9, 5), None);
        assert_eq!(PortSet::from_ranges([]), None);
    }
}
