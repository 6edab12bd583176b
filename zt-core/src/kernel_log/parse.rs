//! One kernel log line: its header (which of the timestamp formats), then nf_log's fields.

use super::{LogRecord, ParseContext};
use crate::Direction;
use jiff::civil::{Date, DateTime, Time};
use jiff::{SignedDuration, Timestamp};
use std::net::IpAddr;

/// The record in `line`, or `None` when it is not a zt log line (most lines of a kernel log
/// are not) or does not parse. Never panics, whatever the input. The formats are described in
/// the [module documentation](super).
pub fn parse_line(line: &str, ctx: &ParseContext) -> Option<LogRecord> {
    // Every nf_log line holds `IN=`; one substring search drops most other lines at once.
    if !line.contains("IN=") {
        return None;
    }
    let line = line.trim_end_matches(['\n', '\r']);
    let (stamp, rest) = Stamp::split(line)?;
    // The time is parsed last: most lines are dropped at the prefix, and that check is cheap.
    let (prefix, fields) =
        message_candidates(rest).find_map(|message| match_prefix(message, &ctx.prefixes))?;
    let fields = Fields::parse(fields);
    let time = stamp.resolve(ctx)?;
    fields.into_record(time, prefix)
}

/// The header's time, as written.
enum Stamp<'a> {
    /// RFC 3339 / ISO 8601 with an offset: exact.
    Iso(&'a str),
    /// Traditional syslog `Nov 23 19:00:00`: no year, no zone.
    Syslog { month: i8, day: i8, time: Time },
    /// Raw dmesg `[ 1234.567890]`: time since boot.
    SinceBoot(SignedDuration),
}

impl<'a> Stamp<'a> {
    /// The stamp at the start of `line` and the text after it; `None` when the line starts
    /// with none of the known headers.
    fn split(line: &'a str) -> Option<(Self, &'a str)> {
        let line = line.trim_start();
        let first = line.as_bytes().first()?;
        if *first == b'[' || *first == b'<' {
            // `dmesg -r` puts the syslog level (`<4>`) in front.
            let line = match line.strip_prefix('<') {
                Some(rest) => rest.split_once('>')?.1,
                None => line,
            };
            let (since_boot, rest) = printk_stamp(line)?;
            return Some((Self::SinceBoot(since_boot), rest));
        }
        if first.is_ascii_digit() {
            let date_like = line.as_bytes().get(..5)?;
            if !date_like[..4].iter().all(u8::is_ascii_digit) || date_like[4] != b'-' {
                return None;
            }
            let (stamp, rest) = line.split_once(char::is_whitespace)?;
            return Some((Self::Iso(stamp), rest));
        }
        let month = month_number(line.get(..3)?)?;
        let rest = line.get(3..)?.strip_prefix(' ')?.trim_start();
        let (day, rest) = rest.split_once(' ')?;
        let (time, rest) = rest.split_once(' ')?;
        let stamp = Self::Syslog {
            month,
            day: day.parse().ok()?,
            time: time.parse().ok()?,
        };
        Some((stamp, rest))
    }

    /// The absolute time: `None` when the stamp is not a time at all (the line is then not a
    /// record), `Some(None)` when it cannot be placed (raw dmesg without a boot time).
    fn resolve(&self, ctx: &ParseContext) -> Option<Option<Timestamp>> {
        match self {
            Self::Iso(text) => text.parse().ok().map(Some),
            Self::Syslog { month, day, time } => infer_year(*month, *day, *time, ctx).map(Some),
            Self::SinceBoot(since_boot) => {
                Some(ctx.boot.and_then(|boot| boot.checked_add(*since_boot).ok()))
            }
        }
    }
}

/// The month of an English syslog abbreviation.
fn month_number(name: &str) -> Option<i8> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let index = MONTHS.iter().position(|m| *m == name)?;
    i8::try_from(index + 1).ok()
}

/// A year-less syslog stamp in `ctx.tz`: the latest year that puts it no later than one day
/// after `ctx.now` (a line from the future beyond clock skew is last year's). Nine years back
/// covers February 29 across a century year that is not a leap year.
fn infer_year(month: i8, day: i8, time: Time, ctx: &ParseContext) -> Option<Timestamp> {
    let latest = ctx.now.checked_add(SignedDuration::from_hours(24)).ok()?;
    let this_year = ctx.tz.to_datetime(ctx.now).year();
    (-1..=8)
        .filter_map(|back: i16| {
            let year = this_year.checked_sub(back)?;
            let date = Date::new(year, month, day).ok()?;
            let local = DateTime::from_parts(date, time);
            ctx.tz.to_ambiguous_timestamp(local).compatible().ok()
        })
        .find(|t| *t <= latest)
}

/// A printk stamp `[ 1234.567890]` at the start of `text`, and the text after it (one space
/// dropped); `None` when `text` does not start with one.
fn printk_stamp(text: &str) -> Option<(SignedDuration, &str)> {
    let (inside, rest) = text.strip_prefix('[')?.split_once(']')?;
    let (secs, frac) = inside.trim().split_once('.').unwrap_or((inside.trim(), ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if secs.is_empty() || !digits(secs) || !digits(frac) {
        return None;
    }
    let secs: i64 = secs.parse().ok()?;
    // Nanoseconds: the first nine digits of the fraction, padded.
    let nanos = frac
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(9)
        .fold(0i32, |n, b| n * 10 + i32::from(b - b'0'));
    let rest = rest.strip_prefix(' ').unwrap_or(rest);
    Some((SignedDuration::new(secs, nanos), rest))
}

/// The places the kernel's message may start after the stamp: behind a `host kernel:` tag
/// (syslog, the journal), or right after the stamp (dmesg); each also behind a printk stamp,
/// which rsyslog keeps in the message (the unstripped text is tried too, for a prefix that
/// looks like one, such as `[42] `). Text behind any other sender's tag never starts with a
/// prefix here, so other processes' lines are not taken.
fn message_candidates(rest: &str) -> impl Iterator<Item = &str> {
    after_kernel_tag(rest)
        .into_iter()
        .chain([rest])
        .flat_map(|message| {
            let message = message.trim_start();
            let stripped = printk_stamp(message).map(|(_, rest)| rest);
            stripped.into_iter().chain([message])
        })
}

/// The text after `host kernel:`, when `rest` is `host kernel: …`.
fn after_kernel_tag(rest: &str) -> Option<&str> {
    let (_host, after) = rest.trim_start().split_once(' ')?;
    after.trim_start().strip_prefix("kernel:")
}

/// The first prefix that `message` starts with, directly followed by nf_log's `IN=`, and the
/// fields from `IN=` on.
fn match_prefix<'m, 'p>(message: &'m str, prefixes: &'p [String]) -> Option<(&'p str, &'m str)> {
    let message = message.trim_start();
    prefixes.iter().find_map(|prefix| {
        let fields = message.strip_prefix(prefix.trim())?.trim_start();
        fields
            .starts_with("IN=")
            .then_some((prefix.as_str(), fields))
    })
}

/// The nf_log fields zt reads, as written; the first occurrence of each key counts.
#[derive(Default)]
struct Fields<'a> {
    in_iface: Option<&'a str>,
    out_iface: Option<&'a str>,
    src: Option<&'a str>,
    dst: Option<&'a str>,
    protocol: Option<&'a str>,
    src_port: Option<&'a str>,
    dst_port: Option<&'a str>,
    icmp_type: Option<&'a str>,
    uid: Option<&'a str>,
    gid: Option<&'a str>,
}

impl<'a> Fields<'a> {
    /// Collect the keys outside brackets (an ICMP error's quoted packet, `INCOMPLETE [n
    /// bytes]`). Words without `=` are flags.
    fn parse(text: &'a str) -> Self {
        let mut fields = Self::default();
        let mut depth = 0usize;
        for word in text.split_ascii_whitespace() {
            let opens = word.starts_with('[');
            let closes = word.ends_with(']');
            if depth == 0
                && !opens
                && let Some((key, value)) = word.split_once('=')
            {
                fields.set(key, value);
            }
            depth = (depth + usize::from(opens)).saturating_sub(usize::from(closes));
        }
        fields
    }

    fn set(&mut self, key: &str, value: &'a str) {
        let slot = match key {
            "IN" => &mut self.in_iface,
            "OUT" => &mut self.out_iface,
            "SRC" => &mut self.src,
            "DST" => &mut self.dst,
            "PROTO" => &mut self.protocol,
            "SPT" => &mut self.src_port,
            "DPT" => &mut self.dst_port,
            "TYPE" => &mut self.icmp_type,
            "UID" => &mut self.uid,
            "GID" => &mut self.gid,
            _ => return,
        };
        slot.get_or_insert(value);
    }

    /// The record; `None` when `SRC=` or `DST=` is missing or a value that is there does not
    /// parse (not an nf_log line of an IP packet).
    fn into_record(self, time: Option<Timestamp>, prefix: &str) -> Option<LogRecord> {
        /// `Some(None)` for an absent key, `None` for one that does not parse.
        fn number<T: std::str::FromStr>(value: Option<&str>) -> Option<Option<T>> {
            value.map_or(Some(None), |v| v.parse().ok().map(Some))
        }
        let iface = |name: Option<&str>| name.filter(|n| !n.is_empty()).map(str::to_owned);
        let (in_iface, out_iface) = (iface(self.in_iface), iface(self.out_iface));
        let direction = match (&in_iface, &out_iface) {
            (None, Some(_)) => Some(Direction::Egress),
            (Some(_), None) => Some(Direction::Ingress),
            _ => None,
        };
        let protocol = self.protocol.unwrap_or("unknown");
        let icmp = matches!(protocol, "ICMP" | "ICMPv6");
        Some(LogRecord {
            time,
            prefix: prefix.to_owned(),
            direction,
            in_iface,
            out_iface,
            src: self.src?.parse::<IpAddr>().ok()?,
            dst: self.dst?.parse::<IpAddr>().ok()?,
            protocol: protocol.to_owned(),
            src_port: number(self.src_port)?,
            dst_port: number(self.dst_port)?,
            icmp_type: if icmp { number(self.icmp_type)? } else { None },
            uid: number(self.uid)?,
            gid: number(self.gid)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{ALLOWED_LOG_PREFIX, DEFAULT_LOG_PREFIX};
    use jiff::tz::{TimeZone, offset};

    const EGRESS: &str = "ZT-BLOCKED: IN= OUT=lo SRC=127.0.0.1 DST=127.0.0.1 LEN=60 TOS=0x00 \
        PREC=0x00 TTL=64 ID=4242 DF PROTO=TCP SPT=45678 DPT=6379 WINDOW=65495 RES=0x00 SYN \
        URGP=0 UID=1002 GID=1003 ";

    fn ctx() -> ParseContext {
        ParseContext::new(
            [DEFAULT_LOG_PREFIX],
            "2026-11-24T00:00:00Z".parse().unwrap(),
            TimeZone::UTC,
        )
    }

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn egress_record(time: Option<Timestamp>) -> LogRecord {
        LogRecord {
            time,
            prefix: DEFAULT_LOG_PREFIX.to_owned(),
            direction: Some(Direction::Egress),
            in_iface: None,
            out_iface: Some("lo".to_owned()),
            src: "127.0.0.1".parse().unwrap(),
            dst: "127.0.0.1".parse().unwrap(),
            protocol: "TCP".to_owned(),
            src_port: Some(45678),
            dst_port: Some(6379),
            icmp_type: None,
            uid: Some(1002),
            gid: Some(1003),
        }
    }

    #[test]
    fn rsyslog_rfc3339_line_with_printk_stamp_is_read_whole() {
        let line = format!("2026-11-23T19:00:00.123456+00:00 web1 kernel: [ 1234.567890] {EGRESS}");
        let expected = egress_record(Some(ts("2026-11-23T19:00:00.123456Z")));
        assert_eq!(parse_line(&line, &ctx()), Some(expected));
    }

    #[test]
    fn journal_offset_without_colon_is_read() {
        let line = format!("2026-11-23T20:00:00.5+0100 web1 kernel: {EGRESS}");
        let record = parse_line(&line, &ctx()).unwrap();
        assert_eq!(record.time, Some(ts("2026-11-23T19:00:00.5Z")));
    }

    #[test]
    fn dmesg_iso_with_decimal_comma_and_no_tag_is_read() {
        let line = format!("2026-11-23T19:00:00,250000+00:00 {EGRESS}");
        let record = parse_line(&line, &ctx()).unwrap();
        assert_eq!(record.time, Some(ts("2026-11-23T19:00:00.25Z")));
        assert_eq!(record.dst_port, Some(6379));
    }

    #[test]
    fn raw_dmesg_is_dated_from_the_boot_time_when_known() {
        let line = format!("[ 1234.500000] {EGRESS}");
        let boot = ts("2026-11-23T18:00:00Z");
        let record = parse_line(&line, &ctx().with_boot(boot)).unwrap();
        assert_eq!(record.time, Some(ts("2026-11-23T18:20:34.5Z")));
        assert_eq!(parse_line(&line, &ctx()), Some(egress_record(None)));
        let with_level = format!("<4>[12345.678901] {EGRESS}");
        assert_eq!(parse_line(&with_level, &ctx()), Some(egress_record(None)));
    }

    #[test]
    fn traditional_syslog_is_read_in_the_given_zone() {
        let line = format!("Nov 23 20:00:00 web1 kernel: {EGRESS}");
        let mut ctx = ctx();
        ctx.tz = TimeZone::fixed(offset(1));
        let record = parse_line(&line, &ctx).unwrap();
        assert_eq!(record.time, Some(ts("2026-11-23T19:00:00Z")));
        let padded = format!("Nov  3 20:00:00 web1 kernel: [ 12.5] {EGRESS}");
        let record = parse_line(&padded, &ctx).unwrap();
        assert_eq!(record.time, Some(ts("2026-11-03T19:00:00Z")));
        // `journalctl -o short-precise`.
        let precise = format!("Nov 23 20:00:00.250000 web1 kernel: {EGRESS}");
        let record = parse_line(&precise, &ctx).unwrap();
        assert_eq!(record.time, Some(ts("2026-11-23T19:00:00.25Z")));
    }

    #[test]
    fn december_syslog_line_read_in_january_is_last_years() {
        let line = format!("Dec 31 23:59:59 web1 kernel: {EGRESS}");
        let mut ctx = ctx();
        ctx.now = ts("2027-01-01T00:10:00Z");
        let record = parse_line(&line, &ctx).unwrap();
        assert_eq!(record.time, Some(ts("2026-12-31T23:59:59Z")));
    }

    #[test]
    fn syslog_line_slightly_ahead_of_now_is_this_years_clock_skew() {
        // The logging host's clock is a minute ahead and the year just turned there.
        let line = format!("Jan  1 00:00:30 web1 kernel: {EGRESS}");
        let mut ctx = ctx();
        ctx.now = ts("2026-12-31T23:59:50Z");
        let record = parse_line(&line, &ctx).unwrap();
        assert_eq!(record.time, Some(ts("2027-01-01T00:00:30Z")));
        // Two days ahead is too far: that is last January.
        ctx.now = ts("2026-12-29T23:59:50Z");
        let record = parse_line(&line, &ctx).unwrap();
        assert_eq!(record.time, Some(ts("2026-01-01T00:00:30Z")));
    }

    #[test]
    fn february_29_goes_back_to_the_last_leap_year() {
        let line = format!("Feb 29 12:00:00 web1 kernel: {EGRESS}");
        let record = parse_line(&line, &ctx()).unwrap();
        assert_eq!(record.time, Some(ts("2024-02-29T12:00:00Z")));
    }

    #[test]
    fn syslog_time_in_a_dst_gap_is_resolved_not_dropped() {
        let mut ctx = ctx();
        ctx.tz = TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3").unwrap();
        // 02:30 does not exist on 2026-03-29 in Central Europe; "compatible" moves it later.
        let line = format!("Mar 29 02:30:00 web1 kernel: {EGRESS}");
        let record = parse_line(&line, &ctx).unwrap();
        assert_eq!(record.time, Some(ts("2026-03-29T01:30:00Z")));
    }

    #[test]
    fn ipv6_icmpv6_ingress_without_uid() {
        let line = "2026-11-23T19:00:00+00:00 web1 kernel: ZT-BLOCKED: IN=eth0 OUT= \
            MAC=52:54:00:12:34:56:52:54:00:ab:cd:ef:86:dd \
            SRC=2001:0db8:0000:0000:0000:0000:0000:0077 \
            DST=2001:0db8:0000:0000:0000:0000:0000:0015 LEN=104 TC=0 HOPLIMIT=64 \
            FLOWLBL=123456 PROTO=ICMPv6 TYPE=128 CODE=0 ID=7 SEQ=1 ";
        let record = parse_line(line, &ctx()).unwrap();
        assert_eq!(record.direction, Some(Direction::Ingress));
        assert_eq!(record.in_iface.as_deref(), Some("eth0"));
        assert_eq!(record.out_iface, None);
        assert_eq!(record.src, "2001:db8::77".parse::<IpAddr>().unwrap());
        assert_eq!(record.dst, "2001:db8::15".parse::<IpAddr>().unwrap());
        assert_eq!(record.protocol, "ICMPv6");
        assert_eq!(record.icmp_type, Some(128));
        assert_eq!((record.src_port, record.dst_port), (None, None));
        assert_eq!((record.uid, record.gid), (None, None));
    }

    #[test]
    fn udp_and_other_protocol_numbers_are_kept_as_logged() {
        let udp = "[ 1.0] ZT-BLOCKED: IN= OUT=eth0 SRC=10.0.2.15 DST=192.0.2.53 LEN=61 \
            TOS=0x00 PREC=0x00 TTL=64 ID=1 DF PROTO=UDP SPT=40001 DPT=53 LEN=41 UID=0 GID=0 ";
        let record = parse_line(udp, &ctx()).unwrap();
        assert_eq!(record.protocol, "UDP");
        assert_eq!((record.src_port, record.dst_port), (Some(40001), Some(53)));
        assert_eq!((record.uid, record.gid), (Some(0), Some(0)));
        let sctp = "[ 1.0] ZT-BLOCKED: IN= OUT=eth0 SRC=10.0.2.15 DST=192.0.2.9 LEN=68 \
            TOS=0x02 PREC=0x00 TTL=64 ID=0 DF PROTO=132 UID=1002 GID=1002 ";
        let record = parse_line(sctp, &ctx()).unwrap();
        assert_eq!(record.protocol, "132");
        assert_eq!(record.dst_port, None);
    }

    #[test]
    fn icmp_error_quoted_packet_does_not_lend_its_ports() {
        let line = "[ 1.0] ZT-BLOCKED: IN= OUT=eth0 SRC=10.0.2.15 DST=198.51.100.20 LEN=88 \
            TOS=0x00 PREC=0xC0 TTL=64 ID=4711 PROTO=ICMP TYPE=3 CODE=3 [SRC=198.51.100.20 \
            DST=10.0.2.15 LEN=60 TOS=0x00 PREC=0x00 TTL=55 ID=0 DF PROTO=UDP SPT=33434 \
            DPT=9999 LEN=40 ] ";
        let record = parse_line(line, &ctx()).unwrap();
        assert_eq!(record.dst, "198.51.100.20".parse::<IpAddr>().unwrap());
        assert_eq!(record.protocol, "ICMP");
        assert_eq!(record.icmp_type, Some(3));
        assert_eq!((record.src_port, record.dst_port), (None, None));
    }

    #[test]
    fn keys_after_an_incomplete_header_are_still_read() {
        let line = "[ 1.0] ZT-BLOCKED: IN= OUT=eth0 SRC=10.0.2.15 DST=192.0.2.1 LEN=40 \
            TOS=0x00 PREC=0x00 TTL=64 ID=1 PROTO=TCP INCOMPLETE [12 bytes] UID=7 GID=7 ";
        let record = parse_line(line, &ctx()).unwrap();
        assert_eq!(record.dst_port, None);
        assert_eq!(record.uid, Some(7));
    }

    #[test]
    fn forwarded_packet_has_no_direction() {
        let line = "[ 1.0] ZT-BLOCKED: IN=eth0 OUT=eth1 MAC= SRC=192.0.2.1 DST=198.51.100.1 \
            LEN=60 TOS=0x00 PREC=0x00 TTL=63 ID=1 PROTO=TCP SPT=1 DPT=2 WINDOW=0 RES=0x00 \
            SYN URGP=0 ";
        let record = parse_line(line, &ctx()).unwrap();
        assert_eq!(record.direction, None);
    }

    #[test]
    fn prefix_with_or_without_trailing_space_matches_and_is_reported_as_given() {
        let line = format!("[ 1.0] {EGRESS}");
        let ctx = ParseContext {
            prefixes: vec!["ZT-BLOCKED:".to_owned()],
            ..ctx()
        };
        assert_eq!(parse_line(&line, &ctx).unwrap().prefix, "ZT-BLOCKED:");
        let tight = "[ 1.0] DROPIN= OUT=lo SRC=127.0.0.1 DST=127.0.0.1 PROTO=TCP SPT=1 DPT=2";
        let ctx = ParseContext {
            prefixes: vec!["DROP".to_owned()],
            ..ctx
        };
        assert_eq!(parse_line(tight, &ctx).unwrap().dst_port, Some(2));
    }

    #[test]
    fn prefix_that_looks_like_a_printk_stamp_still_matches() {
        let ctx = ParseContext {
            prefixes: vec!["[42] ".to_owned()],
            ..ctx()
        };
        let fields = EGRESS.trim_start_matches(DEFAULT_LOG_PREFIX);
        for line in [
            format!("2026-11-23T19:00:00+00:00 web1 kernel: [ 12.5] [42] {fields}"),
            format!("2026-11-23T19:00:00+00:00 web1 kernel: [42] {fields}"),
            format!("[ 12.5] [42] {fields}"),
        ] {
            assert_eq!(parse_line(&line, &ctx).unwrap().prefix, "[42] ", "{line}");
        }
    }

    #[test]
    fn allowed_lines_count_only_when_their_prefix_is_asked_for() {
        let line = format!(
            "[ 1.0] {}",
            EGRESS.replace(DEFAULT_LOG_PREFIX, ALLOWED_LOG_PREFIX)
        );
        assert_eq!(parse_line(&line, &ctx()), None);
        let both = ParseContext::new(
            [DEFAULT_LOG_PREFIX, ALLOWED_LOG_PREFIX],
            ctx().now,
            TimeZone::UTC,
        );
        assert_eq!(parse_line(&line, &both).unwrap().prefix, ALLOWED_LOG_PREFIX);
    }

    #[test]
    fn other_lines_are_not_records() {
        let not_ours = [
            "",
            "   ",
            "2026-11-23T19:00:00.1+00:00 web1 kernel: [ 3.1] e1000: eth0 NIC Link is Up",
            "2026-11-23T19:00:00.1+00:00 web1 kernel: [UFW BLOCK] IN=eth0 OUT= SRC=192.0.2.1 \
             DST=10.0.2.15 PROTO=TCP SPT=1 DPT=22",
            "2026-11-23T19:00:00.1+00:00 web1 systemd[1]: Started cron.service.",
            // A user process imitating the kernel under its own name.
            "Nov 23 19:00:00 web1 mallory[666]: ZT-BLOCKED: IN= OUT=lo SRC=127.0.0.1 \
             DST=127.0.0.1 PROTO=TCP SPT=1 DPT=2 UID=0 GID=0",
            "2026-11-23T19:00:00.1+00:00 web1 mallory[666]: ZT-BLOCKED: IN= OUT=lo \
             SRC=127.0.0.1 DST=127.0.0.1 PROTO=TCP SPT=1 DPT=2 UID=0 GID=0",
            // The prefix, but not an nf_log line after it.
            "[ 1.0] ZT-BLOCKED: rule table reloaded",
            // ARP lines carry no SRC=/DST=.
            "[ 1.0] ZT-BLOCKED: IN=eth0 OUT= ARP HTYPE=1 PTYPE=0x0800 OPCODE=1",
            "-- Boot 0123456789abcdef0123456789abcdef --",
            "Hello world",
        ];
        for line in not_ours {
            assert_eq!(parse_line(line, &ctx()), None, "{line}");
        }
    }

    #[test]
    fn a_value_that_does_not_parse_rejects_the_line() {
        let good = format!("[ 1.0] {EGRESS}");
        assert!(parse_line(&good, &ctx()).is_some());
        for (from, to) in [
            ("SRC=127.0.0.1", "SRC=127.0.0.256"),
            ("DST=127.0.0.1", "DST=::g"),
            ("DPT=6379", "DPT=65536"),
            ("SPT=45678", "SPT=-1"),
            ("UID=1002", "UID=web"),
            ("GID=1003", "GID="),
        ] {
            let bad = good.replace(from, to);
            assert_eq!(parse_line(&bad, &ctx()), None, "{bad}");
        }
        let bad_time = format!("2026-13-23T19:00:00+00:00 web1 kernel: {EGRESS}");
        assert_eq!(parse_line(&bad_time, &ctx()), None);
        let bad_day = format!("Nov 31 19:00:00 web1 kernel: {EGRESS}");
        assert_eq!(parse_line(&bad_day, &ctx()), None);
    }

    #[test]
    fn crlf_and_missing_trailing_space_are_tolerated() {
        let line = format!("[ 1.0] {}\r\n", EGRESS.trim_end());
        assert_eq!(parse_line(&line, &ctx()), Some(egress_record(None)));
    }

    #[test]
    fn huge_printk_stamp_is_a_line_without_time_not_a_panic() {
        let line = format!("[99999999999999999.999999999999] {EGRESS}");
        let ctx = ctx().with_boot(ts("2026-11-23T18:00:00Z"));
        assert_eq!(parse_line(&line, &ctx), Some(egress_record(None)));
        let overflow = format!("[999999999999999999999] {EGRESS}");
        assert_eq!(parse_line(&overflow, &ctx), None);
    }
}
