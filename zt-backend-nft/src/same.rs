//! Whether two tables hold the same objects, counter values aside — decided without writing a
//! line of text.
//!
//! The common plan and verify find the kernel already holding what the policy needs (a
//! re-apply, the check right after an apply). Comparing 10 000 rules and set elements as the
//! readable units of [`crate::compare`] formats every one of them; comparing the structures
//! first costs a small fraction of that, and only a table that differs is compared unit by
//! unit to say how.

use crate::low::{LowElem, LowExpr, LowSet, LowTable};

/// `a` and `b` hold the same chains, rules, sets and elements, in any element order, with any
/// counter values.
pub(crate) fn same(a: &LowTable, b: &LowTable) -> bool {
    a.name == b.name
        && a.chains.len() == b.chains.len()
        && a.chains.iter().zip(&b.chains).all(|(x, y)| {
            x.name == y.name
                && x.base == y.base
                && x.rules.len() == y.rules.len()
                && x.rules
                    .iter()
                    .zip(&y.rules)
                    .all(|(r, s)| r.comment == s.comment && exprs(&r.exprs, &s.exprs))
        })
        && a.sets.len() == b.sets.len()
        && a.sets.iter().zip(&b.sets).all(|(x, y)| set(x, y))
}

/// Expressions equal but for counter values (state, not configuration).
fn exprs(a: &[LowExpr], b: &[LowExpr]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|pair| match pair {
            (LowExpr::Counter { .. }, LowExpr::Counter { .. }) => true,
            (x, y) => x == y,
        })
}

fn set(a: &LowSet, b: &LowSet) -> bool {
    let LowSet {
        name,
        flags,
        key_type,
        key_len,
        fields,
        userdata,
        size,
        exprs: set_exprs,
        elements,
    } = a;
    *name == b.name
        && *flags == b.flags
        && *key_type == b.key_type
        && *key_len == b.key_len
        && *fields == b.fields
        && *userdata == b.userdata
        && *size == b.size
        && exprs(set_exprs, &b.exprs)
        && elements.len() == b.elements.len()
        && (elements.iter().zip(&b.elements).all(|(x, y)| element(x, y))
            || same_elements(elements, &b.elements))
}

/// The same elements in any order. A set has no order, and the kernel lists a hash set's
/// elements in its buckets' order, not in the order they were added.
fn same_elements(a: &[LowElem], b: &[LowElem]) -> bool {
    type Key<'a> = (&'a [u8], Option<&'a [u8]>, Option<&'a str>);
    fn key(e: &LowElem) -> Key<'_> {
        (&e.key, e.key_end.as_deref(), e.comment.as_deref())
    }
    let mut index: foldhash::HashMap<Key<'_>, &LowElem> = foldhash::HashMap::default();
    index.reserve(a.len());
    for e in a {
        if index.insert(key(e), e).is_some() {
            // The same key twice (a table edited by hand): compare in a canonical order.
            return sorted_equal(a, b);
        }
    }
    b.iter()
        .all(|e| index.remove(&key(e)).is_some_and(|x| element(x, e)))
        && index.is_empty()
}

fn sorted_equal(a: &[LowElem], b: &[LowElem]) -> bool {
    let (mut x, mut y): (Vec<&LowElem>, Vec<&LowElem>) = (a.iter().collect(), b.iter().collect());
    x.sort_unstable_by(|p, q| order(p, q));
    y.sort_unstable_by(|p, q| order(p, q));
    x.iter().zip(&y).all(|(p, q)| element(p, q))
}

fn element(a: &LowElem, b: &LowElem) -> bool {
    a.key == b.key && a.key_end == b.key_end && a.comment == b.comment && exprs(&a.exprs, &b.exprs)
}

fn order(a: &LowElem, b: &LowElem) -> std::cmp::Ordering {
    (&a.key, &a.key_end, &a.comment).cmp(&(&b.key, &b.key_end, &b.comment))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::low::{LowChain, LowRule};

    fn table(counter: u64, reversed: bool) -> LowTable {
        let elem = |k: u8| LowElem {
            key: vec![k],
            key_end: None,
            exprs: vec![LowExpr::Counter {
                packets: counter,
                bytes: counter * 60,
            }],
            comment: Some(format!("rule-{k}")),
        };
        let mut elements = vec![elem(1), elem(2)];
        if reversed {
            elements.reverse();
        }
        LowTable {
            name: "zt".into(),
            sets: vec![LowSet {
                name: "s0".into(),
                flags: 0,
                key_type: 7,
                key_len: 4,
                fields: vec![],
                userdata: vec![],
                size: 0,
                exprs: vec![],
                elements,
            }],
            chains: vec![LowChain {
                name: "output".into(),
                base: None,
                rules: vec![LowRule {
                    exprs: vec![
                        LowExpr::Meta { key: 10, dreg: 1 },
                        LowExpr::Counter {
                            packets: counter,
                            bytes: 0,
                        },
                    ],
                    comment: Some("zt:default".into()),
                }],
            }],
        }
    }

    #[test]
    fn counters_and_element_order_do_not_count_and_everything_else_does() {
        assert!(same(&table(0, false), &table(7, true)));
        let mut other = table(0, false);
        other.sets[0].elements[1].comment = Some("rule-9".into());
        assert!(!same(&table(0, false), &other));
        let mut other = table(0, false);
        other.chains[0].rules[0].exprs[0] = LowExpr::Meta { key: 11, dreg: 1 };
        assert!(!same(&table(0, false), &other));
        let mut other = table(0, false);
        other.sets[0].flags = 1;
        assert!(!same(&table(0, false), &other));
    }
}
