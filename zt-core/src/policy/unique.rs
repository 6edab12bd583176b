//! The duplicate-name check: each valid rule name with the line it was first written on.
//!
//! A map from shared names to positions would hold 40 bytes per name and another reference to
//! every name: for a 10 000-rule file, the largest table a load writes to, a page fault every
//! hundred rules. This table holds 8 bytes per name, the name's slot and line, and finds the
//! name itself where it already is: in the validated rule, or (for a rule that failed
//! validation, whose name still counts) in a short list of its own.

use super::{Rule, RuleName};
use foldhash::fast::RandomState;
use hashbrown::HashTable;
use std::hash::BuildHasher;

/// What has a name: a validated rule.
pub(crate) trait Named {
    fn name(&self) -> &[u8];
}

impl Named for Rule {
    fn name(&self) -> &[u8] {
        self.name.0.as_bytes()
    }
}

/// Where a noted name is: a validated rule's index, or (with [`FAILED`] set) an index into
/// [`FirstUse::failed`].
type Slot = u32;

/// Marks a slot of a failed rule's name.
const FAILED: Slot = 1 << 31;

/// The names noted so far. Hashed with foldhash, whose per-table random seed keeps a crafted
/// file from degrading the table.
#[derive(Default)]
pub(crate) struct FirstUse {
    hasher: RandomState,
    /// `(slot, line)` per distinct name; line 0 when the name's position is unknown.
    table: HashTable<(Slot, u32)>,
    failed: Vec<RuleName>,
}

impl FirstUse {
    /// Room for about `names` names.
    pub(crate) fn with_capacity(names: usize) -> Self {
        Self {
            table: HashTable::with_capacity(names),
            ..Self::default()
        }
    }

    /// Note the name of the last rule of `rules`, first written on `line`; if an earlier rule
    /// has it, the line that one's was written on (`Some(None)` when unknown).
    pub(crate) fn rule(&mut self, rules: &[impl Named], line: Option<u32>) -> Option<Option<u32>> {
        let slot = Slot::try_from(rules.len().checked_sub(1)?)
            .ok()
            .filter(|s| s & FAILED == 0)?;
        self.note(rules, slot, line)
    }

    /// Note the name of a rule that failed validation, as [`FirstUse::rule`] does.
    pub(crate) fn failed(
        &mut self,
        rules: &[impl Named],
        name: RuleName,
        line: Option<u32>,
    ) -> Option<Option<u32>> {
        let slot = Slot::try_from(self.failed.len())
            .ok()
            .filter(|s| s & FAILED == 0)?;
        self.failed.push(name);
        self.note(rules, slot | FAILED, line)
    }

    fn note(&mut self, rules: &[impl Named], slot: Slot, line: Option<u32>) -> Option<Option<u32>> {
        let failed = &self.failed;
        let name_of = |slot: Slot| -> &[u8] {
            if slot & FAILED == 0 {
                rules.get(slot as usize).map_or(&[], Named::name)
            } else {
                failed
                    .get((slot & !FAILED) as usize)
                    .map_or(&[], |n| n.0.as_bytes())
            }
        };
        let name = name_of(slot);
        let hash = self.hasher.hash_one(name);
        let hasher = &self.hasher;
        let entry = self.table.entry(
            hash,
            |&(s, _)| name_of(s) == name,
            |&(s, _)| hasher.hash_one(name_of(s)),
        );
        match entry {
            hashbrown::hash_table::Entry::Occupied(first) => {
                let (_, first_line) = *first.get();
                if slot & FAILED != 0 {
                    // Only the first use is looked for again.
                    self.failed.pop();
                }
                Some((first_line != 0).then_some(first_line))
            }
            hashbrown::hash_table::Entry::Vacant(slot_for) => {
                slot_for.insert((slot, line.unwrap_or(0)));
                None
            }
        }
    }

    /// Forget every name.
    pub(crate) fn clear(&mut self) {
        self.table.clear();
        self.failed.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::{FirstUse, Named};
    use crate::policy::RuleName;
    use proptest::prelude::*;
    use std::collections::HashMap;

    impl Named for RuleName {
        fn name(&self) -> &[u8] {
            self.0.as_bytes()
        }
    }

    proptest! {
        /// Rules named from a small alphabet (so names repeat), some valid and some not, some
        /// names without a position: each use after the first reports the first one's line,
        /// exactly as a map from name to first line does.
        #[test]
        fn reports_what_a_map_of_first_lines_does(
            uses in proptest::collection::vec((0..12usize, any::<bool>(), proptest::option::of(1..1000u32)), 0..60),
        ) {
            let mut table = FirstUse::with_capacity(4);
            let mut rules: Vec<RuleName> = Vec::new();
            let mut reference: HashMap<String, Option<u32>> = HashMap::new();
            for (n, valid, line) in uses {
                let name = RuleName::new(&format!("rule-{n}")).map_err(TestCaseError::fail)?;
                let expected = reference.get(name.as_str()).copied();
                reference.entry(name.as_str().to_owned()).or_insert(line);
                let got = if valid {
                    rules.push(name);
                    table.rule(&rules, line)
                } else {
                    table.failed(&rules, name, line)
                };
                prop_assert_eq!(got, expected);
            }
        }
    }
}
