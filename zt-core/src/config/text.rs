//! Scalar text as the decoder reads it (nulls, whole numbers, ports and ranges), and text
//! echoed back in a diagnostic.

use super::PortSpec;

/// Whether a scalar is YAML's null: only a plain one (`"~"` quoted is the text `~`).
pub(super) fn is_null(text: &str, plain: bool) -> bool {
    plain && matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

/// Text safe to echo into a diagnostic: control characters escaped, long text cut.
pub(crate) fn printable(text: &str) -> String {
    let mut out: String = text.chars().take(64).flat_map(char::escape_debug).collect();
    if text.chars().count() > 64 {
        out.push('…');
    }
    out
}

/// A whole number with an optional sign.
pub(super) fn parse_int(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    match b.first() {
        Some(b'-') => magnitude(&b[1..]).map(|m| -m),
        Some(b'+') => magnitude(&b[1..]),
        _ => magnitude(b),
    }
}

/// One or more ASCII digits as a number. Out-of-range numbers saturate: validation reports
/// them with their field's bounds. Read by hand: a port list of a large policy goes through
/// here several times per rule, and std's parser checks again what this loop already has.
fn magnitude(digits: &[u8]) -> Option<i64> {
    if digits.is_empty() {
        return None;
    }
    let mut value: i64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        value = value.saturating_mul(10).saturating_add(i64::from(c - b'0'));
    }
    Some(value)
}

/// `text` without surrounding whitespace; `trim` decodes characters at both ends, which a
/// value that starts and ends with a visible ASCII character does not need.
pub(crate) fn trimmed(text: &str) -> &str {
    let visible = |b: Option<&u8>| b.is_some_and(u8::is_ascii_graphic);
    if visible(text.as_bytes().first()) && visible(text.as_bytes().last()) {
        text
    } else {
        text.trim()
    }
}

/// A port (`6379`) or a range (`8000-8100`), bounds unchecked.
pub(super) fn parse_port_spec(text: &str) -> Option<PortSpec> {
    let text = trimmed(text);
    if let Some(p) = parse_int(text) {
        return Some(PortSpec::Single(p));
    }
    let dash = text.bytes().position(|c| c == b'-')?;
    let (a, b) = (trimmed(&text[..dash]), trimmed(&text[dash + 1..]));
    Some(PortSpec::Range(
        magnitude(a.as_bytes())?,
        magnitude(b.as_bytes())?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same parsers written with std's: the hand-written ones must agree with them.
    fn parse_int_std(text: &str) -> Option<i64> {
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text.strip_prefix('+').unwrap_or(text)),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let magnitude = digits.parse::<i64>().unwrap_or(i64::MAX);
        Some(if negative { -magnitude } else { magnitude })
    }

    fn parse_port_spec_std(text: &str) -> Option<PortSpec> {
        let text = text.trim();
        if let Some(p) = parse_int_std(text) {
            return Some(PortSpec::Single(p));
        }
        let (a, b) = text.split_once('-')?;
        let (a, b) = (a.trim(), b.trim());
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
        if digits(a) && digits(b) {
            Some(PortSpec::Range(parse_int_std(a)?, parse_int_std(b)?))
        } else {
            None
        }
    }

    proptest::proptest! {
        #[test]
        fn integer_and_port_readers_agree_with_std(
            text in "[ +\\-0-9\u{a0}\u{2003}a]{0,8}|[0-9]{17,21}|[+\\-]?[0-9]{1,20}( ?- ?[0-9]{1,20})?",
        ) {
            proptest::prop_assert_eq!(parse_int(&text), parse_int_std(&text));
            proptest::prop_assert_eq!(parse_port_spec(&text), parse_port_spec_std(&text));
        }
    }

    #[test]
    fn port_specs_accept_numbers_and_ranges_only() {
        assert_eq!(parse_port_spec("6379"), Some(PortSpec::Single(6379)));
        assert_eq!(
            parse_port_spec("8000-8100"),
            Some(PortSpec::Range(8000, 8100))
        );
        assert_eq!(parse_port_spec(" 1 - 2 "), Some(PortSpec::Range(1, 2)));
        assert_eq!(parse_port_spec("-1"), Some(PortSpec::Single(-1)));
        assert_eq!(
            parse_port_spec("99999999999999999999"),
            Some(PortSpec::Single(i64::MAX))
        );
        assert_eq!(parse_port_spec("http"), None);
        assert_eq!(parse_port_spec("1-2-3"), None);
    }
}
