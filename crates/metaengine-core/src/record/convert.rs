//! Conversion of one value into the [`SqlValue`] bound for its column, with the field's rules
//! checked. The error is the problem's message, which names the field, the rule and the limit.

use super::FieldRule;
use super::decimal::{self, View};
use crate::schema::FieldType;
use crate::validate::describe;
use crate::value::SqlValue;
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde_json::Value;

/// Most significant digits of a JSON number (not an integer) accepted for a decimal field. A JSON
/// number is read as an `f64`, which keeps any decimal of at most 15 significant digits exactly;
/// beyond that the digits the client wrote may already be lost, so the value is refused and the
/// client told to send it as a string.
pub const MAX_DECIMAL_NUMBER_DIGITS: usize = 15;

/// Example shown in messages about timestamps.
const DATETIME_EXAMPLE: &str = "`2026-01-31T12:00:00Z`";
/// Example shown in messages about UUIDs.
const UUID_EXAMPLE: &str = "`0192f3a4-5b6c-7d8e-9f00-112233445566`";

/// Converts a non-null JSON value written to `rule`'s field, checking every rule of the field.
pub(super) fn from_json(rule: &FieldRule, value: &Value) -> Result<SqlValue, String> {
    let name = rule.name.as_str();
    match rule.field_type {
        FieldType::String | FieldType::Text | FieldType::Enum => match value {
            Value::String(s) => check_text(rule, s).map(|()| SqlValue::Text(s.clone())),
            _ => Err(format!("`{name}` must be a string{}", rule.found(value))),
        },
        FieldType::Integer => match value {
            Value::Number(n) => match n.as_i64() {
                Some(i) => check_int(rule, i).map(|()| SqlValue::Int(i)),
                None if n.is_f64() => {
                    Err(format!("`{name}` must be an integer{}", rule.found(value)))
                }
                None => Err(format!(
                    "`{name}` must be an integer between {} and {}{}",
                    i64::MIN,
                    i64::MAX,
                    rule.found(value)
                )),
            },
            _ => Err(format!("`{name}` must be an integer{}", rule.found(value))),
        },
        FieldType::Number => match value.as_f64() {
            Some(f) if f.is_finite() => check_float(rule, f).map(|()| SqlValue::Float(f)),
            _ => Err(format!(
                "`{name}` must be a finite number{}",
                rule.found(value)
            )),
        },
        FieldType::Decimal => json_decimal(rule, value),
        FieldType::Boolean => match value {
            Value::Bool(b) => Ok(SqlValue::Bool(*b)),
            _ => Err(format!("`{name}` must be a boolean{}", rule.found(value))),
        },
        FieldType::Date => match value.as_str() {
            Some(s) if date(s).is_some() => Ok(SqlValue::Text(s.to_owned())),
            _ => Err(date_message(name, &rule.found(value))),
        },
        FieldType::Datetime => match value.as_str().map(datetime) {
            Some(Ok(text)) => Ok(SqlValue::Text(text)),
            Some(Err(why)) => Err(format!("`{name}` {why}{}", rule.found(value))),
            None => Err(datetime_message(name, &rule.found(value))),
        },
        FieldType::Reference => match value.as_str().and_then(uuid) {
            Some(text) => Ok(SqlValue::Text(text)),
            None => Err(uuid_message(name, &rule.found(value))),
        },
        FieldType::Json if has_nul(value) => Err(nul_message(name)),
        FieldType::Json => serde_json::to_string(value)
            .map(SqlValue::Text)
            .map_err(|e| format!("`{name}` cannot be stored as JSON: {e}")),
    }
}

/// Whether a JSON value holds a NUL character in any string or key. PostgreSQL cannot store
/// one, so neither backend accepts it (SPEC §11).
fn has_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

fn nul_message(name: &str) -> String {
    format!("`{name}` must not contain the NUL character (`\\u0000`)")
}

fn date_message(name: &str, found: &str) -> String {
    format!("`{name}` must be a date (YYYY-MM-DD){found}")
}

fn datetime_message(name: &str, found: &str) -> String {
    format!("`{name}` must be an RFC 3339 timestamp such as {DATETIME_EXAMPLE}{found}")
}

fn uuid_message(name: &str, found: &str) -> String {
    format!("`{name}` must be a UUID such as {UUID_EXAMPLE}{found}")
}

/// Length (in characters), pattern and enum membership of a text value.
fn check_text(rule: &FieldRule, s: &str) -> Result<(), String> {
    let name = rule.name.as_str();
    if s.contains('\0') {
        return Err(nul_message(name));
    }
    if let Some(values) = &rule.enum_values
        && !values.iter().any(|v| v == s)
    {
        let list: Vec<String> = values.iter().map(|v| format!("`{v}`")).collect();
        return Err(format!("`{name}` must be one of {}", list.join(", ")));
    }
    if rule.min_length.is_some() || rule.max_length.is_some() {
        let chars = s.chars().count();
        let over = |limit: u32| usize::try_from(limit).is_ok_and(|l| chars > l);
        let under = |limit: u32| usize::try_from(limit).is_ok_and(|l| chars < l);
        if let Some(min) = rule.min_length.filter(|m| under(*m)) {
            return Err(format!("`{name}` is shorter than {min} characters"));
        }
        if let Some(max) = rule.max_length.filter(|m| over(*m)) {
            return Err(format!("`{name}` is longer than {max} characters"));
        }
    }
    match &rule.pattern {
        Some((source, Some(re))) if !re.is_match(s) => {
            Err(format!("`{name}` must match `{source}`"))
        }
        Some((source, None)) => Err(format!(
            "`{name}` cannot be checked: its pattern `{source}` does not compile"
        )),
        _ => Ok(()),
    }
}

/// `min`/`max` of an integer, compared exactly (no rounding through `f64` of the value).
fn check_int(rule: &FieldRule, n: i64) -> Result<(), String> {
    // n < min ⇔ n < ceil(min); n > max ⇔ n > floor(max). Bounds beyond i64 saturate.
    let below = |min: f64| (n as i128) < (min.ceil().clamp(-1e19, 1e19) as i128);
    let above = |max: f64| (n as i128) > (max.floor().clamp(-1e19, 1e19) as i128);
    bounds(rule, below, above)
}

fn check_float(rule: &FieldRule, f: f64) -> Result<(), String> {
    bounds(rule, |min| f < min, |max| f > max)
}

fn bounds(
    rule: &FieldRule,
    below: impl Fn(f64) -> bool,
    above: impl Fn(f64) -> bool,
) -> Result<(), String> {
    let name = rule.name.as_str();
    if let Some(min) = rule.min.filter(|m| below(*m)) {
        return Err(format!("`{name}` must be at least {min}"));
    }
    if let Some(max) = rule.max.filter(|m| above(*m)) {
        return Err(format!("`{name}` must be at most {max}"));
    }
    Ok(())
}

/// A decimal from a JSON number or a numeric string, checked and in canonical text.
fn json_decimal(rule: &FieldRule, value: &Value) -> Result<SqlValue, String> {
    let name = rule.name.as_str();
    let text = match value {
        Value::String(s) => decimal::canonical(s, false),
        Value::Number(n) => {
            let text = decimal::canonical(&n.to_string(), true);
            if n.is_f64()
                && let Some(t) = &text
                && View::of(t).significant_digits() > MAX_DECIMAL_NUMBER_DIGITS
            {
                return Err(format!(
                    "`{name}` has more than {MAX_DECIMAL_NUMBER_DIGITS} significant digits, more than a JSON number carries exactly; send it as a string such as `\"12.50\"`"
                ));
            }
            text
        }
        _ => None,
    };
    let Some(text) = text else {
        return Err(format!(
            "`{name}` must be a decimal number or a numeric string such as `12.50`{}",
            rule.found(value)
        ));
    };
    check_decimal(rule, &text)?;
    Ok(SqlValue::Text(decimal::with_scale(&text, rule.scale)))
}

/// Scale, integer digits (`precision - scale`, as the database checks) and bounds of a decimal.
fn check_decimal(rule: &FieldRule, text: &str) -> Result<(), String> {
    let name = rule.name.as_str();
    let view = View::of(text);
    let (precision, scale) = (rule.precision, rule.scale);
    let fits = |digits: usize, limit: u32| usize::try_from(limit).is_ok_and(|l| digits <= l);
    if !fits(view.scale(), scale) {
        return Err(match scale {
            0 => format!("`{name}` must be a whole number (scale 0)"),
            1 => format!("`{name}` has more than 1 decimal place"),
            _ => format!("`{name}` has more than {scale} decimal places"),
        });
    }
    let int_limit = precision.saturating_sub(scale);
    if !fits(view.int_digits(), int_limit) {
        return Err(format!(
            "`{name}` has more than {int_limit} digits before the decimal point (precision {precision}, scale {scale})"
        ));
    }
    if let (Some(min), Some(bound)) = (rule.min, &rule.min_text)
        && view.cmp(&View::of(bound)).is_lt()
    {
        return Err(format!("`{name}` must be at least {min}"));
    }
    if let (Some(max), Some(bound)) = (rule.max, &rule.max_text)
        && view.cmp(&View::of(bound)).is_gt()
    {
        return Err(format!("`{name}` must be at most {max}"));
    }
    Ok(())
}

/// A real calendar date `YYYY-MM-DD` (year 0001 to 9999).
pub(super) fn date(s: &str) -> Option<()> {
    let b = s.as_bytes();
    let shape = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            _ => c.is_ascii_digit(),
        });
    if !shape {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r).and_then(|p| p.parse::<u32>().ok());
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let year = i32::try_from(year).ok().filter(|y| *y >= 1)?;
    NaiveDate::from_ymd_opt(year, month, day).map(|_| ())
}

/// An RFC 3339 timestamp, converted to UTC and written `YYYY-MM-DDTHH:MM:SS.mmmZ` (digits beyond
/// the millisecond are dropped). The error completes "`field` …".
pub(super) fn datetime(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let at = |i: usize| b.get(i).copied();
    let shape = s.is_ascii()
        && b.len() >= 20
        && at(4) == Some(b'-')
        && at(7) == Some(b'-')
        && matches!(at(10), Some(b'T' | b't' | b' '))
        && at(13) == Some(b':')
        && at(16) == Some(b':');
    let parsed = shape
        .then(|| DateTime::parse_from_rfc3339(s).ok())
        .flatten()
        .filter(|_| s.get(0..10).and_then(date).is_some());
    let Some(parsed) = parsed else {
        return Err(format!(
            "must be an RFC 3339 timestamp such as {DATETIME_EXAMPLE}"
        ));
    };
    // A leap second (`23:59:60`) would be stored as written on SQLite and as the next minute on
    // PostgreSQL: refused on both.
    if chrono::Timelike::nanosecond(&parsed) >= 1_000_000_000 {
        return Err("must not be a leap second (`:60`)".to_owned());
    }
    let utc = parsed.with_timezone(&Utc);
    if !(1..=9999).contains(&utc.year()) {
        return Err("must be between the years 0001 and 9999 in UTC".to_owned());
    }
    Ok(utc.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
}

/// A UUID in hyphenated form (either case), returned in lowercase.
pub(super) fn uuid(s: &str) -> Option<String> {
    let ok = s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        });
    ok.then(|| s.to_ascii_lowercase())
}

/// Converts a filter value given as query-string text to the type of a field (no length,
/// pattern, enum, precision or bound rule: a filter only needs the type). The error is the
/// message; it shows the value unless the field is `sensitive`.
pub(super) fn from_text(
    name: &str,
    field_type: FieldType,
    raw: &str,
    sensitive: bool,
) -> Result<SqlValue, String> {
    if raw.contains('\0') {
        return Err(nul_message(name));
    }
    let found = if sensitive {
        String::new()
    } else {
        format!(", found {}", describe(&Value::String(raw.to_owned())))
    };
    match field_type {
        FieldType::String | FieldType::Text | FieldType::Enum => Ok(SqlValue::Text(raw.to_owned())),
        FieldType::Integer => raw
            .parse::<i64>()
            .map(SqlValue::Int)
            .map_err(|_| format!("`{name}` must be an integer{found}")),
        FieldType::Number => match raw.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(SqlValue::Float(f)),
            _ => Err(format!("`{name}` must be a finite number{found}")),
        },
        FieldType::Decimal => decimal::canonical(raw, false)
            .map(SqlValue::Text)
            .ok_or_else(|| format!("`{name}` must be a decimal number such as `12.50`{found}")),
        FieldType::Boolean => match raw {
            "true" => Ok(SqlValue::Bool(true)),
            "false" => Ok(SqlValue::Bool(false)),
            _ => Err(format!("`{name}` must be `true` or `false`{found}")),
        },
        FieldType::Date => date(raw)
            .map(|()| SqlValue::Text(raw.to_owned()))
            .ok_or_else(|| date_message(name, &found)),
        FieldType::Datetime => datetime(raw)
            .map(SqlValue::Text)
            .map_err(|why| format!("`{name}` {why}{found}")),
        FieldType::Reference => uuid(raw)
            .map(SqlValue::Text)
            .ok_or_else(|| uuid_message(name, &found)),
        FieldType::Json => serde_json::from_str::<Value>(raw)
            .ok()
            .and_then(|v| serde_json::to_string(&v).ok())
            .map(SqlValue::Text)
            .ok_or_else(|| format!("`{name}` must be a JSON document{found}")),
    }
}
