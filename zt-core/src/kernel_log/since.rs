//! The start of an audit window, as an operator writes it.

use crate::Error;
use jiff::civil::DateTime;
use jiff::fmt::temporal::Pieces;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

/// The moment `text` names, for `zt audit --since`:
///
/// * a duration back from `now`: numbers with units `s`, `m`, `h`, `d` (24 hours) or `w`
///   (7 days), run together (`90s`, `30m`, `2h`, `1h30m`, `1d`);
/// * an RFC 3339 timestamp with its offset (`2026-11-23T19:00:00Z`,
///   `2026-11-23T19:00:00+01:00`);
/// * a civil date or time in `tz` (`2026-11-23 19:00`, `2026-11-23 19:00:00`, `2026-11-23`
///   for its midnight); a time that a clock change skips or repeats is taken as the clock
///   showed it first (jiff's "compatible" rule, as `date` and most schedulers do);
/// * `today` or `yesterday`: the start of that day in `tz`.
///
/// A moment after `now` is not an error: the window is then empty, which is the true answer.
/// Nor is a date past the last moment a timestamp can hold (9999-12-30T22:00:00.999999999Z,
/// a day short of the calendar's end so that every offset's local time fits): it is taken as
/// that last moment, after which no clock has written anything; one before the first moment
/// is taken as the first, which every record follows.
pub fn parse_since(text: &str, now: Timestamp, tz: &TimeZone) -> Result<Timestamp, Error> {
    let text = text.trim();
    let fail = |reason: &str| Error::Since {
        text: text.to_owned(),
        reason: reason.to_owned(),
    };
    if text.is_empty() {
        return Err(fail("it is empty"));
    }
    let day_start = |days_back: bool| {
        let today = now.to_zoned_datetime(tz.clone());
        let day = if days_back {
            today.yesterday()
        } else {
            Ok(today)
        };
        day.and_then(|d| d.start_of_day())
            .map(|d| d.timestamp())
            .map_err(|_| fail("that day cannot be represented"))
    };
    match text.to_ascii_lowercase().as_str() {
        "today" => return day_start(false),
        "yesterday" => return day_start(true),
        _ => {}
    }
    if is_duration_like(text) {
        let back = duration(text).map_err(fail)?;
        return now
            .checked_sub(back)
            .map_err(|_| fail("it reaches back before the earliest time representable"));
    }
    if let Ok(exact) = text.parse::<Timestamp>() {
        return Ok(exact);
    }
    if let Some(end) = rfc3339_beyond_range(text) {
        return Ok(end);
    }
    let civil: DateTime = text
        .parse()
        .map_err(|_| fail("it is neither a duration nor a date or time"))?;
    tz.to_ambiguous_timestamp(civil).compatible().or_else(|_| {
        beyond_range(civil, tz)
            .ok_or_else(|| fail("that time cannot be placed in the local time zone"))
    })
}

/// An RFC 3339 timestamp (a date, a time and an offset) that jiff reads but cannot hold as a
/// [`Timestamp`], as the end of the range it lies beyond; `None` for anything else.
fn rfc3339_beyond_range(text: &str) -> Option<Timestamp> {
    let pieces = Pieces::parse(text).ok()?;
    let civil = pieces.date().to_datetime(pieces.time()?);
    let offset = pieces.offset()?.to_numeric_offset();
    beyond_range(civil, &TimeZone::fixed(offset))
}

/// The first or last representable moment, when `civil` in `tz` lies before or after them.
fn beyond_range(civil: DateTime, tz: &TimeZone) -> Option<Timestamp> {
    if civil > tz.to_datetime(Timestamp::MAX) {
        Some(Timestamp::MAX)
    } else if civil < tz.to_datetime(Timestamp::MIN) {
        Some(Timestamp::MIN)
    } else {
        None
    }
}

/// Digits first, a unit letter last, nothing but ASCII letters and digits: what a relative
/// duration looks like (so `1x` is reported as a bad unit, not as a bad date).
fn is_duration_like(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.first().is_some_and(u8::is_ascii_digit)
        && bytes.last().is_some_and(u8::is_ascii_alphabetic)
        && bytes.iter().all(u8::is_ascii_alphanumeric)
}

/// `1h30m` and the like as a duration; why not, in words.
fn duration(text: &str) -> Result<SignedDuration, &'static str> {
    const TOO_LARGE: &str = "the duration is too large";
    let mut seconds: i64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err("each unit needs a number before it");
        }
        let (number, after) = rest.split_at(digits);
        let letters = after.bytes().take_while(u8::is_ascii_alphabetic).count();
        let (unit, after) = after.split_at(letters);
        let unit_seconds = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3_600,
            "d" => 86_400,
            "w" => 604_800,
            _ => return Err("the units are s, m, h, d and w"),
        };
        let number: i64 = number.parse().map_err(|_| TOO_LARGE)?;
        seconds = number
            .checked_mul(unit_seconds)
            .and_then(|s| seconds.checked_add(s))
            .ok_or(TOO_LARGE)?;
        rest = after;
    }
    Ok(SignedDuration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::tz::offset;

    fn now() -> Timestamp {
        "2026-11-23T19:00:00Z".parse().unwrap()
    }

    fn since(text: &str, tz: &TimeZone) -> Result<String, Error> {
        parse_since(text, now(), tz).map(|t| t.to_string())
    }

    #[test]
    fn relative_durations_count_back_from_now() {
        let utc = TimeZone::UTC;
        assert_eq!(since("90s", &utc).unwrap(), "2026-11-23T18:58:30Z");
        assert_eq!(since("30m", &utc).unwrap(), "2026-11-23T18:30:00Z");
        assert_eq!(since("2h", &utc).unwrap(), "2026-11-23T17:00:00Z");
        assert_eq!(since("1h30m", &utc).unwrap(), "2026-11-23T17:30:00Z");
        assert_eq!(since("1d", &utc).unwrap(), "2026-11-22T19:00:00Z");
        assert_eq!(since("1w", &utc).unwrap(), "2026-11-16T19:00:00Z");
        assert_eq!(since(" 0s ", &utc).unwrap(), "2026-11-23T19:00:00Z");
    }

    #[test]
    fn rfc3339_timestamps_keep_their_offset() {
        let tz = TimeZone::fixed(offset(5));
        assert_eq!(
            since("2026-11-23T19:00:00+01:00", &tz).unwrap(),
            "2026-11-23T18:00:00Z"
        );
        assert_eq!(
            since("2026-11-23T10:00:00Z", &tz).unwrap(),
            "2026-11-23T10:00:00Z"
        );
    }

    #[test]
    fn civil_dates_and_times_are_local() {
        let tz = TimeZone::fixed(offset(1));
        assert_eq!(
            since("2026-11-23 19:00", &tz).unwrap(),
            "2026-11-23T18:00:00Z"
        );
        assert_eq!(
            since("2026-11-23 19:00:30", &tz).unwrap(),
            "2026-11-23T18:00:30Z"
        );
        assert_eq!(since("2026-11-23", &tz).unwrap(), "2026-11-22T23:00:00Z");
    }

    #[test]
    fn today_and_yesterday_start_at_local_midnight() {
        let tz = TimeZone::fixed(offset(-8));
        // 19:00Z is 11:00 on the 23rd at -08:00.
        assert_eq!(since("today", &tz).unwrap(), "2026-11-23T08:00:00Z");
        assert_eq!(since("Yesterday", &tz).unwrap(), "2026-11-22T08:00:00Z");
    }

    /// The last day of the calendar is a date like any other: past the last representable
    /// moment, it is that moment (the window is empty); before the first, the first.
    #[test]
    fn dates_past_the_representable_range_are_its_ends() {
        let max = Timestamp::MAX.to_string();
        let min = Timestamp::MIN.to_string();
        for tz in [
            TimeZone::UTC,
            TimeZone::fixed(offset(-8)),
            TimeZone::fixed(offset(14)),
        ] {
            for text in [
                "9999-12-31T23:59:59Z",
                "9999-12-31T23:59:59.999999999Z",
                "9999-12-30T23:00:00+00:30",
                "9999-12-31T12:00:00-01:00",
                "9999-12-31 23:59",
            ] {
                assert_eq!(since(text, &tz).unwrap(), max, "{text} in {tz:?}");
            }
            for text in ["-009999-01-01T00:00:00Z", "-009999-01-01T00:00:00-25:00"] {
                assert_eq!(since(text, &tz).unwrap(), min, "{text} in {tz:?}");
            }
            // The last moment itself, and a day before, are what they say.
            assert_eq!(since(&max, &tz).unwrap(), max);
            assert_eq!(
                since("9999-12-29T23:59:59Z", &tz).unwrap(),
                "9999-12-29T23:59:59Z"
            );
        }
        // A local date is out of range in some zones only: the last day's midnight is past
        // the end in UTC, and 9999-12-30T10:00:00Z at +14:00.
        assert_eq!(since("9999-12-31", &TimeZone::UTC).unwrap(), max);
        assert_eq!(
            since("9999-12-31", &TimeZone::fixed(offset(14))).unwrap(),
            "9999-12-30T10:00:00Z"
        );
    }

    #[test]
    fn unreadable_input_names_the_accepted_forms() {
        let utc = TimeZone::UTC;
        for (text, reason) in [
            ("", "it is empty"),
            ("5x", "the units are s, m, h, d and w"),
            ("1hour", "the units are s, m, h, d and w"),
            ("1h30", "it is neither a duration nor a date or time"),
            ("last week", "it is neither a duration nor a date or time"),
            ("2026-13-01", "it is neither a duration nor a date or time"),
            ("99999999999999999999s", "the duration is too large"),
            ("99999999999999w", "the duration is too large"),
            (
                "9999999999d",
                "it reaches back before the earliest time representable",
            ),
        ] {
            let err = since(text, &utc).unwrap_err();
            let Error::Since { reason: got, .. } = &err else {
                panic!("{text}: {err}");
            };
            assert_eq!(got, reason, "{text}");
            let message = err.to_string();
            assert!(
                message.contains("1h30m") && message.contains("yesterday"),
                "{message}"
            );
        }
    }
}
