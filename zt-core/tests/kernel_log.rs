//! Reading zt's blocked-packet lines back from realistic kernel logs, as `zt audit` does.
//!
//! The files under `tests/data/kernel_log/` hold one sample per source (rsyslog's kern.log,
//! `journalctl -k -o short-iso-precise`, `dmesg --time-format iso`, raw `dmesg`, traditional
//! syslog), with zt lines (nf_log's format as the kernel prints it, trailing space included)
//! among lines of other subsystems, another firewall, zt's own allow-logging prefix, a user
//! process imitating the kernel and a line with a corrupt address.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic on a broken fixture

mod common;
use common::cases;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use proptest::prelude::*;
use zt_core::kernel_log::{LogRecord, ParseContext, parse_line, parse_since, summarize};
use zt_core::policy::DEFAULT_LOG_PREFIX;

const SAMPLES: &[(&str, &str)] = &[
    ("kern.log", include_str!("data/kernel_log/kern.log")),
    ("journal.txt", include_str!("data/kernel_log/journal.txt")),
    (
        "dmesg-iso.txt",
        include_str!("data/kernel_log/dmesg-iso.txt"),
    ),
    (
        "dmesg-raw.txt",
        include_str!("data/kernel_log/dmesg-raw.txt"),
    ),
    (
        "syslog-traditional.txt",
        include_str!("data/kernel_log/syslog-traditional.txt"),
    ),
];

/// The machine that wrote the samples: read a day later, booted at 18:39:00 UTC (so raw
/// dmesg's `[ 1300.000000]` is 19:00:40).
fn ctx() -> ParseContext {
    ParseContext::new(
        [DEFAULT_LOG_PREFIX],
        "2026-11-24T12:00:00Z".parse().unwrap(),
        TimeZone::UTC,
    )
    .with_boot("2026-11-23T18:39:00Z".parse().unwrap())
}

fn records(text: &str, ctx: &ParseContext) -> Vec<LogRecord> {
    text.lines()
        .filter_map(|line| parse_line(line, ctx))
        .collect()
}

fn all_records(ctx: &ParseContext) -> Vec<LogRecord> {
    SAMPLES
        .iter()
        .flat_map(|(_, text)| records(text, ctx))
        .collect()
}

#[test]
fn each_sample_yields_exactly_its_zt_blocked_lines() {
    // Counted by hand from the files: lines with the blocked prefix behind a kernel header
    // and with parseable fields.
    let expected = [
        ("kern.log", 5),
        ("journal.txt", 4),
        ("dmesg-iso.txt", 3),
        ("dmesg-raw.txt", 3),
        ("syslog-traditional.txt", 2),
    ];
    for ((name, text), (expected_name, count)) in SAMPLES.iter().zip(expected) {
        assert_eq!(*name, expected_name);
        let found = records(text, &ctx());
        assert_eq!(found.len(), count, "{name}: {found:#?}");
        assert!(
            found
                .iter()
                .all(|r| r.prefix == DEFAULT_LOG_PREFIX && r.time.is_some())
        );
    }
}

#[test]
fn summary_of_all_samples() {
    let summary = summarize(all_records(&ctx()), None);
    insta::assert_snapshot!(serde_json::to_string_pretty(&summary).unwrap());
}

#[test]
fn summary_of_the_last_minutes_without_a_boot_time() {
    // Raw dmesg cannot be dated without the boot time: its records are left out of a window,
    // and counted as such.
    let mut ctx = ctx();
    ctx.boot = None;
    let since = parse_since("2026-11-23 19:01", ctx.now, &ctx.tz).unwrap();
    let summary = summarize(all_records(&ctx), Some(since));
    assert_eq!(summary.skipped_undated(), 3);
    insta::assert_snapshot!(serde_json::to_string_pretty(&summary).unwrap());
}

#[test]
fn records_serialize_with_the_documented_field_names() {
    let record = records(SAMPLES[0].1, &ctx()).remove(0);
    insta::assert_snapshot!(serde_json::to_string_pretty(&record).unwrap());
}

/// Every line of the samples, as characters (mutations stay on character boundaries).
fn sample_lines() -> Vec<Vec<char>> {
    SAMPLES
        .iter()
        .flat_map(|(_, text)| text.lines())
        .map(|line| line.chars().collect())
        .collect()
}

/// One edit of a line: replace a span with arbitrary text (deletion, insertion, overwrite,
/// truncation are all special cases).
fn mutated_line() -> impl Strategy<Value = String> {
    let lines = sample_lines();
    (
        0..lines.len(),
        any::<prop::sample::Index>(),
        0usize..12,
        prop_oneof![
            "[0-9A-Za-z=:.,\\[\\] -]{0,8}",
            any::<String>().prop_map(|s| s.chars().take(8).collect()),
        ],
    )
        .prop_map(move |(which, at, len, insert)| {
            let line = &lines[which];
            let start = at.index(line.len() + 1);
            let end = (start + len).min(line.len());
            let mut out: String = line[..start].iter().collect();
            out.push_str(&insert);
            out.extend(&line[end..]);
            out
        })
}

fn context_strategy() -> impl Strategy<Value = ParseContext> {
    (
        // Whole range of jiff's timestamps, to reach every overflow edge.
        Timestamp::MIN.as_second()..=Timestamp::MAX.as_second(),
        prop::option::of(Timestamp::MIN.as_second()..=Timestamp::MAX.as_second()),
        -25i8..=25,
        prop::sample::select(vec!["", "ZT", "ZT-BLOCKED: ", " [x] ", "é"]),
    )
        .prop_map(|(now, boot, hours, prefix)| ParseContext {
            prefixes: vec![prefix.to_owned(), DEFAULT_LOG_PREFIX.to_owned()],
            now: Timestamp::from_second(now).unwrap(),
            tz: TimeZone::fixed(jiff::tz::Offset::from_hours(hours).unwrap()),
            boot: boot.map(|b| Timestamp::from_second(b).unwrap()),
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(2_000)))]

    #[test]
    fn random_text_never_panics(line in any::<String>(), ctx in context_strategy()) {
        let _ = parse_line(&line, &ctx);
    }

    #[test]
    fn mutated_real_lines_never_panic(line in mutated_line(), ctx in context_strategy()) {
        let _ = parse_line(&line, &ctx);
    }

    #[test]
    fn since_never_panics(text in any::<String>(), now in any::<i32>()) {
        let _ = parse_since(&text, Timestamp::from_second(i64::from(now)).unwrap(), &TimeZone::UTC);
    }

    #[test]
    fn summary_accounts_for_every_record(
        picks in prop::collection::vec((any::<prop::sample::Index>(), any::<bool>()), 0..40),
        since in prop::option::of(0i64..600),
    ) {
        let pool = all_records(&ctx());
        let input: Vec<LogRecord> = picks
            .iter()
            .map(|(i, undated)| {
                let mut r = pool[i.index(pool.len())].clone();
                if *undated { r.time = None; }
                r
            })
            .collect();
        let since = since.map(|s| "2026-11-23T19:00:00Z".parse::<Timestamp>().unwrap() + jiff::SignedDuration::from_secs(s));
        let summary = summarize(input.clone(), since);
        let counted: u64 = summary.groups().iter().map(|g| g.count).sum();
        prop_assert_eq!(counted, summary.records());
        prop_assert_eq!(
            summary.records() + summary.skipped_older() + summary.skipped_undated(),
            input.len() as u64
        );
        prop_assert_eq!(summary.distinct_groups(), summary.groups().len());
        prop_assert!(summary.groups().windows(2).all(|w| w[0].count >= w[1].count));
        for g in summary.groups() {
            prop_assert!(g.first_seen <= g.last_seen);
            if let (Some(first), Some(since)) = (g.first_seen, since) {
                prop_assert!(first >= since);
            }
        }
    }
}
