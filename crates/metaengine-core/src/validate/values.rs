//! Shapes of literal values: dates, timestamps, UUIDs, decimal strings.

fn digits(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        _ => 0,
    }
}

/// A calendar date `YYYY-MM-DD` that exists (leap years included).
pub(crate) fn is_date(s: &str) -> bool {
    let mut parts = s.split('-');
    let (Some(y), Some(m), Some(d), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return false;
    }
    match (digits(y), digits(m), digits(d)) {
        (Some(y), Some(m), Some(d)) => (1..=12).contains(&m) && d >= 1 && d <= days_in_month(y, m),
        _ => false,
    }
}

/// `HH:MM` with hours below 24 and minutes below 60.
fn is_hour_minute(s: &str) -> bool {
    match s.split_once(':') {
        Some((h, m)) if h.len() == 2 && m.len() == 2 => {
            matches!((digits(h), digits(m)), (Some(h), Some(m)) if h < 24 && m < 60)
        }
        _ => false,
    }
}

/// An RFC 3339 timestamp: `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`; `t`, `z` and a space in
/// place of `T` are accepted as RFC 3339 allows.
pub(crate) fn is_rfc3339(s: &str) -> bool {
    let Some((date, time)) = s.split_at_checked(10) else {
        return false;
    };
    let Some(time) = time
        .strip_prefix('T')
        .or_else(|| time.strip_prefix('t'))
        .or_else(|| time.strip_prefix(' '))
    else {
        return false;
    };
    if !is_date(date) {
        return false;
    }
    let Some((hm, rest)) = time.split_at_checked(5) else {
        return false;
    };
    let Some(rest) = rest.strip_prefix(':') else {
        return false;
    };
    let Some((sec, rest)) = rest.split_at_checked(2) else {
        return false;
    };
    if !is_hour_minute(hm) || digits(sec).is_none_or(|s| s > 60) {
        return false;
    }
    let rest = match rest.strip_prefix('.') {
        Some(frac) => {
            let n = frac.bytes().take_while(u8::is_ascii_digit).count();
            if n == 0 {
                return false;
            }
            frac.get(n..).unwrap_or_default()
        }
        None => rest,
    };
    match rest {
        "Z" | "z" => true,
        _ => rest
            .strip_prefix('+')
            .or_else(|| rest.strip_prefix('-'))
            .is_some_and(is_hour_minute),
    }
}

/// A UUID in its hyphenated form (`8-4-4-4-12` hex digits).
pub(crate) fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// A decimal number as a string: `-?[0-9]+(\.[0-9]+)?`.
pub(crate) fn is_decimal_string(s: &str) -> bool {
    let unsigned = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = match unsigned.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (unsigned, None),
    };
    let all_digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    all_digits(int) && frac.is_none_or(all_digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        for ok in [
            "2026-11-26",
            "2024-02-29",
            "2000-02-29",
            "0001-01-01",
            "9999-12-31",
        ] {
            assert!(is_date(ok), "{ok}");
        }
        for bad in [
            "2026-02-29",
            "1900-02-29",
            "2026-13-01",
            "2026-00-10",
            "2026-04-31",
            "2026-1-01",
            "26-01-01",
            "2026-01-01T00:00:00Z",
            "",
            "2026/01/01",
            "2026-01-0a",
            "+2026-01-01",
        ] {
            assert!(!is_date(bad), "{bad}");
        }
    }

    #[test]
    fn timestamps() {
        for ok in [
            "2026-11-26T10:00:00Z",
            "2026-11-26t10:00:00z",
            "2026-11-26 10:00:00Z",
            "2026-11-26T10:00:00.123Z",
            "2026-11-26T23:59:60+01:00",
            "2026-11-26T10:00:00-05:30",
        ] {
            assert!(is_rfc3339(ok), "{ok}");
        }
        for bad in [
            "2026-11-26",
            "2026-11-26T10:00:00",
            "2026-11-26T10:00Z",
            "2026-11-26T24:00:00Z",
            "2026-11-26T10:60:00Z",
            "2026-11-26T10:00:61Z",
            "2026-11-26T10:00:00.Z",
            "2026-11-26T10:00:00+0100",
            "2026-11-26T10:00:00+01:00x",
            "2026-02-30T10:00:00Z",
            "2026-11-26X10:00:00Z",
            "é026-11-26T10:00:00Z",
        ] {
            assert!(!is_rfc3339(bad), "{bad}");
        }
    }

    #[test]
    fn uuids_and_decimals() {
        assert!(is_uuid("0192f3a4-5b6c-7d8e-9f00-112233445566"));
        assert!(is_uuid("0192F3A4-5B6C-7D8E-9F00-112233445566"));
        assert!(!is_uuid("0192f3a45b6c7d8e9f00112233445566"));
        assert!(!is_uuid("0192f3a4-5b6c-7d8e-9f00-11223344556g"));
        for ok in ["0", "12", "-12.50", "0.001"] {
            assert!(is_decimal_string(ok), "{ok}");
        }
        for bad in ["", "-", "1.", ".5", "1e5", "+1", "1,5", "abc", "1.2.3"] {
            assert!(!is_decimal_string(bad), "{bad}");
        }
    }
}
