//! Exact decimals as text: parsing into a canonical form, and the checks made on that form
//! (digits before and after the point, comparison with a bound). No value goes through `f64`.

use std::cmp::Ordering;

/// Largest exponent magnitude accepted in a JSON number's text (`1e400` is refused), so that a
/// hostile input cannot make a huge string.
const MAX_EXPONENT: i64 = 1000;

/// The canonical text of a decimal: an optional `-`, the integer digits without leading zeros
/// (`0` when there are none), then `.` and the fraction digits without trailing zeros when there
/// are any. Zero is `0` (never `-0`).
///
/// Accepts `-?[0-9]+(\.[0-9]+)?`, and with `allow_exponent` an exponent (`e`/`E`, optional sign):
/// the form in which `serde_json` writes a JSON number. `None` when the text is not a decimal.
pub(crate) fn canonical(text: &str, allow_exponent: bool) -> Option<String> {
    let (negative, rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(at) if allow_exponent => {
            let (m, e) = rest.split_at(at);
            (m, parse_exponent(e.get(1..)?)?)
        }
        Some(_) => return None,
        None => (rest, 0),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((int, frac)) => (int, frac),
        None => (mantissa, ""),
    };
    let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || !all_digits(int) || !all_digits(frac) {
        return None;
    }
    if mantissa.contains('.') && frac.is_empty() {
        return None;
    }
    // Position of the point within `int ++ frac`, after applying the exponent.
    let point = i64::try_from(int.len()).ok()? + exponent;
    let total = int.len() + frac.len();
    let digit = |i: i64| -> u8 {
        usize::try_from(i)
            .ok()
            .filter(|i| *i < total)
            .and_then(|i| {
                int.as_bytes()
                    .get(i)
                    .or_else(|| frac.as_bytes().get(i - int.len()))
            })
            .copied()
            .unwrap_or(b'0')
    };
    let total = i64::try_from(total).ok()?;
    // Digits from `start` to `end` (exclusive) of the shifted number, padded with zeros.
    let first_nonzero = (0..total).find(|i| digit(*i) != b'0');
    let Some(first_nonzero) = first_nonzero else {
        return Some("0".to_owned());
    };
    let last_nonzero = (0..total)
        .rev()
        .find(|i| digit(*i) != b'0')
        .unwrap_or(first_nonzero);
    let int_start = first_nonzero.min(point);
    let frac_end = (last_nonzero + 1).max(point);
    let mut out = String::with_capacity(usize::try_from(frac_end - int_start + 3).unwrap_or(0));
    if negative {
        out.push('-');
    }
    if int_start >= point {
        out.push('0');
    } else {
        (int_start..point).for_each(|i| out.push(char::from(digit(i))));
    }
    if frac_end > point {
        out.push('.');
        (point..frac_end).for_each(|i| out.push(char::from(digit(i))));
    }
    Some(out)
}

fn parse_exponent(text: &str) -> Option<i64> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || digits.len() > 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let value: i64 = text.parse().ok()?;
    (value.abs() <= MAX_EXPONENT).then_some(value)
}

/// A view of a decimal in canonical form (see [`canonical`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct View<'a> {
    negative: bool,
    /// Integer digits, empty for zero.
    int: &'a str,
    /// Fraction digits, no trailing zero.
    frac: &'a str,
}

impl<'a> View<'a> {
    /// The view of a canonical text.
    pub(crate) fn of(canonical: &'a str) -> View<'a> {
        let (negative, rest) = match canonical.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, canonical),
        };
        let (int, frac) = rest.split_once('.').unwrap_or((rest, ""));
        let int = if int == "0" { "" } else { int };
        View {
            negative,
            int,
            frac,
        }
    }

    /// Digits before the point (`0` for `0.5`).
    pub(crate) fn int_digits(&self) -> usize {
        self.int.len()
    }

    /// Digits after the point.
    pub(crate) fn scale(&self) -> usize {
        self.frac.len()
    }

    /// Significant digits: without leading and trailing zeros (`1` for `100` and for `0.001`).
    pub(crate) fn significant_digits(&self) -> usize {
        let digits = || self.int.bytes().chain(self.frac.bytes());
        let total = self.int.len() + self.frac.len();
        let leading = digits().take_while(|b| *b == b'0').count();
        if leading == total {
            return 0;
        }
        let trailing = if self.frac.is_empty() {
            self.int.bytes().rev().take_while(|b| *b == b'0').count()
        } else {
            0
        };
        total - leading - trailing
    }

    /// Numeric comparison.
    pub(crate) fn cmp(&self, other: &View<'_>) -> Ordering {
        let zero = |v: &View<'_>| v.int.is_empty() && v.frac.is_empty();
        let sign = |v: &View<'_>| match (zero(v), v.negative) {
            (true, _) => 0,
            (false, true) => -1,
            (false, false) => 1,
        };
        let by_sign = sign(self).cmp(&sign(other));
        if by_sign != Ordering::Equal || sign(self) == 0 {
            return by_sign;
        }
        // Canonical fractions have no trailing zero, so comparing them as strings is numeric.
        let magnitude = self
            .int
            .len()
            .cmp(&other.int.len())
            .then_with(|| self.int.cmp(other.int))
            .then_with(|| self.frac.cmp(other.frac));
        if self.negative {
            magnitude.reverse()
        } else {
            magnitude
        }
    }
}

/// The canonical decimal text of a bound (`f64` displays without an exponent in Rust).
pub(crate) fn bound_text(bound: f64) -> Option<String> {
    if !bound.is_finite() {
        return None;
    }
    canonical(&format!("{bound}"), true)
}

/// `canonical` written with exactly `scale` fraction digits, as PostgreSQL shows a
/// `numeric(p, s)`: what a decimal column stores on SQLite too, so both databases give back the
/// same text (`"100.50"`). `canonical` must already fit the scale.
pub(crate) fn with_scale(canonical: &str, scale: u32) -> String {
    let scale = usize::try_from(scale).unwrap_or(0);
    let (int, frac) = canonical.split_once('.').unwrap_or((canonical, ""));
    if scale == 0 {
        return int.to_owned();
    }
    let mut out = String::with_capacity(int.len() + 1 + scale);
    out.push_str(int);
    out.push('.');
    out.push_str(frac);
    for _ in frac.len()..scale {
        out.push('0');
    }
    out
}
