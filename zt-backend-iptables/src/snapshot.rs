//! The snapshot record: zt's chains and jumps per family as they were before an apply.
//!
//! Stored as JSON in [`zt_core::Snapshot::content`] (the CLI persists it across runs).
//! Rollback renders a restore input from it — declare and refill the recorded chains, put the
//! jumps back on top, remove what the record does not have — one restore per family.

use crate::owned::Owned;
use crate::variant::Variant;
use serde::{Deserialize, Serialize};

/// What zt owned in both families, and which iptables held it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The variant the state was read from.
    pub variant: Variant,
    /// The chain prefix that names zt's chains.
    pub prefix: String,
    /// IPv4 state; `None` when zt owned nothing there.
    pub ipv4: Option<Owned>,
    /// IPv6 state; `None` when zt owned nothing there.
    pub ipv6: Option<Owned>,
}

impl Record {
    /// The record of `state` (IPv4, IPv6), or `None` when zt owned nothing at all.
    pub fn of(variant: Variant, prefix: &str, state: &[Owned; 2]) -> Option<Self> {
        let keep = |o: &Owned| (!o.is_empty()).then(|| o.clone());
        let (ipv4, ipv6) = (keep(&state[0]), keep(&state[1]));
        (ipv4.is_some() || ipv6.is_some()).then(|| Self {
            variant,
            prefix: prefix.to_owned(),
            ipv4,
            ipv6,
        })
    }

    /// The state to restore per family, jumps renumbered from the top: zt's jumps go first in
    /// their chain, wherever foreign tools had pushed them since.
    pub fn targets(self) -> [Owned; 2] {
        [self.ipv4, self.ipv6].map(|o| {
            let mut o = o.unwrap_or_default();
            let mut seen: Vec<(String, usize)> = Vec::new();
            for j in &mut o.jumps {
                let n = match seen.iter_mut().find(|(c, _)| *c == j.chain) {
                    Some((_, n)) => {
                        *n += 1;
                        *n
                    }
                    None => {
                        seen.push((j.chain.clone(), 1));
                        1
                    }
                };
                j.position = n;
            }
            o
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::owned::{ChainPrefix, Jump, Rule};

    #[test]
    fn nothing_owned_is_no_record_and_a_record_round_trips() {
        assert_eq!(
            Record::of(Variant::Nft, "ZT", &[Owned::default(), Owned::default()]),
            None
        );
        let mut v6 = Owned::default();
        v6.chains.insert(
            ChainPrefix::default().output(),
            vec![Rule::new(vec!["-j".to_owned(), "ACCEPT".to_owned()])],
        );
        v6.jumps.push(Jump {
            chain: "OUTPUT".to_owned(),
            position: 4,
            rule: Rule::new(vec!["-j".to_owned(), "ZT-OUTPUT".to_owned()]),
        });
        let record = Record::of(Variant::Legacy, "ZT", &[Owned::default(), v6.clone()]).unwrap();
        let json = serde_json::to_string(&record).unwrap();
        let back: Record = serde_json::from_str(&json).unwrap();
        assert_eq!(back, record);
        let [t4, t6] = back.targets();
        assert!(t4.is_empty());
        assert_eq!(t6.chains, v6.chains);
        assert_eq!(t6.jumps[0].position, 1);
    }
}
