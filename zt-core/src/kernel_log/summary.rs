//! Blocked attempts grouped by who tried to reach what, with counts and first/last seen.

use super::LogRecord;
use crate::Direction;
use jiff::Timestamp;
use serde::Serialize;
use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Records that share direction, uid, destination, protocol and destination port: one line of
/// `zt audit`.
///
/// Serialized with these field names (part of `zt audit --json`): `direction` (`"egress"`,
/// `"ingress"` or `null`), `uid` (`null` when the kernel logged none, as on ingress), `dst`,
/// `protocol`, `dst_port` (`null` for ICMP and other protocols without ports), `count`,
/// `first_seen` and `last_seen` (RFC 3339 in UTC; `null` when no record of the group had a
/// time).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AttemptGroup {
    /// [`LogRecord::direction`].
    pub direction: Option<Direction>,
    /// [`LogRecord::uid`]: who tried (egress).
    pub uid: Option<u32>,
    /// [`LogRecord::dst`]: what was tried (on ingress, this host's address).
    pub dst: IpAddr,
    /// [`LogRecord::protocol`].
    pub protocol: String,
    /// [`LogRecord::dst_port`] (on ingress, this host's port).
    pub dst_port: Option<u16>,
    /// Logged packets in the group (rate-limited: a lower bound on the packets refused).
    pub count: u64,
    /// The earliest time among the group's records.
    pub first_seen: Option<Timestamp>,
    /// The latest time among the group's records.
    pub last_seen: Option<Timestamp>,
}

/// What [`summarize`] found: totals, and the groups most frequent first.
///
/// Serialized with these field names (the top level of `zt audit --json`): `since` (the
/// window's start or `null`), `records` (records summarized), `distinct_groups` (the length of
/// `groups`), `undated_records` (of `records`, those without a time), `skipped_older` (records
/// before `since`), `skipped_undated` (records without a time, left out because `since` was
/// given), `first_seen`, `last_seen` (over the summarized records) and `groups` (see
/// [`AttemptGroup`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Summary {
    since: Option<Timestamp>,
    records: u64,
    distinct_groups: usize,
    undated_records: u64,
    skipped_older: u64,
    skipped_undated: u64,
    first_seen: Option<Timestamp>,
    last_seen: Option<Timestamp>,
    groups: Vec<AttemptGroup>,
}

impl Summary {
    /// The start of the window, as given to [`summarize`].
    pub fn since(&self) -> Option<Timestamp> {
        self.since
    }
    /// How many records the groups count together.
    pub fn records(&self) -> u64 {
        self.records
    }
    /// How many groups there are.
    pub fn distinct_groups(&self) -> usize {
        self.distinct_groups
    }
    /// How many of the summarized records have no time (only without a window).
    pub fn undated_records(&self) -> u64 {
        self.undated_records
    }
    /// How many records were left out for being older than the window's start.
    pub fn skipped_older(&self) -> u64 {
        self.skipped_older
    }
    /// How many records were left out for having no time while a window was asked for.
    pub fn skipped_undated(&self) -> u64 {
        self.skipped_undated
    }
    /// The earliest time among the summarized records.
    pub fn first_seen(&self) -> Option<Timestamp> {
        self.first_seen
    }
    /// The latest time among the summarized records.
    pub fn last_seen(&self) -> Option<Timestamp> {
        self.last_seen
    }
    /// The groups: highest count first, ties in key order (direction, uid, destination,
    /// protocol, port), so the same records always give the same order.
    pub fn groups(&self) -> &[AttemptGroup] {
        &self.groups
    }
}

/// What a group is keyed by, in sort order for ties.
type Key = (Option<Direction>, Option<u32>, IpAddr, String, Option<u16>);

/// Group `records` by direction, uid, destination, protocol and destination port, keeping
/// those at or after `since` when it is given. Input order does not matter (several sources
/// may be chained).
///
/// Records without a time (raw dmesg read without a boot time) are counted when there is no
/// window, and left out when there is one, with their number in
/// [`Summary::skipped_undated`]: such a record may be from any moment since boot, so counting
/// it in "the last ten minutes" could report as current a refusal that stopped hours ago —
/// the question an operator asks right after changing a policy. Reporting how many were left
/// out keeps them from vanishing silently.
pub fn summarize(
    records: impl IntoIterator<Item = LogRecord>,
    since: Option<Timestamp>,
) -> Summary {
    let mut groups: BTreeMap<Key, AttemptGroup> = BTreeMap::new();
    let (mut records_n, mut undated, mut older, mut skipped_undated) = (0, 0, 0, 0);
    for record in records {
        match (record.time, since) {
            (None, Some(_)) => {
                skipped_undated += 1;
                continue;
            }
            (Some(time), Some(since)) if time < since => {
                older += 1;
                continue;
            }
            (None, None) => undated += 1,
            _ => {}
        }
        records_n += 1;
        let key = (
            record.direction,
            record.uid,
            record.dst,
            record.protocol,
            record.dst_port,
        );
        let group = groups.entry(key).or_insert_with_key(|key| AttemptGroup {
            direction: key.0,
            uid: key.1,
            dst: key.2,
            protocol: key.3.clone(),
            dst_port: key.4,
            count: 0,
            first_seen: None,
            last_seen: None,
        });
        group.count += 1;
        group.first_seen = earliest(group.first_seen, record.time);
        group.last_seen = latest(group.last_seen, record.time);
    }
    let mut groups: Vec<AttemptGroup> = groups.into_values().collect();
    // Stable: equal counts stay in key order.
    groups.sort_by_key(|group| Reverse(group.count));
    Summary {
        since,
        records: records_n,
        distinct_groups: groups.len(),
        undated_records: undated,
        skipped_older: older,
        skipped_undated,
        first_seen: groups.iter().filter_map(|g| g.first_seen).min(),
        last_seen: groups.iter().filter_map(|g| g.last_seen).max(),
        groups,
    }
}

fn earliest(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    a.into_iter().chain(b).min()
}

fn latest(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    a.into_iter().chain(b).max()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(time: Option<&str>, uid: Option<u32>, dst: &str, port: u16) -> LogRecord {
        LogRecord {
            time: time.map(|t| t.parse().unwrap()),
            prefix: "ZT-BLOCKED: ".to_owned(),
            direction: Some(Direction::Egress),
            in_iface: None,
            out_iface: Some("lo".to_owned()),
            src: "127.0.0.1".parse().unwrap(),
            dst: dst.parse().unwrap(),
            protocol: "TCP".to_owned(),
            src_port: Some(40000),
            dst_port: Some(port),
            icmp_type: None,
            uid,
            gid: uid,
        }
    }

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn groups_count_and_span_in_any_input_order() {
        let records = vec![
            record(Some("2026-11-23T19:05:00Z"), Some(1002), "127.0.0.1", 6379),
            record(Some("2026-11-23T19:00:00Z"), Some(1002), "127.0.0.1", 6379),
            record(Some("2026-11-23T19:03:00Z"), Some(1002), "127.0.0.1", 6379),
            record(Some("2026-11-23T19:01:00Z"), Some(1003), "127.0.0.1", 6379),
        ];
        let summary = summarize(records, None);
        assert_eq!(summary.records(), 4);
        assert_eq!(summary.distinct_groups(), 2);
        let top = &summary.groups()[0];
        assert_eq!((top.uid, top.count), (Some(1002), 3));
        assert_eq!(top.first_seen, Some(ts("2026-11-23T19:00:00Z")));
        assert_eq!(top.last_seen, Some(ts("2026-11-23T19:05:00Z")));
        assert_eq!(summary.first_seen(), Some(ts("2026-11-23T19:00:00Z")));
        assert_eq!(summary.last_seen(), Some(ts("2026-11-23T19:05:00Z")));
    }

    #[test]
    fn ties_are_ordered_by_key_whatever_the_input_order() {
        let a = record(None, Some(1002), "192.0.2.2", 80);
        let b = record(None, Some(1002), "192.0.2.1", 443);
        let c = record(None, None, "192.0.2.9", 22);
        let forward = summarize([a.clone(), b.clone(), c.clone()], None);
        let backward = summarize([c, b, a], None);
        assert_eq!(forward, backward);
        let order: Vec<_> = forward.groups().iter().map(|g| (g.uid, g.dst)).collect();
        let expected = [
            (None, "192.0.2.9".parse().unwrap()),
            (Some(1002), "192.0.2.1".parse().unwrap()),
            (Some(1002), "192.0.2.2".parse().unwrap()),
        ];
        assert_eq!(order, expected);
    }

    #[test]
    fn undated_records_count_without_a_window_and_are_reported_as_skipped_with_one() {
        let records = vec![
            record(None, Some(1002), "127.0.0.1", 6379),
            record(Some("2026-11-23T19:00:00Z"), Some(1002), "127.0.0.1", 6379),
            record(Some("2026-11-23T17:00:00Z"), Some(1002), "127.0.0.1", 6379),
        ];
        let all = summarize(records.clone(), None);
        assert_eq!((all.records(), all.undated_records()), (3, 1));
        assert_eq!(all.groups()[0].first_seen, Some(ts("2026-11-23T17:00:00Z")));

        let window = summarize(records, Some(ts("2026-11-23T18:00:00Z")));
        assert_eq!(window.records(), 1);
        assert_eq!(window.undated_records(), 0);
        assert_eq!(window.skipped_undated(), 1);
        assert_eq!(window.skipped_older(), 1);
        assert_eq!(window.since(), Some(ts("2026-11-23T18:00:00Z")));
    }

    #[test]
    fn a_record_exactly_at_since_is_inside_the_window() {
        let at = "2026-11-23T18:00:00Z";
        let summary = summarize([record(Some(at), Some(1), "192.0.2.1", 1)], Some(ts(at)));
        assert_eq!(summary.records(), 1);
    }

    #[test]
    fn group_of_undated_records_has_no_span() {
        let summary = summarize([record(None, Some(1), "192.0.2.1", 1)], None);
        let group = &summary.groups()[0];
        assert_eq!((group.first_seen, group.last_seen), (None, None));
        assert_eq!((summary.first_seen(), summary.last_seen()), (None, None));
    }

    #[test]
    fn nothing_gives_an_empty_summary() {
        let summary = summarize(Vec::new(), None);
        assert_eq!(summary.records(), 0);
        assert!(summary.groups().is_empty());
    }
}
