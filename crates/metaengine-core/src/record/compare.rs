//! How two values of one field compare, for the policy evaluator and the SQL renderer alike
//! (SPEC §6: a single-record decision and a list's row filter must never disagree).
//!
//! A record holds decimals, dates, timestamps and uuids as JSON strings, while the databases
//! compare them as numbers, days, instants and 128-bit values. Comparing the strings byte by
//! byte would order `"9.00"` after `"10.00"` and `"2026-01-01T00:00:00+01:00"` after
//! `"2026-01-01T00:00:00.000Z"`. So both sides first bring a value to its *canonical text* (the
//! form a column gives back, by the conversion a write makes, without the field's other rules),
//! then compare canonical texts: numerically for decimals, byte by byte for the others (a
//! canonical date, UTC timestamp with milliseconds, or lowercase uuid orders as its value does).
//! A value that has no canonical text for the field's type cannot be compared: an evaluation
//! error in memory, SQL `NULL` in a row filter.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::convert::{self, MAX_DECIMAL_NUMBER_DIGITS};
use super::decimal::{self, View};
use crate::schema::FieldType;

/// How the values of a field compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Comparison {
    /// As JSON values: numbers numerically, strings byte by byte, booleans for equality.
    #[default]
    Json,
    /// Exact decimals (strings or JSON numbers), numerically: `"100.5"` equals `"100.50"`.
    Decimal,
    /// Calendar dates `YYYY-MM-DD`.
    Date,
    /// RFC 3339 timestamps, as instants (any offset).
    Datetime,
    /// UUIDs, in either case, as 128-bit values.
    Uuid,
}

impl Comparison {
    /// How values of a field of type `ty` compare.
    pub fn of(ty: FieldType) -> Comparison {
        match ty {
            FieldType::Decimal => Comparison::Decimal,
            FieldType::Date => Comparison::Date,
            FieldType::Datetime => Comparison::Datetime,
            FieldType::Reference => Comparison::Uuid,
            _ => Comparison::Json,
        }
    }

    /// Whether this is [`Comparison::Json`] (for `skip_serializing_if`).
    pub fn is_json(&self) -> bool {
        *self == Comparison::Json
    }

    /// The canonical text of `value` for this comparison: what a column of the type gives back
    /// for it (decimals without a fixed scale). `None` for [`Comparison::Json`] and for a value
    /// that is not of the type.
    pub fn canonical(self, value: &Value) -> Option<String> {
        match value {
            Value::String(s) => self.canonical_str(s),
            Value::Number(n) if self == Comparison::Decimal => number_text(&n.to_string()),
            _ => None,
        }
    }

    /// The canonical text of a string value (see [`Self::canonical`]).
    pub fn canonical_str(self, s: &str) -> Option<String> {
        match self {
            Comparison::Json => None,
            Comparison::Decimal => decimal::canonical(s, false),
            Comparison::Date => convert::date(s).map(|()| s.to_owned()),
            Comparison::Datetime => convert::datetime(s).ok(),
            Comparison::Uuid => convert::uuid(s),
        }
    }

    /// The canonical text of a number (a decimal's only; Rust writes an `f64` with the
    /// shortest digits that read back as the same number, as JSON does); `None` beyond
    /// [`MAX_DECIMAL_NUMBER_DIGITS`] significant digits, as for a JSON number.
    pub fn canonical_f64(self, f: f64) -> Option<String> {
        (self == Comparison::Decimal && f.is_finite())
            .then(|| number_text(&format!("{f}")))
            .flatten()
    }

    /// Compares two canonical texts of this comparison.
    pub fn cmp_canonical(self, a: &str, b: &str) -> Ordering {
        match self {
            Comparison::Decimal => View::of(a).cmp(&View::of(b)),
            _ => a.cmp(b),
        }
    }

    /// `a` against `b`; `None` when either has no canonical text (see [`Self::canonical`]).
    pub fn compare(self, a: &Value, b: &Value) -> Option<Ordering> {
        let (a, b) = (self.canonical(a)?, self.canonical(b)?);
        Some(self.cmp_canonical(&a, &b))
    }
}

/// The canonical decimal text of a JSON number's text, when it has at most
/// [`MAX_DECIMAL_NUMBER_DIGITS`] significant digits, the most an `f64` keeps exactly: the
/// evaluator sees a JSON number as an `f64`, the SQL renderer as its text, and the two must
/// compare alike (a write refuses such a number for a decimal field for the same reason).
fn number_text(text: &str) -> Option<String> {
    decimal::canonical(text, true)
        .filter(|c| View::of(c).significant_digits() <= MAX_DECIMAL_NUMBER_DIGITS)
}

/// Numeric order of two decimal texts, for SQLite's `decimal` collation: a decimal column stores
/// canonical text with the field's scale, which byte order would sort `"9.00"` after `"10.00"`.
/// Text that is not a decimal sorts after every decimal, byte by byte among itself, so that the
/// order stays total.
pub fn decimal_text_order(a: &str, b: &str) -> Ordering {
    match (decimal::canonical(a, false), decimal::canonical(b, false)) {
        (Some(x), Some(y)) => View::of(&x).cmp(&View::of(&y)),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decimals_compare_as_numbers() {
        let c = Comparison::Decimal;
        assert_eq!(
            c.compare(&json!("9.00"), &json!("10.00")),
            Some(Ordering::Less)
        );
        assert_eq!(
            c.compare(&json!("100.5"), &json!("100.50")),
            Some(Ordering::Equal)
        );
        assert_eq!(
            c.compare(&json!(-2), &json!("-10.5")),
            Some(Ordering::Greater)
        );
        assert_eq!(c.compare(&json!(1e20), &json!("1e20")), None);
        assert_eq!(
            c.compare(&json!(1e20), &json!("100000000000000000000.0")),
            Some(Ordering::Equal)
        );
        assert_eq!(
            c.compare(&json!("1234567890123456.12"), &json!("1234567890123456.13")),
            Some(Ordering::Less)
        );
        assert_eq!(c.compare(&json!("abc"), &json!("1")), None);
        // A JSON number beyond what an f64 keeps is no decimal: the evaluator would see it
        // rounded, SQL exactly. As a string it compares.
        assert_eq!(c.canonical(&json!(12_345_678_901_234_567_u64)), None);
        assert_eq!(c.canonical_f64(12_345_678_901_234_567.0), None);
        assert_eq!(
            c.canonical(&json!("12345678901234567")).as_deref(),
            Some("12345678901234567")
        );
        assert_eq!(c.compare(&json!(true), &json!("1")), None);
    }

    #[test]
    fn timestamps_compare_as_instants() {
        let c = Comparison::Datetime;
        assert_eq!(
            c.compare(
                &json!("2026-01-01T00:30:00+01:00"),
                &json!("2026-01-01T00:00:00.000Z")
            ),
            Some(Ordering::Less)
        );
        assert_eq!(
            c.compare(
                &json!("2026-01-01T00:00:00Z"),
                &json!("2026-01-01T00:00:00.000Z")
            ),
            Some(Ordering::Equal)
        );
        assert_eq!(
            c.compare(&json!("2026-01-01"), &json!("2026-01-01T00:00:00Z")),
            None
        );
    }

    #[test]
    fn dates_and_uuids_compare_by_canonical_text() {
        assert_eq!(
            Comparison::Date.compare(&json!("2026-02-28"), &json!("2026-10-01")),
            Some(Ordering::Less)
        );
        assert_eq!(
            Comparison::Date.compare(&json!("2026-02-30"), &json!("2026-10-01")),
            None
        );
        let (upper, lower) = (
            json!("0192F3A4-5B6C-7D8E-9F00-112233445566"),
            json!("0192f3a4-5b6c-7d8e-9f00-112233445566"),
        );
        assert_eq!(
            Comparison::Uuid.compare(&upper, &lower),
            Some(Ordering::Equal)
        );
        assert_eq!(Comparison::Uuid.compare(&json!("u1"), &lower), None);
    }

    #[test]
    fn the_decimal_collation_is_numeric_and_total() {
        assert_eq!(decimal_text_order("9.00", "10.00"), Ordering::Less);
        assert_eq!(decimal_text_order("-1.50", "-1.5"), Ordering::Equal);
        assert_eq!(decimal_text_order("1", "x"), Ordering::Less);
        assert_eq!(decimal_text_order("x", "y"), Ordering::Less);
    }
}
